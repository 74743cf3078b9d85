//! The interface between the sidecar host and orchestrator plugins.
//!
//! This is the only crate the host and the plugins share. Everything that
//! crosses the boundary is an `abi_stable` type whose layout the host checks
//! when it loads a plugin, so a plugin built against a different interface is
//! refused with a reason instead of being called with the wrong memory.
//!
//! The crate has two halves:
//! - the *wire types* ([`PluginModRef`], [`PluginInfo`], [`PhaseOutcome`], …):
//!   `#[repr(C)]` data and function pointers, frozen for a generation (see
//!   `abi/README.md` for the evolution rules);
//! - the *SDK* ([`sdk`] and [`export_plugin!`]): what a plugin author uses so
//!   that a plugin is plain safe Rust. The SDK is compiled into each plugin, so
//!   it can improve without touching the wire types.
//!
//! # A complete plugin
//!
//! ```
//! use sidecar_abi::sdk::{Context, Plugin, Run};
//! use sidecar_abi::{Mode, PhaseDecl, PhaseOutcome, PluginError, PluginInfo, RecordBatch, SideEffects};
//!
//! pub struct Hello;
//! pub struct HelloRun(Context);
//!
//! impl Plugin for Hello {
//!     type Run = HelloRun;
//!     fn info() -> PluginInfo {
//!         PluginInfo::new("hello", "1.0")
//!             .with_phase(PhaseDecl::new("greet", SideEffects::NONE))
//!     }
//!     fn start_run(ctx: Context, _mode: Mode) -> Result<HelloRun, PluginError> {
//!         Ok(HelloRun(ctx))
//!     }
//! }
//!
//! impl Run for HelloRun {
//!     fn run_phase(
//!         &mut self,
//!         phase: &str,
//!         _mode: Mode,
//!         batch: &RecordBatch,
//!     ) -> Result<PhaseOutcome, PluginError> {
//!         self.0.info(&format!("{phase}: {} documents", batch.documents.len()));
//!         Ok(PhaseOutcome::ok())
//!     }
//! }
//!
//! // In the plugin's cdylib crate root:
//! // sidecar_abi::export_plugin!(Hello);
//! ```
#![deny(missing_docs)]

mod types;

pub mod sdk;

pub use types::*;

/// Re-exports the macros [`export_plugin!`] expands to, so a plugin does not
/// have to name them.
#[doc(hidden)]
pub mod __private {
    pub use abi_stable::export_root_module;
}

/// Exports a type implementing [`sdk::Plugin`] as this library's root module.
///
/// Call it once, at the root of a `cdylib` crate. The plugin crate must also
/// depend on `abi_stable` directly: the attribute this expands to names it by
/// its absolute path.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        /// The root module the sidecar host loads.
        #[$crate::__private::export_root_module]
        pub fn sidecar_root_module() -> $crate::PluginModRef {
            $crate::sdk::root_module::<$plugin>()
        }
    };
}
