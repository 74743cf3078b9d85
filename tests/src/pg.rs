//! A real PostgreSQL server for the tests: the one `DATABASE_URL` or the
//! `PG*` variables name (`make test` wraps the run in `pg_virtualenv` when
//! neither is set). A test that needs the server fails, never skips, when
//! there is none.
//!
//! Each [`TestDb`] is a fresh database with the knowledge base schema and
//! the embedded corpus, and roles of its own; both are dropped afterwards.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

use postgres::{Client, NoTls};
use sidecar::source::{EmbeddedSource, Source};

/// The administrator's connection settings.
pub fn admin_config() -> postgres::Config {
    if let Ok(url) = std::env::var("DATABASE_URL") {
        return postgres::Config::from_str(&url).expect("DATABASE_URL is a valid URL");
    }
    let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    let (Some(host), Some(user)) = (var("PGHOST"), var("PGUSER")) else {
        panic!(
            "no PostgreSQL server: set DATABASE_URL or PGHOST/PGUSER (`make test` starts a \
             throwaway one with pg_virtualenv)"
        );
    };
    let mut config = postgres::Config::new();
    config.host(&host).user(&user);
    if let Some(port) = var("PGPORT") {
        config.port(port.parse().expect("PGPORT is a number"));
    }
    if let Some(password) = var("PGPASSWORD") {
        config.password(password);
    }
    config.dbname(var("PGDATABASE").as_deref().unwrap_or("postgres"));
    config
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

/// Inserts every record of the embedded corpus.
pub fn load_embedded(client: &mut Client) {
    let mut tx = client.transaction().expect("transaction");
    let document = tx
        .prepare(
            "INSERT INTO source_document (id, kb_path, title, status, updated_at) \
             VALUES ($1, $2, $3, $4, $5::text::timestamptz)",
        )
        .expect("prepare");
    let version = tx
        .prepare(
            "INSERT INTO source_version (id, document_id, revision, body, body_sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6::text::timestamptz)",
        )
        .expect("prepare");
    let unit = tx
        .prepare(
            "INSERT INTO information_unit (id, document_id, version_id, ordinal, heading, anchor, \
             body, body_sha256, lifecycle) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .expect("prepare");
    for batch in EmbeddedSource::new().batches(1000) {
        let batch = batch.expect("embedded batch");
        for d in &batch.documents {
            tx.execute(&document, &[&d.id, &d.kb_path, &d.title, &d.status, &d.updated_at])
                .expect("insert document");
        }
        // Units of a re-cut document were cut from an older version, which
        // the batch does not carry. Its rows are derived from them: its
        // units concatenate to its body, and version ids count revisions.
        let mut older: BTreeMap<i64, (i64, i64, String)> = BTreeMap::new();
        for u in batch.units.iter().filter(|u| !batch.versions.iter().any(|v| v.id == u.version_id))
        {
            let latest = batch
                .versions
                .iter()
                .find(|v| v.document_id == u.document_id)
                .expect("every document has its latest version in the batch");
            let revision = latest.revision - (latest.id - u.version_id);
            older.entry(u.version_id).or_insert((u.document_id, revision, String::new())).2 +=
                &u.body;
        }
        for (id, (document_id, revision, body)) in &older {
            let sha = sidecar::integrity::manifest::Sha256Digest::of(body.as_bytes()).to_string();
            tx.execute(&version, &[id, document_id, revision, body, &sha, &"2026-01-01T00:00:00Z"])
                .expect("insert older version");
        }
        for v in &batch.versions {
            tx.execute(
                &version,
                &[&v.id, &v.document_id, &v.revision, &v.body, &v.body_sha256, &v.created_at],
            )
            .expect("insert version");
        }
        for u in &batch.units {
            tx.execute(
                &unit,
                &[
                    &u.id,
                    &u.document_id,
                    &u.version_id,
                    &u.ordinal,
                    &u.heading,
                    &u.anchor,
                    &u.body,
                    &u.body_sha256,
                    &u.lifecycle,
                ],
            )
            .expect("insert unit");
        }
    }
    tx.commit().expect("commit");
}
