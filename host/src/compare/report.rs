//! The comparison's reports for people: `kb/compare.md`, and with `--html`
//! `report.html`, one self-contained page (inline style, no script, and a
//! content security policy that forbids every fetch) with each differing
//! document's operations side by side.
//!
//! Both show the first [`DETAILED_DOCUMENTS`] differing documents in
//! detail, read back from `diff.jsonl`; every document is counted and listed
//! in `compare.json`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::plans::{DifferenceKind, DocumentOps, OpDifference};
use super::{Comparison, PhaseSide, DIFF_FILE};
use crate::integrity::tree::write_atomically;
use crate::run::report::escape_markup as esc;

/// How many differing documents the reports show operation by operation.
pub const DETAILED_DOCUMENTS: usize = 100;

/// After-image fields shown first, when present: what a reviewer of a cut
/// looks at (unit boundaries, headings, anchors).
const KEY_FIELDS: &[&str] = &["ordinal", "heading", "anchor", "lifecycle"];

/// Body text shown per operation in the HTML page, in characters.
const BODY_PREVIEW: usize = 1200;

/// Writes `kb/compare.md`.
pub fn write_markdown(run_dir: &Path, c: &Comparison) -> io::Result<()> {
    let details = read_details(run_dir, c)?;
    let mut md = String::new();
    let _ = writeln!(md, "# Comparison {}\n", c.compare_id);
    let _ = writeln!(md, "**Verdict: {}.** {}\n", verdict_word(c), c.reason);
    let s = &c.source;
    let _ = write!(md, "Data: `{}`{} (digest `{}`", s.kind, location(s), s.digest);
    if let Some(db) = &s.database {
        let _ = write!(md, ", snapshot `{}` read by both sides", db.snapshot_id);
    }
    md.push_str(").\n\n");
    if !c.sides.is_empty() {
        md.push_str("| side | plugin | run | documents | folder |\n|---|---|---|---|---|\n");
        for side in &c.sides {
            let run = match &side.reason {
                Some(reason) => format!("{:?}: {}", side.verdict, reason),
                None => format!("{:?}", side.verdict),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | `{}/` |",
                side.side.to_uppercase(),
                side.plugin.as_deref().unwrap_or("-"),
                cell(&run.to_lowercase()),
                side.documents,
                side.side
            );
        }
        md.push('\n');
    }

    if !c.identity.is_empty() {
        md.push_str("## Identity\n\n| field | A | B | |\n|---|---|---|---|\n");
        for row in &c.identity {
            let mark = if row.same { "same" } else { "**differs**" };
            let _ =
                writeln!(md, "| {} | {} | {} | {mark} |", row.field, cell(&row.a), cell(&row.b));
        }
        md.push('\n');
    }
    if let Some(tree) = &c.tree {
        md.push_str("## Files\n\n");
        if tree.identical {
            md.push_str("The two directories hold the same files, byte for byte.\n");
        }
        for changed in &tree.diff.changed {
            let _ = writeln!(md, "- changed: `{}`", changed.path);
        }
        for gone in &tree.diff.only_in_a {
            let _ = writeln!(md, "- only in A: `{}`", gone.path);
        }
        for new in &tree.diff.only_in_b {
            let _ = writeln!(md, "- only in B: `{}`", new.path);
        }
        md.push('\n');
    }
    if !c.sides.is_empty() {
        md.push_str("## Kill-switch\n\n");
        md.push_str("| side | execution_enabled before | after | live run |\n|---|---|---|---|\n");
        for side in &c.sides {
            let ks = &side.kill_switch;
            let flag = |v: Option<bool>| v.map_or("-".to_owned(), |v| v.to_string());
            let live = live_run(ks);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                side.side.to_uppercase(),
                flag(ks.execution_enabled_before),
                flag(ks.execution_enabled_after),
                cell(&live)
            );
        }
        md.push('\n');
    }
    if !c.phases.is_empty() {
        md.push_str("## Phases\n\n| phase | A | B | plan |\n|---|---|---|---|\n");
        for phase in &c.phases {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} |",
                phase.phase,
                cell(&phase_cell(phase.a.as_ref())),
                cell(&phase_cell(phase.b.as_ref())),
                plan_cell(phase)
            );
        }
        md.push('\n');
    }
    if let Some(noise) = &c.noise {
        md.push_str("## Noise (A against itself)\n\n");
        if noise.same {
            md.push_str("A ran twice and behaved identically: no noise.\n\n");
        } else {
            let _ = writeln!(
                md,
                "A ran twice and differed in phases {} ({} documents, see `noise.jsonl`): a \
                 difference between A and B may be noise.\n",
                noise.phases.join(", "),
                noise.documents
            );
        }
    }
    if c.documents.differing > 0 {
        let _ = writeln!(
            md,
            "## Documents\n\n{} documents would be processed differently (all in `{DIFF_FILE}`).\n",
            c.documents.differing
        );
        md.push_str("| document | kb_path | phase | only in A | only in B | changed |\n");
        md.push_str("|---|---|---|---|---|---|\n");
        for document in &c.documents.listed {
            for (phase, counts) in &document.phases {
                let _ = writeln!(
                    md,
                    "| {} | `{}` | {phase} | {} | {} | {} |",
                    id(document.document_id),
                    document.kb_path.as_deref().unwrap_or("-"),
                    counts.only_a,
                    counts.only_b,
                    counts.changed
                );
            }
        }
        md.push('\n');
        if c.documents.truncated {
            let _ = writeln!(md, "(The first {} are listed.)\n", c.documents.listed.len());
        }
        md.push_str("### How they differ\n\n");
        for document in &details {
            let _ = writeln!(
                md,
                "#### Document {} `{}`, phase {}\n",
                id(document.document_id),
                kb_path(c, document.document_id),
                document.phase
            );
            for op in &document.ops {
                let _ = writeln!(md, "- {}", op_line(op));
            }
            md.push('\n');
        }
        if c.documents.differing as usize > DETAILED_DOCUMENTS {
            let _ = writeln!(
                md,
                "(The first {DETAILED_DOCUMENTS} documents are shown; `{DIFF_FILE}` has them all.)"
            );
        }
    }
    write_atomically(&run_dir.join("kb").join("compare.md"), md.as_bytes())
}

/// Writes `report.html`.
pub fn write_html(run_dir: &Path, c: &Comparison) -> io::Result<()> {
    let details = read_details(run_dir, c)?;
    let mut h = String::with_capacity(64 << 10);
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'\">\n",
    );
    let _ = writeln!(h, "<title>sidecar compare {}</title>", esc(&c.compare_id));
    h.push_str(STYLE);
    h.push_str("</head><body>\n");
    let verdict = verdict_word(c);
    let _ = writeln!(
        h,
        "<header><h1>Comparison <code>{}</code></h1>\n<p class=\"verdict {verdict}\" id=\"verdict\">\
         <b>{verdict}</b> — {}</p>",
        esc(&c.compare_id),
        esc(&c.reason)
    );
    let s = &c.source;
    let _ = write!(
        h,
        "<p>Data: <code>{}</code>{} · digest <code>{}</code>",
        esc(&s.kind),
        esc(&location(s)),
        esc(&s.digest)
    );
    if let Some(db) = &s.database {
        let _ = write!(h, " · snapshot <code>{}</code> read by both sides", esc(&db.snapshot_id));
    }
    h.push_str("</p></header>\n");

    if !c.sides.is_empty() {
        h.push_str("<h2>Sides</h2><table><tr><th>side</th><th>plugin</th><th>run</th><th>documents</th><th>execution_enabled before / after</th><th>live run</th></tr>\n");
        for side in &c.sides {
            let ks = &side.kill_switch;
            let flag = |v: Option<bool>| v.map_or("-".to_owned(), |v| v.to_string());
            let live = live_run(ks);
            let run = match &side.reason {
                Some(reason) => format!("{:?}: {reason}", side.verdict).to_lowercase(),
                None => format!("{:?}", side.verdict).to_lowercase(),
            };
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td></tr>",
                esc(&side.side.to_uppercase()),
                esc(side.plugin.as_deref().unwrap_or("-")),
                esc(&run),
                side.documents,
                flag(ks.execution_enabled_before),
                flag(ks.execution_enabled_after),
                esc(&live)
            );
        }
        h.push_str("</table>\n");
    }
    if !c.identity.is_empty() {
        h.push_str("<h2>Identity</h2><table><tr><th>field</th><th>A</th><th>B</th></tr>\n");
        for row in &c.identity {
            let class = if row.same { "" } else { " class=\"differs\"" };
            let _ = writeln!(
                h,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td></tr>",
                row.field,
                esc(&row.a),
                esc(&row.b)
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(tree) = &c.tree {
        h.push_str("<h2>Files</h2><ul>\n");
        if tree.identical {
            h.push_str("<li>The two directories hold the same files, byte for byte.</li>\n");
        }
        for changed in &tree.diff.changed {
            let _ = writeln!(h, "<li>changed: <code>{}</code></li>", esc(&changed.path));
        }
        for gone in &tree.diff.only_in_a {
            let _ = writeln!(h, "<li>only in A: <code>{}</code></li>", esc(&gone.path));
        }
        for new in &tree.diff.only_in_b {
            let _ = writeln!(h, "<li>only in B: <code>{}</code></li>", esc(&new.path));
        }
        h.push_str("</ul>\n");
    }
    if !c.phases.is_empty() {
        h.push_str(
            "<h2>Phases</h2><table><tr><th>phase</th><th>A</th><th>B</th><th>plan</th></tr>\n",
        );
        for phase in &c.phases {
            let class = if phase.same { "" } else { " class=\"differs\"" };
            let _ = writeln!(
                h,
                "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&phase.phase),
                esc(&phase_cell(phase.a.as_ref())),
                esc(&phase_cell(phase.b.as_ref())),
                esc(&plan_cell(phase))
            );
        }
        h.push_str("</table>\n");
    }
    if let Some(noise) = &c.noise {
        let text = if noise.same {
            "A ran twice and behaved identically: no noise.".to_owned()
        } else {
            format!(
                "A ran twice and differed in phases {} ({} documents, see noise.jsonl): a \
                 difference between A and B may be noise.",
                noise.phases.join(", "),
                noise.documents
            )
        };
        let _ = writeln!(h, "<h2>Noise (A against itself)</h2><p id=\"noise\">{}</p>", esc(&text));
    }
    let _ = writeln!(
        h,
        "<h2>Documents</h2><p id=\"documents\">{} documents would be processed differently.{}</p>",
        c.documents.differing,
        if c.documents.differing as usize > DETAILED_DOCUMENTS {
            format!(" The first {DETAILED_DOCUMENTS} are shown; {DIFF_FILE} has them all.")
        } else {
            String::new()
        }
    );
    for (n, document) in details.iter().enumerate() {
        let open = if n < 10 { " open" } else { "" };
        let _ = writeln!(
            h,
            "<details class=\"document\"{open}><summary>Document {} <code>{}</code> · phase {} · {}</summary>",
            id(document.document_id),
            esc(kb_path(c, document.document_id)),
            esc(&document.phase),
            esc(&counts_text(&document.ops))
        );
        h.push_str("<table class=\"ops\"><tr><th>operation</th><th>A</th><th>B</th></tr>\n");
        for op in &document.ops {
            let _ = writeln!(
                h,
                "<tr class=\"{}\"><td><code>{} {} {}</code><br><small>{}</small></td><td>{}</td><td>{}</td></tr>",
                kind_class(op.kind),
                esc(&op.action),
                esc(&op.table),
                esc(&op.key),
                kind_text(op.kind),
                image_cell(op.a.as_ref(), &op.fields),
                image_cell(op.b.as_ref(), &op.fields)
            );
        }
        h.push_str("</table></details>\n");
    }
    h.push_str("</body></html>\n");
    write_atomically(&run_dir.join("report.html"), h.as_bytes())
}

const STYLE: &str = "<style>\n\
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#1d1d1f}\n\
code,pre{font:12px/1.4 ui-monospace,monospace}\n\
pre{white-space:pre-wrap;word-break:break-word;margin:.3em 0;background:#f6f6f6;padding:.4em}\n\
table{border-collapse:collapse;width:100%;margin:.5em 0 1em}\n\
th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top}\n\
th{background:#f0f0f0}\n\
tr.differs td{background:#fff4e0}\n\
.verdict{font-size:1.2em;padding:.5em .8em;border-radius:4px}\n\
.verdict.same{background:#e3f6e3}.verdict.different{background:#fff1d6}\n\
.verdict.untrustworthy,.verdict.failed,.verdict.refused{background:#fde2e2}\n\
details.document{border:1px solid #ccc;border-radius:4px;margin:.6em 0;padding:.3em .6em}\n\
details.document summary{cursor:pointer;font-weight:600}\n\
table.ops td{width:45%}table.ops td:first-child{width:10%}\n\
tr.only_a td:nth-child(2){background:#fde2e2}tr.only_b td:nth-child(3){background:#e3f6e3}\n\
.field{display:block}.field.changed{background:#ffe9a8}\n\
.absent{color:#888;font-style:italic}\n\
</style>\n";

/// The differing documents the reports show in detail: the first
/// [`DETAILED_DOCUMENTS`] by id, every phase of each, from `diff.jsonl`.
fn read_details(run_dir: &Path, c: &Comparison) -> io::Result<Vec<DocumentOps>> {
    let wanted: BTreeSet<Option<i64>> =
        c.documents.listed.iter().take(DETAILED_DOCUMENTS).map(|d| d.document_id).collect();
    let path = run_dir.join(DIFF_FILE);
    if wanted.is_empty() || !path.is_file() {
        return Ok(Vec::new());
    }
    let mut details = Vec::new();
    for line in BufReader::new(File::open(&path)?).lines() {
        let document: DocumentOps = serde_json::from_str(&line?).map_err(|err| {
            io::Error::new(io::ErrorKind::InvalidData, format!("{DIFF_FILE}: {err}"))
        })?;
        if wanted.contains(&document.document_id) {
            details.push(document);
        }
    }
    // Document by document, phases in the order they were compared.
    details.sort_by_key(|d| d.document_id);
    Ok(details)
}

/// The refusal probe's answer, as both reports show it.
fn live_run(ks: &crate::run::report::KillSwitchReport) -> String {
    ks.live_refusal.as_ref().map_or("not probed".to_owned(), |p| {
        format!("{} ({})", if p.refused { "refused" } else { "NOT refused" }, p.answer)
    })
}

/// Where the data came from, when that says more than its kind.
fn location(source: &crate::source::SourceIdentity) -> String {
    if source.location == source.kind {
        String::new()
    } else {
        format!(" {}", source.location)
    }
}

fn verdict_word(c: &Comparison) -> String {
    format!("{:?}", c.verdict).to_lowercase()
}

fn id(document: Option<i64>) -> String {
    document.map_or_else(|| "(none)".to_owned(), |id| id.to_string())
}

fn kb_path(c: &Comparison, document: Option<i64>) -> &str {
    c.documents
        .listed
        .iter()
        .find(|d| d.document_id == document)
        .and_then(|d| d.kb_path.as_deref())
        .unwrap_or("-")
}

fn phase_cell(side: Option<&PhaseSide>) -> String {
    let Some(side) = side else { return "not declared".to_owned() };
    let mut text = side.status.clone();
    for (name, value) in &side.counts {
        let _ = write!(text, ", {name} {value}");
    }
    for (action, n) in &side.ops {
        let _ = write!(text, ", {n} {action}");
    }
    if side.findings.error + side.findings.warning > 0 {
        let _ = write!(
            text,
            ", findings {} error {} warning",
            side.findings.error, side.findings.warning
        );
    }
    text
}

fn plan_cell(phase: &super::PhaseComparison) -> String {
    match &phase.plan {
        Some(plan) if plan.identical => "identical".to_owned(),
        Some(plan) => format!(
            "{} only in A, {} only in B, {} changed, in {} documents",
            plan.only_a, plan.only_b, plan.changed, plan.documents
        ),
        None if phase.same => "-".to_owned(),
        None => "not compared (a plan is incomplete)".to_owned(),
    }
}

fn counts_text(ops: &[OpDifference]) -> String {
    let count = |kind| ops.iter().filter(|o| o.kind == kind).count();
    format!(
        "{} only in A, {} only in B, {} changed",
        count(DifferenceKind::OnlyA),
        count(DifferenceKind::OnlyB),
        count(DifferenceKind::Changed)
    )
}

fn kind_class(kind: DifferenceKind) -> &'static str {
    match kind {
        DifferenceKind::OnlyA => "only_a",
        DifferenceKind::OnlyB => "only_b",
        DifferenceKind::Changed => "changed",
    }
}

fn kind_text(kind: DifferenceKind) -> &'static str {
    match kind {
        DifferenceKind::OnlyA => "only in A",
        DifferenceKind::OnlyB => "only in B",
        DifferenceKind::Changed => "changed",
    }
}

/// One line of Markdown for an operation: its key, and the fields a
/// reviewer of a cut reads, A → B where they changed.
fn op_line(op: &OpDifference) -> String {
    let mut line = format!("{} `{} {} {}`", kind_text(op.kind), op.action, op.table, op.key);
    let short = |v: Option<&Value>| v.map_or_else(|| "-".to_owned(), scalar);
    match (op.a.as_ref(), op.b.as_ref()) {
        (Some(a), Some(b)) => {
            // A body's digest changes with it and says nothing more.
            let body = op.fields.iter().any(|f| f == "body");
            let changes: Vec<String> = op
                .fields
                .iter()
                .filter(|f| !(body && f.as_str() == "body_sha256"))
                .map(|f| match f.as_str() {
                    "body" => body_change(a.get("body"), b.get("body")),
                    _ => format!("{f} {} → {}", short(a.get(f)), short(b.get(f))),
                })
                .collect();
            let _ = write!(line, ": {}", changes.join("; "));
        }
        (Some(image), None) | (None, Some(image)) => {
            let fields: Vec<String> = KEY_FIELDS
                .iter()
                .filter_map(|f| image.get(*f).map(|v| format!("{f} {}", scalar(v))))
                .collect();
            let body = image.get("body").and_then(Value::as_str).map_or(0, str::len);
            let _ = write!(line, ": {} ({body} body bytes)", fields.join(", "));
        }
        (None, None) => {}
    }
    line
}

fn body_change(a: Option<&Value>, b: Option<&Value>) -> String {
    let len = |v: Option<&Value>| v.and_then(Value::as_str).map_or(0, str::len);
    format!("body {} → {} bytes", len(a), len(b))
}

/// A scalar as a reviewer reads it: strings quoted, `""` for empty.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// An after-image for the HTML page: the key fields, the body, the rest;
/// fields that changed are marked.
fn image_cell(image: Option<&Value>, changed: &[String]) -> String {
    let Some(image) = image else { return "<span class=\"absent\">absent</span>".to_owned() };
    let Some(object) = image.as_object() else {
        return format!("<pre>{}</pre>", esc(&image.to_string()));
    };
    let mut cell = String::new();
    let mark = |f: &str| if changed.iter().any(|c| c == f) { " changed" } else { "" };
    for field in KEY_FIELDS {
        if let Some(value) = object.get(*field) {
            let _ = write!(
                cell,
                "<span class=\"field{}\"><b>{field}</b> {}</span>",
                mark(field),
                esc(&scalar(value))
            );
        }
    }
    for (field, value) in object {
        if KEY_FIELDS.contains(&field.as_str()) || field == "body" {
            continue;
        }
        if !mark(field).is_empty() {
            let _ = write!(
                cell,
                "<span class=\"field changed\"><b>{}</b> {}</span>",
                esc(field),
                esc(&scalar(value))
            );
        }
    }
    if let Some(body) = object.get("body").and_then(Value::as_str) {
        let shown: String = body.chars().take(BODY_PREVIEW).collect();
        let more = if shown.len() < body.len() { "\n…" } else { "" };
        let _ = write!(
            cell,
            "<span class=\"field{}\"><b>body</b> ({} bytes)</span><pre>{}{more}</pre>",
            mark("body"),
            body.len(),
            esc(&shown)
        );
    }
    cell
}

/// A Markdown table cell: no pipes or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_everything_a_plugin_controls() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let image = serde_json::json!({"heading": "<img src=x>", "body": "</pre><script>"});
        let cell = image_cell(Some(&image), &["heading".to_owned()]);
        assert!(!cell.contains("<img") && !cell.contains("<script"), "{cell}");
        assert!(cell.contains("field changed"), "{cell}");
    }

    #[test]
    fn an_operation_line_names_what_changed() {
        let op = OpDifference {
            kind: DifferenceKind::Changed,
            action: "insert".into(),
            table: "information_unit".into(),
            key: "100005:3".into(),
            a: Some(serde_json::json!({"anchor": "usage", "body": "abc"})),
            b: Some(serde_json::json!({"anchor": "usage-1", "body": "abcd"})),
            fields: vec!["anchor".into(), "body".into()],
        };
        assert_eq!(
            op_line(&op),
            "changed `insert information_unit 100005:3`: anchor \"usage\" → \"usage-1\"; body 3 → 4 bytes"
        );
    }
}
