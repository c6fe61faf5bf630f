//! `sturdy keygen`: a fresh device key.

use crate::protect::key;
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Write a fresh 256-bit device key (from the OS random generator).
///
/// The file holds 64 hex digits, is created owner-only (mode 0600) and
/// appears atomically. `sturdy protect --key` derives the interleaver and
/// MAC keys from it; the key itself never enters an artifact. Keep it out of
/// version control.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Where to write the key.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing key file (the models protected with it become unreadable).
    #[arg(long)]
    force: bool,
}

/// Runs `sturdy keygen`.
pub fn main(args: Args) -> Result<()> {
    if args.output.exists() && !args.force {
        bail!(
            "{} exists; pass --force to replace it (models protected with the old key will not load)",
            args.output.display()
        );
    }
    let key = key::generate()?;
    key::write_private_atomic(&args.output, key::to_text(&key).as_bytes())?;
    eprintln!(
        "wrote a 256-bit key to {} (mode 0600)",
        args.output.display()
    );
    Ok(())
}
