//! A comparison: two versions dry-run side by side on identical data, and
//! what one would do differently from the other.
//!
//! The order, and where it can stop:
//! 1. both directories are verified (and matched to their pins) before
//!    either is loaded: a comparison with an unverifiable side runs nothing;
//! 2. each side opens as a dry run of its own ([`Side`]) in a folder inside
//!    the comparison's (`a/`, `b/`, and `a2/` for `--aa`), with its own
//!    worker and policy checks;
//! 3. the source is prepared once (for PostgreSQL: one exported snapshot,
//!    which every side's query session imports) and read once; every batch
//!    goes to every side ([`source::fan_out`]), and the sides' phases run at
//!    the same time, one thread and one worker each. A side that crashes or
//!    fails stops alone; the others complete;
//! 4. the sides' summaries and plan files are compared: identity, trees,
//!    kill-switch, per phase status, counts, findings and plans, and the
//!    plans' operations by document ([`plans`]).
//!
//! The verdict, and the exit code it earns: `same` (0), `different` (1),
//! `untrustworthy` (1: with `--aa`, A differed from itself), `failed` (2: a
//! side did not complete, or the comparison could not be made), `refused`
//! (3: the host's policy refused a side).

pub mod plans;
pub mod report;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;

use crate::dry_run::{self, DryRunOptions, Finished, Side};
use crate::integrity::diff::TreeDiff;
use crate::integrity::lock::LockFile;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::{self};
use crate::run::report::{
    self as run_report, FindingCounts, KillSwitchReport, PhaseSummary, Summary, Verdict,
};
use crate::run::state::{RunState, State};
use crate::run::RunDir;
use crate::source::{self, Source, SourceIdentity};
use crate::worker::Limits;
use plans::{DifferenceKind, DocumentOps, PlanTotals};

/// The file of every document's differences, one JSON object a line.
pub const DIFF_FILE: &str = "diff.jsonl";

/// The file of A's differences from itself (`--aa`).
pub const NOISE_FILE: &str = "noise.jsonl";

/// How many differing documents `compare.json` lists (all are counted, and
/// all are in [`DIFF_FILE`]).
pub const LISTED_DOCUMENTS: usize = 1000;

/// What a comparison needs.
#[derive(Debug)]
pub struct CompareOptions<'a> {
    /// Side A, e.g. the deployed version.
    pub dir_a: &'a Path,
    /// Side B, e.g. the staged version.
    pub dir_b: &'a Path,
    /// The lock file in use, if any.
    pub lock: Option<&'a LockFile>,
    /// Where run folders go.
    pub runs_dir: &'a Path,
    /// Documents per batch.
    pub batch_size: usize,
    /// The deadline of one worker call and each worker's memory.
    pub limits: Limits,
    /// Also run A a second time and report A-vs-A differences as noise.
    pub aa: bool,
    /// Also write the self-contained `report.html`.
    pub html: bool,
}

/// How a comparison ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareVerdict {
    /// Both sides completed and behaved identically.
    Same,
    /// Both sides completed, and B would do something A would not.
    Different,
    /// With `--aa`: A differed from itself, so a difference means nothing.
    Untrustworthy,
    /// A side did not complete, or the comparison could not be made.
    Failed,
    /// The host's policy refused a side.
    Refused,
}

/// `compare.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// The comparison's id, also its folder name.
    pub compare_id: String,
    /// The comparison's folder.
    pub run_dir: String,
    /// The verdict.
    pub verdict: CompareVerdict,
    /// Why, in one line.
    pub reason: String,
    /// The data both sides read (for PostgreSQL, the snapshot).
    pub source: SourceIdentity,
    /// A, B, and A again with `--aa`.
    pub sides: Vec<SideReport>,
    /// What each side is, field by field.
    pub identity: Vec<IdentityRow>,
    /// How B's files differ from A's (absent when a side did not verify).
    pub tree: Option<TreeComparison>,
    /// Per phase, in A's order, then phases only B declares.
    pub phases: Vec<PhaseComparison>,
    /// The documents whose operations differ.
    pub documents: DocumentsReport,
    /// With `--aa`: A against itself.
    pub noise: Option<NoiseReport>,
    /// Wall time of the comparison.
    pub duration_ms: u64,
}

/// One side.
#[derive(Debug, Clone, Serialize)]
pub struct SideReport {
    /// `a`, `b` or `a2`; also the folder of its run.
    pub side: String,
    /// The plugin directory as given.
    pub dir: String,
    /// How its run ended.
    pub verdict: Verdict,
    /// Why it failed or was refused.
    pub reason: Option<String>,
    /// Name and version from the manifest, once verified.
    pub plugin: Option<String>,
    /// The kill-switch evidence.
    pub kill_switch: KillSwitchReport,
    /// Documents the side was fed.
    pub documents: u64,
    /// The run's wall time.
    pub duration_ms: u64,
    /// Peak memory of its worker, when measured.
    pub worker_max_rss_kib: Option<u64>,
}

/// One identity field of both sides.
#[derive(Debug, Clone, Serialize)]
pub struct IdentityRow {
    /// `name`, `version`, `milestone`, `live_wiring`, `capabilities`,
    /// `phases`, `abi_version`, `artifact_sha256` or `manifest_sha256`.
    pub field: &'static str,
    /// A's value (`-` when unknown).
    pub a: String,
    /// B's value.
    pub b: String,
    /// Whether they are equal.
    pub same: bool,
}

/// The trees, from the two manifests.
#[derive(Debug, Clone, Serialize)]
pub struct TreeComparison {
    /// Whether the two directories hold the same files.
    pub identical: bool,
    /// The differences.
    #[serde(flatten)]
    pub diff: TreeDiff,
}

/// One phase on both sides.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseComparison {
    /// The phase.
    pub phase: String,
    /// A's outcome; `null` when A does not declare the phase.
    pub a: Option<PhaseSide>,
    /// B's outcome; `null` when B does not declare the phase.
    pub b: Option<PhaseSide>,
    /// Whether status, counts, findings and plan are all equal.
    pub same: bool,
    /// The plans' operations, when both plans are complete.
    pub plan: Option<PlanTotals>,
}

/// One side's outcome of a phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PhaseSide {
    /// `ok`, `failed`, `not_implemented` or `not_run`.
    pub status: String,
    /// Counters summed over batches.
    pub counts: BTreeMap<String, u64>,
    /// Findings by severity.
    pub findings: Findings,
    /// Operations by action.
    pub ops: BTreeMap<String, u64>,
    /// The plan file's sha256, once complete.
    pub plan_sha256: Option<Sha256Digest>,
}

/// Findings by severity, comparable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// Errors.
    pub error: u64,
    /// Warnings.
    pub warning: u64,
    /// Informational.
    pub info: u64,
}

impl From<&FindingCounts> for Findings {
    fn from(counts: &FindingCounts) -> Self {
        Self { error: counts.error, warning: counts.warning, info: counts.info }
    }
}

/// The differing documents.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DocumentsReport {
    /// How many documents differ in at least one phase.
    pub differing: u64,
    /// The first [`LISTED_DOCUMENTS`] of them, by id.
    pub listed: Vec<DocumentDifference>,
    /// Whether more differ than are listed (all are in `diff.jsonl`).
    pub truncated: bool,
}

/// One document that would be processed differently.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentDifference {
    /// The document, from the after-images.
    pub document_id: Option<i64>,
    /// Its path in the knowledge base, from the source.
    pub kb_path: Option<String>,
    /// Per phase: how many operations differ.
    pub phases: BTreeMap<String, OpCounts>,
}

/// Operations that differ, by kind.
#[derive(Debug, Clone, Default, Serialize)]
pub struct OpCounts {
    /// Only in A.
    pub only_a: u64,
    /// Only in B.
    pub only_b: u64,
    /// In both, changed.
    pub changed: u64,
}

/// A against itself.
#[derive(Debug, Clone, Serialize)]
pub struct NoiseReport {
    /// Whether A's two runs behaved identically.
    pub same: bool,
    /// The phases that differed between them.
    pub phases: Vec<String>,
    /// Documents whose operations differed between them (in `noise.jsonl`).
    pub documents: u64,
}

/// A finished comparison.
#[derive(Debug)]
pub struct Compared {
    /// Its folder.
    pub run_dir: PathBuf,
    /// `compare.json`'s contents.
    pub comparison: Comparison,
    /// The sides' runs, by side name.
    pub sides: Vec<(String, Finished)>,
}

/// The sides' runs, and the `kb_path` of every document they were fed.
struct Ran {
    sides: Vec<(String, Finished)>,
    /// Sorted by id.
    kb_paths: Vec<(i64, String)>,
}

impl Ran {
    fn summary(&self, name: &str) -> Option<&Summary> {
        self.sides.iter().find(|(n, _)| n == name).map(|(_, f)| &f.summary)
    }
}

/// Compares the plugins at `options.dir_a` and `options.dir_b` on `source`.
pub fn compare(options: &CompareOptions<'_>, source: &dyn Source) -> io::Result<Compared> {
    let label =
        format!("compare-{}-vs-{}", dry_run::label(options.dir_a), dry_run::label(options.dir_b));
    compare_in(options, source, RunDir::create_with(options.runs_dir, &label, &["kb"])?)
}

/// [`compare`] in a folder the caller made (with a `kb/` sub-folder), e.g.
/// inside a compatibility run.
pub fn compare_in(
    options: &CompareOptions<'_>,
    source: &dyn Source,
    run: RunDir,
) -> io::Result<Compared> {
    let started = Instant::now();
    let mut state = RunState::create(&run.path, &run.id, "compare")?;
    state.record.source = Some(source.describe());
    let mut comparison = Comparison {
        schema_version: 1,
        compare_id: run.id.clone(),
        run_dir: run.path.display().to_string(),
        verdict: CompareVerdict::Failed,
        reason: String::new(),
        source: source.describe(),
        sides: Vec::new(),
        identity: Vec::new(),
        tree: None,
        phases: Vec::new(),
        documents: DocumentsReport::default(),
        noise: None,
        duration_ms: 0,
    };

    let mut sides = Vec::new();
    match verify_both(options) {
        Err(reason) => comparison.reason = reason,
        Ok(tree) => {
            comparison.tree = Some(tree);
            state.enter(State::Verified)?;
            let ran = run_sides(options, source, &run, &mut state)?;
            comparison.source = source_of(&ran).unwrap_or_else(|| source.describe());
            judge(&run, &ran, &mut comparison)?;
            sides = ran.sides;
        }
    }
    comparison.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report::write_markdown(&run.path, &comparison)?;
    if options.html {
        report::write_html(&run.path, &comparison)?;
    }
    run_report::write_json(&run.path.join("compare.json"), &comparison)?;
    state.record.source = Some(comparison.source.clone());
    match comparison.verdict {
        CompareVerdict::Failed => state.stop(State::Failed, &comparison.reason)?,
        CompareVerdict::Refused => state.stop(State::Refused, &comparison.reason)?,
        _ => state.enter(State::Completed)?,
    }
    Ok(Compared { run_dir: run.path, comparison, sides })
}

/// Both directories verify (and match their pins); their trees compared.
/// Each side's load verifies its directory again, on the bytes it loads:
/// this first pass only makes sure neither side runs unless both verify.
fn verify_both(options: &CompareOptions<'_>) -> Result<TreeComparison, String> {
    let a = integrity::verify(options.dir_a, &[], options.lock);
    let b = integrity::verify(options.dir_b, &[], options.lock);
    let mut problems = Vec::new();
    for (side, verified) in [("A", &a), ("B", &b)] {
        if !verified.ok() {
            let first = verified.problems.iter().map(ToString::to_string).collect::<Vec<_>>();
            problems.push(format!(
                "side {side} ({}) does not verify: {}",
                verified.dir.display(),
                first.join("; ")
            ));
        }
    }
    match (a.manifest, b.manifest) {
        (Some(a), Some(b)) if problems.is_empty() => {
            let diff = integrity::diff::diff(&a, &b);
            Ok(TreeComparison { identical: diff.is_empty(), diff })
        }
        _ => Err(format!("nothing was run: {}", problems.join("; "))),
    }
}

/// Opens every side, prepares and reads the source once, runs the sides at
/// the same time, and closes them.
fn run_sides(
    options: &CompareOptions<'_>,
    source: &dyn Source,
    run: &RunDir,
    state: &mut RunState,
) -> io::Result<Ran> {
    let mut plan = vec![("a", options.dir_a), ("b", options.dir_b)];
    if options.aa {
        plan.push(("a2", options.dir_a));
    }
    let side_options: Vec<DryRunOptions<'_>> = plan
        .iter()
        .map(|(_, dir)| DryRunOptions {
            dir,
            lock: options.lock,
            runs_dir: options.runs_dir,
            batch_size: options.batch_size,
            limits: options.limits,
        })
        .collect();
    let mut sides = Vec::with_capacity(plan.len());
    for ((name, _), side_options) in plan.iter().zip(&side_options) {
        sides.push(Side::open(side_options, run.nested(name)?, source)?);
    }
    let kb_paths = Mutex::new(Vec::new());
    if sides.iter().any(Side::is_ready) {
        // One preparation for all: for PostgreSQL, one snapshot.
        let prepared = source.prepare(&run.id);
        for side in &mut sides {
            side.source_prepared(source, prepared.clone());
        }
    }
    let ready: Vec<&mut Side<'_>> = sides.iter_mut().filter(|s| s.is_ready()).collect();
    if !ready.is_empty() {
        state.enter(State::Running)?;
        std::thread::scope(|scope| {
            let feeds = source::fan_out(
                scope,
                source.batches(options.batch_size),
                ready.len(),
                2,
                |batch| {
                    let mut kb_paths =
                        kb_paths.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    kb_paths.extend(batch.documents.iter().map(|d| (d.id, d.kb_path.clone())));
                },
            );
            // Every side but the last on a thread of its own, the last on
            // this one.
            let mut sides = ready.into_iter().zip(feeds);
            let last = sides.next_back();
            for (side, feed) in sides {
                scope.spawn(move || side.run(source, feed));
            }
            if let Some((side, feed)) = last {
                side.run(source, feed);
            }
        });
    }
    source.finish();
    let mut finished = Vec::with_capacity(sides.len());
    for ((name, _), side) in plan.iter().zip(sides) {
        finished.push(((*name).to_owned(), side.close()?));
    }
    let mut kb_paths = kb_paths.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    kb_paths.sort_unstable();
    Ok(Ran { sides: finished, kb_paths })
}

/// The source as the sides recorded it once prepared (with the snapshot).
fn source_of(ran: &Ran) -> Option<SourceIdentity> {
    let completed = ran.sides.iter().map(|(_, f)| &f.summary);
    completed.filter(|s| s.verdict == Verdict::Completed).map(|s| s.source.clone()).next()
}

/// Fills in the comparison from the sides' runs and decides the verdict.
fn judge(run: &RunDir, ran: &Ran, comparison: &mut Comparison) -> io::Result<()> {
    let (Some(a), Some(b)) = (ran.summary("a"), ran.summary("b")) else {
        comparison.reason = "the sides did not run".to_owned();
        return Ok(());
    };
    comparison.sides =
        ran.sides.iter().map(|(name, finished)| side_report(name, &finished.summary)).collect();
    comparison.identity = identity(a, b);

    let mut differing: BTreeMap<Option<i64>, DocumentDifference> = BTreeMap::new();
    let mut out = JsonLines::create(&run.path.join(DIFF_FILE))?;
    comparison.phases = compare_phases(a, b, &mut |document| {
        let entry = differing.entry(document.document_id).or_insert_with(|| DocumentDifference {
            document_id: document.document_id,
            kb_path: document.document_id.and_then(|id| {
                let at = ran.kb_paths.binary_search_by_key(&id, |(id, _)| *id).ok()?;
                Some(ran.kb_paths[at].1.clone())
            }),
            phases: BTreeMap::new(),
        });
        let counts = entry.phases.entry(document.phase.clone()).or_default();
        for op in &document.ops {
            match op.kind {
                DifferenceKind::OnlyA => counts.only_a += 1,
                DifferenceKind::OnlyB => counts.only_b += 1,
                DifferenceKind::Changed => counts.changed += 1,
            }
        }
        out.write(&document)
    })?;
    out.finish()?;
    comparison.documents = DocumentsReport {
        differing: differing.len() as u64,
        truncated: differing.len() > LISTED_DOCUMENTS,
        listed: differing.into_values().take(LISTED_DOCUMENTS).collect(),
    };

    if let Some(a2) = ran.summary("a2") {
        let mut documents = 0;
        let mut noise = JsonLines::create(&run.path.join(NOISE_FILE))?;
        let phases = compare_phases(a, a2, &mut |document| {
            documents += 1;
            noise.write(&document)
        })?;
        noise.finish()?;
        let differing: Vec<String> =
            phases.iter().filter(|p| !p.same).map(|p| p.phase.clone()).collect();
        let same = differing.is_empty() && kill_switch_same(&a.kill_switch, &a2.kill_switch);
        comparison.noise = Some(NoiseReport { same, phases: differing, documents });
    }
    let (verdict, reason) = verdict(comparison, &ran.sides);
    comparison.verdict = verdict;
    comparison.reason = reason;
    Ok(())
}

/// The verdict and its reason, in order of precedence: a refused side, a
/// failed side, noise, differences.
fn verdict(comparison: &Comparison, sides: &[(String, Finished)]) -> (CompareVerdict, String) {
    let who = |name: &str, summary: &Summary| {
        let plugin = summary
            .plugin
            .as_ref()
            .map_or_else(String::new, |p| format!(" ({} {})", p.name, p.version));
        format!("side {}{plugin}", name.to_uppercase())
    };
    for (wanted, verdict, word) in [
        (Verdict::Refused, CompareVerdict::Refused, "was refused"),
        (Verdict::Failed, CompareVerdict::Failed, "failed"),
    ] {
        let stopped: Vec<String> = sides
            .iter()
            .filter(|(_, f)| f.summary.verdict == wanted)
            .map(|(name, f)| {
                let why = f.summary.reason.as_deref().unwrap_or("no reason recorded");
                format!("{} {word}: {why}", who(name, &f.summary))
            })
            .collect();
        if !stopped.is_empty() {
            let kept: Vec<String> = sides
                .iter()
                .filter(|(_, f)| f.summary.verdict == Verdict::Completed)
                .map(|(name, _)| name.to_uppercase())
                .collect();
            let kept = if kept.is_empty() {
                String::new()
            } else {
                format!(" (completed, results kept: {})", kept.join(", "))
            };
            return (verdict, format!("{}{kept}", stopped.join("; ")));
        }
    }
    if let Some(noise) = comparison.noise.as_ref().filter(|n| !n.same) {
        return (
            CompareVerdict::Untrustworthy,
            format!(
                "A differs from itself (phases {}; {} documents): the comparison is not \
                 trustworthy",
                noise.phases.join(", "),
                noise.documents
            ),
        );
    }
    let differing: Vec<&str> =
        comparison.phases.iter().filter(|p| !p.same).map(|p| p.phase.as_str()).collect();
    let kill_switch = comparison.sides.len() >= 2
        && !kill_switch_same(&comparison.sides[0].kill_switch, &comparison.sides[1].kill_switch);
    if differing.is_empty() && !kill_switch {
        return (CompareVerdict::Same, "A and B behave identically on this data".to_owned());
    }
    let mut parts = Vec::new();
    if !differing.is_empty() {
        parts.push(format!(
            "phases {} differ; {} documents would be processed differently",
            differing.join(", "),
            comparison.documents.differing
        ));
    }
    if kill_switch {
        parts.push("the kill-switch evidence differs".to_owned());
    }
    (CompareVerdict::Different, parts.join("; "))
}

fn kill_switch_same(a: &KillSwitchReport, b: &KillSwitchReport) -> bool {
    let refused = |k: &KillSwitchReport| k.live_refusal.as_ref().map(|p| p.refused);
    a.execution_enabled_before == b.execution_enabled_before
        && a.execution_enabled_after == b.execution_enabled_after
        && refused(a) == refused(b)
}

fn side_report(name: &str, summary: &Summary) -> SideReport {
    SideReport {
        side: name.to_owned(),
        dir: summary.plugin.as_ref().map_or_else(String::new, |p| p.dir.clone()),
        verdict: summary.verdict,
        reason: summary.reason.clone(),
        plugin: summary.plugin.as_ref().map(|p| format!("{} {}", p.name, p.version)),
        kill_switch: summary.kill_switch.clone(),
        documents: summary.documents,
        duration_ms: summary.duration_ms,
        worker_max_rss_kib: summary.resources.worker_max_rss_kib,
    }
}

/// The identity fields of both sides.
fn identity(a: &Summary, b: &Summary) -> Vec<IdentityRow> {
    type Field = (&'static str, fn(&Summary) -> Option<String>);
    let fields: [Field; 9] = [
        ("name", |s| s.declared.as_ref().map(|d| d.name.clone())),
        ("version", |s| s.declared.as_ref().map(|d| d.version.clone())),
        ("milestone", |s| s.declared.as_ref().map(|d| d.milestone.clone())),
        ("live_wiring", |s| s.declared.as_ref().map(|d| d.live_wiring.clone())),
        ("capabilities", |s| s.declared.as_ref().map(|d| d.capabilities.join(", "))),
        ("phases", |s| {
            s.declared.as_ref().map(|d| {
                let phases: Vec<String> =
                    d.phases.iter().map(|p| format!("{} ({})", p.name, p.side_effects)).collect();
                phases.join(", ")
            })
        }),
        ("abi_version", |s| s.plugin.as_ref().map(|p| p.abi_version.clone())),
        ("artifact_sha256", |s| s.plugin.as_ref().map(|p| p.artifact_sha256.to_string())),
        ("manifest_sha256", |s| {
            s.plugin.as_ref().and_then(|p| p.manifest_sha256).map(|d| d.to_string())
        }),
    ];
    fields
        .iter()
        .map(|(field, get)| {
            let (x, y) = (get(a), get(b));
            IdentityRow {
                field,
                same: x == y,
                a: x.unwrap_or_else(|| "-".to_owned()),
                b: y.unwrap_or_else(|| "-".to_owned()),
            }
        })
        .collect()
}

/// Every phase of either side, A's order first; the plans of phases both
/// completed are compared operation by operation.
fn compare_phases(
    a: &Summary,
    b: &Summary,
    each: &mut dyn FnMut(DocumentOps) -> io::Result<()>,
) -> io::Result<Vec<PhaseComparison>> {
    let mut names: Vec<&str> = a.phases.iter().map(|p| p.name.as_str()).collect();
    for phase in &b.phases {
        if !names.contains(&phase.name.as_str()) {
            names.push(&phase.name);
        }
    }
    let find = |s: &'_ Summary, name: &str| s.phases.iter().find(|p| p.name == name).cloned();
    let mut phases = Vec::with_capacity(names.len());
    for name in names {
        let (pa, pb) = (find(a, name), find(b, name));
        let plan = match (&pa, &pb) {
            (
                Some(PhaseSummary { plan: Some(x), .. }),
                Some(PhaseSummary { plan: Some(y), .. }),
            ) => Some(if x.sha256 == y.sha256 {
                PlanTotals { identical: true, ..PlanTotals::default() }
            } else {
                plans::compare(
                    name,
                    &Path::new(&a.run_dir).join(&x.file),
                    &Path::new(&b.run_dir).join(&y.file),
                    each,
                )?
            }),
            _ => None,
        };
        let (sa, sb) = (pa.as_ref().map(phase_side), pb.as_ref().map(phase_side));
        let same = sa.is_some() && sa == sb && plan.as_ref().is_none_or(|p| p.identical);
        phases.push(PhaseComparison { phase: name.to_owned(), a: sa, b: sb, same, plan });
    }
    Ok(phases)
}

fn phase_side(phase: &PhaseSummary) -> PhaseSide {
    PhaseSide {
        status: phase.status.clone(),
        counts: phase.counts.clone(),
        findings: Findings::from(&phase.findings),
        ops: phase.ops.clone(),
        plan_sha256: phase.plan.as_ref().map(|p| p.sha256),
    }
}

/// A JSON Lines file written as `.partial` and renamed when complete.
struct JsonLines {
    out: BufWriter<File>,
    partial: PathBuf,
    done: PathBuf,
}

impl JsonLines {
    fn create(path: &Path) -> io::Result<Self> {
        let partial = path.with_extension("jsonl.partial");
        Ok(Self { out: BufWriter::new(File::create(&partial)?), partial, done: path.to_owned() })
    }

    fn write(&mut self, value: &impl Serialize) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, value).map_err(io::Error::other)?;
        self.out.write_all(b"\n")
    }

    fn finish(mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        std::fs::rename(&self.partial, &self.done)
    }
}
