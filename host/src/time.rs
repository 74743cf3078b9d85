//! UTC calendar timestamps without a date library: run folders name runs by
//! the clock, sources derive record timestamps from ids (never a clock, so
//! batches stay byte-identical across runs). Both use this one conversion.

use std::time::{SystemTime, UNIX_EPOCH};

/// The UTC date and time of day of a Unix timestamp (Howard Hinnant's
/// days-to-civil algorithm, proleptic Gregorian).
fn civil(unix_seconds: i64) -> ((i64, i64, i64), (i64, i64, i64)) {
    let days = unix_seconds.div_euclid(86_400);
    let secs = unix_seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    ((year, month, day), (secs / 3_600, secs / 60 % 60, secs % 60))
}

/// `2026-05-21T08:00:00Z`.
pub fn rfc3339(unix_seconds: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = civil(unix_seconds);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `20260521T080000Z`, for names that sort by time.
pub fn compact(unix_seconds: i64) -> String {
    let ((y, mo, d), (h, mi, s)) = civil(unix_seconds);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
}

/// Seconds since the Unix epoch of `time` (0 before the epoch).
pub fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_288_935), "2026-11-21T19:22:15Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(compact(1_795_288_935), "20261121T192215Z");
    }
}
