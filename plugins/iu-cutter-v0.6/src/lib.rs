//! The IU cutter orchestrator, version 0.6 (the deployed baseline), as a
//! sidecar plugin.
//!
//! It cuts at every line that starts with `## `, as shipped: even inside
//! fenced code, never at setext or level-1 headings, and it disambiguates a
//! repeated anchor with the unit's ordinal.
//!
//! Everything but the cutter is `iu-cutter-core`, compiled into this library.

use iu_cutter_core::sidecar::SidecarRun;
use iu_cutter_core::NaiveCutter;
use sidecar_abi::sdk::{Context, Plugin};
use sidecar_abi::{Mode, PluginError, PluginInfo};

/// The plugin.
pub struct IuCutter;

impl Plugin for IuCutter {
    type Run = SidecarRun<NaiveCutter>;

    fn info() -> PluginInfo {
        iu_cutter_core::sidecar::plugin_info("0.6").with_milestone("O7")
    }

    fn start_run(ctx: Context, _mode: Mode) -> Result<Self::Run, PluginError> {
        Ok(SidecarRun::new(ctx, NaiveCutter))
    }
}

sidecar_abi::export_plugin!(IuCutter);
