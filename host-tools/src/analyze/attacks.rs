//! Section 4: the three parameter-attack families PARDEF defends against,
//! each measured on the plain artifact and carried to the protected forms.

use super::bfa;
use super::knobs::Knobs;
use super::report::{Attacks, Bfa};
use super::subject::Subject;
use super::transfer::{changed_bits, transfers};
use super::{damage, progress};
use anyhow::Result;

/// Accuracy the attack aims below (the literature's "≈ random guess" for
/// ten classes, e.g. Rakin et al.'s 11 %).
pub const BREAK_ACCURACY: f64 = 0.11;

/// Runs the bit-flip attack (with labels), the noise and the structured
/// campaigns.
pub fn run(s: &Subject, k: &Knobs) -> Result<Attacks> {
    let bfa = if s.labelled() && s.classes > 1 {
        Some(bit_flip_attack(s, k)?)
    } else {
        None
    };
    let bar = progress::bar(damage::work(s, k), "noise, channels");
    let noise = damage::noise(s, k, &bar)?;
    let structured = damage::structured(s, k, &bar)?;
    bar.finish_and_clear();
    Ok(Attacks {
        bfa,
        noise,
        structured,
    })
}

/// The attack batch is the first `attack_samples` samples; accuracy is
/// measured on the next `samples` (disjoint), so the attack cannot just
/// memorise its own batch.
fn bit_flip_attack(s: &Subject, k: &Knobs) -> Result<Bfa> {
    let attack_batch = s.batch.head(k.attack_samples);
    let eval = s.batch.slice(k.attack_samples, k.samples);
    let eval = if eval.is_empty() {
        attack_batch.clone()
    } else {
        eval
    };
    let chance = 1.0 / s.classes as f64;
    let bar = progress::bar(k.max_flips as u64, "bit-flip attack");
    let found = bfa::attack(
        &s.plain,
        &s.layers,
        &attack_batch,
        &eval,
        k.max_flips,
        chance,
        &bar,
    )?;
    bar.finish_and_clear();
    let first_at = |level: f64| found.curve.iter().position(|&a| a <= level);
    let bits = changed_bits(&s.plain, &found.bytes)?;
    Ok(Bfa {
        attack_samples: attack_batch.len(),
        eval_samples: eval.len(),
        max_flips: k.max_flips,
        plain_curve: found.curve.clone(),
        chance,
        flips_to_11: first_at(BREAK_ACCURACY),
        flips_to_chance: first_at(chance),
        transfers: transfers(s, &bits, &eval)?,
        flips: found.flips,
    })
}
