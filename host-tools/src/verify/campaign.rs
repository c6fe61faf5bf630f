//! One property per sample, decided on every core, counted into a row:
//! what `sturdy verify` prints and the analysis report's verification
//! table shows.

use super::bounds::Bounder;
use super::property::Property;
use super::search::{decide, Budget, Outcome, Status};
use crate::analyze::progress::bar;
use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// How one kind of property fared over the samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The property, e.g. `±2 codes` or `blur σ=0.5`.
    pub property: String,
    /// Samples tried.
    pub samples: usize,
    /// Proved for every input of the sample's region.
    pub proved: usize,
    /// With a confirmed counterexample.
    pub falsified: usize,
    /// Neither within the region budget.
    pub unknown: usize,
    /// `proved / samples`.
    pub certified_fraction: f64,
    /// Share of samples the runtime labels right (with labels).
    pub accuracy: Option<f64>,
    /// Share labelled right *and* proved (with labels).
    pub certified_accuracy: Option<f64>,
    /// Mean wall time per sample, seconds (one core's share).
    pub seconds_per_sample: f64,
}

/// Decides every property on every core; the outcome of property `i` is
/// seeded by `seed + i`, so results do not depend on the thread count.
pub fn decide_all(
    bounder: &Bounder<'_>,
    props: &[Property],
    budget: Budget,
    seed: u64,
    what: &str,
) -> Result<Vec<Outcome>> {
    let progress = bar(props.len() as u64, what);
    let out = props
        .par_iter()
        .enumerate()
        .map(|(i, p)| {
            let o = decide(bounder, p, budget, seed.wrapping_add(i as u64))
                .with_context(|| p.name.clone());
            progress.inc(1);
            o
        })
        .collect();
    progress.finish_and_clear();
    out
}

/// Counts `outcomes` (one per sample, about the runtime's label
/// `predicted[i]`) into a row; `labels` adds the accuracies.
pub fn tally(
    property: String,
    outcomes: &[Outcome],
    predicted: &[usize],
    labels: Option<&[i64]>,
) -> Tally {
    let n = outcomes.len();
    let share = |k: usize| k as f64 / n.max(1) as f64;
    let proved = outcomes
        .iter()
        .filter(|o| o.status == Status::Proved)
        .count();
    let falsified = outcomes
        .iter()
        .filter(|o| matches!(o.status, Status::Falsified(_)))
        .count();
    let right = |i: usize| {
        labels
            .and_then(|l| l.get(i))
            .is_some_and(|&l| l == predicted[i] as i64)
    };
    let certified = (0..n)
        .filter(|&i| right(i) && outcomes[i].status == Status::Proved)
        .count();
    Tally {
        property,
        samples: n,
        proved,
        falsified,
        unknown: n - proved - falsified,
        certified_fraction: share(proved),
        accuracy: labels.map(|_| share((0..n).filter(|&i| right(i)).count())),
        certified_accuracy: labels.map(|_| share(certified)),
        seconds_per_sample: outcomes.iter().map(|o| o.seconds).sum::<f64>() / n.max(1) as f64,
    }
}

/// Local robustness at each radius of `eps` and, for image inputs, blur
/// tolerance at each `sigmas`: one row each, over `samples` (int8 inputs).
pub fn label_campaign(
    bounder: &Bounder<'_>,
    samples: &[Vec<i8>],
    labels: Option<&[i64]>,
    eps: &[u8],
    sigmas: &[f64],
    budget: Budget,
    seed: u64,
) -> Result<Vec<Tally>> {
    let predicted: Vec<usize> = samples
        .iter()
        .map(|x| bounder.label(x))
        .collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for &e in eps {
        let props: Vec<Property> = samples
            .iter()
            .zip(&predicted)
            .map(|(x, &c)| super::robustness(x, c, e))
            .collect();
        let what = format!("±{e} codes");
        let outcomes = decide_all(bounder, &props, budget, seed, &what)?;
        rows.push(tally(what, &outcomes, &predicted, labels));
    }
    let dims = bounder.input_dims();
    for &sigma in sigmas {
        let props: Vec<Property> = samples
            .iter()
            .zip(&predicted)
            .map(|(x, &c)| super::blur(x, &dims, sigma, c))
            .collect::<Result<_>>()?;
        let what = format!("blur σ={sigma}");
        let outcomes = decide_all(bounder, &props, budget, seed, &what)?;
        rows.push(tally(what, &outcomes, &predicted, labels));
    }
    Ok(rows)
}
