//! Test fixture: a plugin built once per misbehaviour, selected by a cargo
//! feature, so the end-to-end tests can prove each one is contained or
//! refused by name. Never shipped: `make plugins` does not build it.

use std::sync::atomic::{AtomicUsize, Ordering};

use sidecar_abi::sdk::{Context, Plugin, Run};
use sidecar_abi::{
    Mode, PhaseDecl, PhaseOutcome, PlanAction, PlanOp, PluginError, PluginInfo, RecordBatch,
    SideEffects,
};

/// The plugin.
pub struct Hostile;

/// A run.
pub struct HostileRun {
    #[cfg_attr(
        not(any(
            feature = "queries",
            feature = "snapshot_reader",
            feature = "writes_own_dir",
            feature = "reads_secret_env",
            feature = "opens_sockets"
        )),
        allow(dead_code)
    )]
    ctx: Context,
}

impl Plugin for Hostile {
    type Run = HostileRun;

    fn info() -> PluginInfo {
        if cfg!(feature = "panic_in_describe") {
            panic!("deliberate panic in describe");
        }
        if cfg!(feature = "abort_in_describe") {
            std::process::abort();
        }
        if cfg!(feature = "segfault_in_describe") {
            segfault();
        }
        if cfg!(feature = "hang_in_describe") {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        let name = if cfg!(feature = "wrong_identity") { "impostor" } else { "test-plugin" };
        // Its count `records` is the number of inserts its plan holds.
        let info = PluginInfo::new(name, "1.0")
            .with_phase(PhaseDecl::new("discover", SideEffects::NONE))
            .with_phase(PhaseDecl::new("record", SideEffects::NONE_ON_DRY_RUN))
            .with_attribute("plan.count.insert.information_unit", "records");
        if cfg!(feature = "unsafe_phase") {
            info.with_phase(PhaseDecl::new("mutate", SideEffects::SOME))
        } else {
            info
        }
    }

    fn execution_enabled() -> bool {
        // Call 1 is the host's read before the run; the SDK reads the switch
        // again when the refusal probe asks for a live run (call 2).
        static READS: AtomicUsize = AtomicUsize::new(0);
        let read = READS.fetch_add(1, Ordering::SeqCst) + 1;
        if cfg!(feature = "accepts_live") {
            // Reports `false` to the host, then lets the SDK accept `Live`.
            return read >= 2;
        }
        if cfg!(feature = "flips_execution_enabled") {
            // Off when the run starts, on when the host reads it afterwards.
            return read >= 3;
        }
        cfg!(feature = "execution_enabled")
    }

    fn start_run(ctx: Context, _mode: Mode) -> Result<HostileRun, PluginError> {
        Ok(HostileRun { ctx })
    }
}

impl Run for HostileRun {
    fn run_phase(
        &mut self,
        phase: &str,
        _mode: Mode,
        batch: &RecordBatch,
    ) -> Result<PhaseOutcome, PluginError> {
        if cfg!(feature = "panic_in_phase") {
            panic!("deliberate panic in phase {phase}");
        }
        if cfg!(feature = "abort_in_phase") && phase == "record" {
            std::process::abort();
        }
        if cfg!(feature = "hang_in_phase") && phase == "record" {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
        if cfg!(feature = "allocates_unbounded") && phase == "record" {
            return Err(allocate_unbounded());
        }
        let mut outcome = PhaseOutcome::ok().with_count("documents", batch.documents.len() as u64);
        #[cfg(feature = "queries")]
        if phase == "discover" {
            queries::run(&self.ctx, batch, &mut outcome)?;
        }
        #[cfg(feature = "snapshot_reader")]
        if phase == "discover" {
            snapshot_reader(&self.ctx, &mut outcome)?;
        }
        #[cfg(feature = "writes_own_dir")]
        if phase == "discover" {
            writes_own_dir::report(&self.ctx, &mut outcome);
        }
        #[cfg(feature = "reads_secret_env")]
        if phase == "discover" {
            reads_secret_env::report(&self.ctx, &mut outcome);
        }
        #[cfg(feature = "opens_sockets")]
        if phase == "discover" {
            open_sockets(&self.ctx, &mut outcome);
        }
        if phase == "record" {
            static RECORDS: AtomicUsize = AtomicUsize::new(0);
            let mut record = RECORDS.fetch_add(1, Ordering::SeqCst);
            if cfg!(feature = "nondeterministic") {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
                record += now.map_or(0, |d| d.subsec_nanos() as usize);
            }
            // On the second batch, an after-image the host cannot accept.
            let after_image =
                if cfg!(feature = "invalid_plan") && record == 1 { "not json" } else { "{}" };
            outcome.plan.push(PlanOp {
                action: PlanAction::INSERT,
                table: "information_unit".into(),
                key: format!("{record}:0").as_str().into(),
                after_image: after_image.into(),
            });
            // With `plan_count_mismatch`, the count says two inserts; the
            // plan holds one.
            let records = if cfg!(feature = "plan_count_mismatch") { 2 } else { 1 };
            outcome = outcome.with_count("records", records);
        }
        Ok(outcome)
    }
}

/// Counts the documents its queries see, from the sixth batch on in the
/// `_late` build; `documents_visible` sums what each batch saw.
#[cfg(feature = "snapshot_reader")]
fn snapshot_reader(ctx: &Context, outcome: &mut PhaseOutcome) -> Result<(), PluginError> {
    static BATCHES: AtomicUsize = AtomicUsize::new(0);
    let batch = BATCHES.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(std::time::Duration::from_millis(100));
    if cfg!(feature = "snapshot_reader_late") && batch < 5 {
        return Ok(());
    }
    let mut seen = 0u64;
    for row in ctx.query("SELECT id FROM source_document", &[])? {
        row?;
        seen += 1;
    }
    outcome.counts.push(abi_stable::std_types::Tuple2("documents_visible".into(), seen));
    Ok(())
}

/// The `queries` fixture: what a plugin can try through its host context.
#[cfg(feature = "queries")]
mod queries {
    use std::sync::atomic::{AtomicBool, Ordering};

    use abi_stable::std_types::Tuple2;
    use sidecar_abi::sdk::Context;
    use sidecar_abi::{Finding, PhaseOutcome, PluginError, RecordBatch, Severity};

    const BYPASSES: &str = include_str!("../../../sql/bypasses.txt");

    pub fn run(
        ctx: &Context,
        batch: &RecordBatch,
        outcome: &mut PhaseOutcome,
    ) -> Result<(), PluginError> {
        static TRIED: AtomicBool = AtomicBool::new(false);
        if !TRIED.swap(true, Ordering::SeqCst) {
            for sql in BYPASSES.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
                let answer = match ctx.query(sql, &[]) {
                    Ok(rows) => format!("ran: {} row(s)", rows.count()),
                    Err(err) => err.to_string(),
                };
                outcome.findings.push(Finding {
                    severity: Severity::INFO,
                    code: "bypass".into(),
                    subject: sql.into(),
                    message: answer.as_str().into(),
                });
            }
        }
        // A real read, with a parameter, on the run's snapshot.
        let first = batch.documents.first().map_or(0, |d| d.id).to_string();
        let mut rows =
            ctx.query("SELECT count(*), min(id) FROM source_document WHERE id >= $1", &[&first])?;
        let columns: Vec<String> =
            rows.columns().iter().map(|c| format!("{}:{}", c.name, c.type_name)).collect();
        let row = rows.next().ok_or_else(|| PluginError::failed("no row"))??;
        let count = row[0].as_deref().unwrap_or("0").parse::<u64>().unwrap_or(0);
        ctx.info(&format!("columns {}; {count} documents from {first}", columns.join(",")));
        outcome.counts.push(Tuple2("documents_from_here".into(), count));
        // Time in the database: what the statement timeout bounds.
        ctx.query("SELECT pg_sleep(0.2)", &[])?.try_for_each(|row| row.map(drop))?;
        Ok(())
    }
}

/// Holds on to ever more memory, every page written, until the allocator
/// fails and Rust's allocation error handler aborts the process. Returns
/// only if 4 GiB went through without that.
fn allocate_unbounded() -> PluginError {
    const CHUNK: usize = 16 << 20;
    const GIVE_UP: usize = 4 << 30;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    while hoard.len() * CHUNK < GIVE_UP {
        // `vec![1; n]` writes every byte, so the pages are resident, not
        // just reserved; black_box keeps the optimiser from eliding them.
        hoard.push(std::hint::black_box(vec![1u8; CHUNK]));
    }
    PluginError::failed("allocated 4 GiB and nothing stopped it")
}

/// An info finding, also sent as a log line (what a plugin would use to get
/// something out of its sandbox: both end up in the run folder or on the
/// host's stderr).
#[cfg(any(feature = "writes_own_dir", feature = "reads_secret_env", feature = "opens_sockets"))]
fn tell(ctx: &Context, outcome: &mut PhaseOutcome, code: &str, subject: &str, message: &str) {
    ctx.info(&format!("{code} {subject}: {message}"));
    outcome.findings.push(sidecar_abi::Finding {
        severity: sidecar_abi::Severity::INFO,
        code: code.into(),
        subject: subject.into(),
        message: message.into(),
    });
}

/// The `opens_sockets` fixture: the ways out Landlock does not close, tried
/// on every batch and reported as findings (`done` or the error): UDP, a
/// local PostgreSQL's unix socket by path, TCP to it.
#[cfg(feature = "opens_sockets")]
fn open_sockets(ctx: &Context, outcome: &mut PhaseOutcome) {
    use std::net::{TcpStream, UdpSocket};
    use std::os::unix::net::UnixStream;
    let result = |r: std::io::Result<()>| match r {
        Ok(()) => "done".to_owned(),
        Err(err) => err.to_string(),
    };
    let udp = UdpSocket::bind("127.0.0.1:0").and_then(|s| s.send_to(b"x", "127.0.0.1:9").map(drop));
    tell(ctx, outcome, "socket", "udp 127.0.0.1:9", &result(udp));
    for path in ["/var/run/postgresql/.s.PGSQL.5432", "/tmp/.s.PGSQL.5432"] {
        tell(ctx, outcome, "socket", path, &result(UnixStream::connect(path).map(drop)));
    }
    let tcp = TcpStream::connect("127.0.0.1:5432").map(drop);
    tell(ctx, outcome, "socket", "tcp 127.0.0.1:5432", &result(tcp));
}

/// The `writes_own_dir` fixture: a plugin that tries to change the
/// directory it was shipped in.
#[cfg(feature = "writes_own_dir")]
mod writes_own_dir {
    use std::ffi::OsStr;
    use std::fs::{self, OpenOptions};
    use std::io::Write as _;
    use std::os::unix::ffi::OsStrExt as _;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    use sidecar_abi::sdk::Context;
    use sidecar_abi::PhaseOutcome;

    /// Every attempt so far: (when, file, what it got).
    static ATTEMPTS: Mutex<Vec<(String, String, String)>> = Mutex::new(Vec::new());

    /// Runs when the library is loaded, before the host has called
    /// anything: the earliest a plugin's code can run.
    #[used]
    #[link_section = ".init_array"]
    static AT_LOAD: extern "C" fn() = at_load;

    extern "C" fn at_load() {
        attempt("at load");
    }

    /// Reports every attempt, the load's and this phase's, on the first
    /// batch.
    pub fn report(ctx: &Context, outcome: &mut PhaseOutcome) {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if REPORTED.swap(true, Ordering::SeqCst) {
            return;
        }
        attempt("in discover");
        let attempts = std::mem::take(&mut *ATTEMPTS.lock().unwrap_or_else(|e| e.into_inner()));
        if attempts.is_empty() {
            super::tell(ctx, outcome, "write-attempt", "", "no plugin directory found");
        }
        for (when, file, result) in attempts {
            super::tell(ctx, outcome, "write-attempt", &file, &format!("{when}: {result}"));
        }
    }

    fn attempt(when: &str) {
        let mut attempts = ATTEMPTS.lock().unwrap_or_else(|e| e.into_inner());
        for dir in own_dirs() {
            let planted = dir.join("planted.txt");
            let created = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&planted)
                .and_then(|mut f| f.write_all(b"planted by the plugin\n"));
            attempts.push((when.to_owned(), show(&planted), outcome("create", created)));
            let readme = dir.join("README.md");
            let appended = OpenOptions::new()
                .append(true)
                .open(&readme)
                .and_then(|mut f| f.write_all(b"\nappended by the plugin\n"));
            attempts.push((when.to_owned(), show(&readme), outcome("append", appended)));
        }
    }

    fn outcome(what: &str, result: std::io::Result<()>) -> String {
        match result {
            Ok(()) => format!("{what}: done"),
            Err(err) => format!("{what}: {err}"),
        }
    }

    fn show(path: &std::path::Path) -> String {
        path.to_string_lossy().into_owned()
    }

    /// Directories holding a `DEPLOY-MANIFEST.txt` that the host's command
    /// line names (relative ones resolved against the host's working
    /// directory, if it can be read) or that a file mapped into this
    /// process lives in.
    fn own_dirs() -> Vec<PathBuf> {
        let is_plugin_dir = |dir: &PathBuf| dir.join("DEPLOY-MANIFEST.txt").is_file();
        let mut dirs: Vec<PathBuf> = Vec::new();
        let host = std::os::unix::process::parent_id();
        let cwd = fs::read_link(format!("/proc/{host}/cwd")).ok();
        let cmdline = fs::read(format!("/proc/{host}/cmdline")).unwrap_or_default();
        for arg in cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()) {
            let path = PathBuf::from(OsStr::from_bytes(arg));
            let path = match &cwd {
                _ if path.is_absolute() => path,
                Some(cwd) => cwd.join(path),
                None => continue,
            };
            if is_plugin_dir(&path) && !dirs.contains(&path) {
                dirs.push(path);
            }
        }
        let maps = fs::read_to_string("/proc/self/maps").unwrap_or_default();
        for file in maps.lines().filter_map(|l| l.split_whitespace().nth(5)) {
            let dir = PathBuf::from(file).parent().map(PathBuf::from);
            if let Some(dir) = dir.filter(|d| d.is_absolute() && is_plugin_dir(d)) {
                if !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        dirs
    }
}

/// The `reads_secret_env` fixture: a plugin after the operator's secrets.
#[cfg(feature = "reads_secret_env")]
mod reads_secret_env {
    use std::sync::atomic::{AtomicBool, Ordering};

    use abi_stable::std_types::Tuple2;
    use sidecar_abi::sdk::Context;
    use sidecar_abi::PhaseOutcome;

    const SECRETS: [&str; 4] =
        ["PGPASSWORD", "PG_PASSWORD_RO", "DATABASE_URL", "AWS_SECRET_ACCESS_KEY"];

    /// On the first batch: its own environment, then the host's.
    pub fn report(ctx: &Context, outcome: &mut PhaseOutcome) {
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if REPORTED.swap(true, Ordering::SeqCst) {
            return;
        }
        let seen = std::env::vars_os().count() as u64;
        ctx.info(&format!("env_vars_seen {seen}"));
        outcome.counts.push(Tuple2("env_vars_seen".into(), seen));
        for name in SECRETS {
            if let Some(value) = std::env::var_os(name) {
                let value = value.to_string_lossy();
                super::tell(ctx, outcome, "secret-found", name, &value);
            }
        }
        let host = std::os::unix::process::parent_id();
        match std::fs::read(format!("/proc/{host}/environ")) {
            Ok(environ) => {
                let vars: Vec<String> = environ
                    .split(|b| *b == 0)
                    .filter(|v| !v.is_empty())
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect();
                let message = format!("read {} variables", vars.len());
                super::tell(ctx, outcome, "host-environ", "host environment", &message);
                for var in vars {
                    if let Some((name, value)) = var.split_once('=') {
                        if SECRETS.contains(&name) {
                            super::tell(ctx, outcome, "secret-found", name, value);
                        }
                    }
                }
            }
            Err(err) => {
                let message = err.to_string();
                super::tell(ctx, outcome, "host-environ", "host environment", &message);
            }
        }
    }
}

#[allow(clippy::disallowed_names)]
fn segfault() -> ! {
    let null: *mut u8 = std::ptr::null_mut();
    // SAFETY: not safe at all, on purpose: this fixture exists to crash its
    // worker with SIGSEGV so the test suite can prove the host survives.
    unsafe { null.write_volatile(1) };
    unreachable!("the write above faults")
}

#[cfg(not(feature = "broken_cutter"))]
sidecar_abi::export_plugin!(Hostile);

#[cfg(feature = "broken_cutter")]
sidecar_abi::export_plugin!(broken::BrokenCutterPlugin);

/// The IU cutter with a cutter that drops the last byte of every piece but
/// the last, so the units no longer concatenate to the body.
#[cfg(feature = "broken_cutter")]
mod broken {
    use iu_cutter_core::sidecar::{plugin_info, SidecarRun};
    use iu_cutter_core::{Cutter, MarkdownCutter, Piece};
    use sidecar_abi::sdk::{Context, Plugin};
    use sidecar_abi::{Mode, PluginError, PluginInfo};

    pub struct DropsAByte;

    impl Cutter for DropsAByte {
        fn cut(&self, body: &str) -> Vec<Piece> {
            let mut pieces = MarkdownCutter.cut(body);
            let last = pieces.len().saturating_sub(1);
            for piece in &mut pieces[..last] {
                if piece.end > piece.start + 1 && body.is_char_boundary(piece.end - 1) {
                    piece.end -= 1;
                }
            }
            pieces
        }
    }

    pub struct BrokenCutterPlugin;

    impl Plugin for BrokenCutterPlugin {
        type Run = SidecarRun<DropsAByte>;

        fn info() -> PluginInfo {
            let mut info = plugin_info("1.0");
            info.name = "test-plugin".into();
            info
        }

        fn start_run(ctx: Context, _mode: Mode) -> Result<Self::Run, PluginError> {
            Ok(SidecarRun::new(ctx, DropsAByte))
        }
    }
}
