//! The comparison's reports: `kb/compare.md` and `report.html`.

use std::io;
use std::path::Path;

use super::Comparison;

/// Writes `kb/compare.md`.
pub fn write_markdown(run_dir: &Path, comparison: &Comparison) -> io::Result<()> {
    let _ = (run_dir, comparison);
    Ok(())
}

/// Writes `report.html`.
pub fn write_html(run_dir: &Path, comparison: &Comparison) -> io::Result<()> {
    let _ = (run_dir, comparison);
    Ok(())
}
