//! The host's handle on one worker process.
//!
//! Every call has a deadline. A reader thread turns the worker's frames into
//! a channel so the host can wait with a timeout; a second thread drains the
//! worker's stderr into the debug log and keeps its last lines for the
//! report when the worker dies. A worker that crashes, hangs or speaks
//! garbage is killed and reported; the host carries on.

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
use crate::plugin::{PhaseOutcome, PluginInfo};
use crate::source::record::RecordBatch;
use crate::sys::{self, SealedLibrary};

/// The pipe buffer asked for each direction of the worker channel.
const PIPE_BYTES: usize = 1 << 20;

/// How many of the worker's last stderr lines a crash report keeps.
const STDERR_TAIL: usize = 20;

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
    #[error("worker died during `{call}`: {status}{}", last_line(.stderr))]
    Died {
        /// The call in progress.
        call: &'static str,
        /// How it ended, e.g. `killed by SIGSEGV`.
        status: String,
        /// Its last stderr lines.
        stderr: Vec<String>,
    },
    /// The call did not answer in time; the worker was killed.
    #[error("`{call}` did not answer within {}s; worker killed", .after.as_secs_f64())]
    Timeout {
        /// The call in progress.
        call: &'static str,
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

fn last_line(stderr: &[String]) -> String {
    stderr.last().map(|line| format!(" (last output: {line})")).unwrap_or_default()
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
    timeout: Duration,
    exited: Option<ExitStatus>,
}

impl Worker {
    /// Starts a worker for `library` and completes the handshake. `label`
    /// names the plugin in logs and reports.
    pub fn spawn(
        library: &SealedLibrary,
        label: &str,
        timeout: Duration,
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
            timeout,
            exited: None,
        };
        worker.handshake()?;
        Ok(worker)
    }

    fn handshake(&mut self) -> Result<(), WorkerError> {
        match self.events.recv_timeout(self.timeout) {
            Ok(Ok(Event::Hello { protocol, version }))
                if protocol == PROTOCOL && version == PROTOCOL_VERSION =>
            {
                Ok(())
            }
            Ok(Ok(Event::Hello { protocol, version })) => Err(WorkerError::Handshake(format!(
                "worker speaks {protocol} v{version}, host speaks {PROTOCOL} v{PROTOCOL_VERSION}"
            ))),
            Ok(Ok(other)) => Err(WorkerError::Handshake(format!("expected hello, got {other:?}"))),
            Ok(Err(err)) => Err(WorkerError::Handshake(err.to_string())),
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(WorkerError::Timeout { call: "handshake", after: self.timeout })
            }
            Err(RecvTimeoutError::Disconnected) => Err(self.died("handshake")),
        }
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

    /// Sends `batch` and the phases to run on it, in order, in one request;
    /// the outcomes come back one by one through the returned [`BatchRun`],
    /// so the host reads one phase's outcome while the plugin runs the next.
    /// The worker stops the batch at the first phase that does not end `ok`
    /// or that reports an error finding, as a live run would.
    pub fn run_batch(
        &mut self,
        batch: RecordBatch,
        phases: &[String],
        mode: WireMode,
    ) -> Result<BatchRun<'_>, WorkerError> {
        self.send(&Request::RunBatch { batch, phases: phases.to_vec(), mode }, "run_batch")?;
        Ok(BatchRun { worker: self })
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
                match self.events.recv_timeout(self.timeout) {
                    Err(RecvTimeoutError::Disconnected) => self.exited = self.child.wait().ok(),
                    _ => self.kill(),
                }
                Ok(())
            }
            other => Err(unexpected(other)),
        }
    }

    fn call(&mut self, request: Request, call: &'static str) -> Result<Reply, WorkerError> {
        self.send(&request, call)?;
        self.wait(call)
    }

    fn send(&mut self, request: &Request, call: &'static str) -> Result<(), WorkerError> {
        if self.exited.is_some() {
            return Err(self.died(call));
        }
        if write_frame(&mut self.requests, request).is_err() {
            return Err(self.died(call));
        }
        Ok(())
    }

    /// The next reply, within the deadline, forwarding log lines meanwhile.
    fn wait(&mut self, call: &'static str) -> Result<Reply, WorkerError> {
        self.wait_serving(call, &mut NoQueries)
    }

    /// The next reply, within the deadline, forwarding log lines and
    /// answering the plugin's queries meanwhile. The time the host spends
    /// answering extends the deadline: a slow query is the database's time
    /// (bounded by its `statement_timeout`), not the plugin's.
    fn wait_serving(
        &mut self,
        call: &'static str,
        queries: &mut dyn QueryService,
    ) -> Result<Reply, WorkerError> {
        let mut deadline = Instant::now() + self.timeout;
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
                    return Err(WorkerError::Timeout { call, after: self.timeout });
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

    /// The channel closed: collect how the process ended and what it said.
    fn died(&mut self, call: &'static str) -> WorkerError {
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
        WorkerError::Died { call, status: describe_exit(status), stderr }
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
        match self.worker.wait_serving("run_phase", queries)? {
            Reply::PhaseOutcome { outcome, micros } => {
                Ok(PhaseReply { outcome, elapsed: Duration::from_micros(micros) })
            }
            other => Err(unexpected(other)),
        }
    }

    /// The end of the batch, after the last outcome the host read.
    pub fn done(self) -> Result<(), WorkerError> {
        match self.worker.wait("run_batch")? {
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
