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
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        super::Cli::command().debug_assert();
    }
}
