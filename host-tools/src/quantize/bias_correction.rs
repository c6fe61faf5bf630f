//! Bias correction for int4 weights.
//!
//! Rounding 15-level weights leaves each output channel a systematic error
//! `Σ_k (s·q_k − w_k)·x_k`, whose mean over the data, `Σ_k (s·q_k −
//! w_k)·E[x_k]`, shifts every output of the channel alike. It is folded
//! into the bias, with `E[x]` per input channel measured on the
//! calibration set in float (windows at the border, which read padding,
//! are treated like the rest).

use super::bits::WeightBits;
use crate::float_exec;
use crate::ir::{Graph, Op};
use anyhow::Result;

/// For every node whose weights are int4, the mean of each of its input
/// channels over `samples` (last storage axis for a convolution's feature
/// map, each feature for a fully connected layer); `None` elsewhere.
pub fn input_means(
    graph: &Graph,
    samples: &[Vec<f32>],
    weight_bits: &[WeightBits],
) -> Result<Vec<Option<Vec<f64>>>> {
    let mut means = InputMeans::new(graph, weight_bits);
    if means.is_empty() {
        return Ok(means.finish());
    }
    for sample in samples {
        means.observe(graph, &float_exec::execute(graph, sample)?);
    }
    Ok(means.finish())
}

/// The running sums behind [`input_means`], for a caller that already
/// executes the float graph over the calibration set (no second pass).
pub struct InputMeans {
    sums: Vec<Option<Vec<f64>>>,
    counts: Vec<usize>,
}

impl InputMeans {
    /// Empty sums for every int4 node of `graph` under `weight_bits`.
    pub fn new(graph: &Graph, weight_bits: &[WeightBits]) -> Self {
        let channels = |n: usize| -> Option<usize> {
            match (&graph.nodes[n].op, weight_bits.get(n)?) {
                (Op::Conv(c), WeightBits::Int4) => Some(c.weight_shape[3] * c.groups),
                (Op::FullyConnected(f), WeightBits::Int4) => Some(f.in_features),
                _ => None,
            }
        };
        InputMeans {
            sums: (0..graph.nodes.len())
                .map(|n| channels(n).map(|c| vec![0.0; c]))
                .collect(),
            counts: vec![0; graph.nodes.len()],
        }
    }

    /// No node needs means (no int4 weights).
    pub fn is_empty(&self) -> bool {
        self.sums.iter().all(Option::is_none)
    }

    /// Adds one sample: `values` are every tensor of `graph` for it.
    pub fn observe(&mut self, graph: &Graph, values: &[Vec<f32>]) {
        for (n, sum) in self.sums.iter_mut().enumerate() {
            let (Some(sum), Some(&x)) = (sum, graph.nodes[n].inputs.first()) else {
                continue;
            };
            let c = sum.len().max(1);
            for (i, &v) in values[x].iter().enumerate() {
                sum[i % c] += v as f64;
            }
            self.counts[n] += values[x].len() / c;
        }
    }

    /// The means, per node.
    pub fn finish(mut self) -> Vec<Option<Vec<f64>>> {
        for (sum, &count) in self.sums.iter_mut().zip(&self.counts) {
            for s in sum.iter_mut().flatten() {
                *s /= count.max(1) as f64;
            }
        }
        self.sums
    }
}

/// `bias` minus each output channel's mean weight error: `weights` and
/// `codes` are `scales.len()` rows of `[.., in_c / groups]` (OHWI, or
/// `[O, K]` with `groups` 1), `means` one per input channel.
pub fn corrected_bias(
    bias: &[f32],
    (weights, codes, scales): (&[f32], &[i8], &[f32]),
    groups: usize,
    means: &[f64],
) -> Vec<f32> {
    let channels = scales.len().max(1);
    let row = weights.len() / channels;
    let per_group = (means.len() / groups.max(1)).max(1);
    let out_per_group = (channels / groups.max(1)).max(1);
    bias.iter()
        .enumerate()
        .map(|(o, &b)| {
            let first = (o / out_per_group) * per_group;
            let error: f64 = (0..row)
                .map(|k| {
                    let at = o * row + k;
                    let stored = scales[o] as f64 * codes[at] as f64;
                    let mean = means.get(first + k % per_group).copied().unwrap_or(0.0);
                    (stored - weights[at] as f64) * mean
                })
                .sum();
            (b as f64 - error) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_correction() {
        // Two outputs, two input channels with means [2, −1].
        // o0: w [0.26, 0.5] stored (s = 0.1) as [3, 5] → errors [0.04, 0] →
        //     shift 0.04·2 = 0.08: bias 1.0 → 0.92.
        // o1: w [−0.14, 0.11] stored (s = 0.05) as [−3, 2] → errors [−0.01, −0.01]
        //     → shift −0.02 + 0.01 = −0.01: bias 0 → 0.01.
        let weights = [0.26, 0.5, -0.14, 0.11];
        let codes = [3, 5, -3, 2];
        let b = corrected_bias(
            &[1.0, 0.0],
            (&weights, &codes, &[0.1, 0.05]),
            1,
            &[2.0, -1.0],
        );
        assert!(
            (b[0] - 0.92).abs() < 1e-6 && (b[1] - 0.01).abs() < 1e-6,
            "{b:?}"
        );
        // Depthwise (groups 2, one weight per channel and tap): output o
        // reads input channel o, so only its own mean counts.
        let b = corrected_bias(
            &[0.0, 0.0],
            (&[0.26, -0.14], &[3, -3], &[0.1, 0.05]),
            2,
            &[2.0, -1.0],
        );
        assert!(
            (b[0] + 0.08).abs() < 1e-6 && (b[1] + 0.01).abs() < 1e-6,
            "{b:?}"
        );
    }
}
