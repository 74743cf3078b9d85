//! The worker: the host binary in its hidden `__worker` mode, holding exactly
//! one plugin.
//!
//! It is spawned with a cleared environment, the sealed library at fd 3 and
//! the protocol on stdin/stdout. Before loading anything it moves the
//! protocol off fds 0 and 1 and confines itself (`sandbox`), then says
//! `Hello` with how it is confined; it answers one request at a time, and
//! forwards the plugin's log lines and queries over the protocol pipe while
//! a call is in progress. If the plugin crashes, only this process dies;
//! the host sees the pipe close and reports it.

use std::fs::File;
use std::io::{self, BufReader, BufWriter};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use abi_stable::library::{lib_header_from_path, LibraryError};
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSlice, RStr, RString, RVec};
use sidecar_abi::{
    self as abi, ErrorKind, Host, Host_TO, LogLevel, Mode, PluginError, PluginModRef, PluginRunBox,
    QueryColumn, QueryCursor, QueryRow,
};

use super::protocol::{
    read_frame, write_frame, Event, QueryAnswer, QueryCall, Reply, Request, WireError, WireMode,
    FRAME_BUFFER, PROTOCOL, PROTOCOL_VERSION,
};
use super::sandbox;
use crate::plugin::{PluginInfo, WireOutcome};
use crate::source::record::RecordBatch;
use crate::sys;

type Output = Arc<Mutex<BufWriter<File>>>;
type Input = Arc<Mutex<BufReader<File>>>;

/// Runs the worker until the host says `Shutdown` or closes the channel.
pub fn serve() -> io::Result<()> {
    let fds = sys::take_protocol_fds()?;
    // Still one thread, and no plugin code has run: the library is loaded
    // only at `Load`, and its constructors run then, inside the sandbox.
    let sandbox = sandbox::confine();
    let input: Input = Arc::new(Mutex::new(BufReader::with_capacity(FRAME_BUFFER, fds.input)));
    let output: Output = Arc::new(Mutex::new(BufWriter::with_capacity(FRAME_BUFFER, fds.output)));
    send(&output, &Event::Hello { protocol: PROTOCOL.into(), version: PROTOCOL_VERSION, sandbox })?;

    let mut worker = Worker {
        module: None,
        run: None,
        batch: abi::RecordBatch::default(),
        input: Arc::clone(&input),
        output: Arc::clone(&output),
    };
    loop {
        let request = read_frame::<Request>(&mut *lock(&input))?;
        let Some(request) = request else { break };
        if let Request::RunBatch { batch, phases, mode } = request {
            worker.run_batch(batch, &phases, mode)?;
            continue;
        }
        let shutdown = request == Request::Shutdown;
        let result = worker.handle(request);
        send(&output, &Event::Reply { result })?;
        if shutdown {
            break;
        }
    }
    Ok(())
}

fn send(output: &Output, event: &Event<WireOutcome>) -> io::Result<()> {
    write_frame(&mut *lock(output), event)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

struct Worker {
    module: Option<PluginModRef>,
    run: Option<PluginRunBox>,
    /// What `run_phase` passes the plugin; empty until the host sends one, so
    /// the refusal probe's context holds no data.
    batch: abi::RecordBatch,
    input: Input,
    output: Output,
}

impl Worker {
    fn handle(&mut self, request: Request) -> Result<Reply<WireOutcome>, WireError> {
        if let Request::Load = request {
            let (module, abi_version) = load()?;
            self.module = Some(module);
            return Ok(Reply::Loaded { abi_version });
        }
        if let Request::Shutdown = request {
            if let Some(mut run) = self.run.take() {
                // The host is leaving mid-run; give the plugin its finish call.
                let _ = run.finish();
            }
            return Ok(Reply::Bye);
        }
        let module = self.module.ok_or_else(|| protocol("no plugin loaded"))?;
        match request {
            Request::Describe => {
                let info = plugin_result((module.describe())())?;
                Ok(Reply::Info { info: PluginInfo::from(&info) })
            }
            Request::ExecutionEnabled => {
                let enabled = plugin_result((module.execution_enabled())())?;
                Ok(Reply::ExecutionEnabled { enabled })
            }
            Request::StartRun { mode } => {
                if self.run.is_some() {
                    return Err(protocol("a run is already in progress"));
                }
                let host = Host_TO::from_value(
                    HostServices {
                        input: Arc::clone(&self.input),
                        output: Arc::clone(&self.output),
                    },
                    TD_Opaque,
                );
                let run = plugin_result((module.start_run())(host, abi_mode(mode)))?;
                self.run = Some(run);
                Ok(Reply::RunStarted)
            }
            Request::FinishRun => {
                let mut run = self.run.take().ok_or_else(|| protocol("no run in progress"))?;
                plugin_result(run.finish())?;
                Ok(Reply::RunFinished)
            }
            Request::QueryAnswer { .. } => Err(protocol("a query answer with no query asked")),
            Request::Load | Request::Shutdown | Request::RunBatch { .. } => {
                Err(protocol("unreachable request"))
            }
        }
    }

    /// Runs `phases` in order on `batch`, replying once per phase, and stops
    /// after the first that does not end `ok` or reports an error finding:
    /// the host would stop there, and so would a live run.
    fn run_batch(
        &mut self,
        batch: RecordBatch,
        phases: &[String],
        mode: WireMode,
    ) -> io::Result<()> {
        self.batch = abi_batch(batch);
        for phase in phases {
            let started = Instant::now();
            let result = self.run_phase(phase, mode);
            let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let stop = result.as_ref().map_or(true, stops_a_run);
            let result = result.map(|outcome| Reply::PhaseOutcome { outcome, micros });
            send(&self.output, &Event::Reply { result })?;
            if stop {
                break;
            }
        }
        send(&self.output, &Event::Reply { result: Ok(Reply::BatchDone) })
    }

    fn run_phase(&mut self, phase: &str, mode: WireMode) -> Result<WireOutcome, WireError> {
        let run = self.run.as_mut().ok_or_else(|| protocol("no run in progress"))?;
        let outcome =
            plugin_result(run.run_phase(RStr::from_str(phase), abi_mode(mode), &self.batch))?;
        Ok(WireOutcome(outcome))
    }
}

/// Whether an outcome ends a run: a status other than `ok`, or any error
/// finding (the host's `stop_reason` applies the same rule).
fn stops_a_run(outcome: &WireOutcome) -> bool {
    outcome.0.status != abi::PhaseStatus::OK
        || outcome.0.findings.iter().any(|f| f.severity == abi::Severity::ERROR)
}

/// Moves the host's records into the ABI's types (the strings move, no copy
/// of the bodies).
fn abi_batch(batch: RecordBatch) -> abi::RecordBatch {
    abi::RecordBatch {
        documents: batch
            .documents
            .into_iter()
            .map(|d| abi::SourceDocument {
                id: d.id,
                kb_path: d.kb_path.into(),
                title: d.title.into(),
                status: d.status.into(),
                updated_at: d.updated_at.into(),
            })
            .collect(),
        versions: batch
            .versions
            .into_iter()
            .map(|v| abi::SourceVersion {
                id: v.id,
                document_id: v.document_id,
                revision: v.revision,
                body: v.body.into(),
                body_sha256: v.body_sha256.into(),
                created_at: v.created_at.into(),
            })
            .collect(),
        units: batch
            .units
            .into_iter()
            .map(|u| abi::InformationUnit {
                id: u.id,
                document_id: u.document_id,
                version_id: u.version_id,
                ordinal: u.ordinal,
                heading: u.heading.into(),
                anchor: u.anchor.into(),
                body: u.body.into(),
                body_sha256: u.body_sha256.into(),
                lifecycle: u.lifecycle.into(),
            })
            .collect(),
    }
}

fn abi_mode(mode: WireMode) -> Mode {
    match mode {
        WireMode::DryRun => Mode::DryRun,
        WireMode::Live => Mode::Live,
    }
}

fn protocol(message: &str) -> WireError {
    WireError::Protocol { message: message.into() }
}

fn plugin_result<T>(result: RResult<T, PluginError>) -> Result<T, WireError> {
    result.into_result().map_err(|err| WireError::Plugin {
        code: err.kind.0,
        kind: err.kind.name().map(str::to_owned),
        message: err.message.to_string(),
    })
}

/// The host services a plugin gets: log lines and queries, both forwarded
/// to the host over the worker's channel. The worker holds no connection:
/// a query is a message, and the host decides what reaches the database.
struct HostServices {
    input: Input,
    output: Output,
}

impl HostServices {
    /// Sends `call` and waits for the host's answer. Holding the input for
    /// the whole exchange keeps calls from several plugin threads apart.
    fn ask(&self, call: QueryCall) -> Result<QueryAnswer, PluginError> {
        let mut input = lock(&self.input);
        let lost = |err: io::Error| {
            PluginError::new(ErrorKind::QUERY_FAILED, format!("host channel lost: {err}"))
        };
        send(&self.output, &Event::Query { call }).map_err(lost)?;
        match read_frame::<Request>(&mut *input).map_err(lost)? {
            Some(Request::QueryAnswer { result }) => result.map_err(|failure| {
                let kind = if failure.refused {
                    ErrorKind::QUERY_REFUSED
                } else {
                    ErrorKind::QUERY_FAILED
                };
                PluginError::new(kind, failure.message)
            }),
            Some(other) => Err(PluginError::new(
                ErrorKind::QUERY_FAILED,
                format!("worker protocol: expected a query answer, got {other:?}"),
            )),
            None => Err(PluginError::new(ErrorKind::QUERY_FAILED, "host channel closed")),
        }
    }
}

impl Host for HostServices {
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let level = match level {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        };
        // A log line that cannot be delivered means the host is gone; the
        // next reply will fail and end the worker.
        let _ =
            send(&self.output, &Event::Log { level: level.into(), message: message.to_string() });
    }

    fn query_open(
        &self,
        sql: RStr<'_>,
        params: RSlice<'_, RStr<'_>>,
    ) -> RResult<QueryCursor, PluginError> {
        let call = QueryCall::Open {
            sql: sql.to_string(),
            params: params.iter().map(ToString::to_string).collect(),
        };
        RResult::from(self.ask(call).and_then(|answer| {
            match answer {
                QueryAnswer::Opened { cursor, columns } => Ok(QueryCursor {
                    id: cursor,
                    columns: columns
                        .into_iter()
                        .map(|(name, type_name)| QueryColumn {
                            name: name.into(),
                            type_name: type_name.into(),
                        })
                        .collect(),
                }),
                other => Err(unexpected_answer(&other)),
            }
        }))
    }

    fn query_next(&self, cursor: u64, max_rows: u32) -> RResult<RVec<QueryRow>, PluginError> {
        RResult::from(self.ask(QueryCall::Next { cursor, max_rows }).and_then(|answer| {
            match answer {
                QueryAnswer::Rows { rows } => Ok(rows
                    .into_iter()
                    .map(|values| QueryRow {
                        values: values
                            .into_iter()
                            .map(|v| ROption::from(v.map(RString::from)))
                            .collect(),
                    })
                    .collect()),
                other => Err(unexpected_answer(&other)),
            }
        }))
    }

    fn query_close(&self, cursor: u64) -> RResult<(), PluginError> {
        RResult::from(self.ask(QueryCall::Close { cursor }).and_then(|answer| match answer {
            QueryAnswer::Closed => Ok(()),
            other => Err(unexpected_answer(&other)),
        }))
    }
}

fn unexpected_answer(answer: &QueryAnswer) -> PluginError {
    PluginError::new(ErrorKind::QUERY_FAILED, format!("worker protocol: unexpected {answer:?}"))
}

/// Loads the sealed library: `dlopen` of `/proc/self/fd/3`, the ABI version
/// check, then `abi_stable`'s full layout check of the root module.
///
/// `lib_header_from_path` + `init_root_module` rather than
/// `RootModule::load_from_file`, which caches one module per type and would
/// hand back the first plugin for every later path. The library is never
/// unloaded: `abi_stable` leaks it on purpose.
fn load() -> Result<(PluginModRef, String), WireError> {
    let path = sys::worker_library_path();
    let header = lib_header_from_path(Path::new(&path)).map_err(load_error)?;
    let strings = header.version_strings();
    let abi_version = strings.version.as_str().to_owned();
    if let Some(summary) = incompatible_abi_version(&abi_version, sidecar_abi::ABI_VERSION) {
        return Err(WireError::Load { summary, detail: String::new() });
    }
    let module = header.init_root_module::<PluginModRef>().map_err(load_error)?;
    Ok((module, abi_version))
}

/// The interface's compatibility rule, stated before `abi_stable` gives its
/// far longer answer: same major, and before 1.0 the same minor.
pub fn incompatible_abi_version(plugin: &str, host: &str) -> Option<String> {
    let parse = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split('.');
        Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
    };
    let (Some((p_major, p_minor)), Some((h_major, h_minor))) = (parse(plugin), parse(host)) else {
        return Some(format!("plugin declares an unreadable sidecar-abi version `{plugin}`"));
    };
    let compatible = p_major == h_major && (h_major > 0 || p_minor == h_minor);
    let wanted =
        if h_major > 0 { format!("{h_major}.x") } else { format!("{h_major}.{h_minor}.x") };
    (!compatible).then(|| {
        format!(
            "incompatible ABI: plugin built against sidecar-abi {plugin}, this host loads {wanted}"
        )
    })
}

fn load_error(err: LibraryError) -> WireError {
    let detail = err.to_string();
    let summary = match &err {
        LibraryError::OpenError { .. } => {
            // abi_stable words it "Could not open library at: <path> because: <dlerror>".
            let lines: Vec<&str> = detail.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            let reason = lines
                .iter()
                .position(|l| *l == "because:")
                .and_then(|at| lines.get(at + 1))
                .or(lines.last())
                .copied()
                .unwrap_or("unknown reason");
            format!("not a loadable library: {}", reason.replace(&sys::worker_library_path(), "library"))
        }
        LibraryError::GetSymbolError { .. } => {
            "not a sidecar plugin: the library exports no abi_stable root module".to_owned()
        }
        LibraryError::InvalidAbiHeader(_) | LibraryError::InvalidCAbi { .. } => {
            "incompatible ABI: the library was built with an incompatible abi_stable".to_owned()
        }
        LibraryError::IncompatibleVersionNumber { expected_version, actual_version, .. } => format!(
            "incompatible ABI: plugin built against sidecar-abi {actual_version}, this host loads {expected_version}"
        ),
        LibraryError::AbiInstability(_) => format!("incompatible ABI: {}", key_mismatch(&detail)),
        LibraryError::RootModule { err, .. } => format!("the plugin's root module failed: {err}"),
        _ => detail.lines().next().unwrap_or("unknown load error").to_owned(),
    };
    WireError::Load { summary, detail }
}

/// `abi_stable` explains a layout mismatch in a couple of hundred lines; the
/// key is the first `Error:` line, its expected and found values, and the
/// type whose layout was being compared when it was found.
fn key_mismatch(detail: &str) -> String {
    let lines: Vec<&str> = detail.lines().map(str::trim).collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("Error:")) else {
        return lines
            .iter()
            .find(|l| !l.is_empty())
            .copied()
            .unwrap_or("layout mismatch")
            .to_owned();
    };
    let mut summary = lines[at].trim_start_matches("Error:").trim().to_owned();
    let type_name = lines[..at]
        .iter()
        .rposition(|l| *l == "Layout of expected type:")
        .and_then(|layout| lines[layout..at].iter().find_map(|l| l.strip_prefix("type:")));
    if let Some(type_name) = type_name {
        summary.push_str(&format!(" in `{type_name}`"));
    }
    // The values follow their labels on the next lines, up to a blank line.
    let value_after = |label: &str| -> Option<String> {
        let from = at + lines[at..].iter().position(|l| *l == label)? + 1;
        let value: Vec<&str> = lines[from..]
            .iter()
            .take_while(|l| !l.is_empty() && !l.ends_with(':'))
            .copied()
            .collect();
        (!value.is_empty()).then(|| value.join(" "))
    };
    if let (Some(expected), Some(found)) = (value_after("Expected:"), value_after("Found:")) {
        summary.push_str(&format!(" (host expects {expected}, plugin has {found})"));
    }
    summary
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_mismatch_is_summarised_in_one_line() {
        let detail = "Compared <this>:\n  type:PrefixRef\nLayout of expected type:\n    --- Type Layout ---\n    \
                      type:Mode\n    size:1\nLayout of found type:\n    type:Mode\n\n\nError:too many variants\n\
                      Expected:\n    2\nFound:\n    3\n\n";
        assert_eq!(
            key_mismatch(detail),
            "too many variants in `Mode` (host expects 2, plugin has 3)"
        );
    }

    #[test]
    fn abi_versions_follow_the_documented_rule() {
        assert_eq!(incompatible_abi_version("0.1.3", "0.1.0"), None);
        assert_eq!(incompatible_abi_version("1.4.0", "1.0.0"), None);
        assert_eq!(
            incompatible_abi_version("0.2.0", "0.1.0").as_deref(),
            Some("incompatible ABI: plugin built against sidecar-abi 0.2.0, this host loads 0.1.x")
        );
        assert_eq!(
            incompatible_abi_version("2.0.0", "1.3.0").as_deref(),
            Some("incompatible ABI: plugin built against sidecar-abi 2.0.0, this host loads 1.x")
        );
    }
}
