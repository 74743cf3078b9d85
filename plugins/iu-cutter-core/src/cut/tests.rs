//! Tests of the cut contract, of where the two cutters agree, and of every
//! difference between them that side-by-side evaluation is meant to show.

use super::markdown::front_matter_end;
use super::*;
use pulldown_cmark::{Event, Options, Parser, Tag};

/// (heading, anchor, text) of each piece, the form the expectations below
/// are written in.
fn described(body: &str, pieces: &[Piece]) -> Vec<(String, String, String)> {
    pieces
        .iter()
        .map(|p| (p.heading.clone(), p.anchor.clone(), body[p.start..p.end].to_owned()))
        .collect()
}

fn expect(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    items.iter().map(|(h, a, t)| (h.to_string(), a.to_string(), t.to_string())).collect()
}

fn naive(body: &str) -> Vec<(String, String, String)> {
    let pieces = NaiveCutter.cut(body);
    assert!(is_valid_cut(body, &pieces), "naive cut of {body:?} breaks the contract: {pieces:?}");
    described(body, &pieces)
}

fn markdown(body: &str) -> Vec<(String, String, String)> {
    let pieces = MarkdownCutter.cut(body);
    assert!(
        is_valid_cut(body, &pieces),
        "markdown cut of {body:?} breaks the contract: {pieces:?}"
    );
    described(body, &pieces)
}

/// Documents with only plain `## ` headings must cut identically, or the
/// comparison of the two versions would be flooded with noise.
#[test]
fn both_cutters_agree_on_plain_documents() {
    let bodies = [
        "intro\n## Setup\nsteps\n\n## Usage\nrun it\n",
        "intro\r\n## Setup\r\nsteps\r\n\r\n## Usage\r\nrun it\r\n",
        "## Überblick\nä\n## 日本語の見出し\nx\n## Ünïcödé Straße 2\n",
        "## A\n## B\n",
        "## A\r\n## B\r\n",
        "---\ntitle: x\ntags: [a, b]\n---\nintro\n## A\nbody\n",
        "---\r\ntitle: x\r\n---\r\n## A\r\nb\r\n",
        "## Closed ##\n## C#\ntext\n### Sub\nstuff\n## Trailing   \n",
        "just text, no heading\n",
        "## No final newline\ntext",
        "## Lists\n- a\n- b\n## Code\n```\nfn main() {}\n```\n## End\n",
        // pulldown-cmark accepts a metadata block anywhere; sections
        // separated by `---` rules must not lose section B to it.
        "## A\ntext\n\n---\n## B\ntext\n\n---\n## C\n",
        "",
    ];
    for body in bodies {
        assert_eq!(NaiveCutter.cut(body), MarkdownCutter.cut(body), "cutters differ on {body:?}");
        assert!(is_valid_cut(body, &NaiveCutter.cut(body)), "invalid cut of {body:?}");
    }
}

#[test]
fn plain_document_cuts_into_preamble_and_sections_with_crlf_kept() {
    let body = "intro\r\n## Set up\r\nsteps\r\n## Usage ##\r\nrun\r\n";
    let want = expect(&[
        ("", "_preamble", "intro\r\n"),
        ("Set up", "set-up", "## Set up\r\nsteps\r\n"),
        ("Usage", "usage", "## Usage ##\r\nrun\r\n"),
    ]);
    assert_eq!(naive(body), want);
    assert_eq!(markdown(body), want);
}

#[test]
fn empty_body_gives_no_pieces_and_a_leading_heading_gives_no_preamble() {
    assert!(NaiveCutter.cut("").is_empty());
    assert!(MarkdownCutter.cut("").is_empty());
    let want = expect(&[("A", "a", "## A\n"), ("B", "b", "## B\n")]);
    assert_eq!(naive("## A\n## B\n"), want);
    assert_eq!(markdown("## A\n## B\n"), want);
}

#[test]
fn cutters_differ_on_a_heading_inside_fenced_code() {
    let body = "## A\n```sh\n## not a heading\n```\n## B\n";
    assert_eq!(
        naive(body),
        expect(&[
            ("A", "a", "## A\n```sh\n"),
            ("not a heading", "not-a-heading", "## not a heading\n```\n"),
            ("B", "b", "## B\n"),
        ])
    );
    assert_eq!(
        markdown(body),
        expect(&[("A", "a", "## A\n```sh\n## not a heading\n```\n"), ("B", "b", "## B\n")])
    );
}

#[test]
fn cutters_differ_on_setext_headings() {
    let body = "Title\n=====\ntext\n\nSub part\n---\nmore\n";
    assert_eq!(naive(body), expect(&[("", "_preamble", body)]));
    assert_eq!(
        markdown(body),
        expect(&[
            ("Title", "title", "Title\n=====\ntext\n\n"),
            ("Sub part", "sub-part", "Sub part\n---\nmore\n"),
        ])
    );
}

#[test]
fn cutters_differ_on_duplicate_headings() {
    let body = "pre\n## Intro\n## Other\n## Intro\n## Intro\n";
    let anchors = |pieces: Vec<(String, String, String)>| {
        pieces.into_iter().map(|(_, anchor, _)| anchor).collect::<Vec<_>>()
    };
    assert_eq!(anchors(naive(body)), ["_preamble", "intro", "other", "intro-3", "intro-4"]);
    assert_eq!(anchors(markdown(body)), ["_preamble", "intro", "other", "intro-1", "intro-2"]);
}

#[test]
fn cutters_differ_on_an_h1_heading() {
    let body = "# Title\ntext\n## A\nmore\n";
    assert_eq!(
        naive(body),
        expect(&[("", "_preamble", "# Title\ntext\n"), ("A", "a", "## A\nmore\n")])
    );
    assert_eq!(
        markdown(body),
        expect(&[("Title", "title", "# Title\ntext\n"), ("A", "a", "## A\nmore\n")])
    );
}

#[test]
fn naive_splits_inside_front_matter_and_markdown_does_not() {
    let body = "---\n## key: value\n---\nintro\n## A\n";
    assert_eq!(
        naive(body),
        expect(&[
            ("", "_preamble", "---\n"),
            ("key: value", "key-value", "## key: value\n---\nintro\n"),
            ("A", "a", "## A\n"),
        ])
    );
    assert_eq!(
        markdown(body),
        expect(&[("", "_preamble", "---\n## key: value\n---\nintro\n"), ("A", "a", "## A\n")])
    );
}

#[test]
fn markdown_leaves_indented_code_quotes_lists_and_h3_alone() {
    let body = "## A\n\n    ## indented code\n\n> ## quoted\n\n- ## in a list\n\n### Three\n## B\n";
    let pieces = markdown(body);
    let headings: Vec<&str> = pieces.iter().map(|(h, _, _)| h.as_str()).collect();
    assert_eq!(headings, ["A", "B"]);
}

#[test]
fn markdown_heading_text_is_the_text_content() {
    // Every line of a paragraph above a setext underline is the heading.
    let body = "## The `--dry-run` *flag*\nx\n\nTwo\nlines\n===\n";
    assert_eq!(
        markdown(body),
        expect(&[
            ("The --dry-run flag", "the---dry-run-flag", "## The `--dry-run` *flag*\nx\n\n"),
            ("Two lines", "two-lines", "Two\nlines\n===\n"),
        ])
    );
}

#[test]
fn markdown_splits_an_indented_heading_at_its_line_start() {
    let body = "intro\n\n  ## A\ntext\n";
    assert_eq!(
        markdown(body),
        expect(&[("", "_preamble", "intro\n\n"), ("A", "a", "  ## A\ntext\n")])
    );
}

#[test]
fn naive_heading_text_drops_only_a_real_closing_sequence() {
    let body = "## A ##\r\n## C#\n## ##\n##not\n###  x\n";
    let pieces = naive(body);
    let headings: Vec<(&str, &str)> =
        pieces.iter().map(|(h, a, _)| (h.as_str(), a.as_str())).collect();
    assert_eq!(headings, [("A", "a"), ("C#", "c"), ("", "section")]);
}

#[test]
fn slug_keeps_unicode_alphanumerics_dashes_and_underscores() {
    assert_eq!(slug("Hello, World!"), "hello-world");
    assert_eq!(slug("A  B"), "a--b");
    assert_eq!(slug("Überblick Straße"), "überblick-straße");
    assert_eq!(slug("日本語 2"), "日本語-2");
    assert_eq!(slug("snake_case and-kebab"), "snake_case-and-kebab");
    assert_eq!(slug("C++ & Rust"), "c--rust");
    assert_eq!(slug("!!!"), "section");
    assert_eq!(slug(""), "section");
}

#[test]
fn github_dedupe_skips_candidates_already_taken() {
    let body = "## Intro\n## Intro-1\n## Intro\n## Intro\n";
    let anchors: Vec<String> = markdown(body).into_iter().map(|(_, a, _)| a).collect();
    assert_eq!(anchors, ["intro", "intro-1", "intro-2", "intro-3"]);
}

#[test]
fn index_dedupe_stays_unique_when_a_heading_already_holds_the_suffix() {
    let body = "## Intro\n## Intro-2\n## Intro\n";
    let anchors: Vec<String> = naive(body).into_iter().map(|(_, a, _)| a).collect();
    assert_eq!(anchors, ["intro", "intro-2", "intro-2-2"]);
}

#[test]
fn a_heading_slugged_like_the_preamble_gets_a_suffix() {
    let body = "pre\n## _preamble\n";
    let anchor = |pieces: Vec<(String, String, String)>| pieces[1].1.clone();
    assert_eq!(anchor(naive(body)), "_preamble-1");
    assert_eq!(anchor(markdown(body)), "_preamble-1");
}

/// Where pulldown-cmark itself sees a metadata block at offset 0, so the
/// hand-written scan (needed to ignore mid-document blocks) must agree.
fn pulldown_front_matter_end(body: &str) -> Option<usize> {
    let mut events =
        Parser::new_ext(body, Options::ENABLE_YAML_STYLE_METADATA_BLOCKS).into_offset_iter();
    match events.next() {
        Some((Event::Start(Tag::MetadataBlock(_)), range)) if range.start == 0 => {
            // The block ends at its closing line; the scan reports the end of
            // that line, line break included.
            let end = range.end;
            Some(body[end..].find('\n').map_or(body.len(), |i| end + i + 1))
        }
        _ => None,
    }
}

#[test]
fn front_matter_scan_agrees_with_pulldown_cmark() {
    let bodies = [
        "---\ntitle: x\n---\n## A\n",
        "---\r\ntitle: x\r\n---\r\n## A\r\n",
        "---  \ntitle: x\n...\nrest\n",
        "---\ntitle: x\n---   \nrest\n",
        "---\ntitle: x\n",
        "---\n\ntitle: x\n---\n",
        "---\n---\n",
        "----\ntitle: x\n---\n",
        "--- x\ntitle: x\n---\n",
        "---\ntitle: x\n----\nmore\n---\n",
        "---\na\n\nb\n---",
        "---\ntitle: x\n--- \t\n...\n",
        " ---\ntitle: x\n---\n",
        "text\n---\ntitle: x\n---\n",
        "---",
        "",
    ];
    for body in bodies {
        assert_eq!(front_matter_end(body), pulldown_front_matter_end(body), "on {body:?}");
    }
}

/// A tiny deterministic generator (an LCG) so the property tests need no
/// dependency and fail the same way every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 =
            self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }
}

const LINES: &[&str] = &[
    "## Intro",
    "## intro",
    "# Top",
    "### Deep",
    "##",
    "## ",
    "## ##",
    "##no space",
    "text",
    "more text with `code`",
    "",
    "```",
    "~~~",
    "    ## indented",
    "> ## quoted",
    "- ## listed",
    "---",
    "===",
    "...",
    "Überschrift",
    "## Ünïcödé",
    "## 日本語",
    "## A *b* ##",
    "<div>",
    "</div>",
    "## Intro-1",
    "## _preamble",
    "   ## three spaces",
    "\t## tab",
];

fn generated_body(rng: &mut Lcg) -> String {
    let mut body = String::new();
    if rng.next() % 4 == 0 {
        body.push_str("---\ntitle: generated\n---\n");
    }
    let lines = rng.next() % 24;
    for _ in 0..lines {
        body.push_str(rng.pick(LINES));
        body.push_str(rng.pick(&["\n", "\n", "\r\n"]));
    }
    if rng.next() % 3 == 0 {
        // A body need not end with a line break.
        body.push_str(rng.pick(LINES));
    }
    body
}

#[test]
fn generated_bodies_always_cut_into_contiguous_pieces_with_unique_anchors() {
    let mut rng = Lcg(0x5eed);
    for _ in 0..3000 {
        let body = generated_body(&mut rng);
        for (name, pieces) in
            [("naive", NaiveCutter.cut(&body)), ("markdown", MarkdownCutter.cut(&body))]
        {
            assert!(is_valid_cut(&body, &pieces), "{name} cut of {body:?}: {pieces:?}");
            let joined: String = pieces.iter().map(|p| &body[p.start..p.end]).collect();
            assert_eq!(joined, body, "{name} pieces do not concatenate to {body:?}");
            for piece in &pieces {
                assert!(
                    piece.start == 0 || body.as_bytes()[piece.start - 1] == b'\n',
                    "{name} split inside a line at {} of {body:?}",
                    piece.start
                );
            }
        }
    }
}

#[test]
fn is_valid_cut_rejects_gaps_overlaps_short_cuts_and_duplicate_anchors() {
    let body = "## A\n## B\n";
    let piece = |anchor: &str, start, end| Piece {
        heading: String::new(),
        anchor: anchor.to_owned(),
        start,
        end,
    };
    assert!(is_valid_cut(body, &[piece("a", 0, 5), piece("b", 5, 10)]));
    assert!(!is_valid_cut(body, &[piece("a", 0, 5), piece("b", 6, 10)]));
    assert!(!is_valid_cut(body, &[piece("a", 0, 6), piece("b", 5, 10)]));
    assert!(!is_valid_cut(body, &[piece("a", 0, 5), piece("b", 5, 9)]));
    assert!(!is_valid_cut(body, &[piece("a", 0, 5), piece("a", 5, 10)]));
    assert!(!is_valid_cut(body, &[piece("a", 0, 5), piece("b", 5, 11)]));
    assert!(!is_valid_cut("é", &[piece("a", 0, 1), piece("b", 1, 2)]));
    assert!(is_valid_cut("", &[]));
}
