//! The suite as JUnit XML (`--junit FILE`), so a CI system shows each check
//! as a test: one `<testsuite>` per plugin directory, one `<testcase>` per
//! check, `<failure>` and `<skipped>` carrying the check's one-line detail.
//! `tests/schemas/junit.xsd` is the schema the test suite validates it with.

use std::fmt::Write as _;

use super::{CompatReport, PluginChecks, Status};
use crate::run::report::escape_markup as escape;

/// Renders `report` as a JUnit XML document.
pub fn render(report: &CompatReport) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let totals = &report.totals;
    let _ = writeln!(
        xml,
        "<testsuites name=\"sidecar compat\" tests=\"{}\" failures=\"{}\" errors=\"0\" \
         skipped=\"{}\" time=\"{}\" timestamp=\"{}\">",
        totals.checks,
        totals.failed,
        totals.skipped,
        seconds(report.duration_ms),
        escape(&report.started_at),
    );
    for plugin in &report.plugins {
        suite(&mut xml, report, plugin);
    }
    xml.push_str("</testsuites>\n");
    xml
}

fn suite(xml: &mut String, report: &CompatReport, plugin: &PluginChecks) {
    let name = plugin.plugin.as_deref().unwrap_or("unknown plugin");
    let count = |status| plugin.checks.iter().filter(|c| c.status == status).count();
    let _ = writeln!(
        xml,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" \
         time=\"{}\" timestamp=\"{}\">",
        escape(&format!("{name} ({})", plugin.dir)),
        plugin.checks.len(),
        count(Status::Fail),
        count(Status::Skip),
        seconds(plugin.duration_ms),
        escape(&report.started_at),
    );
    xml.push_str("    <properties>\n");
    let properties = [
        ("dir", Some(plugin.dir.as_str())),
        ("abi_version", plugin.abi_version.as_deref()),
        ("host_abi_version", Some(report.host_abi_version.as_str())),
        ("dry_runs", plugin.dry_runs.as_deref()),
    ];
    for (key, value) in properties {
        if let Some(value) = value {
            let _ = writeln!(xml, "      <property name=\"{key}\" value=\"{}\"/>", escape(value));
        }
    }
    xml.push_str("    </properties>\n");
    let classname: String = format!("sidecar.compat.{name}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' })
        .collect();
    for check in &plugin.checks {
        let open = format!(
            "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
            escape(&check.name),
            escape(&classname),
            seconds(check.duration_ms)
        );
        let detail = escape(&check.detail);
        match check.status {
            Status::Pass => {
                let _ = writeln!(xml, "{open}/>");
            }
            Status::Fail => {
                let _ = writeln!(
                    xml,
                    "{open}>\n      <failure message=\"{detail}\" type=\"{}\">{detail}</failure>\n    </testcase>",
                    escape(&check.name)
                );
            }
            Status::Skip => {
                let _ = writeln!(
                    xml,
                    "{open}>\n      <skipped message=\"{detail}\"/>\n    </testcase>"
                );
            }
        }
    }
    xml.push_str("  </testsuite>\n");
}

fn seconds(millis: u64) -> String {
    format!("{}.{:03}", millis / 1000, millis % 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_seconds_with_milliseconds() {
        assert_eq!(seconds(0), "0.000");
        assert_eq!(seconds(1234), "1.234");
    }
}
