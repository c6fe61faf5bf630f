//! The timing-fault options `sturdy run` and `sturdy hil` share, so both
//! sides of a hardware-in-loop comparison are asked the same way.

use crate::host_model::TimingSetting;
use anyhow::{ensure, Result};
use sturdy_runtime::GuardPolicy;

/// Transient timing faults of aging logic (see `sturdy aging timing` for
/// the rate a clock margin and an age give).
#[derive(Debug, Clone, clap::Args)]
pub struct TimingArgs {
    /// Flip op-output bits at this rate per bit (e.g. 1e-4), transiently:
    /// each byte of every op output is struck with probability 8·RATE and
    /// one of its bits flipped; a re-run draws afresh.
    #[arg(long, value_name = "RATE")]
    timing_faults: Option<f64>,
    /// Seed of the fault draws (each input's generator is seeded from it
    /// and the input's CRC, so results do not depend on order or threads).
    #[arg(long, default_value_t = 1, requires = "timing_faults")]
    seed: u32,
    /// What the activation guards do about the flips: off (nothing),
    /// clamp (clamp out-of-range values), stored (also re-run an op above
    /// the artifact's threshold, 1 % of its outputs: the board's default),
    /// strict (re-run an op on any out-of-range value), redundant (run
    /// every op twice and compare checksums, a third run on a mismatch:
    /// catches in-range flips too, for twice the instructions).
    #[arg(long, value_enum, default_value = "stored", requires = "timing_faults")]
    guard_policy: PolicyArg,
}

/// [`GuardPolicy`] as a command-line value.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PolicyArg {
    /// No checks.
    Off,
    /// Clamp and count.
    Clamp,
    /// Re-run above the stored threshold.
    Stored,
    /// Re-run on any out-of-range value.
    Strict,
    /// Run every op twice, compare, vote.
    Redundant,
}

impl TimingArgs {
    /// The setting asked for, if any (`RATE` checked to lie in [0, 1/8]).
    pub fn setting(&self) -> Result<Option<TimingSetting>> {
        let Some(rate) = self.timing_faults else {
            return Ok(None);
        };
        ensure!(
            (0.0..=0.125).contains(&rate),
            "--timing-faults {rate}: a rate per bit between 0 and 0.125"
        );
        Ok(Some(TimingSetting {
            rate_ppb: (rate * 1e9).round() as u32,
            seed: self.seed,
            policy: match self.guard_policy {
                PolicyArg::Off => GuardPolicy::Off,
                PolicyArg::Clamp => GuardPolicy::Clamp,
                PolicyArg::Stored => GuardPolicy::Stored,
                PolicyArg::Strict => GuardPolicy::Strict,
                PolicyArg::Redundant => GuardPolicy::Redundant,
            },
        }))
    }
}
