//! Layer 4: the statement gate every plugin statement passes before it
//! reaches the server.
//!
//! The role (layer 1) and the read-only snapshot (layers 2 and 3) are what
//! make writes impossible; the gate makes the attempts *visible and cheap*:
//! a statement that is not a plain read is refused in the host, with a
//! reason, and never costs the server a parse. It also closes the holes the
//! server layers leave open on purpose, because they are not writes:
//! `SET` and `set_config` (B1, B2, B4, B5), transaction control (B3),
//! advisory locks that outlive a rollback (B14), `NOTIFY`/`LISTEN` (B15),
//! signals (B13) and functions that run SQL given as a string.
//!
//! What passes is one statement that is a query: `SELECT`, `VALUES`,
//! `TABLE`, or `WITH … SELECT` whose parts are all queries, without
//! `FOR UPDATE`/`FOR SHARE`, without `SELECT … INTO`, and calling none of
//! the functions in [`REFUSED_FUNCTIONS`]. Anything the parser does not
//! understand is refused: the gate fails closed.
//!
//! The parser is `sqlparser` with its PostgreSQL dialect, not PostgreSQL's
//! own (`pg_query`): see ARCHITECTURE.md for why. The two can disagree on
//! exotic syntax, which is why the gate is never the only layer, and why
//! the host sends a passed statement as the body of a `DECLARE … CURSOR`
//! over the extended protocol: the server then refuses more than one
//! statement and anything but a query on its own.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, ObjectName, Query, Select, Statement, TableFactor, Visit, Visitor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// A statement the gate refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by the statement gate: {reason}")]
pub struct Refused {
    /// One line naming what was refused.
    pub reason: String,
}

/// Functions whose effects reach outside the query, by unqualified name (a
/// schema-qualified call is matched by its last part). A name ending in `*`
/// covers every function it starts.
pub const REFUSED_FUNCTIONS: &[(&str, &str)] = &[
    ("set_config", "changes a setting (e.g. default_transaction_read_only)"),
    ("nextval", "advances a sequence"),
    ("setval", "sets a sequence"),
    ("pg_advisory_*", "takes an advisory lock, which outlives the transaction"),
    ("pg_try_advisory_*", "takes an advisory lock, which outlives the transaction"),
    ("lo_*", "works on large objects, writable in a read-only transaction before PostgreSQL 16"),
    ("loread", "works on large objects"),
    ("lowrite", "writes a large object"),
    ("pg_notify", "sends a notification"),
    ("pg_terminate_backend", "signals another session"),
    ("pg_cancel_backend", "signals another session"),
    ("pg_reload_conf", "reloads the server's configuration"),
    ("pg_rotate_logfile", "rotates the server's log"),
    ("pg_switch_wal", "switches the write-ahead log"),
    ("pg_create_restore_point", "writes to the write-ahead log"),
    ("pg_promote", "promotes a standby"),
    ("pg_wal_replay_*", "pauses or resumes recovery"),
    ("pg_backup_*", "starts or stops a backup"),
    ("pg_stat_reset*", "resets statistics"),
    ("pg_log_backend_memory_contexts", "writes to the server's log"),
    ("pg_logical_emit_message", "writes to the write-ahead log"),
    ("pg_replication_origin_*", "changes replication state"),
    ("pg_create_physical_replication_slot", "creates a replication slot"),
    ("pg_create_logical_replication_slot", "creates a replication slot"),
    ("pg_drop_replication_slot", "drops a replication slot"),
    ("pg_copy_*_replication_slot", "creates a replication slot"),
    ("pg_logical_slot_*", "consumes a replication slot"),
    ("pg_replication_slot_advance", "advances a replication slot"),
    ("pg_read_file", "reads a server file"),
    ("pg_read_binary_file", "reads a server file"),
    ("pg_ls_*", "lists server directories"),
    ("pg_stat_file", "reads server file metadata"),
    ("pg_file_*", "writes server files (adminpack)"),
    ("pg_export_snapshot", "exports a snapshot (the host's)"),
    ("txid_current", "assigns a transaction id"),
    ("pg_current_xact_id", "assigns a transaction id"),
    ("dblink*", "opens another connection, outside the read-only transaction"),
    ("query_to_xml*", "runs SQL given as a string"),
    ("query_to_xmlschema", "runs SQL given as a string"),
    ("cursor_to_xml*", "reads a cursor the host owns"),
    ("table_to_xml*", "runs SQL built from a string"),
    ("schema_to_xml*", "runs SQL built from a string"),
    ("database_to_xml*", "runs SQL built from a string"),
    ("ts_stat", "runs SQL given as a string"),
    ("binary_upgrade_*", "changes catalog state"),
];

/// Checks `sql`; `Ok` means it may be sent to the server as a cursor's
/// query.
pub fn check(sql: &str) -> Result<(), Refused> {
    let refuse = |reason: String| Err(Refused { reason });
    let statements = match Parser::parse_sql(&PostgreSqlDialect {}, &as_select(sql)) {
        Ok(statements) => statements,
        Err(_) if !starts_like_a_read(sql) => return refuse(not_a_read(sql)),
        Err(err) => return refuse(format!("cannot parse the statement ({err})")),
    };
    let statement = match statements.as_slice() {
        [one] => one,
        [] => return refuse("the statement is empty".to_owned()),
        many => return refuse(format!("{} statements; send one at a time", many.len())),
    };
    if !matches!(statement, Statement::Query(_)) {
        return refuse(not_a_read(sql));
    }
    match statement.visit(&mut Inspector { top: true }) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(reason) => refuse(reason),
    }
}

/// `TABLE name …` is `SELECT * FROM name …` in PostgreSQL; the parser does
/// not know the short form, so the gate checks the long one. The server
/// still receives the statement as written.
fn as_select(sql: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = sql.trim_start();
    match trimmed.get(..5) {
        Some(word) if word.eq_ignore_ascii_case("table") => {}
        _ => return sql.into(),
    }
    match trimmed[5..].chars().next() {
        Some(c) if c.is_whitespace() => format!("SELECT * FROM{}", &trimmed[5..]).into(),
        _ => sql.into(),
    }
}

/// Whether the statement's first word can begin a query, so that a parse
/// error is worth reporting as such.
fn starts_like_a_read(sql: &str) -> bool {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or("");
    ["select", "values", "table", "with", ""].iter().any(|w| first.eq_ignore_ascii_case(w))
}

/// The reason for a statement that is not a query, naming its first words.
fn not_a_read(sql: &str) -> String {
    let words: Vec<&str> = sql.split_whitespace().take(2).collect();
    let first = words.first().map_or(String::new(), |w| w.to_ascii_uppercase());
    let kind = match first.as_str() {
        "BEGIN" | "START" | "COMMIT" | "END" | "ROLLBACK" | "ABORT" | "SAVEPOINT" | "RELEASE"
        | "PREPARE" => format!("`{first}`: transaction control belongs to the host"),
        "SET" | "RESET" => format!("`{first}`: settings belong to the host"),
        _ => format!("`{}` is not a read", words.join(" ").to_ascii_uppercase()),
    };
    format!("{kind}; only SELECT, VALUES, TABLE and WITH … SELECT pass")
}

/// Walks a query for the parts that are not reads.
struct Inspector {
    /// The next statement visited is the query itself.
    top: bool,
}

impl Visitor for Inspector {
    type Break = String;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<String> {
        if std::mem::take(&mut self.top) {
            return ControlFlow::Continue(());
        }
        let sql = statement.to_string();
        let kind = sql.split_whitespace().next().unwrap_or_default().to_ascii_uppercase();
        ControlFlow::Break(format!("a data-modifying `{kind}` inside the query"))
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<String> {
        if !query.locks.is_empty() {
            return ControlFlow::Break("`FOR UPDATE`/`FOR SHARE` locks rows".to_owned());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<String> {
        if select.into.is_some() {
            return ControlFlow::Break("`SELECT … INTO` creates a table".to_owned());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<String> {
        match expr {
            Expr::Function(function) => refused_function(&function.name),
            _ => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_table_factor(&mut self, factor: &TableFactor) -> ControlFlow<String> {
        match factor {
            TableFactor::Function { name, .. } => refused_function(name),
            TableFactor::Table { name, args: Some(_), .. } => refused_function(name),
            _ => ControlFlow::Continue(()),
        }
    }
}

fn refused_function(name: &ObjectName) -> ControlFlow<String> {
    let Some(last) = name.0.last().and_then(|part| part.as_ident()) else {
        return ControlFlow::Continue(());
    };
    let called = last.value.to_ascii_lowercase();
    for (pattern, why) in REFUSED_FUNCTIONS {
        let hit = match pattern.strip_suffix('*') {
            Some(prefix) => called.starts_with(prefix),
            None => called == *pattern,
        };
        if hit {
            return ControlFlow::Break(format!("function `{called}` {why}"));
        }
    }
    ControlFlow::Continue(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn refused(sql: &str, reason: &str) {
        match check(sql) {
            Ok(()) => panic!("the gate passed {sql:?}"),
            Err(err) => assert!(
                err.reason.contains(reason),
                "{sql:?} was refused for {:?}, expected {reason:?}",
                err.reason
            ),
        }
    }

    #[test]
    fn plain_reads_pass() {
        for sql in [
            "SELECT 1",
            "select id, title from source_document where status = $1 order by id limit 10",
            "VALUES (1, 'a'), (2, 'b')",
            "TABLE source_document",
            "table\n  public.source_document",
            "WITH v AS (SELECT document_id, max(revision) AS r FROM source_version GROUP BY 1) \
             SELECT d.id, v.r FROM source_document d JOIN v ON v.document_id = d.id",
            "SELECT count(*) FROM information_unit WHERE body_sha256 = ANY($1)",
            "SELECT pg_sleep(0.01)",
            "SELECT 1 /* nested /* comment */ ; DELETE FROM t */",
            "SELECT $$a; DELETE FROM t$$",
            "SELECT current_setting('transaction_read_only')",
            "SELECT * FROM generate_series(1, 3) AS g(n)",
            "SELECT 1;",
        ] {
            assert_eq!(check(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn more_than_one_statement_is_refused() {
        refused("SELECT 1; DELETE FROM source_document", "2 statements");
        refused("TABLE t; DELETE FROM t", "2 statements");
        refused("", "empty");
        refused("   -- nothing", "empty");
    }

    #[test]
    fn statements_that_are_not_reads_are_refused_with_their_kind() {
        for (sql, reason) in [
            ("INSERT INTO source_document (id) VALUES (1)", "`INSERT INTO` is not a read"),
            ("UPDATE information_unit SET lifecycle = 'retired'", "`UPDATE INFORMATION_UNIT`"),
            ("DELETE FROM source_version", "`DELETE FROM`"),
            ("TRUNCATE information_unit", "`TRUNCATE INFORMATION_UNIT`"),
            ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", "`MERGE INTO`"),
            ("CREATE TEMP TABLE x (a int)", "`CREATE TEMP`"),
            ("DROP TABLE source_document", "`DROP TABLE`"),
            ("ALTER SYSTEM SET work_mem = '1MB'", "`ALTER SYSTEM`"),
            ("COPY source_document TO '/tmp/x'", "`COPY SOURCE_DOCUMENT`"),
            ("COPY (SELECT 1) TO PROGRAM 'true'", "`COPY (SELECT`"),
            ("LOCK TABLE source_document IN ACCESS EXCLUSIVE MODE", "`LOCK TABLE`"),
            ("NOTIFY sidecar, 'x'", "`NOTIFY SIDECAR,`"),
            ("LISTEN sidecar", "`LISTEN SIDECAR`"),
            ("EXPLAIN ANALYZE DELETE FROM t", "`EXPLAIN ANALYZE`"),
            ("ANALYZE source_document", "`ANALYZE SOURCE_DOCUMENT`"),
            ("VACUUM source_document", "not a read"),
            ("CHECKPOINT", "not a read"),
            ("GRANT SELECT ON t TO PUBLIC", "`GRANT SELECT`"),
            ("DO $$ BEGIN DELETE FROM t; END $$", "`DO $$` is not a read"),
            ("SET ROLE writer", "settings belong to the host"),
            ("SET default_transaction_read_only = off", "settings belong to the host"),
            ("RESET default_transaction_read_only", "settings belong to the host"),
            ("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", "settings belong"),
            ("SET transaction_read_only = off", "settings belong to the host"),
            ("BEGIN READ WRITE", "transaction control belongs to the host"),
            ("START TRANSACTION READ WRITE", "transaction control"),
            ("COMMIT", "transaction control"),
            ("ROLLBACK", "transaction control"),
            ("SAVEPOINT s", "transaction control"),
            ("PREPARE TRANSACTION 'x'", "transaction control"),
            ("DECLARE c CURSOR FOR SELECT 1", "`DECLARE C` is not a read"),
            ("DISCARD ALL", "not a read"),
            ("CALL p()", "`CALL P()`"),
        ] {
            refused(sql, reason);
        }
    }

    #[test]
    fn queries_that_write_or_lock_are_refused() {
        refused(
            "WITH d AS (DELETE FROM information_unit RETURNING 1) SELECT count(*) FROM d",
            "data-modifying `DELETE` inside the query",
        );
        refused(
            "WITH i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM i",
            "data-modifying `INSERT`",
        );
        refused("SELECT * FROM source_document FOR UPDATE", "locks rows");
        refused("SELECT * FROM source_document FOR SHARE", "locks rows");
        refused("SELECT * FROM (SELECT * FROM t FOR UPDATE) s", "locks rows");
        refused("SELECT 1 INTO new_table", "creates a table");
    }

    #[test]
    fn functions_with_effects_outside_the_query_are_refused_wherever_they_are_called() {
        for (sql, function) in [
            ("SELECT set_config('default_transaction_read_only', 'off', false)", "set_config"),
            ("SELECT pg_catalog.set_config('a', 'b', false)", "set_config"),
            ("SELECT SET_CONFIG('a', 'b', false)", "set_config"),
            ("SELECT nextval('s')", "nextval"),
            ("SELECT setval('s', 1)", "setval"),
            ("SELECT pg_advisory_lock(42)", "pg_advisory_lock"),
            ("SELECT pg_try_advisory_xact_lock(42)", "pg_try_advisory_xact_lock"),
            ("SELECT lo_create(0)", "lo_create"),
            ("SELECT lo_import('/etc/passwd')", "lo_import"),
            ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
            ("SELECT pg_notify('sidecar', 'x')", "pg_notify"),
            ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
            ("SELECT pg_cancel_backend(1)", "pg_cancel_backend"),
            ("SELECT pg_reload_conf()", "pg_reload_conf"),
            ("SELECT pg_switch_wal()", "pg_switch_wal"),
            ("SELECT pg_stat_reset()", "pg_stat_reset"),
            ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
            ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir"),
            ("SELECT txid_current()", "txid_current"),
            ("SELECT pg_current_xact_id()", "pg_current_xact_id"),
            ("SELECT dblink_exec('dbname=x', 'DELETE FROM t')", "dblink_exec"),
            ("SELECT * FROM dblink('dbname=x', 'SELECT 1') AS t(a int)", "dblink"),
            ("SELECT query_to_xml('DELETE FROM t', true, true, '')", "query_to_xml"),
            ("SELECT * FROM ts_stat('SELECT v FROM t')", "ts_stat"),
            ("SELECT d.id FROM source_document d, LATERAL pg_advisory_lock(d.id) l", "pg_advisory"),
            ("SELECT id FROM t WHERE id IN (SELECT pg_advisory_lock(1))", "pg_advisory_lock"),
            ("SELECT CASE WHEN true THEN pg_notify('c', '') END", "pg_notify"),
            ("WITH x AS (SELECT lo_create(0)) SELECT * FROM x", "lo_create"),
            ("VALUES (set_config('a', 'b', false))", "set_config"),
        ] {
            refused(sql, &format!("function `{function}"));
        }
    }
}
