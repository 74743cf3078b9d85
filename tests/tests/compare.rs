//! `compare`: the reference pair differs exactly where the corpus was built
//! to make a naive and a Markdown-aware cutter disagree; a version compared
//! with itself is the same; noise, a crashing side, a refused side and an
//! unverifiable side each get their verdict and exit code; the HTML report
//! renders in headless Chromium without a single fetch.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sidecar::source::embedded::case_of;
use sidecar::source::{expected_difference_cases, EmbeddedSource, Source};
use sidecar_tests::{path_str, Outcome, Scratch};

/// Runs a comparison into `scratch/runs`; the outcome and its folder.
fn compare(scratch: &Scratch, a: &Path, b: &Path, extra: &[&str]) -> (Outcome, PathBuf) {
    let runs = scratch.path().join("runs");
    let mut args = vec!["compare", path_str(a), path_str(b), "--runs-dir", path_str(&runs)];
    args.extend_from_slice(extra);
    let out = scratch.sidecar(&args);
    let run = fs::read_dir(&runs)
        .expect("a comparison folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("compare.json").is_file())
        .max_by_key(|p| fs::metadata(p.join("run.json")).and_then(|m| m.modified()).ok())
        .expect("one comparison folder");
    (out, run)
}

fn json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn differing_paths(comparison: &Value) -> BTreeSet<String> {
    comparison["documents"]["listed"]
        .as_array()
        .expect("listed")
        .iter()
        .map(|d| d["kb_path"].as_str().expect("kb_path").to_owned())
        .collect()
}

#[test]
fn the_reference_pair_differs_exactly_on_the_hard_cases() {
    let scratch = Scratch::new();
    let (a, b) = (scratch.reference("iu-cutter-v0.6"), scratch.reference("iu-cutter-v0.6-o8a"));
    let (out, run) = compare(&scratch, &a, &b, &[]);
    out.expect(1, "different");
    let c = json(&run.join("compare.json"));
    assert_eq!(c["verdict"], "different", "{c:#}");

    // Exactly the documents of the cases built to be cut differently.
    let expected: BTreeSet<String> = EmbeddedSource::new()
        .batches(1000)
        .flat_map(|batch| batch.expect("embedded").documents)
        .map(|d| d.kb_path)
        .filter(|p| case_of(p).is_some_and(|case| expected_difference_cases().contains(&case)))
        .collect();
    assert!(expected.len() >= 24, "{expected:?}");
    assert_eq!(differing_paths(&c), expected);
    assert_eq!(c["documents"]["differing"], expected.len());
    assert_eq!(c["documents"]["truncated"], false);

    // The cut phases differ; the others do not.
    let same: Vec<(String, bool)> = c["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| (p["phase"].as_str().expect("phase").to_owned(), p["same"] == true))
        .collect();
    assert_eq!(
        same,
        [
            ("discover".to_owned(), true),
            ("backup".to_owned(), true),
            ("cut_leg_a".to_owned(), false),
            ("leg_b_record".to_owned(), false),
            ("write_verify".to_owned(), false),
            ("lifecycle_enact".to_owned(), true),
        ]
    );
    let record = &c["phases"][3]["plan"];
    assert_eq!(record["identical"], false);
    assert_eq!(record["documents"], expected.len());

    // Every difference in diff.jsonl belongs to a listed document, and the
    // operations add up to the phase's totals.
    let diff = fs::read_to_string(run.join("diff.jsonl")).expect("diff.jsonl");
    let (mut only_a, mut only_b, mut changed) = (0, 0, 0);
    for line in diff.lines() {
        let document: Value = serde_json::from_str(line).expect("diff line");
        for op in document["ops"].as_array().expect("ops") {
            match op["kind"].as_str() {
                Some("only_a") => only_a += 1,
                Some("only_b") => only_b += 1,
                Some("changed") => changed += 1,
                other => panic!("kind {other:?}"),
            }
        }
    }
    assert_eq!(
        (only_a, only_b, changed),
        (
            record["only_a"].as_u64().unwrap(),
            record["only_b"].as_u64().unwrap(),
            record["changed"].as_u64().unwrap()
        )
    );

    // Identity, trees and kill-switch of both sides.
    let field = |name: &str| {
        c["identity"]
            .as_array()
            .expect("identity")
            .iter()
            .find(|r| r["field"] == name)
            .cloned()
            .expect(name)
    };
    assert_eq!(field("version")["a"], "0.6");
    assert_eq!(field("version")["b"], "0.6-o8a");
    assert_eq!(field("capabilities")["b"], "LiveExecutionAdapter");
    assert_eq!(field("abi_version")["same"], true);
    assert_eq!(c["tree"]["identical"], false);
    assert!(c["tree"]["changed"]
        .as_array()
        .expect("changed")
        .iter()
        .any(|f| f["path"] == "libiu_cutter.so"));
    for side in c["sides"].as_array().expect("sides") {
        assert_eq!(side["verdict"], "completed");
        assert_eq!(side["kill_switch"]["execution_enabled_before"], false);
        assert_eq!(side["kill_switch"]["live_refusal"]["refused"], true);
    }

    // Each side is a complete dry-run folder, and the plans are those a
    // dry run alone writes.
    for side in ["a", "b"] {
        let summary = json(&run.join(side).join("summary.json"));
        assert_eq!(summary["verdict"], "completed");
        assert!(run.join(side).join("plan/04-leg_b_record.jsonl").is_file());
    }
    let run_json = json(&run.join("run.json"));
    assert_eq!(
        (run_json["kind"].as_str(), run_json["state"].as_str()),
        (Some("compare"), Some("completed"))
    );
    let md = fs::read_to_string(run.join("kb/compare.md")).expect("compare.md");
    assert!(md.contains("**Verdict: different.**"), "{md}");
    assert!(md.contains("kb/setext/"), "{md}");
    // Both sides read the embedded corpus once, together.
    assert_eq!(c["source"]["kind"], "embedded");
}

#[test]
fn a_version_compared_with_itself_is_the_same_and_has_no_noise() {
    let scratch = Scratch::new();
    let a = scratch.reference("iu-cutter-v0.6-o8a");
    let (out, run) = compare(&scratch, &a, &a, &["--aa"]);
    out.expect(0, "same");
    let c = json(&run.join("compare.json"));
    assert_eq!(c["verdict"], "same");
    assert_eq!(c["documents"]["differing"], 0);
    assert_eq!(c["noise"]["same"], true);
    assert_eq!(c["sides"].as_array().expect("sides").len(), 3);
    assert!(c["phases"].as_array().expect("phases").iter().all(|p| p["same"] == true));
    assert_eq!(c["tree"]["identical"], true);
    assert_eq!(fs::read_to_string(run.join("diff.jsonl")).expect("diff"), "");
}

#[test]
fn noise_in_a_makes_the_comparison_untrustworthy() {
    let scratch = Scratch::new();
    let a = scratch.test_plugin("nondeterministic");
    // Without --aa, the plugin against itself just differs.
    let (out, _) = compare(&scratch, &a, &a, &[]);
    out.expect(1, "different");
    let (out, run) = compare(&scratch, &a, &a, &["--aa"]);
    out.expect(1, "untrustworthy");
    let c = json(&run.join("compare.json"));
    assert_eq!(c["verdict"], "untrustworthy");
    assert_eq!(c["noise"]["same"], false);
    assert_eq!(c["noise"]["phases"], serde_json::json!(["record"]));
    assert!(c["reason"].as_str().expect("reason").contains("not trustworthy"), "{c:#}");
    assert!(!fs::read_to_string(run.join("noise.jsonl")).expect("noise").is_empty());
}

#[test]
fn a_crashing_side_is_named_and_the_other_side_completes() {
    let scratch = Scratch::new();
    let a = scratch.test_plugin("well_behaved");
    let b = scratch.test_plugin("abort_in_phase");
    let (out, run) = compare(&scratch, &a, &b, &[]);
    out.expect(2, "side B (test-plugin 1.0) failed");
    let c = json(&run.join("compare.json"));
    assert_eq!(c["verdict"], "failed");
    assert!(c["reason"].as_str().expect("reason").contains("results kept: A"), "{c:#}");
    assert_eq!(c["sides"][0]["verdict"], "completed");
    assert_eq!(c["sides"][1]["verdict"], "failed");
    // A's results are whole: its plans are complete, not partial.
    let a_summary = json(&run.join("a/summary.json"));
    assert_eq!(a_summary["verdict"], "completed");
    assert!(run.join("a/plan/02-record.jsonl").is_file());
    assert_eq!(json(&run.join("b/run.json"))["state"], "failed");
    assert_eq!(json(&run.join("run.json"))["state"], "failed");
}

#[test]
fn a_refused_side_refuses_the_comparison_and_an_unverified_one_runs_nothing() {
    let scratch = Scratch::new();
    let a = scratch.reference("iu-cutter-v0.6");
    let enabled = scratch.test_plugin("execution_enabled");
    let (out, run) = compare(&scratch, &a, &enabled, &[]);
    out.expect(3, "side B (test-plugin 1.0) was refused");
    assert_eq!(json(&run.join("compare.json"))["verdict"], "refused");

    let b = scratch.reference("iu-cutter-v0.6-o8a");
    fs::write(b.join("README.md"), "edited after sealing\n").expect("tamper");
    let (out, run) = compare(&scratch, &a, &b, &[]);
    out.expect(2, "README.md");
    let c = json(&run.join("compare.json"));
    assert_eq!(c["verdict"], "failed");
    assert!(c["reason"].as_str().expect("reason").starts_with("nothing was run: side B"), "{c:#}");
    assert!(!run.join("a").exists() && !run.join("b").exists(), "a side ran");
}

/// Debian's Chromium, which `make test` installs.
fn chromium(args: &[&str]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile");
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium (installed by `make test`)")
}

#[test]
fn the_html_report_is_self_contained_and_renders_in_chromium() {
    let scratch = Scratch::new();
    let (a, b) = (scratch.reference("iu-cutter-v0.6"), scratch.reference("iu-cutter-v0.6-o8a"));
    let (out, run) = compare(&scratch, &a, &b, &["--html"]);
    out.expect(1, "report.html");
    let page = run.join("report.html");
    let html = fs::read_to_string(&page).expect("report.html");
    // Nothing to fetch: no external reference, and a policy forbidding any.
    assert!(html.contains("default-src 'none'"));
    for needle in ["src=", "href=", "url(", "@import", "<script", "<link"] {
        assert!(!html.contains(needle), "report.html contains `{needle}`");
    }

    let url = format!("file://{}", page.display());
    let dom = chromium(&["--dump-dom", &url]);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains("id=\"verdict\""), "{dom}");
    assert!(dom.contains("32 documents would be processed differently"), "{dom}");
    assert!(dom.contains("kb/setext/"), "{dom}");
    assert_eq!(dom.matches("<details class=\"document\"").count(), 32);

    let shot = scratch.path().join("report.png");
    let taken = chromium(&[
        &format!("--screenshot={}", shot.display()),
        "--window-size=1400,1800",
        "--hide-scrollbars",
        &url,
    ]);
    let png = fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {taken:?}"));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "{} bytes", png.len());
    if let Some(keep) = std::env::var_os("SIDECAR_KEEP_SCREENSHOT") {
        fs::copy(&shot, keep).expect("keep the screenshot");
    }
}
