//! The host's handle on one worker process.
//!
//! Every call has a deadline, and the worker's address space a limit. A
//! reader thread turns the worker's frames into a channel so the host can
//! wait with a timeout; a second thread drains the worker's stderr into the
//! debug log and keeps its last lines for the report when the worker dies. A
//! worker that crashes, hangs, runs out of memory or speaks garbage is
//! killed and reported with the plugin's identity and the call (for a
//! phase: its name and batch); the host carries on.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::protocol::{
    read_frame, write_frame, Event, QueryAnswer, QueryCall, QueryFailure, Reply, Request,
    WireError, WireMode, FRAME_BUFFER, PROTOCOL, PROTOCOL_VERSION,
};
use super::sandbox::Sandbox;
use crate::plugin::{PhaseOutcome, PluginInfo};
use crate::source::record::RecordBatch;
use crate::sys::{self, SealedLibrary};

/// The pipe buffer asked for each direction of the worker channel.
const PIPE_BYTES: usize = 1 << 20;

/// How many of the worker's last stderr lines a crash report keeps.
const STDERR_TAIL: usize = 20;

/// The default of `--worker-memory`. A dry run of the reference plugin on
/// `generated:100M` peaks at 23 MiB of address space (15 MiB resident) with
/// the default batch of 256 documents, and grows by about 32 KiB per
/// document of batch (139 MiB at 4096). 1 GiB is 40 times the default's
/// need, leaves room for a plugin's threads (glibc reserves 64 MiB of
/// address space for each thread's malloc arena, most of it never touched),
/// and still stops a runaway plugin long before it takes the machine.
pub const DEFAULT_WORKER_MEMORY: &str = "1G";

/// The smallest `--worker-memory`. The worker needs about 14 MiB of
/// address space to start and 16 MiB to load the reference plugin; below
/// that it fails in ways that do not say memory (a SIGSEGV in the dynamic
/// loader). Twice that leaves the plugin something to run with.
const MIN_WORKER_MEMORY: u64 = 32 << 20;

/// What a worker may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The deadline of one call.
    pub timeout: Duration,
    /// The worker's address space in bytes (`RLIMIT_AS`, soft and hard).
    pub memory: u64,
}

/// Parses `--worker-memory SIZE` (as `gen-corpus --size`: digits with an
/// optional K, M or G suffix).
pub fn parse_worker_memory(text: &str) -> Result<u64, String> {
    let bytes = crate::source::parse_size(text).map_err(|e| e.to_string())?;
    if bytes < MIN_WORKER_MEMORY {
        return Err(format!(
            "{} is below the minimum of {}: a worker needs about 16 MiB to start and load a plugin",
            format_size(bytes),
            format_size(MIN_WORKER_MEMORY)
        ));
    }
    Ok(bytes)
}

/// A size as an operator would write it: `256 MiB`, `1 GiB`, `1536 KiB`.
pub fn format_size(bytes: u64) -> String {
    for (unit, name) in [(1u64 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] {
        if bytes >= unit && bytes % unit == 0 {
            return format!("{} {name}", bytes / unit);
        }
    }
    format!("{bytes} bytes")
}

/// Why a worker call failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The worker process could not be started.
    #[error("cannot start a worker process: {0}")]
    Spawn(#[source] io::Error),
    /// The worker did not open with the expected `Hello`.
    #[error("worker handshake failed: {0}")]
    Handshake(String),
    /// The worker process ended in the middle of a call.
    #[error("plugin {plugin}: worker died during {call}: {status}{}", last_line(.stderr))]
    Died {
        /// The plugin's name and version.
        plugin: String,
        /// The call in progress, e.g. `` `describe` `` or
        /// ``phase `record` on batch 0``.
        call: String,
        /// How it ended, e.g. `killed by SIGSEGV`.
        status: String,
        /// Its last stderr lines.
        stderr: Vec<String>,
    },
    /// The worker reached its address-space limit: the allocator failed,
    /// Rust's allocation error handler said so on stderr and aborted.
    #[error(
        "plugin {plugin}: worker ran out of memory during {call} (limit {}; --worker-memory)",
        format_size(*.limit)
    )]
    OutOfMemory {
        /// The plugin's name and version.
        plugin: String,
        /// The call in progress.
        call: String,
        /// The limit it reached, in bytes.
        limit: u64,
    },
    /// The call did not answer in time; the worker was killed.
    #[error(
        "plugin {plugin}: {call} did not answer within {}s; worker killed",
        .after.as_secs_f64()
    )]
    Timeout {
        /// The plugin's name and version.
        plugin: String,
        /// The call in progress.
        call: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The library did not load or its ABI does not match.
    #[error("{summary}")]
    Load {
        /// One line.
        summary: String,
        /// The full explanation, logged at debug level.
        detail: String,
    },
    /// The plugin returned an error.
    #[error("{}: {message}", kind.as_deref().unwrap_or("unknown error kind"))]
    Plugin {
        /// The stable code.
        code: u32,
        /// The code's name when known.
        kind: Option<String>,
        /// The message.
        message: String,
    },
    /// The worker broke the protocol.
    #[error("worker protocol error: {0}")]
    Protocol(String),
}

impl WorkerError {
    /// Whether the worker is gone (it died, ran out of memory, or was
    /// killed at its deadline); such an error names the plugin and the call.
    pub fn is_worker_lost(&self) -> bool {
        matches!(self, Self::Died { .. } | Self::OutOfMemory { .. } | Self::Timeout { .. })
    }
}

fn last_line(stderr: &[String]) -> String {
    stderr.last().map(|line| format!(" (last output: {line})")).unwrap_or_default()
}

/// Whether a stderr line is Rust's report of a failed allocation
/// (`memory allocation of 16777216 bytes failed`), which `abort`s next.
fn is_allocation_failure(line: &str) -> bool {
    line.strip_prefix("memory allocation of ")
        .and_then(|rest| rest.strip_suffix(" bytes failed"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// A request's name in reports: `` `describe` ``.
fn named(call: &str) -> String {
    format!("`{call}`")
}

impl From<WireError> for WorkerError {
    fn from(err: WireError) -> Self {
        match err {
            WireError::Plugin { code, kind, message } => Self::Plugin { code, kind, message },
            WireError::Load { summary, detail } => Self::Load { summary, detail },
            WireError::Protocol { message } => Self::Protocol(message),
        }
    }
}

/// What answers a plugin's queries while a phase runs: the run's query
/// service (see `crate::run::queries`), or [`NoQueries`] outside a phase.
pub trait QueryService {
    /// Answers one call; a refusal or failure goes back to the plugin as an
    /// error.
    fn answer(&mut self, call: QueryCall) -> Result<QueryAnswer, QueryFailure>;
}

/// Refuses every query: the answer outside a phase.
#[derive(Debug, Default)]
pub struct NoQueries;

impl QueryService for NoQueries {
    fn answer(&mut self, _call: QueryCall) -> Result<QueryAnswer, QueryFailure> {
        Err(QueryFailure {
            refused: true,
            message: "queries are served only while a phase runs".to_owned(),
        })
    }
}

/// A running worker holding one plugin library.
#[derive(Debug)]
pub struct Worker {
    label: String,
    child: Child,
    requests: BufWriter<ChildStdin>,
    events: Receiver<io::Result<Event>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_done: Receiver<()>,
    limits: Limits,
    sandbox: Sandbox,
    exited: Option<ExitStatus>,
}

impl Worker {
    /// Starts a worker for `library` under `limits` and completes the
    /// handshake. `label` names the plugin in logs and reports.
    pub fn spawn(
        library: &SealedLibrary,
        label: &str,
        limits: Limits,
    ) -> Result<Self, WorkerError> {
        let mut command = Command::new("/proc/self/exe");
        command
            .arg("__worker")
            .env_clear()
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        library.pass_to_worker(&mut command);
        sys::harden_worker(&mut command, limits.memory);
        let mut child = command.spawn().map_err(WorkerError::Spawn)?;
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(WorkerError::Spawn(io::Error::other("worker pipes missing")));
        };
        // A batch or a phase's plan is often larger than the default 64 KiB.
        sys::grow_pipe(&stdin, PIPE_BYTES);
        sys::grow_pipe(&stdout, PIPE_BYTES);

        let (event_tx, events) = mpsc::channel();
        thread::spawn(move || {
            let mut stdout = BufReader::with_capacity(FRAME_BUFFER, stdout);
            loop {
                match read_frame::<Event>(&mut stdout) {
                    Ok(Some(event)) => {
                        if event_tx.send(Ok(event)).is_err() {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        let _ = event_tx.send(Err(err));
                        break;
                    }
                }
            }
        });

        let stderr_tail = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_TAIL)));
        let (done_tx, stderr_done) = mpsc::channel();
        let tail = Arc::clone(&stderr_tail);
        let owner = label.to_owned();
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                tracing::debug!(target: "sidecar::worker", plugin = %owner, "stderr: {line}");
                let mut tail = tail.lock().unwrap_or_else(PoisonError::into_inner);
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            let _ = done_tx.send(());
        });

        let mut worker = Self {
            label: label.to_owned(),
            child,
            requests: BufWriter::with_capacity(FRAME_BUFFER, stdin),
            events,
            stderr_tail,
            stderr_done,
            limits,
            sandbox: Sandbox::default(),
            exited: None,
        };
        worker.sandbox = worker.handshake()?;
        if !worker.sandbox.is_confined() {
            tracing::warn!(plugin = label, "the worker runs without a sandbox: {}", worker.sandbox);
        }
        Ok(worker)
    }

    /// The worker's `Hello`: the protocol must match; it says how the worker
    /// is sandboxed.
    fn handshake(&mut self) -> Result<Sandbox, WorkerError> {
        match self.events.recv_timeout(self.limits.timeout) {
            Ok(Ok(Event::Hello { protocol, version, sandbox }))
                if protocol == PROTOCOL && version == PROTOCOL_VERSION =>
            {
                Ok(sandbox)
            }
            Ok(Ok(Event::Hello { protocol, version, .. })) => Err(WorkerError::Handshake(format!(
                "worker speaks {protocol} v{version}, host speaks {PROTOCOL} v{PROTOCOL_VERSION}"
            ))),
            Ok(Ok(other)) => Err(WorkerError::Handshake(format!("expected hello, got {other:?}"))),
            Ok(Err(err)) => Err(WorkerError::Handshake(err.to_string())),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(self.timed_out(&named("handshake")))
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.died(&named("handshake"))),
        }
    }

    /// How the worker is sandboxed, as it said in its `Hello` (before any
    /// plugin code ran).
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// Loads the library; returns the ABI version it was built against.
    pub fn load(&mut self) -> Result<String, WorkerError> {
        match self.call(Request::Load, "load")? {
            Reply::Loaded { abi_version } => Ok(abi_version),
            other => Err(unexpected(other)),
        }
    }

    /// Asks the plugin to describe itself.
    pub fn describe(&mut self) -> Result<PluginInfo, WorkerError> {
        match self.call(Request::Describe, "describe")? {
            Reply::Info { info } => Ok(info),
            other => Err(unexpected(other)),
        }
    }

    /// Reads the plugin's kill-switch.
    pub fn execution_enabled(&mut self) -> Result<bool, WorkerError> {
        match self.call(Request::ExecutionEnabled, "execution_enabled")? {
            Reply::ExecutionEnabled { enabled } => Ok(enabled),
            other => Err(unexpected(other)),
        }
    }

    /// Starts a run.
    pub fn start_run(&mut self, mode: WireMode) -> Result<(), WorkerError> {
        match self.call(Request::StartRun { mode }, "start_run")? {
            Reply::RunStarted => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Sends `batch` (the run's batch number `index`) and the phases to
    /// run on it, in order, in one request; the outcomes come back one by
    /// one through the returned [`BatchRun`], so the host reads one phase's
    /// outcome while the plugin runs the next. The worker stops the batch at
    /// the first phase that does not end `ok` or that reports an error
    /// finding, as a live run would.
    pub fn run_batch(
        &mut self,
        batch: RecordBatch,
        index: u64,
        phases: &[String],
        mode: WireMode,
    ) -> Result<BatchRun<'_>, WorkerError> {
        let request = Request::RunBatch { batch, phases: phases.to_vec(), mode };
        self.send(&request, &format!("batch {index}"))?;
        Ok(BatchRun { worker: self, index, phases: phases.to_vec(), next: 0 })
    }

    /// Finishes the current run.
    pub fn finish_run(&mut self) -> Result<(), WorkerError> {
        match self.call(Request::FinishRun, "finish")? {
            Reply::RunFinished => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// The worker's peak resident memory so far, in KiB; `None` once it has
    /// exited.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        if self.exited.is_some() {
            return None;
        }
        crate::sys::max_rss_kib(Some(self.child.id()))
    }

    /// Asks the worker to exit and waits for it.
    pub fn shutdown(mut self) -> Result<(), WorkerError> {
        match self.call(Request::Shutdown, "shutdown")? {
            Reply::Bye => {
                // The worker exits right after `Bye`; its stdout closing is
                // the signal, so wait on the channel rather than polling.
                match self.events.recv_timeout(self.limits.timeout) {
                    Err(RecvTimeoutError::Disconnected) => self.exited = self.child.wait().ok(),
                    _ => self.kill(),
                }
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    fn call(&mut self, request: Request, call: &str) -> Result<Reply, WorkerError> {
        let call = named(call);
        self.send(&request, &call)?;
        self.wait(&call)
    }

    /// Sends `request`; `call` names what it is part of, for reports.
    fn send(&mut self, request: &Request, call: &str) -> Result<(), WorkerError> {
        if self.exited.is_some() {
            return Err(self.died(call));
        }
        if write_frame(&mut self.requests, request).is_err() {
            return Err(self.died(call));
        }
        Ok(())
    }

    /// The next reply, within the deadline, forwarding log lines meanwhile.
    fn wait(&mut self, call: &str) -> Result<Reply, WorkerError> {
        self.wait_serving(call, &mut NoQueries)
    }

    /// The next reply, within the deadline, forwarding log lines and
    /// answering the plugin's queries meanwhile. The time the host spends
    /// answering extends the deadline: a slow query is the database's time
    /// (bounded by its `statement_timeout`), not the plugin's.
    fn wait_serving(
        &mut self,
        call: &str,
        queries: &mut dyn QueryService,
    ) -> Result<Reply, WorkerError> {
        let mut deadline = Instant::now() + self.limits.timeout;
        loop {
            match self.events.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(Event::Log { level, message })) => self.forward_log(&level, &message),
                Ok(Ok(Event::Query { call: query })) => {
                    let answering = Instant::now();
                    let result = queries.answer(query);
                    deadline += answering.elapsed();
                    self.send(&Request::QueryAnswer { result }, call)?;
                }
                Ok(Ok(Event::Reply { result })) => return result.map_err(WorkerError::from),
                Ok(Ok(Event::Hello { .. })) => {
                    self.kill();
                    return Err(WorkerError::Protocol(
                        "unexpected hello in the middle of a call".into(),
                    ));
                }
                Ok(Err(err)) => {
                    self.kill();
                    return Err(WorkerError::Protocol(err.to_string()));
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.kill();
                    return Err(self.timed_out(call));
                }
                Err(RecvTimeoutError::Disconnected) => return Err(self.died(call)),
            }
        }
    }

    fn forward_log(&self, level: &str, message: &str) {
        let plugin = self.label.as_str();
        match level {
            "error" => tracing::error!(target: "sidecar::plugin", plugin, "{message}"),
            "warn" => tracing::warn!(target: "sidecar::plugin", plugin, "{message}"),
            "info" => tracing::info!(target: "sidecar::plugin", plugin, "{message}"),
            "debug" => tracing::debug!(target: "sidecar::plugin", plugin, "{message}"),
            _ => tracing::trace!(target: "sidecar::plugin", plugin, "{message}"),
        }
    }

    fn timed_out(&self, call: &str) -> WorkerError {
        WorkerError::Timeout {
            plugin: self.label.clone(),
            call: call.to_owned(),
            after: self.limits.timeout,
        }
    }

    /// The channel closed: collect how the process ended and what it said.
    /// An abort right after Rust's allocation failure message is the memory
    /// limit at work, and is reported as that.
    fn died(&mut self, call: &str) -> WorkerError {
        let status = self.wait_bounded(Duration::from_secs(2));
        // The stderr pipe closes when the process exits; wait briefly for the
        // drain thread so the tail is complete.
        let _ = self.stderr_done.recv_timeout(Duration::from_millis(500));
        let stderr: Vec<String> = self
            .stderr_tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let aborted = status.and_then(|s| s.signal()) == Some(libc::SIGABRT);
        if aborted && stderr.iter().any(|line| is_allocation_failure(line)) {
            return WorkerError::OutOfMemory {
                plugin: self.label.clone(),
                call: call.to_owned(),
                limit: self.limits.memory,
            };
        }
        WorkerError::Died {
            plugin: self.label.clone(),
            call: call.to_owned(),
            status: describe_exit(status),
            stderr,
        }
    }

    fn wait_bounded(&mut self, limit: Duration) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return self.exited;
        }
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.exited = Some(status);
                    return self.exited;
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(_) => break,
            }
        }
        self.kill();
        self.exited
    }

    fn kill(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The outcomes of a [`Worker::run_batch`] request, as they arrive.
#[derive(Debug)]
pub struct BatchRun<'w> {
    worker: &'w mut Worker,
    /// The batch's number in the run.
    index: u64,
    /// The phases requested, in order.
    phases: Vec<String>,
    /// The phase whose outcome comes next.
    next: usize,
}

/// One phase's outcome and how long the plugin took on it.
#[derive(Debug)]
pub struct PhaseReply {
    /// The outcome.
    pub outcome: PhaseOutcome,
    /// The plugin's time on the phase, measured in the worker.
    pub elapsed: Duration,
}

impl BatchRun<'_> {
    /// The outcome of the next phase, within the call deadline; `queries`
    /// answers the queries the plugin makes meanwhile.
    pub fn next_phase(
        &mut self,
        queries: &mut dyn QueryService,
    ) -> Result<PhaseReply, WorkerError> {
        let call = match self.phases.get(self.next) {
            Some(phase) => format!("phase `{phase}` on batch {}", self.index),
            None => format!("batch {}", self.index),
        };
        self.next += 1;
        match self.worker.wait_serving(&call, queries)? {
            Reply::PhaseOutcome { outcome, micros } => {
                Ok(PhaseReply { outcome, elapsed: Duration::from_micros(micros) })
            }
            other => Err(unexpected(other)),
        }
    }

    /// The end of the batch, after the last outcome the host read.
    pub fn done(self) -> Result<(), WorkerError> {
        match self.worker.wait(&format!("batch {}", self.index))? {
            Reply::BatchDone => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(reply: Reply) -> WorkerError {
    WorkerError::Protocol(format!("unexpected reply {reply:?}"))
}

fn describe_exit(status: Option<ExitStatus>) -> String {
    match status {
        None => "did not exit; killed".to_owned(),
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("killed by {}", sys::signal_name(signal)),
            (None, None) => status.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_rusts_allocation_failure_reads_as_out_of_memory() {
        assert!(is_allocation_failure("memory allocation of 16777216 bytes failed"));
        assert!(!is_allocation_failure("memory allocation of  bytes failed"));
        assert!(!is_allocation_failure("memory allocation of 12 bytes failed, retrying"));
        assert!(!is_allocation_failure("thread 'main' panicked at src/lib.rs:1:1"));
    }

    #[test]
    fn worker_memory_takes_a_size_and_refuses_one_too_small_to_start() {
        assert_eq!(parse_worker_memory("256M"), Ok(256 << 20));
        assert_eq!(parse_worker_memory(DEFAULT_WORKER_MEMORY), Ok(1 << 30));
        assert_eq!(
            parse_worker_memory("1M"),
            Err("1 MiB is below the minimum of 32 MiB: a worker needs about 16 MiB to start \
                 and load a plugin"
                .to_owned())
        );
        assert!(parse_worker_memory("lots").is_err());
    }

    #[test]
    fn sizes_are_shown_in_the_largest_exact_unit() {
        assert_eq!(format_size(256 << 20), "256 MiB");
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(1536 << 10), "1536 KiB");
        assert_eq!(format_size(1000), "1000 bytes");
    }

    #[test]
    fn a_worker_error_names_the_plugin_and_the_call_in_one_line() {
        let oom = WorkerError::OutOfMemory {
            plugin: "test-plugin 1.0".into(),
            call: "phase `record` on batch 0".into(),
            limit: 256 << 20,
        };
        assert_eq!(
            oom.to_string(),
            "plugin test-plugin 1.0: worker ran out of memory during phase `record` on batch 0 \
             (limit 256 MiB; --worker-memory)"
        );
        let timeout = WorkerError::Timeout {
            plugin: "test-plugin 1.0".into(),
            call: "phase `record` on batch 0".into(),
            after: Duration::from_secs(1),
        };
        assert_eq!(
            timeout.to_string(),
            "plugin test-plugin 1.0: phase `record` on batch 0 did not answer within 1s; worker killed"
        );
    }
}
