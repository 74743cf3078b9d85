//! `sidecar verify DIR...`: every directory against its manifest, and
//! against its pin when a lock file is in use. Exit 0 when all verify, 1
//! when any fails; every problem of every directory is reported.

use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::exit::ExitStatus;
use crate::integrity;
use crate::integrity::lock::LockFile;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::tree::{Problem, Verified};

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// Whether every directory verified.
    pub ok: bool,
    /// The lock file used, if any.
    pub lock: Option<String>,
    /// One entry per directory, in argument order.
    pub directories: Vec<DirectoryReport>,
}

/// One directory's result.
#[derive(Debug, Serialize)]
pub struct DirectoryReport {
    /// The directory as given.
    pub dir: String,
    /// Whether it verified.
    pub ok: bool,
    /// From the manifest.
    pub name: Option<String>,
    /// From the manifest.
    pub version: Option<String>,
    /// From the manifest.
    pub artifact_sha256: Option<Sha256Digest>,
    /// The sha256 of `DEPLOY-MANIFEST.txt` itself.
    pub manifest_sha256: Option<Sha256Digest>,
    /// How many files the manifest lists.
    pub files: Option<usize>,
    /// Whether the pin matched; `null` without a lock file.
    pub pinned: Option<bool>,
    /// Everything wrong.
    pub problems: Vec<ProblemReport>,
}

/// A problem with its one-line message.
#[derive(Debug, Serialize)]
pub struct ProblemReport {
    /// The structured problem (`kind` plus fields).
    #[serde(flatten)]
    pub problem: Problem,
    /// The same, as the one line the human output prints.
    pub message: String,
}

impl DirectoryReport {
    /// Builds the report of one verification.
    pub fn new(verified: &Verified) -> Self {
        let manifest = verified.manifest.as_ref();
        Self {
            dir: verified.dir.display().to_string(),
            ok: verified.ok(),
            name: manifest.map(|m| m.name.clone()),
            version: manifest.map(|m| m.version.clone()),
            artifact_sha256: manifest.map(|m| m.artifact_sha256),
            manifest_sha256: verified.manifest_sha256,
            files: manifest.map(|m| m.entries.len()),
            pinned: verified.pinned,
            problems: verified
                .problems
                .iter()
                .map(|p| ProblemReport { problem: p.clone(), message: p.to_string() })
                .collect(),
        }
    }

    /// The human lines: a status line, then one indented line per problem.
    pub fn human(&self, lock: Option<&str>) -> String {
        let mut out = format!("{:<7} {}", if self.ok { "ok" } else { "FAILED" }, self.dir);
        if let (Some(name), Some(version), Some(files), Some(digest)) =
            (&self.name, &self.version, self.files, self.artifact_sha256)
        {
            out.push_str(&format!("  {name} {version}  {files} files  artifact_sha256 {digest}"));
        }
        if let (Some(true), Some(lock)) = (self.pinned, lock) {
            out.push_str(&format!("  pinned in {lock}"));
        }
        for problem in &self.problems {
            out.push_str(&format!("\n        {}", problem.message));
        }
        out
    }
}

/// Runs `sidecar verify`.
pub fn run(args: &VerifyArgs) -> anyhow::Result<ExitStatus> {
    let lock = LockFile::discover(args.lock.lock.as_deref())?;
    let lock_name = lock.as_ref().map(|l| l.path.display().to_string());
    let directories: Vec<DirectoryReport> = args
        .dirs
        .iter()
        .map(|dir| DirectoryReport::new(&integrity::verify(dir, &[], lock.as_ref())))
        .collect();
    let ok = directories.iter().all(|d| d.ok);
    if args.json {
        let report = VerifyReport { schema_version: 1, ok, lock: lock_name, directories };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for directory in &directories {
            println!("{}", directory.human(lock_name.as_deref()));
        }
    }
    Ok(if ok { ExitStatus::Success } else { ExitStatus::Failure })
}
