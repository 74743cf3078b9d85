//! The records a dry run feeds to the orchestrator: source documents, their
//! versions, and the information units already cut from them.
//!
//! These are the host's plain-Rust view of the knowledge base's tables, kept
//! free of any storage or ABI concern so that every source (embedded,
//! directory, generated, later PostgreSQL) produces the same shapes and the
//! dry run can compare plugins on identical input. Field meanings follow the
//! orchestrator's schema; the comments below state the conventions the host
//! relies on.

use serde::{Deserialize, Serialize};

/// A Markdown document of the knowledge base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceDocument {
    /// Unique among documents of one source.
    pub id: i64,
    /// The document's path in the knowledge base, `/`-separated.
    pub kb_path: String,
    /// A human title (the first heading, or a name derived from the path).
    pub title: String,
    /// `"active"` or `"archived"`; the orchestrator retires the units of an
    /// archived document.
    pub status: String,
    /// RFC 3339 in UTC, e.g. `2026-05-21T08:00:00Z`.
    pub updated_at: String,
}

/// One revision of a document's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceVersion {
    /// Unique among versions of one source.
    pub id: i64,
    /// The [`SourceDocument::id`] this is a revision of.
    pub document_id: i64,
    /// 1 for the first revision; the highest revision is the latest.
    pub revision: i64,
    /// The Markdown text, line endings as stored.
    pub body: String,
    /// Lowercase hex sha256 of `body`'s bytes.
    pub body_sha256: String,
    /// RFC 3339 in UTC.
    pub created_at: String,
}

/// A unit cut from one version of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InformationUnit {
    /// Unique among units of one source.
    pub id: i64,
    /// The document the unit belongs to.
    pub document_id: i64,
    /// The version the unit was cut from (not necessarily the latest).
    pub version_id: i64,
    /// Position of the unit within its version, from 0.
    pub ordinal: i64,
    /// The heading text that opens the unit; empty for a preamble.
    pub heading: String,
    /// A URL fragment for the heading, unique within the version; empty for
    /// a preamble.
    pub anchor: String,
    /// The unit's text, heading line included; a version's units
    /// concatenated in ordinal order give back its body.
    pub body: String,
    /// Lowercase hex sha256 of `body`'s bytes.
    pub body_sha256: String,
    /// `"active"`, `"superseded"` or `"retired"`.
    pub lifecycle: String,
}

/// A slice of a source: some documents with everything a dry run needs about
/// them, so that batches can be processed independently and memory stays
/// bounded by the batch size rather than the corpus size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    /// The documents of this batch, in source order.
    pub documents: Vec<SourceDocument>,
    /// The latest version of each document, in the order of `documents`.
    pub versions: Vec<SourceVersion>,
    /// The active units of these documents, whichever version they were cut
    /// from, by document then ordinal.
    pub units: Vec<InformationUnit>,
}

impl RecordBatch {
    /// The body bytes this batch carries: its versions' bodies plus its
    /// units' bodies. Both are text a plugin has to read, so this is the
    /// measure for progress and throughput.
    pub fn bytes(&self) -> u64 {
        let versions: usize = self.versions.iter().map(|v| v.body.len()).sum();
        let units: usize = self.units.iter().map(|u| u.body.len()).sum();
        (versions + units) as u64
    }

    /// Whether `version` is pending: it is its document's latest (every
    /// version in a batch is) and no unit was cut from it.
    pub fn is_pending(&self, version: &SourceVersion) -> bool {
        !self.units.iter().any(|u| u.version_id == version.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(id: i64, body: &str) -> SourceVersion {
        SourceVersion {
            id,
            document_id: 1,
            revision: 1,
            body: body.to_owned(),
            body_sha256: String::new(),
            created_at: String::new(),
        }
    }

    fn unit(version_id: i64, body: &str) -> InformationUnit {
        InformationUnit {
            id: 1,
            document_id: 1,
            version_id,
            ordinal: 0,
            heading: String::new(),
            anchor: String::new(),
            body: body.to_owned(),
            body_sha256: String::new(),
            lifecycle: "active".to_owned(),
        }
    }

    #[test]
    fn bytes_counts_version_and_unit_bodies() {
        let batch = RecordBatch {
            documents: Vec::new(),
            versions: vec![version(10, "abc"), version(11, "Über")],
            units: vec![unit(9, "12345")],
        };
        // "Über" is 5 bytes in UTF-8: bytes, not characters.
        assert_eq!(batch.bytes(), 3 + 5 + 5);
    }

    #[test]
    fn pending_means_no_unit_of_that_version() {
        let batch = RecordBatch {
            documents: Vec::new(),
            versions: vec![version(10, "a"), version(11, "b")],
            units: vec![unit(11, "b")],
        };
        assert!(batch.is_pending(&batch.versions[0]));
        assert!(!batch.is_pending(&batch.versions[1]));
    }
}
