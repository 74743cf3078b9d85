//! `--source postgres` against a real server (see `sidecar_tests::pg`):
//! the same plans as the embedded corpus for a SELECT-only role, every
//! over-privileged role refused by name, secrets kept out of every output.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;
use sidecar_tests::pg::TestDb;
use sidecar_tests::{path_str, Outcome, Scratch};

const PASSWORD: &str = "Pw-never-printed-7f3a";

/// The grants of a role that can read the three tables and nothing else.
const SELECT_ONLY: &str = "GRANT USAGE ON SCHEMA public TO {role}; \
    GRANT SELECT ON source_document, source_version, information_unit TO {role};";

fn env_file(scratch: &Scratch, db: &TestDb, role: &str) -> PathBuf {
    let path = scratch.path().join(format!("{role}.env"));
    fs::write(&path, db.env_file(role, PASSWORD)).expect("write env file");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).expect("chmod");
    path
}

/// A fresh database with a SELECT-only role: the database, the role's
/// name and an env file for it.
fn select_only_db(scratch: &Scratch) -> (TestDb, String, PathBuf) {
    let mut db = TestDb::new();
    let role = db.role("ro", "", PASSWORD, SELECT_ONLY);
    let env = env_file(scratch, &db, &role);
    (db, role, env)
}

fn dry_run(scratch: &Scratch, plugin: &Path, source: &[&str]) -> (Outcome, PathBuf) {
    let runs = scratch.path().join("runs");
    let mut args = vec!["dry-run", path_str(plugin), "--runs-dir", path_str(&runs)];
    args.extend_from_slice(source);
    let before: Vec<PathBuf> = list(&runs);
    let out = scratch.sidecar(&args);
    let run = list(&runs).into_iter().find(|p| !before.contains(p)).expect("a new run folder");
    (out, run)
}

fn list(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir).map(|d| d.map(|e| e.expect("entry").path()).collect()).unwrap_or_default()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("json")
}

fn plans(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = list(&run.join("plan"))
        .into_iter()
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, fs::read(&p).expect("plan"))
        })
        .collect();
    files.sort();
    files
}

/// Every file under `dir`, as bytes.
fn every_file(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in list(dir) {
        if entry.is_dir() {
            out.extend(every_file(&entry));
        } else {
            out.push((entry.clone(), fs::read(&entry).expect("read")));
        }
    }
    out
}

#[test]
fn a_select_only_role_plans_exactly_what_the_embedded_corpus_plans() {
    let scratch = Scratch::new();
    let (_db, role, env) = select_only_db(&scratch);
    for plugin in ["iu-cutter-v0.6", "iu-cutter-v0.6-o8a"] {
        let dir = scratch.reference(plugin);
        let (embedded, embedded_run) = dry_run(&scratch, &dir, &[]);
        embedded.expect(0, "Completed");
        let (pg, pg_run) =
            dry_run(&scratch, &dir, &["--source", "postgres", "--env-file", path_str(&env)]);
        pg.expect(0, "Completed");
        assert_eq!(plans(&pg_run), plans(&embedded_run), "{plugin}: plans differ");

        let summary = json(&pg_run.join("summary.json"));
        let source = &summary["source"];
        assert_eq!(source["kind"], "postgres");
        assert_eq!(source["documents"], 300);
        assert!(source["location"].as_str().expect("location").contains("password ***"));
        let database = &source["database"];
        assert_eq!(database["in_recovery"], false);
        assert_eq!(database["role"], role.as_str());
        assert!(database["server_version"].as_str().is_some_and(|v| !v.is_empty()));
        assert!(database["snapshot"].as_str().is_some_and(|v| v.contains(':')));
        assert_eq!(json(&pg_run.join("run.json"))["source"]["database"], *database);

        // The password is nowhere: not in the output, not in the run folder.
        assert!(!pg.stdout.contains(PASSWORD) && !pg.stderr.contains(PASSWORD));
        for (path, bytes) in every_file(&pg_run) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "{} holds the password",
                path.display()
            );
        }
    }
}

#[test]
fn over_privileged_roles_are_refused_naming_the_privilege() {
    let scratch = Scratch::new();
    let mut db = TestDb::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let cases: &[(&str, &str, &str, &str)] = &[
        ("su", "SUPERUSER", "", "role attribute SUPERUSER"),
        ("cr", "CREATEROLE", SELECT_ONLY, "role attribute CREATEROLE"),
        ("cdb", "CREATEDB", SELECT_ONLY, "role attribute CREATEDB"),
        ("rep", "REPLICATION", SELECT_ONLY, "role attribute REPLICATION"),
        ("brls", "BYPASSRLS", SELECT_ONLY, "role attribute BYPASSRLS"),
        ("wad", "", "GRANT pg_write_all_data TO {role};", "member of pg_write_all_data"),
        ("sig", "", "GRANT pg_signal_backend TO {role};", "member of pg_signal_backend"),
        ("wsf", "", "GRANT pg_write_server_files TO {role};", "member of pg_write_server_files"),
        (
            "ins",
            "",
            "GRANT USAGE ON SCHEMA public TO {role}; GRANT SELECT, INSERT ON information_unit TO {role};",
            "INSERT privilege on table public.information_unit (via",
        ),
        (
            "col",
            "",
            "GRANT USAGE ON SCHEMA public TO {role}; GRANT UPDATE (title) ON source_document TO {role};",
            "UPDATE privilege on a column of public.source_document",
        ),
        (
            "own",
            "",
            "CREATE TABLE scratch_{role} (x int); ALTER TABLE scratch_{role} OWNER TO {role};",
            "owns relation public.scratch_",
        ),
        ("csch", "", "GRANT CREATE ON SCHEMA public TO {role};", "CREATE privilege on schema public"),
        (
            "noinh",
            "NOINHERIT",
            "CREATE ROLE {role}_w NOLOGIN; GRANT DELETE ON source_document TO {role}_w; \
             GRANT {role}_w TO {role};",
            "DELETE privilege on table public.source_document (via",
        ),
        (
            "secdef",
            "",
            "CREATE FUNCTION bump_{role}() RETURNS void LANGUAGE sql SECURITY DEFINER \
             AS 'SELECT 1'; GRANT EXECUTE ON FUNCTION bump_{role}() TO {role};",
            "may execute SECURITY DEFINER function bump_",
        ),
    ];
    for (suffix, attributes, grants, reason) in cases {
        let role = db.role(suffix, attributes, PASSWORD, grants);
        let env = env_file(&scratch, &db, &role);
        let (out, run) =
            dry_run(&scratch, &dir, &["--source", "postgres", "--env-file", path_str(&env)]);
        out.expect(3, reason);
        let state = json(&run.join("run.json"));
        assert_eq!(state["state"], "refused", "{suffix}");
        assert!(state["reason"].as_str().expect("reason").contains(reason), "{suffix}: {state:#}");
        assert!(list(&run.join("plan")).is_empty(), "{suffix}: no phase may run");
        if *suffix == "noinh" {
            db.owner.batch_execute(&format!("DROP OWNED BY {role}_w; DROP ROLE {role}_w")).ok();
        }
        if *suffix == "own" {
            db.owner.batch_execute(&format!("DROP TABLE scratch_{role}")).ok();
        }
        if *suffix == "secdef" {
            db.owner.batch_execute(&format!("DROP FUNCTION bump_{role}()")).ok();
        }
        db.owner.batch_execute(&format!("DROP OWNED BY {role}")).ok();
    }
}

#[test]
fn a_server_that_is_down_fails_the_run_with_a_truthful_run_json() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let env = scratch.path().join("down.env");
    // Port 1 on the loopback: nothing listens there.
    fs::write(
        &env,
        format!(
            "PG_HOST=127.0.0.1\nPG_PORT=1\nPG_DB=kb\nPG_USER_RO=ro\nPG_PASSWORD_RO={PASSWORD}\n"
        ),
    )
    .expect("write");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).expect("chmod");
    let (out, run) =
        dry_run(&scratch, &dir, &["--source", "postgres", "--env-file", path_str(&env)]);
    out.expect(1, "ro@127.0.0.1:1/kb (password ***, from env file");
    out.expect(1, "cannot connect");
    assert!(!out.stderr.contains(PASSWORD) && !out.stdout.contains(PASSWORD));
    let state = json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert!(state["reason"].as_str().expect("reason").contains("cannot connect"));
}

#[test]
fn a_malformed_env_file_is_a_usage_error_naming_the_line() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let env = scratch.path().join("bad.env");
    fs::write(&env, "PG_HOST=db\nPG_USER_RO ro\n").expect("write");
    let out = scratch.sidecar(&[
        "dry-run",
        path_str(&dir),
        "--source",
        "postgres",
        "--env-file",
        path_str(&env),
        "--runs-dir",
        path_str(&scratch.path().join("runs")),
    ]);
    out.expect(2, &format!("{}:2: expected KEY=VALUE", env.display()));
    assert!(list(&scratch.path().join("runs")).is_empty(), "no run folder for a usage error");
}

/// The statements of `tests/sql/bypasses.txt`.
fn bypasses() -> Vec<String> {
    let path = sidecar_tests::workspace_root().join("tests/sql/bypasses.txt");
    fs::read_to_string(path)
        .expect("bypasses.txt")
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Everything a bypass could change, as one string: every row of the three
/// tables, the relations of `public` with their privileges and comments,
/// the large objects, and the server settings in `postgresql.auto.conf`.
fn checksum(db: &mut TestDb) -> String {
    let row = db
        .owner
        .query_one(
            "SELECT md5(concat_ws('|', \
               (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM source_document t), \
               (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM source_version t), \
               (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM information_unit t), \
               (SELECT string_agg(relname || ':' || coalesce(relacl::text, '') || ':' || \
                  coalesce(obj_description(oid, 'pg_class'), ''), ',' ORDER BY relname) \
                FROM pg_class WHERE relnamespace = 'public'::regnamespace), \
               (SELECT count(*) FROM pg_largeobject_metadata), \
               (SELECT string_agg(name || '=' || setting, ',' ORDER BY name) \
                FROM pg_settings WHERE source = 'configuration file')))",
            &[],
        )
        .expect("checksum");
    row.get(0)
}

#[test]
fn every_bypass_is_refused_by_the_gate_and_logged_and_the_database_is_unchanged() {
    let scratch = Scratch::new();
    let (mut db, _, env) = select_only_db(&scratch);
    let dir = scratch.test_plugin("queries");
    let before = checksum(&mut db);

    let source = ["--source", "postgres", "--env-file", path_str(&env), "--batch-size", "1000"];
    let (out, run) = dry_run(&scratch, &dir, &source);
    out.expect(0, "Completed");

    let log = sidecar_tests::query_log(&run);
    let bypasses = bypasses();
    assert!(bypasses.len() >= 50, "the checklist is all there");
    for sql in &bypasses {
        let entry = log.iter().find(|e| e["sql"] == sql.as_str()).expect("every bypass is logged");
        assert_eq!(entry["outcome"], "refused", "{entry:#}");
        assert_eq!(entry["phase"], "discover");
        assert_eq!(entry["batch"], 0);
        let error = entry["error"].as_str().expect("error");
        assert!(error.starts_with("refused by the statement gate: "), "{entry:#}");
        assert_eq!(entry["rows"], 0);
    }
    // What a plugin may do: a parameterised read on the run's snapshot, and
    // time in the database.
    let read = log
        .iter()
        .find(|e| e["sql"].as_str().is_some_and(|s| s.starts_with("SELECT count(*)")))
        .expect("the plugin's read");
    assert_eq!(read["outcome"], "ok", "{read:#}");
    assert_eq!(read["rows"], 1);
    assert_eq!(read["params"][0], "1");
    assert!(read["micros"].as_u64().is_some());
    let summary = json(&run.join("summary.json"));
    let discover = &summary["phases"][0];
    assert_eq!(discover["counts"]["documents_from_here"], 300, "{discover:#}");
    let n = bypasses.len() as u64;
    assert_eq!(summary["queries"]["statements"], n + 2);
    assert_eq!(summary["queries"]["refused"], n);
    assert_eq!(summary["queries"]["failed"], 0);
    assert_eq!(summary["queries"]["rows"], 2);

    assert_eq!(checksum(&mut db), before, "the database changed");
}

/// What the server does with a bypass when the gate is off.
#[derive(Debug, Clone, Copy)]
enum Server {
    /// Rejects it with this SQLSTATE.
    Rejects(&'static str),
    /// Accepts it; the transaction is still the run's read-only one and
    /// nothing outlives its rollback.
    Contains,
    /// Accepts it, and the host's after-phase check fails the run with a
    /// reason containing this text.
    Detects(&'static str),
    /// Ends the backend: the client reads 57P01, or, when the socket closes
    /// before the message is read, a closed connection (a race on the
    /// server's side, seen in CI).
    EndsTheBackend,
}

/// The server's own layers against every bypass, gate off: what each one
/// does is asserted line by line, so a change in the server or in the
/// session the host opens cannot go unnoticed.
#[test]
fn with_the_gate_off_the_role_and_the_snapshot_reject_or_contain_every_bypass() {
    use sidecar::pg::query::QuerySession;
    use Server::{Contains, Detects, EndsTheBackend, Rejects};

    let scratch = Scratch::new();
    let (mut db, _, env) = select_only_db(&scratch);
    let target = sidecar::pg::Target::from_env_file(&env).expect("env");
    let before = checksum(&mut db);
    let expected: &[(&str, Server)] = &[
        ("SET default_transaction_read_only", Contains),
        ("RESET default_transaction_read_only", Contains),
        ("SELECT set_config('default_transaction_read_only'", Contains),
        ("SET SESSION CHARACTERISTICS", Contains),
        ("BEGIN READ WRITE", Rejects("25001")),
        ("START TRANSACTION READ WRITE", Rejects("25001")),
        ("SET transaction_read_only = off", Rejects("25001")),
        ("COMMIT", Detects("transaction was ended")),
        ("ROLLBACK", Detects("transaction was ended")),
        ("SELECT lo_create", Detects("a transaction id")),
        ("SELECT lo_from_bytea", Detects("a transaction id")),
        ("SELECT lo_import", Rejects("42501")),
        ("SET ROLE", Rejects("42501")),
        ("SELECT dblink_exec", Rejects("42883")),
        ("COPY source_document TO", Rejects("42501")),
        ("COPY (SELECT 1) TO PROGRAM", Rejects("42501")),
        ("ALTER SYSTEM", Rejects("25001")),
        // Accepted with a warning, and skipped: the role does not own it.
        ("ANALYZE", Contains),
        ("VACUUM", Rejects("25001")),
        ("REINDEX", Rejects("42501")),
        ("CHECKPOINT", Rejects("42501")),
        ("SELECT pg_reload_conf", Rejects("42501")),
        ("SELECT pg_switch_wal", Rejects("42501")),
        ("SELECT pg_stat_reset", Rejects("42501")),
        // A role may signal only its own backends; this one ends itself.
        ("SELECT pg_terminate_backend", EndsTheBackend),
        ("SELECT pg_advisory_lock", Detects("advisory lock")),
        // Released by the rollback, but counted while the phase runs.
        ("SELECT pg_try_advisory_xact_lock", Detects("advisory lock")),
        // Notifications are delivered at commit; the run never commits.
        ("NOTIFY", Contains),
        ("SELECT pg_notify", Contains),
        ("LISTEN", Contains),
        ("LOCK TABLE", Rejects("42501")),
        ("PREPARE TRANSACTION", Rejects("55000")),
        ("INSERT", Rejects("25006")),
        ("UPDATE", Rejects("25006")),
        ("DELETE", Rejects("25006")),
        ("TRUNCATE", Rejects("25006")),
        ("MERGE", Rejects("25006")),
        ("WITH d AS (DELETE", Rejects("25006")),
        ("SELECT * FROM source_document FOR UPDATE", Rejects("25006")),
        ("SELECT 1 AS a INTO", Rejects("25006")),
        ("CREATE TABLE", Rejects("25006")),
        ("CREATE TEMP TABLE", Rejects("25006")),
        ("DROP TABLE", Rejects("25006")),
        ("COMMENT ON", Rejects("25006")),
        ("GRANT", Rejects("25006")),
        ("DO $$", Rejects("25006")),
        ("EXPLAIN ANALYZE DELETE", Rejects("25006")),
        ("SELECT txid_current", Detects("a transaction id")),
        ("SELECT query_to_xml", Rejects("0A000")),
        // The extended protocol takes one statement.
        ("SELECT 1; DELETE", Rejects("42601")),
        // A holdable cursor outlives only a commit.
        ("DECLARE", Contains),
        ("DISCARD ALL", Rejects("25001")),
    ];
    let bypasses = bypasses();
    assert_eq!(bypasses.len(), expected.len(), "one expectation per line of bypasses.txt");
    for (sql, (prefix, server)) in bypasses.iter().zip(expected) {
        assert!(sql.starts_with(prefix), "bypasses.txt and this table are out of step at {sql}");
        let mut session = QuerySession::open(
            &target,
            "sidecar-gate-off",
            std::time::Duration::from_secs(10),
            None,
        )
        .expect("open a session as the read-only role");
        let result = session.execute_ungated(sql);
        match (server, result) {
            (Rejects(code), Err(err)) => assert_eq!(err.sqlstate(), Some(*code), "{sql}: {err}"),
            (EndsTheBackend, Err(err)) => assert!(
                err.sqlstate() == Some("57P01") || err.to_string().contains("connection closed"),
                "{sql}: {err}"
            ),
            (Contains, Ok(_)) => {
                session.check().unwrap_or_else(|e| panic!("{sql}: {e}"));
                session.finish();
            }
            (Detects(reason), Ok(_)) => {
                let err = session.check().expect_err(sql);
                assert!(err.contains(reason), "{sql}: {err}");
            }
            (expected, got) => panic!("{sql}: expected {expected:?}, got {got:?}"),
        }
    }
    assert_eq!(checksum(&mut db), before, "the database changed");
}

#[test]
fn a_statement_timeout_fails_the_run_and_names_it() {
    let scratch = Scratch::new();
    let (_db, _, env) = select_only_db(&scratch);
    let dir = scratch.test_plugin("queries");
    let source =
        ["--source", "postgres", "--env-file", path_str(&env), "--statement-timeout", "150ms"];
    let (out, run) = dry_run(&scratch, &dir, &source);
    out.expect(1, "statement timeout");
    let state = json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert_eq!(state["phase"], "discover");
    assert_eq!(state["batch"], 0);
    let reason = state["reason"].as_str().expect("reason");
    assert!(reason.contains("57014") && reason.contains("statement timeout"), "{reason}");
    let log = sidecar_tests::query_log(&run);
    let sleep = log.iter().find(|e| e["sql"] == "SELECT pg_sleep(0.2)").expect("logged");
    assert_eq!(sleep["outcome"], "failed");
    assert_eq!(sleep["sqlstate"], "57014");
    assert!(list(&run.join("plan")).iter().all(|p| p.to_string_lossy().ends_with(".partial")));
}

#[test]
fn a_backend_terminated_mid_run_fails_the_run_truthfully() {
    let scratch = Scratch::new();
    let (mut db, _, env) = select_only_db(&scratch);
    let dir = scratch.test_plugin("queries");
    let runs = scratch.path().join("runs");
    // 30 batches of 10 documents, each at least 0.2 s in the database.
    let child = std::process::Command::new(sidecar_tests::sidecar_bin())
        .args(["dry-run", path_str(&dir), "--runs-dir", path_str(&runs)])
        .args(["--source", "postgres", "--env-file", path_str(&env), "--batch-size", "10"])
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    // Both of the run's connections, once it is running a later batch.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let terminated = loop {
        assert!(std::time::Instant::now() < deadline, "the run never reached batch 2");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let running = list(&runs)
            .first()
            .and_then(|run| fs::read_to_string(run.join("run.json")).ok())
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .is_some_and(|state| state["batch"].as_u64().is_some_and(|b| b >= 2));
        if !running {
            continue;
        }
        let rows = db
            .owner
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name LIKE 'sidecar-%'",
                &[],
            )
            .expect("terminate");
        break rows.len();
    };
    assert_eq!(terminated, 2, "the source and the query session");
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let run = list(&runs).into_iter().next().expect("run folder");
    let state = json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    let reason = state["reason"].as_str().expect("reason");
    assert!(reason.contains("terminating connection") || reason.contains("connection"), "{reason}");
    assert!(state["batch"].as_u64().is_some_and(|b| b >= 2), "{state:#}");
    assert!(!stderr.contains(PASSWORD));
}

#[test]
fn both_sides_of_a_comparison_read_one_snapshot_whatever_is_committed_meanwhile() {
    let scratch = Scratch::new();
    let (mut db, _, env) = select_only_db(&scratch);
    // A queries from its first batch, B only from its sixth, 0.1 s a batch
    // apart: rows are inserted after A's query session opened and before
    // B's did.
    let a = scratch.test_plugin("snapshot_reader");
    let b = scratch.test_plugin("snapshot_reader_late");
    let runs = scratch.path().join("runs");
    let child = std::process::Command::new(sidecar_tests::sidecar_bin())
        .args(["compare", path_str(&a), path_str(&b), "--runs-dir", path_str(&runs)])
        .args(["--source", "postgres", "--env-file", path_str(&env), "--batch-size", "10"])
        .current_dir(scratch.path())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let sessions = |db: &mut TestDb, side: &str| -> i64 {
        db.owner
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name LIKE $1",
                &[&format!("sidecar-%/{side}")],
            )
            .expect("pg_stat_activity")
            .get(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while sessions(&mut db, "a") == 0 {
        assert!(std::time::Instant::now() < deadline, "A never queried");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(sessions(&mut db, "b"), 0, "B queried before the insert");
    db.owner
        .batch_execute(
            "INSERT INTO source_document (id, kb_path, title, status, updated_at) \
             SELECT 900000 + n, 'kb/late/' || n || '.md', 'late', 'active', now() \
             FROM generate_series(1, 5) AS n",
        )
        .expect("insert");
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The sides differ only in how many batches they counted.
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let run = list(&runs).into_iter().next().expect("comparison folder");
    let comparison = json(&run.join("compare.json"));
    let snapshot = comparison["source"]["database"]["snapshot_id"].as_str().expect("snapshot id");
    assert!(!snapshot.is_empty());
    for side in ["a", "b"] {
        let summary = json(&run.join(side).join("summary.json"));
        assert_eq!(summary["verdict"], "completed", "{side}: {summary:#}");
        assert_eq!(summary["documents"], 300, "{side} was fed the snapshot's documents");
        assert_eq!(summary["source"]["database"]["snapshot_id"], snapshot, "{side}");
        // Every query of the side saw the snapshot's 300 documents, not 305.
        let log = sidecar_tests::query_log(&run.join(side));
        let batches = if side == "a" { 30 } else { 25 };
        assert_eq!(log.len(), batches, "{side}: {log:#?}");
        assert!(log.iter().all(|q| q["outcome"] == "ok" && q["rows"] == 300), "{side}: {log:#?}");
    }
    // The rows were committed: a new snapshot sees them.
    let now: i64 =
        db.owner.query_one("SELECT count(*) FROM source_document", &[]).expect("count").get(0);
    assert_eq!(now, 305);
    assert_eq!(sessions(&mut db, "%"), 0, "the comparison left a session open");
}
