//! PostgreSQL as a read-only source: connection settings and secrets
//! ([`target`]), and the source with its layered read-only policy
//! ([`source`]).

pub mod gate;
pub mod query;
pub mod source;
pub mod target;

pub use source::{DatabaseState, PgSource, PREFLIGHT, SCHEMA};
pub use target::{parse_pg_duration, SessionSettings, Target};

/// The `application_name` of a run's connections, `sidecar-<run id>`, which
/// is how an operator finds them in `pg_stat_activity`. The server keeps 63
/// bytes of it, so a longer id (a comparison's side, `<id>/a`) keeps its
/// start (the time) and its end (the salt and the side), joined by `~`.
pub fn application_name(run_id: &str) -> String {
    const LIMIT: usize = 63;
    let name = format!("sidecar-{run_id}");
    if name.len() <= LIMIT || !name.is_ascii() {
        return name.chars().take(LIMIT).collect();
    }
    let tail = 24;
    format!("{}~{}", &name[..LIMIT - tail - 1], &name[name.len() - tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_fit_and_keep_the_time_and_the_side() {
        assert_eq!(application_name("20261121T211640Z-x-5f89"), "sidecar-20261121T211640Z-x-5f89");
        let long = application_name(
            "20261121T211640Z-compare-iu-cutter-v0.6-vs-iu-cutter-v0.6-o8a-5f89/a2",
        );
        assert_eq!(long.len(), 63);
        assert!(long.starts_with("sidecar-20261121T211640Z-compare-"), "{long}");
        assert!(long.ends_with("-v0.6-o8a-5f89/a2"), "{long}");
    }
}
