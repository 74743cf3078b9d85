//! `--source dir:PATH`: every `*.md` file under a directory as one active
//! document with one pending version.
//!
//! This is how an operator dry-runs a plugin on a checkout of the knowledge
//! base without a database. Opening the source walks the tree once, refusing
//! anything that would make the input ambiguous (a symbolic link, a name or
//! contents that are not UTF-8) with an error naming the file rather than
//! skipping it, and hashes every file for the identity digest. Batches then
//! read the files again, one batch at a time so memory stays bounded, and
//! refuse a file whose bytes changed since, so the digest in a report always
//! names what the plugin saw.
//!
//! Ids follow the sorted path order (documents from 1, versions from
//! [`VERSION_ID_BASE`]) and timestamps derive from ids, never from file
//! times, so a directory with the same bytes yields the same batches.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use super::embedded::created_at;
use super::record::{RecordBatch, SourceDocument, SourceVersion};
use super::{sha256_hex, Batches, Source, SourceError, SourceIdentity, VERSION_ID_BASE};
use crate::integrity::manifest::check_relative_path;
use crate::integrity::tree::open_regular;

/// The `*.md` files under a directory, checked and hashed.
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
    files: Vec<DirFile>,
    digest: String,
}

#[derive(Debug, Clone)]
struct DirFile {
    /// Relative to the root, `/`-separated; the document's `kb_path`.
    relative: String,
    /// Lowercase hex sha256 of the bytes seen when the source was opened.
    sha256: String,
}

impl DirSource {
    /// Walks `root` (a symlink as the root itself is followed: it is the
    /// operator's explicit choice), checks every entry and hashes every
    /// `*.md` file.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, SourceError> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(SourceError::NotADirectory { path: root });
        }
        let mut files = Vec::new();
        // Sorted so that, of several bad entries, the same one is reported
        // every time.
        let walk = WalkDir::new(&root).follow_links(false).min_depth(1).sort_by_file_name();
        for entry in walk {
            let entry = entry.map_err(|err| SourceError::Read {
                path: err.path().map_or_else(|| root.clone(), Path::to_path_buf),
                error: err.into(),
            })?;
            let path = entry.path();
            let Some(relative) = path.strip_prefix(&root).ok().and_then(Path::to_str) else {
                return Err(SourceError::NonUtf8Name { path: path.to_path_buf() });
            };
            let kind = entry.file_type();
            if kind.is_symlink() {
                return Err(SourceError::Symlink { path: path.to_path_buf() });
            }
            if kind.is_dir() || !relative.ends_with(".md") {
                continue;
            }
            if !kind.is_file() {
                return Err(SourceError::NotAFile { path: path.to_path_buf() });
            }
            // The digest's `sha256sum` lines cannot carry a newline, and a
            // kb_path has no backslash.
            check_relative_path(relative)
                .map_err(|reason| SourceError::BadName { path: path.to_path_buf(), reason })?;
            files.push(DirFile { relative: relative.to_owned(), sha256: String::new() });
        }
        if files.is_empty() {
            return Err(SourceError::NoDocuments { path: root });
        }
        // Byte order of the whole path, as `LC_ALL=C sort` would, rather than
        // the walk's per-directory order.
        files.sort_by(|a, b| a.relative.cmp(&b.relative));

        let mut listing = String::with_capacity(files.len() * 100);
        for file in &mut files {
            let body = read_document(&root, &file.relative)?;
            file.sha256 = sha256_hex(body.as_bytes());
            let _ = writeln!(listing, "{}  {}", file.sha256, file.relative);
        }
        let digest = sha256_hex(listing.as_bytes());
        Ok(Self { root, files, digest })
    }

    /// The directory this source reads.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Source for DirSource {
    /// The digest is the sha256 of the `sha256sum` lines of the files in
    /// byte order of their paths, so it can be reproduced with
    /// `find . -name '*.md' -type f | sed 's|^\./||' | LC_ALL=C sort | xargs sha256sum | sha256sum`.
    fn describe(&self) -> SourceIdentity {
        SourceIdentity {
            kind: "dir".to_owned(),
            location: self.root.display().to_string(),
            digest: self.digest.clone(),
            documents: Some(self.files.len() as u64),
            database: None,
        }
    }

    fn batches(&self, max_documents: usize) -> Batches<'_> {
        Box::new(DirBatches { source: self, next: 0, max_documents: max_documents.max(1) })
    }
}

struct DirBatches<'a> {
    source: &'a DirSource,
    next: usize,
    max_documents: usize,
}

impl Iterator for DirBatches<'_> {
    type Item = Result<RecordBatch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        let files = &self.source.files;
        let start = self.next;
        if start >= files.len() {
            return None;
        }
        let end = files.len().min(start.saturating_add(self.max_documents));
        let mut batch = RecordBatch::default();
        for (index, file) in files[start..end].iter().enumerate().map(|(i, f)| (start + i, f)) {
            match self.record(index, file) {
                Ok((document, version)) => {
                    batch.documents.push(document);
                    batch.versions.push(version);
                }
                Err(err) => {
                    // An error ends the sequence.
                    self.next = files.len();
                    return Some(Err(err));
                }
            }
        }
        self.next = end;
        Some(Ok(batch))
    }
}

impl DirBatches<'_> {
    fn record(
        &self,
        index: usize,
        file: &DirFile,
    ) -> Result<(SourceDocument, SourceVersion), SourceError> {
        let body = read_document(&self.source.root, &file.relative)?;
        let sha256 = sha256_hex(body.as_bytes());
        if sha256 != file.sha256 {
            return Err(SourceError::Changed {
                path: self.source.root.join(&file.relative),
                expected: file.sha256.clone(),
                actual: sha256,
            });
        }
        let id = index as i64 + 1;
        let created = created_at(id, 1);
        let title = first_heading(&body).unwrap_or_else(|| stem(&file.relative).to_owned());
        let document = SourceDocument {
            id,
            kb_path: file.relative.clone(),
            title,
            status: "active".to_owned(),
            updated_at: created.clone(),
        };
        let version = SourceVersion {
            id: VERSION_ID_BASE + index as i64,
            document_id: id,
            revision: 1,
            body,
            body_sha256: sha256,
            created_at: created,
        };
        Ok((document, version))
    }
}

/// Reads one document without following a symlink planted since the walk.
fn read_document(root: &Path, relative: &str) -> Result<String, SourceError> {
    let path = root.join(relative);
    let mut bytes = Vec::new();
    open_regular(&path)
        .and_then(|mut file| file.read_to_end(&mut bytes))
        .map_err(|error| SourceError::Read { path: path.clone(), error })?;
    String::from_utf8(bytes).map_err(|err| SourceError::NonUtf8Contents {
        path,
        offset: err.utf8_error().valid_up_to(),
    })
}

/// `guides/setup.md` → `setup`.
fn stem(relative: &str) -> &str {
    let name = relative.rsplit('/').next().unwrap_or(relative);
    name.strip_suffix(".md").unwrap_or(name)
}

/// The text of the first heading (ATX or setext, outside front matter and
/// fenced code), for a document's title. Inline markup is kept as written.
pub(crate) fn first_heading(body: &str) -> Option<String> {
    let mut lines = body.lines();
    let mut rest = body.lines();
    if lines.next() == Some("---") {
        // YAML front matter: skip to its closing delimiter, if any.
        if lines.by_ref().any(|line| line == "---" || line == "...") {
            rest = lines;
        }
    }
    let mut fence: Option<(char, usize)> = None;
    let mut paragraph: Vec<&str> = Vec::new();
    for line in rest {
        let trimmed = line.trim_start_matches(' ');
        let indented = line.len() - trimmed.len() >= 4;
        if let Some((mark, width)) = fence {
            let run = trimmed.chars().take_while(|&c| c == mark).count();
            if !indented && run >= width && trimmed[run..].trim().is_empty() {
                fence = None;
            }
            continue;
        }
        if indented && paragraph.is_empty() {
            continue;
        }
        let trimmed_end = trimmed.trim_end();
        for mark in ['`', '~'] {
            let run = trimmed.chars().take_while(|&c| c == mark).count();
            if !indented && run >= 3 {
                fence = Some((mark, run));
            }
        }
        if fence.is_some() {
            paragraph.clear();
            continue;
        }
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        if !indented && (1..=6).contains(&hashes) {
            let text = &trimmed[hashes..];
            if text.is_empty() || text.starts_with([' ', '\t']) {
                let text = strip_closing_hashes(text.trim());
                if !text.is_empty() {
                    return Some(text.to_owned());
                }
                paragraph.clear();
                continue;
            }
        }
        let underline = !trimmed_end.is_empty()
            && (trimmed_end.chars().all(|c| c == '=') || trimmed_end.chars().all(|c| c == '-'));
        if !indented && underline && !paragraph.is_empty() {
            return Some(paragraph.join(" "));
        }
        if trimmed_end.is_empty() || is_list_item(trimmed) || underline {
            paragraph.clear();
        } else {
            paragraph.push(trimmed_end);
        }
    }
    None
}

/// `Title ##` → `Title`; `C#` stays (the closing sequence must follow a space).
fn strip_closing_hashes(text: &str) -> &str {
    let without = text.trim_end_matches('#');
    if without.is_empty() {
        ""
    } else if without.ends_with([' ', '\t']) {
        without.trim_end()
    } else {
        text
    }
}

/// A list item cannot be a setext heading's text (`- a` over `---` is a list
/// and a rule).
fn is_list_item(line: &str) -> bool {
    let bullet = line.starts_with(['-', '*', '+'])
        && (line.len() == 1 || line[1..].starts_with([' ', '\t']));
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    let ordered = (1..=9).contains(&digits)
        && line[digits..].starts_with(['.', ')'])
        && (line.len() == digits + 1 || line[digits + 1..].starts_with([' ', '\t']));
    bullet || ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::embedded::tests::all_batches;
    use std::fs;
    use std::os::unix::ffi::OsStrExt as _;

    fn write(root: &Path, relative: &str, body: &[u8]) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        fs::write(path, body).expect("write");
    }

    fn sample() -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        write(dir.path(), "b.md", b"# Bee\n\n## One\ntext\n");
        write(dir.path(), "a/z.md", b"no heading here\n");
        write(dir.path(), "a-b.md", b"Setext title\n===\n");
        write(dir.path(), "a/notes.txt", b"not markdown");
        write(dir.path(), "a/deep/c.md", "## Ünïcode ##\r\n".as_bytes());
        dir
    }

    fn open_err(root: &Path) -> String {
        match DirSource::open(root) {
            Ok(source) => panic!("opened: {:?}", source.describe()),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn documents_in_path_order_with_titles_and_ids() {
        let dir = sample();
        let source = DirSource::open(dir.path()).expect("open");
        let batches = all_batches(&source, 2);
        assert_eq!(batches.iter().map(|b| b.documents.len()).collect::<Vec<_>>(), [2, 2]);
        let docs: Vec<_> = batches.iter().flat_map(|b| b.documents.clone()).collect();
        let versions: Vec<_> = batches.iter().flat_map(|b| b.versions.clone()).collect();
        let shape: Vec<(i64, &str, &str)> =
            docs.iter().map(|d| (d.id, d.kb_path.as_str(), d.title.as_str())).collect();
        // `a-b.md` sorts before `a/…` in byte order ('-' < '/').
        assert_eq!(
            shape,
            [
                (1, "a-b.md", "Setext title"),
                (2, "a/deep/c.md", "Ünïcode"),
                (3, "a/z.md", "z"),
                (4, "b.md", "Bee"),
            ]
        );
        assert!(docs.iter().all(|d| d.status == "active"));
        assert!(batches.iter().all(|b| b.units.is_empty()));
        let ids: Vec<(i64, i64, i64)> =
            versions.iter().map(|v| (v.id, v.document_id, v.revision)).collect();
        assert_eq!(ids, [(100_000, 1, 1), (100_001, 2, 1), (100_002, 3, 1), (100_003, 4, 1)]);
        assert_eq!(versions[1].body, "## Ünïcode ##\r\n");
        assert_eq!(versions[1].body_sha256, sha256_hex("## Ünïcode ##\r\n".as_bytes()));
        assert_eq!(docs[0].updated_at, versions[0].created_at);
        assert_eq!(all_batches(&source, 2), batches, "deterministic");
        assert_eq!(all_batches(&source, 0).len(), 4);
        assert_eq!(all_batches(&source, usize::MAX).len(), 1);
    }

    #[test]
    fn digest_is_the_sha256sum_listing() {
        let dir = sample();
        let identity = DirSource::open(dir.path()).expect("open").describe();
        let mut listing = String::new();
        for (path, body) in [
            ("a-b.md", "Setext title\n===\n"),
            ("a/deep/c.md", "## Ünïcode ##\r\n"),
            ("a/z.md", "no heading here\n"),
            ("b.md", "# Bee\n\n## One\ntext\n"),
        ] {
            listing.push_str(&format!("{}  {path}\n", sha256_hex(body.as_bytes())));
        }
        assert_eq!(identity.digest, sha256_hex(listing.as_bytes()));
        assert_eq!(identity.documents, Some(4));
        assert_eq!(identity.location, dir.path().display().to_string());
        // Any byte of any document changes it; a non-Markdown file does not.
        write(dir.path(), "a/notes.txt", b"edited");
        assert_eq!(DirSource::open(dir.path()).expect("open").describe(), identity);
        write(dir.path(), "a/z.md", b"no heading here.\n");
        assert_ne!(DirSource::open(dir.path()).expect("open").describe().digest, identity.digest);
    }

    #[test]
    fn symlinks_are_refused_by_name() {
        let dir = sample();
        std::os::unix::fs::symlink("b.md", dir.path().join("link.md")).expect("symlink");
        let path = dir.path().join("link.md");
        assert_eq!(
            open_err(dir.path()),
            format!("{}: symbolic link (refused, never followed)", path.display())
        );
        // A link to a directory is refused too: it could hide documents.
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink("a", dir.path().join("elsewhere")).expect("symlink");
        assert!(
            open_err(dir.path()).ends_with("/elsewhere: symbolic link (refused, never followed)")
        );
    }

    #[test]
    fn non_utf8_names_and_contents_are_refused_by_name() {
        let dir = sample();
        write(dir.path(), "a/bad.md", b"ok\xff\xfe\n");
        assert_eq!(
            open_err(dir.path()),
            format!(
                "{}: contents are not UTF-8 (first bad byte at offset 2)",
                dir.path().join("a/bad.md").display()
            )
        );
        fs::remove_file(dir.path().join("a/bad.md")).expect("rm");
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.md");
        fs::write(dir.path().join(name), "x").expect("write");
        assert_eq!(
            open_err(dir.path()),
            format!("{}/caf\u{fffd}.md: file name is not UTF-8", dir.path().display())
        );
    }

    #[test]
    fn bad_names_missing_and_empty_dirs_are_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(open_err(dir.path()), format!("{}: no *.md files found", dir.path().display()));
        write(dir.path(), "new\nline.md", b"x");
        assert_eq!(
            open_err(dir.path()),
            format!(
                "{}: backslash, newline or NUL in a file name",
                dir.path().join("new\nline.md").display()
            )
        );
        let file = dir.path().join("new\nline.md");
        assert_eq!(open_err(&file), format!("{}: not a directory", file.display()));
    }

    #[test]
    fn a_file_changed_after_opening_is_refused() {
        let dir = sample();
        let source = DirSource::open(dir.path()).expect("open");
        write(dir.path(), "b.md", b"# Bee, edited\n");
        let results: Vec<_> = source.batches(2).collect();
        assert_eq!(results.len(), 2, "the error ends the sequence");
        assert!(results[0].is_ok());
        let err = results[1].as_ref().expect_err("changed").to_string();
        let path = dir.path().join("b.md");
        assert!(
            err.starts_with(&format!("{}: changed since the source was opened", path.display())),
            "{err}"
        );
        // A file replaced by a symlink after the walk is not followed either.
        fs::remove_file(&path).expect("rm");
        std::os::unix::fs::symlink("a-b.md", &path).expect("symlink");
        let err = source.batches(4).next().expect("one batch").expect_err("symlink");
        assert!(matches!(err, SourceError::Read { .. }), "{err:?}");
        assert!(err.to_string().starts_with(&format!("{}: cannot read: ", path.display())));
    }

    #[test]
    fn first_heading_forms() {
        let cases: &[(&str, Option<&str>)] = &[
            ("# Title\n", Some("Title")),
            ("intro\n\n## Second level ##\n", Some("Second level")),
            ("#hashtag\n# Real\n", Some("Real")),
            ("# C#\n", Some("C#")),
            ("#\n## Later\n", Some("Later")),
            ("    # indented code\nText\n", None),
            ("```\n# not a heading\n```\n# After code\n", Some("After code")),
            ("~~~~\n```\n# inside\n~~~~\n## Out\n", Some("Out")),
            ("---\ntitle: x\n---\nBody\n", None),
            ("---\ntitle: x\n---\n# Front\n", Some("Front")),
            ("Two line\nsetext\n---\n", Some("Two line setext")),
            ("Setext\r\n=====\r\n", Some("Setext")),
            ("- item\n---\n", None),
            ("\n---\n", None),
            ("plain text only\n", None),
        ];
        for (body, expected) in cases {
            assert_eq!(first_heading(body).as_deref(), *expected, "{body:?}");
        }
    }
}
