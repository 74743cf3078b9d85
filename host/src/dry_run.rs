//! A dry run: verify, load, check policy, then every phase on every batch,
//! writing the run folder as it goes.
//!
//! The order of a run, and where it can stop:
//! 1. verify the plugin directory and its pin (`verified`), load it in a
//!    worker (`loaded`); stop `failed` on any problem;
//! 2. policy, before any phase: the plugin's kill-switch must read `false`,
//!    every phase must be dry-run safe, and the refusal probe must be
//!    refused; otherwise stop `refused`;
//! 3. for each batch of the source, each phase in the plugin's order through
//!    the kill-switch dispatcher (`running`); a failed phase, an error
//!    finding, a phase not implemented, or a worker that crashed, hung past
//!    its deadline or ran out of memory stops the run `failed` there, as a
//!    live run would have stopped; an invalid plan (checked on
//!    the plan writer's thread) stops it before any outcome of the next
//!    batch is recorded;
//! 4. the kill-switch is read again, the plugin directory re-verified and
//!    compared file by file (`completed`, or `refused` / `failed`).
//!
//! Whatever happens, `run.json` says where and why, the reports and
//! `summary.json` are written with the true verdict, and plan files of
//! phases that did not finish stay `.partial`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::integrity::{self, lock::LockFile};
use crate::load::{self, LoadError, LoadedPlugin};
use crate::plugin::PhaseOutcome;
use crate::policy::kill_switch::{self, DispatchError, Dispatcher, Refusal};
use crate::run::counts::{self, PlanCountRule};
use crate::run::plan::{PlanSink, PlanWriter, Rejected};
use crate::run::queries::{self, RunQueries};
use crate::run::report::{self, PhaseSummary, Summary, Verdict, FINDING_EXAMPLES};
use crate::run::state::{PluginIdentity, RunState, State};
use crate::run::RunDir;
use crate::source::{self, NotReady, RecordBatch, Source, SourceError};
use crate::sys;
use crate::worker::protocol::WireMode;
use crate::worker::{Limits, PhaseReply, Worker, WorkerError};

/// What a dry run needs.
#[derive(Debug)]
pub struct DryRunOptions<'a> {
    /// The plugin directory.
    pub dir: &'a Path,
    /// The lock file in use, if any.
    pub lock: Option<&'a LockFile>,
    /// Where run folders go.
    pub runs_dir: &'a Path,
    /// Documents per batch.
    pub batch_size: usize,
    /// The deadline of one worker call and the worker's memory.
    pub limits: Limits,
}

/// A finished (or stopped) run.
#[derive(Debug)]
pub struct Finished {
    /// The run folder.
    pub run_dir: PathBuf,
    /// `summary.json`'s contents.
    pub summary: Summary,
}

/// How a run stopped early.
enum Stop {
    Failed(String),
    Refused(String),
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Self {
        Stop::Refused(refusal.to_string())
    }
}

/// Runs a dry run of the plugin at `options.dir` on `source`.
pub fn dry_run(options: &DryRunOptions<'_>, source: &dyn Source) -> std::io::Result<Finished> {
    let run = RunDir::create(options.runs_dir, &label(options.dir))?;
    let mut side = Side::open(options, run, source)?;
    if side.is_ready() {
        let prepared = source.prepare(side.run_id());
        side.source_prepared(source, prepared);
    }
    if side.is_ready() {
        std::thread::scope(|scope| {
            side.run(source, source::read_ahead(scope, source.batches(options.batch_size), 2));
        });
    }
    source.finish();
    side.close()
}

/// The name a run folder is given for a plugin directory.
pub fn label(dir: &Path) -> String {
    dir.file_name().map_or_else(|| "plugin".into(), |n| n.to_string_lossy().into_owned())
}

/// One dry run, step by step, so that a comparison can drive several on
/// one source: [`Side::open`] (verify, load, policy), the source prepared
/// once by the caller ([`Side::source_prepared`]), [`Side::run`] on the
/// batches, [`Side::close`] (final checks, reports). A step after a stop
/// does nothing; `close` always writes the truthful reports.
pub struct Side<'o> {
    options: &'o DryRunOptions<'o>,
    run: RunDir,
    state: RunState,
    summary: Summary,
    started: Instant,
    before: BTreeMap<String, Option<SystemTime>>,
    worker: Option<Worker>,
    /// The plugin's plan-count contract ([`counts`]).
    rules: Vec<PlanCountRule>,
    stop: Option<Stop>,
}

impl<'o> Side<'o> {
    /// Starts the run in `run` (an empty run folder): verifies and loads the
    /// plugin and checks the host's policy. Only the run folder failing to
    /// be written is an `Err`; every other problem is recorded as the run's
    /// stop.
    pub fn open(
        options: &'o DryRunOptions<'o>,
        run: RunDir,
        source: &dyn Source,
    ) -> std::io::Result<Self> {
        let mut state = RunState::create(&run.path, &run.id, "dry-run")?;
        let identity = source.describe();
        state.record.source = Some(identity.clone());
        let summary = Summary::new(&run.id, &run.path, identity);
        let mut side = Self {
            options,
            before: file_times(options.dir),
            run,
            state,
            summary,
            started: Instant::now(),
            worker: None,
            rules: Vec::new(),
            stop: None,
        };
        match side.load() {
            Ok(worker) => side.worker = Some(worker),
            Err(stop) => side.stop = Some(stop),
        }
        Ok(side)
    }

    /// The run's id.
    pub fn run_id(&self) -> &str {
        &self.run.id
    }

    /// Whether the run is still going (nothing stopped it yet).
    pub fn is_ready(&self) -> bool {
        self.stop.is_none()
    }

    /// Records the source as prepared (its identity now names the snapshot
    /// read), or stops the run with the reason it could not be.
    pub fn source_prepared(&mut self, source: &dyn Source, prepared: Result<(), NotReady>) {
        if !self.is_ready() {
            return;
        }
        self.summary.source = source.describe();
        self.state.record.source = Some(self.summary.source.clone());
        self.stop = match prepared {
            Ok(()) => None,
            Err(NotReady::Refused(reason)) => Some(Stop::Refused(reason)),
            Err(NotReady::Failed(reason)) => Some(Stop::Failed(reason)),
        };
    }

    /// Every phase on every batch of `batches`, then the checks after the
    /// run. `source` answers the plugin's queries and is checked after
    /// every phase.
    pub fn run(
        &mut self,
        source: &dyn Source,
        batches: impl IntoIterator<Item = Result<RecordBatch, SourceError>>,
    ) {
        let Some(mut worker) = self.worker.take().filter(|_| self.is_ready()) else { return };
        let ran = self.run_phases(source, &mut worker, batches.into_iter());
        let checked = ran.and_then(|()| self.check_after(worker));
        self.stop = checked.err();
    }

    /// Ends the run: the verdict, the reports, `summary.json` and the final
    /// `run.json`.
    pub fn close(mut self) -> std::io::Result<Finished> {
        drop(self.worker.take());
        let summary = &mut self.summary;
        let (verdict, final_state, reason) = match self.stop.take() {
            None => (Verdict::Completed, State::Completed, None),
            Some(Stop::Failed(reason)) => (Verdict::Failed, State::Failed, Some(reason)),
            Some(Stop::Refused(reason)) => (Verdict::Refused, State::Refused, Some(reason)),
        };
        if verdict == Verdict::Completed {
            // A source that could not count without reading (generated) has
            // now been read whole.
            let read = Some(summary.documents);
            summary.source.documents = summary.source.documents.or(read);
            if let Some(source) = self.state.record.source.as_mut() {
                source.documents = source.documents.or(read);
            }
        }
        summary.verdict = verdict;
        summary.reason = reason.clone();
        summary.duration_ms = millis(self.started.elapsed());
        summary.resources.host_max_rss_kib = sys::max_rss_kib(None);
        let path = &self.run.path;
        report::write_kb(path, summary)?;
        report::write_plan_sums(path, summary)?;
        report::write_approvals(path, summary)?;
        report::write_summary(path, summary)?;
        match reason {
            Some(reason) => self.state.stop(final_state, &reason)?,
            None => self.state.enter(final_state)?,
        }
        Ok(Finished { run_dir: self.run.path, summary: self.summary })
    }

    /// Verifies and loads the plugin, then the policy checks before any
    /// phase: the kill-switch reads `false`, every phase is dry-run safe,
    /// the refusal probe is refused.
    fn load(&mut self) -> Result<Worker, Stop> {
        let (options, state, summary) = (self.options, &mut self.state, &mut self.summary);
        let plugin = match load::load(options.dir, options.lock, options.limits) {
            Ok(plugin) => plugin,
            Err(LoadError::Verification(verified)) => {
                return Err(Stop::Failed(format!(
                    "verification failed: {}",
                    LoadError::Verification(verified)
                )))
            }
            Err(err) => {
                state.enter(State::Verified).map_err(io("run.json"))?;
                return Err(Stop::Failed(format!("cannot load the plugin: {err}")));
            }
        };
        let LoadedPlugin { verified, manifest, abi_version, info, mut worker } = plugin;
        summary.sandbox = Some(worker.sandbox().clone());
        let identity = PluginIdentity {
            dir: options.dir.display().to_string(),
            name: manifest.name.clone(),
            version: manifest.version.clone(),
            artifact_sha256: manifest.artifact_sha256,
            manifest_sha256: verified.manifest_sha256,
            abi_version,
        };
        summary.plugin = Some(identity.clone());
        summary.integrity.artifact_sha256_before = Some(manifest.artifact_sha256);
        summary.phases = info.phases.iter().map(|p| PhaseSummary::new(&p.name)).collect();
        state.record.plugin = Some(identity);
        state.enter(State::Verified).map_err(io("run.json"))?;
        let unsafe_phase = kill_switch::unsafe_phases(&info).into_iter().next();
        let rules = counts::rules(&info.attributes);
        summary.declared = Some(info);
        self.rules = rules.map_err(|e| Stop::Failed(format!("the plugin's description: {e}")))?;
        let enabled = worker.execution_enabled().map_err(crashed)?;
        summary.kill_switch.execution_enabled_before = Some(enabled);
        if enabled {
            return Err(Refusal::ExecutionEnabled(" before the run").into());
        }
        if let Some(refusal) = unsafe_phase {
            return Err(refusal.into());
        }
        let probe = kill_switch::refusal_probe(&mut worker).map_err(crashed)?;
        summary.kill_switch.live_refusal = Some(probe.clone());
        if !probe.refused {
            return Err(Refusal::LiveNotRefused(probe.answer).into());
        }
        state.enter(State::Loaded).map_err(io("run.json"))?;
        Ok(worker)
    }

    fn run_phases(
        &mut self,
        source: &dyn Source,
        worker: &mut Worker,
        batches: impl Iterator<Item = Result<RecordBatch, SourceError>>,
    ) -> Result<(), Stop> {
        let mut queries = RunQueries::new(&self.run.path, source.query_opener(&self.run.id))
            .map_err(io(queries::QUERY_LOG))?;
        let ran = run_phases(
            source,
            &self.run,
            &mut self.state,
            &mut self.summary,
            worker,
            &mut queries,
            &self.rules,
            batches,
        );
        self.summary.queries = queries.finish().map_err(io(queries::QUERY_LOG))?;
        ran
    }

    /// After the last phase: the kill-switch again, the worker's peak
    /// memory, and the plugin directory byte for byte.
    fn check_after(&mut self, mut worker: Worker) -> Result<(), Stop> {
        let (options, summary) = (self.options, &mut self.summary);
        let enabled = worker.execution_enabled().map_err(crashed)?;
        summary.kill_switch.execution_enabled_after = Some(enabled);
        if enabled {
            return Err(Refusal::ExecutionEnabled(" after the run").into());
        }
        summary.resources.worker_max_rss_kib = worker.peak_rss_kib();
        worker.shutdown().map_err(crashed)?;

        let after = integrity::verify(options.dir, &[], options.lock);
        summary.integrity.artifact_sha256_after =
            after.manifest.as_ref().map(|m| m.artifact_sha256);
        summary.integrity.problems = after.problems.iter().map(ToString::to_string).collect();
        if file_times(options.dir) != self.before {
            summary.integrity.problems.push("a file's modification time changed".to_owned());
        }
        if summary.integrity.artifact_sha256_after != summary.integrity.artifact_sha256_before {
            summary.integrity.problems.push("artifact_sha256 changed".to_owned());
        }
        let unchanged = summary.integrity.problems.is_empty();
        summary.integrity.plugin_dir_unchanged = Some(unchanged);
        if !unchanged {
            return Err(Stop::Failed(format!(
                "the plugin directory changed during the run: {}",
                summary.integrity.problems.join("; ")
            )));
        }
        Ok(())
    }
}

fn io(what: &str) -> impl Fn(std::io::Error) -> Stop {
    let what = what.to_owned();
    move |err| Stop::Failed(format!("{what}: {err}"))
}

fn crashed(err: WorkerError) -> Stop {
    Stop::Failed(at("plugin error", &err))
}

/// A lost worker's error names the plugin and the call (for a phase, its
/// name and batch) by itself; any other error is told where it happened.
fn at(place: &str, err: &WorkerError) -> String {
    if err.is_worker_lost() {
        err.to_string()
    } else {
        format!("{place}: {err}")
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the run's parts, borrowed apart so the loop can update each while it holds the others"
)]
fn run_phases(
    source: &dyn Source,
    run: &RunDir,
    state: &mut RunState,
    summary: &mut Summary,
    worker: &mut Worker,
    queries: &mut RunQueries,
    rules: &[PlanCountRule],
    batches: impl Iterator<Item = Result<RecordBatch, SourceError>>,
) -> Result<(), Stop> {
    let failed = |what: String| Stop::Failed(what);
    worker.start_run(WireMode::DryRun).map_err(|e| failed(at("start_run", &e)))?;
    let mut plans = Vec::with_capacity(summary.phases.len());
    for (index, phase) in summary.phases.iter().enumerate() {
        plans.push(
            PlanWriter::create(&run.path, index, &phase.name)
                .map_err(|e| failed(format!("cannot create the plan of `{}`: {e}", phase.name)))?,
        );
    }
    let sink = PlanSink::spawn(plans).map_err(|e| failed(format!("plan writer: {e}")))?;
    let mut durations = vec![Duration::ZERO; summary.phases.len()];

    // Four things overlap: the source reads the next batch, the plugin runs
    // a phase, the host reads the outcome of the phase before, and the sink
    // writes its plan. The sink catches up once the next batch is on its way
    // to the plugin, so a refused plan stops the run before any outcome of
    // that next batch is recorded.
    let names: Vec<String> = summary.phases.iter().map(|p| p.name.clone()).collect();
    let result = (|| {
        for (batch_index, batch) in batches.enumerate() {
            let batch_index = batch_index as u64;
            let batch = batch.map_err(|e| failed(format!("source: {e}")))?;
            let documents = batch.documents.len() as u64;
            let mut replies = Dispatcher::new(worker)
                .run_batch(batch, batch_index, &names, WireMode::DryRun)
                .map_err(|e| match e {
                    DispatchError::Worker(e) => failed(at(&format!("batch {batch_index}"), &e)),
                    DispatchError::Refused(e) => failed(format!("batch {batch_index}: {e}")),
                })?;
            sink.sync().map_err(|rejected| refused_plan(summary, state, rejected))?;
            summary.batches += 1;
            summary.documents += documents;
            for (index, phase) in summary.phases.iter_mut().enumerate() {
                state
                    .running(&phase.name, batch_index)
                    .map_err(|e| failed(format!("run.json: {e}")))?;
                queries.at(&phase.name, batch_index);
                let PhaseReply { mut outcome, elapsed } =
                    replies.next_phase(queries).map_err(|e| {
                        phase.status = "failed".to_owned();
                        let place = format!("phase `{}` on batch {batch_index}", phase.name);
                        // A query that ended the run is why the phase failed.
                        match queries.fatal() {
                            Some(why) => failed(format!("{place}: {why}")),
                            None => failed(at(&place, &e)),
                        }
                    })?;
                durations[index] += elapsed;
                phase.duration_ms = millis(durations[index]);
                if let Some(reason) = counts::check(rules, &outcome) {
                    phase.status = "failed".to_owned();
                    return Err(failed(format!(
                        "phase `{}` on batch {batch_index}: {reason}",
                        phase.name
                    )));
                }
                for op in &outcome.plan {
                    *phase.ops.entry(op.action.clone()).or_default() += 1;
                }
                sink.append(index, batch_index, std::mem::take(&mut outcome.plan));
                absorb(phase, &outcome);
                source.after_phase().map_err(|e| {
                    phase.status = "failed".to_owned();
                    failed(format!("after phase `{}` on batch {batch_index}: {e}", phase.name))
                })?;
                queries.end_phase().map_err(|reason| {
                    phase.status = "failed".to_owned();
                    failed(format!("phase `{}` on batch {batch_index}: {reason}", phase.name))
                })?;
                if let Some(reason) = stop_reason(phase, &outcome) {
                    return Err(failed(format!(
                        "phase `{}` on batch {batch_index}: {reason}",
                        phase.name
                    )));
                }
            }
            replies.done().map_err(|e| failed(at(&format!("batch {batch_index}"), &e)))?;
        }
        Ok(())
    })();
    result?;
    worker.finish_run().map_err(|e| failed(at("finish", &e)))?;
    let files = sink.finish().map_err(|rejected| refused_plan(summary, state, rejected))?;
    for (phase, plan) in summary.phases.iter_mut().zip(files) {
        phase.plan = Some(plan);
    }
    Ok(())
}

/// The run stops at a plan the sink refused: the phase fails, and run.json
/// names the phase and batch of the refused operation.
fn refused_plan(summary: &mut Summary, state: &mut RunState, rejected: Rejected) -> Stop {
    let Some((index, batch)) = rejected.at else {
        return Stop::Failed(rejected.error.to_string());
    };
    let Some(phase) = summary.phases.get_mut(index) else {
        return Stop::Failed(rejected.error.to_string());
    };
    phase.status = "failed".to_owned();
    state.record.phase = Some(phase.name.clone());
    state.record.batch = Some(batch);
    Stop::Failed(format!("phase `{}` on batch {batch}: {}", phase.name, rejected.error))
}

/// Adds one batch's outcome to the phase's totals.
fn absorb(phase: &mut PhaseSummary, outcome: &PhaseOutcome) {
    if phase.status != "failed" {
        phase.status = outcome.status.clone();
    }
    for (name, value) in &outcome.counts {
        *phase.counts.entry(name.clone()).or_default() += value;
    }
    for finding in &outcome.findings {
        match finding.severity.as_str() {
            "error" => phase.findings.error += 1,
            "warning" => phase.findings.warning += 1,
            _ => phase.findings.info += 1,
        }
        if phase.examples.len() < FINDING_EXAMPLES {
            phase.examples.push(finding.clone());
        }
    }
    if phase.note.is_empty() {
        phase.note.clone_from(&outcome.note);
    }
}

/// Why this outcome stops the run, if it does: never a silent pass.
fn stop_reason(phase: &PhaseSummary, outcome: &PhaseOutcome) -> Option<String> {
    if let Some(error) = outcome.findings.iter().find(|f| f.severity == "error") {
        return Some(format!("{} {}: {}", error.code, error.subject, error.message));
    }
    match outcome.status.as_str() {
        "ok" => None,
        "not_implemented" => Some(format!("not implemented by this plugin ({})", phase.note)),
        other => Some(format!("status {other}")),
    }
}

/// Every file's path and modification time, to prove nothing was touched.
pub(crate) fn file_times(dir: &Path) -> BTreeMap<String, Option<SystemTime>> {
    let mut times = BTreeMap::new();
    for path in integrity::tree::scan(dir).files {
        let modified = std::fs::symlink_metadata(dir.join(&path)).and_then(|m| m.modified()).ok();
        times.insert(path, modified);
    }
    times
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
