//! `seal`, `verify` and `lock` on real plugin directories: every way a tree
//! can differ from its manifest is refused with its own exit code and a
//! reason that names the file.

use std::fs;
use std::os::unix::fs::symlink;

use serde::Deserialize;
use sidecar_tests::{path_str, Scratch};

const V06: &str = "iu-cutter-v0.6";

#[test]
fn sealed_reference_plugins_verify() {
    let scratch = Scratch::new();
    let a = scratch.reference(V06);
    let b = scratch.reference("iu-cutter-v0.6-o8a");
    let out = scratch.sidecar(&["verify", path_str(&a), path_str(&b)]);
    out.expect(0, "iu-cutter 0.6  2 files");
    assert_eq!(out.stdout.lines().filter(|l| l.starts_with("ok ")).count(), 2, "{out:#?}");
}

#[test]
fn sha256sum_accepts_the_manifest() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    let status = std::process::Command::new("sha256sum")
        .args(["--check", "--strict", "--quiet", "DEPLOY-MANIFEST.txt"])
        .current_dir(&dir)
        .status()
        .expect("sha256sum");
    assert!(status.success());
}

#[test]
fn one_flipped_byte_is_caught_and_named() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    let lib = dir.join("libiu_cutter.so");
    let mut bytes = fs::read(&lib).expect("read");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(&lib, bytes).expect("write");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "libiu_cutter.so: contents changed (expected sha256");
}

#[test]
fn an_added_file_is_caught_and_named() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    fs::create_dir(dir.join("hooks")).expect("mkdir");
    fs::write(dir.join("hooks/post-load.sh"), "#!/bin/sh\n").expect("write");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "hooks/post-load.sh: not listed in the manifest");
}

#[test]
fn a_removed_file_is_caught_and_named() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    fs::remove_file(dir.join("README.md")).expect("rm");
    scratch.sidecar(&["verify", path_str(&dir)]).expect(1, "README.md: listed but missing");
}

#[test]
fn a_symlink_is_refused_not_followed() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    fs::remove_file(dir.join("README.md")).expect("rm");
    symlink("/etc/passwd", dir.join("README.md")).expect("symlink");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "README.md: symbolic link (refused, never followed)");
    // Sealing refuses it too, so a symlink can never be blessed.
    scratch.sidecar(&["seal", path_str(&dir)]).expect(1, "README.md: symbolic link");
}

#[test]
fn a_non_utf8_name_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    fs::write(dir.join(std::ffi::OsStr::from_bytes(b"bad-\xff.txt")), "x").expect("write");
    scratch.sidecar(&["verify", path_str(&dir)]).expect(1, "file name is not UTF-8");
}

#[test]
fn an_edited_manifest_is_caught() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    // Point the README's entry at other contents without fixing the header:
    // the artifact digest no longer matches the entry lines.
    fs::write(dir.join("README.md"), "edited\n").expect("write");
    let manifest = dir.join("DEPLOY-MANIFEST.txt");
    let text = fs::read_to_string(&manifest).expect("read");
    let readme_line = text.lines().find(|l| l.ends_with("  README.md")).expect("README entry");
    let forged = format!("{}  README.md", sha256_hex(b"edited\n"));
    fs::write(&manifest, text.replace(readme_line, &forged)).expect("write");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "DEPLOY-MANIFEST.txt: edited: artifact_sha256 is");
}

#[test]
fn a_manifest_path_that_escapes_is_refused_with_its_line() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    let manifest = dir.join("DEPLOY-MANIFEST.txt");
    let text = fs::read_to_string(&manifest).expect("read");
    fs::write(&manifest, text.replace("  README.md", "  ../README.md")).expect("write");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "path `../README.md`: `..` escapes the directory");
}

#[test]
fn a_missing_manifest_says_to_seal() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    fs::remove_file(dir.join("DEPLOY-MANIFEST.txt")).expect("rm");
    scratch
        .sidecar(&["verify", path_str(&dir)])
        .expect(1, "DEPLOY-MANIFEST.txt: missing (seal the directory)");
}

#[test]
fn a_resealed_tamper_verifies_against_itself_but_fails_the_pin() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    scratch.sidecar(&["lock", path_str(&dir)]).expect(0, "pinned    iu-cutter 0.6");

    fs::write(dir.join("README.md"), "tampered\n").expect("write");
    scratch.seal(&dir);
    // The lock in the current directory is picked up without --lock.
    scratch.sidecar(&["verify", path_str(&dir)]).expect(1, "does not match the pin");
    // Without a lock file in use, the re-sealed tree verifies against itself.
    let elsewhere = Scratch::new();
    elsewhere.sidecar(&["verify", path_str(&dir)]).expect(0, "ok ");
    // Loading checks the pin before any plugin code runs.
    scratch.sidecar(&["inspect", path_str(&dir)]).expect(1, "does not match the pin");
}

#[test]
fn a_pin_never_moves_without_update() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    scratch.sidecar(&["lock", path_str(&dir)]).expect(0, "pinned");
    fs::write(dir.join("README.md"), "new docs\n").expect("write");
    scratch.seal(&dir);
    let before = fs::read_to_string(scratch.path().join("sidecar.lock")).expect("lock");
    scratch
        .sidecar(&["lock", path_str(&dir)])
        .expect(1, "hint: review the change, then rerun with --update");
    assert_eq!(fs::read_to_string(scratch.path().join("sidecar.lock")).expect("lock"), before);
    scratch.sidecar(&["lock", "--update", path_str(&dir)]).expect(0, "moved     iu-cutter 0.6");
}

#[test]
fn lock_writes_nothing_when_a_directory_fails() {
    let scratch = Scratch::new();
    let good = scratch.reference(V06);
    let bad = scratch.reference("iu-cutter-v0.6-o8a");
    fs::remove_file(bad.join("README.md")).expect("rm");
    scratch
        .sidecar(&["lock", path_str(&good), path_str(&bad)])
        .expect(1, "README.md: listed but missing");
    assert!(!scratch.path().join("sidecar.lock").exists());
}

#[test]
fn a_malformed_lock_file_is_a_usage_error_naming_the_line() {
    let scratch = Scratch::new();
    let dir = scratch.reference(V06);
    let lock = scratch.path().join("pins.lock");
    fs::write(&lock, "version = 1\n[[plugin]]\nname = \"iu-cutter\"\nversion = \"0.6\"\nartifact_sha256 = \"nope\"\n")
        .expect("write");
    scratch
        .sidecar(&["verify", "--lock", path_str(&lock), path_str(&dir)])
        .expect(2, "pins.lock: line 5: expected 64 lowercase hex digits");
}

#[test]
fn usage_errors_exit_2() {
    let scratch = Scratch::new();
    scratch.sidecar(&["verify"]).expect(2, "required");
    scratch.sidecar(&["verify", "--no-such-flag", "x"]).expect(2, "--no-such-flag");
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyJson {
    schema_version: u32,
    ok: bool,
    lock: Option<String>,
    directories: Vec<DirectoryJson>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryJson {
    dir: String,
    ok: bool,
    name: Option<String>,
    version: Option<String>,
    artifact_sha256: Option<String>,
    manifest_sha256: Option<String>,
    files: Option<usize>,
    pinned: Option<bool>,
    problems: Vec<serde_json::Map<String, serde_json::Value>>,
}

#[test]
fn verify_json_is_one_typed_document() {
    let scratch = Scratch::new();
    let good = scratch.reference(V06);
    let bad = scratch.reference("iu-cutter-v0.6-o8a");
    fs::write(bad.join("extra"), "x").expect("write");
    let out = scratch.sidecar(&["verify", "--json", path_str(&good), path_str(&bad)]);
    assert_eq!(out.code, Some(1));
    let report: VerifyJson = serde_json::from_str(&out.stdout).expect("verify --json");
    assert_eq!((report.schema_version, report.ok, report.lock.as_deref()), (1, false, None));
    let [good_report, bad_report] = &report.directories[..] else {
        panic!("two directories: {report:?}")
    };
    assert!(good_report.ok && good_report.problems.is_empty());
    assert_eq!(good_report.dir, path_str(&good));
    assert_eq!(
        (good_report.name.as_deref(), good_report.version.as_deref()),
        (Some("iu-cutter"), Some("0.6"))
    );
    assert_eq!(good_report.files, Some(2));
    assert_eq!(good_report.artifact_sha256.as_ref().map(String::len), Some(64));
    assert_eq!(good_report.manifest_sha256.as_ref().map(String::len), Some(64));
    assert_eq!(good_report.pinned, None);
    assert!(!bad_report.ok);
    assert_eq!(bad_report.problems.len(), 1);
    assert_eq!(bad_report.problems[0]["kind"], "unlisted");
    assert_eq!(bad_report.problems[0]["path"], "extra");
    assert_eq!(bad_report.problems[0]["message"], "extra: not listed in the manifest");
}

fn sha256_hex(bytes: &[u8]) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write as _;
    child.stdin.take().expect("stdin").write_all(bytes).expect("write");
    let out = child.wait_with_output().expect("sha256sum output");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().expect("digest").to_owned()
}

#[test]
fn diff_tree_lists_changed_new_and_gone_files_like_diff_rq() {
    let scratch = Scratch::new();
    let a = scratch.reference("iu-cutter-v0.6");
    let b = scratch.reference("iu-cutter-v0.6-o8a");
    let same = scratch.sidecar(&["diff-tree", path_str(&a), path_str(&a)]);
    same.expect(0, "");
    assert_eq!(same.stdout, "", "identical trees print nothing");

    fs::write(b.join("CHANGELOG.md"), "o8a\n").expect("write");
    fs::remove_file(b.join("README.md")).expect("remove");
    scratch.seal(&b);
    let out = scratch.sidecar(&["diff-tree", path_str(&a), path_str(&b)]);
    out.expect(1, "");
    let (a_str, b_str) = (path_str(&a), path_str(&b));
    assert_eq!(
        out.stdout,
        format!(
            "Files {a_str}/libiu_cutter.so and {b_str}/libiu_cutter.so differ\n\
             Only in {a_str}: README.md\n\
             Only in {b_str}: CHANGELOG.md\n"
        )
    );

    let json = scratch.sidecar(&["diff-tree", path_str(&a), path_str(&b), "--json"]);
    json.expect(1, "\"identical\": false");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["a"]["version"], "0.6");
    assert_eq!(doc["b"]["version"], "0.6-o8a");
    assert_eq!(doc["changed"][0]["path"], "libiu_cutter.so");
    assert_eq!(doc["only_in_a"][0]["path"], "README.md");
    assert_eq!(doc["only_in_b"][0]["path"], "CHANGELOG.md");
}

#[test]
fn diff_tree_refuses_a_directory_that_does_not_verify() {
    let scratch = Scratch::new();
    let a = scratch.reference("iu-cutter-v0.6");
    let b = scratch.reference("iu-cutter-v0.6-o8a");
    fs::write(b.join("README.md"), "tampered\n").expect("write");
    let out = scratch.sidecar(&["diff-tree", path_str(&a), path_str(&b)]);
    out.expect(2, "cannot compare directories that do not verify");
    assert!(out.stderr.contains("README.md"), "{out:#?}");
    assert_eq!(out.stdout, "");
}
