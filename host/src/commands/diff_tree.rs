//! `sidecar diff-tree DIR_A DIR_B`: which files of two plugin directories
//! differ, are new or are gone — the `diff -rq` of a release review, made
//! exact by the manifests. Both directories must verify first (and match
//! their pins when a lock file is in use): a manifest that does not describe
//! its directory cannot say how it differs. Exit codes follow `diff`: 0 the
//! same files, 1 differences, 2 trouble (including a directory that does not
//! verify).

use serde::Serialize;

use crate::cli::DiffTreeArgs;
use crate::commands::verify::DirectoryReport;
use crate::exit::ExitStatus;
use crate::integrity::diff::{self, TreeDiff};
use crate::integrity::lock::LockFile;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::{self};

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct DiffTreeReport {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// Side A.
    pub a: Side,
    /// Side B.
    pub b: Side,
    /// Whether both sides hold the same files with the same contents.
    pub identical: bool,
    /// The differences.
    #[serde(flatten)]
    pub diff: TreeDiff,
}

/// One directory.
#[derive(Debug, Serialize)]
pub struct Side {
    /// The directory as given.
    pub dir: String,
    /// From its manifest.
    pub name: String,
    /// From its manifest.
    pub version: String,
    /// From its manifest.
    pub artifact_sha256: Sha256Digest,
}

/// Runs `sidecar diff-tree`.
pub fn run(args: &DiffTreeArgs) -> anyhow::Result<ExitStatus> {
    let lock = LockFile::discover(args.lock.lock.as_deref())?;
    let lock_name = lock.as_ref().map(|l| l.path.display().to_string());
    let a = integrity::verify(&args.dir_a, &[], lock.as_ref());
    let b = integrity::verify(&args.dir_b, &[], lock.as_ref());
    let (Some(manifest_a), Some(manifest_b), true, true) =
        (&a.manifest, &b.manifest, a.ok(), b.ok())
    else {
        for verified in [&a, &b].into_iter().filter(|v| !v.ok()) {
            eprintln!("{}", DirectoryReport::new(verified).human(lock_name.as_deref()));
        }
        eprintln!("error: cannot compare directories that do not verify");
        return Ok(ExitStatus::Usage);
    };
    let diff = diff::diff(manifest_a, manifest_b);
    let identical = diff.is_empty();
    let side = |dir: &std::path::Path, m: &integrity::manifest::Manifest| Side {
        dir: dir.display().to_string(),
        name: m.name.clone(),
        version: m.version.clone(),
        artifact_sha256: m.artifact_sha256,
    };
    if args.json {
        let report = DiffTreeReport {
            schema_version: 1,
            a: side(&args.dir_a, manifest_a),
            b: side(&args.dir_b, manifest_b),
            identical,
            diff,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let (dir_a, dir_b) = (args.dir_a.display(), args.dir_b.display());
        for changed in &diff.changed {
            println!("Files {dir_a}/{0} and {dir_b}/{0} differ", changed.path);
        }
        for gone in &diff.only_in_a {
            println!("Only in {dir_a}: {}", gone.path);
        }
        for new in &diff.only_in_b {
            println!("Only in {dir_b}: {}", new.path);
        }
    }
    Ok(if identical { ExitStatus::Success } else { ExitStatus::Failure })
}
