//! The records the IU cutter reads and writes, mirrored from the knowledge
//! base's tables.
//!
//! They are plain data so that a batch can cross the plugin boundary as JSON
//! and land in the in-memory simulator unchanged; field names match the
//! table columns, so an after-image in a plan reads like the row it stands
//! for.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The lifecycle of a unit that is current.
pub const LIFECYCLE_ACTIVE: &str = "active";
/// The lifecycle of a unit replaced by a unit of a newer version.
pub const LIFECYCLE_SUPERSEDED: &str = "superseded";
/// The lifecycle of a unit whose document was archived.
pub const LIFECYCLE_RETIRED: &str = "retired";
/// The status of a document that is cut.
pub const STATUS_ACTIVE: &str = "active";
/// The status of a document that is never cut and whose units are retired.
pub const STATUS_ARCHIVED: &str = "archived";

/// A document of the knowledge base (a row of `source_document`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SourceDocument {
    /// The primary key.
    pub id: i64,
    /// Where the document lives in the knowledge base, e.g. `ops/backup.md`.
    pub kb_path: String,
    /// The document's title.
    pub title: String,
    /// `"active"` or `"archived"`.
    pub status: String,
    /// When the document last changed (an opaque timestamp, never parsed).
    pub updated_at: String,
}

/// One revision of a document's text (a row of `source_version`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SourceVersion {
    /// The primary key.
    pub id: i64,
    /// The document this is a revision of.
    pub document_id: i64,
    /// The revision number; higher is newer.
    pub revision: i64,
    /// The exact Markdown text.
    pub body: String,
    /// Lowercase hex SHA-256 of `body`'s bytes.
    pub body_sha256: String,
    /// When the revision was recorded (an opaque timestamp, never parsed).
    pub created_at: String,
}

/// One section of one version (a row of `information_unit`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct InformationUnit {
    /// The primary key. Units the simulator creates get negative ids.
    pub id: i64,
    /// The document the unit belongs to.
    pub document_id: i64,
    /// The version the unit was cut from.
    pub version_id: i64,
    /// The unit's 0-based position in its version.
    pub ordinal: i64,
    /// The section's heading text (`""` for a preamble).
    pub heading: String,
    /// The section's anchor, unique within its version.
    pub anchor: String,
    /// The section's exact bytes.
    pub body: String,
    /// Lowercase hex SHA-256 of `body`'s bytes.
    pub body_sha256: String,
    /// `"active"`, `"superseded"` or `"retired"`.
    pub lifecycle: String,
}

/// What one batch of the orchestrator works on.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default)]
pub struct RecordBatch {
    /// The documents of the batch.
    pub documents: Vec<SourceDocument>,
    /// The latest version of each document.
    pub versions: Vec<SourceVersion>,
    /// The active units of these documents, of any version.
    pub units: Vec<InformationUnit>,
}

/// Lowercase hex SHA-256 of `bytes`, the digest format of every
/// `body_sha256` column.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let mut buf = [0u8; 64];
    hex_digest(bytes, &mut buf);
    // Hex digits are ASCII.
    String::from_utf8(buf.to_vec()).expect("hex digits are ASCII")
}

/// Writes the lowercase hex SHA-256 of `bytes` into `buf`, skipping the
/// per-character iterator `hex::encode` goes through (this runs once per unit
/// on the whole corpus, twice with verification).
fn hex_digest(bytes: &[u8], buf: &mut [u8; 64]) {
    // Encoding 32 bytes into 64 always fits; a failure here would be a bug
    // in this function, not bad input.
    hex::encode_to_slice(Sha256::digest(bytes), buf)
        .expect("a 32-byte digest encodes to exactly 64 hex digits");
}

/// Whether `expected` is the lowercase hex SHA-256 of `bytes`, without
/// allocating: verification runs once per unit on the whole corpus.
pub(crate) fn digest_matches(bytes: &[u8], expected: &str) -> bool {
    let mut buf = [0u8; 64];
    hex_digest(bytes, &mut buf);
    buf[..] == *expected.as_bytes()
}
