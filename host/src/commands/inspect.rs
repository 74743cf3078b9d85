//! `sidecar inspect DIR`: verify, load in a worker, and report what the
//! plugin declares, its digests, its ABI version, its kill-switch and
//! whether it refuses a live run.
//!
//! Exit 0 when the plugin loads and is safe to evaluate; 1 when it does not
//! verify or load; 3 when it is loaded but the host's policy refuses it (its
//! kill-switch is on, or it accepts a live run).

use anyhow::Context as _;
use serde::Serialize;

use crate::cli::InspectArgs;
use crate::exit::ExitStatus;
use crate::integrity::lock::LockFile;
use crate::integrity::manifest::Sha256Digest;
use crate::load::{self, LoadedPlugin};
use crate::plugin::PluginInfo;
use crate::policy::kill_switch::{refusal_probe, LiveRefusal, Refusal};
use crate::worker::{Limits, Sandbox};

/// The `--json` document.
#[derive(Debug, Serialize)]
pub struct InspectReport {
    /// Bumped on incompatible changes.
    pub schema_version: u32,
    /// The directory as given.
    pub dir: String,
    /// What the plugin declares.
    #[serde(flatten)]
    pub info: PluginInfo,
    /// The plugin's kill-switch, as read after loading.
    pub execution_enabled: bool,
    /// The refusal probe: a live run requested in an empty context.
    pub live_refusal: LiveRefusal,
    /// The interface version the plugin was built against.
    pub abi_version: String,
    /// The interface version of this host.
    pub host_abi_version: String,
    /// The library file inside the directory.
    pub library: String,
    /// From the manifest.
    pub artifact_sha256: Sha256Digest,
    /// The sha256 of `DEPLOY-MANIFEST.txt`.
    pub manifest_sha256: Option<Sha256Digest>,
    /// Whether the lock file's pin matched; `null` without a lock file.
    pub pinned: Option<bool>,
    /// How the plugin's worker is sandboxed.
    pub sandbox: Sandbox,
    /// Why the host's policy refuses this plugin; empty when it does not.
    pub refusals: Vec<String>,
}

/// Runs `sidecar inspect`.
pub fn run(args: &InspectArgs) -> anyhow::Result<ExitStatus> {
    let limits = Limits { timeout: super::timeout(args.timeout)?, memory: args.worker.memory };
    let lock = LockFile::discover(args.lock.lock.as_deref())?;
    let dir = &args.dir;
    let LoadedPlugin { verified, manifest, abi_version, info, mut worker } =
        load::load(dir, lock.as_ref(), limits)
            .with_context(|| format!("cannot load plugin `{}`", dir.display()))?;
    let who = || format!("plugin `{} {}` ({})", info.name, info.version, dir.display());
    let execution_enabled = worker.execution_enabled().with_context(who)?;
    let live_refusal = refusal_probe(&mut worker).with_context(who)?;
    let sandbox = worker.sandbox().clone();
    worker.shutdown().with_context(who)?;

    let mut refusals = Vec::new();
    if execution_enabled {
        refusals.push(Refusal::ExecutionEnabled("").to_string());
    }
    if !live_refusal.refused {
        refusals.push(Refusal::LiveNotRefused(live_refusal.answer.clone()).to_string());
    }
    let report = InspectReport {
        schema_version: 1,
        dir: dir.display().to_string(),
        info,
        execution_enabled,
        live_refusal,
        abi_version,
        host_abi_version: sidecar_abi::ABI_VERSION.to_owned(),
        library: manifest.library.clone(),
        artifact_sha256: manifest.artifact_sha256,
        manifest_sha256: verified.manifest_sha256,
        pinned: verified.pinned,
        sandbox,
        refusals,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", human(&report));
    }
    for refusal in &report.refusals {
        eprintln!("refused: {refusal}");
    }
    Ok(if report.refusals.is_empty() { ExitStatus::Success } else { ExitStatus::Refused })
}

fn human(report: &InspectReport) -> String {
    let info = &report.info;
    let or_none = |s: &str| if s.is_empty() { "(none)".to_owned() } else { s.to_owned() };
    let phases: Vec<String> = info
        .phases
        .iter()
        .map(|p| {
            if p.dry_run_safe {
                p.name.clone()
            } else {
                format!("{} (side effects: {})", p.name, p.side_effects)
            }
        })
        .collect();
    let mut rows = vec![
        ("directory", report.dir.clone()),
        ("milestone", or_none(&info.milestone)),
        ("live_wiring", or_none(&info.live_wiring)),
        ("capabilities", or_none(&info.capabilities.join(", "))),
        ("phases", phases.join(", ")),
        ("execution_enabled", report.execution_enabled.to_string()),
        (
            "live refused",
            format!(
                "{} ({})",
                if report.live_refusal.refused { "yes" } else { "NO" },
                report.live_refusal.answer
            ),
        ),
        ("sandbox", report.sandbox.to_string()),
        ("abi", format!("sidecar-abi {} (host {})", report.abi_version, report.host_abi_version)),
        ("library", report.library.clone()),
        ("artifact_sha256", report.artifact_sha256.to_hex()),
    ];
    if let Some(digest) = report.manifest_sha256 {
        rows.push(("manifest_sha256", digest.to_hex()));
    }
    if let Some(pinned) = report.pinned {
        rows.push(("pinned", if pinned { "yes" } else { "NO" }.to_owned()));
    }
    for (key, value) in &info.attributes {
        rows.push((key.as_str(), value.clone()));
    }
    let mut out = format!("{} {}\n", info.name, info.version);
    for (key, value) in rows {
        out.push_str(&format!("  {key:<18} {value}\n"));
    }
    out
}
