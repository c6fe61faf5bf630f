//! `sturdy protect`: keyed channel reparameterization, QC-LDPC coded
//! storage and keyed integrity tags.

use crate::fsutil::write_atomic;
use crate::protect::{self, key, Options};
use anyhow::{Context, Result};
use std::path::PathBuf;
use sturdy_runtime::ldpc::{Code, Length, Rate};

/// Protect an artifact against bit flips and tampering, with a device key.
///
/// First the hidden channels between consecutive Conv/FC layers are
/// permuted with a permutation derived from the key (and the artifact's
/// random nonce): the outputs stay bit-identical, but the stored bits no
/// longer sit where they sit in the public model, so bit addresses found on
/// the public model do not transfer. Then the whole plain artifact except its metadata (graph, weights, biases,
/// requantization arrays, tables: everything the runtime reads) is stored
/// as systematic codewords of an IEEE 802.11n QC-LDPC code, spread over the
/// codewords by a keyed interleaver, and cut into blocks that each carry a
/// keyed BLAKE2s tag. At load the runtime checks every codeword's syndrome,
/// repairs the failing ones, verifies every tag and refuses the model
/// (typed error) when a word cannot be repaired or a tag does not match.
///
///   sturdy keygen -o device.key
///   sturdy protect mnist.sturdy --key device.key --rate 5/6 -o mnist.prot
///   sturdy inspect mnist.prot
///   sturdy run mnist.prot --key device.key --input … --labels …
///
/// Lower rates repair more flips and cost more flash (see `inspect`).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A plain sturdy artifact (from `sturdy quantize`).
    artifact: PathBuf,
    /// Device key file (from `sturdy keygen`).
    #[arg(long)]
    key: PathBuf,
    /// Code rate k/n: 1/2 repairs the most, 5/6 costs the least flash.
    #[arg(long, default_value = "1/2", value_parser = ["1/2", "2/3", "3/4", "5/6"])]
    rate: String,
    /// Codeword length n in bits: 648, 1296 or 1944.
    #[arg(long, default_value_t = 1944)]
    length: u32,
    /// Store uncoded (tags only): no repair, detection only.
    #[arg(long)]
    no_ldpc: bool,
    /// No integrity tags: repair only, tampering undetected.
    #[arg(long)]
    no_mac: bool,
    /// Skip keyed channel reparameterization. With --no-ldpc --no-mac as
    /// well there is nothing to do; with only --no-ldpc --no-mac the output
    /// is the reparameterized plain artifact (runs without the key).
    #[arg(long)]
    no_reparam: bool,
    /// In-place layout: the coded image starts with the plain model and
    /// its parity follows, so a device holding the artifact in RAM verifies
    /// and patches it where it lies instead of decoding a second copy.
    #[arg(long, conflicts_with = "no_ldpc")]
    in_place: bool,
    /// A mission profile (TOML, see `sturdy aging --help`): the code is
    /// the one `sturdy aging plan` chooses for it (the smallest flash that
    /// meets the profile's failure target), and the plan is recorded in the
    /// artifact's metadata (`inspect` shows it).
    #[arg(long, conflicts_with_all = ["rate", "length", "no_ldpc"])]
    profile: Option<PathBuf>,
    /// Bytes of recovered artifact per tag (multiple of 4).
    #[arg(long, default_value_t = protect::DEFAULT_BLOCK_LEN)]
    block: usize,
    /// Where to write the protected artifact.
    #[arg(short, long)]
    output: PathBuf,
}

/// Parses "1/2" … "5/6".
pub fn parse_rate(s: &str) -> Option<Rate> {
    Some(match s {
        "1/2" => Rate::R1_2,
        "2/3" => Rate::R2_3,
        "3/4" => Rate::R3_4,
        "5/6" => Rate::R5_6,
        _ => return None,
    })
}

/// The 802.11n length of `n` bits.
pub fn parse_length(n: u32) -> Option<Length> {
    Length::ALL.into_iter().find(|l| l.bits() == n as usize)
}

/// Runs `sturdy protect`.
pub fn main(args: Args) -> Result<()> {
    let key = key::read(&args.key)?;
    let plain = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let rate = parse_rate(&args.rate).context("--rate is one of 1/2, 2/3, 3/4, 5/6")?;
    let length = parse_length(args.length).context("--length is one of 648, 1296, 1944")?;
    let (plain, code) = match &args.profile {
        Some(profile) => {
            let name = args.artifact.display().to_string();
            let (plain, code) = crate::aging::apply::apply_plan(&name, profile, &plain)?;
            (plain, Some(code))
        }
        None => (plain, (!args.no_ldpc).then(|| Code::new(length, rate))),
    };
    let options = Options {
        reparam: !args.no_reparam,
        code,
        mac: !args.no_mac,
        block_len: args.block,
        in_place: args.in_place,
    };
    if !args.no_reparam {
        let plan = protect::reparam::plan(&plain)?;
        let channels: usize = plan.chains.iter().map(|c| c.channels).sum();
        eprintln!(
            "reparameterization: {} channel permutation(s) over {channels} channels; {} Conv/FC output(s) left as they are",
            plan.chains.len(),
            plan.skipped.len()
        );
        for (op, why) in &plan.skipped {
            eprintln!("  op {op} not permuted: {why}");
        }
    }
    let protected = protect::protect(&plain, &key, protect::fresh_nonce()?, options)
        .with_context(|| format!("protecting {}", args.artifact.display()))?;
    write_atomic(&args.output, &protected)?;
    if args.no_ldpc && args.no_mac {
        eprintln!(
            "wrote {} (reparameterized plain artifact, {} bytes)",
            args.output.display(),
            protected.len()
        );
        return Ok(());
    }
    let report = protect::report(&protected)?;
    eprintln!(
        "wrote {} ({} bytes from {}: {:+.1}% flash; {} codewords, {} tags)",
        args.output.display(),
        protected.len(),
        plain.len(),
        100.0 * (protected.len() as f64 / plain.len() as f64 - 1.0),
        report["code"]["codewords"].as_u64().unwrap_or(0),
        report["tag_blocks"],
    );
    Ok(())
}
