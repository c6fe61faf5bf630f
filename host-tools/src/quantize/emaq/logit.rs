//! Fitting the confidence-based logit adjustment on calibration data.
//!
//! The runtime subtracts `offset_c = τ·(ln π_c − mean ln π) / s` (in the
//! logits' quantized units `s`) from a row whose top-1 margin is below a
//! threshold ([`sturdy_runtime::kernels::logit_adjust`]). Here `τ` and the
//! threshold are chosen on the calibration set's integer logits — through
//! that very kernel — to maximise balanced accuracy. Calibration sets are
//! small and the tail classes in them tiny, so ties are common: among equal
//! scores the choice leans to `τ = 1` (the Bayes-optimal correction of a
//! label prior shift) and then to the larger margin.

use crate::metrics;
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use sturdy_runtime::format::MAX_LOGIT_OFFSET;
use sturdy_runtime::kernels::{logit_adjust, top_margin};

/// Candidate strengths `τ`.
const TAUS: [f64; 9] = [0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0];
/// A margin no int8 row reaches: adjust every row.
pub const ALWAYS: i32 = 256;

/// What the fit chose and what it measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogitFit {
    /// Strength of the prior correction.
    pub tau: f64,
    /// Rows with a top-1 margin below this (in logit codes) are adjusted.
    pub margin: i32,
    /// Per-class offsets in logit codes (what the artifact stores).
    pub offsets: Vec<i32>,
    /// The class prior used.
    pub prior: Vec<f64>,
    /// Calibration balanced accuracy without the adjustment.
    pub balanced_accuracy_before: f64,
    /// Calibration balanced accuracy with it.
    pub balanced_accuracy_after: f64,
}

/// Offsets for strength `tau`: centred `τ·ln π_c` over the logit scale,
/// rounded and kept within what the runtime accepts.
pub fn offsets(tau: f64, prior: &[f64], logit_scale: f32) -> Vec<i32> {
    let logs: Vec<f64> = prior.iter().map(|p| p.max(1e-12).ln()).collect();
    let mean = logs.iter().sum::<f64>() / logs.len().max(1) as f64;
    let bound = MAX_LOGIT_OFFSET as f64;
    logs.iter()
        .map(|l| {
            (tau * (l - mean) / logit_scale as f64)
                .round()
                .clamp(-bound, bound) as i32
        })
        .collect()
}

/// The prior from label counts, Laplace-smoothed so no class is impossible.
pub fn prior_from_labels(labels: &[i64], classes: usize) -> Vec<f64> {
    let mut n = vec![1.0; classes];
    for &l in labels {
        if let Some(c) = usize::try_from(l).ok().and_then(|l| n.get_mut(l)) {
            *c += 1.0;
        }
    }
    let total: f64 = n.iter().sum();
    n.iter().map(|c| c / total).collect()
}

fn balanced_accuracy(rows: &[Vec<i8>], labels: &[i64], offsets: &[i32], margin: i32) -> f64 {
    let predictions: Vec<i64> = rows
        .iter()
        .map(|row| {
            let mut r = row.clone();
            // Rows have the offsets' length (checked by `fit`).
            let _ = logit_adjust(offsets, margin, &mut r);
            let f: Vec<f32> = r.iter().map(|&x| x as f32).collect();
            metrics::argmax(&f) as i64
        })
        .collect();
    metrics::classification(&predictions, labels).balanced_accuracy
}

/// Chooses `τ` and the margin on calibration `logits` (int8 codes, one row
/// per sample) with `labels` and the class `prior`.
pub fn fit(
    logits: &[Vec<i8>],
    labels: &[i64],
    prior: &[f64],
    logit_scale: f32,
) -> Result<LogitFit> {
    let classes = prior.len();
    ensure!(
        logits.iter().all(|r| r.len() == classes),
        "the prior has {classes} classes but the model's logits have {}",
        logits.first().map_or(0, Vec::len)
    );
    // Thresholds just above each margin seen (at most 256 distinct), and "always".
    let mut candidates: Vec<i32> = logits
        .iter()
        .filter_map(|r| top_margin(r))
        .map(|m| m + 1)
        .collect();
    candidates.push(ALWAYS);
    candidates.sort_unstable();
    candidates.dedup();
    let before = balanced_accuracy(logits, labels, &vec![0; classes], 0);
    let mut best: Option<(f64, LogitFit)> = None;
    for &tau in &TAUS {
        let offs = offsets(tau, prior, logit_scale);
        for &margin in &candidates {
            let score = balanced_accuracy(logits, labels, &offs, margin);
            let better = best.as_ref().is_none_or(|(s, b)| {
                let closer = (tau - 1.0).abs() < (b.tau - 1.0).abs();
                let same_tau = (tau - 1.0).abs() == (b.tau - 1.0).abs();
                score > *s + 1e-12
                    || ((score - s).abs() <= 1e-12 && (closer || (same_tau && margin > b.margin)))
            });
            if better {
                best = Some((
                    score,
                    LogitFit {
                        tau,
                        margin,
                        offsets: offs.clone(),
                        prior: prior.to_vec(),
                        balanced_accuracy_before: before,
                        balanced_accuracy_after: score,
                    },
                ));
            }
        }
    }
    best.map(|(_, f)| f)
        .ok_or_else(|| anyhow::anyhow!("no calibration logits to fit the adjustment on"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_centred_log_priors_in_logit_units() {
        // π = (e^-1, e^-3) up to normalisation: ln π = (-1, -3), mean -2 →
        // centred (1, -1); τ = 2, scale 0.5 → (4, -4).
        let prior = [(-1.0f64).exp(), (-3.0f64).exp()];
        assert_eq!(offsets(2.0, &prior, 0.5), vec![4, -4]);
        assert_eq!(offsets(0.0, &prior, 0.5), vec![0, 0]);
        // Huge ratios saturate at the runtime's bound.
        assert_eq!(offsets(1.0, &[1.0, 1e-300], 0.001), vec![255, -255]);
    }

    #[test]
    fn prior_from_labels_smooths() {
        assert_eq!(
            prior_from_labels(&[0, 0, 1], 3),
            vec![0.5, 2.0 / 6.0, 1.0 / 6.0]
        );
    }

    /// Nine head rows `[head, 10]` (class 0) and one tail row `[12, 10]`
    /// (class 1: the model's bias puts the head 2 codes ahead).
    fn biased(head: i8) -> (Vec<Vec<i8>>, Vec<i64>) {
        let mut logits = vec![vec![head, 10]; 9];
        logits.push(vec![12, 10]);
        let mut labels = vec![0; 9];
        labels.push(1);
        (logits, labels)
    }

    #[test]
    fn a_head_biased_model_gets_corrected() {
        // Prior (0.9, 0.1), logit scale 0.25: τ = 1 gives offsets ±4.39 → ±4.
        let (logits, labels) = biased(30);
        let fit = fit(&logits, &labels, &[0.9, 0.1], 0.25).unwrap();
        assert_eq!(fit.balanced_accuracy_before, 0.5);
        assert_eq!(fit.balanced_accuracy_after, 1.0);
        // τ ∈ [0.5, 2] all fix the tail row at any margin (head rows win by
        // 20): the tie goes to τ = 1, then to adjusting every row.
        assert_eq!((fit.tau, fit.margin), (1.0, ALWAYS));
        assert_eq!(fit.offsets, vec![4, -4]);
    }

    #[test]
    fn confident_rows_are_protected_by_the_margin() {
        // Head rows win by only 6: τ = 1 applied to every row (12 vs 14)
        // would flip them; a margin of 3 adjusts the tail row alone.
        // τ = 0.5 (±2) on every row also scores 1.0; τ = 1 is preferred.
        let (logits, labels) = biased(16);
        let fit = fit(&logits, &labels, &[0.9, 0.1], 0.25).unwrap();
        assert_eq!(fit.balanced_accuracy_after, 1.0);
        assert_eq!((fit.tau, fit.margin), (1.0, 3));
    }
}
