//! Test fixture: a plugin built once per misbehaviour, selected by a cargo
//! feature, so the end-to-end tests can prove each one is contained or
//! refused by name. Never shipped: `make plugins` does not build it.

use sidecar_abi::sdk::{Context, Plugin, Run};
use sidecar_abi::{Mode, PhaseDecl, PhaseOutcome, PluginError, PluginInfo, SideEffects};

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
        PluginInfo::new(name, "1.0")
            .with_phase(PhaseDecl::new("discover", SideEffects::NONE))
            .with_phase(PhaseDecl::new("mutate", SideEffects::SOME))
    }

    fn execution_enabled() -> bool {
        cfg!(feature = "execution_enabled")
    }

    fn start_run(_ctx: Context, _mode: Mode) -> Result<HostileRun, PluginError> {
        Ok(HostileRun)
    }
}

impl Run for HostileRun {
    fn run_phase(&mut self, phase: &str, _mode: Mode) -> Result<PhaseOutcome, PluginError> {
        if cfg!(feature = "panic_in_phase") {
            panic!("deliberate panic in phase {phase}");
        }
        Ok(PhaseOutcome::ok())
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

sidecar_abi::export_plugin!(Hostile);
