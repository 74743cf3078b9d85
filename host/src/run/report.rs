//! `summary.json`, `approvals/<phase>.json` and the Markdown reports in
//! `kb/`: what an operator reads after a run, modelled on the field reports
//! (verification, load, each phase, kill-switch, integrity, decision).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::Serialize;

use super::plan::PlanFile;
use super::state::PluginIdentity;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::tree::write_atomically;
use crate::plugin::{Finding, PluginInfo};
use crate::policy::kill_switch::LiveRefusal;
use crate::run::queries::QueryTotals;
use crate::source::SourceIdentity;
use crate::worker::Sandbox;

/// How many findings of each phase are kept for the reports (all are
/// counted).
pub const FINDING_EXAMPLES: usize = 20;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every phase ran on every batch; no error finding; integrity intact.
    Completed,
    /// Something failed; see `reason`.
    Failed,
    /// The host's policy refused the plugin; see `reason`.
    Refused,
}

/// Findings by severity.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FindingCounts {
    /// Error findings (each fails its phase).
    pub error: u64,
    /// Warnings.
    pub warning: u64,
    /// Informational findings.
    pub info: u64,
}

/// One phase over all batches.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseSummary {
    /// The phase.
    pub name: String,
    /// `ok`, `failed`, `not_implemented`, or `not_run`.
    pub status: String,
    /// Counters summed over batches.
    pub counts: BTreeMap<String, u64>,
    /// Findings by severity.
    pub findings: FindingCounts,
    /// The first findings, for the reports.
    pub examples: Vec<Finding>,
    /// The plan file, once the phase has run on every batch.
    pub plan: Option<PlanFile>,
    /// Operations so far by action (also in `plan` when complete).
    pub ops: BTreeMap<String, u64>,
    /// The plugin's note, when it gave one.
    pub note: String,
    /// Time spent in the phase over all batches.
    pub duration_ms: u64,
}

impl PhaseSummary {
    /// A phase that has not run yet.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            status: "not_run".to_owned(),
            counts: BTreeMap::new(),
            findings: FindingCounts::default(),
            examples: Vec::new(),
            plan: None,
            ops: BTreeMap::new(),
            note: String::new(),
            duration_ms: 0,
        }
    }
}

/// The kill-switch evidence.
#[derive(Debug, Clone, Serialize)]
pub struct KillSwitchReport {
    /// Always true: the host's dispatcher has no live path.
    pub host_refuses_live: bool,
    /// The plugin's switch before any phase.
    pub execution_enabled_before: Option<bool>,
    /// The plugin's switch after the last phase.
    pub execution_enabled_after: Option<bool>,
    /// The refusal probe.
    pub live_refusal: Option<LiveRefusal>,
}

/// Proof the plugin directory was not touched.
#[derive(Debug, Clone, Serialize)]
pub struct IntegrityReport {
    /// Whether every file's bytes and modification time are as before.
    pub plugin_dir_unchanged: Option<bool>,
    /// The artifact digest before the run.
    pub artifact_sha256_before: Option<Sha256Digest>,
    /// The artifact digest re-verified after the run.
    pub artifact_sha256_after: Option<Sha256Digest>,
    /// What changed, if anything.
    pub problems: Vec<String>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// The run.
    pub run_id: String,
    /// The run folder.
    pub run_dir: String,
    /// How it ended.
    pub verdict: Verdict,
    /// Why it failed or was refused.
    pub reason: Option<String>,
    /// The plugin.
    pub plugin: Option<PluginIdentity>,
    /// What it declared.
    pub declared: Option<PluginInfo>,
    /// The data source.
    pub source: SourceIdentity,
    /// Batches fed to the plugin.
    pub batches: u64,
    /// Documents fed to the plugin.
    pub documents: u64,
    /// Per phase, in order.
    pub phases: Vec<PhaseSummary>,
    /// The kill-switch evidence.
    pub kill_switch: KillSwitchReport,
    /// How the plugin's worker was sandboxed; `null` when no worker started.
    pub sandbox: Option<Sandbox>,
    /// The plugin directory afterwards.
    pub integrity: IntegrityReport,
    /// Peak memory of the processes of the run.
    pub resources: Resources,
    /// The plugin's queries (each one is in `queries.jsonl`).
    pub queries: QueryTotals,
    /// Wall time of the run.
    pub duration_ms: u64,
}

/// Peak resident memory, in KiB; `null` when not measured (the worker's is
/// read just before it is asked to exit, so a worker that crashed has none).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resources {
    /// The host process.
    pub host_max_rss_kib: Option<u64>,
    /// The plugin's worker process.
    pub worker_max_rss_kib: Option<u64>,
}

impl Summary {
    /// The summary of a run that has not started yet: `failed` until it
    /// says otherwise, so a summary is never optimistic.
    pub fn new(run_id: &str, run_dir: &Path, source: SourceIdentity) -> Self {
        Self {
            schema_version: 1,
            run_id: run_id.to_owned(),
            run_dir: run_dir.display().to_string(),
            verdict: Verdict::Failed,
            reason: None,
            plugin: None,
            declared: None,
            source,
            batches: 0,
            documents: 0,
            phases: Vec::new(),
            kill_switch: KillSwitchReport {
                host_refuses_live: true,
                execution_enabled_before: None,
                execution_enabled_after: None,
                live_refusal: None,
            },
            sandbox: None,
            integrity: IntegrityReport {
                plugin_dir_unchanged: None,
                artifact_sha256_before: None,
                artifact_sha256_after: None,
                problems: Vec::new(),
            },
            resources: Resources::default(),
            queries: QueryTotals::default(),
            duration_ms: 0,
        }
    }
}

/// Writes `plan/SHA256SUMS`, so `sha256sum -c SHA256SUMS` inside `plan/`
/// checks every finished plan file against the digests the reports quote.
pub fn write_plan_sums(run_dir: &Path, summary: &Summary) -> io::Result<()> {
    let mut text = String::new();
    for plan in summary.phases.iter().filter_map(|p| p.plan.as_ref()) {
        let name = plan.file.strip_prefix("plan/").unwrap_or(&plan.file);
        let _ = writeln!(text, "{}  {name}", plan.sha256);
    }
    if text.is_empty() {
        return Ok(());
    }
    write_atomically(&run_dir.join("plan").join("SHA256SUMS"), text.as_bytes())
}

/// `approvals/<phase>.json`: what a reviewer must sign off before the plan
/// of a mutating phase may ever be applied.
#[derive(Debug, Serialize)]
struct Approval<'a> {
    schema_version: u32,
    run_id: &'a str,
    phase: &'a str,
    status: &'static str,
    plan_file: &'a str,
    plan_sha256: Sha256Digest,
    ops: &'a BTreeMap<String, u64>,
    reviewer_must_check: Vec<&'static str>,
}

fn checklist(phase: &str) -> Vec<&'static str> {
    let mut checks = match phase {
        "backup" => vec![
            "every unit listed is one a later phase of this plan supersedes or retires",
            "the backup digest matches the units' serialized contents",
        ],
        "leg_b_record" => vec![
            "write_verify passed for this run: the new units of each version concatenate to its exact body",
            "the per-document unit boundaries, headings and anchors are the intended ones",
        ],
        "lifecycle_enact" => vec![
            "superseded units belong to documents re-cut by this plan",
            "retired units belong to archived documents",
        ],
        _ => vec!["every operation in the plan file is intended"],
    };
    checks.push("the plan file's sha256 matches plan_sha256 (it is what was reviewed)");
    checks.push("the data snapshot the plan was computed on is still current");
    checks
}

/// Writes an approval stub for every phase whose plan has operations.
pub fn write_approvals(run_dir: &Path, summary: &Summary) -> io::Result<()> {
    for phase in &summary.phases {
        let Some(plan) = &phase.plan else { continue };
        if plan.ops.values().sum::<u64>() == 0 {
            continue;
        }
        let approval = Approval {
            schema_version: 1,
            run_id: &summary.run_id,
            phase: &phase.name,
            status: "pending",
            plan_file: &plan.file,
            plan_sha256: plan.sha256,
            ops: &plan.ops,
            reviewer_must_check: checklist(&phase.name),
        };
        let path = run_dir.join("approvals").join(format!("{}.json", phase.name));
        write_json(&path, &approval)?;
    }
    Ok(())
}

/// Writes `summary.json`.
pub fn write_summary(run_dir: &Path, summary: &Summary) -> io::Result<()> {
    write_json(&run_dir.join("summary.json"), summary)
}

/// Escapes text a plugin controls for HTML or XML, in an element or an
/// attribute: the five markup characters, and line breaks and tabs as
/// character references (an XML attribute would fold them into spaces).
/// Characters XML 1.0 cannot carry at all (the other control characters)
/// become U+FFFD: a plugin's message must never make a report unreadable.
pub fn escape_markup(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Writes `value` as pretty JSON with a final newline, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    write_atomically(path, text.as_bytes())
}

/// Writes the Markdown reports in `kb/`.
pub fn write_kb(run_dir: &Path, summary: &Summary) -> io::Result<()> {
    let kb = run_dir.join("kb");
    let plugin = summary.plugin.as_ref();
    let who = plugin
        .map_or_else(|| "(plugin not read)".to_owned(), |p| format!("{} {}", p.name, p.version));

    let mut text = format!("# Verification — {who}\n\n");
    match plugin {
        Some(p) => {
            let _ = writeln!(text, "- directory: `{}`", p.dir);
            let _ = writeln!(text, "- artifact_sha256: `{}`", p.artifact_sha256);
            if let Some(m) = p.manifest_sha256 {
                let _ = writeln!(text, "- DEPLOY-MANIFEST.txt sha256: `{m}`");
            }
            let _ = writeln!(
                text,
                "- every listed file present with its sha256, nothing unlisted: yes"
            );
        }
        None => {
            let _ = writeln!(text, "The plugin directory did not verify; nothing of it ran.");
        }
    }
    add_reason(&mut text, summary);
    write_atomically(&kb.join("01-verification.md"), text.as_bytes())?;

    let mut text = format!("# Load — {who}\n\n");
    if let (Some(p), Some(info)) = (plugin, &summary.declared) {
        let _ =
            writeln!(text, "- loaded in its own worker process from a sealed copy of the library");
        if let Some(sandbox) = &summary.sandbox {
            let _ = writeln!(text, "- sandbox: {sandbox}");
        }
        let _ = writeln!(
            text,
            "- ABI: sidecar-abi {} (host {})",
            p.abi_version,
            sidecar_abi::ABI_VERSION
        );
        let _ = writeln!(text, "- milestone: {}", or_none(&info.milestone));
        let _ = writeln!(text, "- live_wiring: {}", or_none(&info.live_wiring));
        let _ = writeln!(text, "- capabilities: {}", or_none(&info.capabilities.join(", ")));
        let _ = writeln!(text, "\n| phase | side effects | dry-run safe |\n|---|---|---|");
        for phase in &info.phases {
            let _ = writeln!(
                text,
                "| {} | {} | {} |",
                phase.name,
                phase.side_effects,
                yes(phase.dry_run_safe)
            );
        }
    } else {
        let _ = writeln!(text, "The plugin was not loaded.");
    }
    write_atomically(&kb.join("02-load.md"), text.as_bytes())?;

    let ks = &summary.kill_switch;
    let mut text = format!("# Kill-switch — {who}\n\n");
    let _ = writeln!(
        text,
        "- host dispatcher refuses `Live` (no flag, variable or setting enables it): yes"
    );
    let _ = writeln!(
        text,
        "- execution_enabled before the run: {}",
        opt_bool(ks.execution_enabled_before)
    );
    let _ = writeln!(
        text,
        "- execution_enabled after the run: {}",
        opt_bool(ks.execution_enabled_after)
    );
    match &ks.live_refusal {
        Some(probe) => {
            let _ = writeln!(
                text,
                "- refusal probe (a live run in an empty context): {} — {}",
                refused(probe.refused),
                probe.answer
            );
        }
        None => {
            let _ = writeln!(text, "- refusal probe: not reached");
        }
    }
    write_atomically(&kb.join("03-kill-switch.md"), text.as_bytes())?;

    for (index, phase) in summary.phases.iter().enumerate() {
        let mut text = format!("# Phase {} — {} ({})\n\n", index + 1, phase.name, phase.status);
        if !phase.note.is_empty() {
            let _ = writeln!(text, "> {}\n", phase.note);
        }
        let _ = writeln!(text, "| count | value |\n|---|---|");
        for (name, value) in &phase.counts {
            let _ = writeln!(text, "| {name} | {value} |");
        }
        let f = &phase.findings;
        let _ = writeln!(
            text,
            "\nFindings: {} error, {} warning, {} info.",
            f.error, f.warning, f.info
        );
        for finding in &phase.examples {
            let _ = writeln!(
                text,
                "- **{}** `{}` {}: {}",
                finding.severity, finding.code, finding.subject, finding.message
            );
        }
        match &phase.plan {
            Some(plan) => {
                let ops: Vec<String> = plan.ops.iter().map(|(a, n)| format!("{n} {a}")).collect();
                let _ = writeln!(
                    text,
                    "\nPlan: `{}` (sha256 `{}`): {}.",
                    plan.file,
                    plan.sha256,
                    or_none(&ops.join(", "))
                );
            }
            None => {
                let _ = writeln!(
                    text,
                    "\nPlan: incomplete (the run stopped before this phase finished)."
                );
            }
        }
        write_atomically(
            &kb.join(format!("04-phase-{:02}-{}.md", index + 1, phase.name)),
            text.as_bytes(),
        )?;
    }

    let integrity = &summary.integrity;
    let mut text = format!("# Integrity — {who}\n\n");
    let _ = writeln!(
        text,
        "- plugin directory byte-identical after the run (contents and mtimes): {}",
        opt_bool(integrity.plugin_dir_unchanged)
    );
    if let Some(after) = integrity.artifact_sha256_after {
        let _ = writeln!(text, "- artifact_sha256 re-verified after the run: `{after}`");
    }
    for problem in &integrity.problems {
        let _ = writeln!(text, "- changed: {problem}");
    }
    let q = &summary.queries;
    let _ = writeln!(
        text,
        "- plugin queries: {} sent, {} refused by the host, {} failed at the server, {} rows \
         returned (each statement is in `queries.jsonl`)",
        q.statements, q.refused, q.failed, q.rows
    );
    write_atomically(&kb.join("05-integrity.md"), text.as_bytes())?;

    let mut text = format!("# Decision — {who}\n\n");
    let _ = writeln!(text, "- verdict: **{:?}**", summary.verdict);
    add_reason(&mut text, summary);
    let _ = writeln!(
        text,
        "- source: {} `{}` (digest `{}`)",
        summary.source.kind, summary.source.location, summary.source.digest
    );
    let _ = writeln!(text, "- batches: {}, documents: {}", summary.batches, summary.documents);
    let pending: Vec<&str> = summary
        .phases
        .iter()
        .filter(|p| p.plan.as_ref().is_some_and(|pl| pl.ops.values().sum::<u64>() > 0))
        .map(|p| p.name.as_str())
        .collect();
    let _ = writeln!(text, "- approvals pending: {}", or_none(&pending.join(", ")));
    let _ = writeln!(text, "- nothing was executed live; promotion is a separate, reviewed step");
    let _ = writeln!(
        text,
        "\nRemove this run: `rm -rf {}` (nothing of it lives elsewhere).",
        summary.run_dir
    );
    write_atomically(&kb.join("06-decision.md"), text.as_bytes())
}

fn add_reason(text: &mut String, summary: &Summary) {
    if let Some(reason) = &summary.reason {
        let _ = writeln!(text, "\n**{:?}:** {reason}", summary.verdict);
    }
}

fn or_none(text: &str) -> String {
    if text.is_empty() {
        "(none)".to_owned()
    } else {
        text.to_owned()
    }
}

fn yes(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

fn refused(value: bool) -> &'static str {
    if value {
        "refused"
    } else {
        "NOT refused"
    }
}

fn opt_bool(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "not checked",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_cannot_break_a_report() {
        assert_eq!(
            escape_markup("a<b>&\"c\"'\u{1}\u{7}\n\t"),
            "a&lt;b&gt;&amp;&quot;c&quot;&#39;\u{FFFD}\u{FFFD}&#10;&#9;"
        );
    }
}
