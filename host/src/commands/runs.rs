//! `sidecar runs list|show ID|rm ID`: the run folders. A run is its folder;
//! removing a run deletes that folder and nothing else.

use std::path::Path;

use anyhow::Context as _;

use crate::cli::{RunsArgs, RunsCommand};
use crate::exit::{ExitStatus, UsageError};
use crate::run::state::RunState;

/// Runs `sidecar runs`.
pub fn run(args: &RunsArgs) -> anyhow::Result<ExitStatus> {
    match &args.command {
        RunsCommand::List => list(&args.runs_dir),
        RunsCommand::Show { id } => show(&args.runs_dir, id),
        RunsCommand::Rm { id } => rm(&args.runs_dir, id),
    }
}

fn list(runs_dir: &Path) -> anyhow::Result<ExitStatus> {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return Ok(ExitStatus::Success);
    };
    let mut ids: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("run.json").is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    for id in ids {
        match RunState::read(&runs_dir.join(&id).join("run.json")) {
            Ok(record) => {
                let plugin = record
                    .plugin
                    .map_or_else(|| "-".to_owned(), |p| format!("{} {}", p.name, p.version));
                println!(
                    "{id}  {:<8} {:<10} {plugin}  {}",
                    record.kind,
                    format!("{:?}", record.state).to_lowercase(),
                    record.created_at
                );
            }
            Err(err) => println!("{id}  unreadable run.json: {err}"),
        }
    }
    Ok(ExitStatus::Success)
}

fn run_dir(runs_dir: &Path, id: &str) -> anyhow::Result<std::path::PathBuf> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        return Err(UsageError(format!("`{id}` is not a run id")).into());
    }
    let dir = runs_dir.join(id);
    if !dir.join("run.json").is_file() {
        return Err(UsageError(format!("no run `{id}` in {}", runs_dir.display())).into());
    }
    Ok(dir)
}

fn show(runs_dir: &Path, id: &str) -> anyhow::Result<ExitStatus> {
    let dir = run_dir(runs_dir, id)?;
    let run = std::fs::read_to_string(dir.join("run.json")).context("cannot read run.json")?;
    print!("{run}");
    for report in ["summary.json", "compare.json", "compat.json"] {
        if let Ok(text) = std::fs::read_to_string(dir.join(report)) {
            print!("{text}");
        }
    }
    Ok(ExitStatus::Success)
}

fn rm(runs_dir: &Path, id: &str) -> anyhow::Result<ExitStatus> {
    let dir = run_dir(runs_dir, id)?;
    std::fs::remove_dir_all(&dir).with_context(|| format!("cannot remove `{}`", dir.display()))?;
    println!("removed {}", dir.display());
    Ok(ExitStatus::Success)
}
