//! Walking and hashing a plugin directory: the checks behind `seal` and
//! `verify`.
//!
//! A directory verifies only when its files are *exactly* the manifest's
//! entries: cargo's `.cargo-checksum.json` checks only the files it lists and
//! misses an added one, which is how a stray library or a planted script
//! would slip in. Symlinks, special files, non-UTF-8 names and names
//! `sha256sum` cannot read back are refused rather than followed or skipped.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

use sha2::{Digest as _, Sha256};
use walkdir::WalkDir;

use super::manifest::{check_relative_path, Entry, Manifest, Sha256Digest, MANIFEST_FILE};

/// One reason a directory does not verify. Each names the file at fault.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Problem {
    /// The directory is absent or not a directory.
    NotADirectory { path: String },
    /// There is no manifest.
    ManifestMissing,
    /// The manifest cannot be read or parsed.
    ManifestInvalid { reason: String },
    /// The header's artifact digest does not match the entry lines.
    ManifestEdited { claimed: Sha256Digest, computed: Sha256Digest },
    /// A file the manifest does not list.
    Unlisted { path: String },
    /// A listed file that is absent.
    Missing { path: String },
    /// A listed file whose contents changed.
    Changed { path: String, expected: Sha256Digest, actual: Sha256Digest },
    /// A symbolic link, which is never followed.
    Symlink { path: String },
    /// A FIFO, socket or device.
    SpecialFile { path: String },
    /// A name that is not UTF-8 (shown lossily).
    NonUtf8Name { path: String },
    /// A name the manifest format cannot carry.
    BadName { path: String, reason: String },
    /// A file that could not be read.
    Unreadable { path: String, reason: String },
    /// The manifest's library is not one of its entries.
    LibraryNotListed { path: String },
    /// The lock file pins another digest for this name and version.
    PinMismatch { lock: String, pinned: Sha256Digest, actual: Sha256Digest },
    /// The lock file in use has no pin for this name and version.
    NotPinned { lock: String },
}

impl Problem {
    /// Whether this is about the lock file's pin rather than the tree.
    pub fn is_pin_problem(&self) -> bool {
        matches!(self, Problem::PinMismatch { .. } | Problem::NotPinned { .. })
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::NotADirectory { path } => write!(f, "{path}: not a directory"),
            Problem::ManifestMissing => write!(f, "{MANIFEST_FILE}: missing (seal the directory)"),
            Problem::ManifestInvalid { reason } => write!(f, "{MANIFEST_FILE}: {reason}"),
            Problem::ManifestEdited { claimed, computed } => write!(
                f,
                "{MANIFEST_FILE}: edited: artifact_sha256 is {claimed} but its entries hash to {computed}"
            ),
            Problem::Unlisted { path } => write!(f, "{path}: not listed in the manifest"),
            Problem::Missing { path } => write!(f, "{path}: listed but missing"),
            Problem::Changed { path, expected, actual } => {
                write!(f, "{path}: contents changed (expected sha256 {expected}, found {actual})")
            }
            Problem::Symlink { path } => write!(f, "{path}: symbolic link (refused, never followed)"),
            Problem::SpecialFile { path } => write!(f, "{path}: special file (refused)"),
            Problem::NonUtf8Name { path } => write!(f, "{path}: file name is not UTF-8"),
            Problem::BadName { path, reason } => write!(f, "{path}: {reason}"),
            Problem::Unreadable { path, reason } => write!(f, "{path}: unreadable: {reason}"),
            Problem::LibraryNotListed { path } => {
                write!(f, "{MANIFEST_FILE}: library `{path}` is not one of its entries")
            }
            Problem::PinMismatch { lock, pinned, actual } => write!(
                f,
                "{MANIFEST_FILE}: artifact_sha256 {actual} does not match the pin {pinned} in {lock}"
            ),
            Problem::NotPinned { lock } => {
                write!(f, "{MANIFEST_FILE}: this name and version are not pinned in {lock}")
            }
        }
    }
}

/// What the walk found: the regular files, plus anything refused outright.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files other than the manifest, relative and sorted.
    pub files: Vec<String>,
    /// Entries that can never be part of a sealed tree.
    pub problems: Vec<Problem>,
}

/// Walks `dir` without following links.
pub fn scan(dir: &Path) -> Scan {
    let mut scan = Scan::default();
    let walk = WalkDir::new(dir).follow_links(false).min_depth(1).sort_by_file_name();
    for entry in walk {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                let path = err
                    .path()
                    .and_then(|p| p.strip_prefix(dir).ok())
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string());
                let reason = err.io_error().map_or_else(|| err.to_string(), |e| e.to_string());
                scan.problems.push(Problem::Unreadable { path, reason });
                continue;
            }
        };
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let Some(path) = relative.to_str().map(str::to_owned) else {
            scan.problems.push(Problem::NonUtf8Name { path: relative.to_string_lossy().into() });
            continue;
        };
        let kind = entry.file_type();
        if kind.is_symlink() {
            scan.problems.push(Problem::Symlink { path });
        } else if kind.is_dir() {
            continue;
        } else if !kind.is_file() {
            scan.problems.push(Problem::SpecialFile { path });
        } else if let Err(reason) = check_relative_path(&path) {
            scan.problems.push(Problem::BadName { path, reason: reason.to_owned() });
        } else if path != MANIFEST_FILE {
            scan.files.push(path);
        }
    }
    scan
}

/// Hashes everything `reader` yields.
pub fn hash_reader(mut reader: impl Read, buf: &mut [u8]) -> io::Result<Sha256Digest> {
    let mut hasher = Sha256::new();
    loop {
        match reader.read(buf) {
            Ok(0) => return Ok(Sha256Digest(hasher.finalize().into())),
            Ok(n) => hasher.update(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Opens a file for reading without following a final symlink and without
/// blocking on a FIFO, and refuses anything that is not a regular file.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.file_type().is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
}

const HASH_BUFFER: usize = 1 << 20;

/// Hashes `paths` under `dir`, on as many threads as there are cores and
/// files. Results come back in the order of `paths`.
pub fn hash_files(dir: &Path, paths: &[&str]) -> Vec<io::Result<Sha256Digest>> {
    let threads = thread::available_parallelism().map_or(1, |n| n.get()).min(paths.len()).max(1);
    if threads == 1 {
        // One file (the common case when loading): no thread to start.
        let mut buf = vec![0u8; HASH_BUFFER];
        return paths
            .iter()
            .map(|path| open_regular(&dir.join(path)).and_then(|f| hash_reader(f, &mut buf)))
            .collect();
    }
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<io::Result<Sha256Digest>>> = Vec::new();
    results.resize_with(paths.len(), || None);
    thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buf = vec![0u8; HASH_BUFFER];
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(path) = paths.get(index) else { break done };
                        let digest =
                            open_regular(&dir.join(path)).and_then(|f| hash_reader(f, &mut buf));
                        done.push((index, digest));
                    }
                })
            })
            .collect();
        for worker in workers {
            // A hashing thread only panics on a bug; surface it as an error
            // for the files it had not reported rather than aborting.
            if let Ok(done) = worker.join() {
                for (index, digest) in done {
                    results[index] = Some(digest);
                }
            }
        }
    });
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(io::Error::other("hashing thread panicked"))))
        .collect()
}

/// The outcome of verifying one directory.
#[derive(Debug, Clone)]
pub struct Verified {
    /// The directory as given.
    pub dir: PathBuf,
    /// The manifest, when it could be parsed.
    pub manifest: Option<Manifest>,
    /// The sha256 of the manifest file itself, as the field reports quote it.
    pub manifest_sha256: Option<Sha256Digest>,
    /// Everything wrong, in a stable order; empty means verified.
    pub problems: Vec<Problem>,
    /// Whether the lock file's pin matched; `None` when no lock was used.
    pub pinned: Option<bool>,
}

impl Verified {
    /// Whether the directory verified.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies `dir` against its manifest. `prehashed` supplies digests the
/// caller already computed from bytes it holds (the loader hashes the sealed
/// copy of the library it will load); those files are not read again.
pub fn verify(dir: &Path, prehashed: &[(&str, Sha256Digest)]) -> Verified {
    let mut out = Verified {
        dir: dir.to_owned(),
        manifest: None,
        manifest_sha256: None,
        problems: vec![],
        pinned: None,
    };
    if !dir.is_dir() {
        out.problems.push(Problem::NotADirectory { path: dir.display().to_string() });
        return out;
    }
    let manifest_path = dir.join(MANIFEST_FILE);
    let text = match open_regular(&manifest_path).and_then(|mut f| {
        let mut text = String::new();
        f.read_to_string(&mut text).map(|_| text)
    }) {
        Ok(text) => text,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            out.problems.push(Problem::ManifestMissing);
            return out;
        }
        Err(err) => {
            out.problems.push(Problem::ManifestInvalid { reason: err.to_string() });
            return out;
        }
    };
    out.manifest_sha256 = Some(Sha256Digest::of(text.as_bytes()));
    let manifest = match Manifest::parse(&text) {
        Ok(manifest) => manifest,
        Err(err) => {
            out.problems.push(Problem::ManifestInvalid { reason: err.to_string() });
            return out;
        }
    };

    let computed = manifest.computed_artifact_sha256();
    if computed != manifest.artifact_sha256 {
        out.problems.push(Problem::ManifestEdited { claimed: manifest.artifact_sha256, computed });
    }
    if manifest.digest_of(&manifest.library).is_none() {
        out.problems.push(Problem::LibraryNotListed { path: manifest.library.clone() });
    }

    let scan = scan(dir);
    out.problems.extend(scan.problems);
    let present: std::collections::BTreeSet<&str> = scan.files.iter().map(String::as_str).collect();
    for path in &scan.files {
        if manifest.digest_of(path).is_none() {
            out.problems.push(Problem::Unlisted { path: path.clone() });
        }
    }

    let mut to_hash = Vec::new();
    for entry in &manifest.entries {
        if !present.contains(entry.path.as_str()) {
            // A listed path can be absent or something other than a regular
            // file; the scan already reported the latter.
            if !out.problems.iter().any(|p| names(p, &entry.path)) {
                out.problems.push(Problem::Missing { path: entry.path.clone() });
            }
        } else if let Some((_, digest)) = prehashed.iter().find(|(p, _)| *p == entry.path) {
            compare(&mut out.problems, entry, Ok(*digest));
        } else {
            to_hash.push(entry);
        }
    }
    let paths: Vec<&str> = to_hash.iter().map(|e| e.path.as_str()).collect();
    for (entry, digest) in to_hash.iter().zip(hash_files(dir, &paths)) {
        compare(&mut out.problems, entry, digest);
    }
    out.manifest = Some(manifest);
    out
}

fn names(problem: &Problem, path: &str) -> bool {
    matches!(problem,
        Problem::Symlink { path: p } | Problem::SpecialFile { path: p } | Problem::Unreadable { path: p, .. }
        | Problem::BadName { path: p, .. } if p == path)
}

fn compare(problems: &mut Vec<Problem>, entry: &Entry, digest: io::Result<Sha256Digest>) {
    match digest {
        Ok(actual) if actual == entry.sha256 => {}
        Ok(actual) => problems.push(Problem::Changed {
            path: entry.path.clone(),
            expected: entry.sha256,
            actual,
        }),
        Err(err) => {
            problems.push(Problem::Unreadable { path: entry.path.clone(), reason: err.to_string() })
        }
    }
}

/// Why a directory could not be sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Entries that cannot be sealed (symlinks, special files, bad names).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Refused(Vec<Problem>),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file at fault.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// Hashes every file in `dir` and writes its manifest, atomically: the new
/// manifest replaces the old one in a single rename.
pub fn seal(dir: &Path, name: &str, version: &str, library: &str) -> Result<Manifest, SealError> {
    let scan = scan(dir);
    if !scan.problems.is_empty() {
        return Err(SealError::Refused(scan.problems));
    }
    if !scan.files.iter().any(|f| f == library) {
        return Err(SealError::Io {
            path: library.to_owned(),
            source: io::Error::new(io::ErrorKind::NotFound, "library not found in the directory"),
        });
    }
    let paths: Vec<&str> = scan.files.iter().map(String::as_str).collect();
    let mut entries = Vec::with_capacity(paths.len());
    for (path, digest) in paths.iter().zip(hash_files(dir, &paths)) {
        let sha256 = digest.map_err(|source| SealError::Io { path: (*path).to_owned(), source })?;
        entries.push(Entry { sha256, path: (*path).to_owned() });
    }
    let manifest = Manifest::new(name, version, library, entries);
    write_atomically(&dir.join(MANIFEST_FILE), manifest.render().as_bytes())
        .map_err(|source| SealError::Io { path: MANIFEST_FILE.to_owned(), source })?;
    Ok(manifest)
}

/// Writes `bytes` to `path` through a temporary file in the same directory
/// and a rename, so a reader sees the old file or the new one, never half;
/// then syncs, so the new file survives a crash of the machine.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_file(path, bytes, true)
}

/// [`write_atomically`], with the sync optional: progress updates that the
/// next update supersedes need atomicity, not durability.
pub fn replace_file(path: &Path, bytes: &[u8], sync: bool) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = path.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o644).open(&tmp)?;
        file.write_all(bytes)?;
        if sync {
            file.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        if sync {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("libx.so"), b"\x7fELF fake").expect("write");
        fs::create_dir(dir.path().join("docs")).expect("mkdir");
        fs::write(dir.path().join("docs/README.md"), b"hello").expect("write");
        seal(dir.path(), "x", "1.0", "libx.so").expect("seal");
        dir
    }

    #[test]
    fn a_sealed_directory_verifies() {
        let dir = sealed_dir();
        let verified = verify(dir.path(), &[]);
        assert_eq!(verified.problems, vec![]);
        let paths: Vec<_> =
            verified.manifest.expect("manifest").entries.into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["docs/README.md", "libx.so"]);
    }

    #[test]
    fn every_problem_is_reported_not_just_the_first() {
        let dir = sealed_dir();
        fs::write(dir.path().join("extra.sh"), b"#!/bin/sh").expect("write");
        fs::remove_file(dir.path().join("docs/README.md")).expect("rm");
        let problems = verify(dir.path(), &[]).problems;
        assert_eq!(
            problems,
            vec![
                Problem::Unlisted { path: "extra.sh".into() },
                Problem::Missing { path: "docs/README.md".into() },
            ]
        );
    }

    #[test]
    fn a_prehashed_digest_replaces_reading_the_file() {
        let dir = sealed_dir();
        let wrong = Sha256Digest::of(b"other bytes");
        let problems = verify(dir.path(), &[("libx.so", wrong)]).problems;
        assert!(
            matches!(&problems[..], [Problem::Changed { path, actual, .. }] if path == "libx.so" && *actual == wrong)
        );
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = sealed_dir();
        let fifo = dir.path().join("pipe");
        let c_path = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: `c_path` is a valid NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert_eq!(
            verify(dir.path(), &[]).problems,
            vec![Problem::SpecialFile { path: "pipe".into() }]
        );
    }
}
