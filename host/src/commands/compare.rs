//! `sidecar compare DIR_A DIR_B`: two versions dry-run side by side on
//! identical data. Exit 0 the same behaviour, 1 differences (or, with
//! `--aa`, noise that makes the comparison untrustworthy), 2 an error (a
//! side failed, or a directory did not verify; also bad usage), 3 a side
//! refused by policy.

use crate::cli::CompareArgs;
use crate::commands::dry_run::Setup;
use crate::compare::{compare, CompareOptions, CompareVerdict, Comparison, PhaseSide};
use crate::exit::{ExitStatus, UsageError};

/// Runs `sidecar compare`.
pub fn run(args: &CompareArgs) -> anyhow::Result<ExitStatus> {
    let setup = Setup::new(&args.run)?;
    let options = CompareOptions {
        dir_a: &args.dir_a,
        dir_b: &args.dir_b,
        lock: setup.lock.as_ref(),
        runs_dir: &args.run.runs_dir,
        batch_size: args.run.batch_size as usize,
        limits: setup.limits,
        aa: args.aa,
        html: args.html,
    };
    // For `diff`-like exit codes, trouble is 2, never 1 ("different").
    let compared = compare(&options, setup.source.as_ref())
        .map_err(|err| UsageError(format!("compare: {err}")))?;
    let comparison = &compared.comparison;
    if args.json {
        println!("{}", serde_json::to_string_pretty(comparison)?);
    } else {
        print!("{}", human(comparison, args.html));
    }
    match comparison.verdict {
        CompareVerdict::Failed => eprintln!("error: {}", comparison.reason),
        CompareVerdict::Refused => eprintln!("refused: {}", comparison.reason),
        _ => {}
    }
    Ok(exit_status(comparison.verdict))
}

/// The exit status a verdict earns.
pub fn exit_status(verdict: CompareVerdict) -> ExitStatus {
    match verdict {
        CompareVerdict::Same => ExitStatus::Success,
        CompareVerdict::Different | CompareVerdict::Untrustworthy => ExitStatus::Failure,
        CompareVerdict::Failed => ExitStatus::Usage,
        CompareVerdict::Refused => ExitStatus::Refused,
    }
}

/// How a phase's outcome differs when its plans do not: status, counts.
fn counts_change(a: Option<&PhaseSide>, b: Option<&PhaseSide>) -> String {
    let (Some(a), Some(b)) = (a, b) else { return "declared by one side only".to_owned() };
    let mut changes = Vec::new();
    if a.status != b.status {
        changes.push(format!("status {} → {}", a.status, b.status));
    }
    let names: std::collections::BTreeSet<&String> =
        a.counts.keys().chain(b.counts.keys()).collect();
    for name in names {
        let (x, y) = (a.counts.get(name), b.counts.get(name));
        if x != y {
            let show = |v: Option<&u64>| v.map_or("-".to_owned(), u64::to_string);
            changes.push(format!("{name} {} → {}", show(x), show(y)));
        }
    }
    if a.findings != b.findings {
        changes.push("findings differ".to_owned());
    }
    if changes.is_empty() {
        "differs".to_owned()
    } else {
        changes.join(", ")
    }
}

fn human(c: &Comparison, html: bool) -> String {
    let verdict = format!("{:?}", c.verdict).to_lowercase();
    let mut out = format!("compare {}  {verdict}\n", c.compare_id);
    out.push_str(&format!("  folder       {}\n", c.run_dir));
    let s = &c.source;
    let location = if s.location == s.kind { String::new() } else { format!(" {}", s.location) };
    let snapshot =
        s.database.as_ref().map_or_else(String::new, |d| format!("  snapshot {}", d.snapshot_id));
    out.push_str(&format!("  source       {}{location}  digest {}{snapshot}\n", s.kind, s.digest));
    for side in &c.sides {
        out.push_str(&format!(
            "  side {:<7} {:<28} {:<10} {} documents  ({}/)\n",
            side.side.to_uppercase(),
            side.plugin.as_deref().unwrap_or("-"),
            format!("{:?}", side.verdict).to_lowercase(),
            side.documents,
            side.side
        ));
    }
    for row in c.identity.iter().filter(|r| !r.same) {
        let short = |v: &str| {
            if row.field.ends_with("sha256") {
                v[..v.len().min(12)].to_owned()
            } else {
                format!("{v:?}")
            }
        };
        out.push_str(&format!("  {:<16} A {}  B {}\n", row.field, short(&row.a), short(&row.b)));
    }
    if let Some(tree) = &c.tree {
        out.push_str(&format!(
            "  tree         {} changed, {} only in A, {} only in B{}\n",
            tree.diff.changed.len(),
            tree.diff.only_in_a.len(),
            tree.diff.only_in_b.len(),
            if tree.identical { " (identical)" } else { "" }
        ));
    }
    for phase in &c.phases {
        let side = |p: &Option<PhaseSide>| {
            p.as_ref().map_or_else(
                || "absent".to_owned(),
                |p| {
                    let ops: Vec<String> = p.ops.iter().map(|(a, n)| format!("{n} {a}")).collect();
                    format!("{} {}", p.status, ops.join(" "))
                },
            )
        };
        let plan = match &phase.plan {
            Some(plan) if !plan.identical => format!(
                "{} only in A, {} only in B, {} changed; {} documents",
                plan.only_a, plan.only_b, plan.changed, plan.documents
            ),
            _ if phase.same => "same".to_owned(),
            _ => counts_change(phase.a.as_ref(), phase.b.as_ref()),
        };
        out.push_str(&format!(
            "  {:<16} A {:<22} B {:<22} {plan}\n",
            phase.phase,
            side(&phase.a),
            side(&phase.b)
        ));
    }
    if let Some(noise) = &c.noise {
        out.push_str(&format!(
            "  noise (A/A)  {}\n",
            if noise.same {
                "none: A behaved identically twice".to_owned()
            } else {
                format!("phases {} ({} documents)", noise.phases.join(", "), noise.documents)
            }
        ));
    }
    if c.documents.differing > 0 {
        out.push_str(&format!(
            "  documents    {} would be processed differently (diff.jsonl)\n",
            c.documents.differing
        ));
    }
    out.push_str(&format!("  verdict      {verdict}: {}\n", c.reason));
    out.push_str(&format!("  report       {}/kb/compare.md\n", c.run_dir));
    if html {
        out.push_str(&format!("  html         {}/report.html\n", c.run_dir));
    }
    out
}
