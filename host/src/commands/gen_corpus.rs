//! `sidecar gen-corpus OUT --size 100M`: writes a deterministic Markdown
//! corpus for benchmarks and for `--source dir:`.

use anyhow::Context as _;

use crate::cli::GenCorpusArgs;
use crate::exit::{ExitStatus, UsageError};
use crate::source;

/// Runs `sidecar gen-corpus`.
pub fn run(args: &GenCorpusArgs) -> anyhow::Result<ExitStatus> {
    let bytes = source::parse_size(&args.size).map_err(|e| UsageError(e.to_string()))?;
    let written = source::generate::write_markdown_tree(&args.out, bytes, args.seed)
        .with_context(|| format!("cannot write the corpus into `{}`", args.out.display()))?;
    println!("wrote {written} bytes of Markdown under {}", args.out.display());
    Ok(ExitStatus::Success)
}
