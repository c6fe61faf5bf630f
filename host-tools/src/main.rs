//! `sturdy`: quantize, inspect and run neural networks for microcontrollers.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = sturdy_tools::cli::Cli::parse();
    match sturdy_tools::cli::dispatch(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
