//! The IU cutter orchestrator, version 0.6 (the deployed baseline), as a
//! sidecar plugin.
//!
//! It declares the six phases of the orchestrator in order. The phase logic
//! is not ported yet: every phase returns a `not_implemented` outcome that
//! says so, so a report can never mistake it for a phase that ran.

use sidecar_abi::sdk::{Context, Plugin, Run};
use sidecar_abi::{Mode, PhaseDecl, PhaseOutcome, PluginError, PluginInfo, SideEffects};

/// The orchestrator's phases, in the order they run.
const PHASES: [&str; 6] =
    ["discover", "backup", "cut_leg_a", "leg_b_record", "write_verify", "lifecycle_enact"];

/// The plugin.
pub struct IuCutter;

/// One run of the plugin.
pub struct IuCutterRun {
    ctx: Context,
}

impl Plugin for IuCutter {
    type Run = IuCutterRun;

    fn info() -> PluginInfo {
        PHASES
            .iter()
            .fold(PluginInfo::new("iu-cutter", "0.6").with_milestone("O7"), |info, phase| {
                info.with_phase(PhaseDecl::new(phase, SideEffects::NONE_ON_DRY_RUN))
            })
    }

    fn start_run(ctx: Context, _mode: Mode) -> Result<IuCutterRun, PluginError> {
        Ok(IuCutterRun { ctx })
    }
}

impl Run for IuCutterRun {
    fn run_phase(&mut self, phase: &str, _mode: Mode) -> Result<PhaseOutcome, PluginError> {
        self.ctx.info(&format!("{phase}: not implemented in this plugin build"));
        Ok(PhaseOutcome::not_implemented("phase logic not ported to this plugin build yet"))
    }
}

sidecar_abi::export_plugin!(IuCutter);
