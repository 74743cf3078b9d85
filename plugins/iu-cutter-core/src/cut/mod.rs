//! Cutting a document body into sections ("pieces").
//!
//! A cut is the unit of work the whole orchestrator exists for, so its
//! contract is strict and checkable: the pieces' byte ranges are contiguous,
//! start at 0 and end at the body's length, so they concatenate to the exact
//! body bytes (CRLF and all). Splits happen only at the start of a heading's
//! line, text before the first split is a `_preamble` piece, and anchors are
//! unique within a cut.
//!
//! Two cutters exist because two versions of the orchestrator exist:
//! [`NaiveCutter`] is v0.6 as shipped (line matching on `## `), and
//! [`MarkdownCutter`] is v0.6-o8a (a CommonMark parse). They share [`slug`]
//! and the piece assembly below, so on a plain document (only `## ` ATX
//! headings with plain-text titles, nothing heading-like in code or front
//! matter, no repeated titles) they produce identical pieces; where they
//! differ, the difference is one the side-by-side evaluation is meant to show.

mod markdown;
mod naive;

pub use markdown::MarkdownCutter;
pub use naive::NaiveCutter;

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::collections::HashSet;

/// The anchor of the piece holding the text before the first heading.
pub const PREAMBLE_ANCHOR: &str = "_preamble";

/// One section of a body: `body[start..end]`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Piece {
    /// The heading's text (`""` for the preamble).
    pub heading: String,
    /// The anchor, unique within the cut.
    pub anchor: String,
    /// The first byte of the piece.
    pub start: usize,
    /// One past the last byte of the piece.
    pub end: usize,
}

/// Something that cuts a body into pieces.
///
/// Implementations must uphold the module's contract (contiguous ranges on
/// character boundaries covering the whole body, unique anchors); the
/// orchestrator's `write_verify` phase checks the result rather than
/// trusting it, which is what lets a test inject a broken cutter.
pub trait Cutter {
    /// Cuts `body`. An empty body gives no pieces.
    fn cut(&self, body: &str) -> Vec<Piece>;
}

/// A boxed cutter cuts like the cutter inside, so a run can pick its cutter
/// at run time (`Run<Box<dyn Cutter>>`).
impl<C: Cutter + ?Sized> Cutter for Box<C> {
    fn cut(&self, body: &str) -> Vec<Piece> {
        (**self).cut(body)
    }
}

/// The anchor slug of a heading.
///
/// Lowercase; Unicode alphanumerics, `-` and `_` are kept, each space becomes
/// `-`, everything else is dropped, and nothing is collapsed (so `A  B` gives
/// `a--b`, as GitHub does). A heading with nothing left gives `section`, so
/// an anchor is never empty.
pub fn slug(heading: &str) -> String {
    let mut out = String::with_capacity(heading.len());
    for c in heading.chars() {
        // Most headings are ASCII; `to_lowercase` yields an iterator per
        // char, which showed up in profiles of a 100 MB corpus.
        if c.is_ascii() {
            push_slug_char(&mut out, c.to_ascii_lowercase());
        } else {
            for lower in c.to_lowercase() {
                push_slug_char(&mut out, lower);
            }
        }
    }
    if out.is_empty() {
        out.push_str("section");
    }
    out
}

/// Appends what `c`, already lowercase, contributes to a slug.
fn push_slug_char(out: &mut String, c: char) {
    if c == ' ' {
        out.push('-');
    } else if c.is_alphanumeric() || c == '-' || c == '_' {
        out.push(c);
    }
}

/// How a cutter makes a repeated slug unique.
#[derive(Clone, Copy)]
enum Dedupe {
    /// v0.6: append `-<index of the piece in the cut>`.
    PieceIndex,
    /// v0.6-o8a: GitHub's rule, the n-th repeat gets `-n`.
    GitHub,
}

/// Turns split points into pieces: an optional preamble, then one piece per
/// split running to the next split (or the end of the body).
///
/// `splits` must be strictly increasing offsets at line starts inside
/// `body`; both cutters produce them in document order.
fn assemble(body: &str, splits: Vec<(usize, String)>, dedupe: Dedupe) -> Vec<Piece> {
    if body.is_empty() {
        return Vec::new();
    }
    let first = splits.first().map_or(body.len(), |(start, _)| *start);
    let mut pieces = Vec::with_capacity(splits.len() + 1);
    if first > 0 {
        pieces.push(Piece {
            heading: String::new(),
            anchor: PREAMBLE_ANCHOR.to_owned(),
            start: 0,
            end: first,
        });
    }
    let mut anchors = Anchors::new(dedupe);
    if first > 0 {
        anchors.reserve(PREAMBLE_ANCHOR);
    }
    let mut splits = splits.into_iter().peekable();
    while let Some((start, heading)) = splits.next() {
        let end = splits.peek().map_or(body.len(), |(next, _)| *next);
        let anchor = anchors.assign(slug(&heading), pieces.len());
        pieces.push(Piece { heading, anchor, start, end });
    }
    pieces
}

/// The anchors handed out so far in one cut.
struct Anchors {
    dedupe: Dedupe,
    /// Every anchor taken, with (for GitHub's rule) how many repeats of it
    /// as a base slug have been seen. Only looked up, never iterated, so the
    /// hash order cannot leak into a cut.
    taken: HashMap<String, usize>,
}

impl Anchors {
    fn new(dedupe: Dedupe) -> Self {
        Anchors { dedupe, taken: HashMap::new() }
    }

    fn reserve(&mut self, anchor: &str) {
        self.taken.insert(anchor.to_owned(), 0);
    }

    /// The anchor for a piece with slug `base` at `index` in the cut.
    fn assign(&mut self, base: String, index: usize) -> String {
        if !self.taken.contains_key(&base) {
            self.taken.insert(base.clone(), 0);
            return base;
        }
        let anchor = match self.dedupe {
            Dedupe::PieceIndex => {
                // A literal heading can already hold `intro-3`; appending the
                // index again keeps the anchor unique and terminates because
                // each attempt is longer than the last.
                let mut candidate = base;
                loop {
                    candidate = format!("{candidate}-{index}");
                    if !self.taken.contains_key(&candidate) {
                        break candidate;
                    }
                }
            }
            Dedupe::GitHub => loop {
                let count = self.taken.get_mut(&base).expect("base was found taken above");
                *count += 1;
                let candidate = format!("{base}-{count}");
                if !self.taken.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        self.taken.insert(anchor.clone(), 0);
        anchor
    }
}

/// Whether `pieces` is a valid cut of `body`: contiguous ranges on
/// character boundaries from 0 to `body.len()` and unique anchors.
///
/// The orchestrator does not rely on this (it verifies what it wrote), but
/// it states the contract in one place for tests and for callers that want
/// to check a cutter up front.
pub fn is_valid_cut(body: &str, pieces: &[Piece]) -> bool {
    let mut at = 0;
    let mut anchors = HashSet::with_capacity(pieces.len());
    for piece in pieces {
        if piece.start != at
            || piece.end <= piece.start
            || body.get(piece.start..piece.end).is_none()
            || !anchors.insert(piece.anchor.as_str())
        {
            return false;
        }
        at = piece.end;
    }
    at == body.len()
}

#[cfg(test)]
mod tests;
