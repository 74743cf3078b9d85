//! `DEPLOY-MANIFEST.txt`: the per-file sha256 list that names a plugin tree.
//!
//! The format is `sha256sum`'s, so `sha256sum -c DEPLOY-MANIFEST.txt` passes
//! inside a sealed directory (GNU `sha256sum` skips lines starting with `#`):
//!
//! ```text
//! # format: sidecar-manifest/1
//! # name: iu-cutter
//! # version: 0.6
//! # library: libiu_cutter.so
//! # artifact_sha256: 3f1c…
//! 9a0b…  README.md
//! 51e2…  libiu_cutter.so
//! ```
//!
//! `artifact_sha256` is the sha256 of the entry lines exactly as written
//! (Go's and Terraform's `h1:` dirhash idea): one digest that names every
//! file's path and contents, which is what a lock file pins.

use std::fmt::Write as _;

use sha2::{Digest as _, Sha256};
use thiserror::Error;

/// The manifest's file name inside a plugin directory.
pub const MANIFEST_FILE: &str = "DEPLOY-MANIFEST.txt";

/// The only format this host writes and reads.
pub const FORMAT: &str = "sidecar-manifest/1";

/// A sha256 digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Digest(pub [u8; 32]);

impl Sha256Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Parses 64 lowercase hex digits.
    pub fn parse_hex(text: &str) -> Option<Self> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return None;
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }

    /// Lowercase hex.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.to_hex())
    }
}

impl serde::Serialize for Sha256Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_hex(&text)
            .ok_or_else(|| serde::de::Error::custom("expected 64 lowercase hex digits"))
    }
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The file's contents digest.
    pub sha256: Sha256Digest,
    /// The path relative to the plugin directory, `/`-separated.
    pub path: String,
}

/// A parsed (or about to be written) manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The plugin's name, e.g. `iu-cutter`.
    pub name: String,
    /// The plugin's version, e.g. `0.6-o8a`.
    pub version: String,
    /// The path of the plugin library inside the directory.
    pub library: String,
    /// The digest the header claims for the entry lines.
    pub artifact_sha256: Sha256Digest,
    /// Every file but the manifest itself, sorted by path.
    pub entries: Vec<Entry>,
}

/// Why a manifest could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    /// A line that is neither a header nor an entry.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// A required header is absent.
    #[error("missing header `# {0}: …`")]
    MissingHeader(&'static str),
}

impl Manifest {
    /// Builds a manifest from entries, computing the artifact digest. The
    /// entries are sorted here so the caller cannot get the order wrong.
    pub fn new(name: &str, version: &str, library: &str, mut entries: Vec<Entry>) -> Self {
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let artifact_sha256 = artifact_digest(&entries);
        Self {
            name: name.to_owned(),
            version: version.to_owned(),
            library: library.to_owned(),
            artifact_sha256,
            entries,
        }
    }

    /// The digest of the entry lines as they stand, which a sound manifest's
    /// header repeats.
    pub fn computed_artifact_sha256(&self) -> Sha256Digest {
        artifact_digest(&self.entries)
    }

    /// The digest listed for `path`, if any.
    pub fn digest_of(&self, path: &str) -> Option<Sha256Digest> {
        self.entries
            .binary_search_by(|e| e.path.as_str().cmp(path))
            .ok()
            .map(|i| self.entries[i].sha256)
    }

    /// The manifest's text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = writeln!(out, "# format: {FORMAT}");
        let _ = writeln!(out, "# name: {}", self.name);
        let _ = writeln!(out, "# version: {}", self.version);
        let _ = writeln!(out, "# library: {}", self.library);
        let _ = writeln!(out, "# artifact_sha256: {}", self.artifact_sha256);
        out.push_str(&entry_lines(&self.entries));
        out
    }

    /// Parses a manifest. Headers come first; entries must be sorted,
    /// unique, and name safe relative paths. Nothing is checked against the
    /// file system here.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        // Each header keeps its line number so a bad value can be named.
        let mut format: Option<(String, usize)> = None;
        let mut name: Option<(String, usize)> = None;
        let mut version: Option<(String, usize)> = None;
        let mut library: Option<(String, usize)> = None;
        let mut artifact: Option<(String, usize)> = None;
        let mut entries: Vec<Entry> = Vec::new();

        for (index, line) in text.split_inclusive('\n').enumerate() {
            let number = index + 1;
            let bad = |reason: String| ParseError::Line { line: number, reason };
            let Some(line) = line.strip_suffix('\n') else {
                return Err(bad("the last line has no newline".into()));
            };
            if let Some(header) = line.strip_prefix("# ") {
                if !entries.is_empty() {
                    return Err(bad("header after the first entry".into()));
                }
                let Some((key, value)) = header.split_once(": ") else {
                    return Err(bad(format!("header `{header}` is not `key: value`")));
                };
                let slot = match key {
                    "format" => &mut format,
                    "name" => &mut name,
                    "version" => &mut version,
                    "library" => &mut library,
                    "artifact_sha256" => &mut artifact,
                    other => return Err(bad(format!("unknown header `{other}`"))),
                };
                if slot.replace((value.to_owned(), number)).is_some() {
                    return Err(bad(format!("header `{key}` repeated")));
                }
                continue;
            }
            let Some((hex, path)) = line.split_once("  ") else {
                return Err(bad("expected `<sha256>  <path>`".into()));
            };
            let sha256 = Sha256Digest::parse_hex(hex)
                .ok_or_else(|| bad(format!("`{hex}` is not 64 lowercase hex digits")))?;
            check_relative_path(path).map_err(|reason| bad(format!("path `{path}`: {reason}")))?;
            if let Some(previous) = entries.last() {
                if previous.path.as_str() >= path {
                    return Err(bad(format!("`{path}` is out of order or repeated")));
                }
            }
            if path == MANIFEST_FILE {
                return Err(bad(format!("the manifest lists itself ({MANIFEST_FILE})")));
            }
            entries.push(Entry { sha256, path: path.to_owned() });
        }

        let (format, line) = format.ok_or(ParseError::MissingHeader("format"))?;
        if format != FORMAT {
            return Err(ParseError::Line {
                line,
                reason: format!("unsupported format `{format}` (this host reads {FORMAT})"),
            });
        }
        let (artifact, line) = artifact.ok_or(ParseError::MissingHeader("artifact_sha256"))?;
        let artifact_sha256 = Sha256Digest::parse_hex(&artifact).ok_or(ParseError::Line {
            line,
            reason: format!("artifact_sha256 `{artifact}` is not 64 lowercase hex digits"),
        })?;
        let (library, line) = library.ok_or(ParseError::MissingHeader("library"))?;
        check_relative_path(&library).map_err(|reason| ParseError::Line {
            line,
            reason: format!("library `{library}`: {reason}"),
        })?;
        Ok(Self {
            name: name.ok_or(ParseError::MissingHeader("name"))?.0,
            version: version.ok_or(ParseError::MissingHeader("version"))?.0,
            library,
            artifact_sha256,
            entries,
        })
    }
}

fn entry_lines(entries: &[Entry]) -> String {
    let mut out = String::with_capacity(entries.len() * 96);
    for entry in entries {
        let _ = writeln!(out, "{}  {}", entry.sha256, entry.path);
    }
    out
}

fn artifact_digest(entries: &[Entry]) -> Sha256Digest {
    Sha256Digest::of(entry_lines(entries).as_bytes())
}

/// Checks that `path` is a plain relative path that stays inside the
/// directory and that `sha256sum` reads back unchanged.
pub fn check_relative_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("empty path");
    }
    if path.starts_with('/') {
        return Err("absolute path escapes the directory");
    }
    if path.contains(['\\', '\n', '\r', '\0']) {
        return Err("backslash, newline or NUL in a file name");
    }
    for component in path.split('/') {
        match component {
            "" => return Err("empty path component"),
            "." => return Err("`.` component"),
            ".." => return Err("`..` escapes the directory"),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest::new(
            "iu-cutter",
            "0.6",
            "libiu_cutter.so",
            vec![
                Entry { sha256: Sha256Digest::of(b"lib"), path: "libiu_cutter.so".into() },
                Entry { sha256: Sha256Digest::of(b"readme"), path: "README.md".into() },
            ],
        )
    }

    #[test]
    fn render_then_parse_round_trips() {
        let manifest = sample();
        assert_eq!(Manifest::parse(&manifest.render()), Ok(manifest));
    }

    #[test]
    fn artifact_digest_is_the_sha256_of_the_entry_lines() {
        let manifest = sample();
        let text = manifest.render();
        let lines: String =
            text.lines().filter(|l| !l.starts_with('#')).map(|l| format!("{l}\n")).collect();
        assert_eq!(manifest.artifact_sha256, Sha256Digest::of(lines.as_bytes()));
    }

    #[test]
    fn entries_out_of_order_are_refused_with_the_line() {
        let text = sample().render().replace("README.md", "zzz.md");
        let err = Manifest::parse(&text).unwrap_err();
        assert_eq!(err.to_string(), "line 7: `libiu_cutter.so` is out of order or repeated");
    }

    #[test]
    fn escaping_paths_are_refused() {
        for (path, reason) in [
            ("../x", "`..` escapes the directory"),
            ("/etc/passwd", "absolute path escapes the directory"),
            ("a//b", "empty path component"),
            ("./a", "`.` component"),
        ] {
            assert_eq!(check_relative_path(path), Err(reason), "{path}");
        }
    }

    #[test]
    fn unknown_headers_and_formats_are_refused() {
        let text = sample().render().replace("# name:", "# nmae:");
        assert_eq!(
            Manifest::parse(&text).unwrap_err().to_string(),
            "line 2: unknown header `nmae`"
        );
        let text = sample().render().replace(FORMAT, "sidecar-manifest/9");
        assert!(Manifest::parse(&text).unwrap_err().to_string().contains("unsupported format"));
    }
}
