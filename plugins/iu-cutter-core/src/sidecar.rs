//! The glue that turns a [`Run`] into a sidecar plugin run, shared by every
//! version of the orchestrator (feature `sidecar`).
//!
//! The host passes the same batch to every phase; it is converted from the
//! ABI's types once, when `discover` starts a batch, and moved into the
//! simulator. Later phases check that they were given the same batch.
//! Results become the ABI's `PhaseOutcome`.

use sidecar_abi::sdk::{Context, Run as SdkRun};
use sidecar_abi::{
    self as abi, Mode, PhaseDecl, PhaseOutcome, PhaseStatus, PlanAction, PluginError, PluginInfo,
    SideEffects,
};

use crate::phases::fingerprint_of;
use crate::{
    Action, Cutter, InformationUnit, PhaseResult, RecordBatch, Run, Severity, SourceDocument,
    SourceVersion, Status, PHASES,
};

/// The orchestrator's name in every version.
pub const NAME: &str = "iu-cutter";

/// The description shared by every version: the name, the six phases, each
/// mutating only when live, and which counts are the size of which part of
/// the plan (the host's plan-count contract).
pub fn plugin_info(version: &str) -> PluginInfo {
    PHASES
        .iter()
        .fold(PluginInfo::new(NAME, version), |info, phase| {
            info.with_phase(PhaseDecl::new(phase, SideEffects::NONE_ON_DRY_RUN))
        })
        .with_attribute("plan.count.backup.information_unit", "units_backed_up")
        .with_attribute("plan.count.insert.information_unit", "units_inserted")
        .with_attribute("plan.count.update.information_unit", "units_superseded + units_retired")
}

/// A plugin run: the core's [`Run`] and which batch it is working on.
pub struct SidecarRun<C> {
    ctx: Context,
    run: Run<C>,
    /// Identifies the batch `discover` loaded.
    batch: Option<u64>,
}

impl<C: Cutter> SidecarRun<C> {
    /// A run that cuts with `cutter`.
    pub fn new(ctx: Context, cutter: C) -> Self {
        Self { ctx, run: Run::new(cutter), batch: None }
    }
}

impl<C: Cutter + 'static> SdkRun for SidecarRun<C> {
    fn run_phase(
        &mut self,
        phase: &str,
        mode: Mode,
        batch: &abi::RecordBatch,
    ) -> Result<PhaseOutcome, PluginError> {
        if mode != Mode::DryRun {
            // No live path is wired into this build, whatever the switch says.
            return Err(PluginError::production_execution_not_authorized());
        }
        let result = if phase == PHASES[0] {
            self.batch = Some(fingerprint(batch));
            self.run.discover_owned(from_abi(batch))
        } else {
            if self.batch.is_some_and(|loaded| loaded != fingerprint(batch)) {
                return Err(PluginError::failed(format!(
                    "the batch given to `{phase}` is not the one `discover` loaded"
                )));
            }
            self.run.run_next(phase).map_err(PluginError::failed)?
        };
        if result.status == Status::Failed {
            self.ctx.warn(&format!("{phase}: failed"));
        }
        Ok(to_abi(result))
    }
}

/// The batch's shape, ids, revisions and body lengths, as the core's
/// fingerprint takes them.
fn fingerprint(batch: &abi::RecordBatch) -> u64 {
    fingerprint_of(
        batch.documents.iter().map(|d| d.id),
        batch.versions.iter().map(|v| (v.id, v.revision, v.body.len())),
        batch.units.iter().map(|u| u.id),
    )
}

fn from_abi(batch: &abi::RecordBatch) -> RecordBatch {
    RecordBatch {
        documents: batch
            .documents
            .iter()
            .map(|d| SourceDocument {
                id: d.id,
                kb_path: d.kb_path.to_string(),
                title: d.title.to_string(),
                status: d.status.to_string(),
                updated_at: d.updated_at.to_string(),
            })
            .collect(),
        versions: batch
            .versions
            .iter()
            .map(|v| SourceVersion {
                id: v.id,
                document_id: v.document_id,
                revision: v.revision,
                body: v.body.to_string(),
                body_sha256: v.body_sha256.to_string(),
                created_at: v.created_at.to_string(),
            })
            .collect(),
        units: batch
            .units
            .iter()
            .map(|u| InformationUnit {
                id: u.id,
                document_id: u.document_id,
                version_id: u.version_id,
                ordinal: u.ordinal,
                heading: u.heading.to_string(),
                anchor: u.anchor.to_string(),
                body: u.body.to_string(),
                body_sha256: u.body_sha256.to_string(),
                lifecycle: u.lifecycle.to_string(),
            })
            .collect(),
    }
}

fn to_abi(result: PhaseResult) -> PhaseOutcome {
    let mut outcome = PhaseOutcome::ok();
    outcome.status = match result.status {
        Status::Ok => PhaseStatus::OK,
        Status::Failed => PhaseStatus::FAILED,
    };
    for (name, value) in &result.counts {
        outcome = outcome.with_count(name, *value);
    }
    outcome.findings = result
        .findings
        .into_iter()
        .map(|f| abi::Finding {
            severity: match f.severity {
                Severity::Info => abi::Severity::INFO,
                Severity::Warning => abi::Severity::WARNING,
                Severity::Error => abi::Severity::ERROR,
            },
            code: f.code.into(),
            subject: f.subject.into(),
            message: f.message.into(),
        })
        .collect();
    outcome.plan = result
        .plan
        .into_iter()
        .map(|op| abi::PlanOp {
            action: match op.action {
                Action::Insert => PlanAction::INSERT,
                Action::Update => PlanAction::UPDATE,
                Action::Backup => PlanAction::BACKUP,
            },
            table: op.table.into(),
            key: op.key.into(),
            after_image: op.after_image.into(),
        })
        .collect();
    outcome
}
