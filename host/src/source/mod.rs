//! Where a dry run's records come from: the embedded default corpus, a
//! directory of Markdown files, a generated corpus of any size, or
//! PostgreSQL.
//!
//! A [`Source`] yields [`RecordBatch`]es lazily so that memory is bounded by
//! the batch size whatever the corpus size, and deterministically so that two
//! plugins, or two runs, see byte-identical input. Its [`SourceIdentity`]
//! carries a digest naming the exact data, which is what a run report cites
//! to say "these results are for that input".
//!
//! The PostgreSQL source (`crate::pg::PgSource`, the knowledge base's
//! tables read in one read-only snapshot) implements the same trait. A
//! comparison reads any source once and hands every batch to each side
//! ([`fan_out`]).

pub mod dir;
pub mod embedded;
pub mod generate;
pub mod record;

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use dir::DirSource;
pub use embedded::{expected_difference_cases, EmbeddedSource};
pub use generate::{write_markdown_tree, GeneratedSource};
pub use record::{InformationUnit, RecordBatch, SourceDocument, SourceVersion};

use crate::pg::{PgSource, SessionSettings, Target};

/// First id of versions in the embedded corpus and a directory; documents
/// count from 1 and units from [`UNIT_ID_BASE`], so the kinds never share an
/// id and a stray id in a report is recognisable at a glance.
pub const VERSION_ID_BASE: i64 = 100_000;

/// First id of units in the embedded corpus.
pub const UNIT_ID_BASE: i64 = 1_000_000;

/// The accepted `--source` forms, for help texts and errors.
pub const SOURCE_FORMS: &str =
    "`embedded`, `dir:PATH`, `generated:BYTES[K|M|G][:SEED]`, `postgres` or a `postgres://` URL";

/// What a source is and which exact data it yields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceIdentity {
    /// `"embedded"`, `"dir"` or `"generated"`.
    pub kind: String,
    /// Where the data comes from: the directory for `dir`, the spec
    /// otherwise.
    pub location: String,
    /// Lowercase hex sha256 naming the data: over the generator's spec for
    /// `embedded` and `generated` (stable across runs and machines), over the
    /// sorted `sha256sum` lines of the files for `dir`.
    pub digest: String,
    /// How many documents the source yields, when known without reading it
    /// all (`null` for `generated` until a run has read it; a run fills it
    /// in with the count it read).
    pub documents: Option<u64>,
    /// For `postgres`: the server and the snapshot read, once prepared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<crate::pg::DatabaseState>,
}

/// Why a source could not be prepared for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The host's policy refuses to read it (e.g. a role that could write).
    Refused(String),
    /// It cannot be read (e.g. the server is down).
    Failed(String),
}

/// The batches of a source, in order. An error ends the sequence.
pub type Batches<'a> = Box<dyn Iterator<Item = Result<RecordBatch, SourceError>> + Send + 'a>;

/// A producer of record batches.
///
/// Invariant: the same source with the same `max_documents` yields
/// byte-identical batches on every call and every run; a different
/// `max_documents` only regroups the same records.
pub trait Source: Send + Sync {
    /// What this source is. Always cheap: nothing is read or generated.
    fn describe(&self) -> SourceIdentity;

    /// Connects and checks the source before any data is read, in run
    /// `run_id`. Local sources have nothing to do.
    fn prepare(&self, _run_id: &str) -> Result<(), NotReady> {
        Ok(())
    }

    /// Checked after every phase: the source is still read-only and
    /// untouched. Local sources cannot be written through.
    fn after_phase(&self) -> Result<(), SourceError> {
        Ok(())
    }

    /// After `prepare`: how to open a session for the plugin's queries on
    /// the same data (layer 5), connected only when the plugin first asks;
    /// or, for a source with no database, the reason a plugin is told.
    fn query_opener(&self, _run_id: &str) -> Result<QueryOpener<'_>, String> {
        Err(format!("the run's source ({}) is not a database", self.describe().kind))
    }

    /// The run is over: release what `prepare` took (a database
    /// transaction is rolled back, never committed).
    fn finish(&self) {}

    /// The records, at most `max_documents` documents per batch (a
    /// `max_documents` of 0 is taken as 1, so a batch is never empty).
    fn batches(&self, max_documents: usize) -> Batches<'_>;
}

/// Opens a run's query session; `Err` is why it could not (the run fails).
pub type QueryOpener<'a> = Box<dyn FnOnce() -> Result<crate::pg::query::QuerySession, String> + 'a>;

/// The batches read ahead on a thread of `scope`, at most `ahead` ready
/// before they are taken, so that reading or generating the next batch
/// overlaps the work on this one. The order and the contents are those of
/// `batches`. Dropping the receiver stops the thread after the batch in
/// hand.
pub fn read_ahead<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    batches: Batches<'env>,
    ahead: usize,
) -> std::sync::mpsc::Receiver<Result<RecordBatch, SourceError>> {
    let (ready, taken) = std::sync::mpsc::sync_channel(ahead);
    scope.spawn(move || {
        for batch in batches {
            if ready.send(batch).is_err() {
                break;
            }
        }
    });
    taken
}

/// The batches read once, on a thread of `scope`, and handed to each of
/// `consumers` receivers in order, so that several runs see the very same
/// records without reading the source again. `inspect` sees each batch
/// first. A receiver that is dropped (its run stopped) is skipped from then
/// on; reading stops when every receiver is gone. The slowest consumer sets
/// the pace: each receiver holds at most `ahead` batches.
pub fn fan_out<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    batches: Batches<'env>,
    consumers: usize,
    ahead: usize,
    mut inspect: impl FnMut(&RecordBatch) + Send + 'scope,
) -> Vec<std::sync::mpsc::Receiver<Result<RecordBatch, SourceError>>> {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..consumers).map(|_| std::sync::mpsc::sync_channel(ahead)).unzip();
    scope.spawn(move || {
        let mut senders: Vec<_> = senders.into_iter().map(Some).collect();
        for batch in batches {
            if let Ok(batch) = &batch {
                inspect(batch);
            }
            let mut message = Some(batch.map_err(|err| err.to_string()));
            let last = senders.iter().rposition(Option::is_some);
            for (index, slot) in senders.iter_mut().enumerate() {
                let Some(sender) = slot else { continue };
                // The last consumer gets the batch itself, the others a copy.
                let copy = if Some(index) == last { message.take() } else { message.clone() };
                let copy = copy.expect("taken only by the last").map_err(SourceError::Shared);
                if sender.send(copy).is_err() {
                    *slot = None;
                }
            }
            if senders.iter().all(Option::is_none) {
                break;
            }
        }
    });
    receivers
}

/// Why a source cannot be opened or read. Each names the spec or file at
/// fault.
#[derive(Debug, Error)]
pub enum SourceError {
    /// A `--source` value of no known form.
    #[error("unknown source `{spec}`: expected {SOURCE_FORMS}")]
    UnknownSpec { spec: String },
    /// A known form with a bad argument.
    #[error("source `{spec}`: {reason}")]
    InvalidSpec { spec: String, reason: String },
    /// A size that is not digits with an optional K, M or G suffix.
    #[error("size `{size}` is {reason}")]
    InvalidSize { size: String, reason: &'static str },
    /// The directory of a `dir:` source is absent or not a directory.
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// A `dir:` source without a single `*.md` file, which is almost surely
    /// the wrong path.
    #[error("{}: no *.md files found", path.display())]
    NoDocuments { path: PathBuf },
    /// A symbolic link inside a `dir:` source; links are never followed, so
    /// that the digest names every byte read.
    #[error("{}: symbolic link (refused, never followed)", path.display())]
    Symlink { path: PathBuf },
    /// A name that is not UTF-8 (shown lossily) and so cannot be a `kb_path`.
    #[error("{}: file name is not UTF-8", path.display())]
    NonUtf8Name { path: PathBuf },
    /// A name a `kb_path` or the digest's line format cannot carry.
    #[error("{}: {reason}", path.display())]
    BadName { path: PathBuf, reason: &'static str },
    /// A `*.md` entry that is a FIFO, socket or device.
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// A document whose bytes are not UTF-8.
    #[error("{}: contents are not UTF-8 (first bad byte at offset {offset})", path.display())]
    NonUtf8Contents { path: PathBuf, offset: usize },
    /// A file that changed between opening the source and reading its batch,
    /// so the digest no longer names what would be read.
    #[error(
        "{}: changed since the source was opened (sha256 was {expected}, now {actual})",
        path.display()
    )]
    Changed { path: PathBuf, expected: String, actual: String },
    /// A file or directory that could not be read. The reason is part of
    /// the message (not a `source`) because callers print sources with
    /// `to_string()` and the reason is what the operator needs.
    #[error("{}: cannot read: {error}", path.display())]
    Read { path: PathBuf, error: io::Error },
    /// The error of a source read once for several runs, as each is told.
    #[error("{0}")]
    Shared(String),
    /// A database source failed; `target` is redacted.
    #[error("{target}: {reason}")]
    Database { target: String, reason: String },
}

/// Opens the source a `--source` value names: none or `embedded` for the
/// embedded corpus, `dir:PATH` for the `*.md` files under PATH,
/// `generated:BYTES[K|M|G][:SEED]` for a generated corpus of at least BYTES
/// body bytes (see [`parse_size`]; SEED defaults to
/// [`generate::DEFAULT_SEED`]).
pub fn parse_source_spec(
    spec: Option<&str>,
    database: &DatabaseOptions,
) -> Result<Box<dyn Source>, SourceError> {
    let Some(spec) = spec else { return Ok(Box::new(EmbeddedSource::new())) };
    if spec == "postgres" || spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let target = match (&database.env_file, spec) {
            (_, url) if url != "postgres" => Target::from_url(url),
            (Some(file), _) => Target::from_env_file(file),
            (None, _) => Target::from_environment(|key| std::env::var(key).ok()),
        };
        let mut target = target.map_err(|err| invalid(spec, err.to_string()))?;
        for warning in &target.warnings {
            tracing::warn!("{warning}");
        }
        target.session = database.session.clone();
        return Ok(Box::new(PgSource::new(target, database.connect_timeout)));
    }
    if spec == "embedded" {
        return Ok(Box::new(EmbeddedSource::new()));
    }
    if let Some(path) = spec.strip_prefix("dir:") {
        if path.is_empty() {
            return Err(invalid(spec, "missing PATH after `dir:`".to_owned()));
        }
        return Ok(Box::new(DirSource::open(path)?));
    }
    if let Some(rest) = spec.strip_prefix("generated:") {
        let (size, seed) = match rest.split_once(':') {
            Some((size, seed)) => {
                let seed = seed.parse::<u64>().map_err(|_| {
                    invalid(spec, format!("SEED `{seed}` is not a non-negative integer"))
                })?;
                (size, seed)
            }
            None => (rest, generate::DEFAULT_SEED),
        };
        let bytes = parse_size(size).map_err(|err| invalid(spec, err.to_string()))?;
        return Ok(Box::new(GeneratedSource::new(bytes, seed)));
    }
    Err(SourceError::UnknownSpec { spec: spec.to_owned() })
}

/// How a `postgres` source connects, beyond the spec itself.
#[derive(Debug, Clone)]
pub struct DatabaseOptions {
    /// An env file with `PG_HOST`, `PG_PORT`, `PG_DB`, `PG_USER_RO`,
    /// `PG_PASSWORD_RO`; without it, `postgres` reads the `PG*` variables.
    pub env_file: Option<PathBuf>,
    /// The session's settings.
    pub session: SessionSettings,
    /// How long connecting may take.
    pub connect_timeout: std::time::Duration,
}

impl Default for DatabaseOptions {
    fn default() -> Self {
        Self {
            env_file: None,
            session: SessionSettings::default(),
            connect_timeout: std::time::Duration::from_secs(10),
        }
    }
}

fn invalid(spec: &str, reason: String) -> SourceError {
    SourceError::InvalidSpec { spec: spec.to_owned(), reason }
}

/// Parses a byte count: `123`, `64K`, `100M` or `2G` (suffixes in either
/// case, powers of 1024). Shared by `generated:` specs and `gen-corpus`.
pub fn parse_size(text: &str) -> Result<u64, SourceError> {
    let error = |reason| SourceError::InvalidSize { size: text.to_owned(), reason };
    let (digits, unit) = match text.char_indices().last() {
        Some((at, 'k' | 'K')) => (&text[..at], 1u64 << 10),
        Some((at, 'm' | 'M')) => (&text[..at], 1 << 20),
        Some((at, 'g' | 'G')) => (&text[..at], 1 << 30),
        _ => (text, 1),
    };
    // `u64::from_str` accepts a leading `+`; a size is digits only.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error("not a number with an optional K, M or G suffix"));
    }
    digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)).ok_or_else(|| error("too large"))
}

/// Lowercase hex sha256 of `bytes`, the form every digest field uses.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    crate::integrity::manifest::Sha256Digest::of(bytes).to_hex()
}

/// Seconds since the Unix epoch as RFC 3339 in UTC (`2026-05-21T08:00:00Z`).
/// Sources derive timestamps from ids rather than a clock or file times,
/// so that batches stay byte-identical across runs.
pub(crate) fn rfc3339(unix_seconds: i64) -> String {
    crate::time::rfc3339(unix_seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(spec: &str) -> String {
        match parse_source_spec_default(Some(spec)) {
            Ok(source) => panic!("`{spec}` parsed as {:?}", source.describe()),
            Err(err) => err.to_string(),
        }
    }

    fn parse_source_spec_default(spec: Option<&str>) -> Result<Box<dyn Source>, SourceError> {
        parse_source_spec(spec, &DatabaseOptions::default())
    }

    #[test]
    fn reading_ahead_yields_the_same_batches_and_stops_when_dropped() {
        let source = EmbeddedSource::new();
        let direct: Vec<RecordBatch> =
            source.batches(40).map(|b| b.expect("embedded batch")).collect();
        let ahead: Vec<RecordBatch> = std::thread::scope(|scope| {
            read_ahead(scope, source.batches(40), 2)
                .into_iter()
                .map(|b| b.expect("batch"))
                .collect()
        });
        assert_eq!(ahead, direct);
        // Taking one batch and dropping the rest ends the thread (the scope
        // would hang otherwise).
        std::thread::scope(|scope| {
            let batches = read_ahead(scope, source.batches(1), 1);
            assert!(batches.recv().is_ok());
        });
    }

    #[test]
    fn spec_none_and_embedded_are_the_embedded_corpus() {
        let none = parse_source_spec_default(None).expect("default").describe();
        let named = parse_source_spec_default(Some("embedded")).expect("embedded").describe();
        assert_eq!(none, named);
        assert_eq!(none.kind, "embedded");
        assert_eq!(none.documents, Some(embedded::DOCUMENTS as u64));
    }

    #[test]
    fn spec_generated_sizes_and_seeds() {
        for (spec, bytes, seed) in [
            ("generated:1000", 1000, generate::DEFAULT_SEED),
            ("generated:64K", 64 << 10, generate::DEFAULT_SEED),
            ("generated:3m:7", 3 << 20, 7),
        ] {
            let source = parse_source_spec_default(Some(spec)).expect(spec);
            assert_eq!(source.describe(), GeneratedSource::new(bytes, seed).describe(), "{spec}");
        }
        // Opening is lazy: a huge size costs nothing until it is read.
        assert!(parse_source_spec_default(Some("generated:1G:0")).is_ok());
    }

    #[test]
    fn spec_dir_opens_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.md"), "# A\n").expect("write");
        let spec = format!("dir:{}", dir.path().display());
        let identity = parse_source_spec_default(Some(&spec)).expect("dir").describe();
        assert_eq!(identity.kind, "dir");
        assert_eq!(identity.documents, Some(1));
    }

    #[test]
    fn spec_errors_name_the_problem() {
        let forms =
            "expected `embedded`, `dir:PATH`, `generated:BYTES[K|M|G][:SEED]`, `postgres` or \
             a `postgres://` URL";
        let not_a_number = "is not a number with an optional K, M or G suffix";
        assert_eq!(error_of("mysql://x"), format!("unknown source `mysql://x`: {forms}"));
        assert_eq!(error_of(""), format!("unknown source ``: {forms}"));
        assert_eq!(error_of("Embedded"), format!("unknown source `Embedded`: {forms}"));
        assert_eq!(error_of("dir:"), "source `dir:`: missing PATH after `dir:`");
        assert_eq!(
            error_of("dir:/nonexistent/sidecar-kb"),
            "/nonexistent/sidecar-kb: not a directory"
        );
        assert_eq!(error_of("generated:"), format!("source `generated:`: size `` {not_a_number}"));
        assert_eq!(
            error_of("generated:10T"),
            format!("source `generated:10T`: size `10T` {not_a_number}")
        );
        assert_eq!(
            error_of("generated:+5"),
            format!("source `generated:+5`: size `+5` {not_a_number}")
        );
        assert_eq!(
            error_of("generated:K"),
            format!("source `generated:K`: size `K` {not_a_number}")
        );
        assert_eq!(
            error_of("generated:99999999999G"),
            "source `generated:99999999999G`: size `99999999999G` is too large"
        );
        assert_eq!(
            error_of("generated:1M:x"),
            "source `generated:1M:x`: SEED `x` is not a non-negative integer"
        );
        assert_eq!(
            error_of("generated:1M:-1"),
            "source `generated:1M:-1`: SEED `-1` is not a non-negative integer"
        );
    }

    #[test]
    fn sizes_are_powers_of_1024() {
        let ok = |text: &str| parse_size(text).expect(text);
        assert_eq!(ok("0"), 0);
        assert_eq!(ok("1500"), 1500);
        assert_eq!(ok("2k"), 2048);
        assert_eq!(ok("100M"), 100 << 20);
        assert_eq!(ok("16G"), 16 << 30);
        assert_eq!(ok("18446744073709551615"), u64::MAX);
        assert_eq!(
            parse_size("1.5G").map_err(|e| e.to_string()),
            Err("size `1.5G` is not a number with an optional K, M or G suffix".to_owned())
        );
        assert_eq!(
            parse_size("18446744073709551616").map_err(|e| e.to_string()),
            Err("size `18446744073709551616` is too large".to_owned())
        );
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_779_321_600 + 8 * 3600), "2026-05-21T08:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }
}
