//! Every `unsafe` block in the host lives here: the sealed memfd a plugin is
//! loaded from, the file-descriptor plumbing between host and worker, the
//! worker's process hardening (before exec) and its Landlock sandbox (after
//! exec, before any plugin code). Each block states the invariant it relies
//! on; everything outside this module is safe Rust.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use crate::integrity::manifest::Sha256Digest;
use crate::integrity::tree::{hash_reader, open_regular};

/// The descriptor number a worker finds its plugin library at.
pub const WORKER_LIBRARY_FD: RawFd = 3;

/// A plugin library copied into an anonymous, sealed memory file: its bytes
/// can no longer change, so the bytes that were hashed are the bytes that
/// get loaded (verify-then-`dlopen` by path would leave a gap).
#[derive(Debug)]
pub struct SealedLibrary {
    memfd: File,
    /// The sha256 of the sealed bytes.
    pub sha256: Sha256Digest,
    /// The size in bytes.
    pub len: u64,
}

impl SealedLibrary {
    /// Copies `path` into a new memfd, seals it against every change, then
    /// hashes the sealed copy.
    pub fn copy_from(path: &Path) -> io::Result<Self> {
        let mut source = open_regular(path)?;
        let name: &CStr = c"sidecar-plugin";
        // SAFETY: `name` is a valid NUL-terminated string; the flags are
        // constants memfd_create accepts. The result is checked below.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by memfd_create and is owned by no
        // one else.
        let mut memfd = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        let len = io::copy(&mut source, &mut memfd)?;
        let seals =
            libc::F_SEAL_WRITE | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: `memfd` is an open descriptor we own; F_ADD_SEALS takes an
        // int argument.
        if unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
            return Err(io::Error::last_os_error());
        }
        memfd.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; 1 << 20];
        let sha256 = hash_reader(&memfd, &mut buf)?;
        Ok(Self { memfd, sha256, len })
    }

    /// The sealed bytes, for read-only checks before loading.
    pub fn file(&self) -> &File {
        &self.memfd
    }

    /// Arranges for `command`'s child to find this library at
    /// [`WORKER_LIBRARY_FD`].
    pub fn pass_to_worker(&self, command: &mut Command) {
        let fd = self.memfd.as_raw_fd();
        // SAFETY: the closure runs in the child between fork and exec, so it
        // may only make async-signal-safe calls: dup2 and fcntl are, and it
        // allocates nothing. `fd` stays open in the parent until after spawn
        // returns, because `self` outlives the call.
        unsafe {
            command.pre_exec(move || {
                if fd == WORKER_LIBRARY_FD {
                    // dup2 onto itself would keep FD_CLOEXEC set.
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, WORKER_LIBRARY_FD) < 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            })
        };
    }
}

/// Hardens `command`'s child before it execs: no new privileges, no
/// capabilities, no core dumps, death when the host dies, and an address
/// space of at most `memory_limit` bytes.
pub fn harden_worker(command: &mut Command, memory_limit: u64) {
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes the async-signal-safe calls of `harden_child` and allocates
    // nothing (its values live on the stack).
    unsafe { command.pre_exec(move || harden_child(memory_limit)) };
}

/// `_LINUX_CAPABILITY_VERSION_3`: capsets of two 32-bit words per set.
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Runs in the forked child before exec: no new privileges, no
/// capabilities, no core dumps, death when the host dies, and the address
/// space limit.
///
/// The capabilities go because a host run as root would otherwise hand
/// them to the plugin: with `CAP_SYS_RESOURCE` it could raise its own
/// `RLIMIT_AS` back, with `CAP_DAC_OVERRIDE` ignore every file mode, and
/// with `CAP_SYS_PTRACE` read the host's environment through `/proc` (the
/// Landlock sandbox alone does not stop a process that holds it). With
/// no-new-privileges set first, exec cannot give them back (the kernel caps
/// an exec's capabilities at what the process already held). The limit is
/// both soft and hard, so the worker cannot raise it either.
fn harden_child(memory_limit: u64) -> io::Result<()> {
    let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    let address_space = libc::rlimit { rlim_cur: memory_limit, rlim_max: memory_limit };
    let header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let none = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: plain syscalls with constant arguments and valid pointers to
    // stack values of the layouts the kernel expects (capset reads one
    // header and two data structs for version 3); all are async-signal-safe.
    unsafe {
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
            || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
            || libc::setrlimit(libc::RLIMIT_CORE, &no_core) != 0
            || libc::setrlimit(libc::RLIMIT_AS, &address_space) != 0
            || libc::syscall(libc::SYS_capset, &header, none.as_ptr()) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The worker's protocol channel, taken over from its stdin and stdout.
#[derive(Debug)]
pub struct ProtocolFds {
    /// Requests from the host.
    pub input: File,
    /// Replies to the host.
    pub output: File,
}

/// Moves the protocol off fds 0 and 1 before any plugin code runs, then
/// points stdin at `/dev/null` and stdout at stderr, so a plugin that reads
/// stdin or prints cannot corrupt the channel.
pub fn take_protocol_fds() -> io::Result<ProtocolFds> {
    let input = dup_cloexec(libc::STDIN_FILENO)?;
    let output = dup_cloexec(libc::STDOUT_FILENO)?;
    let null = File::open("/dev/null")?;
    // SAFETY: both descriptors are open (stdin/stdout were just duplicated,
    // `null` and stderr are open); dup2 atomically replaces the target.
    unsafe {
        if libc::dup2(null.as_raw_fd(), libc::STDIN_FILENO) < 0
            || libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) < 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(ProtocolFds { input, output })
}

fn dup_cloexec(fd: RawFd) -> io::Result<File> {
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor returns a new one (>= 3)
    // or -1; the result is checked.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor owned by no one else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(new) }))
}

/// `LANDLOCK_CREATE_RULESET_VERSION`: ask `landlock_create_ruleset` for the
/// kernel's Landlock ABI version instead of creating a ruleset.
const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;

/// `struct landlock_ruleset_attr` as of ABI 6. An older kernel accepts the
/// longer struct as long as the fields it does not know are zero.
#[repr(C)]
struct LandlockRulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

/// The highest Landlock ABI version this kernel supports. `ENOSYS`: built
/// without Landlock; `EOPNOTSUPP`: built with it but not enabled at boot.
pub fn landlock_abi() -> io::Result<u32> {
    // SAFETY: with a null attribute, a size of 0 and the VERSION flag the
    // kernel reads no memory and returns the version or -1 (checked).
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<LandlockRulesetAttr>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    u32::try_from(abi).map_err(|_| io::Error::last_os_error())
}

/// Confines this process to a Landlock domain that handles the access
/// rights `fs` and `net` and the scopes `scoped`, with no rule granting any
/// of them: from now on every handled access is denied, to this process and
/// to everything it starts. The caller chooses bits its kernel's ABI knows
/// (an unknown bit is `EINVAL`).
///
/// Landlock confines only the calling thread (and the threads and processes
/// it starts later), so this must run while the process has one thread.
pub fn landlock_deny_all(fs: u64, net: u64, scoped: u64) -> io::Result<()> {
    debug_assert_eq!(thread_count(), Some(1), "Landlock would leave other threads free");
    let attr = LandlockRulesetAttr { handled_access_fs: fs, handled_access_net: net, scoped };
    // SAFETY: `attr` is a live struct of exactly the size passed; the kernel
    // copies it and returns a new descriptor or -1 (checked).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const LandlockRulesetAttr,
            std::mem::size_of::<LandlockRulesetAttr>(),
            0 as libc::c_uint,
        )
    };
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::last_os_error())?;
    // SAFETY: `fd` was just returned by landlock_create_ruleset and is owned
    // by no one else; it is closed when `ruleset` drops.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: prctl with constant arguments touches no memory. An
    // unprivileged process may only restrict itself with no-new-privileges
    // set; a worker already has it, this makes the function stand alone.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `ruleset` is an open Landlock ruleset descriptor; flags 0.
    let restricted = unsafe {
        libc::syscall(libc::SYS_landlock_restrict_self, ruleset.as_raw_fd(), 0 as libc::c_uint)
    };
    if restricted != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `AUDIT_ARCH_*` of the architecture this host is built for: the
/// `seccomp_data.arch` a native system call carries.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;

/// Refuses, for good, every system call that makes a socket: `socket(2)`
/// with `EACCES` (so no UDP, no unix socket by path, no netlink: a worker
/// needs none, its protocol is pipes), and `io_uring_setup(2)`, whose
/// rings can open sockets past the filter. A call of another architecture's
/// ABI (x86_64's 32-bit and x32 entry points) is refused whatever it is.
/// Inherited by every thread and process the worker starts later; needs
/// no-new-privileges, which the worker has.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub fn deny_new_sockets() -> io::Result<()> {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let statement = |code: u32, k: u32| libc::sock_filter { code: code as u16, jt: 0, jf: 0, k };
    let jump =
        |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter { code: code as u16, jt, jf, k };
    let deny = libc::SECCOMP_RET_ERRNO | (libc::EACCES as u32 & libc::SECCOMP_RET_DATA);
    // Offsets in `struct seccomp_data`: `nr` at 0, `arch` at 4.
    let filter = [
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, AUDIT_ARCH_NATIVE, 0, 5),
        statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K, X32_SYSCALL_BIT, 3, 0),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, libc::SYS_socket as u32, 2, 0),
        jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, libc::SYS_io_uring_setup as u32, 1, 0),
        statement(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        statement(libc::BPF_RET | libc::BPF_K, deny),
    ];
    let program = libc::sock_fprog { len: filter.len() as u16, filter: filter.as_ptr().cast_mut() };
    // SAFETY: prctl with constant arguments touches no memory; a filter
    // needs no-new-privileges (or CAP_SYS_ADMIN), which this sets.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `program` points at `filter`, a live array of `len` valid
    // classic-BPF instructions whose jumps stay inside it; the kernel
    // copies the program before returning 0 or -1 (checked).
    let installed = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &program as *const libc::sock_fprog,
        )
    };
    if installed != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// On an architecture whose system call numbers this host does not carry,
/// sockets stay possible, and the sandbox report says so.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn deny_new_sockets() -> io::Result<()> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "no socket filter for this architecture"))
}

/// The number of threads of this process, from `/proc/self/status`.
fn thread_count() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Threads:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The path a worker loads its library from. The descriptor is never closed:
/// glibc matches an already-loaded library by path string, so a later
/// library opened at the same descriptor number would be given the old one.
pub fn worker_library_path() -> String {
    format!("/proc/self/fd/{WORKER_LIBRARY_FD}")
}

/// Peak resident memory in KiB of this process (`None`) or of the live
/// process `pid`: `VmHWM`, that address space's own peak. (`ru_maxrss`
/// survives fork and exec on Linux, so it would report the peak of whatever
/// launched the process, and `RUSAGE_CHILDREN` the largest child of all.)
pub fn max_rss_kib(pid: Option<u32>) -> Option<u64> {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |p| format!("/proc/{p}/status"));
    let status = std::fs::read_to_string(path).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok()
}

/// Asks the kernel for a pipe buffer of `bytes` (capped at the system's
/// `pipe-max-size`) so a whole worker frame fits without the writer
/// waiting for the reader; best effort, the pipe works either way.
pub fn grow_pipe(pipe: &impl AsRawFd, bytes: usize) {
    let limit = std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
        .ok()
        .and_then(|text| text.trim().parse::<usize>().ok())
        .unwrap_or(1 << 20);
    let size = libc::c_int::try_from(bytes.min(limit)).unwrap_or(libc::c_int::MAX);
    // SAFETY: F_SETPIPE_SZ takes an int and touches no memory; on a
    // descriptor that is not a pipe it fails with EBADF/EINVAL, ignored.
    unsafe {
        libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, size);
    }
}

/// The name of a signal, for reports.
pub fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        _ => return format!("signal {signal}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_sealed_library_cannot_be_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lib.so");
        std::fs::write(&path, b"library bytes").expect("write");
        let sealed = SealedLibrary::copy_from(&path).expect("sealed");
        assert_eq!(sealed.sha256, Sha256Digest::of(b"library bytes"));
        assert_eq!(sealed.len, 13);
        let err = (&sealed.memfd).write_all(b"x").expect_err("sealed against writes");
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    }

    #[test]
    fn a_hardened_child_holds_no_capability_and_a_memory_limit_it_cannot_raise() {
        let mut command = Command::new("cat");
        command.args(["/proc/self/status", "/proc/self/limits"]);
        harden_worker(&mut command, 256 << 20);
        let out = command.output().expect("run cat");
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = |prefix: &str| {
            let line = text.lines().find(|l| l.starts_with(prefix));
            line.map(|l| l.split_whitespace().collect::<Vec<_>>().join(" ")).unwrap_or_default()
        };
        assert_eq!(line("NoNewPrivs:"), "NoNewPrivs: 1");
        for set in ["CapInh:", "CapPrm:", "CapEff:", "CapAmb:"] {
            assert_eq!(line(set), format!("{set} 0000000000000000"), "even when run as root");
        }
        // Soft and hard alike: the child cannot raise it back.
        assert_eq!(line("Max address space"), "Max address space 268435456 268435456 bytes");
        assert_eq!(line("Max core file size"), "Max core file size 0 0 bytes");
    }
}
