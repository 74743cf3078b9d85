//! `run.json`: where a run is and why, rewritten atomically at every step so
//! a crash at any point leaves a file that says where it stopped.
//!
//! Every lifecycle change is written (and synced) at once. Progress inside
//! `running` (which phase, which batch) is refreshed at most every
//! [`PROGRESS_INTERVAL`]: a run calls a phase several hundred times a
//! second, and a rename per call cost more than the phases themselves. A
//! stop always records the exact phase and batch.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::rfc3339;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::tree::replace_file;
use crate::source::SourceIdentity;

/// Where a run stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The folder exists; nothing checked yet.
    Created,
    /// The plugin directory verified (and matched its pin).
    Verified,
    /// The plugin is loaded in its worker and passed the policy checks.
    Loaded,
    /// A phase is running (see `phase` and `batch`).
    Running,
    /// Every phase ran on every batch without a failure.
    Completed,
    /// Something failed; `reason` says what and where.
    Failed,
    /// The host's policy refused the plugin; `reason` says why.
    Refused,
}

/// The identity of the plugin a run is about.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginIdentity {
    /// The plugin directory as given.
    pub dir: String,
    /// From the manifest.
    pub name: String,
    /// From the manifest.
    pub version: String,
    /// From the manifest.
    pub artifact_sha256: Sha256Digest,
    /// The sha256 of `DEPLOY-MANIFEST.txt`.
    pub manifest_sha256: Option<Sha256Digest>,
    /// The interface version the plugin was built against; empty until loaded.
    pub abi_version: String,
}

/// One entry of the lifecycle history.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    /// The state entered.
    pub state: State,
    /// When.
    pub at: String,
}

/// The contents of `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// The run's id.
    pub run_id: String,
    /// What kind of run, e.g. `dry-run`.
    pub kind: String,
    /// The current state.
    pub state: State,
    /// The phase running, or the phase a failure happened in.
    pub phase: Option<String>,
    /// The batch (from 0) running, or the batch a failure happened in.
    pub batch: Option<u64>,
    /// Why the run failed or was refused.
    pub reason: Option<String>,
    /// The plugin, once its directory has been read.
    pub plugin: Option<PluginIdentity>,
    /// The data source.
    pub source: Option<SourceIdentity>,
    /// The host's version.
    pub host_version: String,
    /// When the run was created.
    pub created_at: String,
    /// When this file was last written.
    pub updated_at: String,
    /// Lifecycle states entered, in order (running is recorded once).
    pub history: Vec<Transition>,
}

/// How stale the phase and batch of a `running` run.json may be.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(200);

/// The live `run.json` of a run in progress.
#[derive(Debug)]
pub struct RunState {
    path: PathBuf,
    /// The record as last written, or as it will be at the next write.
    pub record: RunRecord,
    /// When the file was last written.
    written: Instant,
}

impl RunState {
    /// Starts `run.json` in `dir` in state `created`.
    pub fn create(dir: &Path, run_id: &str, kind: &str) -> io::Result<Self> {
        let now = rfc3339(SystemTime::now());
        let record = RunRecord {
            schema_version: 1,
            run_id: run_id.to_owned(),
            kind: kind.to_owned(),
            state: State::Created,
            phase: None,
            batch: None,
            reason: None,
            plugin: None,
            source: None,
            host_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: now.clone(),
            updated_at: now.clone(),
            history: vec![Transition { state: State::Created, at: now }],
        };
        let mut state = Self { path: dir.join("run.json"), record, written: Instant::now() };
        state.write()?;
        Ok(state)
    }

    /// Reads a `run.json`.
    pub fn read(path: &Path) -> io::Result<RunRecord> {
        let text = std::fs::read_to_string(path)?;
        serde_json::from_str(&text).map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
    }

    /// Moves to `state` and writes the file.
    pub fn enter(&mut self, state: State) -> io::Result<()> {
        let now = rfc3339(SystemTime::now());
        if self.record.state != state {
            self.record.history.push(Transition { state: state.clone(), at: now.clone() });
        }
        self.record.state = state;
        self.record.updated_at = now;
        self.write()
    }

    /// Records the phase and batch now running: written when the run
    /// enters `running`, then at most every [`PROGRESS_INTERVAL`], atomic
    /// but not synced (the next step supersedes it, and a final state is
    /// always synced).
    pub fn running(&mut self, phase: &str, batch: u64) -> io::Result<()> {
        if self.record.phase.as_deref() != Some(phase) {
            self.record.phase = Some(phase.to_owned());
        }
        self.record.batch = Some(batch);
        if self.record.state != State::Running {
            return self.enter(State::Running);
        }
        if self.written.elapsed() < PROGRESS_INTERVAL {
            return Ok(());
        }
        self.record.updated_at = rfc3339(SystemTime::now());
        self.write_with(false)
    }

    /// Ends the run in `state` (failed or refused) with a reason.
    pub fn stop(&mut self, state: State, reason: &str) -> io::Result<()> {
        self.record.reason = Some(reason.to_owned());
        self.enter(state)
    }

    fn write(&mut self) -> io::Result<()> {
        self.write_with(true)
    }

    fn write_with(&mut self, sync: bool) -> io::Result<()> {
        let mut text = serde_json::to_string_pretty(&self.record).map_err(io::Error::other)?;
        text.push('\n');
        replace_file(&self.path, text.as_bytes(), sync)?;
        self.written = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_throttled_but_a_stop_records_the_exact_phase_and_batch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut state = RunState::create(dir.path(), "r1", "dry-run").expect("create");
        let read = || RunState::read(&dir.path().join("run.json")).expect("read");
        state.running("discover", 0).expect("running");
        let entered = read();
        assert_eq!(entered.state, State::Running);
        assert_eq!((entered.phase.as_deref(), entered.batch), (Some("discover"), Some(0)));

        // Within the interval, progress stays in memory only.
        state.written = Instant::now();
        state.running("backup", 0).expect("running");
        assert_eq!(read().phase.as_deref(), Some("discover"));

        // Once the interval has passed, it is written.
        state.written = Instant::now() - PROGRESS_INTERVAL;
        state.running("cut_leg_a", 3).expect("running");
        assert_eq!((read().phase.as_deref(), read().batch), (Some("cut_leg_a"), Some(3)));

        state.written = Instant::now();
        state.running("leg_b_record", 4).expect("running");
        state.stop(State::Failed, "crashed").expect("stop");
        let stopped = read();
        assert_eq!(stopped.state, State::Failed);
        assert_eq!((stopped.phase.as_deref(), stopped.batch), (Some("leg_b_record"), Some(4)));
        assert_eq!(stopped.reason.as_deref(), Some("crashed"));
        let states: Vec<State> = stopped.history.iter().map(|t| t.state.clone()).collect();
        assert_eq!(states, [State::Created, State::Running, State::Failed]);
    }
}
