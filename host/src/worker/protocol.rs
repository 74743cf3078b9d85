//! The messages between the host and a worker, and their framing.
//!
//! Both ends are this binary, so the protocol is private and free to change
//! with the host; only the plugin ABI is a cross-version contract. Still, the
//! worker opens with a `Hello` naming the protocol and its version (the
//! Nushell and go-plugin pattern), so stray output or a mismatched binary is
//! caught before anything else is exchanged. The `Hello` also says how the
//! worker is sandboxed, which it knows only once it has confined itself.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of
//! `postcard` (a compact serde encoding: strings are a length and their
//! bytes). Batches and plans carry every document body and unit twice over;
//! JSON's escaping and parsing of those bodies was most of a run's overhead.
//! This module does no I/O of its own beyond reading and writing frames.

use std::io::{self, Read, Write};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::sandbox::Sandbox;
use crate::plugin::{PhaseOutcome, PluginInfo};
use crate::source::record::RecordBatch;

/// The protocol's name, sent in `Hello`.
pub const PROTOCOL: &str = "sidecar-worker";
/// The protocol's version, sent in `Hello`.
pub const PROTOCOL_VERSION: u32 = 4;

/// The buffer each side reads and writes frames through: a plan's many
/// small strings go to the pipe in large writes.
pub const FRAME_BUFFER: usize = 256 << 10;

/// The largest frame either side accepts; a longer length is corruption.
const MAX_FRAME: u32 = 1 << 30;

/// The mode of a call, as the protocol carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireMode {
    /// `Mode::DryRun`.
    DryRun,
    /// `Mode::Live`: only ever sent by the refusal probe.
    Live,
}

/// What the host asks of a worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Load the library at the inherited descriptor and check its ABI.
    Load,
    /// Call `describe`.
    Describe,
    /// Call `execution_enabled`.
    ExecutionEnabled,
    /// Call `start_run`.
    StartRun {
        /// The mode to start in.
        mode: WireMode,
    },
    /// Call `run_phase` on the current run for each phase in order, all on
    /// `batch`: one `PhaseOutcome` (or error) reply per phase, up to and
    /// including the first that is not `ok` or has an error finding, then
    /// `BatchDone`.
    RunBatch {
        /// The records every phase receives.
        batch: RecordBatch,
        /// The phase names, in order.
        phases: Vec<String>,
        /// The mode.
        mode: WireMode,
    },
    /// The answer to the worker's last [`Event::Query`]; sent only while a
    /// `RunBatch` is in progress, and only in reply to one.
    QueryAnswer {
        /// What the host's query service answered.
        result: Result<QueryAnswer, QueryFailure>,
    },
    /// Call `finish` on the current run and drop it.
    FinishRun,
    /// Exit cleanly.
    Shutdown,
}

/// What a worker sends back.
///
/// `O` is how a phase outcome is carried: the host decodes
/// [`PhaseOutcome`]; the worker encodes [`WireOutcome`], which borrows the
/// plugin's strings instead of copying them and encodes to the same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event<O = PhaseOutcome> {
    /// The first message of every worker, sent once it has confined
    /// itself and before it loads anything.
    Hello {
        /// Always [`PROTOCOL`].
        protocol: String,
        /// The worker's [`PROTOCOL_VERSION`].
        version: u32,
        /// How the worker is sandboxed.
        sandbox: Sandbox,
    },
    /// A log line from the plugin, forwarded while a call is in progress.
    Log {
        /// The level name (`trace` … `error`).
        level: String,
        /// The line.
        message: String,
    },
    /// A plugin's call to a query method of its host context, made while
    /// a phase runs; the worker waits for [`Request::QueryAnswer`].
    Query {
        /// The call.
        call: QueryCall,
    },
    /// The answer to the last request.
    Reply {
        /// Success or the reason for failure.
        result: Result<Reply<O>, WireError>,
    },
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply<O = PhaseOutcome> {
    /// The library loaded and its ABI checked out.
    Loaded {
        /// The interface version the plugin was built against.
        abi_version: String,
    },
    /// The plugin's self-description.
    Info {
        /// The description.
        info: PluginInfo,
    },
    /// The kill-switch state.
    ExecutionEnabled {
        /// `true` means the plugin would run live.
        enabled: bool,
    },
    /// A run started.
    RunStarted,
    /// A phase of a `RunBatch` ended.
    PhaseOutcome {
        /// The outcome.
        outcome: O,
        /// The plugin's time on it, in microseconds.
        micros: u64,
    },
    /// A `RunBatch` is over: every phase ran, or one stopped it.
    BatchDone,
    /// The run finished.
    RunFinished,
    /// The worker is exiting.
    Bye,
}

/// A plugin's query call, as the worker forwards it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryCall {
    /// `Host::query_open`.
    Open {
        /// The statement, as the plugin wrote it.
        sql: String,
        /// Text parameters for `$1`, `$2`, ….
        params: Vec<String>,
    },
    /// `Host::query_next`.
    Next {
        /// The cursor.
        cursor: u64,
        /// At most this many rows.
        max_rows: u32,
    },
    /// `Host::query_close`.
    Close {
        /// The cursor.
        cursor: u64,
    },
}

/// What the host answers a [`QueryCall`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryAnswer {
    /// The query is open.
    Opened {
        /// Its cursor.
        cursor: u64,
        /// Its columns: name and type name.
        columns: Vec<(String, String)>,
    },
    /// The next rows; empty at the end.
    Rows {
        /// Text values, `None` for NULL.
        rows: Vec<Vec<Option<String>>>,
    },
    /// The query is closed.
    Closed,
}

/// Why the host did not answer a [`QueryCall`] with rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryFailure {
    /// `true`: the host refused it before the server saw it.
    pub refused: bool,
    /// One line for the plugin.
    pub message: String,
}

/// A failed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WireError {
    /// The plugin returned an error.
    Plugin {
        /// The stable error code.
        code: u32,
        /// The code's name, when the worker's ABI knows it.
        kind: Option<String>,
        /// The plugin's message.
        message: String,
    },
    /// The library could not be loaded or its ABI does not match.
    Load {
        /// One line for the report.
        summary: String,
        /// The full text, for debug logs.
        detail: String,
    },
    /// The request made no sense in the worker's state.
    Protocol {
        /// What was wrong.
        message: String,
    },
}

/// Writes one frame, encoding straight into `out`: a batch or a plan is
/// never copied into a buffer of its own first.
pub fn write_frame<T: Serialize>(out: &mut impl Write, message: &T) -> io::Result<()> {
    let size = postcard::experimental::serialized_size(message).map_err(io::Error::other)?;
    let len = u32::try_from(size)
        .ok()
        .filter(|len| *len <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))?;
    out.write_all(&len.to_le_bytes())?;
    postcard::to_io(message, &mut *out).map_err(io::Error::other)?;
    out.flush()
}

/// Reads one frame; `None` at a clean end of stream.
pub fn read_frame<T: DeserializeOwned>(input: &mut impl Read) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    match input.read_exact(&mut len) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("frame of {len} bytes")));
    }
    let mut body = Vec::with_capacity(len as usize);
    input.take(u64::from(len)).read_to_end(&mut body)?;
    if body.len() != len as usize {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    postcard::from_bytes(&body)
        .map(Some)
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::StartRun { mode: WireMode::DryRun }).expect("write");
        write_frame(&mut buf, &Request::Shutdown).expect("write");
        let mut input = &buf[..];
        assert_eq!(
            read_frame::<Request>(&mut input).expect("read"),
            Some(Request::StartRun { mode: WireMode::DryRun })
        );
        assert_eq!(read_frame::<Request>(&mut input).expect("read"), Some(Request::Shutdown));
        assert_eq!(read_frame::<Request>(&mut input).expect("read"), None);
    }

    #[test]
    fn the_worker_encodes_a_plugin_outcome_as_the_host_decodes_it() {
        use crate::plugin::{Finding, PlanOp, WireOutcome};
        use sidecar_abi as abi;

        let mut plugin = abi::PhaseOutcome::ok().with_count("units", 2);
        plugin.status = abi::PhaseStatus(77);
        plugin.findings.push(abi::Finding {
            severity: abi::Severity::WARNING,
            code: "stale-version".into(),
            subject: "kb/a.md".into(),
            message: "ignored".into(),
        });
        plugin.plan.push(abi::PlanOp {
            action: abi::PlanAction::INSERT,
            table: "information_unit".into(),
            key: "7:0".into(),
            after_image: r#"{"body":"é\n"}"#.into(),
        });
        plugin.note = "a note".into();
        let mut frame = Vec::new();
        let sent: Event<WireOutcome> = Event::Reply {
            result: Ok(Reply::PhaseOutcome { outcome: WireOutcome(plugin), micros: 5 }),
        };
        write_frame(&mut frame, &sent).expect("write");

        let expected = PhaseOutcome {
            status: "unknown PhaseStatus 77".into(),
            counts: vec![("units".into(), 2)],
            findings: vec![Finding {
                severity: "warning".into(),
                code: "stale-version".into(),
                subject: "kb/a.md".into(),
                message: "ignored".into(),
            }],
            plan: vec![PlanOp {
                action: "insert".into(),
                table: "information_unit".into(),
                key: "7:0".into(),
                after_image: r#"{"body":"é\n"}"#.into(),
            }],
            note: "a note".into(),
        };
        assert_eq!(
            read_frame::<Event>(&mut &frame[..]).expect("read"),
            Some(Event::Reply { result: Ok(Reply::PhaseOutcome { outcome: expected, micros: 5 }) })
        );
    }

    #[test]
    fn a_truncated_frame_is_an_error() {
        let mut frame = Vec::new();
        write_frame(&mut frame, &Request::Shutdown).expect("write");
        frame[0] += 1;
        let err = read_frame::<Request>(&mut &frame[..]).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn a_corrupt_length_is_refused_before_allocating() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let err = read_frame::<Request>(&mut input).expect_err("corrupt");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
