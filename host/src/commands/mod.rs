//! One module per subcommand; each returns the exit status it earned.

pub mod inspect;
pub mod lock;
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
        Command::Worker => {
            Err(anyhow::anyhow!("the worker mode is started by the host, not by hand"))
        }
    }
}
