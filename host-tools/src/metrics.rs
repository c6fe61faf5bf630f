//! Evaluation figures printed by `sturdy run` and used by the analysis: top-1 decisions,
//! classification accuracy (plain, per class and balanced), ROC AUC for binary detectors,
//! and mean squared error between two output tensors (quantized vs float reference).
//!
//! Every function is total on empty input and documents what it returns then, so a run on
//! an empty data set prints zeros/`None` instead of panicking or printing NaN.

use std::collections::BTreeMap;

use serde::Serialize;

/// Index of the largest value: the top-1 class of a score vector.
///
/// Exists so every caller breaks ties and treats NaN the same way: the *first* maximum
/// wins, and NaN never wins (it is skipped). Returns 0 for an empty slice or when every
/// value is NaN, so the result is always a valid index when `values` is non-empty.
pub fn argmax(values: &[f32]) -> usize {
    let mut best: Option<(usize, f32)> = None;
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| v > b) {
            best = Some((i, v));
        }
    }
    best.map_or(0, |(i, _)| i)
}

/// Classification figures over a data set, as printed by `sturdy run` and written to the
/// analysis JSON.
///
/// Exists because plain accuracy hides failures on rare classes (the common case for
/// detection-style data sets on microcontrollers); per-class recall and balanced accuracy
/// expose them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// Number of (prediction, label) pairs evaluated.
    pub samples: usize,
    /// Fraction of predictions equal to their label; 0 when `samples == 0`.
    pub accuracy: f64,
    /// Mean of the per-class recalls (each class present in the labels weighs the same);
    /// 0 when `samples == 0`.
    pub balanced_accuracy: f64,
    /// Recall of each class present in the labels: fraction of its samples predicted as
    /// that class. Classes that are only predicted, never labelled, do not appear.
    pub per_class_accuracy: BTreeMap<i64, f64>,
    /// Number of samples labelled with each class.
    pub per_class_count: BTreeMap<i64, usize>,
}

/// Accuracy, per-class recall and balanced accuracy of `predictions` against `labels`.
///
/// Empty input gives `samples == 0`, accuracies 0 and empty maps.
///
/// # Panics
/// If the two slices differ in length (a caller bug: pairing would be meaningless).
pub fn classification(predictions: &[i64], labels: &[i64]) -> Classification {
    assert_eq!(
        predictions.len(),
        labels.len(),
        "classification: {} predictions for {} labels",
        predictions.len(),
        labels.len()
    );
    let mut per_class_count: BTreeMap<i64, usize> = BTreeMap::new();
    let mut per_class_correct: BTreeMap<i64, usize> = BTreeMap::new();
    let mut correct = 0usize;
    for (&p, &l) in predictions.iter().zip(labels) {
        *per_class_count.entry(l).or_default() += 1;
        let hit = usize::from(p == l);
        *per_class_correct.entry(l).or_default() += hit;
        correct += hit;
    }
    let samples = labels.len();
    let per_class_accuracy: BTreeMap<i64, f64> = per_class_count
        .iter()
        .map(|(&class, &count)| (class, per_class_correct[&class] as f64 / count as f64))
        .collect();
    let ratio = |num: f64, den: usize| if den == 0 { 0.0 } else { num / den as f64 };
    Classification {
        samples,
        accuracy: ratio(correct as f64, samples),
        balanced_accuracy: ratio(per_class_accuracy.values().sum(), per_class_accuracy.len()),
        per_class_accuracy,
        per_class_count,
    }
}

/// Area under the ROC curve of `scores` for the binary labels `positive`.
///
/// Exists to judge binary detectors (e.g. wake word, person detection) independently of
/// the decision threshold. Computed from ranks (Mann–Whitney U): the probability that a
/// random positive scores higher than a random negative, ties counting one half (average
/// ranks), which equals scikit-learn's `roc_auc_score`.
///
/// Returns `None` when either class is absent (AUC undefined; includes empty input) or when
/// a score is NaN (it cannot be ranked).
///
/// # Panics
/// If the two slices differ in length.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        positive.len(),
        "roc_auc: {} scores for {} labels",
        scores.len(),
        positive.len()
    );
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum_pos = 0.0f64;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // `==` (not total_cmp) so that -0.0 and 0.0 tie, as they do in scikit-learn.
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + 1 + end) as f64 / 2.0;
        let positives = order[start..end].iter().filter(|&&i| positive[i]).count();
        rank_sum_pos += average_rank * positives as f64;
        start = end;
    }
    let (n_pos, n_neg) = (n_pos as f64, n_neg as f64);
    let u = rank_sum_pos - n_pos * (n_pos + 1.0) / 2.0;
    Some(u / (n_pos * n_neg))
}

/// Mean of the squared element-wise differences, accumulated in f64.
///
/// Exists to compare a quantized model's dequantized outputs with the float reference
/// (and two runs with each other) by one number. Returns 0 for empty input; NaN inputs
/// propagate to a NaN result.
///
/// # Panics
/// If the two slices differ in length.
pub fn mean_squared_error(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(
        a.len(),
        b.len(),
        "mean_squared_error: lengths {} and {}",
        a.len(),
        b.len()
    );
    if a.is_empty() {
        return 0.0;
    }
    let sum: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = f64::from(x) - f64::from(y);
            d * d
        })
        .sum();
    sum / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn argmax_first_maximum_and_nan() {
        assert_eq!(argmax(&[1.0, 3.0, 2.0]), 1);
        assert_eq!(argmax(&[3.0, 1.0, 3.0]), 0);
        assert_eq!(argmax(&[f32::NAN, -5.0, f32::NAN, -1.0]), 3);
        assert_eq!(argmax(&[1.0, f32::NAN, 0.5]), 0);
        assert_eq!(argmax(&[f32::NEG_INFINITY, f32::NEG_INFINITY]), 0);
        assert_eq!(argmax(&[f32::NAN, f32::NAN]), 0);
        assert_eq!(argmax(&[]), 0);
        assert_eq!(argmax(&[-1.0, f32::INFINITY, f32::INFINITY]), 1);
    }

    #[test]
    fn classification_hand_computed() {
        let c = classification(&[0, 0, 1, 1], &[0, 0, 0, 1]);
        assert_eq!(c.samples, 4);
        assert!(close(c.accuracy, 0.75));
        assert_eq!(c.per_class_count, BTreeMap::from([(0, 3), (1, 1)]));
        assert!(close(c.per_class_accuracy[&0], 2.0 / 3.0));
        assert!(close(c.per_class_accuracy[&1], 1.0));
        assert_eq!(c.per_class_accuracy.len(), 2);
        assert!(close(c.balanced_accuracy, (2.0 / 3.0 + 1.0) / 2.0)); // 0.8333…
    }

    #[test]
    fn classification_predicted_only_class_not_listed() {
        // Class 7 is predicted but never labelled: it has no recall; class 2 has recall 0.
        let c = classification(&[7, 2, 2, 5], &[2, 2, 5, 5]);
        assert!(close(c.accuracy, 0.5));
        assert_eq!(
            c.per_class_accuracy.keys().copied().collect::<Vec<_>>(),
            vec![2, 5]
        );
        assert!(close(c.per_class_accuracy[&2], 0.5));
        assert!(close(c.per_class_accuracy[&5], 0.5));
        assert!(close(c.balanced_accuracy, 0.5));
    }

    #[test]
    fn classification_empty() {
        let c = classification(&[], &[]);
        assert_eq!(c.samples, 0);
        assert_eq!(c.accuracy, 0.0);
        assert_eq!(c.balanced_accuracy, 0.0);
        assert!(c.per_class_accuracy.is_empty() && c.per_class_count.is_empty());
    }

    #[test]
    #[should_panic(expected = "3 predictions for 2 labels")]
    fn classification_length_mismatch_panics() {
        classification(&[0, 1, 2], &[0, 1]);
    }

    #[test]
    fn classification_serializes() {
        let json = serde_json::to_value(classification(&[1, 0], &[1, 1])).unwrap();
        assert_eq!(json["samples"], 2);
        assert_eq!(json["accuracy"], 0.5);
        assert_eq!(json["per_class_count"]["1"], 2);
    }

    #[test]
    fn auc_extremes() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &labels), Some(0.5));
    }

    #[test]
    fn auc_undefined() {
        assert_eq!(roc_auc(&[], &[]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(roc_auc(&[0.1, f64::NAN], &[true, false]), None);
    }

    #[test]
    fn auc_with_ties_matches_sklearn() {
        let scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.1, 0.7, 0.35];
        let labels = [false, false, true, true, true, true, false, false];
        // python3 -c "from sklearn.metrics import roc_auc_score;
        //   print(roc_auc_score([0,0,1,1,1,1,0,0], [0.1,0.4,0.35,0.8,0.4,0.1,0.7,0.35]))"
        // → 0.53125 (scikit-learn 1.9.1).
        // By hand: 16 (pos, neg) pairs; wins 0.8 > all 4 = 4, 0.4 > {0.1, 0.35} + ½·0.4 = 2.5,
        // 0.35 > 0.1 + ½·0.35 = 1.5, 0.1: ½·0.1 = 0.5 → 8.5 / 16.
        let auc = roc_auc(&scores, &labels).unwrap();
        assert!(close(auc, 0.53125), "{auc}");
    }

    #[test]
    fn mse_values() {
        assert_eq!(mean_squared_error(&[], &[]), 0.0);
        assert!(close(
            mean_squared_error(&[1.0, 2.0, 3.0], &[1.0, 0.0, 4.0]),
            5.0 / 3.0
        ));
        assert!(mean_squared_error(&[f32::NAN], &[0.0]).is_nan());
        // Squares are taken in f64.
        let x = f64::from(1e20f32);
        assert_eq!(mean_squared_error(&[1e20], &[0.0]), x * x); // 1e40 overflows f32
    }
}
