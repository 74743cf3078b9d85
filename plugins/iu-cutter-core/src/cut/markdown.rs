//! The v0.6-o8a cutter: a CommonMark parse with pulldown-cmark.
//!
//! It splits at level-1 and level-2 headings, ATX and setext, that sit at
//! the top level of the document, so a `##` line inside fenced or indented
//! code, inside YAML front matter or inside an HTML block is left alone, and
//! a heading inside a block quote or list item does not cut that container
//! in half.
//!
//! Front matter is recognised only at the very start of the body. The parser
//! is handed the front matter on its own, with
//! `ENABLE_YAML_STYLE_METADATA_BLOCKS`, and the rest without it, because
//! pulldown-cmark 0.13 accepts a metadata block anywhere: in a document that
//! uses `---` rules between sections, `---\n## B\n...\n---` would otherwise
//! become "metadata" and silently swallow section B.

use super::{assemble, Cutter, Dedupe, Piece};
use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// Splits at top-level H1 and H2 headings found by a CommonMark parse.
#[derive(Clone, Copy, Debug, Default)]
pub struct MarkdownCutter;

impl Cutter for MarkdownCutter {
    fn cut(&self, body: &str) -> Vec<Piece> {
        let content_start = front_matter_end(body).unwrap_or(0);
        let mut splits = Vec::new();
        let mut depth = 0usize;
        // The heading being read: its split offset and its text so far.
        let mut open: Option<(usize, String)> = None;
        let content = &body[content_start..];
        for (event, range) in Parser::new_ext(content, Options::empty()).into_offset_iter() {
            match event {
                Event::Start(Tag::Heading { level, .. })
                    if depth == 0 && matches!(level, HeadingLevel::H1 | HeadingLevel::H2) =>
                {
                    open = Some((line_start(body, content_start + range.start), String::new()));
                    depth += 1;
                }
                Event::Start(_) => depth += 1,
                Event::End(end) => {
                    depth = depth.saturating_sub(1);
                    if matches!(end, TagEnd::Heading(_)) && depth == 0 {
                        if let Some((start, text)) = open.take() {
                            splits.push((start, text.trim().to_owned()));
                        }
                    }
                }
                Event::Text(text) | Event::Code(text) => {
                    if let Some((_, heading)) = open.as_mut() {
                        heading.push_str(&text);
                    }
                }
                // A multi-line setext heading reads as one line of words.
                Event::SoftBreak | Event::HardBreak => {
                    if let Some((_, heading)) = open.as_mut() {
                        heading.push(' ');
                    }
                }
                _ => {}
            }
        }
        assemble(body, splits, Dedupe::GitHub)
    }
}

/// The start of the line holding byte `at`.
///
/// A top-level heading's event starts after up to three spaces of
/// indentation; the split belongs at the start of its line so that the
/// previous piece does not end in stray spaces.
fn line_start(body: &str, at: usize) -> usize {
    body[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// The end of the YAML front matter (after its closing line's line break)
/// when `body` starts with one.
///
/// This mirrors pulldown-cmark 0.13's `scan_metadata_block` for a block at
/// offset 0: an opening line of exactly `---` and trailing whitespace, a
/// first content line that is neither blank nor a closing line, and a
/// closing line of exactly `---` or `...` followed only by spaces. A test
/// holds it to the parser's own answer.
pub(super) fn front_matter_end(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let opening = next_line(bytes, 0);
    if !bytes.starts_with(b"---")
        || bytes.get(3) == Some(&b'-')
        || !bytes[3..opening].iter().all(u8::is_ascii_whitespace)
    {
        return None;
    }
    let mut at = opening;
    let mut first = true;
    while at < bytes.len() {
        let end = next_line(bytes, at);
        let line = &bytes[at..end];
        let closing = is_closing_line(line);
        if first && (closing || is_blank_line(line)) {
            return None;
        }
        if closing {
            return Some(end);
        }
        first = false;
        at = end;
    }
    None
}

/// The offset just past the line break of the line starting at `at`.
fn next_line(bytes: &[u8], at: usize) -> usize {
    bytes[at..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| at + i + 1)
}

fn is_closing_line(line: &[u8]) -> bool {
    let rest = line
        .strip_prefix(b"---")
        .filter(|rest| rest.first() != Some(&b'-'))
        .or_else(|| line.strip_prefix(b"...").filter(|rest| rest.first() != Some(&b'.')));
    rest.is_some_and(|rest| is_line_end(skip_while(rest, |b| b == b' ')))
}

fn is_blank_line(line: &[u8]) -> bool {
    is_line_end(skip_while(line, |b| matches!(b, b' ' | b'\t' | 0x0b | 0x0c)))
}

fn skip_while(bytes: &[u8], skip: impl Fn(u8) -> bool) -> &[u8] {
    let start = bytes.iter().position(|&b| !skip(b)).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Whether `rest` is nothing but a line ending (`\n`, `\r\n`, `\r`) or the
/// end of the body, as pulldown-cmark's `scan_eol` accepts.
fn is_line_end(rest: &[u8]) -> bool {
    matches!(rest, [] | [b'\n', ..] | [b'\r', ..])
}
