//! The Fisher section (after "Measuring Model Robustness via Fisher
//! Information", 2026), on the integer model's straight-through gradients
//! ([`super::backward`]).
//!
//! **Input-space Fisher** of a sample `x`: `F(x) = Σ_y p(y|x) gᵧ gᵧᵀ`,
//! `gᵧ = ∇ₓ log p(y|x)`, with `p` the softmax of the dequantized logits.
//! Its spectral norm `λ_max` is that of the `K × K` matrix `√pᵢ √pⱼ ⟨gᵢ,
//! gⱼ⟩` (`F = Q diag(p) Qᵀ`, `Q = [g₁ … g_K]`) — `K` backward passes and a
//! small eigenproblem per sample. Gradients are per input *code*, so
//! `λ_max` is in 1/code². A large `λ_max` says a small input change moves
//! the output distribution a lot: it should go with a small *flip radius*,
//! the smallest ±ε box (in codes) in which the counterexample search of
//! `sturdy verify` finds an input the runtime labels differently.
//!
//! **Parameter-space diagonal Fisher** per layer, sturdy's adaptation (the
//! paper's Fisher is in input space): `E_x E_{y~p} (∂ log p(y|x)/∂w)²`,
//! averaged over the layer's weight codes, next to the fault campaign's
//! measured per-layer sensitivity (mean SDC over the bit positions of the
//! layer × bit heatmap) when the faults section ran.

use super::backward::{gradients, softmax};
use super::report::{Fisher, Heatmap, LayerFisher};
use super::stats::spearman;
use super::subject::Subject;
use super::tape::{logits_op, real, Tape};
use crate::fsutil::AlignedBytes;
use crate::spectral::eigen;
use crate::verify::bounds::Bounder;
use crate::verify::interval::Interval;
use crate::verify::property::{Condition, Region};
use crate::verify::search::{counterexample, Budget};
use anyhow::{anyhow, Result};
use rayon::prelude::*;
use sturdy_runtime::Model;

/// The radii (codes) searched for a flip, smallest first.
pub const RADII: [u8; 10] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32];

/// One sample's figures: `λ_max`, its flip radius, and the per-layer sums
/// of `p·(∂ log p/∂w)²`.
struct SampleFisher {
    lambda_max: f64,
    flip_radius: Option<u8>,
    layers: Vec<f64>,
}

/// Runs the section on the first `samples` of the subject's batch;
/// `heatmap` is the faults section's layer × bit map, when it ran.
pub fn run(s: &Subject, samples: usize, seed: u64, heatmap: Option<&Heatmap>) -> Result<Fisher> {
    let aligned = AlignedBytes::new(&s.plain);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let bounder = Bounder::new(model)?;
    let n = samples.min(s.batch.inputs.len());
    let ops: Vec<usize> = s.layers.iter().map(|l| l.op).collect();
    let bar = super::progress::bar(n as u64, "fisher");
    let per: Vec<SampleFisher> = s.batch.inputs[..n]
        .par_iter()
        .enumerate()
        .map(|(i, x)| {
            let r = sample(&bounder, &ops, x, seed.wrapping_add(i as u64));
            bar.inc(1);
            r
        })
        .collect::<Result<_>>()?;
    bar.finish_and_clear();
    // An unflipped sample sits beyond the largest radius: rank it there.
    let beyond = f64::from(RADII[RADII.len() - 1]) + 1.0;
    let lambda: Vec<f64> = per.iter().map(|p| p.lambda_max).collect();
    let radius: Vec<f64> = per
        .iter()
        .map(|p| p.flip_radius.map_or(beyond, f64::from))
        .collect();
    let layers: Vec<LayerFisher> = s
        .layers
        .iter()
        .enumerate()
        .map(|(k, l)| LayerFisher {
            node: l.node.clone(),
            fisher: per.iter().map(|p| p.layers[k]).sum::<f64>()
                / (n.max(1) * l.count.max(1)) as f64,
            fault_sensitivity: heatmap.and_then(|h| row_mean(h, &l.node)),
        })
        .collect();
    let (f, sens): (Vec<f64>, Vec<f64>) = layers
        .iter()
        .filter_map(|l| Some((l.fisher, l.fault_sensitivity?)))
        .unzip();
    Ok(Fisher {
        samples: n,
        lambda_max: lambda.clone(),
        flip_radius: per.iter().map(|p| p.flip_radius).collect(),
        spearman: spearman(&lambda, &radius),
        layers,
        layer_spearman: spearman(&f, &sens),
        int4: Vec::new(),
    })
}

fn sample(bounder: &Bounder<'_>, ops: &[usize], x: &[i8], seed: u64) -> Result<SampleFisher> {
    let (lambda_max, layer_sums) = fisher_at(bounder.model(), x, ops)?;
    let label = bounder.label(x)?;
    let budget = Budget::default();
    let mut flip_radius = None;
    for eps in RADII {
        let region = Region::Box(Interval::around(x, eps));
        if counterexample(bounder, &region, Condition::Label(label), budget, seed)?.is_some() {
            flip_radius = Some(eps);
            break;
        }
    }
    Ok(SampleFisher {
        lambda_max,
        flip_radius,
        layers: layer_sums,
    })
}

/// At input `x`: the input-space Fisher's `λ_max` and, for each op of
/// `layer_ops` (Conv/FC), `Σ_y p_y Σ_w (∂ log p_y/∂w)²` over its weight
/// codes.
pub fn fisher_at(model: &Model<'_>, x: &[i8], layer_ops: &[usize]) -> Result<(f64, Vec<f64>)> {
    let tape = Tape::record(model, x, None)?;
    let (last, from) = logits_op(model)?;
    let record = &model.artifact().tensors()[from];
    let logits: Vec<f32> = tape.get(from).iter().map(|&c| real(record, c)).collect();
    let p = softmax(&logits);
    let scale = f32::from_bits(record.scale_bits);
    let k = p.len();
    let mut g = Vec::with_capacity(k);
    let mut layer_sums = vec![0.0; layer_ops.len()];
    for y in 0..k {
        // ∂ log p_y / ∂(logit code j) = scale · (δ_yj − p_j).
        let seed: Vec<f32> = (0..k)
            .map(|j| scale * (f32::from(u8::from(j == y)) - p[j]))
            .collect();
        let (input, weights) = gradients(model, &tape, last, from, seed)?;
        for (sum, &op) in layer_sums.iter_mut().zip(layer_ops) {
            if let Some(Some(w)) = weights.weights.get(op) {
                *sum +=
                    f64::from(p[y]) * w.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>();
            }
        }
        g.push(input);
    }
    let mut m = vec![0.0; k * k];
    for i in 0..k {
        for j in i..k {
            let dot: f64 = g[i]
                .iter()
                .zip(&g[j])
                .map(|(a, b)| f64::from(*a) * f64::from(*b))
                .sum();
            let v = f64::from(p[i]).sqrt() * f64::from(p[j]).sqrt() * dot;
            m[i * k + j] = v;
            m[j * k + i] = v;
        }
    }
    let lambda_max = eigen::symmetric(&m, k).0.last().copied().unwrap_or(0.0);
    Ok((lambda_max, layer_sums))
}

/// Mean of a heatmap row's cells (the layer's SDC over bit positions).
fn row_mean(h: &Heatmap, node: &str) -> Option<f64> {
    let row = h.cells.get(h.rows.iter().position(|r| r == node)?)?;
    let v: Vec<f64> = row.iter().flatten().copied().collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}
