-- Preflight: every row is a reason the connected role could write (or
-- otherwise act on the server). Any row refuses the run. Privileges are
-- checked for every role reachable by membership (SET ROLE included), with
-- has_*_privilege: information_schema misses predefined roles.
WITH me AS (SELECT r.oid, r.* FROM pg_roles r WHERE r.rolname = current_user),
reach AS (
  SELECT r.oid, r.rolname FROM pg_roles r WHERE pg_has_role(current_user, r.oid, 'MEMBER')),
reasons AS (
  SELECT 'role attribute ' || a AS reason FROM me,
    LATERAL (VALUES ('SUPERUSER', rolsuper), ('CREATEROLE', rolcreaterole),
                    ('CREATEDB', rolcreatedb), ('REPLICATION', rolreplication),
                    ('BYPASSRLS', rolbypassrls)) v(a, b) WHERE b
  UNION ALL
  SELECT 'member of ' || rolname FROM reach WHERE rolname IN
    ('pg_write_all_data', 'pg_write_server_files', 'pg_execute_server_program',
     'pg_read_server_files', 'pg_signal_backend', 'pg_checkpoint', 'pg_maintain',
     'pg_create_subscription', 'pg_use_reserved_connections')
  UNION ALL
  SELECT format('%s privilege on table %s.%s (via %s)', p, n.nspname, c.relname, rr.rolname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN reach rr
  CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'TRIGGER', 'REFERENCES']) p
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
    AND has_table_privilege(rr.oid, c.oid, p)
  UNION ALL
  SELECT format('%s privilege on a column of %s.%s (via %s)', p, n.nspname, c.relname, rr.rolname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace CROSS JOIN reach rr
  CROSS JOIN unnest(ARRAY['INSERT', 'UPDATE']) p
  WHERE c.relkind IN ('r', 'p', 'v', 'f')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
    AND has_any_column_privilege(rr.oid, c.oid, p) AND NOT has_table_privilege(rr.oid, c.oid, p)
  UNION ALL
  SELECT format('owns %s %s.%s', CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'relation' END,
                n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE pg_has_role(current_user, c.relowner, 'MEMBER')
    AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  UNION ALL
  SELECT format('%s privilege on sequence %s (via %s)', p, c.oid::regclass, rr.rolname)
  FROM pg_class c CROSS JOIN reach rr CROSS JOIN unnest(ARRAY['USAGE', 'UPDATE']) p
  WHERE c.relkind = 'S' AND has_sequence_privilege(rr.oid, c.oid, p)
  UNION ALL
  SELECT format('CREATE privilege on schema %s (via %s)', n.nspname, rr.rolname)
  FROM pg_namespace n CROSS JOIN reach rr WHERE has_schema_privilege(rr.oid, n.oid, 'CREATE')
  UNION ALL
  SELECT format('owns schema %s', n.nspname) FROM pg_namespace n
  WHERE pg_has_role(current_user, n.nspowner, 'MEMBER') AND n.nspname !~ '^pg_'
    AND n.nspname <> 'information_schema'
  UNION ALL
  SELECT format('CREATE privilege on database %s (via %s)', current_database(), rr.rolname)
  FROM reach rr WHERE has_database_privilege(rr.oid, current_database(), 'CREATE')
  UNION ALL
  SELECT format('owns database %s', d.datname) FROM pg_database d
  WHERE d.datname = current_database() AND pg_has_role(current_user, d.datdba, 'MEMBER')
  UNION ALL
  SELECT format('may execute SECURITY DEFINER function %s (via %s)', p.oid::regprocedure, rr.rolname)
  FROM pg_proc p CROSS JOIN reach rr
  WHERE p.prosecdef AND p.pronamespace <> 'pg_catalog'::regnamespace
    AND has_function_privilege(rr.oid, p.oid, 'EXECUTE')
  UNION ALL
  SELECT format('may execute %s (via %s)', f, rr.rolname)
  FROM unnest(ARRAY['lo_import(text)', 'lo_import(text,oid)', 'lo_export(oid,text)',
                    'pg_reload_conf()', 'pg_rotate_logfile()', 'pg_switch_wal()',
                    'pg_promote(boolean,integer)', 'pg_read_file(text)']) f
  CROSS JOIN reach rr
  WHERE to_regprocedure(f) IS NOT NULL AND has_function_privilege(rr.oid, to_regprocedure(f), 'EXECUTE')
  UNION ALL
  SELECT format('extension %s is installed and usable (a connection of its own escapes READ ONLY)',
                e.extname)
  FROM pg_extension e WHERE e.extname IN ('dblink', 'postgres_fdw')
)
SELECT DISTINCT reason FROM reasons ORDER BY 1;
