//! `sidecar.lock`: artifact digests pinned outside the artifacts.
//!
//! A manifest only proves a directory is what its own manifest says. Someone
//! who can edit a file can also re-seal, and then the directory verifies
//! against itself. The lock file, kept with the operator's configuration and
//! under review, pins `artifact_sha256` per name and version (Terraform's
//! dependency lock file plays the same part), so a re-sealed tamper fails
//! the pin.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::manifest::{Manifest, Sha256Digest};
use super::tree::{write_atomically, Problem};

/// The lock file a command uses when none is named and one exists here.
pub const DEFAULT_LOCK_FILE: &str = "sidecar.lock";

const LOCK_FORMAT_VERSION: u32 = 1;

/// One pinned artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pin {
    /// The plugin's name.
    pub name: String,
    /// The plugin's version.
    pub version: String,
    /// The pinned artifact digest.
    pub artifact_sha256: Sha256Digest,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LockDocument {
    version: u32,
    #[serde(default, rename = "plugin")]
    plugins: Vec<Pin>,
}

/// A lock file and where it lives.
#[derive(Debug, Clone)]
pub struct LockFile {
    /// Where it was read from and will be written to.
    pub path: PathBuf,
    /// The pins, sorted by name then version.
    pub pins: Vec<Pin>,
}

/// Why a lock file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The lock file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file is not a valid lock file.
    #[error("{path}: {reason}")]
    Invalid {
        /// The lock file.
        path: String,
        /// What is wrong, with the line when TOML knows it.
        reason: String,
    },
}

impl LockFile {
    /// Reads a lock file.
    pub fn read(path: &Path) -> Result<Self, LockError> {
        let display = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|source| LockError::Io { path: display.clone(), source })?;
        let doc: LockDocument = toml::from_str(&text).map_err(|err| LockError::Invalid {
            path: display.clone(),
            reason: one_line_toml_error(&text, &err),
        })?;
        if doc.version != LOCK_FORMAT_VERSION {
            return Err(LockError::Invalid {
                path: display,
                reason: format!(
                    "unsupported lock version {} (this host reads {LOCK_FORMAT_VERSION})",
                    doc.version
                ),
            });
        }
        Ok(Self { path: path.to_owned(), pins: doc.plugins })
    }

    /// Reads `path` if it exists, or starts an empty lock file there.
    pub fn read_or_new(path: &Path) -> Result<Self, LockError> {
        match Self::read(path) {
            Err(LockError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Self { path: path.to_owned(), pins: Vec::new() })
            }
            other => other,
        }
    }

    /// Picks the lock file a command uses: the one named, else
    /// `./sidecar.lock` when it exists, else none.
    pub fn discover(explicit: Option<&Path>) -> Result<Option<Self>, LockError> {
        match explicit {
            Some(path) => Self::read(path).map(Some),
            None if Path::new(DEFAULT_LOCK_FILE).is_file() => {
                Self::read(Path::new(DEFAULT_LOCK_FILE)).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The pin for a name and version.
    pub fn pin(&self, name: &str, version: &str) -> Option<&Pin> {
        self.pins.iter().find(|p| p.name == name && p.version == version)
    }

    /// Checks a verified manifest against its pin.
    pub fn check(&self, manifest: &Manifest) -> Result<(), Problem> {
        let lock = self.path.display().to_string();
        match self.pin(&manifest.name, &manifest.version) {
            None => Err(Problem::NotPinned { lock }),
            Some(pin) if pin.artifact_sha256 != manifest.artifact_sha256 => {
                Err(Problem::PinMismatch {
                    lock,
                    pinned: pin.artifact_sha256,
                    actual: manifest.artifact_sha256,
                })
            }
            Some(_) => Ok(()),
        }
    }

    /// Pins a manifest. Returns the previous pin when it differed and
    /// `replace` allowed the change; refuses to move a pin otherwise.
    pub fn pin_manifest(&mut self, manifest: &Manifest, replace: bool) -> Result<PinChange, Pin> {
        let new = Pin {
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            artifact_sha256: manifest.artifact_sha256,
        };
        let change =
            match self.pins.iter_mut().find(|p| p.name == new.name && p.version == new.version) {
                Some(existing) if existing.artifact_sha256 == new.artifact_sha256 => {
                    PinChange::Unchanged
                }
                Some(existing) if !replace => return Err(existing.clone()),
                Some(existing) => PinChange::Replaced(std::mem::replace(existing, new)),
                None => {
                    self.pins.push(new);
                    PinChange::Added
                }
            };
        self.pins.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        Ok(change)
    }

    /// Writes the lock file atomically.
    pub fn write(&self) -> Result<(), LockError> {
        let doc = LockDocument { version: LOCK_FORMAT_VERSION, plugins: self.pins.clone() };
        let body = toml::to_string(&doc).map_err(|err| LockError::Invalid {
            path: self.path.display().to_string(),
            reason: err.to_string(),
        })?;
        let text = format!(
            "# Pinned plugin artifacts, written by `sidecar lock`. Review changes to this file:\n\
             # a moved pin means a plugin directory's contents changed.\n{body}"
        );
        write_atomically(&self.path, text.as_bytes())
            .map_err(|source| LockError::Io { path: self.path.display().to_string(), source })
    }
}

/// What pinning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinChange {
    /// A new pin.
    Added,
    /// Already pinned to this digest.
    Unchanged,
    /// The pin moved; the old one is returned.
    Replaced(Pin),
}

/// TOML errors span several lines with a source excerpt; keep the line
/// number and the message.
fn one_line_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().to_owned();
    match err.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::manifest::Entry;

    fn manifest(content: &[u8]) -> Manifest {
        Manifest::new(
            "iu-cutter",
            "0.6",
            "lib.so",
            vec![Entry { sha256: Sha256Digest::of(content), path: "lib.so".into() }],
        )
    }

    #[test]
    fn pins_round_trip_and_catch_a_resealed_tamper() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sidecar.lock");
        let mut lock = LockFile::read_or_new(&path).expect("new");
        assert_eq!(lock.pin_manifest(&manifest(b"good"), false), Ok(PinChange::Added));
        lock.write().expect("write");

        let lock = LockFile::read(&path).expect("read");
        assert_eq!(lock.check(&manifest(b"good")), Ok(()));
        assert!(matches!(lock.check(&manifest(b"evil")), Err(Problem::PinMismatch { .. })));
    }

    #[test]
    fn a_pin_never_moves_silently() {
        let mut lock = LockFile { path: "x.lock".into(), pins: vec![] };
        lock.pin_manifest(&manifest(b"good"), false).expect("added");
        let refused = lock.pin_manifest(&manifest(b"evil"), false).expect_err("refused");
        assert_eq!(refused.artifact_sha256, manifest(b"good").artifact_sha256);
        assert!(matches!(lock.pin_manifest(&manifest(b"evil"), true), Ok(PinChange::Replaced(_))));
    }

    #[test]
    fn unknown_keys_are_errors_with_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sidecar.lock");
        std::fs::write(&path, "version = 1\n\n[[plugin]]\nname = \"x\"\nversoin = \"1\"\n")
            .expect("write");
        let err = LockFile::read(&path).expect_err("invalid").to_string();
        assert!(err.contains("line 5: unknown field `versoin`"), "{err}");
    }
}
