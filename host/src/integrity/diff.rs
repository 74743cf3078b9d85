//! The difference between two verified trees, from their manifests alone:
//! a manifest lists every file with its digest, so once both directories
//! verified, comparing the two lists is as exact as comparing the bytes,
//! without reading them again.

use std::collections::BTreeMap;

use serde::Serialize;

use super::manifest::{Manifest, Sha256Digest};

/// A file present on both sides with different contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    /// The path, `/`-separated.
    pub path: String,
    /// Its digest in A.
    pub a_sha256: Sha256Digest,
    /// Its digest in B.
    pub b_sha256: Sha256Digest,
}

/// A file on one side only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OneSide {
    /// The path, `/`-separated.
    pub path: String,
    /// Its digest.
    pub sha256: Sha256Digest,
}

/// How tree B differs from tree A, each list sorted by path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TreeDiff {
    /// In both, with different contents.
    pub changed: Vec<Changed>,
    /// Only in A: gone in B.
    pub only_in_a: Vec<OneSide>,
    /// Only in B: new in B.
    pub only_in_b: Vec<OneSide>,
}

impl TreeDiff {
    /// No file differs.
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.only_in_a.is_empty() && self.only_in_b.is_empty()
    }
}

/// Compares the file lists of two manifests.
pub fn diff(a: &Manifest, b: &Manifest) -> TreeDiff {
    let b_files: BTreeMap<&str, Sha256Digest> =
        b.entries.iter().map(|e| (e.path.as_str(), e.sha256)).collect();
    let a_files: BTreeMap<&str, Sha256Digest> =
        a.entries.iter().map(|e| (e.path.as_str(), e.sha256)).collect();
    let mut out = TreeDiff::default();
    for (path, a_sha256) in &a_files {
        match b_files.get(path) {
            Some(b_sha256) if b_sha256 != a_sha256 => out.changed.push(Changed {
                path: (*path).to_owned(),
                a_sha256: *a_sha256,
                b_sha256: *b_sha256,
            }),
            Some(_) => {}
            None => out.only_in_a.push(OneSide { path: (*path).to_owned(), sha256: *a_sha256 }),
        }
    }
    for (path, sha256) in &b_files {
        if !a_files.contains_key(path) {
            out.only_in_b.push(OneSide { path: (*path).to_owned(), sha256: *sha256 });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::manifest::Entry;

    fn manifest(files: &[(&str, &[u8])]) -> Manifest {
        Manifest {
            name: "p".into(),
            version: "1".into(),
            library: "lib.so".into(),
            artifact_sha256: Sha256Digest::of(b""),
            entries: files
                .iter()
                .map(|(path, bytes)| Entry {
                    path: (*path).into(),
                    sha256: Sha256Digest::of(bytes),
                })
                .collect(),
        }
    }

    #[test]
    fn changed_gone_and_new_files_are_told_apart() {
        let a = manifest(&[("README.md", b"a"), ("lib.so", b"1"), ("old.txt", b"x")]);
        let b = manifest(&[("README.md", b"a"), ("lib.so", b"2"), ("new.txt", b"y")]);
        let d = diff(&a, &b);
        assert_eq!(d.changed.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["lib.so"]);
        assert_eq!(d.only_in_a.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["old.txt"]);
        assert_eq!(d.only_in_b.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(), ["new.txt"]);
        assert!(!d.is_empty());
        assert!(diff(&a, &a).is_empty());
    }
}
