//! Containment of hostile plugins, end to end: a plugin that hangs, eats
//! memory, writes where it lives or reads the host's secrets is stopped or
//! refused with its own one-line reason, and the host is unaffected (the
//! next run in the same place completes). The crashes, panics and
//! kill-switch tricks are in `loading.rs` and `dry_run.rs`.

use std::time::{Duration, Instant};

use sidecar_tests::{path_str, read_json, Outcome, Scratch};

/// The whole of stderr: one line, `error: ` and `reason`.
#[track_caller]
fn fails_with_one_line(out: &Outcome, reason: &str) {
    assert_eq!(out.code, Some(1), "exit code\n{out:#?}");
    assert_eq!(out.stderr, format!("error: {reason}\n"), "{out:#?}");
}

/// A well-behaved plugin still dry-runs to completion in `scratch`, with
/// `extra` arguments: whatever the last plugin did, the host is fine.
#[track_caller]
fn the_host_carries_on(scratch: &Scratch, extra: &[&str]) {
    let dir = scratch.test_plugin("well_behaved");
    let (out, run) = scratch.dry_run(&dir, extra);
    out.expect(0, "Completed");
    assert_eq!(read_json(&run.join("summary.json"))["verdict"], "completed");
}

#[test]
fn a_phase_that_hangs_is_killed_at_its_deadline() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("hang_in_phase");
    let started = Instant::now();
    let (out, run) = scratch.dry_run(&dir, &["--timeout", "1"]);
    let reason =
        "plugin test-plugin 1.0: phase `record` on batch 0 did not answer within 1s; worker killed";
    fails_with_one_line(&out, reason);
    // Generous: this guards against waiting for ever, not a speed target.
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());

    let state = read_json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert_eq!((state["phase"].as_str(), state["batch"].as_u64()), (Some("record"), Some(0)));
    assert_eq!(state["reason"], reason);
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], "failed");
    assert_eq!(summary["reason"], reason);
    assert_eq!(summary["phases"][0]["status"], "ok");
    assert_eq!(summary["phases"][1]["status"], "failed");
    assert_eq!(summary["resources"]["worker_max_rss_kib"], serde_json::Value::Null);

    the_host_carries_on(&scratch, &["--timeout", "1"]);
}

#[test]
fn a_plugin_that_allocates_without_bound_runs_out_of_memory_at_the_limit() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("allocates_unbounded");
    let (out, run) = scratch.dry_run(&dir, &["--worker-memory", "256M"]);
    let reason = "plugin test-plugin 1.0: worker ran out of memory during phase `record` on \
                  batch 0 (limit 256 MiB; --worker-memory)";
    fails_with_one_line(&out, reason);

    let state = read_json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert_eq!((state["phase"].as_str(), state["batch"].as_u64()), (Some("record"), Some(0)));
    let summary = read_json(&run.join("summary.json"));
    assert_eq!(summary["reason"], reason);
    assert_eq!(summary["phases"][1]["status"], "failed");

    // The same limit is plenty for a plugin that behaves.
    the_host_carries_on(&scratch, &["--worker-memory", "256M"]);
}

#[test]
fn a_worker_memory_too_small_to_start_a_worker_is_a_usage_error() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("well_behaved");
    let too_small = "1 MiB is below the minimum of 32 MiB: a worker needs about 16 MiB to \
                     start and load a plugin";
    for command in ["inspect", "dry-run"] {
        let out = scratch.sidecar(&[command, path_str(&dir), "--worker-memory", "1M"]);
        out.expect(2, &format!("invalid value '1M' for '--worker-memory <SIZE>': {too_small}"));
    }
    let out = scratch.sidecar(&["inspect", path_str(&dir), "--worker-memory", "lots"]);
    out.expect(2, "invalid value 'lots' for '--worker-memory <SIZE>'");
}
