//! The operations two plans of one phase disagree on, grouped by document.
//!
//! Both sides of a comparison were fed the same batches, so their plan files
//! can be walked together batch by batch (every line starts with its batch
//! number) and memory stays bounded by one batch's operations. A batch whose
//! lines are byte-identical on both sides is skipped without parsing; in a
//! batch that differs, lines present on both sides cancel out, and only the
//! rest are parsed and matched by (table, action, key):
//! - a key on one side only is an operation only in A or only in B;
//! - a key on both sides with different after-images is `changed`, with the
//!   top-level fields that differ.
//!
//! A difference belongs to the document named by its after-image's
//! `document_id` (`null` when the after-image has none).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One operation the two plans disagree on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpDifference {
    /// `only_a`, `only_b` or `changed`.
    pub kind: DifferenceKind,
    /// The operation's action.
    pub action: String,
    /// The table.
    pub table: String,
    /// The row key.
    pub key: String,
    /// A's after-image, when A has the operation.
    pub a: Option<Value>,
    /// B's after-image, when B has the operation.
    pub b: Option<Value>,
    /// For `changed`: the after-image fields whose values differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// How an operation differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceKind {
    /// Only A's plan has it.
    OnlyA,
    /// Only B's plan has it.
    OnlyB,
    /// Both have it, with different after-images.
    Changed,
}

/// The differences of one document in one phase, a line of `diff.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DocumentOps {
    /// The phase.
    pub phase: String,
    /// The document, from the after-images.
    pub document_id: Option<i64>,
    /// The operations, by table, key and action.
    pub ops: Vec<OpDifference>,
}

/// Totals of one phase's plan comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlanTotals {
    /// Whether the two files are byte-identical.
    pub identical: bool,
    /// Operations only in A.
    pub only_a: u64,
    /// Operations only in B.
    pub only_b: u64,
    /// Operations in both with different after-images.
    pub changed: u64,
    /// Documents with at least one difference.
    pub documents: u64,
}

/// Compares two plan files of one phase, calling `each` with every
/// document's differences in batch order (documents in id order within a
/// batch).
pub fn compare(
    phase: &str,
    a: &Path,
    b: &Path,
    each: &mut dyn FnMut(DocumentOps) -> io::Result<()>,
) -> io::Result<PlanTotals> {
    let mut totals = PlanTotals { identical: true, ..PlanTotals::default() };
    let mut a = Batches::open(a)?;
    let mut b = Batches::open(b)?;
    loop {
        let next = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(x), Some(y)) => x.min(y),
            (Some(x), None) | (None, Some(x)) => x,
        };
        let lines_a = a.take_if(next)?;
        let lines_b = b.take_if(next)?;
        if lines_a == lines_b {
            continue;
        }
        totals.identical = false;
        for document in differences(phase, &lines_a, &lines_b)? {
            totals.documents += 1;
            for op in &document.ops {
                match op.kind {
                    DifferenceKind::OnlyA => totals.only_a += 1,
                    DifferenceKind::OnlyB => totals.only_b += 1,
                    DifferenceKind::Changed => totals.changed += 1,
                }
            }
            each(document)?;
        }
    }
    Ok(totals)
}

/// One plan line, parsed.
#[derive(Deserialize)]
struct Line {
    action: String,
    table: String,
    key: String,
    after: Value,
}

type OpKey = (String, String, String);

/// The differences between the lines of one batch, by document.
fn differences(phase: &str, a: &[String], b: &[String]) -> io::Result<Vec<DocumentOps>> {
    // Lines on both sides cancel out, counted, so duplicates pair up.
    let mut common: HashMap<&str, isize> = HashMap::with_capacity(a.len());
    for line in a {
        *common.entry(line).or_default() += 1;
    }
    let mut rest_b = Vec::new();
    for line in b {
        match common.get_mut(line.as_str()) {
            Some(count) if *count > 0 => *count -= 1,
            _ => rest_b.push(line),
        }
    }
    let mut rest_a = Vec::new();
    for line in a {
        if let Some(count) = common.get_mut(line.as_str()) {
            if *count > 0 {
                *count -= 1;
                rest_a.push(line);
            }
        }
    }
    let side = |lines: Vec<&String>| -> io::Result<BTreeMap<OpKey, Vec<Value>>> {
        let mut ops: BTreeMap<OpKey, Vec<Value>> = BTreeMap::new();
        for line in lines {
            let line: Line = serde_json::from_str(line)
                .map_err(|err| io::Error::new(io::ErrorKind::InvalidData, err))?;
            ops.entry((line.table, line.key, line.action)).or_default().push(line.after);
        }
        Ok(ops)
    };
    let (mut ops_a, mut ops_b) = (side(rest_a)?, side(rest_b)?);
    let mut keys: Vec<OpKey> = ops_a.keys().chain(ops_b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut documents: BTreeMap<Option<i64>, Vec<OpDifference>> = BTreeMap::new();
    for key in keys {
        let mut from_a = ops_a.remove(&key).unwrap_or_default().into_iter();
        let mut from_b = ops_b.remove(&key).unwrap_or_default().into_iter();
        loop {
            let (a, b) = (from_a.next(), from_b.next());
            let kind = match (&a, &b) {
                (None, None) => break,
                (Some(_), None) => DifferenceKind::OnlyA,
                (None, Some(_)) => DifferenceKind::OnlyB,
                (Some(_), Some(_)) => DifferenceKind::Changed,
            };
            let fields = match (&a, &b) {
                (Some(Value::Object(x)), Some(Value::Object(y))) => {
                    let mut names: Vec<String> = x
                        .keys()
                        .chain(y.keys())
                        .filter(|k| x.get(*k) != y.get(*k))
                        .cloned()
                        .collect();
                    names.sort();
                    names.dedup();
                    names
                }
                _ => Vec::new(),
            };
            // Two after-images can differ only in how they are written
            // (key order, spacing): the same values are no difference.
            if kind == DifferenceKind::Changed && a == b {
                continue;
            }
            let document = a.as_ref().or(b.as_ref()).and_then(|v| v.get("document_id"));
            let (table, key, action) = key.clone();
            documents.entry(document.and_then(Value::as_i64)).or_default().push(OpDifference {
                kind,
                action,
                table,
                key,
                a,
                b,
                fields,
            });
        }
    }
    Ok(documents
        .into_iter()
        .map(|(document_id, ops)| DocumentOps { phase: phase.to_owned(), document_id, ops })
        .collect())
}

/// A plan file read a batch at a time.
struct Batches {
    lines: io::Lines<BufReader<File>>,
    /// The first line of the next batch, read ahead, with its batch.
    pending: Option<(u64, String)>,
    path: String,
}

impl Batches {
    fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path).map_err(|err| annotate(path, err))?;
        let mut batches = Self {
            lines: BufReader::with_capacity(1 << 20, file).lines(),
            pending: None,
            path: path.display().to_string(),
        };
        batches.advance()?;
        Ok(batches)
    }

    fn peek(&self) -> Option<u64> {
        self.pending.as_ref().map(|(batch, _)| *batch)
    }

    /// The lines of batch `batch` if it is the next one, else none.
    fn take_if(&mut self, batch: u64) -> io::Result<Vec<String>> {
        let mut lines = Vec::new();
        while let Some((next, _)) = &self.pending {
            if *next != batch {
                break;
            }
            let (_, line) = self.pending.take().expect("just matched");
            lines.push(line);
            self.advance()?;
        }
        Ok(lines)
    }

    fn advance(&mut self) -> io::Result<()> {
        self.pending = match self.lines.next() {
            None => None,
            Some(line) => {
                let line = line.map_err(|err| io::Error::new(err.kind(), self.at(&err)))?;
                let batch = batch_of(&line).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, self.at(&"not a plan line"))
                })?;
                if self.peek().is_some_and(|previous| batch < previous) {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        self.at(&"batches out of order"),
                    ));
                }
                Some((batch, line))
            }
        };
        Ok(())
    }

    fn at(&self, what: &dyn std::fmt::Display) -> String {
        format!("{}: {what}", self.path)
    }
}

fn annotate(path: &Path, err: io::Error) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// The batch number of a plan line, which the host writes first:
/// `{"batch":N,…`.
fn batch_of(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("{\"batch\":")?;
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(batch: u64, action: &str, key: &str, after: &str) -> String {
        format!(
            "{{\"batch\":{batch},\"action\":\"{action}\",\"table\":\"information_unit\",\"key\":\"{key}\",\"after\":{after}}}\n"
        )
    }

    fn run(a: &str, b: &str) -> (PlanTotals, Vec<DocumentOps>) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), a).expect("a");
        std::fs::write(dir.path().join("b"), b).expect("b");
        let mut documents = Vec::new();
        let totals = compare("cut", &dir.path().join("a"), &dir.path().join("b"), &mut |d| {
            documents.push(d);
            Ok(())
        })
        .expect("compare");
        (totals, documents)
    }

    #[test]
    fn identical_plans_have_no_differences() {
        let plan =
            line(0, "insert", "1:0", r#"{"document_id":1}"#) + &line(1, "insert", "2:0", "{}");
        let (totals, documents) = run(&plan, &plan);
        assert!(totals.identical);
        assert_eq!((totals.only_a, totals.only_b, totals.changed, totals.documents), (0, 0, 0, 0));
        assert!(documents.is_empty());
    }

    #[test]
    fn differences_are_matched_by_key_and_grouped_by_document() {
        let a = line(0, "insert", "10:0", r#"{"document_id":1,"heading":"A","anchor":"a"}"#)
            + &line(0, "insert", "10:1", r#"{"document_id":1,"heading":"B","anchor":"b"}"#)
            + &line(0, "insert", "20:0", r#"{"document_id":2,"heading":"X"}"#)
            + &line(2, "update", "7", r#"{"document_id":3,"lifecycle":"superseded"}"#);
        // Document 1: unit 1 re-anchored, a unit 2 added; document 2 the
        // same but written with other spacing; batch 1 only in B; batch 2
        // gone from B.
        let b = line(0, "insert", "10:0", r#"{"document_id":1,"heading":"A","anchor":"a"}"#)
            + &line(0, "insert", "10:1", r#"{"document_id":1,"heading":"B","anchor":"b-1"}"#)
            + &line(0, "insert", "10:2", r#"{"document_id":1,"heading":"C","anchor":"c"}"#)
            + &line(0, "insert", "20:0", r#"{ "heading":"X", "document_id":2 }"#)
            + &line(1, "insert", "30:0", r#"{"document_id":4}"#);
        let (totals, documents) = run(&a, &b);
        assert!(!totals.identical);
        assert_eq!((totals.only_a, totals.only_b, totals.changed, totals.documents), (1, 2, 1, 3));
        let ids: Vec<Option<i64>> = documents.iter().map(|d| d.document_id).collect();
        assert_eq!(ids, [Some(1), Some(4), Some(3)]);
        let first = &documents[0].ops;
        assert_eq!(first.len(), 2);
        assert_eq!((first[0].kind, first[0].key.as_str()), (DifferenceKind::Changed, "10:1"));
        assert_eq!(first[0].fields, ["anchor"]);
        assert_eq!((first[1].kind, first[1].key.as_str()), (DifferenceKind::OnlyB, "10:2"));
        assert_eq!(documents[2].ops[0].kind, DifferenceKind::OnlyA);
        assert_eq!(documents[2].ops[0].action, "update");
    }

    #[test]
    fn a_damaged_plan_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a"), "garbage\n").expect("a");
        std::fs::write(dir.path().join("b"), "").expect("b");
        let err = compare("cut", &dir.path().join("a"), &dir.path().join("b"), &mut |_| Ok(()))
            .expect_err("garbage");
        assert!(err.to_string().contains("/a: not a plan line"), "{err}");
    }
}
