//! `make bench`: wall-clock figures for the release `sidecar` binary, each next
//! to a well-known peer measured in the same run.
//!
//! 1. Verify throughput: `sidecar verify` against `sha256sum -c` on a sealed,
//!    deterministic 512 MiB tree of a few hundred files (target: sidecar >= 4x
//!    faster).
//! 2. Inspect cold start: `sidecar inspect` of a reference plugin (verify, spawn
//!    a worker, load, describe) against `python3 -S -c pass` (target: <= 0.25x
//!    of python's time).
//! 3. Dry run on a generated corpus against `bare-cut`, the least a cutter
//!    must do (target <= 2x), and peak memory at 100 MB and 1 GB (<= 1.2x).
//! 4. The compatibility suite on the staged reference version (14 checks,
//!    two dry runs of the embedded corpus side by side, three workers)
//!    against two `dry-run`s of it one after the other, the least the suite
//!    could do by hand (no target; the suite should cost no more).
//! 5. PostgreSQL, when a server is reachable through the tests' settings
//!    (`make bench` starts a throwaway one with pg_virtualenv, as `make test`
//!    does): a dry run with `--source postgres` on ~100k generated documents
//!    against `psql \copy` of the same rows as the same SELECT-only role
//!    (target <= 1.5x), and peak memory at ~10k and ~100k documents (<= 1.2x).
//!
//! Absolute times mean little on a shared, noisy machine, so the peer runs in
//! the same process, on the same page cache, interleaved with the subject in
//! every round, and the figures are medians. The ratio is the number to read.
//! Nothing is asserted about time; a command that fails aborts the bench.
//!
//! Needs `make plugins` first. Rounds for the verify bench: SIDECAR_BENCH_RUNS
//! (default 5). The tree is kept in target/bench-tree and reused. Arguments
//! after `--` name the sections to run (`verify`, `inspect`, `dry-run`,
//! `compare`, `compat`, `postgres`); none runs them all.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use postgres::NoTls;
use serde_json::Value;
use sidecar::source::{parse_source_spec, DatabaseOptions, Source};
use sidecar_tests::pg::{try_admin_config, TestDb};

const TREE_BYTES: u64 = 512 << 20;
const MIB: u64 = 1 << 20;
const KIB: u64 = 1 << 10;
/// Bump when the tree layout or content generator changes.
const TREE_SPEC: &str = "bench-tree v2: 512 MiB, xorshift64*";
const INSPECT_ROUNDS: usize = 21;
const WARMUPS: usize = 2;

fn main() {
    let root = sidecar_tests::workspace_root();
    let target = sidecar_tests::target_dir();
    let sidecar = sidecar_tests::sidecar_bin();
    let plugin = sidecar_tests::reference_plugin("iu-cutter-v0.6");
    let runs: usize = match std::env::var("SIDECAR_BENCH_RUNS") {
        Ok(v) => v.parse().expect("SIDECAR_BENCH_RUNS must be a positive integer"),
        Err(_) => 5,
    };
    assert!(runs > 0, "SIDECAR_BENCH_RUNS must be at least 1");

    // `cargo bench -p sidecar-tests --bench cli -- NAME...` runs only the
    // named sections (verify, inspect, dry-run, compare, compat, postgres); cargo itself
    // passes `--bench`.
    let only: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let verify = wanted("verify").then(|| bench_verify(&sidecar, &target.join("bench-tree"), runs));
    let inspect = wanted("inspect").then(|| bench_inspect(&sidecar, &plugin, &root));
    let dry = wanted("dry-run").then(|| bench_dry_run(&sidecar, &target, 3));
    let compare = wanted("compare").then(|| bench_compare(&sidecar, &target, 3));
    let compat = wanted("compat").then(|| bench_compat(&sidecar, &target, 11));
    let pg = wanted("postgres").then(|| bench_postgres(&sidecar, &target, 3)).flatten();

    println!();
    if let Some(verify) = verify {
        let (s, p) = (verify.0.as_secs_f64(), verify.1.as_secs_f64());
        let mb_s = |secs: f64| TREE_BYTES as f64 / 1e6 / secs;
        summary(
            "verify 512 MiB tree",
            format!("sidecar {s:.2} s ({:.0} MB/s)", mb_s(s)),
            format!("sha256sum -c {p:.2} s ({:.0} MB/s)", mb_s(p)),
            format!("ratio {:.1}x  (target >= 4x)", p / s),
        );
    }
    if let Some(inspect) = inspect {
        let (s, p) = (ms(inspect.0), ms(inspect.1));
        summary(
            "inspect cold start",
            format!("sidecar {s:.1} ms"),
            format!("python3 -S {p:.1} ms"),
            format!("ratio {:.2}x (target <= 0.25x)", s / p),
        );
    }
    if let Some(dry) = dry {
        let (s, p) = (dry.speed.0.as_secs_f64(), dry.speed.1.as_secs_f64());
        summary(
            "dry-run generated:100M",
            format!("sidecar {s:.2} s"),
            format!("bare parse+hash {p:.2} s"),
            format!("ratio {:.2}x (target <= 2x)", s / p),
        );
        let (small, large) = dry.rss_kib;
        summary(
            "dry-run peak RSS",
            format!("100M {:.1} MiB", small as f64 / 1024.0),
            format!("1G {:.1} MiB", large as f64 / 1024.0),
            format!("ratio {:.2}x (target <= 1.2x)", large as f64 / small as f64),
        );
    }
    if let Some((s, p)) = compare {
        let (s, p) = (s.as_secs_f64(), p.as_secs_f64());
        summary(
            "compare generated:100M",
            format!("sidecar compare {s:.2} s"),
            format!("one dry-run {p:.2} s"),
            format!("ratio {:.2}x (target <= 1.3x)", s / p),
        );
    }
    if let Some((s, p)) = compat {
        summary(
            "compat (14 checks)",
            format!("sidecar compat {:.0} ms", ms(s)),
            format!("two dry-runs {:.0} ms", ms(p)),
            format!("ratio {:.2}x (no target)", ms(s) / ms(p)),
        );
    }
    if let Some(pg) = pg {
        let (s, p) = (pg.speed.0.as_secs_f64(), pg.speed.1.as_secs_f64());
        summary(
            &format!("dry-run postgres {} docs", thousands(pg.documents.1)),
            format!("sidecar {s:.2} s"),
            format!("psql \\copy {p:.2} s"),
            format!("ratio {:.2}x (target <= 1.5x)", s / p),
        );
        let (small, large) = pg.rss_kib;
        summary(
            "dry-run postgres peak RSS",
            format!("{} docs {:.1} MiB", thousands(pg.documents.0), small as f64 / 1024.0),
            format!("{} docs {:.1} MiB", thousands(pg.documents.1), large as f64 / 1024.0),
            format!("ratio {:.2}x (target <= 1.2x)", large as f64 / small as f64),
        );
    }
}

/// What the dry-run bench measured.
struct DryRunFigures {
    /// Medians of a 100 MB dry run and of the bare peer on the same corpus.
    speed: (Duration, Duration),
    /// Peak RSS (host + worker, KiB) of a 100 MB and of a 1 GB dry run.
    rss_kib: (u64, u64),
}

/// The o8a plugin (the one that parses Markdown, like the peer) on a
/// generated corpus, against `bare-cut` generating and parsing the same
/// documents; then peak memory at 100 MB and 1 GB, which must stay flat.
fn bench_dry_run(sidecar: &Path, target: &Path, rounds: usize) -> DryRunFigures {
    let plugin = sidecar_tests::reference_plugin("iu-cutter-v0.6-o8a");
    let bare = target.join("release/bare-cut");
    assert!(
        bare.exists(),
        "{} is missing: `cargo build --release -p sidecar-tests`",
        bare.display()
    );
    let runs_dir = target.join("bench-runs");
    let dry_run = |size: &str| {
        let (elapsed, summary) =
            timed_dry_run(sidecar, &plugin, &runs_dir, &["--source", &format!("generated:{size}")]);
        (elapsed, peak_rss_kib(&summary))
    };
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let (elapsed, _) = dry_run("100M");
        ours.push(elapsed);
        peer.push(run(Command::new(&bare).arg("100M")));
        println!(
            "dry-run: round {round}/{rounds}  sidecar {:.2} s  bare {:.2} s",
            ours[round - 1].as_secs_f64(),
            peer[round - 1].as_secs_f64()
        );
    }
    let (_, small) = dry_run("100M");
    let (_, large) = dry_run("1G");
    let _ = fs::remove_dir_all(&runs_dir);
    DryRunFigures { speed: (median(ours), median(peer)), rss_kib: (small, large) }
}

/// Both reference versions compared on the 100 MB generated corpus, against
/// one dry run of the staged version (the slower of the two) on the same
/// corpus, rounds interleaved; medians.
fn bench_compare(sidecar: &Path, target: &Path, rounds: usize) -> (Duration, Duration) {
    let a = sidecar_tests::reference_plugin("iu-cutter-v0.6");
    let b = sidecar_tests::reference_plugin("iu-cutter-v0.6-o8a");
    let runs_dir = target.join("bench-runs");
    let source = ["--source", "generated:100M"];
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let _ = fs::remove_dir_all(&runs_dir);
        let mut compare = Command::new(sidecar);
        compare.arg("compare").arg(&a).arg(&b).arg("--runs-dir").arg(&runs_dir).args(source);
        // The pair differs: exit 1 is the expected answer.
        ours.push(run_expecting(&mut compare, 1));
        let (elapsed, _) = timed_dry_run(sidecar, &b, &runs_dir, &source);
        peer.push(elapsed);
        println!(
            "compare: round {round}/{rounds}  compare {:.2} s  dry-run {:.2} s",
            ours[round - 1].as_secs_f64(),
            peer[round - 1].as_secs_f64()
        );
    }
    let _ = fs::remove_dir_all(&runs_dir);
    (median(ours), median(peer))
}

/// The suite on the staged reference version, against two dry runs of it
/// on the same (embedded) corpus, one after the other.
fn bench_compat(sidecar: &Path, target: &Path, rounds: usize) -> (Duration, Duration) {
    let plugin = sidecar_tests::reference_plugin("iu-cutter-v0.6-o8a");
    let runs_dir = target.join("bench-runs");
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let _ = fs::remove_dir_all(&runs_dir);
        let mut compat = Command::new(sidecar);
        compat.arg("compat").arg(&plugin).arg("--runs-dir").arg(&runs_dir);
        ours.push(run_expecting(&mut compat, 0));
        let first = timed_dry_run(sidecar, &plugin, &runs_dir, &[]).0;
        peer.push(first + timed_dry_run(sidecar, &plugin, &runs_dir, &[]).0);
    }
    let _ = fs::remove_dir_all(&runs_dir);
    let (ours, peer) = (median(ours), median(peer));
    println!("compat: {rounds} rounds  compat {:.0} ms  two dry-runs {:.0} ms", ms(ours), ms(peer));
    (ours, peer)
}

/// Runs `sidecar dry-run PLUGIN --runs-dir RUNS_DIR ARGS...` in a fresh
/// RUNS_DIR; returns its wall-clock time and its `summary.json`.
fn timed_dry_run(
    sidecar: &Path,
    plugin: &Path,
    runs_dir: &Path,
    args: &[&str],
) -> (Duration, Value) {
    let _ = fs::remove_dir_all(runs_dir);
    let mut cmd = Command::new(sidecar);
    cmd.arg("dry-run").arg(plugin).arg("--runs-dir").arg(runs_dir).args(args);
    let elapsed = run(&mut cmd);
    let run_dir =
        fs::read_dir(runs_dir).expect("runs").next().expect("one run").expect("entry").path();
    let summary =
        serde_json::from_str(&fs::read_to_string(run_dir.join("summary.json")).expect("summary"))
            .expect("json");
    (elapsed, summary)
}

/// Peak RSS of a run, host plus worker, in KiB.
fn peak_rss_kib(summary: &Value) -> u64 {
    let kib = |key: &str| summary["resources"][key].as_u64().expect("rss in summary.json");
    kib("host_max_rss_kib") + kib("worker_max_rss_kib")
}

/// Generated corpora of ~10k and ~100k documents. `generated:` is sized in
/// body bytes, not documents (an average document is ~3.4 KB): these sizes
/// give 9,960 and 100,214 documents with the default seed.
const PG_SMALL: &str = "32M";
const PG_LARGE: &str = "321M";
/// The SELECT-only role's password (a throwaway database's throwaway role).
const PG_PASSWORD: &str = "bench-select-only";
/// What the SELECT-only role may do: read the three tables.
const PG_SELECT_ONLY: &str = "GRANT USAGE ON SCHEMA public TO {role}; \
    GRANT SELECT ON source_document, source_version, information_unit TO {role};";

/// The rows `sidecar dry-run --source postgres` reads (host/src/pg/source.rs),
/// with the same columns and the same timestamp formatting, for the psql
/// peer. The host reads them per batch (a cursor over the documents, then
/// the batch's latest versions and active units by `document_id = ANY($1)`);
/// one query per table over all documents yields exactly the union of those
/// batches, so the peer moves the same rows and bytes with the least
/// client-side work there is: `\copy` to /dev/null, no parsing, no plugin.
const PG_PEER_QUERIES: [&str; 3] = [
    "SELECT id, kb_path, title, status, \
     to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
     FROM source_document ORDER BY id",
    "SELECT DISTINCT ON (document_id) id, document_id, revision, body, body_sha256, \
     to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
     FROM source_version ORDER BY document_id, revision DESC, id DESC",
    "SELECT id, document_id, version_id, ordinal, heading, anchor, body, body_sha256, \
     lifecycle FROM information_unit WHERE lifecycle = 'active' ORDER BY document_id, id",
];

/// What the PostgreSQL bench measured.
struct PgFigures {
    /// Documents in the small and the large database.
    documents: (u64, u64),
    /// Medians of the dry run and of the psql peer on the large database.
    speed: (Duration, Duration),
    /// Peak RSS (host + worker, KiB) of a dry run on the small and the
    /// large database.
    rss_kib: (u64, u64),
}

/// The o8a plugin with `--source postgres` against `psql \copy` of the same
/// rows, both as one SELECT-only role, on a fresh database holding ~100k
/// generated documents; then peak memory at ~10k and ~100k documents. Each
/// database and its role are dropped afterwards. `None` when no server is
/// reachable (only outside `make bench`, which always provides one).
fn bench_postgres(sidecar: &Path, target: &Path, rounds: usize) -> Option<PgFigures> {
    let reachable = try_admin_config()
        .and_then(|config| config.connect(NoTls).map(drop).map_err(|err| err.to_string()));
    if let Err(reason) = reachable {
        println!("postgres: skipped, no server reachable ({reason})");
        return None;
    }
    let psql = Command::new("psql").arg("--version").output();
    assert!(
        psql.is_ok_and(|out| out.status.success()),
        "psql must be on PATH for the PostgreSQL bench (package postgresql-client)"
    );
    let pg_load = target.join("release/pg-load");
    assert!(
        pg_load.exists(),
        "{} is missing: `cargo build --release -p sidecar-tests`",
        pg_load.display()
    );
    let plugin = sidecar_tests::reference_plugin("iu-cutter-v0.6-o8a");
    let runs_dir = target.join("bench-runs");
    let scratch = tempfile::tempdir().expect("tempdir");
    let pg_dry_run = |env: &Path| {
        let env = env.to_str().expect("UTF-8 temp path");
        timed_dry_run(sidecar, &plugin, &runs_dir, &["--source", "postgres", "--env-file", env])
    };

    // Both peak RSS figures come from runs started before this process read
    // a row itself (the loading is pg-load's): a child's reported peak
    // includes its parent's high-water mark, which Linux carries across
    // `exec` into ru_maxrss.
    let (small_db, env, small_documents) = loaded_db(&pg_load, PG_SMALL, scratch.path());
    let small_rss = peak_rss_kib(&pg_dry_run(&env).1);
    drop(small_db);

    let (large_db, env, large_documents) = loaded_db(&pg_load, PG_LARGE, scratch.path());
    let mut peer = psql_peer(&env);
    let generated = format!("generated:{PG_LARGE}");
    println!("postgres: warming up");
    let large_rss = peak_rss_kib(&pg_dry_run(&env).1);
    run(&mut peer);
    // Besides the two contenders, where the time goes: CPU time (host and
    // worker together, psql alone; the server's is not counted), the phases'
    // time as the host saw it, the host's source alone in this process, and
    // the same dry run on the same documents without a database.
    let (mut ours, mut ours_cpu, mut phases) = (vec![], vec![], vec![]);
    let (mut theirs, mut theirs_cpu) = (vec![], vec![]);
    let (mut alone, mut alone_cpu, mut no_db, mut no_db_cpu) = (vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let ((elapsed, summary), cpu) = cpu_of(Cpu::Children, || pg_dry_run(&env));
        ours.push(elapsed);
        ours_cpu.push(cpu);
        phases.push(phases_time(&summary));
        let (elapsed, cpu) = cpu_of(Cpu::Children, || run(&mut peer));
        theirs.push(elapsed);
        theirs_cpu.push(cpu);
        let (elapsed, cpu) = cpu_of(Cpu::Own, || read_source(&env));
        alone.push(elapsed);
        alone_cpu.push(cpu);
        let ((elapsed, _), cpu) = cpu_of(Cpu::Children, || {
            timed_dry_run(sidecar, &plugin, &runs_dir, &["--source", &generated])
        });
        no_db.push(elapsed);
        no_db_cpu.push(cpu);
        let last = |v: &[Duration]| v[round - 1].as_secs_f64();
        println!(
            "postgres: round {round}/{rounds}  sidecar {:.2} s (cpu {:.2} s, phases {:.2} s)  \
             psql \\copy {:.2} s (cpu {:.2} s)  source read alone {:.2} s (cpu {:.2} s)  \
             dry-run {generated} {:.2} s (cpu {:.2} s)",
            last(&ours),
            last(&ours_cpu),
            last(&phases),
            last(&theirs),
            last(&theirs_cpu),
            last(&alone),
            last(&alone_cpu),
            last(&no_db),
            last(&no_db_cpu),
        );
    }
    drop(large_db);
    let _ = fs::remove_dir_all(&runs_dir);
    let m = |v: Vec<Duration>| median(v).as_secs_f64();
    println!(
        "postgres: medians  sidecar cpu {:.2} s, phases {:.2} s  psql cpu {:.2} s  \
         source read alone {:.2} s (cpu {:.2} s)  dry-run {generated} {:.2} s (cpu {:.2} s)",
        m(ours_cpu),
        m(phases),
        m(theirs_cpu),
        m(alone),
        m(alone_cpu),
        m(no_db),
        m(no_db_cpu),
    );
    Some(PgFigures {
        documents: (small_documents, large_documents),
        speed: (median(ours), median(theirs)),
        rss_kib: (small_rss, large_rss),
    })
}

/// A fresh database holding `generated:SIZE` (loaded by `pg-load`) and a
/// SELECT-only role with an env file for it (mode 600, in `dir`); returns
/// them and the document count. Dropping the database drops the role.
fn loaded_db(pg_load: &Path, size: &str, dir: &Path) -> (TestDb, PathBuf, u64) {
    let mut db = TestDb::new();
    // A TestDb comes with the schema and the embedded corpus, whose ids the
    // generated corpus reuses; pg-load applies the schema itself.
    db.owner
        .batch_execute("DROP TABLE information_unit, source_version, source_document")
        .expect("drop the tables");
    let mut load = Command::new(pg_load);
    load.args(["--corpus", &format!("generated:{size}"), "--database", &db.name]);
    let out = load.output().unwrap_or_else(|e| panic!("cannot run {load:?}: {e}"));
    assert!(out.status.success(), "{load:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    print!("postgres: {}", String::from_utf8_lossy(&out.stdout));
    let documents: i64 = db
        .owner
        .query_one("SELECT count(*) FROM source_document", &[])
        .expect("count the documents")
        .get(0);
    let role = db.role("ro", "", PG_PASSWORD, PG_SELECT_ONLY);
    let env = dir.join(format!("{}.env", db.name));
    fs::write(&env, db.env_file(&role, PG_PASSWORD)).expect("write the env file");
    fs::set_permissions(&env, fs::Permissions::from_mode(0o600)).expect("chmod the env file");
    (db, env, documents.unsigned_abs())
}

/// `psql` reading [`PG_PEER_QUERIES`] with `\copy` to /dev/null, with the
/// env file's settings (the password through PGPASSWORD), in one read-only
/// repeatable-read transaction as the host reads.
fn psql_peer(env_file: &Path) -> Command {
    let text = fs::read_to_string(env_file).expect("read the env file");
    let setting = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("{key} in the env file"))
            .to_owned()
    };
    let mut cmd = Command::new("psql");
    cmd.env("PGHOST", setting("PG_HOST"))
        .env("PGPORT", setting("PG_PORT"))
        .env("PGDATABASE", setting("PG_DB"))
        .env("PGUSER", setting("PG_USER_RO"))
        .env("PGPASSWORD", setting("PG_PASSWORD_RO"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(["-c", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"]);
    for query in PG_PEER_QUERIES {
        cmd.arg("-c").arg(format!("\\copy ({query}) to /dev/null"));
    }
    cmd.args(["-c", "ROLLBACK"]);
    cmd
}

/// Reads every batch of the PostgreSQL source the env file names, as a dry
/// run does (256 documents per batch) but with nothing else to do.
fn read_source(env_file: &Path) -> Duration {
    let options = DatabaseOptions { env_file: Some(env_file.to_owned()), ..Default::default() };
    let source: Box<dyn Source> =
        parse_source_spec(Some("postgres"), &options).expect("the env file is valid");
    let start = Instant::now();
    source.prepare("bench").unwrap_or_else(|err| panic!("prepare the source: {err:?}"));
    for batch in source.batches(256) {
        batch.expect("a batch");
    }
    source.finish();
    start.elapsed()
}

/// Whose CPU time [`cpu_of`] counts.
#[derive(Clone, Copy)]
enum Cpu {
    /// This process's.
    Own,
    /// Children waited for, with the children they waited for (a dry run's
    /// host reaps its worker, so both count).
    Children,
}

/// Runs `f`; returns its result and the user + system CPU time it took,
/// from `/proc/self/stat` (in USER_HZ ticks, 100 per second on Linux).
fn cpu_of<T>(whose: Cpu, f: impl FnOnce() -> T) -> (T, Duration) {
    let ticks = || {
        let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<u64> = stat[stat.rfind(')').expect("a stat line") + 2..]
            .split(' ')
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        // utime, stime, cutime, cstime are fields 14 to 17 (from 1).
        match whose {
            Cpu::Own => fields[11] + fields[12],
            Cpu::Children => fields[13] + fields[14],
        }
    };
    let before = ticks();
    let out = f();
    (out, Duration::from_millis((ticks() - before) * 10))
}

/// The time the worker spent in phases, from `summary.json`.
fn phases_time(summary: &Value) -> Duration {
    let phases = summary["phases"].as_array().expect("phases in summary.json");
    Duration::from_millis(
        phases.iter().map(|p| p["duration_ms"].as_u64().expect("phase duration_ms")).sum(),
    )
}

/// `100214` as `100k`, as the summary line names the corpus.
fn thousands(n: u64) -> String {
    format!("{}k", (n + 500) / 1000)
}

/// Medians of `sidecar verify` and `sha256sum -c` on the sealed tree.
fn bench_verify(sidecar: &Path, base: &Path, runs: usize) -> (Duration, Duration) {
    let tree = ensure_tree(base);
    run(Command::new(sidecar)
        .args(["seal", "--name", "bench", "--plugin-version", "0.0", "--library", "libbench.so"])
        .arg(&tree));
    let mut subject = Command::new(sidecar);
    subject.arg("verify").arg(&tree).current_dir(&tree);
    let mut peer = Command::new("sha256sum");
    peer.args(["-c", "--quiet", "DEPLOY-MANIFEST.txt"]).current_dir(&tree);

    println!("verify: warming the page cache");
    run(&mut subject);
    run(&mut peer);
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for round in 1..=runs {
        s.push(run(&mut subject));
        p.push(run(&mut peer));
        println!(
            "verify: round {round}/{runs}  sidecar {:.3} s  sha256sum -c {:.3} s",
            s[round - 1].as_secs_f64(),
            p[round - 1].as_secs_f64(),
        );
    }
    (median(s), median(p))
}

/// Medians of `sidecar inspect` on a reference plugin and of a bare python start.
fn bench_inspect(sidecar: &Path, plugin: &Path, root: &Path) -> (Duration, Duration) {
    // `python3` may be a shim (pyenv) that would inflate the peer's time: time
    // the interpreter it resolves to.
    let out = Command::new("python3")
        .args(["-S", "-c", "import sys; sys.stdout.write(sys.executable)"])
        .output()
        .expect("python3 must be on PATH for the inspect bench");
    assert!(out.status.success(), "python3 -S failed: {}", String::from_utf8_lossy(&out.stderr));
    let python = String::from_utf8(out.stdout).expect("sys.executable is UTF-8");
    println!("inspect: peer is {python} -S -c pass");

    let mut subject = Command::new(sidecar);
    subject.arg("inspect").arg(plugin).current_dir(root);
    let mut peer = Command::new(&python);
    peer.args(["-S", "-c", "pass"]).current_dir(root);
    for _ in 0..WARMUPS {
        run(&mut subject);
        run(&mut peer);
    }
    let (mut s, mut p) = (Vec::new(), Vec::new());
    for _ in 0..INSPECT_ROUNDS {
        s.push(run(&mut subject));
        p.push(run(&mut peer));
    }
    let (s, p) = (median(s), median(p));
    println!(
        "inspect: {INSPECT_ROUNDS} rounds  sidecar {:.1} ms  python3 -S {:.1} ms",
        ms(s),
        ms(p)
    );
    (s, p)
}

/// Runs `cmd` to completion with stdout discarded; panics (with its stderr)
/// unless it exits 0. Returns the wall-clock time from spawn to exit.
fn run(cmd: &mut Command) -> Duration {
    run_expecting(cmd, 0)
}

/// [`run`], for a command whose expected exit code is `code`.
fn run_expecting(cmd: &mut Command, code: i32) -> Duration {
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let elapsed = start.elapsed();
    assert!(
        out.status.code() == Some(code),
        "{cmd:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

/// Returns `base/plugin`, a tree of TREE_BYTES (plus a few tiny files) in a few
/// hundred files, generating it unless `base/COMPLETE` says it is already there.
fn ensure_tree(base: &Path) -> PathBuf {
    let tree = base.join("plugin");
    let marker = base.join("COMPLETE");
    if fs::read_to_string(&marker).is_ok_and(|m| m == TREE_SPEC) {
        println!("verify: reusing {}", tree.display());
        return tree;
    }
    println!("verify: generating {} (512 MiB, once)", tree.display());
    if base.exists() {
        fs::remove_dir_all(base).expect("remove the stale bench tree");
    }
    let mut rng = XorShift(0x5eed_cafe_f00d_d00d);
    let mut left = TREE_BYTES;
    let mut index = 0u64;
    // The "library" seal requires: any bytes will do.
    write_file(&tree.join("libbench.so"), MIB, &mut rng);
    left -= MIB;
    while left > 0 {
        // Every eighth file is 8 MiB while there is room, the rest 64 KiB..1 MiB.
        let size = if index % 8 == 7 && left >= 8 * MIB * 2 {
            8 * MIB
        } else {
            ((rng.next() % 16 + 1) * 64 * KIB).min(left)
        };
        let rel = format!("d{}/s{}/f{index:04}.bin", index % 4, (index / 4) % 3);
        write_file(&tree.join(rel), size, &mut rng);
        left -= size;
        index += 1;
    }
    for tiny in 0..6u64 {
        let rel =
            if tiny < 3 { format!("tiny{tiny}.txt") } else { format!("d1/s2/tiny{tiny}.txt") };
        write_file(&tree.join(rel), tiny * 37, &mut rng);
    }
    fs::write(&marker, TREE_SPEC).expect("write the bench tree marker");
    println!("verify: wrote {} files", index + 7);
    tree
}

fn write_file(path: &Path, size: u64, rng: &mut XorShift) {
    fs::create_dir_all(path.parent().expect("tree files have a parent"))
        .expect("create a bench tree directory");
    let mut file = fs::File::create(path).expect("create a bench tree file");
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size as usize;
    while left > 0 {
        let n = left.min(buf.len());
        for chunk in buf[..n].chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
        file.write_all(&buf[..n]).expect("write a bench tree file");
        left -= n;
    }
}

/// xorshift64*: fast, deterministic, and incompressible enough for hashing.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn summary(what: &str, subject: String, peer: String, ratio: String) {
    println!("bench: {what:<26} {subject:<28} {peer:<32} {ratio}");
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let mid = samples.len() / 2;
    if samples.len() % 2 == 1 {
        samples[mid]
    } else {
        (samples[mid - 1] + samples[mid]) / 2
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
