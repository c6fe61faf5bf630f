//! The aging indicator: corrected bits per scrub pass, their trend, and an
//! alarm before the code's limit is reached.
//!
//! Stored bits decay at a rate that rises as the silicon ages and the
//! device runs hot; each scrub pass ([`crate::protect::Scrubber`]) reports
//! how many bits it had to correct — errors accumulated over one scrub
//! interval, i.e. the raw BER of that interval times the stored bits. The
//! indicator keeps the last [`HISTORY`] passes in a fixed-size ring
//! (`heapless::HistoryBuf`, [`AgingIndicator::RAM_BYTES`] of RAM), fits a
//! line through them by integer least squares, and projects it to the end
//! of life: when the projected corrected bits per pass would reach the
//! limit — the errors per interval at which the code stops being safe —
//! the alarm is raised, while every word is still correctable.
//!
//! Integer only (fixed point with [`MILLI`] per unit), no heap, no panics.

use heapless::HistoryBuf;

/// Passes the trend is fitted over.
pub const HISTORY: usize = 16;
/// Fixed-point scale of the trend (thousandths of a bit per pass).
pub const MILLI: i64 = 1000;
/// Raw BER, in parts per million, at which none of the codes in the
/// measured FER table ([`crate::ldpc::fer`]: n = 648 and 1944 at rates 1/2
/// and 5/6) lost a frame of 10 000 — FER below 3·10⁻⁴ at 95 %, not zero:
/// the default limit per scrub interval, a warning line rather than a
/// guarantee (the host's plan computes the real margin per code).
pub const SAFE_BER_PPM: u32 = 1000;

/// The indicator's state: a history of corrected bits per pass and the
/// settings it judges them by.
#[derive(Debug, Clone)]
pub struct AgingIndicator {
    history: HistoryBuf<u32, HISTORY>,
    limit_bits_per_pass: u32,
    passes_to_end_of_life: u32,
    uncorrectable_seen: bool,
}

/// What the indicator concludes from its history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgingReport {
    /// Passes recorded (at most [`HISTORY`] are kept).
    pub passes: u32,
    /// Corrected bits of the most recent pass.
    pub last_bits: u32,
    /// Least-squares slope, thousandths of a corrected bit per pass.
    pub trend_milli: i64,
    /// Its lower bound `slope − TREND_Z·SE` (`i64::MIN` with fewer than
    /// three passes: no evidence of a trend yet).
    pub trend_lower_milli: i64,
    /// Corrected bits per pass projected at the end of life: the fitted
    /// level now plus the lower-bound growth (saturated to `u32`).
    pub projected_bits: u32,
    /// The limit it is compared with.
    pub limit_bits: u32,
    /// A pass found a word the code could not repair.
    pub uncorrectable_seen: bool,
    /// `projected_bits ≥ limit_bits`, the last pass already reached it, or
    /// a word was lost.
    pub alarm: bool,
}

impl AgingIndicator {
    /// RAM the indicator takes (its history ring and settings).
    pub const RAM_BYTES: usize = core::mem::size_of::<AgingIndicator>();

    /// An indicator for an image of `stored_bits` bits whose code is safe
    /// up to `safe_ber_ppm` raw errors per million bits per scrub interval,
    /// with `passes_to_end_of_life` scrub passes still ahead.
    pub fn new(stored_bits: u32, safe_ber_ppm: u32, passes_to_end_of_life: u32) -> Self {
        let limit = u64::from(stored_bits) * u64::from(safe_ber_ppm) / 1_000_000;
        AgingIndicator {
            history: HistoryBuf::new(),
            limit_bits_per_pass: u32::try_from(limit).unwrap_or(u32::MAX).max(1),
            passes_to_end_of_life,
            uncorrectable_seen: false,
        }
    }

    /// Records one completed pass: its corrected bits and the words it
    /// found uncorrectable (those carry no corrected bits, so near the
    /// limit the count alone would fall; any of them raises the alarm for
    /// good). One pass of the remaining life is used up.
    pub fn record(&mut self, corrected_bits: u32, uncorrectable_words: u32) {
        self.history.write(corrected_bits);
        self.uncorrectable_seen |= uncorrectable_words > 0;
        self.passes_to_end_of_life = self.passes_to_end_of_life.saturating_sub(1);
    }

    /// Sets the passes still ahead (the host knows the mission), keeping
    /// the history.
    pub fn set_passes_to_end_of_life(&mut self, passes: u32) {
        self.passes_to_end_of_life = passes;
    }

    /// The trend, projection and alarm over the recorded history.
    ///
    /// The fitted slope is noisy (corrected bits per pass are counts), and
    /// projected over years of passes any positive noise would cross the
    /// limit. So the projection grows by the slope's lower bound,
    /// `slope − TREND_Z·SE(slope)` (zero when not positive, or with fewer
    /// than three passes), from the fitted level of the latest pass.
    pub fn report(&self) -> AgingReport {
        let n = self.history.len() as i128;
        let last = self.history.recent().copied().unwrap_or(0);
        let (mut sx, mut sy, mut sxx, mut sxy) = (0i128, 0i128, 0i128, 0i128);
        for (x, &y) in self.history.oldest_ordered().enumerate() {
            let (x, y) = (x as i128, i128::from(y));
            sx += x;
            sy += y;
            sxx += x * x;
            sxy += x * y;
        }
        let m = i128::from(MILLI);
        let spread = n * sxx - sx * sx; // n·Σ(x − x̄)²
                                        // slope·MILLI and intercept·MILLI of y = intercept + slope·x.
        let slope = if spread > 0 {
            (n * sxy - sx * sy) * m / spread
        } else {
            0
        };
        let intercept = if n > 0 { (sy * m - slope * sx) / n } else { 0 };
        let lower = if n > 2 && spread > 0 {
            let residuals: i128 = self
                .history
                .oldest_ordered()
                .enumerate()
                .map(|(x, &y)| {
                    let r = i128::from(y) * m - (intercept + slope * x as i128);
                    r * r
                })
                .sum();
            // SE² = (Σr²/(n − 2)) / Σ(x − x̄)², in MILLI² units.
            let variance = residuals * n / ((n - 2) * spread);
            let error = isqrt(u128::try_from(variance).unwrap_or(0));
            slope - i128::from(TREND_Z) * error as i128
        } else {
            i128::MIN
        };
        let growth = lower.max(0);
        let level = intercept + slope * (n - 1).max(0);
        let projected = (level + growth * i128::from(self.passes_to_end_of_life)) / m;
        let projected = u32::try_from(projected.max(0)).unwrap_or(u32::MAX);
        let clamp = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        AgingReport {
            passes: self.history.len() as u32,
            last_bits: last,
            trend_milli: clamp(slope),
            trend_lower_milli: clamp(lower),
            projected_bits: projected,
            limit_bits: self.limit_bits_per_pass,
            uncorrectable_seen: self.uncorrectable_seen,
            alarm: self.uncorrectable_seen
                || (n > 0
                    && (projected >= self.limit_bits_per_pass || last >= self.limit_bits_per_pass)),
        }
    }
}

// The history ring and settings stay within 128 bytes on any target.
const _: () = assert!(AgingIndicator::RAM_BYTES <= 128);

/// Standard errors below the fitted slope the projection uses.
pub const TREND_Z: i64 = 2;

/// ⌊√v⌋ by Newton's method (integer only).
fn isqrt(v: u128) -> u128 {
    if v < 2 {
        return v;
    }
    let mut x = v;
    let mut y = x.div_ceil(2);
    while y < x {
        x = y;
        y = (x + v / x) / 2;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_from_stored_bits_and_safe_ber() {
        // 232 000 stored bits at 1000 ppm: 232 bits per interval.
        let a = AgingIndicator::new(232_000, SAFE_BER_PPM, 100);
        assert_eq!(a.report().limit_bits, 232);
        let r = a.report();
        assert_eq!((r.limit_bits, r.passes, r.alarm), (232, 0, false));
    }

    #[test]
    fn least_squares_by_hand() {
        // Passes x = 0..3 with 2, 4, 6, 8 bits: n = 4, Σx = 6, Σy = 20,
        // Σx² = 14, Σxy = 40 → slope (4·40 − 6·20)/(4·14 − 36) = 2,
        // intercept (20 − 2·6)/4 = 2. Ten passes were left; four are used,
        // so the end of life is x = 3 + 6 = 9: projected 2 + 2·9 = 20.
        let mut a = AgingIndicator::new(1_000_000, 100, 10); // limit 100
        for y in [2, 4, 6, 8] {
            a.record(y, 0);
        }
        let r = a.report();
        assert_eq!(
            (r.trend_milli, r.projected_bits, r.limit_bits),
            (2000, 20, 100)
        );
        assert!(!r.alarm);
        // A flat history projects its mean and stays quiet.
        let mut flat = AgingIndicator::new(1_000_000, 100, 1_000_000);
        for _ in 0..20 {
            flat.record(7, 0);
        }
        let r = flat.report();
        assert_eq!(
            (r.trend_milli, r.projected_bits, r.passes),
            (0, 7, HISTORY as u32)
        );
        assert!(!r.alarm);
    }

    #[test]
    fn a_rising_trend_alarms_before_the_limit_is_reached() {
        // +1 bit per pass with 200 passes to go: the line crosses 100 long
        // before the last pass does.
        let mut a = AgingIndicator::new(1_000_000, 100, 200);
        for y in 0..5 {
            a.record(y, 0);
        }
        let r = a.report();
        assert!(r.alarm && r.last_bits < r.limit_bits, "{r:?}");
        // The same level without a trend does not.
        let mut b = AgingIndicator::new(1_000_000, 100, 200);
        for _ in 0..5 {
            b.record(4, 0);
        }
        assert!(!b.report().alarm);
    }

    #[test]
    fn a_noisy_flat_history_does_not_alarm() {
        // Counts around 7 with no trend: the fitted slope is slightly
        // positive by chance, its lower bound is not.
        let mut a = AgingIndicator::new(1_000_000, 100, 3650);
        for y in [7, 5, 9, 6, 8, 7, 5, 9, 6, 8] {
            a.record(y, 0);
        }
        let r = a.report();
        assert!(r.trend_lower_milli < 0 && !r.alarm, "{r:?}");
        assert!(r.projected_bits < 10, "{r:?}");
    }

    #[test]
    fn a_lost_word_raises_the_alarm_for_good() {
        let mut a = AgingIndicator::new(1_000_000, 100, 10);
        a.record(3, 0);
        assert!(!a.report().alarm);
        a.record(0, 1);
        a.record(0, 0);
        let r = a.report();
        assert!(r.alarm && r.uncorrectable_seen, "{r:?}");
    }

    #[test]
    fn isqrt_by_hand() {
        assert_eq!([0, 1, 3, 4, 15, 16, 17].map(isqrt), [0, 1, 1, 2, 3, 4, 4]);
        assert_eq!(isqrt(u128::from(u64::MAX)), u128::from(u32::MAX));
    }

    #[test]
    fn extremes_saturate_instead_of_overflowing() {
        let mut a = AgingIndicator::new(u32::MAX, 1_000_000, u32::MAX);
        for y in [0, u32::MAX, 0, u32::MAX] {
            a.record(y, 0);
        }
        let r = a.report();
        assert!(r.alarm);
    }
}
