//! Layer 5: the queries a plugin makes, run by the host on a connection the
//! plugin never sees.
//!
//! A run that reads PostgreSQL opens a second connection, as the same role
//! with the same startup settings, for its plugin's queries. Its one
//! transaction is `REPEATABLE READ, READ ONLY` and its first statement
//! imports the run's exported snapshot, so a plugin's queries see exactly
//! the data the run's batches come from, and the transaction can no longer
//! be made read-write. It is rolled back at the end, never committed.
//!
//! Each statement passes the gate ([`super::gate`]) and becomes the body of
//! a `DECLARE … NO SCROLL CURSOR`, sent over the extended protocol: the
//! server itself then refuses a second statement or anything but a query.
//! Rows come back `FETCH` by `FETCH` in PostgreSQL's text format, so memory
//! is bounded by what the plugin asks for at once.
//!
//! Every cursor is declared inside a savepoint of its own. A statement the
//! server rejects (a typo, a missing privilege, a division by zero) rolls
//! back to its savepoint and the plugin gets the error; the run's
//! transaction carries on. Savepoints are released in stack order; an error
//! in a query also ends the queries opened after it, which share its
//! savepoint.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::time::Duration;

use bytes::BytesMut;
use postgres::types::{to_sql_checked, Format, IsNull, ToSql, Type};
use postgres::{Client, NoTls, SimpleQueryMessage};

use super::gate::{self, Refused};
use super::target::Target;

/// Why a query did not produce rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// The host refused it; the server never saw it.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The host refused it for another reason (an unknown cursor, a
    /// parameter count that does not match).
    #[error("{0}")]
    Invalid(String),
    /// The server answered with an error.
    #[error("{message}{}", sqlstate.as_ref().map(|s| format!(" (SQLSTATE {s})")).unwrap_or_default())]
    Server {
        /// The SQLSTATE, when the server sent one.
        sqlstate: Option<String>,
        /// The server's message.
        message: String,
    },
}

impl QueryError {
    fn server(err: &postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => Self::Server {
                sqlstate: Some(db.code().code().to_owned()),
                message: db.message().to_owned(),
            },
            None => Self::Server {
                sqlstate: err.code().map(|c| c.code().to_owned()),
                message: err.to_string(),
            },
        }
    }

    /// The SQLSTATE of a server error.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Server { sqlstate, .. } => sqlstate.as_deref(),
            _ => None,
        }
    }

    /// Whether the error ends the run rather than the one query: the
    /// statement or lock timeout, the backend terminated or the connection
    /// lost, the server out of resources, a recovery conflict on a standby,
    /// or a write refused by the server after the gate passed it (the gate
    /// has a gap, and the operator must hear of it).
    pub fn ends_the_run(&self) -> bool {
        let Self::Server { sqlstate, .. } = self else { return false };
        let Some(code) = sqlstate.as_deref() else {
            // No SQLSTATE: the connection itself failed.
            return true;
        };
        matches!(code, "57014" | "55P03" | "25006" | "40001" | "25P02")
            || ["08", "53", "57P", "58"].iter().any(|class| code.starts_with(class))
    }
}

/// A string parameter the server parses as whatever type the statement
/// needs (PostgreSQL's text input), like a literal would be.
#[derive(Debug)]
struct TextParam<'a>(&'a str);

impl ToSql for TextParam<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// The plugin-facing connection of one run.
pub struct QuerySession {
    client: Client,
    /// `now()` when the transaction started: if it changes, something
    /// ended the run's transaction.
    started: String,
    /// Open cursors by id, with their savepoint's place in the stack.
    cursors: BTreeMap<u64, usize>,
    /// Savepoints in the order they were taken: the cursor id, and whether
    /// the cursor is still open.
    savepoints: Vec<(u64, bool)>,
    next_id: u64,
}

/// A cursor's name and its savepoint's: host-made, never plugin text.
fn cursor_name(id: u64) -> String {
    format!("sidecar_q{id}")
}

impl QuerySession {
    /// Connects as `target`'s role and opens the read-only transaction,
    /// importing `snapshot` when given (otherwise the first statement takes
    /// a snapshot of its own).
    pub fn open(
        target: &Target,
        application_name: &str,
        connect_timeout: Duration,
        snapshot: Option<&str>,
    ) -> Result<Self, String> {
        let mut client = target
            .config(application_name, connect_timeout)
            .connect(NoTls)
            .map_err(|e| format!("cannot connect the query session: {}", QueryError::server(&e)))?;
        let first = match snapshot {
            Some(id) if id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') => {
                format!("SET TRANSACTION SNAPSHOT '{id}'")
            }
            Some(id) => return Err(format!("`{id}` is not a snapshot id")),
            None => "SELECT 1".to_owned(),
        };
        client
            .batch_execute(&format!(
                "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY; {first}"
            ))
            .map_err(|e| format!("query session: {}", QueryError::server(&e)))?;
        let row = client
            .query_one("SELECT now()::text, current_setting('transaction_read_only')", &[])
            .map_err(|e| format!("query session: {}", QueryError::server(&e)))?;
        if row.get::<_, String>(1) != "on" {
            return Err("the query session's transaction is not read-only".to_owned());
        }
        Ok(Self {
            client,
            started: row.get(0),
            cursors: BTreeMap::new(),
            savepoints: Vec::new(),
            next_id: 1,
        })
    }

    /// Gates `sql` and opens a cursor over it; returns the cursor's id and
    /// the result's columns (name, type name).
    pub fn open_cursor(
        &mut self,
        sql: &str,
        params: &[String],
    ) -> Result<(u64, Vec<(String, String)>), QueryError> {
        gate::check(sql)?;
        let prepared = self.client.prepare(sql).map_err(|e| QueryError::server(&e))?;
        if prepared.params().len() != params.len() {
            return Err(QueryError::Invalid(format!(
                "the statement takes {} parameter(s), {} given",
                prepared.params().len(),
                params.len()
            )));
        }
        let columns = prepared
            .columns()
            .iter()
            .map(|c| (c.name().to_owned(), c.type_().name().to_owned()))
            .collect();
        let id = self.next_id;
        self.next_id += 1;
        let name = cursor_name(id);
        self.client
            .batch_execute(&format!("SAVEPOINT {name}"))
            .map_err(|e| QueryError::server(&e))?;
        self.savepoints.push((id, true));
        self.cursors.insert(id, self.savepoints.len() - 1);
        let params: Vec<TextParam<'_>> = params.iter().map(|p| TextParam(p)).collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let declare = format!("DECLARE {name} NO SCROLL CURSOR FOR {sql}");
        match self.client.execute(declare.as_str(), &params) {
            Ok(_) => Ok((id, columns)),
            Err(err) => Err(self.fail(id, &err)),
        }
    }

    /// Whether cursor `id` is open (a failed query's rollback also ends the
    /// queries opened after it).
    pub fn is_open(&self, id: u64) -> bool {
        self.cursors.contains_key(&id)
    }

    /// The next rows of a cursor, at most `max_rows`; empty at its end.
    pub fn fetch(
        &mut self,
        id: u64,
        max_rows: u32,
    ) -> Result<Vec<Vec<Option<String>>>, QueryError> {
        if !self.cursors.contains_key(&id) {
            return Err(QueryError::Invalid(format!("no open query {id}")));
        }
        let fetch = format!("FETCH FORWARD {} FROM {}", max_rows.max(1), cursor_name(id));
        let messages = match self.client.simple_query(&fetch) {
            Ok(messages) => messages,
            Err(err) => return Err(self.fail(id, &err)),
        };
        Ok(messages
            .iter()
            .filter_map(|message| match message {
                SimpleQueryMessage::Row(row) => {
                    Some((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect())
                }
                _ => None,
            })
            .collect())
    }

    /// Closes a cursor; its savepoint is released once every cursor opened
    /// after it is closed too.
    pub fn close(&mut self, id: u64) -> Result<(), QueryError> {
        let Some(place) = self.cursors.remove(&id) else {
            return Err(QueryError::Invalid(format!("no open query {id}")));
        };
        self.client
            .batch_execute(&format!("CLOSE {}", cursor_name(id)))
            .map_err(|e| QueryError::server(&e))?;
        self.savepoints[place].1 = false;
        while let Some(&(top, false)) = self.savepoints.last() {
            self.client
                .batch_execute(&format!("RELEASE SAVEPOINT {}", cursor_name(top)))
                .map_err(|e| QueryError::server(&e))?;
            self.savepoints.pop();
        }
        Ok(())
    }

    /// Closes every open cursor (at the end of a phase); returns their ids.
    pub fn close_all(&mut self) -> Result<Vec<u64>, QueryError> {
        let open: Vec<u64> = self.cursors.keys().copied().collect();
        for id in &open {
            self.close(*id)?;
        }
        Ok(open)
    }

    /// The server rejected a statement of cursor `id`: roll back to its
    /// savepoint, which also ends every cursor opened after it.
    fn fail(&mut self, id: u64, err: &postgres::Error) -> QueryError {
        let error = QueryError::server(err);
        if let Some(place) = self.cursors.get(&id).copied() {
            let rollback =
                format!("ROLLBACK TO SAVEPOINT {0}; RELEASE SAVEPOINT {0}", cursor_name(id));
            if self.client.batch_execute(&rollback).is_ok() {
                for (later, _) in self.savepoints.drain(place..) {
                    self.cursors.remove(&later);
                }
            }
        }
        error
    }

    /// Layer 3 on this connection: still the run's transaction, still
    /// read-only, no transaction id assigned, no advisory lock held.
    pub fn check(&mut self) -> Result<(), String> {
        let row = self
            .client
            .query_one(
                "SELECT now()::text, pg_current_xact_id_if_assigned()::text, \
                 current_setting('transaction_read_only'), \
                 (SELECT count(*) FROM pg_locks \
                  WHERE locktype = 'advisory' AND pid = pg_backend_pid())",
                &[],
            )
            .map_err(|e| format!("query session check: {}", QueryError::server(&e)))?;
        let (started, xid, read_only, advisory): (String, Option<String>, String, i64) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if started != self.started {
            return Err("the query session's transaction was ended by a statement".to_owned());
        }
        if let Some(xid) = xid {
            return Err(format!(
                "a transaction id ({xid}) was assigned in the query session: a query wrote"
            ));
        }
        if read_only != "on" {
            return Err(format!("the query session's transaction_read_only is `{read_only}`"));
        }
        if advisory > 0 {
            return Err(format!("the query session holds {advisory} advisory lock(s)"));
        }
        Ok(())
    }

    /// Ends the session: ROLLBACK, never COMMIT.
    pub fn finish(mut self) {
        let _ = self.client.batch_execute("ROLLBACK");
    }

    /// Runs `sql` as is, skipping the gate and the cursor (one statement,
    /// extended protocol): only for the tests that prove the server's own
    /// layers reject or contain what the gate refuses. Never called by the
    /// host.
    #[cfg(feature = "ungated-queries-for-tests")]
    #[doc(hidden)]
    pub fn execute_ungated(&mut self, sql: &str) -> Result<u64, QueryError> {
        self.client.execute(sql, &[]).map_err(|e| QueryError::server(&e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: Option<&str>) -> QueryError {
        QueryError::Server { sqlstate: code.map(str::to_owned), message: "m".into() }
    }

    #[test]
    fn faults_end_the_run_and_a_plugin_mistake_ends_only_its_query() {
        for code in ["57014", "55P03", "57P01", "08006", "53200", "25006", "40001", "25P02"] {
            assert!(server(Some(code)).ends_the_run(), "{code}");
        }
        assert!(server(None).ends_the_run(), "a connection error carries no SQLSTATE");
        for code in ["42601", "42501", "42P01", "22012", "0A000"] {
            assert!(!server(Some(code)).ends_the_run(), "{code}");
        }
        let refused = QueryError::Refused(Refused { reason: "r".into() });
        assert!(!refused.ends_the_run());
        assert_eq!(server(Some("57014")).to_string(), "m (SQLSTATE 57014)");
    }
}
