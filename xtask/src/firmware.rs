//! The firmware steps: lint and build it for every board, and run a bundled
//! model on the emulated one.

use crate::setup::{self, cargo, cargo_firmware_with, workspace_root};
use anyhow::{bail, Result};
use std::process::Command;

/// One firmware build: the board, its cargo feature arguments, and the
/// environment `firmware/build.rs` reads (paths from `firmware/`).
type Build = (
    &'static str,
    &'static [&'static str],
    &'static [(&'static str, &'static str)],
);

/// Every firmware build the checks cover: each board, and the real board's
/// flash repair, which needs a protected artifact (a bundled fixture whose
/// test key is committed beside it; see `firmware/README.md`).
const BUILDS: [Build; 3] = [
    ("QEMU mps2-an386", &[], &[]),
    (
        "Nucleo-F401RE",
        &["--no-default-features", "--features", "nucleo-f401re"],
        &[],
    ),
    (
        "Nucleo-F401RE with flash repair",
        &["--no-default-features", "--features", "flash-repair"],
        &[
            ("STURDY_ARTIFACT", "fixtures/flash_repair.sturdy"),
            ("STURDY_KEY", "fixtures/flash_repair.key"),
        ],
    ),
];

/// Lints (`-D warnings`) and builds the firmware for every board.
pub fn build_and_lint() -> Result<()> {
    for (board, features, env) in BUILDS {
        setup::step(&format!("firmware for {board}: lints and release build"));
        let mut clippy = vec!["clippy", "--release"];
        clippy.extend_from_slice(features);
        clippy.extend(["--", "-D", "warnings"]);
        cargo_firmware_with(&clippy, env)?;
        let mut build = vec!["build", "--release"];
        build.extend_from_slice(features);
        cargo_firmware_with(&build, env)?;
    }
    Ok(())
}

/// Quantizes the MNIST CNN and runs part of its test split on the emulated
/// Cortex-M4, comparing every output byte with the host.
pub fn demo_on_board() -> Result<()> {
    setup::step("MNIST CNN on the emulated Cortex-M4 (QEMU mps2-an386), checked against the host");
    cargo(&["build", "--release", "-p", "sturdy-tools"])?;
    let root = workspace_root();
    let sturdy = root.join("target/release/sturdy");
    let artifact = root.join("target/demo-mnist_cnn.sturdy");
    let run = |args: &[&str]| -> Result<()> {
        let status = Command::new(&sturdy)
            .args(args)
            .current_dir(&root)
            .status()?;
        if !status.success() {
            bail!("`sturdy {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let artifact = artifact.to_string_lossy();
    run(&[
        "quantize",
        "models/mnist_cnn.onnx",
        "--calib",
        "models/mnist_calib_x.npy",
        "-o",
        &artifact,
    ])?;
    run(&[
        "hil",
        &artifact,
        "--input",
        "models/mnist_test_x.npy",
        "--limit",
        "200",
        "--board",
        "qemu",
    ])
}
