//! Activation range observers: what `--method minmax|percentile` means.

/// Running minimum and maximum of every value seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MinMax {
    /// Smallest value seen (+∞ before any).
    pub min: f32,
    /// Largest value seen (−∞ before any).
    pub max: f32,
}

impl Default for MinMax {
    fn default() -> Self {
        Self {
            min: f32::INFINITY,
            max: f32::NEG_INFINITY,
        }
    }
}

impl MinMax {
    /// Folds `values` in (NaNs ignored).
    pub fn observe(&mut self, values: &[f32]) {
        for &v in values {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
    }

    /// The range, or `(0, 0)` if nothing was observed.
    pub fn range(&self) -> (f32, f32) {
        if self.min > self.max {
            (0.0, 0.0)
        } else {
            (self.min, self.max)
        }
    }
}

/// Fixed-bin histogram over a known `[min, max]` (from a first min/max
/// pass), from which tail percentiles are read: rare outliers stop
/// stretching the range of every other value.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    min: f32,
    max: f32,
    bins: Vec<u64>,
}

/// Bins per histogram: fine enough that a bin is far below one int8 step.
pub const HISTOGRAM_BINS: usize = 4096;

impl Histogram {
    /// An empty histogram over `range`.
    pub fn new((min, max): (f32, f32)) -> Self {
        Self {
            min,
            max,
            bins: vec![0; HISTOGRAM_BINS],
        }
    }

    /// Counts `values` (clamped into the range).
    pub fn observe(&mut self, values: &[f32]) {
        let width = (self.max - self.min).max(f32::MIN_POSITIVE);
        let last = (HISTOGRAM_BINS - 1) as f32;
        for &v in values {
            let bin = ((v - self.min) / width * last).round().clamp(0.0, last);
            self.bins[bin as usize] += 1;
        }
    }

    /// The values below which `(100 − p)%` and above which `(100 − p)%` of
    /// the observations lie, e.g. `p = 99.99` trims 0.01% at each end.
    pub fn percentile_range(&self, p: f64) -> (f32, f32) {
        let total: u64 = self.bins.iter().sum();
        if total == 0 {
            return (0.0, 0.0);
        }
        let tail = ((100.0 - p) / 100.0 * total as f64).floor() as u64;
        let value = |bin: usize| {
            self.min + (self.max - self.min) * bin as f32 / (HISTOGRAM_BINS - 1) as f32
        };
        let mut seen = 0;
        let mut low = 0;
        for (i, &c) in self.bins.iter().enumerate() {
            seen += c;
            if seen > tail {
                low = i;
                break;
            }
        }
        seen = 0;
        let mut high = HISTOGRAM_BINS - 1;
        for (i, &c) in self.bins.iter().enumerate().rev() {
            seen += c;
            if seen > tail {
                high = i;
                break;
            }
        }
        (value(low), value(high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_tracks_extremes() {
        let mut m = MinMax::default();
        assert_eq!(m.range(), (0.0, 0.0));
        m.observe(&[1.0, -2.0, 0.5]);
        m.observe(&[3.0]);
        assert_eq!(m.range(), (-2.0, 3.0));
    }

    #[test]
    fn percentile_trims_rare_outliers() {
        // 10 000 values in [0, 1] plus one outlier at 100.
        let mut values: Vec<f32> = (0..10_000).map(|i| i as f32 / 9_999.0).collect();
        values.push(100.0);
        let mut m = MinMax::default();
        m.observe(&values);
        let mut h = Histogram::new(m.range());
        h.observe(&values);
        let (lo, hi) = h.percentile_range(99.99);
        assert_eq!(lo, 0.0);
        // One value (0.01% of 10 001) is trimmed: the top lands at ~1.0.
        assert!((hi - 1.0).abs() < 100.0 / 4095.0 + 1e-6, "{hi}");
        // p = 100 keeps the whole range.
        assert_eq!(h.percentile_range(100.0), (0.0, 100.0));
    }
}
