//! `sturdy aging timing`: when the aging logic's late paths start and how
//! many output bits they get wrong over the mission.

use crate::aging::profile::MissionProfile;
use crate::aging::timing::LogicAging;
use anyhow::Result;
use serde_json::json;
use std::path::PathBuf;

/// Options of `sturdy aging timing` (defaults and sources: the module docs
/// of `aging::timing`, repeated in `--help`).
#[derive(Debug, Clone, clap::Args)]
pub struct TimingModelArgs {
    /// A mission profile (TOML): its lifetime and temperature mix. Without
    /// one: --years at --celsius.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Service life without a profile, years.
    #[arg(long, default_value_t = 10.0)]
    years: f64,
    /// Operating temperature without a profile, °C.
    #[arg(long, default_value_t = 85.0)]
    celsius: f64,
    /// Clock margin over the fresh critical path (0.02: 2 %).
    #[arg(long, default_value_t = LogicAging::default().guardband)]
    guardband: f64,
    /// NBTI anchor: ΔVth in mV after 10 years at 125 °C (set it from your process).
    #[arg(long, default_value_t = LogicAging::default().dvth_ref_mv)]
    dvth_ref_mv: f64,
    /// NBTI activation energy, eV (Bhardwaj et al., CICC 2006).
    #[arg(long, default_value_t = LogicAging::default().ea_ev)]
    ea_ev: f64,
    /// Supply voltage, V.
    #[arg(long, default_value_t = LogicAging::default().vdd)]
    vdd: f64,
    /// Fresh threshold voltage, V.
    #[arg(long, default_value_t = LogicAging::default().vt0)]
    vt0: f64,
    /// Wrong output bits per bit when the first path turns late (assumed).
    #[arg(long, default_value_t = LogicAging::default().onset_rate)]
    onset_rate: f64,
    /// Extra delay that multiplies the rate by ten (assumed; Razor's wall).
    #[arg(long, default_value_t = LogicAging::default().decade_delay)]
    decade_delay: f64,
    /// Points, log-spaced from a day to the end of life.
    #[arg(long, default_value_t = 10)]
    points: usize,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs `sturdy aging timing`.
pub fn main(args: TimingModelArgs) -> Result<()> {
    let model = LogicAging {
        vdd: args.vdd,
        vt0: args.vt0,
        ea_ev: args.ea_ev,
        dvth_ref_mv: args.dvth_ref_mv,
        guardband: args.guardband,
        onset_rate: args.onset_rate,
        decade_delay: args.decade_delay,
        ..LogicAging::default()
    };
    anyhow::ensure!(
        model.vdd > model.vt0 && model.guardband >= 0.0,
        "need --vdd above --vt0 and a guardband ≥ 0"
    );
    let (lifetime, mix) = match &args.profile {
        Some(path) => {
            let p = MissionProfile::load(path)?;
            let mix = p.temperature.iter().map(|t| (t.celsius, t.share)).collect();
            (p.lifetime_years, mix)
        }
        None => (args.years, vec![(args.celsius, 1.0)]),
    };
    let af = model.mix_acceleration(&mix);
    let onset = model.onset_years(af);
    let rows = model.timeline(lifetime, af, args.points);
    let end = model.at(lifetime, af);
    if args.json {
        println!(
            "{}",
            json!({"model": model, "lifetime_years": lifetime, "temperatures": mix,
                "acceleration": af, "onset_years": onset, "end_of_life": end, "timeline": rows})
        );
        return Ok(());
    }
    println!(
        "{:>10} {:>10} {:>10} {:>14}",
        "years", "ΔVth mV", "delay", "wrong bits/bit"
    );
    for r in &rows {
        println!(
            "{:>10.3} {:>10.2} {:>9.2}% {:>14.2e}",
            r.years,
            r.dvth_mv,
            100.0 * (r.delay_factor - 1.0),
            r.bit_rate
        );
    }
    if onset <= lifetime {
        println!(
            "late paths start at {onset:.3} years ({:.0} h; {:.0} % guardband); at end of life {:.2e} wrong bits per bit",
            onset * crate::aging::profile::HOURS_PER_YEAR,
            100.0 * model.guardband,
            end.bit_rate
        );
        println!(
            "try it: sturdy run ARTIFACT --input X --labels Y --timing-faults {:.1e} --guard-policy redundant",
            end.bit_rate.max(1e-9)
        );
    } else {
        // Onsets far past the life are only "never" in practice: say so in
        // a readable magnitude rather than with ten digits.
        let onset = if onset < 1e4 {
            format!("{onset:.1}")
        } else {
            format!("{onset:.1e}")
        };
        println!(
            "late paths start at {onset} years, after the {lifetime}-year life: the {:.0} % guardband holds",
            100.0 * model.guardband
        );
    }
    Ok(())
}
