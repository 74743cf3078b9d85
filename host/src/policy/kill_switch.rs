//! The kill-switch, enforced by the host.
//!
//! The host has no way to run a phase live: no flag, variable or setting
//! reaches [`Dispatcher::run_batch`] with anything but a dry run, and the
//! dispatcher refuses `Live` before the plugin is called. The only `Live`
//! the host ever sends is the refusal probe's `start_run`, in a context with
//! no data, to prove the plugin refuses it too. A plugin whose own switch
//! reads `true`, or that declares a phase unsafe to dry-run, is refused
//! before any phase runs (the Kubernetes dry-run rule: a step that cannot
//! promise no side effects is rejected, never skipped).

use serde::Serialize;

use crate::plugin::PluginInfo;
use crate::source::RecordBatch;
use crate::worker::protocol::WireMode;
use crate::worker::{BatchRun, Worker, WorkerError};

/// Why the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Something asked the dispatcher for a live phase.
    #[error("ProductionExecutionNotAuthorized: the host never runs phase `{0}` live")]
    LiveRequested(String),
    /// The plugin's own kill-switch is on.
    #[error("the plugin's kill-switch is on (execution_enabled = true{0})")]
    ExecutionEnabled(&'static str),
    /// The plugin accepted a live run.
    #[error("the plugin did not refuse a live run: {0}")]
    LiveNotRefused(String),
    /// A phase may have side effects even in a dry run.
    #[error("phase `{phase}` is not dry-run safe (side effects: {side_effects})")]
    UnsafePhase {
        /// The phase.
        phase: String,
        /// Its declared side-effect class.
        side_effects: String,
    },
}

/// The only path from the host to a plugin's phases.
#[derive(Debug)]
pub struct Dispatcher<'w> {
    worker: &'w mut Worker,
}

impl<'w> Dispatcher<'w> {
    /// Dispatches to `worker`.
    pub fn new(worker: &'w mut Worker) -> Self {
        Self { worker }
    }

    /// Runs `phases` in order on `batch`, the run's batch number `index`;
    /// the outcomes arrive through the returned [`BatchRun`]. `Live` is
    /// refused here, before the plugin is called.
    pub fn run_batch(
        self,
        batch: RecordBatch,
        index: u64,
        phases: &[String],
        mode: WireMode,
    ) -> Result<BatchRun<'w>, DispatchError> {
        for phase in phases {
            refuse_live(phase, mode)?;
        }
        Ok(self.worker.run_batch(batch, index, phases, mode)?)
    }
}

/// The dispatcher's check, alone so that it can be tested without a worker.
pub fn refuse_live(phase: &str, mode: WireMode) -> Result<(), Refusal> {
    match mode {
        WireMode::DryRun => Ok(()),
        WireMode::Live => Err(Refusal::LiveRequested(phase.to_owned())),
    }
}

/// A dispatch that failed.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// Refused by policy.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The worker or plugin failed.
    #[error(transparent)]
    Worker(#[from] WorkerError),
}

/// The phases the host refuses to dry-run, in declaration order.
pub fn unsafe_phases(info: &PluginInfo) -> Vec<Refusal> {
    info.phases
        .iter()
        .filter(|p| !p.dry_run_safe)
        .map(|p| Refusal::UnsafePhase {
            phase: p.name.clone(),
            side_effects: p.side_effects.clone(),
        })
        .collect()
}

/// What the plugin did when asked to start a live run.
#[derive(Debug, Clone, Serialize)]
pub struct LiveRefusal {
    /// Whether it refused with `ProductionExecutionNotAuthorized`.
    pub refused: bool,
    /// What it answered.
    pub answer: String,
}

/// Asks the plugin, in a context that holds no data, to start a live run.
/// The only place the host ever sends `Live`, and only to see it refused.
pub fn refusal_probe(worker: &mut Worker) -> Result<LiveRefusal, WorkerError> {
    match worker.start_run(WireMode::Live) {
        Err(WorkerError::Plugin { kind, message, .. }) => {
            let refused = kind.as_deref() == Some("ProductionExecutionNotAuthorized");
            let answer = format!("{}: {message}", kind.as_deref().unwrap_or("unknown error kind"));
            Ok(LiveRefusal { refused, answer })
        }
        Err(other) => Err(other),
        Ok(()) => {
            // It accepted; end that run at once without running any phase.
            worker.finish_run()?;
            Ok(LiveRefusal { refused: false, answer: "accepted the live run".to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Phase;

    #[test]
    fn the_dispatcher_refuses_live_before_any_call() {
        assert_eq!(refuse_live("cut_leg_a", WireMode::DryRun), Ok(()));
        let refusal = refuse_live("cut_leg_a", WireMode::Live).expect_err("live is refused");
        assert_eq!(
            refusal.to_string(),
            "ProductionExecutionNotAuthorized: the host never runs phase `cut_leg_a` live"
        );
    }

    #[test]
    fn a_phase_with_side_effects_is_refused_not_skipped() {
        let phase = |name: &str, side_effects: &str, dry_run_safe| Phase {
            name: name.into(),
            side_effects: side_effects.into(),
            dry_run_safe,
        };
        let info = PluginInfo {
            name: "x".into(),
            version: "1".into(),
            milestone: String::new(),
            live_wiring: String::new(),
            phases: vec![phase("discover", "None", true), phase("mutate", "Some", false)],
            capabilities: vec![],
            attributes: Default::default(),
        };
        assert_eq!(
            unsafe_phases(&info),
            vec![Refusal::UnsafePhase { phase: "mutate".into(), side_effects: "Some".into() }]
        );
    }
}
