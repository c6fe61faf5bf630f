//! Class- and domain-balanced activation statistics.
//!
//! Long-tailed calibration data lets the head classes decide every range:
//! a tail class's few samples are exactly the "outliers" a percentile
//! trims. Here every sample carries the weight `1 / (n_class · n_domain)`
//! (its class's and its domain's sample counts), so each class and each
//! domain has the same total weight, and ranges are read from weighted
//! histograms: a tail class's activations count as much as a head class's.

use crate::quantize::observer::HISTOGRAM_BINS;
use std::collections::BTreeMap;

/// Per-sample weights `1 / (n_class · n_domain)`, normalised to sum to the
/// sample count (all 1 when neither labels nor domains are given).
pub fn sample_weights(labels: Option<&[i64]>, domains: Option<&[u32]>, n: usize) -> Vec<f64> {
    fn counts<T: Ord + Copy>(keys: &[T]) -> BTreeMap<T, f64> {
        let mut m = BTreeMap::new();
        for &k in keys {
            *m.entry(k).or_insert(0.0) += 1.0;
        }
        m
    }
    let mut w = vec![1.0; n];
    if let Some(labels) = labels {
        let c = counts(labels);
        w.iter_mut().zip(labels).for_each(|(w, l)| *w /= c[l]);
    }
    if let Some(domains) = domains {
        let c = counts(domains);
        w.iter_mut().zip(domains).for_each(|(w, d)| *w /= c[d]);
    }
    let total: f64 = w.iter().sum();
    w.iter_mut()
        .for_each(|x| *x *= n as f64 / total.max(f64::MIN_POSITIVE));
    w
}

/// A histogram over a known `[min, max]` whose observations carry weights.
#[derive(Debug, Clone)]
pub struct WeightedHistogram {
    min: f32,
    max: f32,
    bins: Vec<f64>,
}

impl WeightedHistogram {
    /// Empty, over `range` (from a min/max pass).
    pub fn new((min, max): (f32, f32)) -> Self {
        Self {
            min,
            max,
            bins: vec![0.0; HISTOGRAM_BINS],
        }
    }

    /// Adds `values`, each with `weight`.
    pub fn observe(&mut self, values: &[f32], weight: f64) {
        let width = (self.max - self.min).max(f32::MIN_POSITIVE);
        let last = (HISTOGRAM_BINS - 1) as f32;
        for &v in values {
            let bin = ((v - self.min) / width * last).round().clamp(0.0, last);
            self.bins[bin as usize] += weight;
        }
    }

    /// The range that trims `(100 − p)%` of the weight at each end.
    pub fn percentile_range(&self, p: f64) -> (f32, f32) {
        let total: f64 = self.bins.iter().sum();
        if total <= 0.0 {
            return (0.0, 0.0);
        }
        let tail = (100.0 - p) / 100.0 * total;
        let value = |bin: usize| {
            self.min + (self.max - self.min) * bin as f32 / (HISTOGRAM_BINS - 1) as f32
        };
        let low = first_over(self.bins.iter().enumerate(), tail).unwrap_or(0);
        let high =
            first_over(self.bins.iter().enumerate().rev(), tail).unwrap_or(HISTOGRAM_BINS - 1);
        (value(low), value(high))
    }
}

/// The first bin (in iteration order) where the running weight exceeds `tail`.
fn first_over<'a>(mut bins: impl Iterator<Item = (usize, &'a f64)>, tail: f64) -> Option<usize> {
    let mut seen = 0.0;
    bins.find(|&(_, &c)| {
        seen += c;
        seen > tail
    })
    .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_equalise_classes_and_domains() {
        // Class 0: 3 samples, class 1: 1 sample; one domain.
        let w = sample_weights(Some(&[0, 0, 0, 1]), None, 4);
        // Raw 1/3,1/3,1/3,1 → total 2 → ×4/2: 2/3 each for class 0, 2 for class 1.
        let expect = [2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 2.0];
        assert!(
            w.iter().zip(expect).all(|(a, b)| (a - b).abs() < 1e-12),
            "{w:?}"
        );
        let w = sample_weights(None, Some(&[5, 5, 7, 7]), 4);
        assert_eq!(w, vec![1.0; 4]);
        assert_eq!(sample_weights(None, None, 3), vec![1.0; 3]);
    }

    #[test]
    fn a_heavy_tail_sample_is_kept_where_a_count_would_trim_it() {
        // 9 999 head values in [0, 1] and one tail-class value at 10.
        let head: Vec<f32> = (0..9_999).map(|i| i as f32 / 9_998.0).collect();
        let mut h = WeightedHistogram::new((0.0, 10.0));
        h.observe(&head, 1.0);
        h.observe(&[10.0], 1.0);
        // Unweighted, 99.99 % trims the lone value at 10.
        assert!(h.percentile_range(99.99).1 < 1.01);
        // Weighted as one of two equally important classes, it stays.
        let mut h = WeightedHistogram::new((0.0, 10.0));
        h.observe(&head, 0.5 / 9_999.0);
        h.observe(&[10.0], 0.5);
        assert_eq!(h.percentile_range(99.99), (0.0, 10.0));
    }
}
