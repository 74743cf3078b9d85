//! One module per subcommand; each returns the exit status it earned.

pub mod compare;
pub mod compat;
pub mod diff_tree;
pub mod dry_run;
pub mod gen_corpus;
pub mod inspect;
pub mod lock;
pub mod runs;
pub mod seal;
pub mod verify;

use crate::cli::Command;
use crate::exit::ExitStatus;

/// Runs a parsed subcommand (the worker mode is dispatched in `main`).
pub fn run(command: Command) -> anyhow::Result<ExitStatus> {
    match command {
        Command::Seal(args) => seal::run(&args),
        Command::Verify(args) => verify::run(&args),
        Command::Lock(args) => lock::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::DryRun(args) => dry_run::run(&args),
        Command::Compare(args) => compare::run(&args),
        Command::Compat(args) => compat::run(&args),
        Command::DiffTree(args) => diff_tree::run(&args),
        Command::Runs(args) => runs::run(&args),
        Command::GenCorpus(args) => gen_corpus::run(&args),
        Command::Worker => {
            Err(anyhow::anyhow!("the worker mode is started by the host, not by hand"))
        }
    }
}

/// Parses `--timeout SECONDS`.
pub fn timeout(seconds: f64) -> Result<std::time::Duration, crate::exit::UsageError> {
    std::time::Duration::try_from_secs_f64(seconds).ok().filter(|t| !t.is_zero()).ok_or_else(|| {
        crate::exit::UsageError(format!("--timeout {seconds} is not a positive number of seconds"))
    })
}
