//! The in-memory stand-in for the knowledge base during a dry run.
//!
//! A dry run must show what a live run would write, and some phases depend on
//! what earlier phases wrote (verification reads back the inserted units,
//! lifecycle changes look at them). The simulator holds one batch's rows and
//! takes those writes instead of the database. Everything is keyed in
//! `BTreeMap`s so that every walk over it, and so every plan, comes out in
//! the same order on every run.

use crate::domain::{InformationUnit, RecordBatch, SourceDocument, SourceVersion};
use std::collections::BTreeMap;

/// One batch's documents, versions and units, plus what the run wrote.
#[derive(Clone, Debug, Default)]
pub struct Simulator {
    pub(crate) documents: BTreeMap<i64, SourceDocument>,
    /// The latest version of each document, keyed by version id.
    pub(crate) versions: BTreeMap<i64, SourceVersion>,
    pub(crate) units: BTreeMap<i64, InformationUnit>,
    /// The id the next inserted unit gets; counts down from -1 so inserted
    /// units can never collide with the database's positive ids.
    next_unit_id: i64,
}

impl Simulator {
    /// Replaces the whole state with `batch`'s rows, taking them over.
    ///
    /// When a document has several versions in the batch, the one with the
    /// highest revision (then the highest id) is kept as its latest. Returns
    /// the versions that were dropped for that reason, in batch order, so
    /// the caller can report them.
    pub fn load(&mut self, batch: RecordBatch) -> Vec<SourceVersion> {
        let RecordBatch { documents, versions, units } = batch;
        self.documents = documents.into_iter().map(|d| (d.id, d)).collect();
        // Positions in the batch of each document's latest version so far.
        let mut latest: BTreeMap<i64, usize> = BTreeMap::new();
        let mut dropped = Vec::new();
        for (at, version) in versions.iter().enumerate() {
            match latest.get(&version.document_id).map(|&kept| (kept, &versions[kept])) {
                Some((_, kept)) if (kept.revision, kept.id) >= (version.revision, version.id) => {
                    dropped.push(at);
                }
                Some((kept, _)) => {
                    dropped.push(kept);
                    latest.insert(version.document_id, at);
                }
                None => {
                    latest.insert(version.document_id, at);
                }
            }
        }
        dropped.sort_unstable();
        let mut kept = vec![true; versions.len()];
        for &at in &dropped {
            kept[at] = false;
        }
        let (mut latest_versions, mut dropped_versions) = (BTreeMap::new(), Vec::new());
        for (version, kept) in versions.into_iter().zip(kept) {
            if kept {
                latest_versions.insert(version.id, version);
            } else {
                dropped_versions.push(version);
            }
        }
        self.versions = latest_versions;
        self.units = units.into_iter().map(|u| (u.id, u)).collect();
        self.next_unit_id = -1;
        dropped_versions
    }

    /// The documents, by id.
    pub fn documents(&self) -> &BTreeMap<i64, SourceDocument> {
        &self.documents
    }

    /// The latest version of each document, by version id.
    pub fn versions(&self) -> &BTreeMap<i64, SourceVersion> {
        &self.versions
    }

    /// Every unit, loaded or inserted, by id (inserted units have negative
    /// ids).
    pub fn units(&self) -> &BTreeMap<i64, InformationUnit> {
        &self.units
    }

    /// Stores a new unit under the next synthetic id and returns that id.
    /// The unit's own `id` field is overwritten.
    pub(crate) fn insert_unit(&mut self, mut unit: InformationUnit) -> i64 {
        let id = self.next_unit_id;
        self.next_unit_id -= 1;
        unit.id = id;
        self.units.insert(id, unit);
        id
    }
}
