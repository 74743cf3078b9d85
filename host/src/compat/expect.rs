//! Post-deploy assertions (`--expect FILE`): what an operator requires of a
//! version, in TOML, checked like every other compatibility check.
//!
//! ```toml
//! execution_enabled = false
//! live_wiring = "O8A-*"
//! capabilities = ["LiveExecutionAdapter"]
//! phases_include = ["discover", "write_verify"]
//! min_abi = "0.1.0"
//! ```
//!
//! Every key is optional; a key the host does not know is an error, never
//! ignored, so a typo cannot turn an assertion off.

use std::path::Path;

use serde::Deserialize;

use crate::plugin::PluginInfo;

/// The assertions of one `--expect` file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expectations {
    /// The plugin's name, a glob (`*`, `?`).
    pub name: Option<String>,
    /// The plugin's version, a glob.
    pub version: Option<String>,
    /// The release milestone, a glob.
    pub milestone: Option<String>,
    /// The kill-switch, as read before and after the dry runs.
    pub execution_enabled: Option<bool>,
    /// The live-wiring marker, a glob (`""` asserts there is none).
    pub live_wiring: Option<String>,
    /// Capabilities the plugin must declare (it may declare more).
    pub capabilities: Option<Vec<String>>,
    /// Phases the plugin must declare (it may declare more).
    pub phases_include: Option<Vec<String>>,
    /// The oldest interface version the plugin may be built against.
    pub min_abi: Option<String>,
}

/// What the assertions are checked against.
#[derive(Debug)]
pub struct Observed<'a> {
    /// The plugin's description.
    pub info: &'a PluginInfo,
    /// The kill-switch readings, in order.
    pub execution_enabled: &'a [bool],
    /// The interface version the plugin was built against.
    pub abi_version: &'a str,
}

/// One assertion's result: its key, whether it held, and why.
pub type Outcome = (&'static str, bool, String);

impl Expectations {
    /// Reads and checks `path`; the error is one line naming the file and,
    /// where the parser knows it, the line and key.
    pub fn load(path: &Path) -> Result<Self, String> {
        let shown = path.display();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let expectations: Self = toml::from_str(&text).map_err(|err| {
            let line = err.span().map(|span| text[..span.start].matches('\n').count() + 1);
            let message = err.message().replace('\n', " ");
            match line {
                Some(line) => format!("{shown}: line {line}: {message}"),
                None => format!("{shown}: {message}"),
            }
        })?;
        if let Some(min) = &expectations.min_abi {
            if version_triple(min).is_none() {
                return Err(format!(
                    "{shown}: min_abi = \"{min}\" is not a version like \"0.1.0\""
                ));
            }
        }
        Ok(expectations)
    }

    /// The keys the file sets, in the order they are checked.
    pub fn keys(&self) -> Vec<&'static str> {
        let set = [
            ("name", self.name.is_some()),
            ("version", self.version.is_some()),
            ("milestone", self.milestone.is_some()),
            ("live_wiring", self.live_wiring.is_some()),
            ("execution_enabled", self.execution_enabled.is_some()),
            ("capabilities", self.capabilities.is_some()),
            ("phases_include", self.phases_include.is_some()),
            ("min_abi", self.min_abi.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(key, _)| key).collect()
    }

    /// Whether the file asserts nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks every assertion the file makes, in a fixed order.
    pub fn check(&self, seen: &Observed<'_>) -> Vec<Outcome> {
        let info = seen.info;
        let mut out = Vec::new();
        let mut glob_check = |key, pattern: &Option<String>, value: &str| {
            if let Some(pattern) = pattern {
                let shown = if value.is_empty() { "(none)" } else { value };
                let held = glob(pattern, value);
                let verb = if held { "matches" } else { "does not match" };
                out.push((key, held, format!("{shown} {verb} `{pattern}`")));
            }
        };
        glob_check("name", &self.name, &info.name);
        glob_check("version", &self.version, &info.version);
        glob_check("milestone", &self.milestone, &info.milestone);
        glob_check("live_wiring", &self.live_wiring, &info.live_wiring);
        if let Some(expected) = self.execution_enabled {
            let held = seen.execution_enabled.iter().all(|v| *v == expected);
            let read: Vec<String> = seen.execution_enabled.iter().map(bool::to_string).collect();
            out.push((
                "execution_enabled",
                held,
                format!("read {} (expected {expected})", read.join(", then ")),
            ));
        }
        if let Some(expected) = &self.capabilities {
            out.push(includes("capabilities", expected, &info.capabilities));
        }
        if let Some(expected) = &self.phases_include {
            let declared: Vec<String> = info.phases.iter().map(|p| p.name.clone()).collect();
            out.push(includes("phases_include", expected, &declared));
        }
        if let Some(min) = &self.min_abi {
            let held = match (version_triple(seen.abi_version), version_triple(min)) {
                (Some(actual), Some(min)) => actual >= min,
                _ => false,
            };
            let verb = if held { "is at least" } else { "is older than" };
            out.push(("min_abi", held, format!("sidecar-abi {} {verb} {min}", seen.abi_version)));
        }
        out
    }
}

fn includes(key: &'static str, expected: &[String], declared: &[String]) -> Outcome {
    let missing: Vec<&str> =
        expected.iter().filter(|e| !declared.contains(e)).map(String::as_str).collect();
    let declared = if declared.is_empty() { "(none)".to_owned() } else { declared.join(", ") };
    if missing.is_empty() {
        (key, true, format!("declares {}", expected.join(", ")))
    } else {
        (key, false, format!("does not declare {} (declares {declared})", missing.join(", ")))
    }
}

/// `major.minor.patch` (a missing patch is 0), for ordering versions.
fn version_triple(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().split('.').map(str::parse::<u64>);
    let major = parts.next()?.ok()?;
    let minor = parts.next()?.ok()?;
    let patch = parts.next().unwrap_or(Ok(0)).ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// Shell-style matching of the whole text: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    // Where the last `*` was, and how much of the text it has taken.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((star_p, star_t)) = star {
            pi = star_p + 1;
            ti = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::Phase;

    fn load(text: &str) -> Result<Expectations, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("expect.toml");
        std::fs::write(&path, text).expect("write");
        Expectations::load(&path).map_err(|e| e.replace(&path.display().to_string(), "FILE"))
    }

    #[test]
    fn globs_match_whole_texts() {
        assert!(glob("O8A-*", "O8A-LIVE-WIRING-1"));
        assert!(glob("*", ""));
        assert!(glob("0.?-o8a", "0.6-o8a"));
        assert!(glob("a*b*c", "abxbxc"));
        assert!(!glob("O8A-*", "O8B-LIVE"));
        assert!(!glob("O8A", "O8A-1"));
        assert!(!glob("", "x"));
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_line_and_key() {
        let err = load("execution_enabled = false\nlive_wirring = \"O8A-*\"\n").expect_err("typo");
        assert!(err.starts_with("FILE: line 2: unknown field `live_wirring`"), "{err}");
        assert!(!err.contains('\n'), "one line: {err}");
        let err = load("min_abi = \"one\"\n").expect_err("bad version");
        assert_eq!(err, "FILE: min_abi = \"one\" is not a version like \"0.1.0\"");
        let err = load("capabilities = \"LiveExecutionAdapter\"\n").expect_err("not a list");
        assert!(err.starts_with("FILE: line 1: invalid type"), "{err}");
    }

    #[test]
    fn assertions_are_checked_against_the_plugin() {
        let expectations = load(
            "execution_enabled = false\nlive_wiring = \"O8A-*\"\n\
             capabilities = [\"LiveExecutionAdapter\"]\nphases_include = [\"discover\", \"deploy\"]\n\
             min_abi = \"0.1.1\"\n",
        )
        .expect("valid");
        let info = PluginInfo {
            name: "iu-cutter".into(),
            version: "0.6-o8a".into(),
            milestone: "O8A".into(),
            live_wiring: "O8A-LIVE-WIRING-1".into(),
            phases: vec![Phase {
                name: "discover".into(),
                side_effects: "None".into(),
                dry_run_safe: true,
            }],
            capabilities: vec!["LiveExecutionAdapter".into()],
            attributes: Default::default(),
        };
        let seen =
            Observed { info: &info, execution_enabled: &[false, false], abi_version: "0.1.0" };
        let results = expectations.check(&seen);
        let held: Vec<(&str, bool)> = results.iter().map(|(k, h, _)| (*k, *h)).collect();
        assert_eq!(
            held,
            [
                ("live_wiring", true),
                ("execution_enabled", true),
                ("capabilities", true),
                ("phases_include", false),
                ("min_abi", false),
            ]
        );
        assert_eq!(results[3].2, "does not declare deploy (declares discover)");
        assert_eq!(results[4].2, "sidecar-abi 0.1.0 is older than 0.1.1");
    }
}
