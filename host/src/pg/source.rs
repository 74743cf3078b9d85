//! `--source postgres`: the knowledge base's tables, read in one read-only
//! snapshot.
//!
//! The layers, in the order a run meets them:
//! 1. the session starts with `default_transaction_read_only=on` and the
//!    timeouts ([`super::target::SessionSettings`]);
//! 2. the preflight ([`PREFLIGHT`]) lists every way the role could write;
//!    any reason refuses the run before a row is read;
//! 3. one `REPEATABLE READ, READ ONLY` transaction whose first statement
//!    takes (and exports) the snapshot, so it can no longer be switched to
//!    read-write; it is rolled back, never committed;
//! 4. after every phase, [`Source::after_phase`] checks that no transaction
//!    id was assigned and that the transaction is still read-only.
//!
//! Rows stream through a server-side cursor over the documents, a batch at a
//! time; the versions and active units of a batch's documents are read with
//! two queries per batch, so memory is bounded by the batch size.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::{Client, NoTls};
use serde::{Deserialize, Serialize};

use super::query::QuerySession;
use super::target::Target;
use crate::source::record::{InformationUnit, RecordBatch, SourceDocument, SourceVersion};
use crate::source::{
    sha256_hex, Batches, NotReady, QueryOpener, Source, SourceError, SourceIdentity,
};

/// The preflight query: one row per reason the role could write.
pub const PREFLIGHT: &str = include_str!("../../sql/preflight.sql");

/// The tables' schema, for loaders and tests.
pub const SCHEMA: &str = include_str!("../../sql/schema.sql");

/// The data state a run read, recorded in `run.json` and `summary.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseState {
    /// `server_version`.
    pub server_version: String,
    /// `pg_is_in_recovery()`: a hot standby cannot write at all.
    pub in_recovery: bool,
    /// The exported snapshot id (valid while the run's transaction lasts).
    pub snapshot_id: String,
    /// `pg_current_snapshot()`: names the data state.
    pub snapshot: String,
    /// The role the run read as.
    pub role: String,
}

/// The PostgreSQL source.
pub struct PgSource {
    target: Target,
    connect_timeout: Duration,
    session: Mutex<Option<Session>>,
}

struct Session {
    client: Client,
    state: DatabaseState,
}

/// A statement of the host's own failed.
fn query_error(what: &str, err: &postgres::Error) -> String {
    let code = err.code().map(|c| format!(" (SQLSTATE {})", c.code())).unwrap_or_default();
    let detail = err.as_db_error().map_or_else(|| err.to_string(), |db| db.message().to_owned());
    format!("{what}: {detail}{code}")
}

impl PgSource {
    /// A source for `target`; nothing is connected until a run prepares it.
    pub fn new(target: Target, connect_timeout: Duration) -> Self {
        Self { target, connect_timeout, session: Mutex::new(None) }
    }

    fn session(&self) -> MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the next batch of documents through the cursor.
    fn next_batch(&self, max_documents: usize) -> Result<Option<RecordBatch>, SourceError> {
        let mut session = self.session();
        let Some(session) = session.as_mut() else {
            return Err(self.failed("the source was not prepared".into()));
        };
        let client = &mut session.client;
        let fetch = format!("FETCH FORWARD {max_documents} FROM sidecar_documents");
        let rows =
            client.query(&fetch, &[]).map_err(|e| self.failed(query_error("documents", &e)))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let documents: Vec<SourceDocument> = rows
            .iter()
            .map(|row| SourceDocument {
                id: row.get(0),
                kb_path: row.get(1),
                title: row.get(2),
                status: row.get(3),
                updated_at: row.get(4),
            })
            .collect();
        let ids: Vec<i64> = documents.iter().map(|d| d.id).collect();
        let versions = client
            .query(
                "SELECT DISTINCT ON (document_id) id, document_id, revision, body, body_sha256, \
                 to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                 FROM source_version WHERE document_id = ANY($1) \
                 ORDER BY document_id, revision DESC, id DESC",
                &[&ids],
            )
            .map_err(|e| self.failed(query_error("versions", &e)))?
            .iter()
            .map(|row| SourceVersion {
                id: row.get(0),
                document_id: row.get(1),
                revision: row.get(2),
                body: row.get(3),
                body_sha256: row.get(4),
                created_at: row.get(5),
            })
            .collect();
        let units = client
            .query(
                "SELECT id, document_id, version_id, ordinal, heading, anchor, body, body_sha256, \
                 lifecycle FROM information_unit \
                 WHERE document_id = ANY($1) AND lifecycle = 'active' ORDER BY document_id, id",
                &[&ids],
            )
            .map_err(|e| self.failed(query_error("units", &e)))?
            .iter()
            .map(|row| InformationUnit {
                id: row.get(0),
                document_id: row.get(1),
                version_id: row.get(2),
                ordinal: row.get(3),
                heading: row.get(4),
                anchor: row.get(5),
                body: row.get(6),
                body_sha256: row.get(7),
                lifecycle: row.get(8),
            })
            .collect();
        Ok(Some(RecordBatch { documents, versions, units }))
    }

    fn failed(&self, reason: String) -> SourceError {
        SourceError::Database { target: self.target.describe(), reason }
    }
}

impl Source for PgSource {
    fn describe(&self) -> SourceIdentity {
        let location = self.target.describe();
        let state = self.session().as_ref().map(|s| s.state.clone());
        // The same database, read as the same role at the same snapshot, is
        // the same data, wherever the settings came from.
        let address = self.target.address();
        let named = match &state {
            Some(state) => format!("postgres\0{address}\0{}", state.snapshot),
            None => format!("postgres\0{address}"),
        };
        SourceIdentity {
            kind: "postgres".into(),
            location,
            digest: sha256_hex(named.as_bytes()),
            documents: None,
            database: state,
        }
    }

    fn prepare(&self, run_id: &str) -> Result<(), NotReady> {
        let failed =
            |reason: String| NotReady::Failed(format!("{}: {reason}", self.target.describe()));
        let application_name = super::application_name(run_id);
        let mut client = self
            .target
            .config(&application_name, self.connect_timeout)
            .connect(NoTls)
            .map_err(|e| failed(format!("cannot connect: {}", query_error("connect", &e))))?;
        let reasons: Vec<String> = client
            .query(PREFLIGHT, &[])
            .map_err(|e| failed(query_error("preflight", &e)))?
            .iter()
            .map(|row| row.get(0))
            .collect();
        if !reasons.is_empty() {
            return Err(NotReady::Refused(format!(
                "role `{}` could write or act on the server: {}",
                self.target.user,
                reasons.join("; ")
            )));
        }
        client
            .batch_execute("START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .map_err(|e| failed(query_error("start transaction", &e)))?;
        // The first statement takes the snapshot: from here on the
        // transaction cannot be made read-write.
        let row = client
            .query_one(
                "SELECT pg_export_snapshot(), pg_current_snapshot()::text, pg_is_in_recovery(), \
                 current_setting('server_version'), current_user::text, \
                 current_setting('transaction_read_only')",
                &[],
            )
            .map_err(|e| failed(query_error("snapshot", &e)))?;
        if row.get::<_, String>(5) != "on" {
            return Err(failed("the transaction is not read-only".into()));
        }
        let state = DatabaseState {
            snapshot_id: row.get(0),
            snapshot: row.get(1),
            in_recovery: row.get(2),
            server_version: row.get(3),
            role: row.get(4),
        };
        client
            .batch_execute(
                "DECLARE sidecar_documents NO SCROLL CURSOR FOR \
                 SELECT id, kb_path, title, status, \
                 to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                 FROM source_document ORDER BY id",
            )
            .map_err(|e| failed(query_error("documents cursor", &e)))?;
        *self.session() = Some(Session { client, state });
        Ok(())
    }

    fn batches(&self, max_documents: usize) -> Batches<'_> {
        let max_documents = max_documents.max(1);
        let mut done = false;
        Box::new(std::iter::from_fn(move || {
            if done {
                return None;
            }
            let next = self.next_batch(max_documents).transpose();
            done = !matches!(next, Some(Ok(_)));
            next
        }))
    }

    fn after_phase(&self) -> Result<(), SourceError> {
        let mut session = self.session();
        let Some(session) = session.as_mut() else { return Ok(()) };
        let row = session
            .client
            .query_one(
                "SELECT pg_current_xact_id_if_assigned()::text, \
                 current_setting('transaction_read_only')",
                &[],
            )
            .map_err(|e| self.failed(query_error("read-only check", &e)))?;
        let xid: Option<String> = row.get(0);
        let read_only: String = row.get(1);
        match (xid, read_only.as_str()) {
            (None, "on") => Ok(()),
            (Some(xid), _) => Err(self.failed(format!(
                "a transaction id ({xid}) was assigned: something wrote in the run's transaction"
            ))),
            (None, mode) => Err(self.failed(format!("transaction_read_only is `{mode}`"))),
        }
    }

    fn query_opener(&self, run_id: &str) -> Result<QueryOpener<'_>, String> {
        let application_name = super::application_name(run_id);
        Ok(Box::new(move || {
            let snapshot = self.session().as_ref().map(|s| s.state.snapshot_id.clone());
            let snapshot = snapshot.ok_or_else(|| "the source was not prepared".to_owned())?;
            QuerySession::open(
                &self.target,
                &application_name,
                self.connect_timeout,
                Some(&snapshot),
            )
            .map_err(|reason| format!("{}: {reason}", self.target.describe()))
        }))
    }

    fn finish(&self) {
        if let Some(mut session) = self.session().take() {
            // Never COMMIT: whatever the transaction holds is discarded.
            let _ = session.client.batch_execute("ROLLBACK");
        }
    }
}
