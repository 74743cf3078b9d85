//! What a phase hands back: its status, counts, findings and the plan of
//! writes a live run would make.
//!
//! These are plain-Rust types so that the orchestrator's logic stays free of
//! the plugin ABI; each plugin crate maps them onto the wire types in its
//! small glue file.

use serde::{Deserialize, Serialize};

/// Whether a phase passed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No error finding.
    Ok,
    /// At least one error finding.
    Failed,
}

/// How serious a finding is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth recording; not a problem.
    Info,
    /// A problem the phase worked around.
    Warning,
    /// A problem that fails the phase.
    Error,
}

/// One observation of a phase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is.
    pub severity: Severity,
    /// A stable kebab-case code, e.g. `units-do-not-concatenate`.
    pub code: String,
    /// What it is about: a document's `kb_path`, or `batch`.
    pub subject: String,
    /// A lowercase sentence with the details.
    pub message: String,
}

/// The kind of write a plan operation stands for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A new row.
    Insert,
    /// A changed row.
    Update,
    /// A copy of a row saved before it is changed.
    Backup,
}

/// One write a live run would make.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PlanOp {
    /// What kind of write.
    pub action: Action,
    /// The table written.
    pub table: String,
    /// The row's key: a unit id, or `"{version_id}:{ordinal}"` for a row the
    /// database has not numbered yet.
    pub key: String,
    /// The row after the write, as a compact JSON object.
    pub after_image: String,
}

/// The outcome of one phase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct PhaseResult {
    /// [`Status::Failed`] exactly when a finding is an [`Severity::Error`].
    pub status: Status,
    /// Named counts, in a fixed order per phase.
    pub counts: Vec<(String, u64)>,
    /// What the phase noticed.
    pub findings: Vec<Finding>,
    /// The writes a live run would make, in the order it would make them.
    pub plan: Vec<PlanOp>,
}

impl PhaseResult {
    /// The count called `name`, if the phase reported one.
    pub fn count(&self, name: &str) -> Option<u64> {
        self.counts.iter().find(|(n, _)| n == name).map(|(_, c)| *c)
    }
}

/// Collects a phase's outcome; the status is derived once at the end so it
/// can never disagree with the findings.
#[derive(Default)]
pub(crate) struct Builder {
    counts: Vec<(String, u64)>,
    findings: Vec<Finding>,
    plan: Vec<PlanOp>,
}

impl Builder {
    pub(crate) fn count(&mut self, name: &str, value: usize) {
        // usize is at most 64 bits on every target this builds for.
        self.counts.push((name.to_owned(), value as u64));
    }

    pub(crate) fn finding(
        &mut self,
        severity: Severity,
        code: &str,
        subject: &str,
        message: String,
    ) {
        self.findings.push(Finding {
            severity,
            code: code.to_owned(),
            subject: subject.to_owned(),
            message,
        });
    }

    pub(crate) fn op(&mut self, action: Action, table: &str, key: String, after_image: String) {
        self.plan.push(PlanOp { action, table: table.to_owned(), key, after_image });
    }

    pub(crate) fn finish(self) -> PhaseResult {
        let failed = self.findings.iter().any(|f| f.severity == Severity::Error);
        PhaseResult {
            status: if failed { Status::Failed } else { Status::Ok },
            counts: self.counts,
            findings: self.findings,
            plan: self.plan,
        }
    }
}
