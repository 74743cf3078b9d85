//! `inspect`: verified loading in a worker process. Each broken or hostile
//! library is refused or contained with its own reason, and the host always
//! exits with a documented code instead of crashing.

use std::fs;

use serde::Deserialize;
use sidecar_tests::{path_str, snapshot, Scratch};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InspectJson {
    schema_version: u32,
    dir: String,
    name: String,
    version: String,
    milestone: String,
    live_wiring: String,
    phases: Vec<PhaseJson>,
    capabilities: Vec<String>,
    attributes: std::collections::BTreeMap<String, String>,
    execution_enabled: bool,
    live_refusal: LiveRefusalJson,
    abi_version: String,
    host_abi_version: String,
    library: String,
    artifact_sha256: String,
    manifest_sha256: Option<String>,
    pinned: Option<bool>,
    sandbox: SandboxJson,
    refusals: Vec<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct SandboxJson {
    landlock_abi: Option<u32>,
    denies: Vec<String>,
    unconfined: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PhaseJson {
    name: String,
    side_effects: String,
    dry_run_safe: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiveRefusalJson {
    refused: bool,
    answer: String,
}

const PHASES: [&str; 6] =
    ["discover", "backup", "cut_leg_a", "leg_b_record", "write_verify", "lifecycle_enact"];

fn inspect_json(scratch: &Scratch, dir: &std::path::Path) -> InspectJson {
    let out = scratch.sidecar(&["inspect", "--json", path_str(dir)]);
    assert_eq!(out.code, Some(0), "{out:#?}");
    serde_json::from_str(&out.stdout).expect("inspect --json")
}

#[test]
fn both_reference_versions_describe_themselves() {
    let scratch = Scratch::new();
    let base = inspect_json(&scratch, &scratch.reference("iu-cutter-v0.6"));
    let staging = inspect_json(&scratch, &scratch.reference("iu-cutter-v0.6-o8a"));

    for report in [&base, &staging] {
        assert_eq!(report.schema_version, 1);
        assert_eq!(report.name, "iu-cutter");
        assert_eq!(report.phases.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), PHASES);
        assert!(report.phases.iter().all(|p| p.dry_run_safe && p.side_effects == "NoneOnDryRun"));
        assert!(!report.execution_enabled);
        assert!(report.live_refusal.refused, "{:?}", report.live_refusal);
        assert!(report.live_refusal.answer.starts_with("ProductionExecutionNotAuthorized"));
        assert_eq!(report.abi_version, report.host_abi_version);
        assert_eq!(report.library, "libiu_cutter.so");
        assert_eq!(report.artifact_sha256.len(), 64);
        assert!(report.manifest_sha256.is_some() && report.pinned.is_none());
        assert!(report.refusals.is_empty());
        // The plan-count contract: which counts are the size of which part of the plan.
        let rules: Vec<(&str, &str)> =
            report.attributes.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            rules,
            [
                ("plan.count.backup.information_unit", "units_backed_up"),
                ("plan.count.insert.information_unit", "units_inserted"),
                ("plan.count.update.information_unit", "units_superseded + units_retired"),
            ]
        );
        // What the kernel offers is what the worker reports it is confined by.
        let abi = sidecar::sys::landlock_abi().ok();
        assert_eq!(report.sandbox.landlock_abi, abi, "{:?}", report.sandbox);
        assert_eq!(report.sandbox.unconfined.is_none(), abi.is_some());
        assert_eq!(report.sandbox.denies.first().map(String::as_str), abi.map(|_| "file_writes"));
        assert!(report.dir.ends_with(&format!("iu-cutter-v{}", report.version)));
    }
    assert_eq!(
        (base.version.as_str(), base.milestone.as_str(), base.live_wiring.as_str()),
        ("0.6", "O7", "")
    );
    assert!(base.capabilities.is_empty());
    assert_eq!(staging.version, "0.6-o8a");
    assert!(staging.live_wiring.starts_with("O8A-"), "{}", staging.live_wiring);
    assert_eq!(staging.capabilities, ["LiveExecutionAdapter"]);
    // Same library file name, different bytes: two distinct artifacts.
    assert_ne!(base.artifact_sha256, staging.artifact_sha256);
}

#[test]
fn inspect_leaves_the_plugin_directory_byte_identical() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6-o8a");
    let before = snapshot(&dir);
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(0, "iu-cutter 0.6-o8a");
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn inspect_refuses_a_directory_that_does_not_verify_before_running_it() {
    let scratch = Scratch::new();
    // A library that would crash if it ran: verification must stop it first.
    let dir = scratch.test_plugin("abort_in_describe");
    fs::write(dir.join("stray.txt"), "x").expect("write");
    let out = scratch.sidecar(&["inspect", path_str(&dir)]);
    out.expect(1, "verification failed: stray.txt: not listed in the manifest");
    assert!(!out.stderr.contains("worker died"), "{out:#?}");
}

#[test]
fn a_truncated_library_is_refused() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let lib = dir.join("libiu_cutter.so");
    // An interrupted copy: the ELF header survives, the segments it maps do
    // not. (A cut near the end can still load: debug info sits there.)
    let bytes = fs::read(&lib).expect("read");
    fs::write(&lib, &bytes[..4096]).expect("write");
    scratch.seal(&dir);
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(
        1,
        "libiu_cutter.so: not a loadable library: truncated: a loadable segment ends at byte",
    );
}

#[test]
fn a_file_that_is_not_elf_is_refused() {
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    fs::write(dir.join("libiu_cutter.so"), "#!/bin/sh\necho pwned\n").expect("write");
    scratch.seal(&dir);
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(1, "libiu_cutter.so: not a loadable library: not an ELF file (it starts with `#!/bin/sh.echo p`)");
}

#[test]
fn a_library_without_the_root_module_is_refused() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("no_root_module");
    scratch
        .sidecar(&["inspect", path_str(&dir)])
        .expect(1, "not a sidecar plugin: the library exports no abi_stable root module");
}

#[test]
fn a_plugin_built_against_a_changed_abi_is_refused_in_one_line() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("incompatible_abi");
    let out = scratch.sidecar(&["inspect", path_str(&dir)]);
    out.expect(1, "incompatible ABI: too many variants in `Mode` (host expects 2, plugin has 3)");
    // One line of reason, not abi_stable's couple of hundred.
    assert!(out.stderr.lines().count() <= 3, "{out:#?}");
}

#[test]
fn a_panic_inside_a_call_is_contained() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("panic_in_describe");
    scratch
        .sidecar(&["inspect", path_str(&dir)])
        .expect(1, "Panicked: describe panicked: deliberate panic in describe");
}

#[test]
fn an_abort_ends_the_worker_only() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("abort_in_describe");
    scratch
        .sidecar(&["inspect", path_str(&dir)])
        .expect(1, "cannot load plugin")
        .expect(1, "worker died during `describe`: killed by SIGABRT");
}

#[test]
fn a_segfault_ends_the_worker_only() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("segfault_in_describe");
    scratch
        .sidecar(&["inspect", path_str(&dir)])
        .expect(1, "worker died during `describe`: killed by SIGSEGV");
}

#[test]
fn a_hang_is_cut_off_by_the_call_deadline() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("hang_in_describe");
    let started = std::time::Instant::now();
    scratch
        .sidecar(&["inspect", "--timeout", "1", path_str(&dir)])
        .expect(1, "`describe` did not answer within 1s; worker killed");
    // Generous bound: this guards against waiting forever, not a speed target.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn a_plugin_that_is_not_what_its_manifest_says_is_refused() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("wrong_identity");
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(
        1,
        "the manifest says test-plugin 1.0 but the plugin describes itself as impostor 1.0",
    );
}

#[test]
fn a_plugin_shipping_with_execution_enabled_is_refused_by_policy() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("execution_enabled");
    scratch
        .sidecar(&["inspect", path_str(&dir)])
        .expect(3, "refused: the plugin's kill-switch is on (execution_enabled = true)");
}

#[test]
fn inspect_reports_a_phase_that_is_not_dry_run_safe() {
    let scratch = Scratch::new();
    let dir = scratch.test_plugin("unsafe_phase");
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(0, "mutate (side effects: Some)");
}

#[test]
fn inspect_reports_the_artifact_digest_the_manifest_names() {
    // (That the loaded bytes cannot change after hashing is proven by the
    // sealed-memfd unit test in host/src/sys.rs.)
    let scratch = Scratch::new();
    let dir = scratch.reference("iu-cutter-v0.6");
    let report = inspect_json(&scratch, &dir);
    let manifest = fs::read_to_string(dir.join("DEPLOY-MANIFEST.txt")).expect("manifest");
    assert!(manifest.contains(&format!("# artifact_sha256: {}", report.artifact_sha256)));
}
