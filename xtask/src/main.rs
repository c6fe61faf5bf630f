//! `cargo xtask test | demo | bench | emaq-table`: the two commands a new
//! user needs, plus the benchmarks, each installing what its steps need
//! before the first one (see [`plan`]).

mod firmware;
mod plan;
mod setup;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

  test    install what is missing (thumbv7em target, rustfmt, clippy, QEMU, Chromium),
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
    let Some(steps) = command.as_deref().and_then(plan::steps) else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    match plan::run(steps) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}
