//! `plan/NN-<phase>.jsonl`: the operations a live run would perform, one
//! JSON object a line, streamed to disk batch by batch so memory does not
//! grow with the corpus.
//!
//! A plan file is written as `….jsonl.partial` and renamed only when the
//! phase has run on every batch, so a run that stopped half-way never leaves
//! a file that looks like a complete plan. Its digest is the sha256 of the
//! file's bytes, computed while writing.
//!
//! [`PlanSink`] does the checking, hashing and writing on a thread of its
//! own, so that it overlaps the plugin's next phase instead of adding to it.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::{self, JoinHandle};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::integrity::manifest::Sha256Digest;
use crate::plugin::PlanOp;

/// A plan file being written.
#[derive(Debug)]
pub struct PlanWriter {
    relative: String,
    partial: PathBuf,
    done: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    ops: BTreeMap<String, u64>,
    line: String,
}

/// A finished plan file.
#[derive(Debug, Clone, Serialize)]
pub struct PlanFile {
    /// The path inside the run folder, e.g. `plan/03-leg_b_record.jsonl`.
    pub file: String,
    /// The sha256 of its bytes.
    pub sha256: Sha256Digest,
    /// Operations by action.
    pub ops: BTreeMap<String, u64>,
}

/// Why an operation could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The plugin's after-image is not a JSON object.
    #[error("the plugin returned an invalid after-image for {table} key `{key}`: {reason}")]
    InvalidAfterImage {
        /// The table.
        table: String,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The writer thread ended unexpectedly.
    #[error("the plan writer stopped unexpectedly")]
    WriterGone,
    /// Writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The plan file.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

impl PlanWriter {
    /// Starts `plan/<NN>-<phase>.jsonl` in `run_dir`; `index` counts from 0.
    pub fn create(run_dir: &Path, index: usize, phase: &str) -> io::Result<Self> {
        let relative = format!("plan/{:02}-{phase}.jsonl", index + 1);
        let done = run_dir.join(&relative);
        let partial = run_dir.join(format!("{relative}.partial"));
        let out = BufWriter::with_capacity(1 << 20, File::create(&partial)?);
        Ok(Self {
            relative,
            partial,
            done,
            out,
            hasher: Sha256::new(),
            ops: BTreeMap::new(),
            line: String::new(),
        })
    }

    /// Appends one batch's operations.
    pub fn append(&mut self, batch: u64, ops: &[PlanOp]) -> Result<(), PlanError> {
        for op in ops {
            let invalid = |reason: String| PlanError::InvalidAfterImage {
                table: op.table.clone(),
                key: op.key.clone(),
                reason,
            };
            if !op.after_image.trim_start().starts_with('{') {
                return Err(invalid("not a JSON object".into()));
            }
            serde_json::from_str::<serde::de::IgnoredAny>(&op.after_image)
                .map_err(|err| invalid(err.to_string()))?;
            self.line.clear();
            self.line.push_str(&format!(
                "{{\"batch\":{batch},\"action\":{},\"table\":{},\"key\":{},\"after\":",
                json_string(&op.action),
                json_string(&op.table),
                json_string(&op.key)
            ));
            self.line.push_str(op.after_image.trim());
            self.line.push_str("}\n");
            self.hasher.update(self.line.as_bytes());
            self.out
                .write_all(self.line.as_bytes())
                .map_err(|source| PlanError::Io { path: self.relative.clone(), source })?;
            *self.ops.entry(op.action.clone()).or_default() += 1;
        }
        Ok(())
    }

    /// Flushes, syncs and renames the file into place.
    pub fn finish(mut self) -> Result<PlanFile, PlanError> {
        let path = self.relative.clone();
        let io = |source| PlanError::Io { path: path.clone(), source };
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_all().map_err(io)?;
        std::fs::rename(&self.partial, &self.done).map_err(io)?;
        Ok(PlanFile {
            file: self.relative,
            sha256: Sha256Digest(self.hasher.finalize().into()),
            ops: self.ops,
        })
    }
}

/// The plan files of a run, written on their own thread.
///
/// Operations are queued with [`append`](Self::append); [`sync`](Self::sync)
/// waits until everything queued is written and reports the first
/// operation refused since the last sync. A refused operation stops the
/// writing of every plan: the run is failing.
#[derive(Debug)]
pub struct PlanSink {
    jobs: Option<SyncSender<Job>>,
    synced: Receiver<Option<Rejected>>,
    thread: Option<JoinHandle<Vec<PlanWriter>>>,
}

/// Why the sink could not write a plan, and for which phase (its index in
/// the run's plan files) and batch when one operation was refused.
#[derive(Debug)]
pub struct Rejected {
    /// The phase index and batch of the refused operation.
    pub at: Option<(usize, u64)>,
    /// Why.
    pub error: PlanError,
}

impl From<PlanError> for Rejected {
    fn from(error: PlanError) -> Self {
        Self { at: None, error }
    }
}

#[derive(Debug)]
enum Job {
    Append { phase: usize, batch: u64, ops: Vec<PlanOp> },
    Sync,
}

/// Phase outcomes queued ahead of the writer; each holds one batch's plan.
const QUEUE: usize = 8;

impl PlanSink {
    /// Starts the writer thread for `plans`, one per phase, in order.
    pub fn spawn(plans: Vec<PlanWriter>) -> io::Result<Self> {
        let (jobs, queue) = mpsc::sync_channel::<Job>(QUEUE);
        let (ack, synced) = mpsc::sync_channel(1);
        let thread = thread::Builder::new().name("plan-writer".into()).spawn(move || {
            let mut plans = plans;
            let mut rejected = None;
            for job in queue {
                match job {
                    Job::Append { phase, batch, ops } if rejected.is_none() => {
                        if let Some(plan) = plans.get_mut(phase) {
                            if let Err(error) = plan.append(batch, &ops) {
                                rejected = Some(Rejected { at: Some((phase, batch)), error });
                            }
                        }
                    }
                    Job::Append { .. } => {}
                    Job::Sync => {
                        if ack.send(rejected.take()).is_err() {
                            break;
                        }
                    }
                }
            }
            plans
        })?;
        Ok(Self { jobs: Some(jobs), synced, thread: Some(thread) })
    }

    /// Queues one batch's operations of plan `phase`.
    pub fn append(&self, phase: usize, batch: u64, ops: Vec<PlanOp>) {
        if let Some(jobs) = &self.jobs {
            // A closed queue means the thread is gone; `sync` reports it.
            let _ = jobs.send(Job::Append { phase, batch, ops });
        }
    }

    /// Waits until everything queued is written; the first operation
    /// refused since the last sync, if any.
    pub fn sync(&self) -> Result<(), Rejected> {
        let jobs = self.jobs.as_ref().ok_or(PlanError::WriterGone)?;
        jobs.send(Job::Sync).map_err(|_| PlanError::WriterGone)?;
        match self.synced.recv() {
            Ok(None) => Ok(()),
            Ok(Some(rejected)) => Err(rejected),
            Err(_) => Err(PlanError::WriterGone.into()),
        }
    }

    /// Writes what is queued, then closes every plan file: synced and
    /// renamed into place, in phase order.
    pub fn finish(mut self) -> Result<Vec<PlanFile>, Rejected> {
        self.sync()?;
        self.jobs = None;
        let thread = self.thread.take().ok_or(PlanError::WriterGone)?;
        let plans = thread.join().map_err(|_| PlanError::WriterGone)?;
        Ok(plans.into_iter().map(PlanWriter::finish).collect::<Result<_, _>>()?)
    }
}

impl Drop for PlanSink {
    fn drop(&mut self) {
        // Closing the queue ends the thread; the unfinished files stay
        // `.partial`.
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(after: &str) -> PlanOp {
        PlanOp {
            action: "insert".into(),
            table: "information_unit".into(),
            key: "7:0".into(),
            after_image: after.into(),
        }
    }

    #[test]
    fn a_plan_is_partial_until_finished_and_its_digest_is_its_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("plan")).expect("mkdir");
        let mut plan = PlanWriter::create(dir.path(), 3, "leg_b_record").expect("create");
        plan.append(0, &[op(r#"{"ordinal":0}"#)]).expect("append");
        assert!(dir.path().join("plan/04-leg_b_record.jsonl.partial").exists());
        assert!(!dir.path().join("plan/04-leg_b_record.jsonl").exists());
        let file = plan.finish().expect("finish");
        assert!(!dir.path().join("plan/04-leg_b_record.jsonl.partial").exists());
        let bytes = std::fs::read(dir.path().join(&file.file)).expect("read");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "{\"batch\":0,\"action\":\"insert\",\"table\":\"information_unit\",\"key\":\"7:0\",\"after\":{\"ordinal\":0}}\n"
        );
        assert_eq!(file.sha256, Sha256Digest::of(&bytes));
        assert_eq!(file.ops.get("insert"), Some(&1));
    }

    #[test]
    fn an_after_image_that_is_not_a_json_object_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("plan")).expect("mkdir");
        let mut plan = PlanWriter::create(dir.path(), 0, "x").expect("create");
        let err = plan.append(0, &[op("not json")]).expect_err("refused");
        assert_eq!(err.to_string(), "the plugin returned an invalid after-image for information_unit key `7:0`: not a JSON object");
    }
}
