//! The dry-run benchmark's peer: the least a cutter must do, with the same
//! crates the o8a plugin uses and on the same documents the host's
//! generator feeds a dry run. It generates `generated:SIZE[:SEED]`, parses
//! every body with pulldown-cmark (front matter on, as the plugin), and
//! hashes every body with sha2. No worker, no simulator, no plan.
//!
//! Usage: `bare-cut SIZE [SEED]` (SIZE as in `--source generated:SIZE`).

use pulldown_cmark::{Options, Parser};
use sha2::{Digest, Sha256};
use sidecar::source::{parse_size, GeneratedSource, Source};

fn main() {
    let mut args = std::env::args().skip(1);
    let size = args.next().expect("usage: bare-cut SIZE [SEED]");
    let seed = args.next().map_or(1, |s| s.parse().expect("SEED is a number"));
    let bytes = parse_size(&size).expect("SIZE like 100M");
    let (mut documents, mut events, mut digest) = (0u64, 0u64, [0u8; 32]);
    for batch in GeneratedSource::new(bytes, seed).batches(256) {
        for version in batch.expect("generated batch").versions {
            let parser = Parser::new_ext(&version.body, Options::ENABLE_YAML_STYLE_METADATA_BLOCKS);
            events += parser.into_offset_iter().count() as u64;
            let hash: [u8; 32] = Sha256::digest(version.body.as_bytes()).into();
            digest.iter_mut().zip(hash).for_each(|(d, h)| *d ^= h);
            documents += 1;
        }
    }
    println!(
        "{documents} documents, {events} events, xor of digests {:02x}{:02x}…",
        digest[0], digest[1]
    );
}
