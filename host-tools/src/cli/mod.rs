//! Command-line interface of the `sturdy` binary.

pub mod aging;
mod aging_timing;
mod analyze;
mod demo;
mod demo_longtail;
mod flash;
mod hil;
mod inject;
pub(crate) mod inspect;
mod inspect_emaq;
mod keygen;
mod protect;
mod quantize;
mod run;
mod timing_args;
mod verify;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// sturdy — run neural networks on microcontrollers, bit-exactly, and keep them right.
///
/// Data flows one way: an ONNX model is quantized into an artifact (int8,
/// read in place from flash), which runs on the host with exactly the
/// arithmetic of the board.
///
///   sturdy quantize models/mnist_cnn.onnx --calib models/mnist_calib_x.npy -o mnist.sturdy
///   sturdy run mnist.sturdy --input models/mnist_test_x.npy --labels models/mnist_test_y.npy
///   sturdy inspect mnist.sturdy
#[derive(Debug, Parser)]
#[command(name = "sturdy", version, verbatim_doc_comment)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Quantize(quantize::Args),
    Run(run::Args),
    Inspect(inspect::Args),
    Demo(demo::Args),
    Hil(hil::Args),
    Flash(flash::Args),
    Keygen(keygen::Args),
    Protect(protect::Args),
    Inject(inject::Args),
    Aging(aging::Args),
    Analyze(analyze::Args),
    Verify(verify::Args),
}

/// Runs the parsed command line.
pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Quantize(args) => quantize::main(args),
        Command::Run(args) => run::main(args),
        Command::Inspect(args) => inspect::main(args),
        Command::Demo(args) => demo::main(args),
        Command::Hil(args) => hil::main(args),
        Command::Flash(args) => flash::main(args),
        Command::Keygen(args) => keygen::main(args),
        Command::Protect(args) => protect::main(args),
        Command::Inject(args) => inject::main(args),
        Command::Aging(args) => aging::main(args),
        Command::Analyze(args) => analyze::main(args),
        Command::Verify(args) => verify::main(args),
    }
}
