//! The plan-count contract: a plugin may say which of its counts are the
//! size of a part of its plan, and the host holds every outcome to it.
//!
//! A count and a plan that disagree mean the plan cannot be trusted to be
//! what a live run would write (the field reports compared "units cut" with
//! the rows the write leg planned by hand). The declaration travels in the
//! plugin's attributes, so it needs no layout change:
//!
//! ```text
//! plan.count.<action>.<table> = "<count> [+ <count> …]"
//! plan.count.update.information_unit = "units_superseded + units_retired"
//! ```
//!
//! An outcome that reports none of a rule's counts is not held to it (the
//! rule belongs to another phase); one that reports any of them must plan
//! exactly their sum of `<action>` operations on `<table>`.

use std::collections::BTreeMap;

use crate::plugin::PhaseOutcome;

/// How every broken-contract reason starts.
pub const MISMATCH: &str = "the plan does not match its counts";

/// The attribute prefix of a rule.
pub const PREFIX: &str = "plan.count.";

/// One declared rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanCountRule {
    /// The attribute that declared it.
    pub attribute: String,
    /// The plan action, e.g. `insert`.
    pub action: String,
    /// The table, e.g. `information_unit`.
    pub table: String,
    /// The counts whose sum is the number of those operations.
    pub counts: Vec<String>,
}

/// The rules among a plugin's attributes; an attribute under [`PREFIX`]
/// that does not parse is an error naming it.
pub fn rules(attributes: &BTreeMap<String, String>) -> Result<Vec<PlanCountRule>, String> {
    attributes
        .iter()
        .filter_map(|(key, value)| Some((key, key.strip_prefix(PREFIX)?, value)))
        .map(|(key, rest, value)| {
            let invalid = |why: &str| {
                format!(
                    "attribute `{key}` = `{value}`: {why} \
                     (expected `{PREFIX}<action>.<table>` = `<count> [+ <count> …]`)"
                )
            };
            let (action, table) =
                rest.split_once('.').ok_or_else(|| invalid("no table in the name"))?;
            if !is_name(action) || !is_name(table) {
                return Err(invalid("the action and table must be names"));
            }
            let counts: Vec<String> = value.split('+').map(|c| c.trim().to_owned()).collect();
            if !counts.iter().all(|c| is_name(c)) {
                return Err(invalid("the value must be count names joined by `+`"));
            }
            Ok(PlanCountRule {
                attribute: key.clone(),
                action: action.to_owned(),
                table: table.to_owned(),
                counts,
            })
        })
        .collect()
}

fn is_name(text: &str) -> bool {
    !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why `outcome` breaks one of `rules`, if it does.
pub fn check(rules: &[PlanCountRule], outcome: &PhaseOutcome) -> Option<String> {
    rules.iter().find_map(|rule| {
        let reported: Vec<u64> = rule
            .counts
            .iter()
            .filter_map(|name| outcome.counts.iter().find(|(n, _)| n == name).map(|(_, v)| *v))
            .collect();
        if reported.is_empty() {
            return None;
        }
        let counted: u64 = reported.iter().sum();
        let planned = outcome
            .plan
            .iter()
            .filter(|op| op.action == rule.action && op.table == rule.table)
            .count() as u64;
        (counted != planned).then(|| {
            format!(
                "{MISMATCH}: {} = {counted}, but the plan holds {planned} {} on {} \
                 (attribute `{}`)",
                rule.counts.join(" + "),
                rule.action,
                rule.table,
                rule.attribute
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::PlanOp;

    fn attributes(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn outcome(counts: &[(&str, u64)], ops: &[(&str, &str)]) -> PhaseOutcome {
        PhaseOutcome {
            status: "ok".into(),
            counts: counts.iter().map(|(n, v)| ((*n).to_owned(), *v)).collect(),
            findings: vec![],
            plan: ops
                .iter()
                .map(|(action, table)| PlanOp {
                    action: (*action).into(),
                    table: (*table).into(),
                    key: "1".into(),
                    after_image: "{}".into(),
                })
                .collect(),
            note: String::new(),
        }
    }

    #[test]
    fn rules_parse_and_other_attributes_are_ignored() {
        let rules = rules(&attributes(&[
            ("plan.count.update.information_unit", "units_superseded + units_retired"),
            ("commit", "abc"),
        ]))
        .expect("valid");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].action, "update");
        assert_eq!(rules[0].table, "information_unit");
        assert_eq!(rules[0].counts, ["units_superseded", "units_retired"]);
    }

    #[test]
    fn a_malformed_rule_names_its_attribute() {
        for (key, value) in [
            ("plan.count.insert", "units"),
            ("plan.count.insert.t", "units +"),
            ("plan.count..t", "units"),
        ] {
            let err = rules(&attributes(&[(key, value)])).expect_err(key);
            assert!(err.starts_with(&format!("attribute `{key}`")), "{err}");
        }
    }

    #[test]
    fn a_plan_is_held_to_the_sum_of_its_counts() {
        let rules =
            rules(&attributes(&[("plan.count.update.iu", "superseded + retired")])).expect("valid");
        let ok =
            outcome(&[("superseded", 1), ("retired", 1)], &[("update", "iu"), ("update", "iu")]);
        assert_eq!(check(&rules, &ok), None);
        // Another phase, reporting neither count, is not held to the rule.
        assert_eq!(check(&rules, &outcome(&[("other", 5)], &[("insert", "iu")])), None);
        let short =
            outcome(&[("superseded", 2), ("retired", 1)], &[("update", "iu"), ("insert", "iu")]);
        assert_eq!(
            check(&rules, &short).as_deref(),
            Some(
                "the plan does not match its counts: superseded + retired = 3, but the plan \
                 holds 1 update on iu (attribute `plan.count.update.iu`)"
            )
        );
    }
}
