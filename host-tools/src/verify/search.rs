//! Deciding one property: bound it, look for a counterexample, then split
//! the region until every part is proved or the budget is spent.

use super::bounds::Bounder;
use super::property::{Condition, Property, Region};
use crate::analyze::backward::input_gradient;
use crate::analyze::tape::{logits_op, Tape};
use anyhow::Result;
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use std::time::Instant;

/// How hard to try before answering "unknown".
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Regions bounded at most (the root counts; each split adds two).
    pub regions: usize,
    /// Random inputs tried as counterexamples.
    pub random: usize,
    /// Gradient-guided steps of the counterexample search.
    pub steps: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            regions: 64,
            random: 64,
            steps: 32,
        }
    }
}

/// How a property ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// True for every input of the region, for the bits the runtime
    /// computes.
    Proved,
    /// This input of the region violates it (confirmed by running it).
    Falsified(Vec<i8>),
    /// Neither, within the budget.
    Unknown,
}

impl Status {
    /// `proved`, `falsified` or `unknown`.
    pub fn word(&self) -> &'static str {
        match self {
            Status::Proved => "proved",
            Status::Falsified(_) => "falsified",
            Status::Unknown => "unknown",
        }
    }
}

/// The answer for one property.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The verdict.
    pub status: Status,
    /// Regions bounded.
    pub regions: usize,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Decides `prop` on `bounder`'s model within `budget` (the search is
/// seeded by `seed`, so a run repeats).
pub fn decide(
    bounder: &Bounder<'_>,
    prop: &Property,
    budget: Budget,
    seed: u64,
) -> Result<Outcome> {
    let start = Instant::now();
    let done = |status, regions| Outcome {
        status,
        regions,
        seconds: start.elapsed().as_secs_f64(),
    };
    let root = &prop.region;
    let cond = prop.condition;
    if cond.proved_by(&bounder.scores(&root.hull())?) {
        return Ok(done(Status::Proved, 1));
    }
    if let Some(x) = counterexample(bounder, root, cond, budget, seed)? {
        return Ok(done(Status::Falsified(x), 1));
    }
    let mut open = vec![root.clone()];
    let mut bounded = 1;
    while let Some(region) = open.pop() {
        let centre = region.center();
        if !cond.holds_at(bounder, &centre)? {
            return Ok(done(Status::Falsified(centre), bounded));
        }
        if bounded + 2 > budget.regions {
            return Ok(done(Status::Unknown, bounded));
        }
        let priority = gradient(bounder, &centre, cond).ok();
        let Some((a, b)) = region.split(priority.as_deref()) else {
            // A single input that holds (checked above) but is not
            // proved: its scores are exact, but the rule through a final
            // Softmax is only sufficient.
            return Ok(done(Status::Unknown, bounded));
        };
        for part in [a, b] {
            bounded += 1;
            if !cond.proved_by(&bounder.scores(&part.hull())?) {
                open.push(part);
            }
        }
    }
    Ok(done(Status::Proved, bounded))
}

/// Random inputs of the region, then a signed-gradient descent on the
/// condition's loss from the centre (boxes) — each candidate confirmed by
/// running it through the runtime. `None`: none found within `budget`.
pub fn counterexample(
    bounder: &Bounder<'_>,
    region: &Region,
    cond: Condition,
    budget: Budget,
    seed: u64,
) -> Result<Option<Vec<i8>>> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    for _ in 0..budget.random {
        let x = region.point(&mut u);
        if !cond.holds_at(bounder, &x)? {
            return Ok(Some(x));
        }
    }
    let Region::Box(b) = region else {
        return Ok(None);
    };
    let width =
        b.lo.iter()
            .zip(&b.hi)
            .map(|(l, h)| i32::from(*h) - i32::from(*l))
            .max()
            .unwrap_or(0);
    let step = (width / 4).max(1);
    let mut x = b.center();
    for _ in 0..budget.steps {
        let Ok(g) = gradient(bounder, &x, cond) else {
            break;
        };
        for (v, &d) in x.iter_mut().zip(&g) {
            let moved = i32::from(*v) - step * d.signum() as i32 * i32::from(d != 0.0);
            *v = moved.clamp(-128, 127) as i8;
        }
        b.project(&mut x);
        if !cond.holds_at(bounder, &x)? {
            return Ok(Some(x));
        }
    }
    Ok(None)
}

/// ∂(condition loss)/∂(input code) at `x`, through the integer model's
/// straight-through backward pass.
fn gradient(bounder: &Bounder<'_>, x: &[i8], cond: Condition) -> Result<Vec<f32>> {
    let model = bounder.model();
    let tape = Tape::record(model, x, None)?;
    let (last, from) = logits_op(model)?;
    let seed = cond.seed(tape.get(from));
    input_gradient(model, &tape, last, from, seed)
}
