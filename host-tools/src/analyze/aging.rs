//! The aging section: whole lifetimes of the protected artifact under a
//! mission profile, played by [`crate::aging::simulate`] (the same code as
//! `sturdy aging simulate`), reshaped into curves for the report.

use super::report::{Aging, AgingCurve};
use crate::aging::profile::MissionProfile;
use crate::aging::simulate::{simulate, Checkpoint, Knobs};
use crate::npy::Samples;
use anyhow::{Context, Result};
use std::path::Path;

/// Lifetimes per configuration in `analyze` (fewer than `aging simulate`'s
/// default: the report shows the trend; the simulate command the tails).
pub const LIFETIMES: usize = 100;
/// Checkpoints per lifetime.
pub const CHECKPOINTS: usize = 10;

/// Simulates the protected artifact `protected` under the profile at
/// `profile_path` with the scrub interval of its recorded plan.
pub fn run(
    protected: &[u8],
    key: sturdy_runtime::protect::Key,
    profile_path: &Path,
    set: &Samples,
    labels: &[i64],
    (samples, seed): (usize, u64),
) -> Result<Aging> {
    let profile = MissionProfile::load(profile_path)?;
    let knobs = Knobs {
        lifetimes: LIFETIMES,
        checkpoints: CHECKPOINTS,
        limit: samples,
        seed,
    };
    let (clean, _) = crate::protect::load_host(protected, &key)
        .context("loading the protected artifact for the aging section")?;
    let plan = clean.meta.aging.as_ref().map_or_else(
        || "none recorded".to_string(),
        |p| {
            format!(
                "{}, scrub every {} h, planned lifetime failure {:.1e}{}",
                p.code,
                p.scrub_interval_hours,
                p.lifetime_failure,
                if p.extrapolated {
                    " (FER extrapolated below the measured range)"
                } else {
                    ""
                }
            )
        },
    );
    let report = simulate(
        "the protected artifact",
        protected.to_vec(),
        key,
        &profile,
        set,
        labels,
        knobs,
        None,
    )?;
    let n = knobs.lifetimes as f64;
    Ok(Aging {
        profile: profile_path.display().to_string(),
        lifetime_years: profile.lifetime_years,
        lifetimes: knobs.lifetimes,
        samples: samples.min(labels.len()),
        plan,
        clean_accuracy: report.clean_accuracy,
        curves: report
            .scenarios
            .iter()
            .map(|s| {
                // Year 0 is deployment: the clean model, nothing flipped yet.
                let pick = |at_deployment: f64, f: fn(&Checkpoint) -> f64| {
                    std::iter::once(at_deployment)
                        .chain(s.checkpoints.iter().map(f))
                        .collect::<Vec<f64>>()
                };
                let clean = report.clean_accuracy;
                AgingCurve {
                    name: s.name.clone(),
                    years: pick(0.0, |c| c.years),
                    raw_ber: pick(0.0, |c| c.raw_ber),
                    accuracy: pick(clean, |c| c.mean_accuracy),
                    worst_accuracy: pick(clean, |c| c.min_accuracy),
                    failed_fraction: std::iter::once(0.0)
                        .chain(s.checkpoints.iter().map(|c| c.failed_lifetimes as f64 / n))
                        .collect(),
                    uncorrectable_words: s.coded.then_some(s.uncorrectable_words),
                    lifetime_failure_estimate: s.lifetime_failure_estimate,
                }
            })
            .collect(),
    })
}
