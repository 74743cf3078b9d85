//! `compat`: the reference versions pass every check (and their JUnit and
//! JSON reports validate against the schemas in `tests/schemas/`), the
//! `--expect` assertions hold or fail by name, an unknown key is an error,
//! the frozen-ABI plugin passes with the panic probe skipped, and every
//! hostile test plugin is contained and reported by name in one suite whose
//! well-behaved plugin still passes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use sidecar_tests::{path_str, read_json, sidecar_in_env, workspace_root, Outcome, Scratch};

/// Every check of the suite, in order.
const CHECKS: [&str; 14] = [
    "manifest_verifies",
    "pin_matches",
    "library_loads",
    "abi_compatible",
    "description_well_formed",
    "execution_disabled_before",
    "live_refused",
    "unknown_phase_refused",
    "panic_contained",
    "phases_dry_run",
    "plans_match_counts",
    "deterministic",
    "execution_disabled_after",
    "directory_unchanged",
];

fn compat(scratch: &Scratch, dirs: &[&Path], extra: &[&str]) -> Outcome {
    compat_env(scratch, dirs, extra, &[])
}

fn compat_env(scratch: &Scratch, dirs: &[&Path], extra: &[&str], env: &[(&str, &str)]) -> Outcome {
    let runs = scratch.path().join("runs");
    let mut args = vec!["compat", "--runs-dir", path_str(&runs)];
    args.extend_from_slice(extra);
    args.extend(dirs.iter().map(|d| path_str(d)));
    sidecar_in_env(scratch.path(), &args, env)
}

fn report(out: &Outcome) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("--json output: {e}\n{out:#?}"))
}

/// `(status, detail)` of check `name` of the plugin at `index`.
fn check<'a>(report: &'a Value, index: usize, name: &str) -> (&'a str, &'a str) {
    let checks = report["plugins"][index]["checks"].as_array().expect("checks");
    let found = checks.iter().find(|c| c["name"] == name).unwrap_or_else(|| {
        panic!("no check {name} for plugin {index}: {:#}", report["plugins"][index])
    });
    (found["status"].as_str().expect("status"), found["detail"].as_str().expect("detail"))
}

fn validate_json(document: &str) {
    let schema = workspace_root().join("tests/schemas/compat.schema.json");
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open(sys.argv[1]))\n\
                  jsonschema.Draft202012Validator.check_schema(schema)\n\
                  jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))\n";
    let mut child = Command::new("python3")
        .args(["-c", script, path_str(&schema)])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with jsonschema (make test installs it)");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(document.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("python3");
    assert!(
        out.status.success(),
        "compat.json does not validate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn validate_junit(file: &Path) {
    let schema = workspace_root().join("tests/schemas/junit.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", path_str(&schema), path_str(file)])
        .output()
        .expect("xmllint (make test installs libxml2-utils)");
    assert!(
        out.status.success(),
        "{} does not validate:\n{}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_reference_versions_pass_every_check_and_both_reports_validate() {
    let scratch = Scratch::new();
    let v06 = scratch.reference("iu-cutter-v0.6");
    let o8a = scratch.reference("iu-cutter-v0.6-o8a");
    scratch.sidecar(&["lock", path_str(&v06), path_str(&o8a)]).expect(0, "pinned");
    let junit = scratch.path().join("compat.xml");

    let out = compat(&scratch, &[&v06, &o8a], &["--junit", path_str(&junit)]);
    out.expect(0, "passed: 2 plugin(s), 28 checks, 28 passed, 0 failed, 0 skipped");
    // One line per check, in order, for each plugin.
    let lines: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("  pass  ")).collect();
    assert_eq!(lines.len(), 28, "{}", out.stdout);
    for (line, name) in lines.iter().zip(CHECKS.iter().chain(CHECKS.iter())) {
        assert!(line.starts_with(&format!("  pass  {name} ")), "{line}");
    }
    assert!(out.stdout.contains("  pass  deterministic              6 plans byte-identical"));
    assert!(out.stdout.contains("  pass  plans_match_counts         3 rule(s) held"));
    validate_junit(&junit);
    let xml = fs::read_to_string(&junit).expect("junit");
    assert!(xml.contains(
        r#"<testsuites name="sidecar compat" tests="28" failures="0" errors="0" skipped="0""#
    ));
    assert_eq!(xml.matches("<testcase ").count(), 28);

    let out = compat(&scratch, &[&v06, &o8a], &["--json"]);
    out.expect(0, "\"passed\": true");
    validate_json(&out.stdout);
    let report = report(&out);
    assert_eq!(report["plugins"][1]["plugin"], "iu-cutter 0.6-o8a");
    assert_eq!(check(&report, 0, "pin_matches").0, "pass");
    // The suite's folder holds its report and both plugins' dry runs.
    let folder = PathBuf::from(report["run_dir"].as_str().expect("run_dir"));
    let saved: Value =
        serde_json::from_str(&fs::read_to_string(folder.join("compat.json")).expect("compat.json"))
            .expect("json");
    assert_eq!(saved, report);
    let run: Value =
        serde_json::from_str(&fs::read_to_string(folder.join("run.json")).expect("run.json"))
            .expect("json");
    assert_eq!((run["kind"].as_str(), run["state"].as_str()), (Some("compat"), Some("completed")));
    for side in ["1-iu-cutter-v0.6/a", "1-iu-cutter-v0.6/b", "2-iu-cutter-v0.6-o8a/b"] {
        assert!(folder.join(side).join("summary.json").is_file(), "{side}");
    }
}

#[test]
fn expectations_hold_or_fail_by_name_and_an_unknown_key_is_an_error() {
    let scratch = Scratch::new();
    let v06 = scratch.reference("iu-cutter-v0.6");
    let o8a = scratch.reference("iu-cutter-v0.6-o8a");
    let expect = workspace_root().join("plugins/iu-cutter-v0.6-o8a/expect.toml");
    let expect = path_str(&expect);

    let out = compat(&scratch, &[&o8a], &["--expect", expect]);
    out.expect(0, "  pass  expect.live_wiring");
    assert!(out.stdout.contains("O8A-LIVE-WIRING-1 matches `O8A-*`"), "{}", out.stdout);
    let line = |name: &str| {
        let prefix = format!("  pass  {name} ");
        let line = out.stdout.lines().find(|l| l.starts_with(&prefix));
        line.unwrap_or_else(|| panic!("no passing {name}:\n{}", out.stdout)).to_owned()
    };
    assert!(line("expect.capabilities").ends_with(" declares LiveExecutionAdapter"));
    assert!(line("expect.execution_enabled")
        .ends_with(" read false, then false, then false (expected false)"));

    // The deployed version has neither the marker nor the adapter.
    let out = compat(&scratch, &[&v06], &["--expect", expect, "--json"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let report = report(&out);
    assert_eq!(check(&report, 0, "expect.live_wiring"), ("fail", "(none) does not match `O8A-*`"));
    assert_eq!(
        check(&report, 0, "expect.capabilities"),
        ("fail", "does not declare LiveExecutionAdapter (declares (none))")
    );
    assert_eq!(check(&report, 0, "expect.version"), ("fail", "0.6 does not match `0.6-o8a`"));
    assert_eq!(check(&report, 0, "expect.execution_enabled").0, "pass");
    assert_eq!(check(&report, 0, "deterministic").0, "pass");

    let suites = || fs::read_dir(scratch.path().join("runs")).expect("runs").count();
    let before = suites();
    let typo = scratch.path().join("typo.toml");
    fs::write(&typo, "execution_enabled = false\nlive_wirring = \"O8A-*\"\n").expect("write");
    let out = compat(&scratch, &[&o8a], &["--expect", path_str(&typo)]);
    out.expect(2, "unknown field `live_wirring`");
    let errors: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    assert!(
        errors[0]
            .starts_with(&format!("error: --expect {}: line 2: unknown field", typo.display())),
        "{}",
        errors[0]
    );
    assert_eq!(suites(), before, "nothing ran");
}

#[test]
fn the_frozen_abi_plugin_passes_with_the_panic_probe_skipped() {
    let scratch = Scratch::new();
    let frozen = scratch.test_plugin_as("abi_v0_1_0", "frozen-abi-plugin-v1.0");
    let out = compat(&scratch, &[&frozen], &["--json"]);
    out.expect(0, "\"passed\": true");
    let report = report(&out);
    assert_eq!(report["plugins"][0]["abi_version"], "0.1.0");
    assert_eq!(
        check(&report, 0, "panic_contained"),
        (
            "skip",
            "the plugin's SDK has no panic probe (built against sidecar-abi 0.1.0; the probe is \
             in the SDK from 0.1.1)"
        )
    );
    assert_eq!(check(&report, 0, "deterministic").0, "pass");
}

/// A hostile variant, the check it must fail, and what the detail names.
const HOSTILE: &[(&str, &str, &str)] = &[
    (
        "panic_in_phase",
        "phases_dry_run",
        "Panicked: run_phase panicked: deliberate panic in phase discover",
    ),
    ("abort_in_phase", "phases_dry_run", "worker died during phase `record` on batch 0: killed by SIGABRT"),
    (
        "segfault_in_describe",
        "description_well_formed",
        "worker died during `describe`: killed by SIGSEGV",
    ),
    (
        "hang_in_describe",
        "description_well_formed",
        "`describe` did not answer within 2s; worker killed",
    ),
    ("wrong_identity", "description_well_formed", "identity mismatch"),
    (
        "execution_enabled",
        "execution_disabled_before",
        "execution_enabled is true: the kill-switch is on",
    ),
    ("accepts_live", "live_refused", "accepted the live run"),
    (
        "flips_execution_enabled",
        "execution_disabled_after",
        "execution_enabled read true after a run",
    ),
    ("unsafe_phase", "phases_dry_run", "side effects"),
    ("invalid_plan", "phases_dry_run", "phase `record` on batch 1"),
    ("nondeterministic", "deterministic", "differ in phase(s) record"),
    (
        "plan_count_mismatch",
        "plans_match_counts",
        "the plan does not match its counts: records = 2, but the plan holds 1 insert on \
         information_unit (attribute `plan.count.insert.information_unit`)",
    ),
    ("hang_in_phase", "phases_dry_run", "phase `record` on batch 0 did not answer within 2s; worker killed"),
    ("allocates_unbounded", "phases_dry_run", "worker ran out of memory during phase `record` on batch 0 (limit 256 MiB; --worker-memory)"),
    (
        "incompatible_abi",
        "abi_compatible",
        "too many variants in `Mode` (host expects 2, plugin has 3)",
    ),
    ("no_root_module", "library_loads", "not a sidecar plugin"),
];

/// Hostile variants whose every attempt the sandbox stops: they pass, and
/// their dry runs show what they tried and found.
const CONTAINED: &[&str] = &["writes_own_dir", "reads_secret_env", "opens_sockets"];

/// A secret the host's environment holds while the suite runs.
const SECRET: &str = "s3cr3t-Pa55w0rd";

#[test]
fn hostile_plugins_are_each_contained_and_reported_by_name() {
    let scratch = Scratch::new();
    let variants = HOSTILE.iter().map(|(v, _, _)| *v).chain(CONTAINED.iter().copied());
    let mut dirs: Vec<PathBuf> = variants.map(|v| scratch.test_plugin(v)).collect();
    // The well-behaved plugin runs last, after every hostile one.
    dirs.push(scratch.test_plugin("well_behaved"));
    let dirs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();

    let secrets = [("PGPASSWORD", SECRET), ("AWS_SECRET_ACCESS_KEY", SECRET)];
    let extra = ["--json", "--timeout", "2", "--worker-memory", "256M"];
    let out = compat_env(&scratch, &dirs, &extra, &secrets);
    assert_eq!(out.code, Some(1), "{out:#?}");
    validate_json(&out.stdout);
    let report = report(&out);
    for (index, (variant, failing, detail)) in HOSTILE.iter().enumerate() {
        let plugin = &report["plugins"][index];
        assert!(plugin["dir"].as_str().expect("dir").contains(variant), "{plugin:#}");
        assert_eq!(plugin["passed"], false, "{variant}: {plugin:#}");
        let (status, text) = check(&report, index, failing);
        assert_eq!(status, "fail", "{variant}: {failing}: {text}");
        assert!(text.contains(detail), "{variant}: {failing}: `{text}` lacks `{detail}`");
        // Whatever the plugin did, its directory was never written.
        assert_eq!(check(&report, index, "directory_unchanged").0, "pass", "{variant}");
    }
    for (offset, variant) in CONTAINED.iter().enumerate() {
        let index = HOSTILE.len() + offset;
        let plugin = &report["plugins"][index];
        assert_eq!(plugin["passed"], true, "{variant}: {plugin:#}");
        assert_eq!(check(&report, index, "directory_unchanged").0, "pass", "{variant}");
        let run = PathBuf::from(plugin["dry_runs"].as_str().expect("dry runs")).join("a");
        let summary = read_json(&run.join("summary.json"));
        let discover = &summary["phases"][0];
        assert_eq!(discover["name"], "discover");
        if *variant == "reads_secret_env" {
            assert_eq!(discover["counts"]["env_vars_seen"], 0, "{discover:#}");
        } else if *variant == "opens_sockets" {
            // Not one socket could be made, on any batch: UDP, unix by
            // path (without the filter: "No such file" or a connection),
            // TCP.
            let examples = discover["examples"].as_array().expect("findings");
            assert_eq!(examples.len(), 8, "four attempts on each of two batches: {discover:#}");
            for finding in examples {
                assert_eq!(finding["message"], "Permission denied (os error 13)", "{finding:#}");
            }
        } else {
            let examples = discover["examples"].as_array().expect("findings");
            assert!(!examples.is_empty(), "{discover:#}");
            // It found the plugin directories on the host's command line,
            // and every file it tried to create was refused (a test plugin
            // directory has no README to append to).
            for finding in examples {
                let message = finding["message"].as_str().expect("message");
                assert!(!message.ends_with(": done"), "{variant}: {message}");
                if message.contains("create:") {
                    assert!(message.ends_with("Permission denied (os error 13)"), "{message}");
                }
            }
        }
    }
    assert!(!out.stdout.contains(SECRET), "the secret reached the report");
    let well_behaved = HOSTILE.len() + CONTAINED.len();
    assert_eq!(
        report["plugins"][well_behaved]["passed"], true,
        "{:#}",
        report["plugins"][well_behaved]
    );
    for name in CHECKS {
        let (status, detail) = check(&report, well_behaved, name);
        let expected = if name == "pin_matches" { "skip" } else { "pass" };
        assert_eq!(status, expected, "well_behaved {name}: {detail}");
    }
}

#[test]
fn a_directory_off_its_pin_or_its_manifest_runs_nothing() {
    let scratch = Scratch::new();
    let resealed = scratch.reference("iu-cutter-v0.6");
    scratch.sidecar(&["lock", path_str(&resealed)]).expect(0, "pinned");
    // Re-sealed after an edit: it verifies against itself, not its pin.
    fs::write(resealed.join("README.md"), "edited\n").expect("edit");
    scratch.seal(&resealed);
    let tampered = scratch.reference("iu-cutter-v0.6-o8a");
    fs::write(tampered.join("README.md"), "edited\n").expect("edit");

    let out = compat(&scratch, &[&resealed, &tampered], &["--json"]);
    assert_eq!(out.code, Some(1), "{out:#?}");
    let report = report(&out);
    assert_eq!(check(&report, 0, "manifest_verifies").0, "pass");
    let (status, detail) = check(&report, 0, "pin_matches");
    assert_eq!(status, "fail");
    assert!(detail.contains("sidecar.lock"), "{detail}");
    assert_eq!(
        check(&report, 0, "library_loads"),
        ("skip", "not run: the directory does not match its pin")
    );
    assert_eq!(check(&report, 0, "directory_unchanged").0, "pass");

    let (status, detail) = check(&report, 1, "manifest_verifies");
    assert_eq!(status, "fail");
    assert!(detail.starts_with("README.md: "), "{detail}");
    assert_eq!(
        check(&report, 1, "phases_dry_run"),
        ("skip", "not run: the directory does not verify")
    );
    assert_eq!(check(&report, 1, "directory_unchanged").0, "skip");
    for index in 0..2 {
        assert_eq!(report["plugins"][index]["dry_runs"], Value::Null, "nothing ran");
    }
}
