//! `sidecar dry-run DIR`: every phase of a plugin on a read-only source, in
//! a run folder of its own. Exit 0 completed, 1 failed (a phase failed or
//! found an error, the plugin crashed, the source could not be read), 2
//! usage, 3 refused by policy.

use crate::cli::{DryRunArgs, RunOptions};
use crate::dry_run::{dry_run, DryRunOptions};
use crate::exit::{ExitStatus, UsageError};
use crate::integrity::lock::LockFile;
use crate::pg::SessionSettings;
use crate::run::report::{Summary, Verdict};
use crate::source;
use crate::worker::Limits;

/// What a run's options open: the lock file, the source, the worker's
/// limits.
pub struct Setup {
    /// The lock file in use.
    pub lock: Option<LockFile>,
    /// The source.
    pub source: Box<dyn source::Source>,
    /// The deadline of one worker call and the worker's memory.
    pub limits: Limits,
}

impl Setup {
    /// Opens what `options` name; a bad value is a usage error.
    pub fn new(options: &RunOptions) -> anyhow::Result<Self> {
        let limits =
            Limits { timeout: super::timeout(options.timeout)?, memory: options.worker.memory };
        let lock = LockFile::discover(options.lock.lock.as_deref())?;
        let database = source::DatabaseOptions {
            env_file: options.env_file.clone(),
            session: SessionSettings {
                statement_timeout: options.statement_timeout.clone(),
                lock_timeout: options.lock_timeout.clone(),
                idle_in_transaction_session_timeout: options.idle_timeout.clone(),
            },
            ..source::DatabaseOptions::default()
        };
        let source = source::parse_source_spec(options.source.as_deref(), &database)
            .map_err(|e| UsageError(e.to_string()))?;
        Ok(Self { lock, source, limits })
    }
}

/// Runs `sidecar dry-run`.
pub fn run(args: &DryRunArgs) -> anyhow::Result<ExitStatus> {
    let setup = Setup::new(&args.run)?;
    let options = DryRunOptions {
        dir: &args.dir,
        lock: setup.lock.as_ref(),
        runs_dir: &args.run.runs_dir,
        batch_size: args.run.batch_size as usize,
        limits: setup.limits,
    };
    let source = setup.source;
    let finished = dry_run(&options, source.as_ref())?;
    let summary = &finished.summary;
    if args.json {
        println!("{}", serde_json::to_string_pretty(summary)?);
    } else {
        print!("{}", human(summary));
    }
    if let Some(reason) = &summary.reason {
        eprintln!(
            "{}: {reason}",
            if summary.verdict == Verdict::Refused { "refused" } else { "error" }
        );
    }
    Ok(match summary.verdict {
        Verdict::Completed => ExitStatus::Success,
        Verdict::Failed => ExitStatus::Failure,
        Verdict::Refused => ExitStatus::Refused,
    })
}

fn human(summary: &Summary) -> String {
    let mut out = format!("run {}  {:?}\n", summary.run_id, summary.verdict);
    out.push_str(&format!("  folder       {}\n", summary.run_dir));
    if let Some(plugin) = &summary.plugin {
        out.push_str(&format!(
            "  plugin       {} {}  artifact_sha256 {}\n",
            plugin.name, plugin.version, plugin.artifact_sha256
        ));
    }
    let s = &summary.source;
    let location = if s.location == s.kind { String::new() } else { format!(" {}", s.location) };
    out.push_str(&format!(
        "  source       {}{location}  {} documents in {} batches  digest {}\n",
        s.kind, summary.documents, summary.batches, s.digest
    ));
    let ks = &summary.kill_switch;
    let flag = |v: Option<bool>| v.map_or("-".to_owned(), |v| v.to_string());
    out.push_str(&format!(
        "  kill-switch  execution_enabled {} before, {} after; live {}\n",
        flag(ks.execution_enabled_before),
        flag(ks.execution_enabled_after),
        ks.live_refusal.as_ref().map_or("not probed".to_owned(), |p| if p.refused {
            format!("refused ({})", p.answer)
        } else {
            format!("NOT refused ({})", p.answer)
        })
    ));
    if let Some(sandbox) = &summary.sandbox {
        out.push_str(&format!("  sandbox      {sandbox}\n"));
    }
    for phase in &summary.phases {
        let ops: Vec<String> = phase.ops.iter().map(|(a, n)| format!("{n} {a}")).collect();
        out.push_str(&format!(
            "  {:<16} {:<15} {:<32} findings {} error, {} warning\n",
            phase.name,
            phase.status,
            if ops.is_empty() { "no ops".to_owned() } else { ops.join(", ") },
            phase.findings.error,
            phase.findings.warning
        ));
    }
    let q = &summary.queries;
    if q.statements > 0 {
        out.push_str(&format!(
            "  queries      {} sent, {} refused by the host, {} failed at the server, {} rows  \
             (queries.jsonl)\n",
            q.statements, q.refused, q.failed, q.rows
        ));
    }
    let r = &summary.resources;
    if let (Some(host), Some(worker)) = (r.host_max_rss_kib, r.worker_max_rss_kib) {
        out.push_str(&format!(
            "  peak memory  host {} MiB, worker {} MiB\n",
            host / 1024,
            worker / 1024
        ));
    }
    if let Some(unchanged) = summary.integrity.plugin_dir_unchanged {
        out.push_str(&format!(
            "  plugin directory byte-identical after the run: {}\n",
            if unchanged { "yes" } else { "NO" }
        ));
    }
    out
}
