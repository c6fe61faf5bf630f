//! The lifetime plan applied to an artifact: what `sturdy protect
//! --profile` and `sturdy analyze --profile` both do before coding it.

use super::candidates::{self, code_label};
use super::plan::{self, AppliedPlan, Plan, DEFAULT_INTERVALS_HOURS};
use super::profile::MissionProfile;
use anyhow::{Context, Result};
use std::path::Path;
use sturdy_runtime::ldpc::Code;

/// Frames per BER of the FER measurement (`aging plan`, `protect
/// --profile`, `analyze --profile`).
pub const DEFAULT_FRAMES: u32 = 400;
/// Seed of the FER measurement.
pub const DEFAULT_SEED: u64 = 2024;

/// Every code × scrub interval for the plain artifact `plain` (named `name`
/// in errors) under the profile at `profile`, with the artifact's bit count.
pub fn plan_bytes(
    name: &str,
    profile: &Path,
    plain: &[u8],
    frames: u32,
    seed: u64,
    intervals: &[f64],
) -> Result<(MissionProfile, Plan, usize)> {
    let mission = MissionProfile::load(profile)?;
    let (inner, _) = crate::protect::split_inner(plain)
        .with_context(|| format!("{name}: not a plain artifact"))?;
    let candidates = candidates::candidates(plain, frames, seed)?;
    let plan = plan::plan(&mission, &candidates, intervals)?;
    Ok((mission, plan, inner.len() * 8))
}

/// Plans the code for `profile` (as `sturdy aging plan` does) and records
/// the choice in the plain artifact's metadata: the artifact to code, and
/// the code to code it with.
pub fn apply_plan(name: &str, profile: &Path, plain: &[u8]) -> Result<(Vec<u8>, Code)> {
    let (mission, plan, _) = plan_bytes(
        name,
        profile,
        plain,
        DEFAULT_FRAMES,
        DEFAULT_SEED,
        DEFAULT_INTERVALS_HOURS,
    )?;
    let row = plan.chosen().with_context(|| {
        format!(
            "{}: no code and scrub interval meets target_failure {:.0e}; see `sturdy aging plan`",
            profile.display(),
            mission.target_failure
        )
    })?;
    let code = Code::ALL
        .into_iter()
        .find(|c| code_label(c) == row.label)
        .context("the plan chose an unknown code")?;
    let mut meta = crate::host_model::HostModel::from_bytes(plain)
        .with_context(|| format!("{name}: not a plain artifact"))?
        .meta;
    meta.aging = Some(AppliedPlan {
        profile: profile.display().to_string(),
        lifetime_years: mission.lifetime_years,
        target_failure: mission.target_failure,
        code: row.label.clone(),
        scrub_interval_hours: row.interval_hours,
        lifetime_failure: row.lifetime_failure,
        ber_at_interval: row.ber_at_interval,
        extrapolated: row.extrapolated,
    });
    eprintln!(
        "lifetime plan for {}: {}, scrub {}, P(fail) {:.1e}",
        profile.display(),
        row.label,
        if row.scrubbed {
            format!("every {} h", row.interval_hours)
        } else {
            "never".into()
        },
        row.lifetime_failure
    );
    let meta = serde_json::to_vec(&meta)?;
    let plain =
        crate::artifact_writer::with_section(plain, sturdy_runtime::format::SECTION_META, &meta)?;
    Ok((plain, code))
}
