//! Helpers for the end-to-end tests: find the binary and the plugin
//! directories `make` built, run the binary, and make tamperable copies.
//!
//! The tests drive `target/release/sidecar` as an operator would. `make test`
//! builds it, the reference plugins (`target/plugins/`) and the test-only
//! plugins (`target/test-plugins/`) first; a helper that finds one missing
//! panics with that hint rather than skipping.

pub mod pg;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_owned()
}

/// Cargo's target directory.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace_root().join("target"), PathBuf::from)
}

fn built(path: PathBuf) -> PathBuf {
    assert!(path.exists(), "{} is missing: run the tests with `make test`", path.display());
    path
}

/// The `sidecar` binary under test.
pub fn sidecar_bin() -> PathBuf {
    built(target_dir().join("release/sidecar"))
}

/// A sealed reference plugin directory, e.g. `iu-cutter-v0.6`.
pub fn reference_plugin(name: &str) -> PathBuf {
    built(target_dir().join("plugins").join(name))
}

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Outcome {
    /// The exit code; `None` if a signal ended the host (never acceptable).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code and that stdout or stderr contains `needle`.
    #[track_caller]
    pub fn expect(&self, code: i32, needle: &str) -> &Self {
        assert_eq!(self.code, Some(code), "exit code\n{self:#?}");
        assert!(
            self.stdout.contains(needle) || self.stderr.contains(needle),
            "expected `{needle}` in the output\n{self:#?}"
        );
        self
    }
}

/// Runs `sidecar` with `args` in `cwd` (so no stray `./sidecar.lock` is
/// picked up from the repository).
pub fn sidecar_in(cwd: &Path, args: &[&str]) -> Outcome {
    sidecar_in_env(cwd, args, &[])
}

/// [`sidecar_in`] with `env` added to the environment the host inherits.
pub fn sidecar_in_env(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let output = Command::new(sidecar_bin())
        .args(args)
        .current_dir(cwd)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run sidecar");
    Outcome {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A scratch directory holding copies of plugin directories.
#[derive(Debug)]
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    /// A new, empty scratch directory.
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    /// The scratch directory's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `sidecar` in the scratch directory.
    pub fn sidecar(&self, args: &[&str]) -> Outcome {
        sidecar_in(self.path(), args)
    }

    /// Dry-runs `dir` into `<scratch>/runs` with `extra` arguments; returns
    /// the outcome and the run folder it wrote last.
    pub fn dry_run(&self, dir: &Path, extra: &[&str]) -> (Outcome, PathBuf) {
        self.dry_run_env(dir, extra, &[])
    }

    /// [`Scratch::dry_run`] with `env` added to the host's environment.
    pub fn dry_run_env(
        &self,
        dir: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> (Outcome, PathBuf) {
        let runs = self.path().join("runs");
        let mut args = vec!["dry-run", path_str(dir), "--runs-dir", path_str(&runs)];
        args.extend_from_slice(extra);
        let out = sidecar_in_env(self.path(), &args, env);
        let run = fs::read_dir(&runs)
            .expect("a run folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .max_by_key(|p| fs::metadata(p.join("run.json")).and_then(|m| m.modified()).ok())
            .expect("one run folder");
        (out, run)
    }

    /// A copy of a sealed reference plugin, under its own name.
    pub fn reference(&self, name: &str) -> PathBuf {
        let to = self.path().join(name);
        copy_tree(&reference_plugin(name), &to);
        to
    }

    /// A sealed directory `test-plugin-v1.0` holding the test plugin built
    /// with `variant` (see `make test-plugins`).
    pub fn test_plugin(&self, variant: &str) -> PathBuf {
        self.test_plugin_as(variant, "test-plugin-v1.0")
    }

    /// A sealed directory named `dir_name` (`<name>-v<version>`, what the
    /// plugin describes itself as) holding the library `make` put in
    /// `test-plugins/<variant>` (see `make test-plugins` and `make abi-fixtures`).
    pub fn test_plugin_as(&self, variant: &str, dir_name: &str) -> PathBuf {
        let from = built(target_dir().join("test-plugins").join(variant));
        let to = self.path().join(variant).join(dir_name);
        copy_tree(&from, &to);
        self.seal(&to);
        to
    }

    /// Seals `dir`, asserting success.
    pub fn seal(&self, dir: &Path) {
        self.sidecar(&["seal", path_str(dir)]).expect(0, "sealed");
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// A JSON file, parsed; panics naming the file.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(
        &fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A path as `&str` (test paths are UTF-8).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 test path")
}

/// Copies a directory tree of regular files.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("mkdir");
    for entry in fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Every file under `dir` with its bytes and modification time, to prove a
/// directory was not touched.
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in fs::read_dir(&current).expect("read_dir") {
            let entry = entry.expect("entry");
            let meta = entry.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                let bytes = fs::read(entry.path()).expect("read");
                out.push((entry.path(), bytes, meta.modified().expect("mtime")));
            }
        }
    }
    out.sort();
    out
}

/// The lines of a run's `queries.jsonl`, parsed.
pub fn query_log(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("queries.jsonl"))
        .expect("queries.jsonl")
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}
