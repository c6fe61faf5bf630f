//! The Bit-Flip Attack (progressive bit search, Rakin et al., ICCV 2019)
//! on the public plain artifact, one committed flip at a time:
//!
//! 1. the loss gradient with respect to every weight code, summed over the
//!    attack batch ([`super::backward`], at the runtime's own activations);
//! 2. in each layer, the `CANDIDATES` bit flips with the largest
//!    first-order loss increase `g · Δ` (`Δ` the code change the flip makes:
//!    |g| × bit weight with the direction check folded in);
//! 3. each candidate applied to the real artifact and its attack-batch loss
//!    measured with the runtime; the flip that reaches the highest loss
//!    over all layers is committed.

use super::backward::{backward, Gradients};
use super::batch::Batch;
use super::layers::WeightLayer;
use super::report::BitFlip;
use super::tape::{logits_op, real, Tape};
use crate::fsutil::AlignedBytes;
use anyhow::{anyhow, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;
use sturdy_runtime::format::TensorRecord;
use sturdy_runtime::Model;

/// Candidate flips per layer whose real loss is measured each step.
pub const CANDIDATES: usize = 4;

/// How far past the decision boundary a sample's loss still counts, in
/// logit codes.
///
/// The loss is the logit margin `max_{j≠y} z_j − z_y` (Carlini–Wagner's),
/// not Rakin et al.'s cross-entropy: int8 logits saturate, and once a
/// sample's scores sit at −128 and 127 its softmax is 1.0 in floating point,
/// so cross-entropy and its gradient vanish exactly where the attack still
/// has work to do (measured: the search stalled at 12 % on the bundled
/// CNN, every remaining correct sample saturated). The margin's gradient is
/// ±1 on two scores whatever their size. Capping it a few codes past the
/// boundary stops samples that are already wrong from steering the search.
pub const LOSS_CAP_CODES: f64 = 4.0;

/// What the attack found.
#[derive(Debug, Clone)]
pub struct Attack {
    /// The flips, in commit order.
    pub flips: Vec<BitFlip>,
    /// The artifact after every flip.
    pub bytes: Vec<u8>,
    /// Accuracy on the evaluation batch after 0, 1, … flips.
    pub curve: Vec<f64>,
}

/// Mean capped margin loss ([`LOSS_CAP_CODES`]) of `batch` under artifact `bytes`, taken on the
/// logits (the scores before a final Softmax).
pub fn loss(bytes: &[u8], batch: &Batch) -> Result<f64> {
    let aligned = AlignedBytes::new(bytes);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let (labels, _, record) = scored(&model, batch)?;
    let cap = LOSS_CAP_CODES * f64::from(f32::from_bits(record.scale_bits));
    let total: f64 = (0..batch.len())
        .into_par_iter()
        .map(|i| -> Result<f64> {
            let domain = batch.domains.as_ref().map(|d| d[i]);
            let mut arena = crate::host_model::load_input(&model, &batch.inputs[i], domain)?;
            model
                .invoke(&mut arena)
                .map_err(|e| anyhow!("sample {i}: {e}"))?;
            let at = record.offset as usize;
            let z: Vec<f32> = arena[at..at + record.len as usize]
                .iter()
                .map(|&q| real(&record, q as i8))
                .collect();
            let y = usize::try_from(labels[i]).unwrap_or(0);
            Ok(margin(&z, y).0.min(cap))
        })
        .sum::<Result<f64>>()?;
    Ok(total / batch.len().max(1) as f64)
}

/// What both the loss and its gradient read: the labels, the op that
/// writes the logits, their tensor and its record.
fn scored<'b>(
    model: &Model<'_>,
    batch: &'b Batch,
) -> Result<(&'b [i64], (usize, usize), TensorRecord)> {
    let labels = batch
        .labels
        .as_deref()
        .ok_or_else(|| anyhow!("the attack needs labels"))?;
    let (last, logits) = logits_op(model)?;
    let record = *model
        .artifact()
        .tensor(logits)
        .map_err(|e| anyhow!("{e}"))?;
    Ok((labels, (last, logits), record))
}

/// The margin `max_{j≠y} z_j − z_y` and the rival class `j` that attains it.
fn margin(z: &[f32], y: usize) -> (f64, usize) {
    let truth = z.get(y).copied().unwrap_or(f32::NEG_INFINITY);
    let (rival, best) = z.iter().enumerate().filter(|&(j, _)| j != y).fold(
        (0, f32::NEG_INFINITY),
        |acc, (j, &v)| if v > acc.1 { (j, v) } else { acc },
    );
    (f64::from(best) - f64::from(truth), rival)
}

/// ∂(mean capped margin loss)/∂(weight code) over `batch`, per op.
pub fn gradients(bytes: &[u8], batch: &Batch) -> Result<Gradients> {
    let aligned = AlignedBytes::new(bytes);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let (labels, (last, logits), record) = scored(&model, batch)?;
    let s = f32::from_bits(record.scale_bits);
    let n = batch.len().max(1) as f32;
    let zero = Gradients::zeros(&model)?;
    (0..batch.len())
        .into_par_iter()
        .map(|i| -> Result<Gradients> {
            let domain = batch.domains.as_ref().map(|d| d[i]);
            let tape = Tape::record(&model, &batch.inputs[i], domain)?;
            let z: Vec<f32> = tape.get(logits).iter().map(|&q| real(&record, q)).collect();
            let y = usize::try_from(labels[i]).unwrap_or(0);
            let (m, rival) = margin(&z, y);
            let mut seed = vec![0f32; z.len()];
            // A capped sample contributes a constant: no gradient.
            if m < LOSS_CAP_CODES * f64::from(s) && y < z.len() {
                seed[rival] += s / n;
                seed[y] -= s / n;
            }
            let mut g = zero.clone();
            backward(&model, &tape, last, logits, seed, &mut g)?;
            Ok(g)
        })
        .try_reduce(
            || zero.clone(),
            |mut a, b| {
                for (x, y) in a.weights.iter_mut().zip(b.weights) {
                    if let (Some(x), Some(y)) = (x, y) {
                        x.iter_mut().zip(y).for_each(|(u, v)| *u += v);
                    }
                }
                Ok(a)
            },
        )
}

/// The `count` flips of `layer` with the largest predicted loss increase
/// `g · Δ` (positive only): `(code index, bit)`.
pub fn top_flips(
    layer: &WeightLayer,
    codes: &[i8],
    grad: &[f32],
    count: usize,
) -> Vec<(usize, u8)> {
    let mut scored: Vec<(f32, usize, u8)> = Vec::new();
    let bits = layer.code_bits();
    for (i, (&q, &g)) in codes.iter().zip(grad).enumerate() {
        for bit in 0..bits {
            let delta = flipped_code(q, bit, bits) as f32 - f32::from(q);
            let gain = g * delta;
            if gain > 0.0 {
                scored.push((gain, i, bit));
            }
        }
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    scored
        .into_iter()
        .take(count)
        .map(|(_, i, b)| (i, b))
        .collect()
}

/// Code `q` (of `bits` bits, two's complement) with bit `bit` flipped.
pub fn flipped_code(q: i8, bit: u8, bits: u8) -> i8 {
    let mask = (1u16 << bits) - 1;
    let raw = (q as u8 as u16 & mask) ^ (1 << bit);
    let sign = 1u16 << (bits - 1);
    if raw & sign != 0 {
        (raw as i16 - (1i16 << bits)) as i8
    } else {
        raw as i8
    }
}

/// Runs the attack on `plain` for up to `max_flips` flips, stopping early
/// once accuracy on `eval` falls to `stop_at`.
pub fn attack(
    plain: &[u8],
    layers: &[WeightLayer],
    attack_batch: &Batch,
    eval: &Batch,
    max_flips: usize,
    stop_at: f64,
    bar: &ProgressBar,
) -> Result<Attack> {
    let mut bytes = plain.to_vec();
    let accuracy = |bytes: &[u8]| -> Result<f64> {
        let predictions = eval.predictions(bytes)?;
        Ok(super::batch::outcome(&predictions, &predictions, eval.labels.as_deref()).accuracy)
    };
    let mut curve = vec![accuracy(&bytes)?];
    let mut flips = Vec::new();
    while flips.len() < max_flips && curve.last().is_some_and(|&a| a > stop_at) {
        let grads = gradients(&bytes, attack_batch)?;
        let mut best: Option<(f64, usize, usize)> = None;
        for layer in layers {
            let Some(Some(g)) = grads.weights.get(layer.op) else {
                continue;
            };
            let codes = layer.codes(&bytes);
            for (i, bit) in top_flips(layer, &codes, g, CANDIDATES) {
                let at = layer.bit_position(i, bit);
                bytes[at / 8] ^= 1 << (at % 8);
                let l = loss(&bytes, attack_batch)?;
                bytes[at / 8] ^= 1 << (at % 8);
                if best.is_none_or(|(b, _, _)| l > b) {
                    best = Some((l, layer.op, at));
                }
            }
        }
        let Some((l, op, at)) = best else { break };
        bytes[at / 8] ^= 1 << (at % 8);
        let node = layers
            .iter()
            .find(|x| x.op == op)
            .map(|x| x.node.clone())
            .unwrap_or_default();
        flips.push(BitFlip {
            op,
            node,
            byte: (at / 8) as u64,
            bit: (at % 8) as u8,
            loss: l,
        });
        curve.push(accuracy(&bytes)?);
        bar.inc(1);
    }
    Ok(Attack {
        flips,
        bytes,
        curve,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flipped_codes_by_hand() {
        assert_eq!(flipped_code(0, 7, 8), -128);
        assert_eq!(flipped_code(-128, 7, 8), 0);
        assert_eq!(flipped_code(5, 1, 8), 7);
        assert_eq!(flipped_code(-1, 6, 8), -65);
        assert_eq!(flipped_code(3, 3, 4), -5);
        assert_eq!(flipped_code(-8, 3, 4), 0);
        assert_eq!(flipped_code(-1, 0, 4), -2);
    }
}
