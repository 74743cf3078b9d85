//! Test fixture: a plugin built once per misbehaviour, selected by a cargo
//! feature, so the end-to-end tests can prove each one is contained or
//! refused by name. Never shipped: `make plugins` does not build it.

use std::sync::atomic::{AtomicUsize, Ordering};

use sidecar_abi::sdk::{Context, Plugin, Run};
use sidecar_abi::{
    Mode, PhaseDecl, PhaseOutcome, PlanAction, PlanOp, PluginError, PluginInfo, RecordBatch,
    SideEffects,
};

/// The plugin.
pub struct Hostile;

/// A run.
pub struct HostileRun;

impl Plugin for Hostile {
    type Run = HostileRun;

    fn info() -> PluginInfo {
        if cfg!(feature = "panic_in_describe") {
            panic!("deliberate panic in describe");
        }
        if cfg!(feature = "abort_in_describe") {
            std::process::abort();
        }
        if cfg!(feature = "segfault_in_describe") {
            segfault();
        }
        if cfg!(feature = "hang_in_describe") {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let name = if cfg!(feature = "wrong_identity") { "impostor" } else { "test-plugin" };
        let info = PluginInfo::new(name, "1.0")
            .with_phase(PhaseDecl::new("discover", SideEffects::NONE))
            .with_phase(PhaseDecl::new("record", SideEffects::NONE_ON_DRY_RUN));
        if cfg!(feature = "unsafe_phase") {
            info.with_phase(PhaseDecl::new("mutate", SideEffects::SOME))
        } else {
            info
        }
    }

    fn execution_enabled() -> bool {
        // Call 1 is the host's read before the run; the SDK reads the switch
        // again when the refusal probe asks for a live run (call 2).
        static READS: AtomicUsize = AtomicUsize::new(0);
        let read = READS.fetch_add(1, Ordering::SeqCst) + 1;
        if cfg!(feature = "accepts_live") {
            // Reports `false` to the host, then lets the SDK accept `Live`.
            return read >= 2;
        }
        if cfg!(feature = "flips_execution_enabled") {
            // Off when the run starts, on when the host reads it afterwards.
            return read >= 3;
        }
        cfg!(feature = "execution_enabled")
    }

    fn start_run(_ctx: Context, _mode: Mode) -> Result<HostileRun, PluginError> {
        Ok(HostileRun)
    }
}

impl Run for HostileRun {
    fn run_phase(
        &mut self,
        phase: &str,
        _mode: Mode,
        batch: &RecordBatch,
    ) -> Result<PhaseOutcome, PluginError> {
        if cfg!(feature = "panic_in_phase") {
            panic!("deliberate panic in phase {phase}");
        }
        if cfg!(feature = "abort_in_phase") && phase == "record" {
            std::process::abort();
        }
        let mut outcome = PhaseOutcome::ok().with_count("documents", batch.documents.len() as u64);
        if phase == "record" {
            static RECORDS: AtomicUsize = AtomicUsize::new(0);
            let record = RECORDS.fetch_add(1, Ordering::SeqCst);
            // On the second batch, an after-image the host cannot accept.
            let after_image =
                if cfg!(feature = "invalid_plan") && record == 1 { "not json" } else { "{}" };
            outcome.plan.push(PlanOp {
                action: PlanAction::INSERT,
                table: "information_unit".into(),
                key: format!("{record}:0").as_str().into(),
                after_image: after_image.into(),
            });
        }
        Ok(outcome)
    }
}

#[allow(clippy::disallowed_names)]
fn segfault() -> ! {
    let null: *mut u8 = std::ptr::null_mut();
    // SAFETY: not safe at all, on purpose: this fixture exists to crash its
    // worker with SIGSEGV so the test suite can prove the host survives.
    unsafe { null.write_volatile(1) };
    unreachable!("the write above faults")
}

#[cfg(not(feature = "broken_cutter"))]
sidecar_abi::export_plugin!(Hostile);

#[cfg(feature = "broken_cutter")]
sidecar_abi::export_plugin!(broken::BrokenCutterPlugin);

/// The IU cutter with a cutter that drops the last byte of every piece but
/// the last, so the units no longer concatenate to the body.
#[cfg(feature = "broken_cutter")]
mod broken {
    use iu_cutter_core::sidecar::{plugin_info, SidecarRun};
    use iu_cutter_core::{Cutter, MarkdownCutter, Piece};
    use sidecar_abi::sdk::{Context, Plugin};
    use sidecar_abi::{Mode, PluginError, PluginInfo};

    pub struct DropsAByte;

    impl Cutter for DropsAByte {
        fn cut(&self, body: &str) -> Vec<Piece> {
            let mut pieces = MarkdownCutter.cut(body);
            let last = pieces.len().saturating_sub(1);
            for piece in &mut pieces[..last] {
                if piece.end > piece.start + 1 && body.is_char_boundary(piece.end - 1) {
                    piece.end -= 1;
                }
            }
            pieces
        }
    }

    pub struct BrokenCutterPlugin;

    impl Plugin for BrokenCutterPlugin {
        type Run = SidecarRun<DropsAByte>;

        fn info() -> PluginInfo {
            let mut info = plugin_info("1.0");
            info.name = "test-plugin".into();
            info
        }

        fn start_run(ctx: Context, _mode: Mode) -> Result<Self::Run, PluginError> {
            Ok(SidecarRun::new(ctx, DropsAByte))
        }
    }
}
