//! `sturdy flash`: build the firmware with an artifact linked in and put it
//! on a board.

use crate::hil::firmware::{build_firmware_keyed, default_firmware_dir, BoardKind};
use crate::hil::qemu::interactive_command;
use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// Build the firmware with ARTIFACT in its flash and flash it to a board.
///
/// --board qemu builds the emulator firmware and prints the ELF and the
/// commands that run it; a real board's firmware is handed to
/// `probe-rs run` (install it with `cargo install probe-rs-tools`), which
/// flashes it and streams its defmt log.
///
///   sturdy flash mnist.sturdy                         # QEMU: prints the ELF
///   sturdy flash mnist.sturdy --board nucleo-f401re   # flash over the ST-LINK
///   sturdy flash mnist.prot --key device.key          # a protected artifact
///
/// A protected artifact needs its device key: --key compiles the key into
/// the firmware image, which decodes and verifies the artifact into RAM at
/// boot. A real product would keep the key in OTP or secure storage (and
/// lock the debug port) instead of in the flashed image.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A sturdy artifact.
    artifact: PathBuf,
    /// The board to build for.
    #[arg(long, value_enum, default_value = "qemu")]
    board: BoardKind,
    /// The firmware sources (default: the repository's firmware/).
    #[arg(long)]
    firmware_dir: Option<PathBuf>,
    /// Build only; print the ELF path.
    #[arg(long)]
    no_run: bool,
    /// Device key of a protected artifact (from `sturdy keygen`).
    #[arg(long)]
    key: Option<PathBuf>,
}

/// Runs `sturdy flash`.
pub fn main(args: Args) -> Result<()> {
    let dir = args.firmware_dir.unwrap_or_else(default_firmware_dir);
    let elf = build_firmware_keyed(&args.artifact, args.key.as_deref(), args.board, &dir, true)?;
    println!("firmware: {}", elf.display());
    let Some(chip) = args.board.probe_rs_chip() else {
        println!("run it:   {}", interactive_command(&elf));
        let key = args
            .key
            .as_ref()
            .map_or(String::new(), |k| format!(" --key {}", k.display()));
        println!(
            "test it:  sturdy hil {}{key} --input SAMPLES.npy --elf {}",
            args.artifact.display(),
            elf.display()
        );
        return Ok(());
    };
    if args.no_run {
        return Ok(());
    }
    let status = Command::new("probe-rs")
        .args(["run", "--chip", chip])
        .arg(&elf)
        .status()
        .context("running probe-rs (install it with `cargo install probe-rs-tools`)")?;
    if !status.success() {
        bail!("probe-rs failed ({status})");
    }
    Ok(())
}
