//! The compatibility suite: named checks against each plugin, one verdict
//! per check, like a test runner.
//!
//! What the field reports checked by hand (the kill-switch is off and never
//! assigned, a live cut raises `ProductionExecutionNotAuthorized`, the
//! deployed tree is byte-identical, the regression suite passes) becomes a
//! fixed list of checks ([`CHECKS`]), run in that order for each directory:
//! 1. the directory verifies, and matches its pin when a lock is in use;
//!    nothing else runs for a directory that does not;
//! 2. in one worker: the library loads, its ABI is one this host loads, its
//!    description is well formed, its kill-switch reads `false`, it refuses
//!    a live run, it answers an unknown phase with `UnknownPhase`, and the
//!    SDK's panic probe comes back as `Panicked` with the worker still
//!    answering (a worker a probe killed is replaced by a fresh one);
//! 3. two dry runs of every phase on the embedded corpus, side by side as a
//!    comparison of the directory with itself (`compare`): every phase
//!    runs, every outcome keeps the plan-count contract, the two plans are
//!    byte-identical, the kill-switch still reads `false`;
//! 4. the directory is verified again, byte for byte and file time for file
//!    time;
//! 5. the `--expect` assertions, one check each (`expect.<key>`).
//!
//! A check that cannot run because an earlier one failed is `skip`, with
//! the reason; the suite passes only when no check fails. Everything the
//! suite writes is in its folder: `compat.json`, `run.json`, and per plugin
//! the comparison folder of its dry runs.

pub mod expect;
pub mod junit;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::compare::{self, CompareOptions, CompareVerdict, Compared};
use crate::dry_run;
use crate::integrity::lock::LockFile;
use crate::integrity::manifest::Sha256Digest;
use crate::integrity::{self, tree::Verified};
use crate::load::{self, LoadError, LoadedPlugin};
use crate::plugin::{PhaseOutcome, PluginInfo};
use crate::policy::kill_switch::{self, Dispatcher};
use crate::run::counts::{self, MISMATCH};
use crate::run::report::{self as run_report, Verdict};
use crate::run::state::{RunState, State};
use crate::run::RunDir;
use crate::source::embedded::EmbeddedSource;
use crate::source::RecordBatch;
use crate::worker::protocol::WireMode;
use crate::worker::{Limits, NoQueries, Worker, WorkerError};
use expect::{Expectations, Observed};

/// Every check, in the order it runs, with what it proves.
pub const CHECKS: &[(&str, &str)] = &[
    ("manifest_verifies", "every file matches DEPLOY-MANIFEST.txt, and nothing else is there"),
    ("pin_matches", "the lock file pins this artifact digest (skipped without a lock file)"),
    ("library_loads", "the library loads in a worker and exports the root module"),
    ("abi_compatible", "it was built against an interface version and layout this host loads"),
    (
        "description_well_formed",
        "name, version, phases (named, unique, in the pipeline's order), capabilities, \
         plan-count attributes",
    ),
    ("execution_disabled_before", "the kill-switch reads false before anything runs"),
    ("live_refused", "a live run is refused with ProductionExecutionNotAuthorized"),
    ("unknown_phase_refused", "an undeclared phase is answered with UnknownPhase, not a crash"),
    ("panic_contained", "a panic in a phase comes back as Panicked, and the worker still answers"),
    ("phases_dry_run", "every declared phase runs in dry-run on the embedded corpus"),
    ("plans_match_counts", "every outcome's plan matches its declared counts"),
    ("deterministic", "two runs on the same data write byte-identical plans"),
    ("execution_disabled_after", "the kill-switch still reads false after the runs"),
    ("directory_unchanged", "the plugin directory is byte-identical afterwards"),
];

/// The orchestrator's pipeline, in order: a plugin may declare fewer phases
/// or phases of its own, but the ones it shares with the pipeline must keep
/// this order.
pub const PIPELINE: &[&str] =
    &["discover", "backup", "cut_leg_a", "leg_b_record", "write_verify", "lifecycle_enact"];

/// Documents per batch in the dry runs (the `dry-run` default).
const DRY_RUN_BATCH: usize = 256;

/// An undeclared phase name, sent to see it refused.
const UNKNOWN_PHASE: &str = "sidecar.no-such-phase";

/// What the suite needs.
#[derive(Debug)]
pub struct CompatOptions<'a> {
    /// The plugin directories, in the order given.
    pub dirs: &'a [PathBuf],
    /// The lock file in use, if any.
    pub lock: Option<&'a LockFile>,
    /// Where the suite's folder goes.
    pub runs_dir: &'a Path,
    /// Each worker's deadline per call (including one phase on one batch)
    /// and its memory.
    pub limits: Limits,
    /// The `--expect` assertions.
    pub expect: Option<&'a Expectations>,
}

/// A check's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// It held.
    Pass,
    /// It did not.
    Fail,
    /// It could not be checked; the detail says why.
    Skip,
}

/// One check of one plugin.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The check's stable name (see [`CHECKS`]; `expect.<key>` for an
    /// assertion).
    pub name: String,
    /// Its result.
    pub status: Status,
    /// Why, in one line.
    pub detail: String,
    /// Time spent on it.
    pub duration_ms: u64,
}

/// The checks of one plugin directory.
#[derive(Debug, Clone, Serialize)]
pub struct PluginChecks {
    /// The directory as given.
    pub dir: String,
    /// `name version` from the manifest, once read.
    pub plugin: Option<String>,
    /// The interface version it was built against, once loaded.
    pub abi_version: Option<String>,
    /// The comparison folder of its two dry runs, when they ran.
    pub dry_runs: Option<String>,
    /// Whether no check failed.
    pub passed: bool,
    /// The checks, in order.
    pub checks: Vec<Check>,
    /// Time spent on the plugin.
    pub duration_ms: u64,
}

/// Checks by result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// All checks.
    pub checks: u64,
    /// Passed.
    pub passed: u64,
    /// Failed.
    pub failed: u64,
    /// Skipped.
    pub skipped: u64,
}

/// `compat.json`, also what `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct CompatReport {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// The suite's id, also its folder name.
    pub compat_id: String,
    /// The suite's folder.
    pub run_dir: String,
    /// The host's version.
    pub host_version: String,
    /// The interface version this host loads.
    pub host_abi_version: String,
    /// When the suite started (RFC 3339).
    pub started_at: String,
    /// Whether every plugin passed.
    pub passed: bool,
    /// Checks by result, over all plugins.
    pub totals: Totals,
    /// One entry per directory, in the order given.
    pub plugins: Vec<PluginChecks>,
    /// Wall time of the suite.
    pub duration_ms: u64,
}

/// Runs the suite on every directory of `options.dirs`.
pub fn compat(options: &CompatOptions<'_>) -> io::Result<CompatReport> {
    let started = Instant::now();
    let started_at = crate::run::rfc3339(SystemTime::now());
    let labels: Vec<String> = options.dirs.iter().map(|d| dry_run::label(d)).collect();
    let label = match labels.as_slice() {
        [one] => format!("compat-{one}"),
        [first, rest @ ..] => format!("compat-{first}-and-{}-more", rest.len()),
        [] => "compat".to_owned(),
    };
    let run = RunDir::create_with(options.runs_dir, &label, &[])?;
    let mut state = RunState::create(&run.path, &run.id, "compat")?;
    state.enter(State::Running)?;
    let mut plugins = Vec::with_capacity(options.dirs.len());
    for (index, dir) in options.dirs.iter().enumerate() {
        let folder = format!("{}-{}", index + 1, labels[index]);
        plugins.push(check_plugin(options, dir, &run, &folder)?);
    }
    let mut totals = Totals::default();
    for check in plugins.iter().flat_map(|p| &p.checks) {
        totals.checks += 1;
        match check.status {
            Status::Pass => totals.passed += 1,
            Status::Fail => totals.failed += 1,
            Status::Skip => totals.skipped += 1,
        }
    }
    let report = CompatReport {
        schema_version: 1,
        compat_id: run.id.clone(),
        run_dir: run.path.display().to_string(),
        host_version: env!("CARGO_PKG_VERSION").to_owned(),
        host_abi_version: sidecar_abi::ABI_VERSION.to_owned(),
        started_at,
        passed: plugins.iter().all(|p| p.passed),
        totals,
        plugins,
        duration_ms: millis(started.elapsed()),
    };
    run_report::write_json(&run.path.join("compat.json"), &report)?;
    if report.passed {
        state.enter(State::Completed)?;
    } else {
        let failed = report.totals.failed;
        state.stop(State::Failed, &format!("{failed} check(s) failed"))?;
    }
    Ok(report)
}

/// The results of one plugin's checks as they are made.
struct Suite {
    checks: Vec<Check>,
    clock: Instant,
}

impl Suite {
    fn record(&mut self, name: &str, status: Status, detail: impl Into<String>) {
        let detail: String = detail.into();
        self.checks.push(Check {
            name: name.to_owned(),
            status,
            // One line, whatever a plugin put in its messages.
            detail: detail.replace(['\n', '\r'], " "),
            duration_ms: millis(self.clock.elapsed()),
        });
        self.clock = Instant::now();
    }

    fn pass(&mut self, name: &str, detail: impl Into<String>) {
        self.record(name, Status::Pass, detail);
    }

    fn fail(&mut self, name: &str, detail: impl Into<String>) {
        self.record(name, Status::Fail, detail);
    }

    fn skip(&mut self, name: &str, detail: impl Into<String>) {
        self.record(name, Status::Skip, detail);
    }

    fn result(&mut self, name: &str, result: Result<String, String>) {
        match result {
            Ok(detail) => self.pass(name, detail),
            Err(detail) => self.fail(name, detail),
        }
    }

    /// Skips every check from `from` on (up to, not including, `until`).
    fn skip_range(&mut self, from: &str, until: Option<&str>, why: &str) {
        let names = CHECKS.iter().map(|(n, _)| *n);
        let mut names: Vec<&str> = names.skip_while(|n| *n != from).collect();
        if let Some(until) = until {
            names.truncate(names.iter().position(|n| *n == until).unwrap_or(names.len()));
        }
        for name in names {
            self.skip(name, why);
        }
    }
}

/// What the worker checks learned, for the later ones.
struct Loaded {
    info: PluginInfo,
    abi_version: String,
    execution_enabled: Vec<bool>,
}

fn check_plugin(
    options: &CompatOptions<'_>,
    dir: &Path,
    run: &RunDir,
    folder: &str,
) -> io::Result<PluginChecks> {
    let started = Instant::now();
    let mut suite = Suite { checks: Vec::new(), clock: Instant::now() };
    let mut report = PluginChecks {
        dir: dir.display().to_string(),
        plugin: None,
        abi_version: None,
        dry_runs: None,
        passed: false,
        checks: Vec::new(),
        duration_ms: 0,
    };

    // The tree alone: the pin is a check of its own, made once.
    let before = integrity::verify(dir, &[], None);
    let times_before = dry_run::file_times(dir);
    report.plugin = before.manifest.as_ref().map(|m| format!("{} {}", m.name, m.version));
    let verified = check_integrity(&mut suite, &before, options.lock);
    let why_not = if before.ok() {
        "not run: the directory does not match its pin"
    } else {
        "not run: the directory does not verify"
    };
    let mut loaded = None;
    if verified {
        loaded = check_worker(&mut suite, dir, options);
        match loaded.as_mut() {
            Some(plugin) => {
                report.abi_version = Some(plugin.abi_version.clone());
                let compared = dry_runs(options, dir, run, folder)?;
                report.dry_runs = Some(compared.run_dir.display().to_string());
                let after = check_dry_runs(&mut suite, &compared, &plugin.info);
                plugin.execution_enabled.extend(after);
            }
            None => suite.skip_range(
                "phases_dry_run",
                Some("directory_unchanged"),
                "not run: the plugin did not load",
            ),
        }
    } else {
        suite.skip_range("library_loads", Some("directory_unchanged"), why_not);
    }
    check_unchanged(&mut suite, dir, &before, &times_before);
    if let Some(expectations) = options.expect {
        check_expectations(&mut suite, expectations, loaded.as_mut());
    }

    report.passed = suite.checks.iter().all(|c| c.status != Status::Fail);
    report.checks = suite.checks;
    report.duration_ms = millis(started.elapsed());
    Ok(report)
}

/// `manifest_verifies` and `pin_matches`; whether the plugin may be loaded.
fn check_integrity(suite: &mut Suite, verified: &Verified, lock: Option<&LockFile>) -> bool {
    let tree_problems: Vec<String> =
        verified.problems.iter().filter(|p| !p.is_pin_problem()).map(ToString::to_string).collect();
    let manifest = verified.manifest.as_ref().filter(|_| tree_problems.is_empty());
    match manifest {
        Some(manifest) => suite.pass(
            "manifest_verifies",
            format!(
                "{} files, artifact_sha256 {}",
                manifest.entries.len(),
                short(&manifest.artifact_sha256)
            ),
        ),
        None => suite.fail("manifest_verifies", tree_problems.join("; ")),
    }
    match (lock, manifest) {
        (None, _) => suite.skip("pin_matches", "no lock file in use"),
        (Some(_), None) => suite.skip("pin_matches", "not checked: the directory does not verify"),
        (Some(lock), Some(manifest)) => match lock.check(manifest) {
            Ok(()) => suite.pass("pin_matches", format!("pinned in {}", lock.path.display())),
            Err(problem) => {
                suite.fail("pin_matches", problem.to_string());
                return false;
            }
        },
    }
    manifest.is_some()
}

/// The checks made in one worker, from `library_loads` to
/// `panic_contained`; `None` when the plugin did not load.
fn check_worker(suite: &mut Suite, dir: &Path, options: &CompatOptions<'_>) -> Option<Loaded> {
    let plugin = match load::load(dir, options.lock, options.limits) {
        Ok(plugin) => plugin,
        Err(err) => {
            record_load_failure(suite, &err);
            return None;
        }
    };
    let LoadedPlugin { abi_version, info, mut worker, .. } = plugin;
    suite.pass("library_loads", format!("{} {} in a worker", info.name, info.version));
    suite.pass(
        "abi_compatible",
        format!("sidecar-abi {abi_version} (this host loads {})", sidecar_abi::ABI_VERSION),
    );
    suite.result("description_well_formed", well_formed(&info));
    let mut loaded = Loaded { info, abi_version, execution_enabled: Vec::new() };

    match worker.execution_enabled() {
        Ok(false) => {
            loaded.execution_enabled.push(false);
            suite.pass("execution_disabled_before", "execution_enabled is false");
        }
        Ok(true) => {
            loaded.execution_enabled.push(true);
            suite.fail(
                "execution_disabled_before",
                "execution_enabled is true: the kill-switch is on",
            );
        }
        Err(err) => suite.fail("execution_disabled_before", err.to_string()),
    }
    let mut worker = usable(worker, dir, options);

    match worker.as_mut().map(kill_switch::refusal_probe) {
        Some(Ok(probe)) if probe.refused => suite.pass("live_refused", probe.answer),
        Some(Ok(probe)) => suite.fail("live_refused", probe.answer),
        Some(Err(err)) => suite.fail("live_refused", err.to_string()),
        None => suite.fail("live_refused", "no worker could be started"),
    }
    let Some(mut worker) = worker.and_then(|w| usable(w, dir, options)) else {
        let why = "not checked: no worker could be started";
        suite.skip_range("unknown_phase_refused", Some("phases_dry_run"), why);
        return Some(loaded);
    };
    if let Err(err) = worker.start_run(WireMode::DryRun) {
        let why = format!("not checked: a dry run could not start: {err}");
        suite.skip_range("unknown_phase_refused", Some("phases_dry_run"), &why);
        return Some(loaded);
    }

    match call_phase(&mut worker, UNKNOWN_PHASE) {
        Err(WorkerError::Plugin { kind: Some(kind), message, .. }) if kind == "UnknownPhase" => {
            suite.pass("unknown_phase_refused", format!("{kind}: {message}"));
        }
        Err(err) => suite.fail("unknown_phase_refused", err.to_string()),
        Ok(outcome) => suite.fail(
            "unknown_phase_refused",
            format!("`{UNKNOWN_PHASE}` ran and ended {}", outcome.status),
        ),
    }
    check_panic(suite, worker, dir, options, &loaded.abi_version);
    Some(loaded)
}

/// `panic_contained`: the SDK's panic probe, then whether the worker still
/// answers (or a fresh one does, if the probe killed it).
fn check_panic(
    suite: &mut Suite,
    mut worker: Worker,
    dir: &Path,
    options: &CompatOptions<'_>,
    abi_version: &str,
) {
    const NAME: &str = "panic_contained";
    match call_phase(&mut worker, sidecar_abi::sdk::PANIC_PROBE_PHASE) {
        Err(WorkerError::Plugin { kind: Some(kind), message, .. }) if kind == "Panicked" => {
            match worker.describe() {
                Ok(_) => {
                    let _ = worker.finish_run();
                    let _ = worker.shutdown();
                    suite.pass(NAME, format!("{kind}: {message}; the worker still answers"));
                }
                Err(err) => match fresh_worker(dir, options) {
                    Some(_) => suite.pass(
                        NAME,
                        format!("{kind}, then the worker failed ({err}); a fresh worker answers"),
                    ),
                    None => suite.fail(NAME, format!("{kind}, then the worker failed: {err}")),
                },
            }
        }
        Err(WorkerError::Plugin { kind: Some(kind), .. }) if kind == "UnknownPhase" => suite.skip(
            NAME,
            format!(
                "the plugin's SDK has no panic probe (built against sidecar-abi {abi_version}; \
                 the probe is in the SDK from 0.1.1)"
            ),
        ),
        Err(err @ WorkerError::Plugin { .. }) => {
            suite.fail(NAME, format!("the probe came back as {err}, not Panicked"))
        }
        Err(err) => {
            let replaced = match fresh_worker(dir, options) {
                Some(_) => "a fresh worker answers",
                None => "no fresh worker could be started",
            };
            suite.fail(NAME, format!("the panic was not caught: {err}; {replaced}"));
        }
        Ok(outcome) => suite.fail(
            NAME,
            format!("the probe ran and ended {}: the panic never surfaced", outcome.status),
        ),
    }
}

/// `library_loads` and `abi_compatible` (and `description_well_formed` for
/// an identity mismatch) from a load that failed; the rest are skipped.
fn record_load_failure(suite: &mut Suite, err: &LoadError) {
    let detail = err.to_string();
    let mut next = "abi_compatible";
    match err {
        LoadError::Worker(WorkerError::Load { summary, .. })
            if summary.starts_with("incompatible ABI") =>
        {
            suite.pass("library_loads", "the library loads and exports the root module");
            suite.fail("abi_compatible", summary.clone());
            next = "description_well_formed";
        }
        LoadError::Worker(
            WorkerError::Died { call, .. }
            | WorkerError::Timeout { call, .. }
            | WorkerError::OutOfMemory { call, .. },
        ) if call == "`describe`" => {
            suite.pass("library_loads", "the library loads and exports the root module");
            suite.pass("abi_compatible", "the layout check passed");
            suite.fail("description_well_formed", detail);
            next = "execution_disabled_before";
        }
        LoadError::IdentityMismatch { .. } => {
            suite.pass("library_loads", "the library loads and exports the root module");
            suite.pass("abi_compatible", "the layout check passed");
            suite.fail("description_well_formed", detail);
            next = "execution_disabled_before";
        }
        _ => {
            suite.fail("library_loads", detail);
        }
    }
    suite.skip_range(next, Some("phases_dry_run"), "not checked: the plugin did not load");
}

/// A worker that still answers, or a fresh one when it does not. The
/// question is `describe`, never the kill-switch: a plugin may count its
/// switch's readings (a hostile one flips after a few), and only the checks
/// that report a reading should make one.
fn usable(mut worker: Worker, dir: &Path, options: &CompatOptions<'_>) -> Option<Worker> {
    match worker.describe() {
        Ok(_) => Some(worker),
        Err(err) => {
            tracing::debug!(
                "worker of {} no longer answers ({err}); starting another",
                dir.display()
            );
            fresh_worker(dir, options)
        }
    }
}

fn fresh_worker(dir: &Path, options: &CompatOptions<'_>) -> Option<Worker> {
    load::load(dir, options.lock, options.limits).ok().map(|plugin| plugin.worker)
}

/// Runs one phase by name on an empty batch, in the worker's current run.
fn call_phase(worker: &mut Worker, phase: &str) -> Result<PhaseOutcome, WorkerError> {
    let names = [phase.to_owned()];
    let mut replies = Dispatcher::new(worker)
        .run_batch(RecordBatch::default(), 0, &names, WireMode::DryRun)
        .map_err(|err| match err {
            kill_switch::DispatchError::Worker(err) => err,
            refused @ kill_switch::DispatchError::Refused(_) => {
                WorkerError::Protocol(refused.to_string())
            }
        })?;
    let reply = replies.next_phase(&mut NoQueries);
    match reply {
        Ok(reply) => {
            replies.done()?;
            Ok(reply.outcome)
        }
        Err(err @ WorkerError::Plugin { .. }) => {
            replies.done()?;
            Err(err)
        }
        Err(err) => Err(err),
    }
}

/// `description_well_formed`.
fn well_formed(info: &PluginInfo) -> Result<String, String> {
    let mut problems = Vec::new();
    if info.name.trim().is_empty() || info.version.trim().is_empty() {
        problems.push("the name and version must not be empty".to_owned());
    }
    if info.phases.is_empty() {
        problems.push("no phases".to_owned());
    }
    let mut seen = BTreeMap::new();
    for phase in &info.phases {
        let valid = !phase.name.is_empty()
            && phase.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if !valid {
            problems
                .push(format!("phase `{}`: not a name (letters, digits, `_`, `-`)", phase.name));
        }
        if phase.side_effects.starts_with("SideEffects(") {
            problems.push(format!(
                "phase `{}`: side effects {} is a code this host does not know",
                phase.name, phase.side_effects
            ));
        }
        *seen.entry(phase.name.as_str()).or_insert(0) += 1;
    }
    for (name, times) in &seen {
        if *times > 1 {
            problems.push(format!("phase `{name}` is declared {times} times"));
        }
    }
    let known: Vec<&str> =
        info.phases.iter().map(|p| p.name.as_str()).filter(|n| PIPELINE.contains(n)).collect();
    if known.windows(2).any(|w| rank(w[0]) >= rank(w[1])) {
        problems.push(format!(
            "phases out of the pipeline's order: {} (the order is {})",
            known.join(", "),
            PIPELINE.join(", ")
        ));
    }
    let capabilities: std::collections::BTreeSet<&String> = info.capabilities.iter().collect();
    if capabilities.len() != info.capabilities.len()
        || info.capabilities.iter().any(String::is_empty)
    {
        problems.push("capabilities must be unique and not empty".to_owned());
    }
    if let Err(err) = counts::rules(&info.attributes) {
        problems.push(err);
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let own = info.phases.len() - known.len();
    let own = if own == 0 { String::new() } else { format!(", {own} of its own") };
    Ok(format!("{} {}: {} phases{own}", info.name, info.version, info.phases.len()))
}

fn rank(phase: &str) -> usize {
    PIPELINE.iter().position(|p| *p == phase).unwrap_or(usize::MAX)
}

/// The two dry runs: a comparison of the directory with itself, on the
/// embedded corpus, in the suite's folder.
fn dry_runs(
    options: &CompatOptions<'_>,
    dir: &Path,
    run: &RunDir,
    folder: &str,
) -> io::Result<Compared> {
    let source = EmbeddedSource::new();
    let compare_options = CompareOptions {
        dir_a: dir,
        dir_b: dir,
        lock: options.lock,
        runs_dir: &run.path,
        batch_size: DRY_RUN_BATCH,
        limits: options.limits,
        aa: false,
        html: false,
    };
    compare::compare_in(&compare_options, &source, run.nested_with(folder, &["kb"])?)
}

/// `phases_dry_run`, `plans_match_counts`, `deterministic` and
/// `execution_disabled_after`, from the two dry runs; returns the
/// kill-switch readings after them.
fn check_dry_runs(suite: &mut Suite, compared: &Compared, info: &PluginInfo) -> Vec<bool> {
    let summaries: Vec<&run_report::Summary> =
        compared.sides.iter().map(|(_, f)| &f.summary).collect();
    let stopped = summaries.iter().enumerate().find(|(_, s)| s.verdict != Verdict::Completed);
    let nth = |i: usize| if i == 0 { "first run" } else { "second run" };
    match stopped {
        None => {
            let first = summaries[0];
            suite.pass(
                "phases_dry_run",
                format!(
                    "{} phases ok on {} documents in {} batches, twice",
                    first.phases.len(),
                    first.documents,
                    first.batches
                ),
            );
        }
        Some((i, summary)) => {
            let reason = summary.reason.as_deref().unwrap_or("no reason recorded");
            let verdict = format!("{:?}", summary.verdict).to_lowercase();
            suite.fail("phases_dry_run", format!("{}: {verdict}: {reason}", nth(i)));
        }
    }

    let rules = counts::rules(&info.attributes).unwrap_or_default();
    let mismatch =
        summaries.iter().filter_map(|s| s.reason.as_deref()).find(|r| r.contains(MISMATCH));
    match (mismatch, stopped) {
        (Some(reason), _) => suite.fail("plans_match_counts", reason),
        (None, _) if rules.is_empty() => {
            suite.skip("plans_match_counts", "the plugin declares no plan.count.* attributes")
        }
        (None, None) => suite.pass(
            "plans_match_counts",
            format!("{} rule(s) held on every outcome of both runs", rules.len()),
        ),
        (None, Some(_)) => {
            suite.skip("plans_match_counts", "not checked: the dry runs did not complete")
        }
    }

    let comparison = &compared.comparison;
    match comparison.verdict {
        CompareVerdict::Same => {
            let plans = summaries[0].phases.iter().filter(|p| p.plan.is_some()).count();
            suite.pass("deterministic", format!("{plans} plans byte-identical in both runs"));
        }
        CompareVerdict::Different | CompareVerdict::Untrustworthy => {
            let phases: Vec<&str> =
                comparison.phases.iter().filter(|p| !p.same).map(|p| p.phase.as_str()).collect();
            let documents = comparison.documents.differing;
            suite.fail(
                "deterministic",
                format!(
                    "two runs on the same data differ in phase(s) {} ({documents} document(s))",
                    phases.join(", ")
                ),
            );
        }
        CompareVerdict::Failed | CompareVerdict::Refused => {
            suite.skip("deterministic", "not checked: the dry runs did not complete")
        }
    }

    let after: Vec<Option<bool>> =
        summaries.iter().map(|s| s.kill_switch.execution_enabled_after).collect();
    if after.contains(&Some(true)) {
        suite.fail("execution_disabled_after", "execution_enabled read true after a run");
    } else if after.iter().all(Option::is_some) {
        suite.pass("execution_disabled_after", "execution_enabled is false after both runs");
    } else {
        suite.skip("execution_disabled_after", "not checked: the dry runs did not reach the end");
    }
    after.into_iter().flatten().collect()
}

/// `directory_unchanged`: the tree verified again, and every file's time
/// kept.
fn check_unchanged(
    suite: &mut Suite,
    dir: &Path,
    before: &Verified,
    times_before: &BTreeMap<String, Option<SystemTime>>,
) {
    let after = integrity::verify(dir, &[], None);
    let mut problems: Vec<String> = after.problems.iter().map(ToString::to_string).collect();
    let digest = |v: &Verified| v.manifest.as_ref().map(|m| m.artifact_sha256);
    if digest(&after) != digest(before) || after.manifest_sha256 != before.manifest_sha256 {
        problems.push("the manifest changed".to_owned());
    }
    if dry_run::file_times(dir) != *times_before {
        problems.push("a file's modification time changed, or a file appeared".to_owned());
    }
    match (problems.is_empty(), &after.manifest) {
        (true, Some(manifest)) => suite.pass(
            "directory_unchanged",
            format!("byte-identical: {} files, same modification times", manifest.entries.len()),
        ),
        _ if !before.ok() => suite.skip(
            "directory_unchanged",
            format!("the directory did not verify before either: {}", problems.join("; ")),
        ),
        _ => suite.fail("directory_unchanged", problems.join("; ")),
    }
}

/// One `expect.<key>` check per assertion the file makes.
fn check_expectations(suite: &mut Suite, expectations: &Expectations, loaded: Option<&mut Loaded>) {
    let Some(loaded) = loaded else {
        for key in expectations.keys() {
            suite.skip(&format!("expect.{key}"), "not checked: the plugin did not load");
        }
        return;
    };
    let seen = Observed {
        info: &loaded.info,
        execution_enabled: &loaded.execution_enabled,
        abi_version: &loaded.abi_version,
    };
    for (key, held, detail) in expectations.check(&seen) {
        let status = if held { Status::Pass } else { Status::Fail };
        suite.record(&format!("expect.{key}"), status, detail);
    }
}

fn short(digest: &Sha256Digest) -> String {
    digest.to_hex()[..12].to_owned()
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Phase;

    fn info(phases: &[(&str, &str)]) -> PluginInfo {
        PluginInfo {
            name: "iu-cutter".into(),
            version: "0.7".into(),
            milestone: String::new(),
            live_wiring: String::new(),
            phases: phases
                .iter()
                .map(|(name, effects)| Phase {
                    name: (*name).into(),
                    side_effects: (*effects).into(),
                    dry_run_safe: true,
                })
                .collect(),
            capabilities: vec![],
            attributes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_description_keeps_the_pipeline_order_and_names_each_phase_once() {
        let ok = info(&[("discover", "None"), ("audit", "None"), ("write_verify", "NoneOnDryRun")]);
        assert_eq!(well_formed(&ok), Ok("iu-cutter 0.7: 3 phases, 1 of its own".to_owned()));

        let swapped = info(&[("write_verify", "None"), ("discover", "None")]);
        assert_eq!(
            well_formed(&swapped),
            Err("phases out of the pipeline's order: write_verify, discover (the order is \
                 discover, backup, cut_leg_a, leg_b_record, write_verify, lifecycle_enact)"
                .to_owned())
        );
        let twice = info(&[("discover", "None"), ("discover", "None")]);
        let err = well_formed(&twice).expect_err("duplicate");
        assert!(err.contains("phase `discover` is declared 2 times"), "{err}");
        let odd = info(&[("dis cover", "SideEffects(9)")]);
        let err = well_formed(&odd).expect_err("bad name and code");
        assert!(err.contains("phase `dis cover`: not a name"), "{err}");
        assert!(
            err.contains("side effects SideEffects(9) is a code this host does not know"),
            "{err}"
        );
        assert_eq!(well_formed(&info(&[])), Err("no phases".to_owned()));
    }

    #[test]
    fn skipped_ranges_follow_the_check_order() {
        let mut suite = Suite { checks: Vec::new(), clock: Instant::now() };
        suite.skip_range("unknown_phase_refused", Some("phases_dry_run"), "why");
        let names: Vec<&str> = suite.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["unknown_phase_refused", "panic_contained"]);
    }
}
