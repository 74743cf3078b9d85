//! `sidecar compat DIR...`: the compatibility suite, one line per check like
//! a test runner. Exit 0 when every check of every plugin passed (skips
//! allowed), 1 when any failed, 2 on bad usage (an `--expect` file that does
//! not parse, an unknown key in it) or when the suite could not run.

use crate::cli::CompatArgs;
use crate::compat::expect::Expectations;
use crate::compat::{compat, junit, CompatOptions, CompatReport, Status};
use crate::exit::{ExitStatus, UsageError};
use crate::integrity::lock::LockFile;
use crate::integrity::tree::write_atomically;
use crate::worker::Limits;

/// Runs `sidecar compat`.
pub fn run(args: &CompatArgs) -> anyhow::Result<ExitStatus> {
    let limits = Limits { timeout: super::timeout(args.timeout)?, memory: args.worker.memory };
    let lock = LockFile::discover(args.lock.lock.as_deref())?;
    let expect = match &args.expect {
        Some(path) => {
            Some(Expectations::load(path).map_err(|e| UsageError(format!("--expect {e}")))?)
        }
        None => None,
    };
    let options = CompatOptions {
        dirs: &args.dirs,
        lock: lock.as_ref(),
        runs_dir: &args.runs_dir,
        limits,
        expect: expect.as_ref(),
    };
    let report = compat(&options).map_err(|err| UsageError(format!("compat: {err}")))?;
    if let Some(path) = &args.junit {
        write_atomically(path, junit::render(&report).as_bytes())
            .map_err(|err| UsageError(format!("--junit {}: {err}", path.display())))?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(if report.passed { ExitStatus::Success } else { ExitStatus::Failure })
}

fn human(report: &CompatReport) -> String {
    let mut out = String::new();
    let width =
        report.plugins.iter().flat_map(|p| &p.checks).map(|c| c.name.len()).max().unwrap_or(0);
    for plugin in &report.plugins {
        let name = plugin.plugin.as_deref().unwrap_or("unknown plugin");
        out.push_str(&format!("{name}  ({})\n", plugin.dir));
        for check in &plugin.checks {
            let status = match check.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            out.push_str(&format!("  {status}  {:<width$}  {}\n", check.name, check.detail));
        }
        let count = |s| plugin.checks.iter().filter(|c| c.status == s).count();
        out.push_str(&format!(
            "  {}: {} passed, {} failed, {} skipped\n\n",
            if plugin.passed { "passed" } else { "FAILED" },
            count(Status::Pass),
            count(Status::Fail),
            count(Status::Skip),
        ));
    }
    let totals = &report.totals;
    out.push_str(&format!(
        "compat {}  {}: {} plugin(s), {} checks, {} passed, {} failed, {} skipped\n  folder {}\n",
        report.compat_id,
        if report.passed { "passed" } else { "FAILED" },
        report.plugins.len(),
        totals.checks,
        totals.passed,
        totals.failed,
        totals.skipped,
        report.run_dir,
    ));
    out
}
