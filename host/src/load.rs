//! Verify, then load: the only way the host brings a plugin to life.
//!
//! The order is the invariant: the library is copied into a sealed memfd
//! and hashed there, the whole directory is verified against its manifest
//! (with the library's digest taken from the sealed copy) and against the
//! lock file's pin, and only then is a worker started on the sealed copy.
//! The worker never opens the plugin directory.

use std::path::Path;

use crate::integrity::lock::LockFile;
use crate::integrity::manifest::{Manifest, MANIFEST_FILE};
use crate::integrity::{self, tree::Verified};
use crate::plugin::PluginInfo;
use crate::sys::SealedLibrary;
use crate::worker::{Limits, Worker, WorkerError};

/// A verified plugin running in its own worker.
#[derive(Debug)]
pub struct LoadedPlugin {
    /// The verification result (always clean here).
    pub verified: Verified,
    /// The manifest it verified against.
    pub manifest: Manifest,
    /// The interface version the plugin was built against.
    pub abi_version: String,
    /// What the plugin declares.
    pub info: PluginInfo,
    /// Its worker.
    pub worker: Worker,
}

/// Why a plugin could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The directory did not verify; nothing of it ran.
    #[error("verification failed: {}", .0.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Verification(Box<Verified>),
    /// The worker failed to load or describe the plugin.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The verified library is not a complete shared object for this host.
    #[error("{path}: not a loadable library: {reason}")]
    NotALibrary {
        /// The library's path in the directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The verified library could not be copied into sealed memory.
    #[error("{path}: cannot copy the library into sealed memory: {source}")]
    Library {
        /// The library's path in the directory.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The plugin is not what its manifest says.
    #[error("identity mismatch: the manifest says {manifest} but the plugin describes itself as {plugin}")]
    IdentityMismatch {
        /// `name version` from the manifest.
        manifest: String,
        /// `name version` from the plugin.
        plugin: String,
    },
}

/// Verifies `dir` (and its pin, when `lock` is given) and loads it in a
/// fresh worker running under `limits`.
pub fn load(
    dir: &Path,
    lock: Option<&LockFile>,
    limits: Limits,
) -> Result<LoadedPlugin, LoadError> {
    // The library's name comes from the manifest; if the manifest is absent
    // or unreadable, the full verification below says so.
    let library = std::fs::read_to_string(dir.join(MANIFEST_FILE))
        .ok()
        .and_then(|text| Manifest::parse(&text).ok())
        .map(|manifest| {
            let sealed = SealedLibrary::copy_from(&dir.join(&manifest.library));
            (manifest.library, sealed)
        });
    let prehashed: Vec<(&str, _)> = match &library {
        Some((path, Ok(sealed))) => vec![(path.as_str(), sealed.sha256)],
        _ => vec![],
    };
    let verified = integrity::verify(dir, &prehashed, lock);
    let manifest = match (&verified.manifest, verified.ok()) {
        (Some(manifest), true) => manifest.clone(),
        _ => return Err(LoadError::Verification(Box::new(verified))),
    };
    let sealed = match library {
        Some((_, Ok(sealed))) => sealed,
        Some((path, Err(source))) => return Err(LoadError::Library { path, source }),
        // The manifest could not be read a moment ago but verified now: it
        // is changing under us, which is itself a reason to stop.
        None => {
            return Err(LoadError::Library {
                path: MANIFEST_FILE.to_owned(),
                source: std::io::Error::other("the manifest changed while the plugin was loading"),
            })
        }
    };

    crate::elf::check_shared_object(sealed.file(), sealed.len)
        .map_err(|reason| LoadError::NotALibrary { path: manifest.library.clone(), reason })?;

    let label = format!("{} {}", manifest.name, manifest.version);
    let mut worker = Worker::spawn(&sealed, &label, limits)?;
    let abi_version = worker.load().inspect_err(log_detail)?;
    let info = worker.describe()?;
    if (info.name.as_str(), info.version.as_str())
        != (manifest.name.as_str(), manifest.version.as_str())
    {
        return Err(LoadError::IdentityMismatch {
            manifest: label,
            plugin: format!("{} {}", info.name, info.version),
        });
    }
    Ok(LoadedPlugin { verified, manifest, abi_version, info, worker })
}

fn log_detail(err: &WorkerError) {
    if let WorkerError::Load { detail, .. } = err {
        if !detail.is_empty() {
            tracing::debug!("full load error:\n{detail}");
        }
    }
}
