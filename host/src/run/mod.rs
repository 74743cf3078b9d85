//! A run's folder, `sidecar-runs/<run-id>/`: everything a run writes lives
//! here, so deleting the folder removes the run.
//!
//! ```text
//! run.json             state, updated atomically at every step
//! plan/NN-<phase>.jsonl the operations a live run would perform
//! approvals/<phase>.json a pending approval stub per mutating phase
//! queries.jsonl        every statement the plugin sent, and what became of it
//! kb/*.md              the run's reports
//! summary.json         written last; never claims success for a failed run
//! ```

pub mod counts;
pub mod plan;
pub mod queries;
pub mod report;
pub mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The default parent of run folders.
pub const DEFAULT_RUNS_DIR: &str = "sidecar-runs";

/// The sub-folders of a dry run's folder.
const RUN_SUBDIRS: &[&str] = &["plan", "approvals", "kb"];

/// A run folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run's id, also its folder name.
    pub id: String,
    /// The folder.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates a new, empty run folder under `runs_dir`, named after the time
    /// and the plugin so a listing reads in order.
    pub fn create(runs_dir: &Path, plugin: &str) -> io::Result<Self> {
        Self::create_with(runs_dir, plugin, RUN_SUBDIRS)
    }

    /// The folder of a run inside this one (a side of a comparison), with
    /// the id `<this id>/<name>`.
    pub fn nested(&self, name: &str) -> io::Result<Self> {
        self.nested_with(name, RUN_SUBDIRS)
    }

    /// [`RunDir::nested`] with the given sub-folders.
    pub fn nested_with(&self, name: &str, subdirs: &[&str]) -> io::Result<Self> {
        let path = self.path.join(name);
        std::fs::create_dir(&path)?;
        for sub in subdirs {
            std::fs::create_dir(path.join(sub))?;
        }
        Ok(Self { id: format!("{}/{name}", self.id), path })
    }

    /// [`RunDir::create`] with the given sub-folders.
    pub fn create_with(runs_dir: &Path, plugin: &str, subdirs: &[&str]) -> io::Result<Self> {
        std::fs::create_dir_all(runs_dir)?;
        let stamp = crate::time::compact(crate::time::unix_seconds(SystemTime::now()));
        let slug: String = plugin
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' })
            .collect();
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let mut salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
        for _ in 0..64 {
            let id = format!("{stamp}-{slug}-{salt:04x}");
            let path = runs_dir.join(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => {
                    for sub in subdirs {
                        std::fs::create_dir(path.join(sub))?;
                    }
                    return Ok(Self { id, path });
                }
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    salt = (salt + 1) & 0xffff
                }
                Err(err) => return Err(err),
            }
        }
        Err(io::Error::new(io::ErrorKind::AlreadyExists, "no free run id"))
    }
}

/// `2026-11-21T19:22:15Z`.
pub fn rfc3339(time: SystemTime) -> String {
    crate::time::rfc3339(crate::time::unix_seconds(time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_unique_and_folders_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = RunDir::create(dir.path(), "iu-cutter 0.6").expect("a");
        let b = RunDir::create(dir.path(), "iu-cutter 0.6").expect("b");
        assert_ne!(a.id, b.id);
        assert!(a.id.contains("-iu-cutter-0.6-"), "{}", a.id);
        for sub in ["plan", "approvals", "kb"] {
            assert!(a.path.join(sub).is_dir());
        }
    }
}
