//! The `sidecar` binary: parse, run, render the error once, exit with the
//! documented status.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use clap::Parser as _;
use sidecar::cli::{Cli, Command};
use sidecar::exit::{status_of, ExitStatus};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Worker = cli.command {
        // The worker installs no subscriber: it reports through the protocol.
        return match sidecar::worker::server::serve() {
            Ok(()) => ExitStatus::Success.into(),
            Err(err) => {
                eprintln!("sidecar worker: {err}");
                ExitStatus::Failure.into()
            }
        };
    }
    init_tracing(cli.verbose);
    match sidecar::commands::run(cli.command) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            status_of(&err).into()
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(false)
        .without_time()
        .init();
}
