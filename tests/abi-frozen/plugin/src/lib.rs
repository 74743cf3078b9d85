//! Test fixture: a plugin built against the frozen `sidecar-abi` 0.1.0, the
//! interface the first plugins were released against. The compatibility
//! suite (`tests/tests/abi_matrix.rs`) loads it in the current host and dry
//! runs it, which proves that a newer host still runs an old release; `make
//! abi-fixtures` also rebuilds it against a copy versioned 0.2.0 to prove the
//! refusal of another generation.
//!
//! Deliberately small and deterministic: two dry-run-safe phases, counts of
//! what each batch holds, and one planned unit per version (the whole body)
//! whose after-image is built from numbers and hex digests only, so it is
//! valid JSON without an encoder.

use sidecar_abi::sdk::{Context, Plugin, Run};
use sidecar_abi::{
    Mode, PhaseDecl, PhaseOutcome, PlanAction, PlanOp, PluginError, PluginInfo, RecordBatch,
    SideEffects,
};

/// The plugin.
pub struct Frozen;

/// A run: the host's context, for one log line per batch.
pub struct FrozenRun(Context);

impl Plugin for Frozen {
    type Run = FrozenRun;

    fn info() -> PluginInfo {
        PluginInfo::new("frozen-abi-plugin", "1.0")
            .with_phase(PhaseDecl::new("discover", SideEffects::NONE))
            .with_phase(PhaseDecl::new("plan_units", SideEffects::NONE_ON_DRY_RUN))
    }

    fn start_run(ctx: Context, _mode: Mode) -> Result<FrozenRun, PluginError> {
        Ok(FrozenRun(ctx))
    }
}

impl Run for FrozenRun {
    fn run_phase(
        &mut self,
        phase: &str,
        _mode: Mode,
        batch: &RecordBatch,
    ) -> Result<PhaseOutcome, PluginError> {
        let outcome = PhaseOutcome::ok();
        if phase == "discover" {
            self.0.info(&format!("discover: {} documents", batch.documents.len()));
            return Ok(outcome
                .with_count("documents", batch.documents.len() as u64)
                .with_count("versions", batch.versions.len() as u64)
                .with_count("units", batch.units.len() as u64));
        }
        let mut outcome = outcome.with_count("units_planned", batch.versions.len() as u64);
        for version in batch.versions.iter() {
            let after_image = format!(
                r#"{{"document_id":{},"version_id":{},"ordinal":0,"body_sha256":"{}"}}"#,
                version.document_id,
                version.id,
                hex_only(&version.body_sha256)
            );
            outcome.plan.push(PlanOp {
                action: PlanAction::INSERT,
                table: "information_unit".into(),
                key: format!("{}:0", version.id).as_str().into(),
                after_image: after_image.as_str().into(),
            });
        }
        Ok(outcome)
    }
}

/// The digest as the host sent it, minus anything that is not a hex digit,
/// so the after-image stays valid JSON whatever the source holds.
fn hex_only(digest: &str) -> String {
    digest.chars().filter(char::is_ascii_hexdigit).collect()
}

sidecar_abi::export_plugin!(Frozen);
