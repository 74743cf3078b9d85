//! The wire types: everything a plugin and the host exchange.
//!
//! Rules that keep these types evolvable (the full text is in `abi/README.md`):
//! - the host checks every type reachable from [`PluginModRef`] when it loads a
//!   plugin, and `abi_stable` refuses a library whose layout has *fewer* fields
//!   or variants than the host's, so a layout never grows within a generation;
//! - what must grow (error kinds, side-effect classes, phase statuses, finding
//!   severities, plan actions) is a numeric code in a `#[repr(transparent)]`
//!   newtype, never a Rust enum: a code the reader does not know is still
//!   representable and is rendered as "unknown";
//! - free-form growth goes into `attributes` key/value lists.

// `#[sabi_trait]` expands to impls inside a const block; the lint fires on
// that generated code, not on anything written here.
#![allow(non_local_definitions)]

use std::fmt;

use abi_stable::{
    declare_root_module_statics,
    library::RootModule,
    package_version_strings, sabi_trait,
    sabi_types::VersionStrings,
    std_types::{RBox, ROption, RResult, RSlice, RStr, RString, RVec, Tuple2},
    StableAbi,
};

/// Whether a call may touch the outside world.
///
/// The host only ever dispatches [`Mode::DryRun`]; it sends [`Mode::Live`]
/// only in the refusal probe, to prove that the plugin refuses it.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Compute the plan against the in-memory simulator; mutate nothing.
    DryRun = 0,
    /// Apply the plan to production. Refused unless the plugin's kill-switch
    /// is on, and the host never turns it on.
    Live = 1,
    /// Only present in the deliberately incompatible test build.
    #[cfg(feature = "__incompatible-layout-for-tests")]
    #[doc(hidden)]
    Replay = 2,
}

impl Mode {
    /// The lowercase name used in reports: `dry-run` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::DryRun => "dry-run",
            Mode::Live => "live",
            #[cfg(feature = "__incompatible-layout-for-tests")]
            Mode::Replay => "replay",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares a stable numeric code type: a transparent `u32` with named
/// constants and a name lookup, so new codes never change the layout.
macro_rules! stable_codes {
    (
        $(#[$meta:meta])*
        pub struct $name:ident;
        $( $(#[$cmeta:meta])* $konst:ident = $value:literal => $text:literal, )+
    ) => {
        $(#[$meta])*
        #[repr(transparent)]
        #[derive(StableAbi, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub u32);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($value); )+

            /// The code's stable name, or `None` for a code this build does
            /// not know (a newer peer may send one).
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $value => Some($text), )+
                    _ => None,
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(name) => f.write_str(name),
                    None => write!(f, "unknown {} {}", stringify!($name), self.0),
                }
            }
        }
    };
}

stable_codes! {
    /// Why a plugin call failed. A stable enum encoded as a code: kinds are
    /// only ever added, and a host that meets a kind it does not know still
    /// reports the code and the message.
    pub struct ErrorKind;
    /// The phase or the plugin failed; the message says why.
    FAILED = 1 => "Failed",
    /// A `Live` call was refused because execution is not enabled.
    PRODUCTION_EXECUTION_NOT_AUTHORIZED = 2 => "ProductionExecutionNotAuthorized",
    /// The phase name is not one the plugin declares.
    UNKNOWN_PHASE = 3 => "UnknownPhase",
    /// Plugin code panicked; the SDK caught it at the boundary.
    PANICKED = 4 => "Panicked",
    /// The host refused a query before it reached the database: the
    /// statement gate, or a run whose source is not a database.
    QUERY_REFUSED = 5 => "QueryRefused",
    /// The database answered a query with an error.
    QUERY_FAILED = 6 => "QueryFailed",
}

stable_codes! {
    /// What a phase would do to the outside world, in the spirit of
    /// Kubernetes' `sideEffects`: the host refuses to dry-run a phase that is
    /// not declared [`SideEffects::NONE`] or [`SideEffects::NONE_ON_DRY_RUN`].
    pub struct SideEffects;
    /// The phase never touches anything outside the plugin's memory.
    NONE = 0 => "None",
    /// The phase mutates only in `Live` mode; a dry run is side-effect free.
    NONE_ON_DRY_RUN = 1 => "NoneOnDryRun",
    /// The phase has side effects even in a dry run.
    SOME = 2 => "Some",
    /// The plugin does not know.
    UNKNOWN = 3 => "Unknown",
}

impl SideEffects {
    /// Whether a dry run of a phase with these side effects is safe.
    pub fn dry_run_safe(self) -> bool {
        self == Self::NONE || self == Self::NONE_ON_DRY_RUN
    }
}

stable_codes! {
    /// How a phase ended.
    pub struct PhaseStatus;
    /// The phase completed and its plan is complete.
    OK = 0 => "ok",
    /// The phase ran but found a violation; see the findings.
    FAILED = 1 => "failed",
    /// The phase did nothing because this plugin version does not implement
    /// it yet; the outcome's note says so. Never used to hide a failure.
    NOT_IMPLEMENTED = 2 => "not_implemented",
}

stable_codes! {
    /// How serious a finding is.
    pub struct Severity;
    /// Worth reading; does not fail the phase.
    INFO = 0 => "info",
    /// Suspicious; does not fail the phase.
    WARNING = 1 => "warning",
    /// A violated invariant; the phase fails.
    ERROR = 2 => "error",
}

stable_codes! {
    /// What a planned operation would do.
    pub struct PlanAction;
    /// Insert a new row.
    INSERT = 0 => "insert",
    /// Update an existing row.
    UPDATE = 1 => "update",
    /// Back up existing rows before they change.
    BACKUP = 2 => "backup",
    /// Delete a row.
    DELETE = 3 => "delete",
}

/// An error returned across the boundary: a stable kind and a message.
#[repr(C)]
#[derive(StableAbi, Clone, PartialEq, Eq)]
pub struct PluginError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// Human-readable detail, without a trailing period.
    pub message: RString,
}

impl PluginError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<RString>) -> Self {
        Self { kind, message: message.into() }
    }

    /// The phase or plugin failed for the reason given.
    pub fn failed(message: impl Into<RString>) -> Self {
        Self::new(ErrorKind::FAILED, message)
    }

    /// A `Live` request refused by the kill-switch.
    pub fn production_execution_not_authorized() -> Self {
        Self::new(
            ErrorKind::PRODUCTION_EXECUTION_NOT_AUTHORIZED,
            "live execution is disabled (execution_enabled = false)",
        )
    }

    /// A phase name the plugin does not declare.
    pub fn unknown_phase(phase: &str) -> Self {
        Self::new(ErrorKind::UNKNOWN_PHASE, format!("unknown phase `{phase}`"))
    }

    /// A panic caught at the boundary.
    pub fn panicked(message: impl Into<RString>) -> Self {
        Self::new(ErrorKind::PANICKED, message)
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}({:?})", self.kind, self.message.as_str())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for PluginError {}

/// A phase a plugin implements, in the order the host must run them.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PhaseDecl {
    /// The phase name, e.g. `cut_leg_a`.
    pub name: RString,
    /// What the phase does to the outside world.
    pub side_effects: SideEffects,
}

impl PhaseDecl {
    /// A phase called `name` with the given side effects.
    pub fn new(name: &str, side_effects: SideEffects) -> Self {
        Self { name: name.into(), side_effects }
    }
}

/// What a plugin says about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The orchestrator's name, e.g. `iu-cutter`. Must match the manifest.
    pub name: RString,
    /// The orchestrator's version, e.g. `0.6-o8a`. Must match the manifest.
    pub version: RString,
    /// The release milestone, e.g. `O8A`; may be empty.
    pub milestone: RString,
    /// The live-wiring marker, e.g. `O8A-LIVE-WIRING-1`; empty when the
    /// version has no live execution path wired.
    pub live_wiring: RString,
    /// The phases, in the order they must run.
    pub phases: RVec<PhaseDecl>,
    /// Named capabilities, e.g. `LiveExecutionAdapter`.
    pub capabilities: RVec<RString>,
    /// Anything else worth reporting; the way this type grows without a
    /// layout change.
    pub attributes: RVec<Tuple2<RString, RString>>,
}

impl PluginInfo {
    /// A plugin called `name` at `version`, with nothing else declared yet.
    pub fn new(name: &str, version: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            milestone: RString::new(),
            live_wiring: RString::new(),
            phases: RVec::new(),
            capabilities: RVec::new(),
            attributes: RVec::new(),
        }
    }

    /// Sets the release milestone.
    pub fn with_milestone(mut self, milestone: &str) -> Self {
        self.milestone = milestone.into();
        self
    }

    /// Sets the live-wiring marker.
    pub fn with_live_wiring(mut self, marker: &str) -> Self {
        self.live_wiring = marker.into();
        self
    }

    /// Appends a phase; phases run in the order they are added.
    pub fn with_phase(mut self, phase: PhaseDecl) -> Self {
        self.phases.push(phase);
        self
    }

    /// Declares a named capability.
    pub fn with_capability(mut self, capability: &str) -> Self {
        self.capabilities.push(capability.into());
        self
    }

    /// Adds a free-form attribute.
    pub fn with_attribute(mut self, key: &str, value: &str) -> Self {
        self.attributes.push(Tuple2(key.into(), value.into()));
        self
    }

    /// The declaration of `phase`, if the plugin has it.
    pub fn phase(&self, phase: &str) -> Option<&PhaseDecl> {
        self.phases.iter().find(|p| p.name == phase)
    }
}

/// Something a phase noticed.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious it is; an [`Severity::ERROR`] fails the phase.
    pub severity: Severity,
    /// A stable identifier, e.g. `units-do-not-concatenate`.
    pub code: RString,
    /// What it is about, e.g. a document key.
    pub subject: RString,
    /// What is wrong, for a human.
    pub message: RString,
}

/// One operation a live run would perform.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PlanOp {
    /// What it would do.
    pub action: PlanAction,
    /// The table it would touch.
    pub table: RString,
    /// The key of the row it would touch.
    pub key: RString,
    /// The row after the operation, as a JSON object.
    pub after_image: RString,
}

/// The structured result of one phase.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct PhaseOutcome {
    /// How the phase ended.
    pub status: PhaseStatus,
    /// Named counters, e.g. `units_cut = 12`.
    pub counts: RVec<Tuple2<RString, u64>>,
    /// What the phase noticed.
    pub findings: RVec<Finding>,
    /// The operations a live run would perform, in order.
    pub plan: RVec<PlanOp>,
    /// A sentence for the report, e.g. why a phase is not implemented.
    pub note: RString,
}

impl PhaseOutcome {
    /// A successful outcome with nothing in it yet.
    pub fn ok() -> Self {
        Self {
            status: PhaseStatus::OK,
            counts: RVec::new(),
            findings: RVec::new(),
            plan: RVec::new(),
            note: RString::new(),
        }
    }

    /// An outcome saying this version does not implement the phase yet.
    pub fn not_implemented(note: &str) -> Self {
        Self { status: PhaseStatus::NOT_IMPLEMENTED, note: note.into(), ..Self::ok() }
    }

    /// Adds a named counter.
    pub fn with_count(mut self, name: &str, value: u64) -> Self {
        self.counts.push(Tuple2(name.into(), value));
        self
    }
}

/// A document of the knowledge base (table `source_document`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SourceDocument {
    /// Primary key.
    pub id: i64,
    /// Path in the knowledge base, e.g. `kb/dev/laws/intro.md`.
    pub kb_path: RString,
    /// Title.
    pub title: RString,
    /// `active` or `archived`.
    pub status: RString,
    /// RFC 3339 timestamp.
    pub updated_at: RString,
}

/// A revision of a document's Markdown body (table `source_version`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct SourceVersion {
    /// Primary key.
    pub id: i64,
    /// The document it belongs to.
    pub document_id: i64,
    /// Revision number, increasing per document.
    pub revision: i64,
    /// The Markdown body, byte for byte.
    pub body: RString,
    /// Lowercase hex sha256 of `body`.
    pub body_sha256: RString,
    /// RFC 3339 timestamp.
    pub created_at: RString,
}

/// A unit cut from a version (table `information_unit`).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct InformationUnit {
    /// Primary key.
    pub id: i64,
    /// The document.
    pub document_id: i64,
    /// The version it was cut from.
    pub version_id: i64,
    /// Position in the version, from 0.
    pub ordinal: i64,
    /// The heading that starts it; empty for a preamble.
    pub heading: RString,
    /// The anchor, unique per version.
    pub anchor: RString,
    /// The unit's bytes of the version body.
    pub body: RString,
    /// Lowercase hex sha256 of `body`.
    pub body_sha256: RString,
    /// `active`, `superseded` or `retired`.
    pub lifecycle: RString,
}

/// One batch of source records, as the host feeds them to every phase of a
/// run: some documents, the latest version of each, and their active units.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq, Default)]
pub struct RecordBatch {
    /// The documents of this batch.
    pub documents: RVec<SourceDocument>,
    /// The latest version of each document.
    pub versions: RVec<SourceVersion>,
    /// The active units of these documents, of any version.
    pub units: RVec<InformationUnit>,
}

/// How loud a log line is.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Very detailed.
    Trace = 0,
    /// Detailed.
    Debug = 1,
    /// Normal progress.
    Info = 2,
    /// Something is off.
    Warn = 3,
    /// Something failed.
    Error = 4,
}

/// A column of a query's result.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct QueryColumn {
    /// The column's name.
    pub name: RString,
    /// Its PostgreSQL type, e.g. `int8` or `text`.
    pub type_name: RString,
}

/// A query the host opened for a plugin: a cursor the plugin reads with
/// [`Host::query_next`] and closes with [`Host::query_close`].
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct QueryCursor {
    /// The host's handle on the cursor.
    pub id: u64,
    /// The result's columns, in order.
    pub columns: RVec<QueryColumn>,
}

/// One row of a query's result.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq, Eq)]
pub struct QueryRow {
    /// One value per column in PostgreSQL's text format; `RNone` is NULL.
    pub values: RVec<ROption<RString>>,
}

/// The services the host offers a plugin during a run: the plugin's only way
/// to reach the world. It holds no file path, database handle or credential.
#[sabi_trait]
pub trait Host: Send + Sync {
    /// Records a log line in the host's log, tagged with the plugin.
    fn log(&self, level: LogLevel, message: RStr<'_>);

    /// Opens a read-only query on the run's database snapshot. The host
    /// checks the statement (one read; see the README's statement gate)
    /// before the server sees it, runs it inside the run's read-only
    /// transaction and logs it in the run's query log. `params` are bound to
    /// `$1`, `$2`, … in PostgreSQL's text format. Errors: `QueryRefused`
    /// (the gate, or a source that is not a database), `QueryFailed` (the
    /// server's error, with its SQLSTATE).
    fn query_open(
        &self,
        sql: RStr<'_>,
        params: RSlice<'_, RStr<'_>>,
    ) -> RResult<QueryCursor, PluginError>;

    /// The next rows of an open query, at most `max_rows`; empty once the
    /// result is exhausted.
    fn query_next(&self, cursor: u64, max_rows: u32) -> RResult<RVec<QueryRow>, PluginError>;

    /// Closes a query; the host closes those still open when the phase
    /// ends.
    #[sabi(last_prefix_field)]
    fn query_close(&self, cursor: u64) -> RResult<(), PluginError>;
}

/// The host context a plugin receives when a run starts.
pub type HostContext = Host_TO<'static, RBox<()>>;

/// A run in progress inside the plugin.
#[sabi_trait]
pub trait PluginRun {
    /// Runs one named phase on one batch. The host runs every phase, in
    /// order, on each batch before it moves to the next batch.
    fn run_phase(
        &mut self,
        phase: RStr<'_>,
        mode: Mode,
        batch: &RecordBatch,
    ) -> RResult<PhaseOutcome, PluginError>;

    /// Ends the run; the host drops the run afterwards.
    #[sabi(last_prefix_field)]
    fn finish(&mut self) -> RResult<(), PluginError>;
}

/// A run owned by the host, implemented by the plugin.
pub type PluginRunBox = PluginRun_TO<'static, RBox<()>>;

/// The root module every plugin exports (see [`export_plugin!`](crate::export_plugin)).
///
/// Frozen for the generation: fields are never added, removed, renamed or
/// reordered (see `abi/README.md`).
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginModRef)))]
#[sabi(missing_field(panic))]
pub struct PluginMod {
    /// Describes the plugin. Called once after load.
    pub describe: extern "C" fn() -> RResult<PluginInfo, PluginError>,
    /// The plugin's kill-switch. The host reads it before and after a run.
    pub execution_enabled: extern "C" fn() -> RResult<bool, PluginError>,
    /// Starts a run with the host's context.
    #[sabi(last_prefix_field)]
    pub start_run: extern "C" fn(HostContext, Mode) -> RResult<PluginRunBox, PluginError>,
}

impl RootModule for PluginModRef {
    declare_root_module_statics! {PluginModRef}
    const BASE_NAME: &'static str = "sidecar_plugin";
    const NAME: &'static str = "sidecar plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// The version of this interface crate, which is the ABI version a plugin is
/// built against (`abi_stable` compares it when the plugin loads).
pub const ABI_VERSION: &str = env!("CARGO_PKG_VERSION");
