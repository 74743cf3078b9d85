//! The plugin SDK: write a plugin as two plain traits, export it with one macro.
//!
//! The SDK owns the boundary so plugin code does not have to:
//! - every exported call runs inside `catch_unwind`, so a panic comes back to
//!   the host as [`ErrorKind::PANICKED`](crate::ErrorKind::PANICKED) instead of
//!   aborting the process;
//! - a [`Mode::Live`] call is refused with
//!   `ProductionExecutionNotAuthorized` before plugin code runs unless
//!   [`Plugin::execution_enabled`] says otherwise;
//! - a phase the plugin did not declare is refused with `UnknownPhase`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::{
    prefix_type::PrefixTypeTrait,
    sabi_trait::TD_Opaque,
    std_types::{RResult, RSlice, RStr},
};

use crate::{
    HostContext, LogLevel, Mode, PhaseOutcome, PluginError, PluginInfo, PluginMod, PluginModRef,
    PluginRun, PluginRunBox, PluginRun_TO, QueryColumn, QueryRow, RecordBatch,
};

/// An orchestrator version, as a plugin author writes it.
pub trait Plugin: 'static {
    /// The state of one run.
    type Run: Run;

    /// Describes the plugin: name, version, phases in order, capabilities.
    fn info() -> PluginInfo;

    /// The kill-switch. A shipped plugin returns `false`; the host refuses a
    /// plugin that reports `true` at any point.
    fn execution_enabled() -> bool {
        false
    }

    /// Starts a run. `mode` is `Live` only when execution is enabled, which
    /// the SDK checks before calling this.
    fn start_run(ctx: Context, mode: Mode) -> Result<Self::Run, PluginError>;
}

/// One run of a plugin's phases.
pub trait Run: 'static {
    /// Runs one declared phase on one batch of records. The SDK has already
    /// refused unknown phases and unauthorized `Live` calls.
    fn run_phase(
        &mut self,
        phase: &str,
        mode: Mode,
        batch: &RecordBatch,
    ) -> Result<PhaseOutcome, PluginError>;

    /// Ends the run.
    fn finish(&mut self) -> Result<(), PluginError> {
        Ok(())
    }
}

/// The host's services, as the plugin sees them. Cheap to clone and safe to
/// use from several threads.
#[derive(Clone)]
pub struct Context {
    host: Arc<HostContext>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Context")
    }
}

impl Context {
    /// Wraps the host's context.
    pub fn new(host: HostContext) -> Self {
        Self { host: Arc::new(host) }
    }

    /// Sends a log line to the host.
    pub fn log(&self, level: LogLevel, message: &str) {
        self.host.log(level, RStr::from_str(message));
    }

    /// Sends an `info` log line to the host.
    pub fn info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }

    /// Sends a `warn` log line to the host.
    pub fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message);
    }

    /// Runs a read-only query on the run's database snapshot; `params` bind
    /// `$1`, `$2`, … as text (cast them in SQL: `$1::bigint`). Rows arrive
    /// in batches as the returned [`Rows`] is read; dropping it closes the
    /// query. The host refuses any statement that is not a single read.
    pub fn query(&self, sql: &str, params: &[&str]) -> Result<Rows, PluginError> {
        let params: Vec<RStr<'_>> = params.iter().map(|p| RStr::from_str(p)).collect();
        let cursor =
            self.host.query_open(RStr::from_str(sql), RSlice::from_slice(&params)).into_result()?;
        Ok(Rows {
            host: Arc::clone(&self.host),
            id: cursor.id,
            columns: cursor.columns.into_iter().collect(),
            buffered: std::collections::VecDeque::new(),
            done: false,
        })
    }
}

/// The rows of a [`Context::query`], fetched from the host a batch at a
/// time. Each item is a row of text values (`None` for NULL) or the error
/// that ended the query.
pub struct Rows {
    host: Arc<HostContext>,
    id: u64,
    columns: Vec<QueryColumn>,
    buffered: std::collections::VecDeque<QueryRow>,
    done: bool,
}

impl Rows {
    /// How many rows one round trip to the host fetches.
    pub const BATCH: u32 = 1000;

    /// The result's columns.
    pub fn columns(&self) -> &[QueryColumn] {
        &self.columns
    }
}

impl Iterator for Rows {
    type Item = Result<Vec<Option<String>>, PluginError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffered.is_empty() && !self.done {
            match self.host.query_next(self.id, Self::BATCH).into_result() {
                Ok(rows) if rows.is_empty() => self.done = true,
                Ok(rows) => self.buffered.extend(rows),
                Err(err) => {
                    self.done = true;
                    return Some(Err(err));
                }
            }
        }
        let row = self.buffered.pop_front()?;
        Some(Ok(row.values.into_iter().map(|v| v.into_option().map(String::from)).collect()))
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        // A close that fails means the host is gone or the query already
        // ended; either way there is nothing left to release.
        let _ = self.host.query_close(self.id);
    }
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows").field("id", &self.id).field("columns", &self.columns).finish()
    }
}

/// Builds the root module for `P`; [`export_plugin!`](crate::export_plugin)
/// calls this once, when the host loads the library.
pub fn root_module<P: Plugin>() -> PluginModRef {
    PluginMod {
        describe: describe::<P>,
        execution_enabled: execution_enabled::<P>,
        start_run: start_run::<P>,
    }
    .leak_into_prefix()
}

extern "C" fn describe<P: Plugin>() -> RResult<PluginInfo, PluginError> {
    guarded("describe", || Ok(P::info()))
}

extern "C" fn execution_enabled<P: Plugin>() -> RResult<bool, PluginError> {
    guarded("execution_enabled", || Ok(P::execution_enabled()))
}

extern "C" fn start_run<P: Plugin>(
    host: HostContext,
    mode: Mode,
) -> RResult<PluginRunBox, PluginError> {
    guarded("start_run", || {
        refuse_unauthorized::<P>(mode)?;
        let phases = P::info().phases.iter().map(|p| p.name.to_string()).collect();
        let run = P::start_run(Context::new(host), mode)?;
        Ok(PluginRun_TO::from_value(RunAdapter::<P> { run, phases }, TD_Opaque))
    })
}

fn refuse_unauthorized<P: Plugin>(mode: Mode) -> Result<(), PluginError> {
    if mode == Mode::Live && !P::execution_enabled() {
        return Err(PluginError::production_execution_not_authorized());
    }
    Ok(())
}

/// Adapts a [`Run`] to the wire trait, adding the SDK's guarantees.
struct RunAdapter<P: Plugin> {
    run: P::Run,
    phases: Vec<String>,
}

impl<P: Plugin> PluginRun for RunAdapter<P> {
    fn run_phase(
        &mut self,
        phase: RStr<'_>,
        mode: Mode,
        batch: &RecordBatch,
    ) -> RResult<PhaseOutcome, PluginError> {
        guarded("run_phase", || {
            refuse_unauthorized::<P>(mode)?;
            if !self.phases.iter().any(|p| p == phase.as_str()) {
                return Err(PluginError::unknown_phase(phase.as_str()));
            }
            self.run.run_phase(phase.as_str(), mode, batch)
        })
    }

    fn finish(&mut self) -> RResult<(), PluginError> {
        guarded("finish", || self.run.finish())
    }
}

/// Runs `body`, turning a panic into a `Panicked` error so it never unwinds
/// across the boundary.
fn guarded<T>(
    call: &str,
    body: impl FnOnce() -> Result<T, PluginError>,
) -> RResult<T, PluginError> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result.into(),
        Err(payload) => RResult::RErr(PluginError::panicked(format!(
            "{call} panicked: {}",
            panic_message(&*payload)
        ))),
    }
}

fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}
