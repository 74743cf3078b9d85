//! The exit-code contract, shared by every command (the README's table).

use std::process::ExitCode;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything checked out.
    Success = 0,
    /// A check failed: verification, a pin, a load, a plugin error or crash.
    Failure = 1,
    /// The command line or a configuration file is wrong.
    Usage = 2,
    /// Refused by policy: the kill-switch or the read-only database policy.
    Refused = 3,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status as u8)
    }
}

/// An error that is the user's to fix in the command line or a
/// configuration file; it exits with [`ExitStatus::Usage`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit status an error maps to.
pub fn status_of(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if cause.is::<UsageError>() || cause.is::<crate::integrity::lock::LockError>() {
            return ExitStatus::Usage;
        }
    }
    ExitStatus::Failure
}
