//! The worker's sandbox: what a plugin may not do even though it runs as
//! the operator's user.
//!
//! The worker confines itself with Landlock before it loads the plugin (so
//! before the library's constructors run), and the confinement is
//! inherited by every thread and process the plugin starts. There is no
//! rule at all, only handled rights, so everything handled is denied:
//!
//! - every write-type filesystem right the kernel's ABI knows: no file is
//!   opened for writing, created, removed, renamed, linked or truncated
//!   anywhere, no device is given an ioctl (a terminal's `TIOCSTI` would
//!   type into the operator's shell). Reading stays possible: the plugin's
//!   dependencies load lazily, and a plugin gets its records from the host;
//! - from ABI 4, binding and connecting TCP sockets;
//! - from ABI 6, connecting to abstract unix sockets and sending signals
//!   outside the worker (the host, the operator's other processes).
//!
//! Landlock cannot stop UDP or a connection to a unix socket by path (a
//! local PostgreSQL's socket would take a plugin past the statement gate),
//! so a seccomp filter then refuses every new socket (`sys::deny_new_sockets`):
//! the worker's protocol is pipes, it needs none.
//!
//! Landlock also keeps the worker from ptrace-style access to processes
//! outside its domain, so `/proc/<host>/environ` (the host's secrets) and
//! `/proc/<host>/mem` are closed to it. Not to a process holding
//! `CAP_SYS_PTRACE`, though: that a host run as root gives the worker no
//! capability (`sys::harden_worker`) is the other half of it.
//!
//! A kernel without Landlock still runs plugins, unconfined; the worker
//! says so in its `Hello`, and the host shows it in `inspect` and the run's
//! `summary.json`. Rights the kernel's ABI does not know are left out (the
//! kernel refuses a ruleset naming them), so an older kernel gets the part
//! of the sandbox it can enforce, and the report says which part.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

use crate::sys;

/// `LANDLOCK_ACCESS_FS_*` write-type rights of ABI 1: writing a file and
/// making or removing every kind of directory entry.
const FS_WRITES_V1: u64 = WRITE_FILE
    | REMOVE_DIR
    | REMOVE_FILE
    | MAKE_CHAR
    | MAKE_DIR
    | MAKE_REG
    | MAKE_SOCK
    | MAKE_FIFO
    | MAKE_BLOCK
    | MAKE_SYM;
const WRITE_FILE: u64 = 1 << 1;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
/// ABI 2: linking or renaming across directories.
const REFER: u64 = 1 << 13;
/// ABI 3: truncating (`truncate`, `O_TRUNC`, `ftruncate` on a file opened
/// after the sandbox).
const TRUNCATE: u64 = 1 << 14;
/// ABI 5: `ioctl` on character and block devices opened after the sandbox.
const IOCTL_DEV: u64 = 1 << 15;
/// `LANDLOCK_ACCESS_NET_*` of ABI 4.
const BIND_TCP: u64 = 1 << 0;
const CONNECT_TCP: u64 = 1 << 1;
/// `LANDLOCK_SCOPE_*` of ABI 6.
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

/// What a worker is confined to, as it reports in its `Hello`. (The
/// default, confined to nothing, stands only until the `Hello` arrives.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sandbox {
    /// The Landlock ABI version the worker is confined with; `None` when it
    /// is not confined.
    pub landlock_abi: Option<u32>,
    /// What the worker may not do: `file_writes`, `tcp_bind`,
    /// `tcp_connect`, `abstract_unix_sockets`, `signals` (outside the
    /// worker), and `sockets` (no new socket of any kind, from the seccomp
    /// filter, which also stands without Landlock).
    pub denies: Vec<String>,
    /// Why the worker is not confined (`kernel without Landlock`,
    /// `Landlock disabled at boot`, or the error); `None` when it is.
    pub unconfined: Option<String>,
}

/// The rights and scopes handled at one Landlock ABI version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ruleset {
    fs: u64,
    net: u64,
    scoped: u64,
}

impl Ruleset {
    /// Everything this sandbox denies that the kernel's ABI `abi` knows.
    fn for_abi(abi: u32) -> Self {
        let mut fs = FS_WRITES_V1;
        if abi >= 2 {
            fs |= REFER;
        }
        if abi >= 3 {
            fs |= TRUNCATE;
        }
        if abi >= 5 {
            fs |= IOCTL_DEV;
        }
        let net = if abi >= 4 { BIND_TCP | CONNECT_TCP } else { 0 };
        let scoped = if abi >= 6 { SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL } else { 0 };
        Self { fs, net, scoped }
    }

    fn denies(self) -> Vec<String> {
        let mut denies = vec!["file_writes"];
        if self.net & BIND_TCP != 0 {
            denies.push("tcp_bind");
        }
        if self.net & CONNECT_TCP != 0 {
            denies.push("tcp_connect");
        }
        if self.scoped & SCOPE_ABSTRACT_UNIX_SOCKET != 0 {
            denies.push("abstract_unix_sockets");
        }
        if self.scoped & SCOPE_SIGNAL != 0 {
            denies.push("signals");
        }
        denies.into_iter().map(str::to_owned).collect()
    }
}

/// Confines this process for good, as far as the kernel allows, and says
/// how. Runs in the worker before the plugin is loaded, while the worker
/// has a single thread.
pub fn confine() -> Sandbox {
    let mut sandbox = match sys::landlock_abi() {
        Err(err) => Sandbox::unconfined(unavailable(&err)),
        Ok(abi) => {
            let ruleset = Ruleset::for_abi(abi);
            match sys::landlock_deny_all(ruleset.fs, ruleset.net, ruleset.scoped) {
                Ok(()) => {
                    Sandbox { landlock_abi: Some(abi), denies: ruleset.denies(), unconfined: None }
                }
                Err(err) => {
                    Sandbox::unconfined(format!("Landlock v{abi} refused the sandbox: {err}"))
                }
            }
        }
    };
    match sys::deny_new_sockets() {
        Ok(()) => sandbox.denies.push("sockets".to_owned()),
        Err(err) => tracing::warn!("the worker can still open sockets: {err}"),
    }
    sandbox
}

fn unavailable(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(libc::ENOSYS) => "kernel without Landlock".to_owned(),
        Some(libc::EOPNOTSUPP) => "Landlock disabled at boot".to_owned(),
        _ => format!("Landlock unavailable: {err}"),
    }
}

impl Sandbox {
    fn unconfined(reason: String) -> Self {
        Self { landlock_abi: None, denies: Vec::new(), unconfined: Some(reason) }
    }

    /// Whether the worker runs confined.
    pub fn is_confined(&self) -> bool {
        self.landlock_abi.is_some()
    }
}

/// One line: `landlock v7 (no file writes, no TCP, no signals or abstract
/// unix sockets beyond the worker)` or `none (kernel without Landlock)`.
impl fmt::Display for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let denies = |what: &str| self.denies.iter().any(|d| d == what);
        let sockets = if denies("sockets") { "; no sockets" } else { "" };
        let Some(abi) = self.landlock_abi else {
            let why = self.unconfined.as_deref().unwrap_or("not confined");
            return write!(f, "none ({why}){sockets}");
        };
        let mut parts = Vec::new();
        if denies("file_writes") {
            parts.push("no file writes");
        }
        if denies("tcp_bind") && denies("tcp_connect") {
            parts.push("no TCP");
        }
        match (denies("signals"), denies("abstract_unix_sockets")) {
            (true, true) => parts.push("no signals or abstract unix sockets beyond the worker"),
            (true, false) => parts.push("no signals beyond the worker"),
            (false, true) => parts.push("no abstract unix sockets beyond the worker"),
            (false, false) => {}
        }
        if denies("sockets") {
            parts.push("no sockets");
        }
        write!(f, "landlock v{abi} ({})", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_abi_handles_the_write_rights_it_knows_and_nothing_it_does_not() {
        let v1 = Ruleset::for_abi(1);
        assert_eq!(v1, Ruleset { fs: 0b1_1111_1111_0010, net: 0, scoped: 0 });
        assert_eq!(Ruleset::for_abi(2).fs, v1.fs | 1 << 13);
        assert_eq!(Ruleset::for_abi(3).fs, v1.fs | 1 << 13 | 1 << 14);
        assert_eq!(Ruleset::for_abi(4).net, 0b11);
        assert_eq!(Ruleset::for_abi(4).fs, Ruleset::for_abi(3).fs);
        assert_eq!(Ruleset::for_abi(5).fs, Ruleset::for_abi(3).fs | 1 << 15);
        assert_eq!(Ruleset::for_abi(6).scoped, 0b11);
        // ABI 7 added audit logging, no right: the same sandbox as ABI 6.
        assert_eq!(Ruleset::for_abi(7), Ruleset::for_abi(6));
        // No read right, no execute right: the plugin's libraries must load.
        for abi in 1..=7 {
            assert_eq!(Ruleset::for_abi(abi).fs & (1 << 0 | 1 << 2 | 1 << 3), 0, "v{abi}");
        }
    }

    #[test]
    fn the_report_names_what_is_denied() {
        let confined = |abi| {
            let ruleset = Ruleset::for_abi(abi);
            Sandbox { landlock_abi: Some(abi), denies: ruleset.denies(), unconfined: None }
        };
        assert_eq!(
            confined(7).to_string(),
            "landlock v7 (no file writes, no TCP, no signals or abstract unix sockets beyond the worker)"
        );
        assert_eq!(
            confined(7).denies,
            ["file_writes", "tcp_bind", "tcp_connect", "abstract_unix_sockets", "signals"]
        );
        assert_eq!(confined(4).to_string(), "landlock v4 (no file writes, no TCP)");
        let mut filtered = confined(4);
        filtered.denies.push("sockets".to_owned());
        assert_eq!(filtered.to_string(), "landlock v4 (no file writes, no TCP, no sockets)");
        let mut bare = Sandbox::unconfined("kernel without Landlock".to_owned());
        bare.denies.push("sockets".to_owned());
        assert_eq!(bare.to_string(), "none (kernel without Landlock); no sockets");
        assert_eq!(confined(3).to_string(), "landlock v3 (no file writes)");
        let none = Sandbox::unconfined(unavailable(&io::Error::from_raw_os_error(libc::ENOSYS)));
        assert_eq!(none.to_string(), "none (kernel without Landlock)");
        assert!(!none.is_confined() && none.denies.is_empty());
        assert_eq!(
            unavailable(&io::Error::from_raw_os_error(libc::EOPNOTSUPP)),
            "Landlock disabled at boot"
        );
    }
}
