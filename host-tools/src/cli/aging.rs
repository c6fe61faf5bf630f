//! `sturdy aging`: how a stored model decays over a mission, which code and
//! scrub interval keep it decodable, and whole lifetimes played through the
//! real decoder.

use crate::aging::apply::{DEFAULT_FRAMES, DEFAULT_SEED};
use crate::aging::ber::{self, retention_budget_used};
use crate::aging::plan::{Plan, DEFAULT_INTERVALS_HOURS};
use crate::aging::profile::{MissionProfile, HARSH_TOML, HOURS_PER_YEAR, MILD_TOML};
use crate::aging::simulate;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;

/// Aging of the stored model: BER over time, the lifetime plan, lifetime simulation.
///
/// A mission profile (TOML) says how long the device lives, how hot it
/// runs, what the datasheet promises for flash retention and how often its
/// RAM takes soft errors. From it, sturdy models the probability that a
/// stored bit has flipped t hours after the last refresh:
///
///   retention   BER = 1 − exp(−(t_eq/η)^β), t_eq = Σ share_i·t·AF(T_i),
///               AF(T) = exp[(Ea/k)(1/T_ret − 1/T)]  (Arrhenius; ST AN5866's
///               time-at-temperature budget), η anchored so that BER reaches
///               flash.ber_at_retention when the datasheet retention is used up
///   soft errors BER = 1 − exp(−λ·t), λ = FIT/Mbit · 1e-9 / 2^20 per bit-hour,
///               times the bits a burst flips on average
///
/// Profile fields (every one documented with its unit and source):
///
///   lifetime_years = 10          target_failure = 1e-6 (P of any uncorrectable word)
///   placement = "flash+ram-copy" ("flash", "ram")
///   [[temperature]] celsius = 40, share = 0.8      (shares sum to 1)
///   [flash] retention_years = 10, retention_celsius = 85, activation_ev = 1.1
///           (contested: NAND measurements fit ~0.6 eV), ber_at_retention = 1e-6,
///           weibull_shape = 1, endurance_cycles = 10000
///   [ram]   fit_per_mbit = 1000 (IEC 61508: 700–1200), burst_share = 0.1, burst_bits = 2
///
///   sturdy aging example harsh > harsh.toml
///   sturdy aging curve --profile harsh.toml
///   sturdy aging plan mnist.sturdy --profile harsh.toml
///   sturdy protect mnist.sturdy --key device.key --profile harsh.toml -o mnist.prot
///   sturdy aging simulate mnist.prot --key device.key --profile harsh.toml \
///       --input models/mnist_test_x.npy --labels models/mnist_test_y.npy
///   sturdy aging timing --profile harsh.toml --guardband 0.01
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
// The comment is `--help` text: its `[flash]`-style TOML headers are no links.
#[allow(rustdoc::broken_intra_doc_links)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print an example mission profile (harsh or mild) to start from.
    Example {
        /// `harsh`: 10 years, 20 % at 85 °C, 1.0 eV, 1000 FIT/Mbit; `mild`: 25 °C.
        #[arg(value_parser = ["harsh", "mild"])]
        which: String,
    },
    /// BER per stored bit over the lifetime, by mechanism.
    Curve {
        /// The mission profile (TOML).
        #[arg(long)]
        profile: PathBuf,
        /// Points, log-spaced from 1 hour to the lifetime.
        #[arg(long, default_value_t = 12)]
        points: usize,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Choose the code and scrub interval for an artifact and a mission.
    Plan(PlanArgs),
    /// Monte-Carlo lifetimes through the real decoder: accuracy and
    /// uncorrectable words at checkpoints, unprotected vs protected without
    /// and with the planned scrubbing.
    Simulate(simulate::Args),
    /// Aging of the logic: NBTI ΔVth = A·exp(−Ea/kT)·t^(1/6) (Ea 0.49 eV,
    /// anchored at 50 mV after 10 years at 125 °C), the alpha-power delay
    /// law (α 1.3, Vdd 1.2 V, Vt0 0.5 V), the age at which the clock's
    /// guardband runs out and the wrong output bits per bit after it (a
    /// decade per 1 % of extra delay from 1e-9, assumed): the rate to give
    /// `sturdy run --timing-faults`.
    Timing(super::aging_timing::TimingModelArgs),
}

/// Options of `sturdy aging plan`.
#[derive(Debug, Clone, clap::Args)]
pub struct PlanArgs {
    /// A plain artifact (from `sturdy quantize`).
    pub artifact: PathBuf,
    /// The mission profile (TOML).
    #[arg(long)]
    pub profile: PathBuf,
    /// Frames per BER when measuring each code's FER with the decoder.
    #[arg(long, default_value_t = DEFAULT_FRAMES)]
    pub frames: u32,
    /// Seed of the FER simulation.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    /// Scrub intervals to try, in hours (the lifetime, "no scrubbing", is always tried).
    #[arg(long, value_delimiter = ',', default_values_t = DEFAULT_INTERVALS_HOURS.to_vec())]
    pub intervals: Vec<f64>,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

/// Runs `sturdy aging`.
pub fn main(args: Args) -> Result<()> {
    match args.command {
        Command::Example { which } => {
            print!(
                "{}",
                if which == "harsh" {
                    HARSH_TOML
                } else {
                    MILD_TOML
                }
            );
            Ok(())
        }
        Command::Curve {
            profile,
            points,
            json,
        } => curve(&MissionProfile::load(&profile)?, points, json),
        Command::Plan(args) => {
            let (profile, plan, plain_bits) = make_plan(&args)?;
            print_plan(&profile, &plan, plain_bits, args.json);
            Ok(())
        }
        Command::Simulate(args) => simulate::main(args),
        Command::Timing(args) => super::aging_timing::main(args),
    }
}

fn curve(profile: &MissionProfile, points: usize, json: bool) -> Result<()> {
    let rows = ber::curve(profile, points.max(2));
    if json {
        let rows: Vec<_> = rows
            .iter()
            .map(|(h, b)| {
                json!({"hours": h, "retention": b.retention, "soft": b.soft, "total": b.total,
                "retention_budget_used": retention_budget_used(profile, *h)})
            })
            .collect();
        println!("{}", json!({ "profile": profile, "curve": rows }));
        return Ok(());
    }
    println!(
        "{:>12} {:>9} {:>12} {:>12} {:>12} {:>14}",
        "hours", "years", "retention", "soft", "total BER", "retention used"
    );
    for (h, b) in rows {
        println!(
            "{h:>12.1} {:>9.3} {:>12.3e} {:>12.3e} {:>12.3e} {:>13.2}%",
            h / HOURS_PER_YEAR,
            b.retention,
            b.soft,
            b.total,
            100.0 * retention_budget_used(profile, h)
        );
    }
    Ok(())
}

/// The profile, the plan for the artifact, and the artifact's stored bits
/// (for the unprotected baseline).
pub fn make_plan(args: &PlanArgs) -> Result<(MissionProfile, Plan, usize)> {
    let plain = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let name = args.artifact.display().to_string();
    crate::aging::apply::plan_bytes(
        &name,
        &args.profile,
        &plain,
        args.frames,
        args.seed,
        &args.intervals,
    )
}

/// P(any stored bit of an unprotected model flipped over the lifetime).
pub fn unprotected_failure(profile: &MissionProfile, bits: usize) -> f64 {
    let ber = ber::ber(profile, profile.lifetime_hours()).total;
    -(bits as f64 * (-ber).ln_1p()).exp_m1()
}

fn print_plan(profile: &MissionProfile, plan: &Plan, plain_bits: usize, json: bool) {
    let unprotected = unprotected_failure(profile, plain_bits);
    if json {
        println!(
            "{}",
            json!({"profile": profile, "plan": plan, "chosen": plan.chosen(),
                "unprotected": {"bits": plain_bits, "lifetime_failure": unprotected}})
        );
        return;
    }
    println!(
        "{:<14} {:>10} {:>11} {:>10} {:>10} {:>12} {:>8} {:>9}",
        "code", "scrub", "BER(T)", "FER", "P(fail)", "refreshes", "flash B", "meets"
    );
    for (i, r) in plan.rows.iter().enumerate() {
        let interval = if r.scrubbed {
            format!("{:.0} h", r.interval_hours)
        } else {
            "never".into()
        };
        println!(
            "{:<14} {interval:>10} {:>11.2e} {:>9.1e}{} {:>10.1e} {:>12} {:>8} {:>9}",
            r.label,
            r.ber_at_interval,
            r.fer,
            if r.extrapolated { "*" } else { " " },
            r.lifetime_failure,
            r.refresh_cycles,
            r.stored_bytes,
            match (r.meets, plan.choice == Some(i)) {
                (true, true) => "CHOSEN",
                (true, false) => "yes",
                (false, _) if !r.endurance_ok => "wears out",
                _ => "no",
            }
        );
    }
    println!("  * FER extrapolated below the measured range along the fitted slope (an error floor would make it higher)");
    println!(
        "unprotected ({plain_bits} bits): P(any bit flipped over {} years) = {unprotected:.2e}",
        profile.lifetime_years
    );
    match plan.chosen() {
        Some(r) => println!(
            "plan: {} scrubbed {}: P(fail) {:.1e} ≤ target {:.0e}, {} B flash",
            r.label,
            if r.scrubbed {
                format!("every {:.0} h", r.interval_hours)
            } else {
                "never (no scrubbing needed)".into()
            },
            r.lifetime_failure,
            profile.target_failure,
            r.stored_bytes
        ),
        None => println!(
            "plan: no code and interval meets target {:.0e}; shorten the interval or relax the target",
            profile.target_failure
        ),
    }
}
