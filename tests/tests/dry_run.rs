//! `dry-run` and `runs`: complete run folders for both reference versions,
//! byte-identical plans across runs, and every way a run can stop leaving a
//! truthful `run.json` and never a summary that claims success.

use std::fs;
use std::path::Path;

use sidecar_tests::{path_str, read_json as json, snapshot, Scratch};

const PHASES: [&str; 6] =
    ["discover", "backup", "cut_leg_a", "leg_b_record", "write_verify", "lifecycle_enact"];

fn sha256_hex(path: &Path) -> String {
    let out = std::process::Command::new("sha256sum").arg(path).output().expect("sha256sum");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("digest").to_owned()
}

fn plan_files(run: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(run.join("plan"))
        .expect("plan/")
        .filter_map(Result::ok)
        .map(|e| {
            (e.file_name().to_string_lossy().into_owned(), fs::read(e.path()).expect("read plan"))
        })
        .collect();
    files.sort();
    files
}

#[test]
fn both_reference_versions_produce_complete_run_folders() {
    let scratch = Scratch::new();
    for name in ["iu-cutter-v0.6", "iu-cutter-v0.6-o8a"] {
        let dir = scratch.reference(name);
        let before = snapshot(&dir);
        let (out, run) = scratch.dry_run(&dir, &[]);
        out.expect(0, "Completed");

        let state = json(&run.join("run.json"));
        assert_eq!(state["state"], "completed", "{state:#}");
        assert_eq!(state["source"]["kind"], "embedded");
        let history: Vec<&str> = state["history"]
            .as_array()
            .expect("history")
            .iter()
            .map(|t| t["state"].as_str().expect("state"))
            .collect();
        assert_eq!(history, ["created", "verified", "loaded", "running", "completed"]);

        let summary = json(&run.join("summary.json"));
        assert_eq!(summary["verdict"], "completed");
        assert_eq!(summary["kill_switch"]["execution_enabled_before"], false);
        assert_eq!(summary["kill_switch"]["execution_enabled_after"], false);
        assert_eq!(summary["kill_switch"]["live_refusal"]["refused"], true);
        assert_eq!(summary["integrity"]["plugin_dir_unchanged"], true);
        let phases = summary["phases"].as_array().expect("phases");
        assert_eq!(
            phases.iter().map(|p| p["name"].as_str().expect("name")).collect::<Vec<_>>(),
            PHASES
        );
        for phase in phases {
            assert_eq!(phase["status"], "ok", "{phase:#}");
            assert_eq!(phase["findings"]["error"], 0, "{phase:#}");
            let plan = &phase["plan"];
            let file = run.join(plan["file"].as_str().expect("plan file"));
            assert_eq!(
                plan["sha256"].as_str(),
                Some(sha256_hex(&file).as_str()),
                "{}",
                file.display()
            );
        }
        let inserts = phases[3]["ops"]["insert"].as_u64().expect("leg_b_record inserts");
        assert!(inserts > 100, "{inserts}");
        assert!(phases[5]["ops"]["update"].as_u64().expect("lifecycle updates") > 0);
        assert!(phases[1]["ops"]["backup"].as_u64().expect("backups") > 0);

        for phase in ["backup", "leg_b_record", "lifecycle_enact"] {
            let approval = json(&run.join("approvals").join(format!("{phase}.json")));
            assert_eq!(approval["status"], "pending");
            let file = run.join(approval["plan_file"].as_str().expect("plan_file"));
            assert_eq!(approval["plan_sha256"].as_str(), Some(sha256_hex(&file).as_str()));
        }
        for report in [
            "01-verification.md",
            "02-load.md",
            "03-kill-switch.md",
            "05-integrity.md",
            "06-decision.md",
        ] {
            assert!(run.join("kb").join(report).is_file(), "{report}");
        }
        assert!(!plan_files(&run).iter().any(|(name, _)| name.ends_with(".partial")));
        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", "--quiet", "SHA256SUMS"])
            .current_dir(run.join("plan"))
            .status()
            .expect("sha256sum");
        assert!(check.success(), "plan/SHA256SUMS must check");
        assert!(summary["resources"]["worker_max_rss_kib"].as_u64().is_some_and(|kib| kib > 0));
        assert_eq!(snapshot(&dir), before, "the plugin directory must be untouched");
    }
}

#[test]
fn plans_are_byte_identical_across_runs() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6-o8a");
    let (first, a) = scratch.dry_run(&dir, &[]);
    first.expect(0, "Completed");
    let (second, b) = scratch.dry_run(&dir, &["--batch-size", "256"]);
    second.expect(0, "Completed");
    assert_ne!(a, b);
    assert_eq!(plan_files(&a), plan_files(&b));
}

#[test]
fn a_plugin_that_ships_with_execution_enabled_is_refused_before_any_phase() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("execution_enabled");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(
        3,
        "refused: the plugin's kill-switch is on (execution_enabled = true before the run)",
    );
    assert_eq!(json(&run.join("run.json"))["state"], "refused");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], "refused");
    assert!(summary["phases"].as_array().expect("phases").iter().all(|p| p["status"] == "not_run"));
    assert_eq!(plan_files(&run), vec![], "a run refused before any phase writes no plan");
}

#[test]
fn the_refusal_probe_catches_a_plugin_that_accepts_live() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("accepts_live");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(3, "refused: the plugin did not refuse a live run: accepted the live run");
    assert_eq!(json(&run.join("summary.json"))["kill_switch"]["live_refusal"]["refused"], false);
}

#[test]
fn a_kill_switch_that_flips_during_the_run_fails_it() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("flips_execution_enabled");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(3, "execution_enabled = true after the run");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["kill_switch"]["execution_enabled_before"], false);
    assert_eq!(summary["kill_switch"]["execution_enabled_after"], true);
    assert_eq!(summary["verdict"], "refused");
}

#[test]
fn a_phase_that_is_not_dry_run_safe_is_refused_not_skipped() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("unsafe_phase");
    let (out, _) = scratch.dry_run(&dir, &[]);
    out.expect(3, "phase `mutate` is not dry-run safe (side effects: Some)");
}

#[test]
fn a_crash_mid_phase_leaves_a_truthful_run_json() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("abort_in_phase");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(
        1,
        "plugin test-plugin 1.0: worker died during phase `record` on batch 0: killed by SIGABRT",
    );
    let state = json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert_eq!(state["phase"], "record");
    assert_eq!(state["batch"], 0);
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], "failed");
    assert_eq!(summary["phases"][0]["status"], "ok");
    assert_eq!(summary["phases"][1]["status"], "failed");
    assert!(
        plan_files(&run).iter().all(|(name, _)| name.ends_with(".partial")),
        "no plan may look complete"
    );
}

#[test]
fn write_verify_catches_a_cutter_that_loses_bytes() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("broken_cutter");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(1, "phase `write_verify` on batch 0: units-do-not-concatenate kb/");
    let state = json(&run.join("run.json"));
    assert_eq!(
        (state["state"].as_str(), state["phase"].as_str()),
        (Some("failed"), Some("write_verify"))
    );
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], "failed");
    let write_verify = &summary["phases"][4];
    assert_eq!(write_verify["status"], "failed");
    assert!(write_verify["findings"]["error"].as_u64().expect("errors") > 0);
    assert_eq!(summary["phases"][5]["status"], "not_run", "the run stops where a live run would");
}

#[test]
fn an_invalid_plan_stops_the_run_at_its_phase_and_batch() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("invalid_plan");
    // The embedded corpus in three batches; the second batch's plan is bad.
    let (out, run) = scratch.dry_run(&dir, &["--batch-size", "100"]);
    out.expect(
        1,
        "phase `record` on batch 1: the plugin returned an invalid after-image for \
         information_unit key `1:0`: not a JSON object",
    );
    let state = json(&run.join("run.json"));
    assert_eq!(state["state"], "failed");
    assert_eq!((state["phase"].as_str(), state["batch"].as_u64()), (Some("record"), Some(1)));
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["verdict"], "failed");
    assert_eq!(summary["phases"][1]["status"], "failed");
    // Nothing of the batch after the bad one is recorded.
    assert_eq!(summary["batches"], 2);
    assert_eq!(summary["documents"], 200);
    assert!(plan_files(&run).iter().all(|(name, _)| name.ends_with(".partial")));
}

#[test]
fn queries_are_refused_and_logged_when_the_source_is_not_a_database() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("queries");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(
        1,
        "phase `discover` on batch 0: QueryRefused: the run's source (embedded) is not a database",
    );
    let log = sidecar_tests::query_log(&run);
    assert!(log.len() > 50, "every statement is logged, even with no database");
    for entry in &log {
        assert_eq!(entry["outcome"], "refused", "{entry:#}");
        assert_eq!(entry["error"], "the run's source (embedded) is not a database");
    }
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["queries"]["refused"], log.len());
    assert_eq!(summary["queries"]["statements"], log.len());
}

#[test]
fn a_panic_in_a_phase_fails_the_run_with_its_message() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("panic_in_phase");
    let (out, _) = scratch.dry_run(&dir, &[]);
    out.expect(1, "Panicked: run_phase panicked: deliberate panic in phase discover");
}

#[test]
fn a_directory_source_feeds_every_markdown_file() {
    let scratch = Scratch::new();
    let docs = scratch.path().join("kb");
    fs::create_dir_all(docs.join("sub")).expect("mkdir");
    fs::write(docs.join("a.md"), "# A\n\nintro\n\n## One\n\nbody\n").expect("write");
    fs::write(docs.join("sub/b.md"), "## Two\ntext\n## Three\nmore\n").expect("write");
    fs::write(docs.join("notes.txt"), "not markdown").expect("write");
    let dir = scratch.reference("iu-cutter-v0.6-o8a");
    let source = format!("dir:{}", path_str(&docs));
    let (out, run) = scratch.dry_run(&dir, &["--source", &source]);
    out.expect(0, "2 documents in 1 batches");
    let summary = json(&run.join("summary.json"));
    assert_eq!(summary["source"]["kind"], "dir");
    assert_eq!(summary["phases"][3]["ops"]["insert"], 4, "{:#}", summary["phases"][3]);
}

#[test]
fn a_generated_source_is_counted_as_it_is_read() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let (out, run) = scratch.dry_run(&dir, &["--source", "generated:300K:4"]);
    out.expect(0, "documents in");
    let summary = json(&run.join("summary.json"));
    let read = summary["documents"].as_u64().expect("documents read");
    assert!(read > 10, "{read}");
    // Not known up front, filled in from what the run read.
    assert_eq!(summary["source"]["documents"], read);
    assert_eq!(json(&run.join("run.json"))["source"]["documents"], read);
}

#[test]
fn an_unknown_source_is_a_usage_error() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    scratch
        .sidecar(&[
            "dry-run",
            path_str(&dir),
            "--source",
            "ftp://nope",
            "--runs-dir",
            path_str(scratch.path()),
        ])
        .expect(2, "dir:PATH");
}

#[test]
fn runs_are_listed_shown_and_removed_as_one_folder() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let (out, run) = scratch.dry_run(&dir, &[]);
    out.expect(0, "Completed");
    let id = run.file_name().expect("id").to_string_lossy().into_owned();
    let runs = scratch.path().join("runs");
    let runs = path_str(&runs);
    scratch
        .sidecar(&["runs", "list", "--runs-dir", runs])
        .expect(0, &format!("{id}  dry-run  completed  iu-cutter 0.6"));
    scratch
        .sidecar(&["runs", "show", &id, "--runs-dir", runs])
        .expect(0, "\"verdict\": \"completed\"");
    scratch.sidecar(&["runs", "rm", "../etc", "--runs-dir", runs]).expect(2, "is not a run id");
    scratch.sidecar(&["runs", "rm", &id, "--runs-dir", runs]).expect(0, "removed");
    assert!(!run.exists());
    scratch.sidecar(&["runs", "show", &id, "--runs-dir", runs]).expect(2, "no run");
}
