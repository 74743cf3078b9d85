//! A run's folder, `sidecar-runs/<run-id>/`: everything a run writes lives
//! here, so deleting the folder removes the run.
//!
//! ```text
//! run.json             state, updated atomically at every step
//! plan/NN-<phase>.jsonl the operations a live run would perform
//! approvals/<phase>.json a pending approval stub per mutating phase
//! kb/*.md              the run's reports
//! summary.json         written last; never claims success for a failed run
//! ```

pub mod plan;
pub mod report;
pub mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The default parent of run folders.
pub const DEFAULT_RUNS_DIR: &str = "sidecar-runs";

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
        std::fs::create_dir_all(runs_dir)?;
        let stamp = compact_timestamp(SystemTime::now());
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
                    for sub in ["plan", "approvals", "kb"] {
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
    let (date, (h, m, s)) = civil(time);
    format!("{}-{:02}-{:02}T{h:02}:{m:02}:{s:02}Z", date.0, date.1, date.2)
}

/// `20261121T192215Z`, for run ids.
fn compact_timestamp(time: SystemTime) -> String {
    let (date, (h, m, s)) = civil(time);
    format!("{}{:02}{:02}T{h:02}{m:02}{s:02}Z", date.0, date.1, date.2)
}

/// UTC calendar date and time of day (Howard Hinnant's days-to-civil).
fn civil(time: SystemTime) -> ((i64, u32, u32), (u64, u64, u64)) {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    ((year, month, day), (rem / 3_600, rem % 3_600 / 60, rem % 60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = UNIX_EPOCH + Duration::from_secs(1_795_288_935); // 2026-11-21T19:22:15Z
        assert_eq!(rfc3339(t), "2026-11-21T19:22:15Z");
        assert_eq!(compact_timestamp(t), "20261121T192215Z");
        assert_eq!(rfc3339(UNIX_EPOCH + Duration::from_secs(951_782_400)), "2000-02-29T00:00:00Z");
    }

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
