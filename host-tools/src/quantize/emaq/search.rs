//! Sensitivity-aware aggregation: where the class-balanced range of an
//! activation and its full (min/max) range disagree, the model's measured
//! response decides.
//!
//! The yardstick is the *balanced output error*: the weighted mean squared
//! difference between the integer model's dequantized outputs and the
//! float model's on the (aligned) calibration set, each sample weighted so
//! that classes and domains count equally. A tensor's sensitivity is how
//! much that error moves when it alone takes its balanced range; tensors
//! are then switched in order of benefit, each kept only if the whole
//! model's error falls.

use super::super::{build, CalibrationMeta, WeightBits};
use crate::host_model::HostModel;
use crate::ir::Graph;
use crate::quantize::calibrate::progress;
use crate::quantize::scales::dequantize_value;
use anyhow::Result;
use serde::{Deserialize, Serialize};

/// The calibration set as the integer model sees it, and the float
/// model's answers to it.
pub struct Yardstick<'a> {
    /// The float graph.
    pub graph: &'a Graph,
    /// Input codes per sample (aligned to the reference domain).
    pub codes: Vec<Vec<i8>>,
    /// Float outputs per sample (storage layout).
    pub teacher: Vec<Vec<f32>>,
    /// Per-sample weights (class- and domain-balanced).
    pub weights: Vec<f64>,
    /// Weight width per IR node used for every trial.
    pub weight_bits: Vec<WeightBits>,
    /// Every Conv/FC node's input-channel means (for int4 bias correction).
    pub means: Vec<Option<Vec<f64>>>,
}

impl<'a> Yardstick<'a> {
    /// The yardstick over the aligned input `codes`, with the float
    /// answers `teacher` and every Conv/FC node's input `means`, trials
    /// starting at int8 weights.
    pub fn new(
        graph: &'a Graph,
        codes: Vec<Vec<i8>>,
        teacher: Vec<Vec<f32>>,
        weights: Vec<f64>,
        means: Vec<Option<Vec<f64>>>,
    ) -> Self {
        Yardstick {
            graph,
            codes,
            teacher,
            weights,
            weight_bits: WeightBits::Int8.uniform(graph),
            means,
        }
    }

    /// The input means of the nodes `bits` stores as int4 (bias correction
    /// applies to those alone).
    pub fn means_for(&self, bits: &[WeightBits]) -> Vec<Option<Vec<f64>>> {
        self.means
            .iter()
            .zip(bits)
            .map(|(m, b)| m.clone().filter(|_| *b == WeightBits::Int4))
            .collect()
    }

    /// Balanced output error of the integer model with activation `ranges`.
    pub fn loss(&self, ranges: &[(f32, f32)]) -> Result<f64> {
        self.loss_with(ranges, &self.weight_bits)
    }

    /// [`Yardstick::loss`] with weight widths `bits` instead.
    pub fn loss_with(&self, ranges: &[(f32, f32)], bits: &[WeightBits]) -> Result<f64> {
        let calibration = CalibrationMeta {
            method: "emaq-lt (candidate)".into(),
            percentile: None,
            samples: self.codes.len(),
            emaq: None,
        };
        let built = build(
            self.graph,
            ranges,
            bits,
            &self.means_for(bits),
            calibration,
            "",
        )?;
        let model = HostModel::from_bytes(&built.bytes)?;
        let q = model.output_qparams();
        let mut total = 0.0;
        let mut weight = 0.0;
        for ((codes, teacher), &w) in self.codes.iter().zip(&self.teacher).zip(&self.weights) {
            let out = model.infer_quantized(codes)?;
            let se: f64 = out
                .iter()
                .zip(teacher)
                .map(|(&c, &t)| (dequantize_value(c, q) as f64 - t as f64).powi(2))
                .sum();
            total += w * se / out.len().max(1) as f64;
            weight += w;
        }
        Ok(total / weight.max(f64::MIN_POSITIVE))
    }
}

/// One activation's two candidate ranges and what was chosen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeChoice {
    /// The tensor's ONNX name.
    pub tensor: String,
    /// Full observed range.
    pub minmax: (f32, f32),
    /// Class- and domain-balanced percentile range.
    pub balanced: (f32, f32),
    /// Change of the balanced output error when this tensor alone takes
    /// its balanced range (negative: it helps).
    pub sensitivity: f64,
    /// Whether the balanced range was kept.
    pub balanced_chosen: bool,
}

/// What [`aggregate`] decided.
pub struct Aggregated {
    /// One range per IR tensor.
    pub ranges: Vec<(f32, f32)>,
    /// Each candidate's record.
    pub choices: Vec<RangeChoice>,
    /// Balanced output error with min/max ranges.
    pub error_minmax: f64,
    /// Balanced output error with the chosen ranges.
    pub error_chosen: f64,
}

/// Starts from the min/max ranges and switches tensors in `candidates` to
/// their balanced range where that measurably lowers the error.
pub fn aggregate(
    yard: &Yardstick,
    minmax: &[(f32, f32)],
    balanced: &[(f32, f32)],
    candidates: &[usize],
) -> Result<Aggregated> {
    let bar = progress(2 * candidates.len() + 1, "ranges", "trials");
    let base = yard.loss(minmax)?;
    bar.inc(1);
    let mut sensitivity = Vec::with_capacity(candidates.len());
    for &t in candidates {
        let mut trial = minmax.to_vec();
        trial[t] = balanced[t];
        sensitivity.push(yard.loss(&trial)? - base);
        bar.inc(1);
    }
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| sensitivity[a].total_cmp(&sensitivity[b]));
    let mut chosen = minmax.to_vec();
    let mut current = base;
    let mut kept = vec![false; candidates.len()];
    for &k in &order {
        bar.inc(1);
        if sensitivity[k] >= 0.0 {
            continue;
        }
        let t = candidates[k];
        let mut trial = chosen.clone();
        trial[t] = balanced[t];
        let loss = yard.loss(&trial)?;
        if loss < current {
            chosen = trial;
            current = loss;
            kept[k] = true;
        }
    }
    bar.finish_and_clear();
    let choices = candidates
        .iter()
        .enumerate()
        .map(|(k, &t)| RangeChoice {
            tensor: yard.graph.tensors[t].name.clone(),
            minmax: minmax[t],
            balanced: balanced[t],
            sensitivity: sensitivity[k],
            balanced_chosen: kept[k],
        })
        .collect();
    Ok(Aggregated {
        ranges: chosen,
        choices,
        error_minmax: base,
        error_chosen: current,
    })
}

/// The tensors whose two ranges differ by more than one int8 step of the
/// min/max range (only those are worth a trial).
pub fn disagreeing(
    tensors: impl Iterator<Item = usize>,
    minmax: &[(f32, f32)],
    balanced: &[(f32, f32)],
) -> Vec<usize> {
    tensors
        .filter(|&t| {
            let (lo, hi) = minmax[t];
            let step = (hi - lo) / 255.0;
            let (blo, bhi) = balanced[t];
            (blo - lo).abs() > step || (bhi - hi).abs() > step
        })
        .collect()
}
