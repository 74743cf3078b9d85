//! The command line, as clap derive types. Parsing only: each subcommand's
//! behaviour lives in `commands/<name>.rs`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Verify, load and inspect orchestrator releases side by side, safely.
#[derive(Debug, Parser)]
#[command(name = "sidecar", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG wins.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write DEPLOY-MANIFEST.txt for a plugin directory (the only command that
    /// writes into one).
    Seal(SealArgs),
    /// Check plugin directories against their manifests and pins.
    Verify(VerifyArgs),
    /// Pin verified plugin directories' artifact digests in a lock file.
    Lock(LockArgs),
    /// Verify a plugin, load it in a worker and print what it declares.
    Inspect(InspectArgs),
    /// Dry-run every phase of a plugin on a read-only source and write the
    /// plan a live run would execute.
    DryRun(DryRunArgs),
    /// Dry-run two versions side by side on identical data and report what
    /// B would do differently (exit 0 same, 1 different, 2 error, 3 refused).
    Compare(CompareArgs),
    /// Run the compatibility suite on plugin directories: named checks, one
    /// line each (exit 0 all pass, 1 a check failed, 2 usage or trouble).
    Compat(CompatArgs),
    /// List the files that differ between two verified plugin directories
    /// (exit 0 the same, 1 different, 2 trouble, like `diff`).
    DiffTree(DiffTreeArgs),
    /// List, show or remove runs.
    Runs(RunsArgs),
    /// Write a generated Markdown corpus of a given size (for benchmarks).
    GenCorpus(GenCorpusArgs),
    /// Internal: the worker process that holds one plugin.
    #[command(name = "__worker", hide = true)]
    Worker,
}

/// Which lock file to use.
#[derive(Debug, Args)]
pub struct LockOption {
    /// Lock file with pinned artifact digests [default: ./sidecar.lock when it exists].
    #[arg(long, value_name = "FILE")]
    pub lock: Option<PathBuf>,
}

/// `sidecar diff-tree`.
#[derive(Debug, Args)]
pub struct DiffTreeArgs {
    /// The directory compared from (e.g. the deployed version).
    pub dir_a: PathBuf,
    /// The directory compared to (e.g. the staged version).
    pub dir_b: PathBuf,
    #[command(flatten)]
    pub lock: LockOption,
    /// Print one JSON document instead of `diff -rq` lines.
    #[arg(long)]
    pub json: bool,
}

/// `sidecar seal`.
#[derive(Debug, Args)]
pub struct SealArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    /// The plugin's name [default: from a directory named <name>-v<version>].
    #[arg(long)]
    pub name: Option<String>,
    /// The plugin's version [default: from a directory named <name>-v<version>].
    #[arg(long = "plugin-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// The library inside the directory [default: the only lib*.so at its top].
    #[arg(long, value_name = "PATH")]
    pub library: Option<String>,
}

/// `sidecar verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Plugin directories.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub lock: LockOption,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
}

/// `sidecar lock`.
#[derive(Debug, Args)]
pub struct LockArgs {
    /// Plugin directories to pin.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// The lock file to create or update.
    #[arg(long, value_name = "FILE", default_value = crate::integrity::lock::DEFAULT_LOCK_FILE)]
    pub lock: PathBuf,
    /// Move an existing pin to the directory's current digest.
    #[arg(long)]
    pub update: bool,
}

/// `sidecar inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub lock: LockOption,
    /// Print one JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// Seconds a worker may take to answer one call.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub worker: WorkerLimits,
}

/// The limits of a plugin's worker process, for any command that starts one.
#[derive(Debug, Args)]
pub struct WorkerLimits {
    /// Address space a plugin's worker may use (RLIMIT_AS), with an optional
    /// K, M or G suffix (powers of 1024); a worker that reaches it is
    /// reported as out of memory.
    #[arg(
        long = "worker-memory",
        value_name = "SIZE",
        default_value = crate::worker::DEFAULT_WORKER_MEMORY,
        value_parser = crate::worker::parse_worker_memory
    )]
    pub memory: u64,
}

/// `sidecar dry-run`.
#[derive(Debug, Args)]
pub struct DryRunArgs {
    /// The plugin directory.
    pub dir: PathBuf,
    #[command(flatten)]
    pub run: RunOptions,
    /// Print summary.json on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// `sidecar compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Side A: the version compared from (e.g. the deployed one).
    pub dir_a: PathBuf,
    /// Side B: the version compared to (e.g. the staged one).
    pub dir_b: PathBuf,
    #[command(flatten)]
    pub run: RunOptions,
    /// Also run A a second time: any A-vs-A difference is noise, and with
    /// noise the verdict is `untrustworthy`.
    #[arg(long)]
    pub aa: bool,
    /// Also write report.html, a self-contained page with the per-document
    /// differences side by side.
    #[arg(long)]
    pub html: bool,
    /// Print compare.json on stdout instead of the human summary.
    #[arg(long)]
    pub json: bool,
}

/// `sidecar compat`.
#[derive(Debug, Args)]
pub struct CompatArgs {
    /// Plugin directories.
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Post-deploy assertions (TOML): name, version, milestone, live_wiring
    /// (globs), execution_enabled, capabilities, phases_include, min_abi.
    #[arg(long, value_name = "FILE")]
    pub expect: Option<PathBuf>,
    /// Print compat.json on stdout instead of the check lines.
    #[arg(long, conflicts_with = "junit")]
    pub json: bool,
    /// Also write the checks as JUnit XML to FILE, for CI systems.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub lock: LockOption,
    /// Where the suite's folder goes.
    #[arg(long, value_name = "DIR", default_value = crate::run::DEFAULT_RUNS_DIR)]
    pub runs_dir: PathBuf,
    /// Seconds the plugin may take for one call, or one phase of one batch;
    /// a worker that takes longer is killed.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub worker: WorkerLimits,
}

/// What a dry run (or each side of a comparison) reads, and its limits.
#[derive(Debug, Args)]
pub struct RunOptions {
    /// The data: `embedded` (default), `dir:PATH` (every *.md under PATH),
    /// `generated:SIZE[:SEED]` (e.g. generated:100M), `postgres` (settings
    /// from --env-file, else the PG* variables) or a postgres:// URL.
    #[arg(long, value_name = "SOURCE")]
    pub source: Option<String>,
    /// For `--source postgres`: a file with PG_HOST, PG_PORT, PG_DB,
    /// PG_USER_RO and PG_PASSWORD_RO.
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// For PostgreSQL: the session's statement_timeout.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = crate::pg::parse_pg_duration)]
    pub statement_timeout: String,
    /// For PostgreSQL: the session's lock_timeout.
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = crate::pg::parse_pg_duration)]
    pub lock_timeout: String,
    /// For PostgreSQL: the session's idle_in_transaction_session_timeout.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = crate::pg::parse_pg_duration)]
    pub idle_timeout: String,
    /// Where run folders go.
    #[arg(long, value_name = "DIR", default_value = crate::run::DEFAULT_RUNS_DIR)]
    pub runs_dir: PathBuf,
    /// Documents per batch; memory grows with this, not with the corpus.
    #[arg(long, value_name = "N", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    #[command(flatten)]
    pub lock: LockOption,
    /// Seconds the plugin may take for one phase of one batch.
    #[arg(long, value_name = "SECONDS", default_value_t = 120.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub worker: WorkerLimits,
}

/// `sidecar runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RunsCommand,
    /// Where run folders are.
    #[arg(long, value_name = "DIR", default_value = crate::run::DEFAULT_RUNS_DIR, global = true)]
    pub runs_dir: PathBuf,
}

/// `sidecar runs` subcommands.
#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// One line per run, oldest first.
    List,
    /// A run's run.json and, when present, its summary.
    Show {
        /// The run id.
        id: String,
    },
    /// Delete a run's folder (everything the run wrote).
    Rm {
        /// The run id.
        id: String,
    },
}

/// `sidecar gen-corpus`.
#[derive(Debug, Args)]
pub struct GenCorpusArgs {
    /// The directory to write the Markdown files into.
    pub out: PathBuf,
    /// Total body bytes, with an optional K, M or G suffix (powers of 1024).
    #[arg(long, default_value = "100M")]
    pub size: String,
    /// The generator's seed.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
