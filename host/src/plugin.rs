//! The host's plain-Rust view of what a plugin declares and returns.
//!
//! The worker converts the ABI's `R*` types into these as soon as a call
//! returns, so the rest of the host (reports, JSON, comparisons) never
//! touches `abi_stable` types, and a stable code the host does not know is
//! kept as its number instead of being dropped.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sidecar_abi as abi;

/// A phase a plugin implements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    /// The phase name.
    pub name: String,
    /// The side-effect class (`None`, `NoneOnDryRun`, `Some`, `Unknown`, or
    /// `SideEffects(<n>)` for a code this host does not know).
    pub side_effects: String,
    /// Whether the host may dry-run it.
    pub dry_run_safe: bool,
}

/// What a plugin says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// The orchestrator's name.
    pub name: String,
    /// The orchestrator's version.
    pub version: String,
    /// The release milestone; may be empty.
    pub milestone: String,
    /// The live-wiring marker; empty when none.
    pub live_wiring: String,
    /// The phases, in order.
    pub phases: Vec<Phase>,
    /// Named capabilities.
    pub capabilities: Vec<String>,
    /// Free-form attributes.
    pub attributes: BTreeMap<String, String>,
}

impl From<&abi::PluginInfo> for PluginInfo {
    fn from(info: &abi::PluginInfo) -> Self {
        Self {
            name: info.name.to_string(),
            version: info.version.to_string(),
            milestone: info.milestone.to_string(),
            live_wiring: info.live_wiring.to_string(),
            phases: info
                .phases
                .iter()
                .map(|p| Phase {
                    name: p.name.to_string(),
                    side_effects: format!("{:?}", p.side_effects),
                    dry_run_safe: p.side_effects.dry_run_safe(),
                })
                .collect(),
            capabilities: info.capabilities.iter().map(|c| c.to_string()).collect(),
            attributes: info
                .attributes
                .iter()
                .map(|t| (t.0.to_string(), t.1.to_string()))
                .collect(),
        }
    }
}

/// A finding of a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// `info`, `warning`, `error`, or an unknown code.
    pub severity: String,
    /// A stable identifier.
    pub code: String,
    /// What it is about.
    pub subject: String,
    /// What is wrong.
    pub message: String,
}

/// One planned operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOp {
    /// `insert`, `update`, `backup`, `delete`, or an unknown code.
    pub action: String,
    /// The table.
    pub table: String,
    /// The row key.
    pub key: String,
    /// The row afterwards, as JSON text.
    pub after_image: String,
}

/// The outcome of a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseOutcome {
    /// `ok`, `failed`, `not_implemented`, or an unknown code.
    pub status: String,
    /// Named counters, in the plugin's order.
    pub counts: Vec<(String, u64)>,
    /// Findings.
    pub findings: Vec<Finding>,
    /// The plan.
    pub plan: Vec<PlanOp>,
    /// The plugin's note.
    pub note: String,
}

/// A phase outcome as the worker sends it: the plugin's own value, encoded
/// through borrowed views, so no after-image is copied before it reaches the
/// channel. It encodes to exactly the bytes of the [`PhaseOutcome`] the host
/// decodes (the same fields in the same order; a test holds them together).
#[derive(Debug)]
pub struct WireOutcome(pub abi::PhaseOutcome);

impl Serialize for WireOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Outcome<'a> {
            status: String,
            counts: Vec<(&'a str, u64)>,
            findings: Vec<Finding>,
            plan: Vec<Op<'a>>,
            note: &'a str,
        }
        #[derive(Serialize)]
        struct Op<'a> {
            action: String,
            table: &'a str,
            key: &'a str,
            after_image: &'a str,
        }
        let outcome = &self.0;
        Outcome {
            status: outcome.status.to_string(),
            counts: outcome.counts.iter().map(|t| (t.0.as_str(), t.1)).collect(),
            // Few and short: copied.
            findings: outcome
                .findings
                .iter()
                .map(|f| Finding {
                    severity: f.severity.to_string(),
                    code: f.code.to_string(),
                    subject: f.subject.to_string(),
                    message: f.message.to_string(),
                })
                .collect(),
            plan: outcome
                .plan
                .iter()
                .map(|op| Op {
                    action: op.action.to_string(),
                    table: op.table.as_str(),
                    key: op.key.as_str(),
                    after_image: op.after_image.as_str(),
                })
                .collect(),
            note: outcome.note.as_str(),
        }
        .serialize(serializer)
    }
}
