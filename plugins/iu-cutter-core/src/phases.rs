//! The six phases of the IU cutter orchestrator, run against the simulator.
//!
//! A [`Run`] is one run of the orchestrator with one cutter. The host calls
//! [`Run::run_phase`] once per phase, in [`PHASES`] order, passing the same
//! batch each time; `discover` loads the batch into the simulator and every
//! later phase builds on what the earlier ones left (the pending versions,
//! the pieces cut, the units inserted). Phases are refused out of order
//! because a repeated or skipped phase would produce a plan no live run
//! could make (units inserted twice, lifecycles enacted on unverified
//! units).
//!
//! Every walk is over a `BTreeMap` or a list built in document-id order, and
//! nothing reads the clock or a random source, so identical batches give
//! byte-identical plans.

use crate::cut::{Cutter, Piece};
use crate::domain::{
    digest_matches, sha256_hex, InformationUnit, RecordBatch, LIFECYCLE_ACTIVE, LIFECYCLE_RETIRED,
    LIFECYCLE_SUPERSEDED, STATUS_ACTIVE, STATUS_ARCHIVED,
};
use crate::report::{Action, Builder, PhaseResult, Severity};
use crate::simulator::Simulator;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};

/// The orchestrator's phases, in the order they run.
pub const PHASES: [&str; 6] =
    ["discover", "backup", "cut_leg_a", "leg_b_record", "write_verify", "lifecycle_enact"];

/// The table every plan operation of this orchestrator writes.
const UNIT_TABLE: &str = "information_unit";

/// One run of the orchestrator with cutter `C`.
pub struct Run<C> {
    cutter: C,
    sim: Simulator,
    /// What the phases of the current batch have left so far; `None` until
    /// `discover` runs.
    batch: Option<BatchState>,
}

/// The state one batch's phases hand to each other.
struct BatchState {
    /// Identifies the batch `discover` loaded, so a later phase given
    /// another batch is refused instead of mixing the two.
    fingerprint: u64,
    /// The index in [`PHASES`] of the last phase run.
    last_phase: usize,
    /// The versions to cut, in document-id order.
    pending: Vec<Pending>,
    /// What `cut_leg_a` cut, in the order of `pending`.
    cuts: Vec<Cut>,
}

#[derive(Clone, Copy)]
struct Pending {
    document_id: i64,
    version_id: i64,
}

struct Cut {
    document_id: i64,
    version_id: i64,
    pieces: Vec<Piece>,
}

/// The after-image of an inserted unit: the row without the id the
/// database will assign. Borrowed so that writing it copies the body once,
/// into the JSON.
#[derive(Serialize)]
struct NewUnitImage<'a> {
    document_id: i64,
    version_id: i64,
    ordinal: i64,
    heading: &'a str,
    anchor: &'a str,
    body: &'a str,
    body_sha256: &'a str,
    lifecycle: &'a str,
}

impl<C: Cutter> Run<C> {
    /// A run that cuts with `cutter`.
    pub fn new(cutter: C) -> Self {
        Run { cutter, sim: Simulator::default(), batch: None }
    }

    /// The simulator, as the phases so far have left it.
    pub fn simulator(&self) -> &Simulator {
        &self.sim
    }

    /// Runs `phase` on `batch`.
    ///
    /// `discover` starts a batch (and may be called again to start the next
    /// one); every other phase must directly follow the one before it in
    /// [`PHASES`] on the same batch. Errors (as lowercase messages) for an
    /// unknown phase, a phase out of order, or a batch other than the one
    /// `discover` loaded. Problems in the data are not errors: they are
    /// findings, and an error finding makes the result
    /// [`Status::Failed`](crate::Status::Failed).
    pub fn run_phase(&mut self, phase: &str, batch: &RecordBatch) -> Result<PhaseResult, String> {
        if phase == PHASES[0] {
            return Ok(self.discover(batch.clone()));
        }
        if let Some(state) = &self.batch {
            if state.fingerprint != fingerprint(batch) {
                return Err(format!(
                    "the batch given to `{phase}` is not the one `discover` loaded"
                ));
            }
        }
        self.run_next(phase)
    }

    /// Runs `discover` on a batch the caller hands over, so its rows move
    /// into the simulator instead of being copied.
    pub fn discover_owned(&mut self, batch: RecordBatch) -> PhaseResult {
        self.discover(batch)
    }

    /// Runs `phase`, which must directly follow the last phase run, on the
    /// batch `discover` loaded.
    pub fn run_next(&mut self, phase: &str) -> Result<PhaseResult, String> {
        let index = PHASES.iter().position(|p| *p == phase).ok_or_else(|| {
            format!("unknown phase `{phase}`; the phases are {}", PHASES.join(", "))
        })?;
        if index == 0 {
            return Err("`discover` needs a batch: call `run_phase` or `discover_owned`".into());
        }
        let state = self
            .batch
            .as_ref()
            .ok_or_else(|| format!("phase `{phase}` needs `discover` to load the batch first"))?;
        if state.last_phase + 1 != index {
            return Err(format!(
                "phase `{phase}` must follow `{}`, but the last phase run on this batch was `{}`",
                PHASES[index - 1],
                PHASES[state.last_phase]
            ));
        }
        let result = match index {
            1 => self.backup(),
            2 => self.cut_leg_a(),
            3 => self.leg_b_record(),
            4 => self.write_verify(),
            _ => self.lifecycle_enact(),
        };
        if let Some(state) = self.batch.as_mut() {
            state.last_phase = index;
        }
        Ok(result)
    }

    fn state(&self) -> &BatchState {
        self.batch.as_ref().expect("run_phase checks that discover ran before any other phase")
    }

    fn state_mut(&mut self) -> &mut BatchState {
        self.batch.as_mut().expect("run_phase checks that discover ran before any other phase")
    }

    fn kb_path(&self, document_id: i64) -> &str {
        self.sim.documents.get(&document_id).map_or("", |d| d.kb_path.as_str())
    }

    /// Loads the batch and decides which versions are pending.
    fn discover(&mut self, batch: RecordBatch) -> PhaseResult {
        let mut out = Builder::default();
        let fingerprint = fingerprint(&batch);
        let dropped = self.sim.load(batch);
        for version in &dropped {
            out.finding(
                Severity::Warning,
                "stale-version",
                self.kb_path(version.document_id),
                format!(
                    "version {} (revision {}) is not its document's latest in the batch; it is ignored",
                    version.id, version.revision
                ),
            );
        }

        let versions_with_units: HashSet<i64> =
            self.sim.units.values().map(|u| u.version_id).collect();
        let mut pending = Vec::new();
        for version in self.sim.versions.values() {
            match self.sim.documents.get(&version.document_id) {
                None => out.finding(
                    Severity::Warning,
                    "orphan-version",
                    &format!("version:{}", version.id),
                    format!(
                        "version {} belongs to document {}, which is not in the batch; it is not cut",
                        version.id, version.document_id
                    ),
                ),
                Some(doc) if doc.status == STATUS_ACTIVE => {
                    if !versions_with_units.contains(&version.id) {
                        pending.push(Pending {
                            document_id: version.document_id,
                            version_id: version.id,
                        });
                    }
                }
                Some(_) => {}
            }
        }
        // Versions are keyed by version id; the phases work in document order.
        pending.sort_unstable_by_key(|p| p.document_id);

        let mut archived = 0;
        for doc in self.sim.documents.values() {
            match doc.status.as_str() {
                STATUS_ACTIVE => {}
                STATUS_ARCHIVED => archived += 1,
                other => out.finding(
                    Severity::Warning,
                    "unknown-document-status",
                    &doc.kb_path,
                    format!(
                        "document {} has status `{other}`; it is neither cut nor retired",
                        doc.id
                    ),
                ),
            }
        }
        let active_units =
            self.sim.units.values().filter(|u| u.lifecycle == LIFECYCLE_ACTIVE).count();

        out.count("documents", self.sim.documents.len());
        out.count("versions", self.sim.versions.len());
        out.count("active_units", active_units);
        out.count("pending", pending.len());
        out.count("archived", archived);
        self.batch = Some(BatchState { fingerprint, last_phase: 0, pending, cuts: Vec::new() });
        out.finish()
    }

    /// Plans a backup of every active unit of every pending document.
    fn backup(&self) -> PhaseResult {
        let mut out = Builder::default();
        let pending: HashSet<i64> = self.state().pending.iter().map(|p| p.document_id).collect();
        let mut by_document: BTreeMap<i64, Vec<&InformationUnit>> = BTreeMap::new();
        for unit in self.sim.units.values() {
            if unit.lifecycle == LIFECYCLE_ACTIVE && pending.contains(&unit.document_id) {
                by_document.entry(unit.document_id).or_default().push(unit);
            }
        }
        let mut digest = Sha256::new();
        let mut units = 0;
        for unit in by_document.values().flatten() {
            let image = to_json(unit, unit.body.len());
            digest.update(image.as_bytes());
            out.op(Action::Backup, UNIT_TABLE, unit.id.to_string(), image);
            units += 1;
        }
        out.count("documents_backed_up", by_document.len());
        out.count("units_backed_up", units);
        out.finding(Severity::Info, "backup-digest", "batch", hex::encode(digest.finalize()));
        out.finish()
    }

    /// Cuts every pending version and keeps the pieces for `leg_b_record`.
    fn cut_leg_a(&mut self) -> PhaseResult {
        let mut out = Builder::default();
        let cuts: Vec<Cut> = self
            .state()
            .pending
            .iter()
            .map(|p| Cut {
                document_id: p.document_id,
                version_id: p.version_id,
                pieces: self.cutter.cut(&self.sim.versions[&p.version_id].body),
            })
            .collect();
        out.count("versions_cut", cuts.len());
        out.count("units_cut", cuts.iter().map(|c| c.pieces.len()).sum());
        self.state_mut().cuts = cuts;
        out.finish()
    }

    /// Plans (and applies to the simulator) one unit insert per piece.
    fn leg_b_record(&mut self) -> PhaseResult {
        let mut out = Builder::default();
        let mut new_units = Vec::new();
        for cut in &self.state().cuts {
            let version = &self.sim.versions[&cut.version_id];
            for (ordinal, piece) in cut.pieces.iter().enumerate() {
                // The cutter is not trusted: a range that does not slice the
                // body is reported instead of panicking, and write_verify
                // then sees the hole it leaves.
                let Some(body) = version.body.get(piece.start..piece.end) else {
                    out.finding(
                        Severity::Error,
                        "piece-out-of-bounds",
                        self.kb_path(cut.document_id),
                        format!(
                            "piece {ordinal} of version {} spans bytes {}..{}, which do not slice \
                             its {}-byte body",
                            cut.version_id,
                            piece.start,
                            piece.end,
                            version.body.len()
                        ),
                    );
                    continue;
                };
                let ordinal = ordinal as i64;
                let body_sha256 = sha256_hex(body.as_bytes());
                let image = to_json(
                    &NewUnitImage {
                        document_id: cut.document_id,
                        version_id: cut.version_id,
                        ordinal,
                        heading: &piece.heading,
                        anchor: &piece.anchor,
                        body,
                        body_sha256: &body_sha256,
                        lifecycle: LIFECYCLE_ACTIVE,
                    },
                    body.len(),
                );
                out.op(Action::Insert, UNIT_TABLE, format!("{}:{ordinal}", cut.version_id), image);
                new_units.push(InformationUnit {
                    id: 0,
                    document_id: cut.document_id,
                    version_id: cut.version_id,
                    ordinal,
                    heading: piece.heading.clone(),
                    anchor: piece.anchor.clone(),
                    body: body.to_owned(),
                    body_sha256,
                    lifecycle: LIFECYCLE_ACTIVE.to_owned(),
                });
            }
        }
        out.count("units_inserted", new_units.len());
        for unit in new_units {
            self.sim.insert_unit(unit);
        }
        out.finish()
    }

    /// Reads the units back and checks them against the versions they were
    /// cut from.
    fn write_verify(&self) -> PhaseResult {
        let mut out = Builder::default();
        let cut_versions: HashSet<i64> = self.state().cuts.iter().map(|c| c.version_id).collect();
        let mut by_version: HashMap<i64, Vec<&InformationUnit>> = HashMap::new();
        for unit in self.sim.units.values() {
            if unit.lifecycle == LIFECYCLE_ACTIVE && cut_versions.contains(&unit.version_id) {
                by_version.entry(unit.version_id).or_default().push(unit);
            }
        }
        let mut units_verified = 0;
        // Walk in cut order (document order), not in hash order, so the
        // findings come out the same on every run.
        for cut in &self.state().cuts {
            let subject = self.kb_path(cut.document_id);
            let version = &self.sim.versions[&cut.version_id];
            let mut units = by_version.remove(&cut.version_id).unwrap_or_default();
            units.sort_unstable_by_key(|u| (u.ordinal, u.id));
            units_verified += units.len();

            if let Some((expected, unit)) =
                units.iter().enumerate().find(|(i, u)| u.ordinal != *i as i64)
            {
                out.finding(
                    Severity::Error,
                    "ordinals-not-contiguous",
                    subject,
                    format!(
                        "version {} has {} units but unit {} has ordinal {} where {expected} was \
                         expected",
                        cut.version_id,
                        units.len(),
                        unit.id,
                        unit.ordinal
                    ),
                );
            }

            for unit in &units {
                if !digest_matches(unit.body.as_bytes(), &unit.body_sha256) {
                    out.finding(
                        Severity::Error,
                        "unit-digest-mismatch",
                        subject,
                        format!(
                            "unit {} (ordinal {}) records body_sha256 {} but its body hashes to {}",
                            unit.id,
                            unit.ordinal,
                            unit.body_sha256,
                            sha256_hex(unit.body.as_bytes())
                        ),
                    );
                }
            }

            if let Some(message) = concatenation_gap(&version.body, &units) {
                out.finding(
                    Severity::Error,
                    "units-do-not-concatenate",
                    subject,
                    format!("the units of version {} {message}", cut.version_id),
                );
            }

            let mut anchors = HashSet::with_capacity(units.len());
            let mut reported = HashSet::new();
            for unit in &units {
                if !anchors.insert(unit.anchor.as_str()) && reported.insert(unit.anchor.as_str()) {
                    out.finding(
                        Severity::Error,
                        "duplicate-anchor",
                        subject,
                        format!(
                            "anchor `{}` is used by more than one unit of version {}",
                            unit.anchor, cut.version_id
                        ),
                    );
                }
            }
        }
        out.count("versions_verified", self.state().cuts.len());
        out.count("units_verified", units_verified);
        out.finish()
    }

    /// Supersedes the older units of re-cut documents and retires the units
    /// of archived documents.
    fn lifecycle_enact(&mut self) -> PhaseResult {
        let mut out = Builder::default();
        let recut: HashMap<i64, i64> =
            self.state().cuts.iter().map(|c| (c.document_id, c.version_id)).collect();
        let archived: HashSet<i64> = self
            .sim
            .documents
            .values()
            .filter(|d| d.status == STATUS_ARCHIVED)
            .map(|d| d.id)
            .collect();
        let (mut superseded, mut retired) = (0, 0);
        for unit in self.sim.units.values_mut() {
            if unit.lifecycle != LIFECYCLE_ACTIVE {
                continue;
            }
            let lifecycle = if archived.contains(&unit.document_id) {
                retired += 1;
                LIFECYCLE_RETIRED
            } else if recut.get(&unit.document_id).is_some_and(|v| *v != unit.version_id) {
                superseded += 1;
                LIFECYCLE_SUPERSEDED
            } else {
                continue;
            };
            lifecycle.clone_into(&mut unit.lifecycle);
            out.op(
                Action::Update,
                UNIT_TABLE,
                unit.id.to_string(),
                to_json(&*unit, unit.body.len()),
            );
        }
        out.count("units_superseded", superseded);
        out.count("units_retired", retired);
        out.finish()
    }
}

/// Where `units`, in order, stop reproducing `body`, as the end of a
/// sentence; `None` when they concatenate to exactly `body`.
fn concatenation_gap(body: &str, units: &[&InformationUnit]) -> Option<String> {
    let body = body.as_bytes();
    let mut at = 0;
    for unit in units {
        let piece = unit.body.as_bytes();
        if body.get(at..at + piece.len()) != Some(piece) {
            return Some(format!(
                "diverge from the version's {}-byte body at unit {} (ordinal {}), byte {at}",
                body.len(),
                unit.id,
                unit.ordinal
            ));
        }
        at += piece.len();
    }
    (at != body.len()).then(|| format!("cover {at} of the version's {} bytes", body.len()))
}

/// A compact JSON object for an after-image whose body is `body_len`
/// bytes long.
fn to_json<T: Serialize>(value: &T, body_len: usize) -> String {
    // Sized up front: growing from serde_json's default by doubling copies a
    // large body several times over.
    let mut out = Vec::with_capacity(body_len + body_len / 8 + 256);
    // The images are structs of strings and integers: serde_json cannot
    // fail on them (no maps with non-string keys, no non-finite floats).
    serde_json::to_writer(&mut out, value)
        .expect("an after-image of strings and integers serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// A cheap identity of a batch: its shape, ids, revisions and body lengths
/// folded with FNV-1a. It is not a security check, only a guard against a
/// host handing later phases a different batch than `discover` loaded.
fn fingerprint(batch: &RecordBatch) -> u64 {
    fingerprint_of(
        batch.documents.iter().map(|d| d.id),
        batch.versions.iter().map(|v| (v.id, v.revision, v.body.len())),
        batch.units.iter().map(|u| u.id),
    )
}

/// [`fingerprint`] from the parts it covers: document ids, then (id,
/// revision, body length) of each version, then unit ids; each list
/// preceded by its length. FNV-1a over little-endian `u64`s.
pub(crate) fn fingerprint_of(
    documents: impl ExactSizeIterator<Item = i64>,
    versions: impl ExactSizeIterator<Item = (i64, i64, usize)>,
    units: impl ExactSizeIterator<Item = i64>,
) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |value: u64| {
        for byte in value.to_le_bytes() {
            hash = (hash ^ u64::from(byte)).wrapping_mul(PRIME);
        }
    };
    mix(documents.len() as u64);
    documents.for_each(|id| mix(id as u64));
    mix(versions.len() as u64);
    for (id, revision, body_len) in versions {
        mix(id as u64);
        mix(revision as u64);
        mix(body_len as u64);
    }
    mix(units.len() as u64);
    units.for_each(|id| mix(id as u64));
    hash
}

#[cfg(test)]
mod tests;
