//! Tests of the phases: what each plans and applies, what verification
//! catches (with deliberately broken cutters and corrupted state), phase
//! ordering, and byte-for-byte determinism.

use super::*;
use crate::cut::{MarkdownCutter, NaiveCutter};
use crate::domain::SourceDocument;
use crate::report::{PlanOp, Status};
use crate::SourceVersion;

fn doc(id: i64, status: &str) -> SourceDocument {
    SourceDocument {
        id,
        kb_path: format!("kb/doc-{id}.md"),
        title: format!("Doc {id}"),
        status: status.to_owned(),
        updated_at: "2024-05-01T00:00:00Z".to_owned(),
    }
}

fn version(id: i64, document_id: i64, revision: i64, body: &str) -> SourceVersion {
    SourceVersion {
        id,
        document_id,
        revision,
        body: body.to_owned(),
        body_sha256: sha256_hex(body.as_bytes()),
        created_at: "2024-05-01T00:00:00Z".to_owned(),
    }
}

fn unit(id: i64, document_id: i64, version_id: i64, ordinal: i64, body: &str) -> InformationUnit {
    InformationUnit {
        id,
        document_id,
        version_id,
        ordinal,
        heading: format!("H{ordinal}"),
        anchor: format!("h{ordinal}"),
        body: body.to_owned(),
        body_sha256: sha256_hex(body.as_bytes()),
        lifecycle: LIFECYCLE_ACTIVE.to_owned(),
    }
}

/// A batch with one of each case:
/// 1: new document, first cut (pending, no units);
/// 2: cut at revision 1 (units 100, 101 of version 20), revision 2 pending;
/// 3: archived, with active units 300, 301;
/// 4: latest version already cut (unit 400), not pending.
fn mixed_batch() -> RecordBatch {
    RecordBatch {
        documents: vec![doc(1, "active"), doc(2, "active"), doc(3, "archived"), doc(4, "active")],
        versions: vec![
            version(10, 1, 1, "intro\n## Setup\nsteps\n## Usage\nrun\n"),
            version(21, 2, 2, "## Old\nnew text\n## Added\nmore\n"),
            version(30, 3, 1, "## Gone\nbye\n"),
            version(40, 4, 1, "## Done\nalready cut\n"),
        ],
        units: vec![
            unit(100, 2, 20, 0, "## Old\n"),
            unit(101, 2, 20, 1, "old text\n"),
            unit(300, 3, 30, 0, "## Gone\nbye\n"),
            unit(301, 3, 29, 0, "## Older\n"),
            unit(400, 4, 40, 0, "## Done\nalready cut\n"),
        ],
    }
}

fn run_all<C: Cutter>(run: &mut Run<C>, batch: &RecordBatch) -> Vec<PhaseResult> {
    PHASES
        .iter()
        .map(|phase| run.run_phase(phase, batch).expect("phases run in order on one batch"))
        .collect()
}

fn keys(plan: &[PlanOp]) -> Vec<&str> {
    plan.iter().map(|op| op.key.as_str()).collect()
}

fn codes(result: &PhaseResult) -> Vec<&str> {
    result.findings.iter().map(|f| f.code.as_str()).collect()
}

fn counts(result: &PhaseResult) -> Vec<(&str, u64)> {
    result.counts.iter().map(|(n, c)| (n.as_str(), *c)).collect()
}

#[test]
fn discover_counts_documents_versions_units_and_pending() {
    let mut run = Run::new(NaiveCutter);
    let result = run.run_phase("discover", &mixed_batch()).expect("discover");
    assert_eq!(result.status, Status::Ok);
    assert_eq!(
        counts(&result),
        [("documents", 4), ("versions", 4), ("active_units", 5), ("pending", 2), ("archived", 1)]
    );
    assert!(result.findings.is_empty(), "{:?}", result.findings);
    assert!(result.plan.is_empty());
}

#[test]
fn backup_plans_the_active_units_of_pending_documents_with_a_digest() {
    let mut run = Run::new(NaiveCutter);
    let batch = mixed_batch();
    run.run_phase("discover", &batch).expect("discover");
    let result = run.run_phase("backup", &batch).expect("backup");
    assert_eq!(result.status, Status::Ok);
    // Only document 2 is pending and has units; 3 is archived, 4 is not pending.
    assert_eq!(keys(&result.plan), ["100", "101"]);
    assert!(result.plan.iter().all(|op| op.action == Action::Backup && op.table == UNIT_TABLE));
    assert_eq!(
        result.plan[0].after_image,
        r###"{"id":100,"document_id":2,"version_id":20,"ordinal":0,"heading":"H0","anchor":"h0","body":"## Old\n","body_sha256":""###
            .to_owned()
            + &sha256_hex(b"## Old\n")
            + r#"","lifecycle":"active"}"#
    );
    assert_eq!(counts(&result), [("documents_backed_up", 1), ("units_backed_up", 2)]);
    let images: String = result.plan.iter().map(|op| op.after_image.as_str()).collect();
    assert_eq!(result.findings.len(), 1);
    let finding = &result.findings[0];
    assert_eq!(
        (finding.severity, finding.code.as_str(), finding.subject.as_str()),
        (Severity::Info, "backup-digest", "batch")
    );
    assert_eq!(finding.message, sha256_hex(images.as_bytes()));
}

#[test]
fn a_full_run_inserts_new_pieces_supersedes_old_units_and_retires_archived_ones() {
    let mut run = Run::new(NaiveCutter);
    let results = run_all(&mut run, &mixed_batch());
    assert!(results.iter().all(|r| r.status == Status::Ok), "{results:#?}");

    let cut = &results[2];
    assert_eq!(counts(cut), [("versions_cut", 2), ("units_cut", 5)]);
    assert!(cut.plan.is_empty());

    let record = &results[3];
    assert_eq!(keys(&record.plan), ["10:0", "10:1", "10:2", "21:0", "21:1"]);
    assert!(record.plan.iter().all(|op| op.action == Action::Insert && op.table == UNIT_TABLE));
    assert_eq!(
        record.plan[1].after_image,
        format!(
            r###"{{"document_id":1,"version_id":10,"ordinal":1,"heading":"Setup","anchor":"setup","body":"## Setup\nsteps\n","body_sha256":"{}","lifecycle":"active"}}"###,
            sha256_hex(b"## Setup\nsteps\n")
        )
    );
    assert_eq!(counts(record), [("units_inserted", 5)]);

    let verify = &results[4];
    assert_eq!(counts(verify), [("versions_verified", 2), ("units_verified", 5)]);
    assert!(verify.findings.is_empty(), "{:?}", verify.findings);

    let enact = &results[5];
    assert_eq!(keys(&enact.plan), ["100", "101", "300", "301"]);
    assert!(enact.plan.iter().all(|op| op.action == Action::Update));
    assert_eq!(counts(enact), [("units_superseded", 2), ("units_retired", 2)]);
    assert!(enact.plan[0].after_image.ends_with(r#""lifecycle":"superseded"}"#));
    assert!(enact.plan[2].after_image.ends_with(r#""lifecycle":"retired"}"#));

    let units = run.simulator().units();
    // Synthetic ids count down from -1 in insert order.
    let inserted: Vec<(i64, i64, i64)> =
        units.values().filter(|u| u.id < 0).map(|u| (u.id, u.version_id, u.ordinal)).collect();
    assert_eq!(inserted, [(-5, 21, 1), (-4, 21, 0), (-3, 10, 2), (-2, 10, 1), (-1, 10, 0)]);
    let lifecycle = |id: i64| units[&id].lifecycle.as_str();
    assert_eq!(
        [lifecycle(100), lifecycle(101), lifecycle(300), lifecycle(301), lifecycle(400)],
        ["superseded", "superseded", "retired", "retired", "active"]
    );
}

#[test]
fn a_document_whose_latest_version_has_units_is_untouched() {
    let batch = RecordBatch {
        documents: vec![doc(4, "active")],
        versions: vec![version(40, 4, 1, "## Done\n")],
        units: vec![unit(400, 4, 40, 0, "## Done\n")],
    };
    let mut run = Run::new(MarkdownCutter);
    let results = run_all(&mut run, &batch);
    assert_eq!(results[0].count("pending"), Some(0));
    assert!(results.iter().all(|r| r.plan.is_empty() && r.status == Status::Ok));
    assert_eq!(run.simulator().units().values().collect::<Vec<_>>(), [&batch.units[0]]);
}

#[test]
fn an_archived_document_is_not_cut_even_with_a_new_version() {
    let batch = RecordBatch {
        documents: vec![doc(3, "archived")],
        versions: vec![version(31, 3, 2, "## New\n")],
        units: vec![unit(300, 3, 30, 0, "## Gone\n")],
    };
    let mut run = Run::new(NaiveCutter);
    let results = run_all(&mut run, &batch);
    assert_eq!(results[0].count("pending"), Some(0));
    assert!(results[1].plan.is_empty() && results[3].plan.is_empty());
    assert_eq!(results[2].count("versions_cut"), Some(0));
    assert_eq!(keys(&results[5].plan), ["300"]);
    assert_eq!(results[5].count("units_retired"), Some(1));
}

#[test]
fn an_empty_pending_body_gives_no_units_and_verifies() {
    let batch = RecordBatch {
        documents: vec![doc(1, "active")],
        versions: vec![version(10, 1, 1, "")],
        units: vec![],
    };
    let results = run_all(&mut Run::new(MarkdownCutter), &batch);
    assert_eq!(results[3].count("units_inserted"), Some(0));
    assert_eq!(results[4].status, Status::Ok);
    assert_eq!(results[4].count("versions_verified"), Some(1));
}

/// Drops the last byte of the body: the failure write_verify exists for.
struct DropsLastByte;

impl Cutter for DropsLastByte {
    fn cut(&self, body: &str) -> Vec<Piece> {
        let mut pieces = NaiveCutter.cut(body);
        if let Some(last) = pieces.last_mut() {
            last.end -= 1;
        }
        pieces
    }
}

#[test]
fn write_verify_fails_when_the_cutter_drops_a_byte() {
    let mut run = Run::new(Box::new(DropsLastByte) as Box<dyn Cutter>);
    let results = run_all(&mut run, &mixed_batch());
    let verify = &results[4];
    assert_eq!(verify.status, Status::Failed);
    assert_eq!(codes(verify), ["units-do-not-concatenate", "units-do-not-concatenate"]);
    assert_eq!(verify.findings[0].subject, "kb/doc-1.md");
    assert_eq!(
        verify.findings[0].message,
        "the units of version 10 cover 33 of the version's 34 bytes"
    );
}

/// Gives every piece the same anchor.
struct OneAnchor;

impl Cutter for OneAnchor {
    fn cut(&self, body: &str) -> Vec<Piece> {
        let mut pieces = NaiveCutter.cut(body);
        for piece in &mut pieces {
            piece.anchor = "same".to_owned();
        }
        pieces
    }
}

#[test]
fn write_verify_fails_on_duplicate_anchors_once_per_anchor() {
    let results = run_all(&mut Run::new(OneAnchor), &mixed_batch());
    assert_eq!(results[4].status, Status::Failed);
    assert_eq!(codes(&results[4]), ["duplicate-anchor", "duplicate-anchor"]);
}

/// Claims a range past the end of the body.
struct OutOfBounds;

impl Cutter for OutOfBounds {
    fn cut(&self, body: &str) -> Vec<Piece> {
        vec![Piece {
            heading: String::new(),
            anchor: "x".to_owned(),
            start: 0,
            end: body.len() + 1,
        }]
    }
}

#[test]
fn leg_b_record_reports_a_piece_outside_the_body_instead_of_panicking() {
    let batch = RecordBatch {
        documents: vec![doc(1, "active")],
        versions: vec![version(10, 1, 1, "é")],
        units: vec![],
    };
    let results = run_all(&mut Run::new(OutOfBounds), &batch);
    assert_eq!(results[3].status, Status::Failed);
    assert_eq!(codes(&results[3]), ["piece-out-of-bounds"]);
    assert!(results[3].plan.is_empty());
    assert_eq!(codes(&results[4]), ["units-do-not-concatenate"]);
}

fn run_to_write_verify(run: &mut Run<NaiveCutter>, batch: &RecordBatch) {
    for phase in &PHASES[..4] {
        run.run_phase(phase, batch).expect("phases run in order");
    }
}

#[test]
fn write_verify_catches_a_unit_whose_digest_does_not_match_its_body() {
    let batch = mixed_batch();
    let mut run = Run::new(NaiveCutter);
    run_to_write_verify(&mut run, &batch);
    let unit = run.sim.units.get_mut(&-2).expect("the second inserted unit");
    unit.body_sha256 = sha256_hex(b"something else");
    let result = run.run_phase("write_verify", &batch).expect("write_verify");
    assert_eq!(result.status, Status::Failed);
    assert_eq!(codes(&result), ["unit-digest-mismatch"]);
    assert_eq!(result.findings[0].subject, "kb/doc-1.md");
}

#[test]
fn write_verify_catches_a_gap_in_the_ordinals() {
    let batch = mixed_batch();
    let mut run = Run::new(NaiveCutter);
    run_to_write_verify(&mut run, &batch);
    run.sim.units.get_mut(&-3).expect("the third inserted unit").ordinal = 5;
    let result = run.run_phase("write_verify", &batch).expect("write_verify");
    assert_eq!(codes(&result), ["ordinals-not-contiguous"]);
    assert_eq!(
        result.findings[0].message,
        "version 10 has 3 units but unit -3 has ordinal 5 where 2 was expected"
    );
}

#[test]
fn write_verify_catches_units_out_of_order() {
    let batch = mixed_batch();
    let mut run = Run::new(NaiveCutter);
    run_to_write_verify(&mut run, &batch);
    // Swap the bodies (and digests) of the first two units of version 10.
    let first = run.sim.units[&-1].clone();
    let second = run.sim.units[&-2].clone();
    let swap = |unit: &mut InformationUnit, from: &InformationUnit| {
        unit.body.clone_from(&from.body);
        unit.body_sha256.clone_from(&from.body_sha256);
    };
    swap(run.sim.units.get_mut(&-1).expect("unit -1"), &second);
    swap(run.sim.units.get_mut(&-2).expect("unit -2"), &first);
    let result = run.run_phase("write_verify", &batch).expect("write_verify");
    assert_eq!(codes(&result), ["units-do-not-concatenate"]);
    assert_eq!(
        result.findings[0].message,
        "the units of version 10 diverge from the version's 34-byte body at unit -1 (ordinal 0), \
         byte 0"
    );
}

#[test]
fn identical_batches_give_byte_identical_results() {
    let batch = mixed_batch();
    let first = serde_json::to_string(&run_all(&mut Run::new(MarkdownCutter), &batch))
        .expect("results serialize");
    let second = serde_json::to_string(&run_all(&mut Run::new(MarkdownCutter), &batch))
        .expect("results serialize");
    assert_eq!(first, second);

    // Row order in the batch does not reach the plan either.
    let mut shuffled = batch.clone();
    shuffled.documents.reverse();
    shuffled.versions.reverse();
    shuffled.units.rotate_left(2);
    let plans = |results: Vec<PhaseResult>| -> Vec<Vec<PlanOp>> {
        results.into_iter().map(|r| r.plan).collect()
    };
    assert_eq!(
        plans(run_all(&mut Run::new(MarkdownCutter), &batch)),
        plans(run_all(&mut Run::new(MarkdownCutter), &shuffled))
    );
}

#[test]
fn both_cutters_plan_the_same_writes_for_plain_documents() {
    let batch = mixed_batch();
    assert_eq!(
        run_all(&mut Run::new(NaiveCutter), &batch),
        run_all(&mut Run::new(MarkdownCutter), &batch)
    );
}

#[test]
fn phases_are_refused_when_unknown_out_of_order_or_on_another_batch() {
    let batch = mixed_batch();
    let mut run = Run::new(NaiveCutter);
    assert_eq!(
        run.run_phase("cut", &batch),
        Err("unknown phase `cut`; the phases are discover, backup, cut_leg_a, leg_b_record, \
             write_verify, lifecycle_enact"
            .to_owned())
    );
    assert_eq!(
        run.run_phase("backup", &batch),
        Err("phase `backup` needs `discover` to load the batch first".to_owned())
    );
    run.run_phase("discover", &batch).expect("discover");
    assert_eq!(
        run.run_phase("cut_leg_a", &batch),
        Err("phase `cut_leg_a` must follow `backup`, but the last phase run on this batch was \
             `discover`"
            .to_owned())
    );
    let mut other = batch.clone();
    other.units.pop();
    assert_eq!(
        run.run_phase("backup", &other),
        Err("the batch given to `backup` is not the one `discover` loaded".to_owned())
    );
    run.run_phase("backup", &batch).expect("backup follows discover");
    assert_eq!(
        run.run_phase("backup", &batch).map(|r| r.status),
        Err("phase `backup` must follow `discover`, but the last phase run on this batch was \
             `backup`"
            .to_owned())
    );
}

#[test]
fn discover_starts_a_fresh_batch_with_fresh_synthetic_ids() {
    let batch = mixed_batch();
    let mut run = Run::new(NaiveCutter);
    run_all(&mut run, &batch);
    let next = RecordBatch {
        documents: vec![doc(9, "active")],
        versions: vec![version(90, 9, 1, "## Only\n")],
        units: vec![],
    };
    let results = run_all(&mut run, &next);
    assert!(results.iter().all(|r| r.status == Status::Ok));
    let ids: Vec<i64> = run.simulator().units().keys().copied().collect();
    assert_eq!(ids, [-1]);
    assert_eq!(run.simulator().documents().len(), 1);
}

#[test]
fn discover_warns_about_stale_orphan_and_unknown_status_rows() {
    let batch = RecordBatch {
        documents: vec![doc(1, "active"), doc(2, "draft")],
        versions: vec![
            version(11, 1, 2, "## New\n"),
            version(10, 1, 1, "## Old\n"),
            version(20, 2, 1, "## Draft\n"),
            version(70, 7, 1, "## Orphan\n"),
        ],
        units: vec![],
    };
    let mut run = Run::new(NaiveCutter);
    let results = run_all(&mut run, &batch);
    assert_eq!(codes(&results[0]), ["stale-version", "orphan-version", "unknown-document-status"]);
    assert_eq!(results[0].status, Status::Ok);
    assert_eq!(results[0].count("versions"), Some(3));
    assert_eq!(results[0].count("pending"), Some(1));
    assert_eq!(keys(&results[3].plan), ["11:0"]);
}
