#!/usr/bin/env bash
# `make demo-pg`: both reference versions dry-run against PostgreSQL, as an
# operator would run them: a database holding the embedded corpus, a
# SELECT-only login role with a password, and an env file (mode 600) naming
# them. Uses the server DATABASE_URL or the PG* variables name (the Makefile
# wraps this in pg_virtualenv when neither is set); drops the database and
# the role afterwards. Run folders land in sidecar-runs/, as `make demo`'s do.
set -euo pipefail

target=${TARGET:-target}
db=sidecar_demo
role=sidecar_demo_ro
# Hex, so that it needs no quoting in SQL or in the env file.
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
env_dir=$(mktemp -d)

# psql as the administrator: DATABASE_URL if set, else the PG* variables.
admin() { psql -X -q -v ON_ERROR_STOP=1 ${DATABASE_URL:+-d "$DATABASE_URL"} "$@"; }
drop_demo() {
    admin -c "SET client_min_messages TO warning" \
        -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "DROP ROLE IF EXISTS $role"
}
trap 'rm -rf "$env_dir"; drop_demo' EXIT
trap 'exit 1' INT TERM

drop_demo
"$target/release/pg-load" --corpus embedded --database "$db" --create
admin -c "CREATE ROLE $role LOGIN PASSWORD '$password'" \
    -c "GRANT CONNECT ON DATABASE $db TO $role" \
    -c "\\c $db" \
    -c "GRANT USAGE ON SCHEMA public TO $role" \
    -c "GRANT SELECT ON source_document, source_version, information_unit TO $role"

# The server's address as psql resolved it (a host name or a socket directory).
set -- $(admin -At -c '\echo :HOST :PORT')
(
    umask 077
    printf 'PG_HOST=%s\nPG_PORT=%s\nPG_DB=%s\nPG_USER_RO=%s\nPG_PASSWORD_RO=%s\n' \
        "$1" "$2" "$db" "$role" "$password" >"$env_dir/demo-pg.env"
)
echo "env file $env_dir/demo-pg.env (mode $(stat -c %a "$env_dir/demo-pg.env")): $role@$1:$2/$db"
echo
for plugin in iu-cutter-v0.6 iu-cutter-v0.6-o8a; do
    "$target/release/sidecar" dry-run "$target/plugins/$plugin" \
        --source postgres --env-file "$env_dir/demo-pg.env"
    echo
done
