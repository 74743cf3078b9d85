//! `sidecar lock DIR...`: pin verified directories' artifact digests.
//!
//! Nothing is written unless every directory verifies, and an existing pin
//! never moves without `--update`: a moved pin is exactly what the lock file
//! exists to catch, so it has to be a deliberate, reviewable act.

use anyhow::Context as _;

use crate::cli::LockArgs;
use crate::commands::verify::DirectoryReport;
use crate::exit::ExitStatus;
use crate::integrity::{self, lock::LockFile, lock::PinChange};

/// Runs `sidecar lock`.
pub fn run(args: &LockArgs) -> anyhow::Result<ExitStatus> {
    let mut lock = LockFile::read_or_new(&args.lock)?;
    let lock_name = lock.path.display().to_string();
    let verified: Vec<_> = args.dirs.iter().map(|dir| integrity::verify(dir, &[], None)).collect();
    if verified.iter().any(|v| !v.ok()) {
        for v in verified.iter().filter(|v| !v.ok()) {
            println!("{}", DirectoryReport::new(v).human(None));
        }
        eprintln!("error: nothing pinned: a directory that does not verify cannot be pinned");
        return Ok(ExitStatus::Failure);
    }

    let mut lines = Vec::new();
    let mut refused = false;
    for v in &verified {
        let manifest = v.manifest.as_ref().context("a verified directory has a manifest")?;
        let who = format!("{} {}", manifest.name, manifest.version);
        match lock.pin_manifest(manifest, args.update) {
            Ok(PinChange::Added) => {
                lines.push(format!("pinned    {who}  {}", manifest.artifact_sha256))
            }
            Ok(PinChange::Unchanged) => {
                lines.push(format!("unchanged {who}  {}", manifest.artifact_sha256))
            }
            Ok(PinChange::Replaced(old)) => lines.push(format!(
                "moved     {who}  {} -> {}",
                old.artifact_sha256, manifest.artifact_sha256
            )),
            Err(existing) => {
                refused = true;
                eprintln!(
                    "error: {who} is pinned to {} in {lock_name} but `{}` has {}\n\
                     hint: review the change, then rerun with --update to move the pin",
                    existing.artifact_sha256,
                    v.dir.display(),
                    manifest.artifact_sha256
                );
            }
        }
    }
    if refused {
        return Ok(ExitStatus::Failure);
    }
    lock.write()?;
    for line in lines {
        println!("{line}");
    }
    Ok(ExitStatus::Success)
}
