//! A run's answers to its plugin's queries, and `queries.jsonl`, the log of
//! every statement a plugin sent.
//!
//! The worker forwards each call of the plugin's host context; this service
//! answers it from the run's [`QuerySession`] (a database source), opened
//! on the first query so that a plugin that never queries costs nothing, or
//! refuses it (any other source: there is no database to ask). Every
//! statement gets one line in the log when it ends: its text and
//! parameters, the phase and batch that sent it, whether it was refused,
//! failed or ran, its SQLSTATE, rows and time. An error that ends the run
//! (a timeout, a terminated backend, a write the gate let through) is kept
//! for the dry run to stop on once the phase's outcome is in.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::pg::query::{QueryError, QuerySession};
use crate::source::QueryOpener;
use crate::worker::protocol::{QueryAnswer, QueryCall, QueryFailure};
use crate::worker::QueryService;

/// The log's file name in the run folder.
pub const QUERY_LOG: &str = "queries.jsonl";

/// One line of `queries.jsonl`.
#[derive(Debug, Serialize)]
struct Entry<'a> {
    seq: u64,
    phase: &'a str,
    batch: u64,
    sql: &'a str,
    params: &'a [String],
    /// `ok`, `refused` (the host), `failed` (the server).
    outcome: &'static str,
    sqlstate: Option<&'a str>,
    error: Option<String>,
    rows: u64,
    micros: u64,
}

/// The totals `summary.json` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueryTotals {
    /// Statements the plugin sent.
    pub statements: u64,
    /// Refused by the host before the server saw them.
    pub refused: u64,
    /// Rejected by the server.
    pub failed: u64,
    /// Rows returned to the plugin.
    pub rows: u64,
}

struct Open {
    seq: u64,
    sql: String,
    params: Vec<String>,
    phase: String,
    batch: u64,
    rows: u64,
    busy: Duration,
}

/// Where a run's queries go.
enum Backend<'a> {
    /// No database: every query is refused with this reason.
    Absent(String),
    /// A database, not connected until the first query.
    Unopened(QueryOpener<'a>),
    /// The session (boxed: it is large, and there is one per run).
    Open(Box<QuerySession>),
    /// Opening the session failed (the run fails with the reason).
    Broken(String),
}

/// The query service of one run.
pub struct RunQueries<'a> {
    backend: Backend<'a>,
    log: BufWriter<File>,
    phase: String,
    batch: u64,
    next_seq: u64,
    open: BTreeMap<u64, Open>,
    totals: QueryTotals,
    fatal: Option<String>,
}

impl<'a> RunQueries<'a> {
    /// A service answering from the session `database` opens, or refusing
    /// every query with its reason when the source is not a database; logs
    /// to `run_dir/queries.jsonl`.
    pub fn new(run_dir: &Path, database: Result<QueryOpener<'a>, String>) -> io::Result<Self> {
        let log = File::create(run_dir.join(QUERY_LOG))?;
        Ok(Self {
            backend: match database {
                Ok(opener) => Backend::Unopened(opener),
                Err(why) => Backend::Absent(why),
            },
            log: BufWriter::new(log),
            phase: String::new(),
            batch: 0,
            next_seq: 1,
            open: BTreeMap::new(),
            totals: QueryTotals::default(),
            fatal: None,
        })
    }

    /// The phase and batch the next queries belong to.
    pub fn at(&mut self, phase: &str, batch: u64) {
        phase.clone_into(&mut self.phase);
        self.batch = batch;
    }

    /// Ends the phase: closes the queries the plugin left open and checks
    /// the session's read-only state (layer 3). `Err` ends the run, as does
    /// an error kept by [`Self::fatal`].
    pub fn end_phase(&mut self) -> Result<(), String> {
        let Backend::Open(session) = &mut self.backend else { return self.flush_and_judge() };
        let closed = session.close_all();
        let checked = session.check();
        match closed {
            Ok(ids) => {
                for id in ids {
                    if let Some(open) = self.open.remove(&id) {
                        self.log_end(&open, "ok", None);
                    }
                }
            }
            Err(err) => self.keep_fatal(&err),
        }
        if let Err(reason) = checked {
            self.fatal.get_or_insert(reason);
        }
        self.flush_and_judge()
    }

    fn flush_and_judge(&mut self) -> Result<(), String> {
        self.log.flush().map_err(|e| format!("{QUERY_LOG}: {e}"))?;
        match &self.fatal {
            Some(reason) => Err(reason.clone()),
            None => Ok(()),
        }
    }

    /// The error that ends the run, if a query met one.
    pub fn fatal(&self) -> Option<&str> {
        self.fatal.as_deref()
    }

    /// What the plugin asked, in total.
    pub fn totals(&self) -> &QueryTotals {
        &self.totals
    }

    /// Rolls the session back and closes the log.
    pub fn finish(mut self) -> io::Result<QueryTotals> {
        if let Backend::Open(session) =
            std::mem::replace(&mut self.backend, Backend::Absent(String::new()))
        {
            (*session).finish();
        }
        self.log.flush()?;
        Ok(self.totals)
    }

    fn keep_fatal(&mut self, err: &QueryError) {
        if err.ends_the_run() && self.fatal.is_none() {
            let what = match err.sqlstate() {
                Some("57014") => "a plugin query was cancelled (statement timeout)",
                Some("55P03") => "a plugin query timed out waiting for a lock",
                Some("25006") => "the server refused a write the statement gate let through",
                Some(code) if code.starts_with("57P") || code.starts_with("08") => {
                    "the query session's connection was lost"
                }
                None => "the query session's connection was lost",
                Some(_) => "a plugin query met a server error that ends the run",
            };
            self.fatal = Some(format!("{what}: {err}"));
        }
    }

    fn log_end(&mut self, open: &Open, outcome: &'static str, error: Option<&QueryError>) {
        match outcome {
            "refused" => self.totals.refused += 1,
            "failed" => self.totals.failed += 1,
            _ => {}
        }
        self.totals.rows += open.rows;
        let entry = Entry {
            seq: open.seq,
            phase: &open.phase,
            batch: open.batch,
            sql: &open.sql,
            params: &open.params,
            outcome,
            sqlstate: error.and_then(QueryError::sqlstate),
            error: error.map(ToString::to_string),
            rows: open.rows,
            micros: u64::try_from(open.busy.as_micros()).unwrap_or(u64::MAX),
        };
        // The log is evidence, not control: a line that cannot be written
        // is reported when the phase ends and the log is flushed.
        if let Ok(line) = serde_json::to_string(&entry) {
            let _ = writeln!(self.log, "{line}");
        }
    }

    /// A cursor failed with `err`: logs it and every other query the
    /// session no longer holds (a savepoint's rollback also ends the
    /// queries opened after it).
    fn failed(&mut self, err: &QueryError) {
        self.keep_fatal(err);
        let Backend::Open(session) = &self.backend else { return };
        let ended: Vec<u64> =
            self.open.keys().copied().filter(|id| !session.is_open(*id)).collect();
        for id in ended {
            if let Some(open) = self.open.remove(&id) {
                self.log_end(&open, "failed", Some(err));
            }
        }
    }

    /// The session, opened on first use.
    fn session(&mut self) -> Result<&mut QuerySession, QueryError> {
        if let Backend::Unopened(_) = self.backend {
            let Backend::Unopened(open) =
                std::mem::replace(&mut self.backend, Backend::Broken(String::new()))
            else {
                unreachable!("matched above")
            };
            self.backend = match open() {
                Ok(session) => Backend::Open(Box::new(session)),
                Err(reason) => {
                    self.fatal.get_or_insert_with(|| reason.clone());
                    Backend::Broken(reason)
                }
            };
        }
        match &mut self.backend {
            Backend::Open(session) => Ok(session),
            Backend::Absent(why) | Backend::Broken(why) => Err(QueryError::Invalid(why.clone())),
            Backend::Unopened(_) => unreachable!("opened above"),
        }
    }

    fn open_query(
        &mut self,
        sql: String,
        params: Vec<String>,
    ) -> Result<QueryAnswer, QueryFailure> {
        self.totals.statements += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut open = Open {
            seq,
            sql,
            params,
            phase: self.phase.clone(),
            batch: self.batch,
            rows: 0,
            busy: Duration::ZERO,
        };
        let started = Instant::now();
        let result =
            self.session().and_then(|session| session.open_cursor(&open.sql, &open.params));
        open.busy = started.elapsed();
        match result {
            Ok((cursor, columns)) => {
                self.open.insert(cursor, open);
                Ok(QueryAnswer::Opened { cursor, columns })
            }
            Err(err) => {
                let refused = matches!(err, QueryError::Refused(_) | QueryError::Invalid(_));
                self.keep_fatal(&err);
                self.log_end(&open, if refused { "refused" } else { "failed" }, Some(&err));
                Err(QueryFailure { refused, message: err.to_string() })
            }
        }
    }
}

impl QueryService for RunQueries<'_> {
    fn answer(&mut self, call: QueryCall) -> Result<QueryAnswer, QueryFailure> {
        let unknown = |cursor: u64| QueryFailure {
            refused: true,
            message: format!("no open query {cursor}"),
        };
        match call {
            QueryCall::Open { sql, params } => self.open_query(sql, params),
            QueryCall::Next { cursor, max_rows } => {
                let (Backend::Open(session), true) =
                    (&mut self.backend, self.open.contains_key(&cursor))
                else {
                    return Err(unknown(cursor));
                };
                let started = Instant::now();
                let result = session.fetch(cursor, max_rows);
                if let Some(open) = self.open.get_mut(&cursor) {
                    open.busy += started.elapsed();
                    open.rows += result.as_ref().map_or(0, |rows| rows.len() as u64);
                }
                match result {
                    Ok(rows) => Ok(QueryAnswer::Rows { rows }),
                    Err(err) => {
                        self.failed(&err);
                        Err(QueryFailure { refused: false, message: err.to_string() })
                    }
                }
            }
            QueryCall::Close { cursor } => {
                let (Backend::Open(session), Some(open)) =
                    (&mut self.backend, self.open.remove(&cursor))
                else {
                    return Err(unknown(cursor));
                };
                match session.close(cursor) {
                    Ok(()) => {
                        self.log_end(&open, "ok", None);
                        Ok(QueryAnswer::Closed)
                    }
                    Err(err) => {
                        self.keep_fatal(&err);
                        self.log_end(&open, "failed", Some(&err));
                        Err(QueryFailure { refused: false, message: err.to_string() })
                    }
                }
            }
        }
    }
}
