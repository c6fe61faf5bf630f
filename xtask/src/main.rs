//! `cargo xtask test | demo | bench`: the two commands a new user needs,
//! plus the benchmarks, each installing what it needs first.

mod firmware;
mod setup;

use anyhow::{bail, Result};
use setup::{cargo, EMBEDDED_TARGET};
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

  test    install what is missing (thumbv7em target, rustfmt, clippy, QEMU),
          check formatting and lints, build the runtime for Cortex-M4F (no
          allocator) and the firmware (QEMU and Nucleo-F401RE), and run every
          test, the hardware-in-loop tests on the emulated board included
  demo    quantize every bundled model, run float and int8 side by side,
          print accuracy and size, then run one on the emulated Cortex-M4
  bench   host inferences per second (sturdy's int8 runtime vs tract's float
          plan), LDPC frame-error rates vs labrador-ldpc, then instructions
          per inference, MACs per instruction and flash/RAM use of every
          bundled model on the emulated Cortex-M4, and the cost of protected
          artifacts there (load, syndrome check, per-inference overhead)
  emaq-table
          the EmaQ-LT comparison on the long-tailed, domain-shifted bundled
          model (float, minmax, percentile, emaq-lt at W8A8, W4A8, mixed;
          onnxruntime when python3 can import it), written into README.md";

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    let result = match command.as_deref() {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => bench(),
        Some("emaq-table") => emaq_table(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn test() -> Result<()> {
    setup::ensure_target(EMBEDDED_TARGET)?;
    setup::ensure_component("rustfmt", &["fmt", "--version"])?;
    setup::ensure_component("clippy", &["clippy", "--version"])?;
    setup::ensure_qemu()?;
    setup::step("formatting");
    cargo(&["fmt", "--all", "--check"])?;
    setup::cargo_firmware(&["fmt", "--check"])?;
    setup::step("runtime for Cortex-M4F (no_std, no allocator)");
    cargo(&[
        "build",
        "-p",
        "sturdy-runtime",
        "--release",
        "--target",
        EMBEDDED_TARGET,
    ])?;
    firmware::build_and_lint()?;
    setup::step("lints");
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    setup::step("tests");
    cargo(&["test", "--workspace"])
}

fn demo() -> Result<()> {
    setup::step("building sturdy (release)");
    cargo(&["build", "--release", "-p", "sturdy-tools"])?;
    let status = std::process::Command::new(setup::workspace_root().join("target/release/sturdy"))
        .arg("demo")
        .current_dir(setup::workspace_root())
        .status()?;
    if !status.success() {
        bail!("sturdy demo failed ({status})");
    }
    setup::ensure_qemu()?;
    firmware::demo_on_board()
}

fn emaq_table() -> Result<()> {
    setup::step("EmaQ-LT comparison table (lt_mnist) → README.md");
    cargo(&[
        "run",
        "--release",
        "-p",
        "sturdy-tools",
        "--example",
        "emaq_table",
        "--",
        "--readme",
        "README.md",
    ])
}

fn bench() -> Result<()> {
    setup::step("host throughput: sturdy int8 vs tract float (release)");
    cargo(&["bench", "-p", "sturdy-tools", "--bench", "host_throughput"])?;
    setup::step("LDPC frame-error rate vs BER: sturdy's 802.11n codes next to labrador-ldpc");
    cargo(&["bench", "-p", "sturdy-tools", "--bench", "ldpc_fer"])?;
    setup::ensure_target(EMBEDDED_TARGET)?;
    setup::ensure_qemu()?;
    setup::step(
        "Cortex-M4 cost: instructions per inference on QEMU, flash and RAM, protected artifacts",
    );
    cargo(&["bench", "-p", "sturdy-tools", "--bench", "board_cost"])
}
