//! Each xtask command as a list of steps, and what each step needs
//! installed. A command installs the union of its steps' needs before its
//! first step, so a step added later cannot run on a machine that lacks
//! what it uses (the demo once stopped at its last step because it did not
//! install the Cortex-M4 target that `sturdy hil` builds the firmware for).

use crate::firmware;
use crate::setup::{self, cargo, EMBEDDED_TARGET};
use anyhow::{bail, Result};

/// Something a step needs on the machine before it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Requirement {
    /// The `thumbv7em-none-eabihf` rustup target (runtime and firmware builds).
    EmbeddedTarget,
    /// The rustfmt component.
    Rustfmt,
    /// The clippy component.
    Clippy,
    /// `qemu-system-arm`, the emulated board.
    Qemu,
    /// `chromium`, the browser the report test renders in.
    Chromium,
}

impl Requirement {
    /// Installs it if missing, or fails with the command that installs it.
    fn ensure(self) -> Result<()> {
        match self {
            Requirement::EmbeddedTarget => setup::ensure_target(EMBEDDED_TARGET),
            Requirement::Rustfmt => setup::ensure_component("rustfmt", &["fmt", "--version"]),
            Requirement::Clippy => setup::ensure_component("clippy", &["clippy", "--version"]),
            Requirement::Qemu => setup::ensure_apt_tool(setup::QEMU),
            Requirement::Chromium => setup::ensure_apt_tool(setup::CHROMIUM),
        }
    }
}

/// One step of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `cargo fmt --check` on both workspaces.
    Format,
    /// The runtime built for Cortex-M4F (proves `no_std`, no allocator).
    EmbeddedRuntime,
    /// Firmware lints and release builds for every board.
    Firmware,
    /// `cargo clippy -D warnings` on the host workspace.
    Lints,
    /// `cargo test --workspace`, hardware-in-loop tests on QEMU included.
    Tests,
    /// `sturdy demo`: float vs int8 tables on the host.
    HostDemo,
    /// One bundled model on the emulated board, checked against the host.
    BoardDemo,
    /// Host throughput and LDPC frame-error benchmarks.
    HostBench,
    /// Instructions per inference, flash and RAM on the emulated board.
    BoardBench,
    /// The EmaQ-LT comparison table written into README.md.
    EmaqTable,
}

use Requirement::*;
use Step::*;

impl Step {
    /// What the step uses that a fresh machine may lack.
    pub fn needs(self) -> &'static [Requirement] {
        match self {
            Format => &[Rustfmt],
            EmbeddedRuntime => &[EmbeddedTarget],
            Firmware => &[EmbeddedTarget, Clippy],
            Lints => &[Clippy],
            // The hardware-in-loop tests build the firmware and boot it;
            // the analysis report's test opens the page in Chromium.
            Tests => &[EmbeddedTarget, Qemu, Chromium],
            BoardDemo | BoardBench => &[EmbeddedTarget, Qemu],
            HostDemo | HostBench | EmaqTable => &[],
        }
    }

    fn run(self) -> Result<()> {
        match self {
            Format => {
                setup::step("formatting");
                cargo(&["fmt", "--all", "--check"])?;
                setup::cargo_firmware(&["fmt", "--check"])
            }
            EmbeddedRuntime => {
                setup::step("runtime for Cortex-M4F (no_std, no allocator)");
                cargo(&[
                    "build",
                    "-p",
                    "sturdy-runtime",
                    "--release",
                    "--target",
                    EMBEDDED_TARGET,
                ])
            }
            Firmware => firmware::build_and_lint(),
            Lints => {
                setup::step("lints");
                cargo(&[
                    "clippy",
                    "--workspace",
                    "--all-targets",
                    "--",
                    "-D",
                    "warnings",
                ])
            }
            Tests => {
                setup::step("tests");
                cargo(&["test", "--workspace"])
            }
            HostDemo => host_demo(),
            BoardDemo => firmware::demo_on_board(),
            HostBench => {
                setup::step("host throughput: sturdy int8 vs tract float (release)");
                cargo(&["bench", "-p", "sturdy-tools", "--bench", "host_throughput"])?;
                setup::step(
                    "LDPC frame-error rate vs BER: sturdy's 802.11n codes next to labrador-ldpc",
                );
                cargo(&["bench", "-p", "sturdy-tools", "--bench", "ldpc_fer"])
            }
            BoardBench => {
                setup::step("Cortex-M4 cost: instructions per inference on QEMU, flash and RAM, protected artifacts");
                cargo(&["bench", "-p", "sturdy-tools", "--bench", "board_cost"])?;
                setup::step("MLPerf Tiny on the Cortex-M4 against TFLite Micro + CMSIS-NN");
                cargo(&["bench", "-p", "sturdy-tools", "--bench", "mlperf_tiny"])
            }
            EmaqTable => {
                setup::step("EmaQ-LT comparison table (lt_mnist and the unseen long-tailed models) → README.md");
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
        }
    }
}

fn host_demo() -> Result<()> {
    setup::step("building sturdy (release)");
    cargo(&["build", "--release", "-p", "sturdy-tools"])?;
    let status = std::process::Command::new(setup::workspace_root().join("target/release/sturdy"))
        .arg("demo")
        .current_dir(setup::workspace_root())
        .status()?;
    if !status.success() {
        bail!("sturdy demo failed ({status})");
    }
    Ok(())
}

/// The steps of `cargo xtask <command>`, in order (`None`: no such command).
pub fn steps(command: &str) -> Option<&'static [Step]> {
    Some(match command {
        "test" => &[Format, EmbeddedRuntime, Firmware, Lints, Tests],
        "demo" => &[HostDemo, BoardDemo],
        "bench" => &[HostBench, BoardBench],
        "emaq-table" => &[EmaqTable],
        _ => return None,
    })
}

/// Everything `steps` need, each once, in a fixed order.
pub fn requirements(steps: &[Step]) -> Vec<Requirement> {
    let mut all: Vec<Requirement> = steps.iter().flat_map(|s| s.needs()).copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Installs what `steps` need, then runs them in order.
pub fn run(steps: &[Step]) -> Result<()> {
    for requirement in requirements(steps) {
        requirement.ensure()?;
    }
    steps.iter().try_for_each(|s| s.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMANDS: [&str; 4] = ["test", "demo", "bench", "emaq-table"];

    #[test]
    fn every_command_has_steps() {
        for command in COMMANDS {
            assert!(steps(command).is_some_and(|s| !s.is_empty()), "{command}");
        }
        assert!(steps("tset").is_none());
    }

    #[test]
    fn the_demo_installs_the_target_and_qemu_for_its_board_step() {
        // The regression a fresh machine showed: `sturdy hil` builds the
        // firmware for the Cortex-M4 target and boots it on QEMU.
        let demo = requirements(steps("demo").unwrap());
        assert_eq!(demo, vec![EmbeddedTarget, Qemu]);
    }

    #[test]
    fn the_test_command_installs_everything_before_formatting() {
        let test = requirements(steps("test").unwrap());
        assert_eq!(test, vec![EmbeddedTarget, Rustfmt, Clippy, Qemu, Chromium]);
    }

    #[test]
    fn every_step_that_touches_the_board_needs_target_and_qemu() {
        for step in [Tests, BoardDemo, BoardBench] {
            assert!(step.needs().contains(&EmbeddedTarget), "{step:?}");
            assert!(step.needs().contains(&Qemu), "{step:?}");
        }
        for step in [EmbeddedRuntime, Firmware] {
            assert!(step.needs().contains(&EmbeddedTarget), "{step:?}");
        }
    }

    #[test]
    fn bench_sets_up_before_its_first_host_step() {
        // It used to install the target only after the host benchmarks.
        let bench = requirements(steps("bench").unwrap());
        assert_eq!(bench, vec![EmbeddedTarget, Qemu]);
    }
}
