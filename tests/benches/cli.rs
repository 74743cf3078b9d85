//! `make bench`: wall-clock figures for the release `sidecar` binary, each next
//! to a well-known peer measured in the same run.
//!
//! 1. Verify throughput: `sidecar verify` against `sha256sum -c` on a sealed,
//!    deterministic 512 MiB tree of a few hundred files (target: sidecar >= 4x
//!    faster).
//! 2. Inspect cold start: `sidecar inspect` of a reference plugin (verify, spawn
//!    a worker, load, describe) against `python3 -S -c pass` (target: <= 0.25x
//!    of python's time).
//!
//! Absolute times mean little on a shared, noisy machine, so the peer runs in
//! the same process, on the same page cache, interleaved with the subject in
//! every round, and the figures are medians. The ratio is the number to read.
//! Nothing is asserted about time; a command that fails aborts the bench.
//!
//! Needs `make plugins` first. Rounds for the verify bench: SIDECAR_BENCH_RUNS
//! (default 5). The tree is kept in target/bench-tree and reused.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

    let verify = bench_verify(&sidecar, &target.join("bench-tree"), runs);
    let inspect = bench_inspect(&sidecar, &plugin, &root);
    let dry = bench_dry_run(&sidecar, &target, 3);

    let (s, p) = (verify.0.as_secs_f64(), verify.1.as_secs_f64());
    let mb_s = |secs: f64| TREE_BYTES as f64 / 1e6 / secs;
    println!();
    summary(
        "verify 512 MiB tree",
        format!("sidecar {s:.2} s ({:.0} MB/s)", mb_s(s)),
        format!("sha256sum -c {p:.2} s ({:.0} MB/s)", mb_s(p)),
        format!("ratio {:.1}x  (target >= 4x)", p / s),
    );
    let (s, p) = (ms(inspect.0), ms(inspect.1));
    summary(
        "inspect cold start",
        format!("sidecar {s:.1} ms"),
        format!("python3 -S {p:.1} ms"),
        format!("ratio {:.2}x (target <= 0.25x)", s / p),
    );
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
        let _ = fs::remove_dir_all(&runs_dir);
        let mut cmd = Command::new(sidecar);
        cmd.arg("dry-run")
            .arg(&plugin)
            .arg("--source")
            .arg(format!("generated:{size}"))
            .arg("--runs-dir")
            .arg(&runs_dir);
        let elapsed = run(&mut cmd);
        let run_dir =
            fs::read_dir(&runs_dir).expect("runs").next().expect("one run").expect("entry").path();
        let summary: serde_json::Value = serde_json::from_str(
            &fs::read_to_string(run_dir.join("summary.json")).expect("summary"),
        )
        .expect("json");
        let kib = |key: &str| summary["resources"][key].as_u64().expect("rss in summary.json");
        (elapsed, kib("host_max_rss_kib") + kib("worker_max_rss_kib"))
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
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let elapsed = start.elapsed();
    assert!(
        out.status.success(),
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
    println!("bench: {what:<24} {subject:<28} {peer:<32} {ratio}");
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
