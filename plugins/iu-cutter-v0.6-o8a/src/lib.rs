//! The IU cutter orchestrator, version 0.6-o8a (the staging release that
//! wires the live-execution seam), as a sidecar plugin.
//!
//! It parses Markdown (pulldown-cmark) and cuts at level-1 and level-2
//! headings, ATX and setext, never inside code blocks or front matter, and
//! de-duplicates anchors GitHub-style. The live-execution seam is declared
//! (`LiveExecutionAdapter`) but stays behind the kill-switch, which is off.
//!
//! Everything but the cutter is `iu-cutter-core`, compiled into this library.

use iu_cutter_core::sidecar::SidecarRun;
use iu_cutter_core::MarkdownCutter;
use sidecar_abi::sdk::{Context, Plugin};
use sidecar_abi::{Mode, PluginError, PluginInfo};

/// The plugin.
pub struct IuCutter;

impl Plugin for IuCutter {
    type Run = SidecarRun<MarkdownCutter>;

    fn info() -> PluginInfo {
        iu_cutter_core::sidecar::plugin_info("0.6-o8a")
            .with_milestone("O8A")
            .with_live_wiring("O8A-LIVE-WIRING-1")
            .with_capability("LiveExecutionAdapter")
    }

    fn start_run(ctx: Context, _mode: Mode) -> Result<Self::Run, PluginError> {
        Ok(SidecarRun::new(ctx, MarkdownCutter))
    }
}

sidecar_abi::export_plugin!(IuCutter);
