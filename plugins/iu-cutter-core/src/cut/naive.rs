//! The v0.6 cutter, as shipped: a line scan for `## `.
//!
//! It is kept faithful to the deployed behaviour on purpose, blind spots
//! included (it splits at `## ` inside fenced code and front matter, and never
//! at `# `, `### ` or setext headings), because the point of running it in
//! the sidecar is to compare the deployed version with its successor.

use super::{assemble, Cutter, Dedupe, Piece};

/// Splits at every line that starts with exactly `## ` at column 0.
#[derive(Clone, Copy, Debug, Default)]
pub struct NaiveCutter;

impl Cutter for NaiveCutter {
    fn cut(&self, body: &str) -> Vec<Piece> {
        let mut splits = Vec::new();
        let mut line_start = 0;
        while line_start < body.len() {
            let rest = &body[line_start..];
            let line_len = rest.find('\n').map_or(rest.len(), |i| i + 1);
            if let Some(title) = rest[..line_len].strip_prefix("## ") {
                splits.push((line_start, heading_text(title)));
            }
            line_start += line_len;
        }
        assemble(body, splits, Dedupe::PieceIndex)
    }
}

/// The heading text of a `## ` line, given what follows the `## `.
///
/// The closing sequence is removed the way CommonMark does it (only when the
/// `#`s are preceded by whitespace or are all there is), so `## C#` keeps its
/// `#` and plain headings come out as the Markdown cutter sees them.
fn heading_text(title: &str) -> String {
    let line = title.trim_end_matches(['\n', '\r']).trim_end();
    let without_hashes = line.trim_end_matches('#');
    let content = if without_hashes.len() < line.len()
        && (without_hashes.is_empty() || without_hashes.ends_with([' ', '\t']))
    {
        without_hashes
    } else {
        line
    };
    content.trim().to_owned()
}
