//! `sidecar seal DIR`: hash every file of a plugin directory and write its
//! `DEPLOY-MANIFEST.txt`. The only command that writes into a plugin
//! directory, and it writes only that one file, atomically.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::SealArgs;
use crate::exit::{ExitStatus, UsageError};
use crate::integrity::manifest::{Manifest, MANIFEST_FILE};
use crate::integrity::tree;

/// Runs `sidecar seal`.
pub fn run(args: &SealArgs) -> anyhow::Result<ExitStatus> {
    let dir = &args.dir;
    let from_dir_name = identity_from_dir_name(dir);
    let (name, version) = match (&args.name, &args.version, from_dir_name) {
        (Some(name), Some(version), _) => (name.clone(), version.clone()),
        (name, version, Some((dir_name, dir_version))) => {
            (name.clone().unwrap_or(dir_name), version.clone().unwrap_or(dir_version))
        }
        _ => {
            return Err(UsageError(format!(
                "cannot tell the plugin's name and version from `{}` (expected a directory named \
                 <name>-v<version>); pass --name and --plugin-version",
                dir.display()
            ))
            .into())
        }
    };
    let library = match &args.library {
        Some(library) => library.clone(),
        None => find_library(dir)?,
    };
    let previous = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|t| Manifest::parse(&t).ok());
    let manifest = tree::seal(dir, &name, &version, &library)
        .with_context(|| format!("cannot seal `{}`", dir.display()))?;
    if let Some(previous) = previous.filter(|p| p.artifact_sha256 != manifest.artifact_sha256) {
        tracing::warn!(
            "re-sealed `{}`: artifact_sha256 was {}",
            dir.display(),
            previous.artifact_sha256
        );
    }
    println!(
        "sealed {}  {} {}  {} files  artifact_sha256 {}",
        dir.display(),
        manifest.name,
        manifest.version,
        manifest.entries.len(),
        manifest.artifact_sha256
    );
    Ok(ExitStatus::Success)
}

/// `iu-cutter-v0.6-o8a` → (`iu-cutter`, `0.6-o8a`): the name is everything
/// before the first `-v` that is followed by a digit.
fn identity_from_dir_name(dir: &Path) -> Option<(String, String)> {
    let base = dir.canonicalize().ok()?.file_name()?.to_str()?.to_owned();
    let at = base
        .match_indices("-v")
        .map(|(i, _)| i)
        .find(|&i| base[i + 2..].chars().next().is_some_and(|c| c.is_ascii_digit()))?;
    let (name, version) = (&base[..at], &base[at + 2..]);
    (!name.is_empty()).then(|| (name.to_owned(), version.to_owned()))
}

fn find_library(dir: &Path) -> anyhow::Result<String> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read `{}`", dir.display()))?;
    let mut libraries: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.starts_with("lib") && name.ends_with(".so"))
        .collect();
    libraries.sort();
    match libraries.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(UsageError(format!(
            "expected exactly one lib*.so at the top of `{}`, found {}; pass --library",
            dir.display(),
            if libraries.is_empty() { "none".to_owned() } else { libraries.join(", ") }
        ))
        .into()),
    }
}
