//! Section 3: random faults in stored parameters and in activations.
//!
//! - a stored-bit error rate sweep over the plain artifact's weights
//!   section and, with a key, the protected artifact's coded image;
//! - a layer × bit-position heatmap: bit `b` of `heat_flips` random weight
//!   codes of one layer (or a bit of its biases, multipliers, shifts);
//! - stuck-at-0/1 bits in the plain weights section;
//! - one random bit flip per inference in one op's output (the arena).
//!
//! Each point runs `seeds` times with seeds derived from the point alone.

use super::batch::{argmax_i8, outcome, Batch, Outcome};
use super::knobs::Knobs;
use super::layers::WeightLayer;
use super::report::{Faults, Heatmap, OpFault, SweepPoint};
use super::stats::{rate_estimate, task_seed};
use super::subject::Subject;
use crate::fsutil::AlignedBytes;
use crate::protect::inject::{flip_bits, flip_positions, region_range, Region};
use anyhow::{anyhow, Result};
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use indicatif::ProgressBar;
use rayon::prelude::*;
use sturdy_runtime::Model;

/// Bit error rates of the sweep.
pub const BERS: [f64; 5] = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2];
/// Stuck-at rates.
pub const STUCK_RATES: [f64; 3] = [1e-4, 1e-3, 1e-2];

/// What one faulty run gave: bits changed and the outcome (`None`: the
/// loader refused the artifact, a detected fault).
type Run = (usize, Option<Outcome>);

/// Scores the (possibly refused) faulty `plain` bytes on `batch`.
fn score(plain: Option<Vec<u8>>, batch: &Batch, clean: &[usize]) -> Result<Option<Outcome>> {
    let Some(bytes) = plain else { return Ok(None) };
    let aligned = AlignedBytes::new(&bytes);
    if Model::parse(aligned.as_bytes()).is_err() {
        return Ok(None);
    }
    // A damaged parameter the runtime rejects mid-inference (a shift out
    // of range) is a detected fault too.
    Ok(batch
        .predictions(&bytes)
        .ok()
        .map(|p| outcome(&p, clean, batch.labels.as_deref())))
}

/// Folds the runs of one point into a sweep point.
fn point(variant: &str, x: f64, runs: &[Run]) -> SweepPoint {
    let scored: Vec<&Outcome> = runs.iter().filter_map(|(_, o)| o.as_ref()).collect();
    let take =
        |f: fn(&Outcome) -> f64| rate_estimate(&scored.iter().map(|o| f(o)).collect::<Vec<_>>());
    SweepPoint {
        variant: variant.into(),
        x,
        accuracy: take(|o| o.accuracy),
        sdc_rate: take(|o| o.sdc_rate),
        correction_rate: take(|o| o.correction_rate),
        flips: runs.iter().map(|r| r.0 as f64).sum::<f64>() / runs.len().max(1) as f64,
        refused: (runs.len() - scored.len()) as u32,
    }
}

/// Runs every campaign of the section.
pub fn run(s: &Subject, k: &Knobs, bar: &ProgressBar) -> Result<Faults> {
    let batch = s.batch.head(k.samples);
    let clean = batch.predictions(&s.plain)?;
    let clean_accuracy = outcome(&clean, &clean, batch.labels.as_deref()).accuracy;
    let mut ber_sweep = sweep(s, k, &batch, &clean, bar)?;
    let stuck_at = stuck(s, k, &batch, &clean, bar)?;
    ber_sweep.sort_by(|a, b| a.variant.cmp(&b.variant).then(a.x.total_cmp(&b.x)));
    let heat = batch.head(k.heat_samples);
    let heat_clean = &clean[..heat.len()];
    Ok(Faults {
        clean_accuracy,
        samples: batch.len(),
        ber_sweep,
        layer_bits: Some(layer_bits(s, k, &heat, heat_clean, bar)?),
        stuck_at,
        activations: activations(s, k, &heat, heat_clean, bar)?,
    })
}

/// Progress units the section reports (for the bar's length).
pub fn work(s: &Subject, k: &Knobs) -> u64 {
    let variants = 1 + u64::from(s.protected.is_some());
    let per = u64::from(k.seeds);
    let cells = s.layers.len() as u64 * COLUMNS.len() as u64;
    (variants * BERS.len() as u64 + 2 * STUCK_RATES.len() as u64 + cells) * per
        + s.meta.ops.len() as u64 * per
}

fn sweep(
    s: &Subject,
    k: &Knobs,
    batch: &Batch,
    clean: &[usize],
    bar: &ProgressBar,
) -> Result<Vec<SweepPoint>> {
    let plain_range = region_range(&s.plain, Region::Weights)?;
    let mut variants: Vec<&str> = vec!["plain"];
    if s.protected.is_some() {
        variants.push("protected");
    }
    let tasks: Vec<(usize, usize, u32)> = (0..variants.len())
        .flat_map(|v| (0..BERS.len()).flat_map(move |b| (0..k.seeds).map(move |r| (v, b, r))))
        .collect();
    let runs: Vec<Run> = tasks
        .par_iter()
        .map(|&(v, b, r)| -> Result<Run> {
            let seed = task_seed(k.base_seed, variants[v], b, r);
            let run = match (variants[v], &s.protected) {
                ("protected", Some(p)) => {
                    let mut bytes = p.bytes.clone();
                    let range = region_range(&bytes, Region::Weights)?;
                    let flips = flip_bits(&mut bytes, range, BERS[b], seed)?.len();
                    (flips, score(p.recover(&bytes), batch, clean)?)
                }
                _ => {
                    let mut bytes = s.plain.clone();
                    let flips = flip_bits(&mut bytes, plain_range.clone(), BERS[b], seed)?.len();
                    (flips, score(Some(bytes), batch, clean)?)
                }
            };
            bar.inc(1);
            Ok(run)
        })
        .collect::<Result<_>>()?;
    Ok(tasks
        .chunks(k.seeds as usize)
        .zip(runs.chunks(k.seeds as usize))
        .map(|(t, r)| point(variants[t[0].0], BERS[t[0].1], r))
        .collect())
}

fn stuck(
    s: &Subject,
    k: &Knobs,
    batch: &Batch,
    clean: &[usize],
    bar: &ProgressBar,
) -> Result<Vec<SweepPoint>> {
    let range = region_range(&s.plain, Region::Weights)?;
    let mut out = Vec::new();
    for level in [0u8, 1] {
        let name = format!("stuck-at-{level}");
        for (i, &rate) in STUCK_RATES.iter().enumerate() {
            let runs: Vec<Run> = (0..k.seeds)
                .into_par_iter()
                .map(|r| -> Result<Run> {
                    let mut bytes = s.plain.clone();
                    let seed = task_seed(k.base_seed, &name, i, r);
                    let mut changed = 0;
                    for at in flip_positions(range.len() * 8, rate, seed)? {
                        let (byte, bit) = (range.start + at / 8, at % 8);
                        let before = bytes[byte];
                        bytes[byte] = if level == 1 {
                            before | 1 << bit
                        } else {
                            before & !(1 << bit)
                        };
                        changed += usize::from(before != bytes[byte]);
                    }
                    bar.inc(1);
                    Ok((changed, score(Some(bytes), batch, clean)?))
                })
                .collect::<Result<_>>()?;
            out.push(point(&name, rate, &runs));
        }
    }
    Ok(out)
}

/// The heatmap's columns: weight bits, bias bytes, requantization fields.
pub const COLUMNS: [&str; 14] = [
    "w bit 0",
    "w bit 1",
    "w bit 2",
    "w bit 3",
    "w bit 4",
    "w bit 5",
    "w bit 6",
    "w bit 7",
    "bias bits 0–7",
    "bias bits 8–15",
    "bias bits 16–23",
    "bias bits 24–31",
    "multiplier",
    "shift",
];

/// The file bits one heatmap cell flips: `flips` distinct targets of
/// `layer`'s column `column`, drawn from `rng`. `None`: the column does
/// not exist for this layer (bits 4–7 of an int4 code).
pub fn cell_bits(
    layer: &WeightLayer,
    column: usize,
    flips: usize,
    rng: &mut ChaCha20Rng,
) -> Option<Vec<usize>> {
    let mut pick = |n: usize| -> Vec<usize> {
        let mut chosen: Vec<usize> = Vec::new();
        while chosen.len() < flips.min(n) {
            let i = (rng.next_u64() % n as u64) as usize;
            if !chosen.contains(&i) {
                chosen.push(i);
            }
        }
        chosen
    };
    let word_bit = |range: &std::ops::Range<usize>, i: usize, bit: u64| {
        (range.start + 4 * i) * 8 + bit as usize
    };
    match column {
        0..=7 => {
            let bit = column as u8;
            (bit < layer.code_bits()).then(|| {
                pick(layer.count)
                    .into_iter()
                    .map(|i| layer.bit_position(i, bit))
                    .collect()
            })
        }
        8..=11 => {
            let low = 8 * (column - 8) as u64;
            let channels = pick(layer.channels);
            Some(
                channels
                    .into_iter()
                    .map(|c| word_bit(&layer.bias, c, low + rng.next_u64() % 8))
                    .collect(),
            )
        }
        _ => {
            let range = if column == 12 {
                &layer.multipliers
            } else {
                &layer.shifts
            };
            let channels = pick(layer.channels);
            Some(
                channels
                    .into_iter()
                    .map(|c| word_bit(range, c, rng.next_u64() % 32))
                    .collect(),
            )
        }
    }
}

fn layer_bits(
    s: &Subject,
    k: &Knobs,
    batch: &Batch,
    clean: &[usize],
    bar: &ProgressBar,
) -> Result<Heatmap> {
    let tasks: Vec<(usize, usize)> = (0..s.layers.len())
        .flat_map(|l| (0..COLUMNS.len()).map(move |c| (l, c)))
        .collect();
    let cells: Vec<Option<f64>> = tasks
        .par_iter()
        .map(|&(l, c)| -> Result<Option<f64>> {
            let layer = &s.layers[l];
            let mut sdc = Vec::new();
            for r in 0..k.seeds {
                bar.inc(1);
                let mut rng = ChaCha20Rng::seed_from_u64(task_seed(
                    k.base_seed,
                    "layer-bits",
                    l * COLUMNS.len() + c,
                    r,
                ));
                let Some(bits) = cell_bits(layer, c, k.heat_flips, &mut rng) else {
                    continue;
                };
                let mut bytes = s.plain.clone();
                crate::protect::attack::flip(&mut bytes, &bits);
                if let Some(o) = score(Some(bytes), batch, clean)? {
                    sdc.push(o.sdc_rate);
                }
            }
            Ok((!sdc.is_empty()).then(|| sdc.iter().sum::<f64>() / sdc.len() as f64))
        })
        .collect::<Result<_>>()?;
    Ok(Heatmap {
        value: format!(
            "SDC rate: {} targets of the layer get the bit flipped, mean over {} seeds",
            k.heat_flips, k.seeds
        ),
        rows: s.layers.iter().map(|l| l.node.clone()).collect(),
        columns: COLUMNS.iter().map(|c| c.to_string()).collect(),
        cells: cells.chunks(COLUMNS.len()).map(<[_]>::to_vec).collect(),
    })
}

/// One inference with one random bit of op `target`'s output flipped
/// right after the op ran.
fn upset_inference(
    model: &Model<'_>,
    input: &[i8],
    domain: Option<u32>,
    target: usize,
    seed: u64,
) -> Result<usize> {
    let err = |e| anyhow!("inference failed: {e}");
    let mut arena = crate::host_model::load_input(model, input, domain)?;
    for i in 0..model.op_count() {
        model.invoke_op(i, &mut arena).map_err(err)?;
        if i == target {
            let op = model.op(i).map_err(err)?;
            let t = model
                .artifact()
                .tensor(op.record.output as usize)
                .map_err(err)?;
            let bit = ChaCha20Rng::seed_from_u64(seed).next_u64() % (u64::from(t.len) * 8).max(1);
            arena[t.offset as usize + (bit / 8) as usize] ^= 1 << (bit % 8);
        }
    }
    Ok(argmax_i8(model.output(&arena).map_err(err)?))
}

fn activations(
    s: &Subject,
    k: &Knobs,
    batch: &Batch,
    clean: &[usize],
    bar: &ProgressBar,
) -> Result<Vec<OpFault>> {
    let aligned = AlignedBytes::new(&s.plain);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    (0..model.op_count())
        .map(|op| {
            let sdc: Vec<f64> = (0..k.seeds)
                .map(|r| -> Result<f64> {
                    bar.inc(1);
                    let predictions: Vec<usize> = (0..batch.len())
                        .into_par_iter()
                        .map(|i| {
                            let seed =
                                task_seed(k.base_seed, "activation", op * batch.len() + i, r);
                            let domain = batch.domains.as_ref().map(|d| d[i]);
                            upset_inference(&model, &batch.inputs[i], domain, op, seed)
                        })
                        .collect::<Result<_>>()?;
                    Ok(outcome(&predictions, clean, batch.labels.as_deref()).sdc_rate)
                })
                .collect::<Result<_>>()?;
            Ok(OpFault {
                index: op,
                node: s
                    .meta
                    .ops
                    .get(op)
                    .map(|m| m.node.clone())
                    .unwrap_or_default(),
                flips: 1,
                sdc_rate: rate_estimate(&sdc),
            })
        })
        .collect()
}
