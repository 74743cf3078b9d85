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
    let mut db = TestDb::new();
    let role = db.role("ro", "", PASSWORD, SELECT_ONLY);
    let env = env_file(&scratch, &db, &role);
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
