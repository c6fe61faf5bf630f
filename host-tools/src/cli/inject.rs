//! `sturdy inject`: seeded random bit flips in a stored artifact.

use crate::fsutil::write_atomic;
use crate::protect::inject::{flip_bits, region_range, Region};
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;

/// Flip each stored bit independently with probability P (reproducibly).
///
/// Models radiation upsets, retention loss and disturbance in flash/SRAM.
/// The flips come from ChaCha20 seeded with --seed: the same inputs give
/// the same flips. --region weights (default) hits what the kernels read —
/// the weights section of a plain artifact, the coded image of a protected
/// one; --region all hits every byte, headers included (a damaged header is
/// refused by its CRC or key check, never used).
///
///   sturdy inject mnist.prot --ber 1e-3 --seed 1 -o hit.prot
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A plain or protected artifact.
    artifact: PathBuf,
    /// Probability that each bit flips.
    #[arg(long)]
    ber: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which bytes may be hit.
    #[arg(long, value_enum, default_value = "weights")]
    region: Region,
    /// Where to write the damaged artifact.
    #[arg(short, long)]
    output: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `sturdy inject`.
pub fn main(args: Args) -> Result<()> {
    let mut bytes = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let range = region_range(&bytes, args.region)?;
    let bits = range.len() * 8;
    let flipped = flip_bits(&mut bytes, range, args.ber, args.seed)?;
    write_atomic(&args.output, &bytes)?;
    if args.json {
        println!(
            "{}",
            json!({"flipped": flipped.len(), "bits": bits, "ber": args.ber, "seed": args.seed,
                   "output": args.output.display().to_string()})
        );
    } else {
        println!(
            "flipped {} of {} bits ({:.2e}) in {}",
            flipped.len(),
            bits,
            flipped.len() as f64 / bits.max(1) as f64,
            args.output.display()
        );
    }
    Ok(())
}
