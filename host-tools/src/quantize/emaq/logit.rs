//! Fitting the confidence-based logit adjustment on calibration data.
//!
//! The runtime subtracts `offset_c = τ·(ln π_c − mean ln π) / s` (in the
//! logits' quantized units `s`) from a row whose top-1 margin is below a
//! threshold ([`sturdy_runtime::kernels::logit_adjust`]).
//!
//! The starting point is the prior's own theory: under a label shift from
//! the training prior π to a balanced test set, subtracting `ln π` from
//! every row (`τ = 1`, every row adjusted) is the Bayes-optimal correction
//! of calibrated logits (logit adjustment, Menon et al., ICLR 2021). The
//! calibration set may show that the quantized model wants a different
//! strength or threshold — but its tail classes often hold one to three
//! samples, each worth a tenth of the balanced accuracy, so the best score
//! on it is mostly noise (a fit once chose τ = 0.25 on a set whose two
//! rarest classes had one sample each, and lost 8 points on the test set).
//! So a candidate `(τ, threshold)` is scored by the *lower confidence
//! bound* of its balanced-accuracy gain over that default, computed on the
//! paired per-sample differences, and replaces it only when the bound is
//! positive: a gain carried by a lone tail sample has a standard error as
//! large as itself and does not clear it; a gain spread over many samples
//! does. Candidates are scored through the runtime's very kernel on the
//! calibration set's integer logits; among equal bounds the choice leans to
//! `τ = 1` and then to the larger margin.

use crate::metrics;
use anyhow::{ensure, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// Lower confidence bound of the chosen setting's calibration gain over
    /// the default `τ = 1` on every row (0 when the default was kept).
    #[serde(default)]
    pub gain_lower_bound: f64,
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

/// How many standard errors a candidate's calibration gain over the
/// default (`τ = 1`, every row) must clear. One-sided, 3 σ lets a
/// candidate no better than the default pass with probability 0.13 %; the
/// grid holds some twenty effectively distinct settings (9 strengths, a
/// few thresholds each that change any row), so the chance that the best
/// of them moves the fit by luck stays near 3 % (Bonferroni). At 2 σ the
/// fit moved to τ = 0.75 on `lt_digits` (137 calibration samples) and lost
/// 3.7 points on its test set against τ = 1.
pub const EVIDENCE_Z: f64 = 3.0;

/// Whether each row's adjusted arg-max is its label.
fn correct(rows: &[Vec<i8>], labels: &[i64], offsets: &[i32], margin: i32) -> Vec<bool> {
    rows.iter()
        .zip(labels)
        .map(|(row, &label)| {
            let mut r = row.clone();
            // Rows have the offsets' length (checked by `fit`).
            let _ = logit_adjust(offsets, margin, &mut r);
            let f: Vec<f32> = r.iter().map(|&x| x as f32).collect();
            metrics::argmax(&f) as i64 == label
        })
        .collect()
}

/// Per class present in `labels`: (sample count, Σ v, Σ v²) of `values`.
fn per_class_sums(values: &[f64], labels: &[i64]) -> BTreeMap<i64, (f64, f64, f64)> {
    let mut sums: BTreeMap<i64, (f64, f64, f64)> = BTreeMap::new();
    for (&v, &l) in values.iter().zip(labels) {
        let e = sums.entry(l).or_default();
        *e = (e.0 + 1.0, e.1 + v, e.2 + v * v);
    }
    sums
}

/// Balanced accuracy of per-sample hits.
fn balanced(hits: &[bool], labels: &[i64]) -> f64 {
    let values: Vec<f64> = hits.iter().map(|&h| f64::from(u8::from(h))).collect();
    let sums = per_class_sums(&values, labels);
    sums.values().map(|(n, s, _)| s / n).sum::<f64>() / sums.len().max(1) as f64
}

/// The gain in balanced accuracy of `candidate` over `default` (per-sample
/// hits on the same rows) and its standard error. The per-class variance of
/// the paired difference is taken as its uncentred second moment, which
/// bounds the variance from above and stays defined for a class of one
/// sample: a single discordant sample in a class of `n` contributes
/// `1/n²`, as large as its share of the gain.
pub fn gain_and_error(candidate: &[bool], default: &[bool], labels: &[i64]) -> (f64, f64) {
    let d: Vec<f64> = candidate
        .iter()
        .zip(default)
        .map(|(&c, &b)| f64::from(u8::from(c)) - f64::from(u8::from(b)))
        .collect();
    let sums = per_class_sums(&d, labels);
    let k = sums.len().max(1) as f64;
    let gain = sums.values().map(|(n, s, _)| s / n).sum::<f64>() / k;
    let variance = sums.values().map(|(n, _, s2)| s2 / (n * n)).sum::<f64>() / (k * k);
    (gain, variance.sqrt())
}

/// Chooses `τ` and the margin on calibration `logits` (int8 codes, one row
/// per sample) with `labels` and the class `prior`: the setting with the
/// largest lower bound `gain − evidence·error` over `τ = 1` on every row
/// (see the module docs; [`EVIDENCE_Z`] is the default `evidence`).
pub fn fit(
    logits: &[Vec<i8>],
    labels: &[i64],
    prior: &[f64],
    logit_scale: f32,
    evidence: f64,
) -> Result<LogitFit> {
    let classes = prior.len();
    ensure!(
        logits.iter().all(|r| r.len() == classes),
        "the prior has {classes} classes but the model's logits have {}",
        logits.first().map_or(0, Vec::len)
    );
    ensure!(
        !logits.is_empty(),
        "no calibration logits to fit the adjustment on"
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
    let before = balanced(&correct(logits, labels, &vec![0; classes], 0), labels);
    let default_offsets = offsets(1.0, prior, logit_scale);
    let default = correct(logits, labels, &default_offsets, ALWAYS);
    let mut best = LogitFit {
        tau: 1.0,
        margin: ALWAYS,
        offsets: default_offsets,
        prior: prior.to_vec(),
        balanced_accuracy_before: before,
        balanced_accuracy_after: balanced(&default, labels),
        gain_lower_bound: 0.0,
    };
    for &tau in &TAUS {
        let offs = offsets(tau, prior, logit_scale);
        for &margin in &candidates {
            let hits = correct(logits, labels, &offs, margin);
            let (gain, error) = gain_and_error(&hits, &default, labels);
            let bound = gain - evidence * error;
            let closer = (tau - 1.0).abs() < (best.tau - 1.0).abs();
            let same_tau = (tau - 1.0).abs() == (best.tau - 1.0).abs();
            let better = bound > best.gain_lower_bound + 1e-12
                || ((bound - best.gain_lower_bound).abs() <= 1e-12
                    && (closer || (same_tau && margin > best.margin)));
            if better {
                best = LogitFit {
                    tau,
                    margin,
                    offsets: offs.clone(),
                    prior: prior.to_vec(),
                    balanced_accuracy_before: before,
                    balanced_accuracy_after: balanced(&hits, labels),
                    gain_lower_bound: bound,
                };
            }
        }
    }
    Ok(best)
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

    /// Nineteen head rows `[head, 10]` (class 0) and one tail row `[12, 10]`
    /// (class 1: the model's bias puts the head 2 codes ahead).
    fn biased(head: i8) -> (Vec<Vec<i8>>, Vec<i64>) {
        let mut logits = vec![vec![head, 10]; 19];
        logits.push(vec![12, 10]);
        let mut labels = vec![0; 19];
        labels.push(1);
        (logits, labels)
    }

    #[test]
    fn a_head_biased_model_gets_corrected() {
        // Prior (0.9, 0.1), logit scale 0.25: τ = 1 gives offsets ±4.39 → ±4.
        let (logits, labels) = biased(30);
        let fit = fit(&logits, &labels, &[0.9, 0.1], 0.25, EVIDENCE_Z).unwrap();
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
        // would flip them; a margin of 3 adjusts the tail row alone. The
        // gain over the default (0.5) is carried by 19 head rows: its
        // error is √(1/19)/2 ≈ 0.115, the bound 0.5 − 3·0.115 > 0.
        // τ = 0.5 (±2) on every row also scores 1.0; τ = 1 is preferred.
        let (logits, labels) = biased(16);
        let fit = fit(&logits, &labels, &[0.9, 0.1], 0.25, EVIDENCE_Z).unwrap();
        assert_eq!(fit.balanced_accuracy_after, 1.0);
        assert_eq!((fit.tau, fit.margin), (1.0, 3));
    }

    #[test]
    fn gain_and_error_by_hand() {
        // Class 0: 4 samples, the candidate fixes 2 → mean 0.5, Σd² 2;
        // class 1: 1 sample, the candidate breaks it → mean −1, Σd² 1.
        let labels = [0, 0, 0, 0, 1];
        let candidate = [true, true, true, false, false];
        let default = [true, false, false, false, true];
        let (gain, error) = gain_and_error(&candidate, &default, &labels);
        assert!((gain - (0.5 - 1.0) / 2.0).abs() < 1e-12, "{gain}");
        // (2/16 + 1/1) / 4 = 0.28125
        assert!((error - 0.28125f64.sqrt()).abs() < 1e-12, "{error}");
    }

    /// Prior (0.45, 0.45, 0.1) at logit scale 0.2: τ = 1 gives offsets
    /// (3, 3, −5), τ = 0.25 gives (1, 1, −1). Classes 1 and 2 have ten
    /// confident rows each; class 0 has `lone` rows `[14, 10, 8]`, which
    /// τ = 1 turns into `[11, 7, 13]` (wrong) and τ = 0.25 keeps right.
    fn one_thin_class(lone: usize) -> (Vec<Vec<i8>>, Vec<i64>) {
        let mut logits = vec![vec![14, 10, 8]; lone];
        let mut labels = vec![0; lone];
        for class in 1..3 {
            let mut row = vec![10; 3];
            row[class] = 30;
            logits.extend(std::iter::repeat_n(row, 10));
            labels.extend(std::iter::repeat_n(class as i64, 10));
        }
        (logits, labels)
    }

    #[test]
    fn a_gain_carried_by_one_sample_does_not_move_tau() {
        let prior = [0.45, 0.45, 0.1];
        assert_eq!(offsets(1.0, &prior, 0.2), vec![3, 3, -5]);
        let (logits, labels) = one_thin_class(1);
        let fit = fit(&logits, &labels, &prior, 0.2, EVIDENCE_Z).unwrap();
        // A smaller τ scores 1.0 on the calibration set, but the gain
        // (1/3) is one sample's: its error is 1/3 too, the bound negative.
        assert_eq!((fit.tau, fit.margin), (1.0, ALWAYS));
        assert_eq!(fit.gain_lower_bound, 0.0);
        assert!((fit.balanced_accuracy_after - 2.0 / 3.0).abs() < 1e-12);
        // Without the evidence bound (the rule before) it overfits.
        let greedy = super::fit(&logits, &labels, &prior, 0.2, 0.0).unwrap();
        assert!(greedy.tau < 1.0 && greedy.balanced_accuracy_after == 1.0);
    }

    #[test]
    fn the_same_gain_over_ten_samples_does() {
        // Ten such rows: gain 1/3, error √(1/10)/3 ≈ 0.105, bound at 3 σ
        // ≈ 0.017 > 0.
        let (logits, labels) = one_thin_class(10);
        let fit = fit(&logits, &labels, &[0.45, 0.45, 0.1], 0.2, EVIDENCE_Z).unwrap();
        assert!(fit.tau < 1.0, "{fit:?}");
        assert_eq!(fit.balanced_accuracy_after, 1.0);
        let bound = 1.0 / 3.0 - EVIDENCE_Z * (0.1f64).sqrt() / 3.0;
        assert!((fit.gain_lower_bound - bound).abs() < 1e-12, "{fit:?}");
    }
}
