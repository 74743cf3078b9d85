//! A real PostgreSQL server for the tests: the one `DATABASE_URL` or the
//! `PG*` variables name (`make test` wraps the run in `pg_virtualenv` when
//! neither is set). A test that needs the server fails, never skips, when
//! there is none.
//!
//! Each [`TestDb`] is a fresh database with the knowledge base schema and
//! the embedded corpus, and roles of its own; both are dropped afterwards.
//! [`load_source`] fills the tables from any host source (`pg-load`, the
//! benchmark and `make demo-pg` use it too).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};
use sidecar::source::{EmbeddedSource, NotReady, Source, SourceVersion};

/// The administrator's connection settings; panics when there is no server.
pub fn admin_config() -> postgres::Config {
    try_admin_config().unwrap_or_else(|reason| panic!("{reason}"))
}

/// The administrator's connection settings, from `DATABASE_URL` or the
/// `PG*` variables, or why there are none.
pub fn try_admin_config() -> Result<postgres::Config, String> {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return postgres::Config::from_str(&url)
            .map_err(|err| format!("DATABASE_URL is not a valid URL: {err}"));
    }
    let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let (Some(host), Some(user)) = (var("PGHOST"), var("PGUSER")) else {
        return Err("no PostgreSQL server: set DATABASE_URL or PGHOST/PGUSER (`make test` starts \
                    a throwaway one with pg_virtualenv)"
            .to_owned());
    };
    let mut config = postgres::Config::new();
    config.host(&host).user(&user);
    if let Some(port) = var("PGPORT") {
        config.port(port.parse().map_err(|_| format!("PGPORT `{port}` is not a port number"))?);
    }
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    config.dbname(var("PGDATABASE").as_deref().unwrap_or("postgres"));
    Ok(config)
}

/// A database of the test's own, filled with the embedded corpus.
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Roles created for it, dropped with it.
    roles: Vec<String>,
    admin: Client,
    /// A connection to the database itself, as the administrator.
    pub owner: Client,
}

impl TestDb {
    /// Creates the database, the schema and the corpus.
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name =
            format!("sidecar_t{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::SeqCst));
        let mut admin = admin_config().connect(NoTls).expect("connect as the administrator");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create database");
        let mut owner = admin_config().dbname(&name).connect(NoTls).expect("connect to test db");
        owner.batch_execute(sidecar::pg::SCHEMA).expect("schema");
        load_embedded(&mut owner);
        Self { name, roles: Vec::new(), admin, owner }
    }

    /// Creates a login role `<db>_<suffix>` with `password`, runs `grants`
    /// (with `{role}` replaced by its name) in the database, and returns
    /// the role's name.
    pub fn role(&mut self, suffix: &str, attributes: &str, password: &str, grants: &str) -> String {
        let role = format!("{}_{suffix}", self.name);
        self.admin
            .batch_execute(&format!(
                "CREATE ROLE {role} LOGIN {attributes} PASSWORD '{password}'; \
                 GRANT CONNECT ON DATABASE {db} TO {role};",
                db = self.name
            ))
            .expect("create role");
        self.roles.push(role.clone());
        self.owner.batch_execute(&grants.replace("{role}", &role)).expect("grants");
        role
    }

    /// An env file's text for `role`.
    pub fn env_file(&self, role: &str, password: &str) -> String {
        let config = admin_config();
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(host)) => host.clone(),
            Some(postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => "localhost".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "PG_HOST={host}\nPG_PORT={port}\nPG_DB={}\nPG_USER_RO={role}\nPG_PASSWORD_RO={password}\n",
            self.name
        )
    }
}

impl Default for TestDb {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = self
            .admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        for role in &self.roles {
            let _ = self.admin.batch_execute(&format!("DROP ROLE IF EXISTS {role}"));
        }
    }
}

/// What [`load_source`] wrote: rows per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Loaded {
    /// `source_document` rows.
    pub documents: u64,
    /// `source_version` rows: every latest version, plus the older versions
    /// derived from units cut at an earlier revision.
    pub versions: u64,
    /// `information_unit` rows.
    pub units: u64,
}

/// Why [`load_source`] stopped. Nothing was committed.
#[derive(Debug)]
pub enum LoadError {
    /// The source could not be prepared or read.
    Source(String),
    /// A statement failed; `what` names it.
    Database { what: &'static str, error: postgres::Error },
    /// A unit points at an older version of a document whose latest version
    /// is not in the same batch, so the older version cannot be derived.
    Orphan { unit: i64, document: i64 },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Source(reason) => write!(f, "source: {reason}"),
            // The server's own message says more than the driver's "db error".
            Self::Database { what, error } => match error.as_db_error() {
                Some(db) => write!(f, "{what}: {} (SQLSTATE {})", db.message(), db.code().code()),
                None => write!(f, "{what}: {error}"),
            },
            Self::Orphan { unit, document } => write!(
                f,
                "unit {unit} of document {document} points at a version the batch does not \
                 carry, and the document's latest version is not in the batch either"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

fn db(what: &'static str) -> impl FnOnce(postgres::Error) -> LoadError {
    move |error| LoadError::Database { what, error }
}

/// Inserts every record of the embedded corpus, panicking on failure (the
/// tests' fixture).
pub fn load_embedded(client: &mut Client) {
    if let Err(err) = load_source(client, &EmbeddedSource::new()) {
        panic!("load the embedded corpus: {err}");
    }
}

/// Documents per batch while loading: a few MB of rows per `COPY`.
const LOAD_BATCH: usize = 2000;

/// Fills `source_document`, `source_version` and `information_unit` (which
/// must not hold rows with the same ids) with every record of `source`, in
/// one transaction, then vacuums and analyzes them so that a reader meets
/// them as it would a long-lived database (hint bits set, statistics).
///
/// Rows go through `COPY ... FROM STDIN` in text format, three per batch
/// (documents, then versions, then units, as the foreign keys require), so
/// 100k documents take seconds rather than the minutes of one `INSERT` per
/// row, and memory is bounded by the batch.
///
/// A batch carries only the latest version of each document, but the units
/// of a re-cut document were cut from an older one. Its row is derived from
/// them: a version's units concatenate to its body, and version ids count
/// revisions (see `sidecar::source::embedded`), so its revision is the
/// latest's minus the difference of the ids.
pub fn load_source(client: &mut Client, source: &dyn Source) -> Result<Loaded, LoadError> {
    source.prepare("pg-load").map_err(|not_ready| {
        LoadError::Source(match not_ready {
            NotReady::Refused(reason) | NotReady::Failed(reason) => reason,
        })
    })?;
    let loaded = copy_all(client, source);
    source.finish();
    let loaded = loaded?;
    client
        .batch_execute("VACUUM (ANALYZE) source_document, source_version, information_unit")
        .map_err(db("vacuum"))?;
    Ok(loaded)
}

fn copy_all(client: &mut Client, source: &dyn Source) -> Result<Loaded, LoadError> {
    use Field::{Int, Text};
    let mut tx = client.transaction().map_err(db("begin"))?;
    let mut loaded = Loaded::default();
    let mut rows = Vec::new();
    for batch in source.batches(LOAD_BATCH) {
        let batch = batch.map_err(|err| LoadError::Source(err.to_string()))?;

        rows.clear();
        for d in &batch.documents {
            row(
                &mut rows,
                &[
                    Int(d.id),
                    Text(&d.kb_path),
                    Text(&d.title),
                    Text(&d.status),
                    Text(&d.updated_at),
                ],
            );
        }
        loaded.documents += copy(
            &mut tx,
            "COPY source_document (id, kb_path, title, status, updated_at) FROM STDIN",
            &rows,
        )?;

        rows.clear();
        let latest: HashMap<i64, &SourceVersion> =
            batch.versions.iter().map(|v| (v.document_id, v)).collect();
        let carried: HashSet<i64> = batch.versions.iter().map(|v| v.id).collect();
        // Units come by document then ordinal, so each body grows in order.
        let mut older: BTreeMap<i64, (i64, i64, String)> = BTreeMap::new();
        for u in batch.units.iter().filter(|u| !carried.contains(&u.version_id)) {
            let latest = latest
                .get(&u.document_id)
                .ok_or(LoadError::Orphan { unit: u.id, document: u.document_id })?;
            let revision = latest.revision - (latest.id - u.version_id);
            older.entry(u.version_id).or_insert((u.document_id, revision, String::new())).2 +=
                &u.body;
        }
        for (id, (document_id, revision, body)) in &older {
            let sha = sidecar::integrity::manifest::Sha256Digest::of(body.as_bytes()).to_string();
            row(
                &mut rows,
                &[
                    Int(*id),
                    Int(*document_id),
                    Int(*revision),
                    Text(body),
                    Text(&sha),
                    Text(OLDER_CREATED_AT),
                ],
            );
        }
        for v in &batch.versions {
            row(
                &mut rows,
                &[
                    Int(v.id),
                    Int(v.document_id),
                    Int(v.revision),
                    Text(&v.body),
                    Text(&v.body_sha256),
                    Text(&v.created_at),
                ],
            );
        }
        loaded.versions += copy(
            &mut tx,
            "COPY source_version (id, document_id, revision, body, body_sha256, created_at) \
             FROM STDIN",
            &rows,
        )?;

        rows.clear();
        for u in &batch.units {
            row(
                &mut rows,
                &[
                    Int(u.id),
                    Int(u.document_id),
                    Int(u.version_id),
                    Int(u.ordinal),
                    Text(&u.heading),
                    Text(&u.anchor),
                    Text(&u.body),
                    Text(&u.body_sha256),
                    Text(&u.lifecycle),
                ],
            );
        }
        loaded.units += copy(
            &mut tx,
            "COPY information_unit (id, document_id, version_id, ordinal, heading, anchor, body, \
             body_sha256, lifecycle) FROM STDIN",
            &rows,
        )?;
    }
    tx.commit().map_err(db("commit"))?;
    Ok(loaded)
}

/// `created_at` of a derived older version: the source does not say, and
/// nothing reads it (the host orders versions by revision).
const OLDER_CREATED_AT: &str = "2026-01-01T00:00:00Z";

/// Sends `rows` (text format) through `statement`; returns the rows copied.
fn copy(
    tx: &mut postgres::Transaction<'_>,
    statement: &str,
    rows: &[u8],
) -> Result<u64, LoadError> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut writer = tx.copy_in(statement).map_err(db("copy"))?;
    // A write fails only when the server ended the COPY; `finish` reports why.
    if writer.write_all(rows).is_err() {
        return Err(writer.finish().err().map_or_else(
            || LoadError::Source("the server ended the COPY early".into()),
            |error| LoadError::Database { what: "copy", error },
        ));
    }
    writer.finish().map_err(db("copy"))
}

/// A field of a `COPY` row.
enum Field<'a> {
    Int(i64),
    Text(&'a str),
}

/// Appends one line of `COPY`'s text format to `out`: fields separated by
/// tabs, with backslash, tab, newline and carriage return escaped in text.
fn row(out: &mut Vec<u8>, fields: &[Field<'_>]) {
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match field {
            Field::Int(value) => {
                write!(out, "{value}").expect("writing to a Vec cannot fail");
            }
            Field::Text(text) => {
                let mut start = 0;
                for (at, byte) in text.bytes().enumerate() {
                    let escaped: &[u8] = match byte {
                        b'\\' => b"\\\\",
                        b'\t' => b"\\t",
                        b'\n' => b"\\n",
                        b'\r' => b"\\r",
                        _ => continue,
                    };
                    out.extend_from_slice(&text.as_bytes()[start..at]);
                    out.extend_from_slice(escaped);
                    start = at + 1;
                }
                out.extend_from_slice(&text.as_bytes()[start..]);
            }
        }
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_rows_escape_what_the_text_format_would_misread() {
        let mut out = Vec::new();
        row(&mut out, &[Field::Int(-7), Field::Text("a\\b\tc\r\nd é"), Field::Text("")]);
        row(&mut out, &[Field::Text("\\N")]);
        // A bare `\N` would read back as NULL, a raw tab as a column break,
        // a raw newline as the next row.
        assert_eq!(out, b"-7\ta\\\\b\\tc\\r\\nd \xc3\xa9\t\n\\\\N\n");
    }
}
