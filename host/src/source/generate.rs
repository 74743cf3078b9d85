//! `--source generated:BYTES[:SEED]` and `sidecar gen-corpus`: corpora of any
//! size from the embedded corpus's templates, for benchmarks.
//!
//! The documents come from the same generator as the embedded corpus (one
//! generator, so a benchmark exercises the same Markdown the tests check),
//! with a weighted mix instead of a fixed schedule: mostly `plain`, 2% of
//! each other case. Documents are generated batch by batch until the latest
//! bodies total at least the target, so memory is bounded by a batch, never
//! the corpus. Since a document depends only on the seed and its id, a
//! smaller corpus is a prefix of a larger one with the same seed.
//!
//! Version and unit ids start far above the embedded corpus's bases
//! ([`super::VERSION_ID_BASE`], [`super::UNIT_ID_BASE`]) so that the kinds
//! stay in disjoint ranges whatever the size.

use std::fs;
use std::io;
use std::path::Path;

use super::embedded::{spec_digest, CorpusBatches, IdBases, Plan};
use super::{Batches, Source, SourceIdentity};

/// The seed of `generated:BYTES` without `:SEED`, the same as
/// `gen-corpus`'s default, so `generated:100M` and `dir:` on
/// `gen-corpus --size 100M` read the same bodies.
pub const DEFAULT_SEED: u64 = 1;

/// First version id of a generated corpus (a billion versions before it
/// could reach the units).
pub const GENERATED_VERSION_ID_BASE: i64 = 1_000_000_000;

/// First unit id of a generated corpus.
pub const GENERATED_UNIT_ID_BASE: i64 = 1_000_000_000_000;

/// How many documents `write_markdown_tree` holds at once.
const BATCH: usize = 256;

/// A generated corpus of at least `target_bytes` bytes of latest bodies.
#[derive(Debug)]
pub struct GeneratedSource {
    target_bytes: u64,
    seed: u64,
}

impl GeneratedSource {
    /// A corpus spec; nothing is generated until it is read.
    pub fn new(target_bytes: u64, seed: u64) -> Self {
        Self { target_bytes, seed }
    }

    /// The body bytes the corpus reaches or passes by less than a document.
    pub fn target_bytes(&self) -> u64 {
        self.target_bytes
    }

    /// The generator's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    fn corpus(&self, max_documents: usize) -> CorpusBatches<'static> {
        let ids = IdBases { version: GENERATED_VERSION_ID_BASE, unit: GENERATED_UNIT_ID_BASE };
        let plan = Plan::Weighted { target_bytes: self.target_bytes };
        CorpusBatches::new(self.seed, plan, ids, max_documents)
    }
}

impl Source for GeneratedSource {
    fn describe(&self) -> SourceIdentity {
        SourceIdentity {
            kind: "generated".to_owned(),
            location: format!("generated:{}:{}", self.target_bytes, self.seed),
            digest: spec_digest(
                "generated",
                self.seed,
                &format!("target_bytes={}", self.target_bytes),
            ),
            // Knowing the count means generating the whole corpus.
            documents: None,
            database: None,
        }
    }

    fn batches(&self, max_documents: usize) -> Batches<'_> {
        Box::new(self.corpus(max_documents))
    }
}

/// Writes the latest body of every document of `GeneratedSource::new(
/// target_bytes, seed)` to `out/<kb_path>`, creating directories as needed
/// and replacing files already there. Returns the bytes written.
pub fn write_markdown_tree(out: &Path, target_bytes: u64, seed: u64) -> io::Result<u64> {
    // Even an empty corpus leaves a directory `--source dir:` can name.
    fs::create_dir_all(out)?;
    let mut written = 0;
    let source = GeneratedSource::new(target_bytes, seed);
    for batch in source.corpus(BATCH) {
        let batch = batch.map_err(io::Error::other)?;
        // Versions are in the order of their documents, one each.
        for (document, version) in batch.documents.iter().zip(&batch.versions) {
            let path = out.join(&document.kb_path);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)?;
            }
            fs::write(&path, &version.body)?;
            written += version.body.len() as u64;
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::embedded::tests::all_batches;
    use crate::source::embedded::{case_of, Case};
    use crate::source::{DirSource, RecordBatch};
    use std::collections::{BTreeMap, HashSet};

    fn merged(source: &dyn Source, max: usize) -> RecordBatch {
        let mut all = RecordBatch::default();
        for batch in all_batches(source, max) {
            all.documents.extend(batch.documents);
            all.versions.extend(batch.versions);
            all.units.extend(batch.units);
        }
        all
    }

    fn body_bytes(batch: &RecordBatch) -> u64 {
        batch.versions.iter().map(|v| v.body.len() as u64).sum()
    }

    #[test]
    fn reaches_the_target_and_stops_within_a_document() {
        for target in [0, 1, 10_000, 1 << 20] {
            let all = merged(&GeneratedSource::new(target, 3), 100);
            let bytes = body_bytes(&all);
            let last = all.versions.last().map_or(0, |v| v.body.len() as u64);
            assert!(bytes >= target, "{bytes} < {target}");
            // Stopping near: without its last document it was short.
            assert!(bytes - last < target || target == 0, "{bytes} {last} {target}");
            assert!(last < 16 << 10);
        }
        assert!(merged(&GeneratedSource::new(0, 3), 10).documents.is_empty());
    }

    #[test]
    fn deterministic_regroupable_and_prefix_stable() {
        let source = GeneratedSource::new(300 << 10, 11);
        let first = all_batches(&source, 33);
        assert_eq!(first, all_batches(&GeneratedSource::new(300 << 10, 11), 33));
        assert_eq!(
            serde_json::to_vec(&first).expect("json"),
            serde_json::to_vec(&all_batches(&source, 33)).expect("json")
        );
        assert!(first.iter().all(|b| !b.documents.is_empty() && b.documents.len() <= 33));
        assert_eq!(merged(&source, 33), merged(&source, 1000));
        // A smaller corpus with the same seed is a prefix of a larger one.
        let small = merged(&GeneratedSource::new(100 << 10, 11), 50);
        let large = merged(&source, 50);
        assert_eq!(small.versions[..], large.versions[..small.versions.len()]);
        // Another seed gives other bodies.
        let other = merged(&GeneratedSource::new(100 << 10, 12), 50);
        assert_ne!(other.versions[0].body, small.versions[0].body);
    }

    #[test]
    fn mix_is_mostly_plain_with_every_case() {
        let all = merged(&GeneratedSource::new(4 << 20, DEFAULT_SEED), 500);
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for doc in &all.documents {
            *counts.entry(case_of(&doc.kb_path).expect("case")).or_default() += 1;
        }
        let total = all.documents.len();
        assert!(counts["plain"] * 100 > total * 70, "{counts:?}");
        for case in Case::ALL {
            assert!(counts.get(case.name()).copied().unwrap_or(0) >= 3, "{counts:?}");
        }
        let ids: HashSet<i64> = all.versions.iter().map(|v| v.id).collect();
        assert_eq!(ids.len(), total);
        assert!(ids
            .iter()
            .all(|&id| (GENERATED_VERSION_ID_BASE..GENERATED_UNIT_ID_BASE).contains(&id)));
        let units: HashSet<i64> = all.units.iter().map(|u| u.id).collect();
        assert_eq!(units.len(), all.units.len());
        assert!(units.iter().all(|&id| id >= GENERATED_UNIT_ID_BASE));
    }

    #[test]
    fn identity_names_size_and_seed() {
        let a = GeneratedSource::new(1000, 1).describe();
        assert_eq!(a.kind, "generated");
        assert_eq!(a.location, "generated:1000:1");
        assert_eq!(a, GeneratedSource::new(1000, 1).describe());
        assert_ne!(a.digest, GeneratedSource::new(1001, 1).describe().digest);
        assert_ne!(a.digest, GeneratedSource::new(1000, 2).describe().digest);
    }

    #[test]
    fn markdown_tree_reads_back_as_a_dir_source() {
        let out = tempfile::tempdir().expect("tempdir");
        let written = write_markdown_tree(out.path(), 200 << 10, 5).expect("write");
        let generated = merged(&GeneratedSource::new(200 << 10, 5), 64);
        assert_eq!(written, body_bytes(&generated));
        let dir = DirSource::open(out.path()).expect("open");
        let read = merged(&dir, 64);
        let mut expected: Vec<(&str, &str)> = generated
            .documents
            .iter()
            .zip(&generated.versions)
            .map(|(d, v)| (d.kb_path.as_str(), v.body.as_str()))
            .collect();
        expected.sort();
        let actual: Vec<(&str, &str)> = read
            .documents
            .iter()
            .zip(&read.versions)
            .map(|(d, v)| (d.kb_path.as_str(), v.body.as_str()))
            .collect();
        assert_eq!(actual, expected);
        let empty = out.path().join("empty");
        assert_eq!(write_markdown_tree(&empty, 0, 5).expect("write"), 0);
        assert!(empty.is_dir());
    }

    #[test]
    fn generated_kb_paths_are_unique() {
        let all = merged(&GeneratedSource::new(1 << 20, 4), 100);
        let paths: HashSet<&str> = all.documents.iter().map(|d| d.kb_path.as_str()).collect();
        assert_eq!(paths.len(), all.documents.len());
    }
}
