//! Plugin directory integrity: manifests, the directory walk, and pins.
//!
//! Invariant: nothing here writes into a plugin directory except [`tree::seal`].

pub mod diff;
pub mod lock;
pub mod manifest;
pub mod tree;

use std::path::Path;

use lock::LockFile;
use manifest::Sha256Digest;
use tree::Verified;

/// Verifies `dir` against its manifest and, when a lock file is in use,
/// against its pin. See [`tree::verify`] for `prehashed`.
pub fn verify(dir: &Path, prehashed: &[(&str, Sha256Digest)], lock: Option<&LockFile>) -> Verified {
    let mut verified = tree::verify(dir, prehashed);
    if let (Some(lock), Some(manifest)) = (lock, &verified.manifest) {
        let check = lock.check(manifest);
        verified.pinned = Some(check.is_ok());
        verified.problems.extend(check.err());
    }
    verified
}
