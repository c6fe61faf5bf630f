//! Integer softmax and log-softmax over the last axis, from a host-computed
//! exponent table.

use crate::arith::Requant;
use crate::Error;

/// Softmax of `rows` rows of `cols` int8 logits each.
///
/// `exp_table[d] = round(2^16 · exp(−d · s_in · β))` for `d = max − x ∈
/// [0, 255]` (computed on the host, stored in the artifact). The output
/// quantization is fixed: scale 1/256, zero point −128, so
/// `out = clamp(round(256 · t / Σt) − 128)`, rounding half up in exact
/// integer arithmetic (u64, so no table can overflow it).
///
/// Returns [`Error::ShapeMismatch`] (output untouched) if the buffers are not
/// `rows × cols` long, the table has not 256 entries, or `exp_table[0]` is 0
/// (the row maximum must have weight, which also keeps `Σt > 0`).
pub fn softmax(
    rows: usize,
    cols: usize,
    exp_table: &[u32],
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let table: &[u32; 256] = exp_table.try_into().map_err(|_| Error::ShapeMismatch)?;
    if rows.checked_mul(cols) != Some(input.len()) || input.len() != output.len() || table[0] == 0 {
        return Err(Error::ShapeMismatch);
    }
    if cols == 0 {
        return Ok(());
    }
    for (x, y) in input.chunks_exact(cols).zip(output.chunks_exact_mut(cols)) {
        let max = x.iter().copied().max().unwrap_or(0) as i32;
        let weight = |v: i8| table[(max - v as i32) as usize] as u64;
        let total: u64 = x.iter().map(|&v| weight(v)).sum();
        for (y, &v) in y.iter_mut().zip(x) {
            let q = (256 * weight(v) + total / 2) / total;
            *y = (q as i64 - 128).clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

/// The requantization of a [`log_softmax`]: how a row's values map to
/// output codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSoftmax {
    /// `round(2^16 · s_in / ln 2)`: one input step in Q16 log2 units;
    /// at most 2^23 so that `255 · step + log2 Σ` fits an `i32`.
    pub step_q16: i32,
    /// Q16 log2 units → output steps: `ln 2 / (2^16 · s_out)`.
    pub to_output: Requant,
    /// Output zero point (the code of log-probability 0).
    pub zero_point: i8,
}

/// Largest accepted [`LogSoftmax::step_q16`].
pub const LOG_SOFTMAX_MAX_STEP: i32 = 1 << 23;

/// `log2(total / 2^16)` in Q16 (rounded down, error < 2^-15), for
/// `total ≥ 2^16`, in integer arithmetic only: the integer part from the
/// bit length, 16 fraction bits by repeated squaring of the mantissa.
fn log2_q16(total: u64) -> i32 {
    let e = 63 - total.leading_zeros() as i32; // floor(log2 total), ≥ 16
                                               // Mantissa in [2^30, 2^31): total / 2^e in Q30.
    let mut m = if e >= 30 {
        total >> (e - 30)
    } else {
        total << (30 - e)
    };
    let mut frac = 0i32;
    for bit in (0..16).rev() {
        m = (m * m) >> 30; // < 2^32
        if m >= 1 << 31 {
            m >>= 1;
            frac |= 1 << bit;
        }
    }
    ((e - 16) << 16) + frac
}

/// Log-softmax of `rows` rows of `cols` int8 logits each:
/// `y = log p = s_in · (x − max) − ln Σ exp(s_in · (x − max))`.
///
/// With `d = max − x` and `exp_table` as for [`softmax`] (`2^16 · exp(−d ·
/// s_in)`), `Σt / 2^16` is the row's sum of exponentials; its log2 is taken
/// in Q16 fixed point (`log2_q16`), the distance `d` is brought to the
/// same units by `step_q16`, and the sum is requantized once, by the shared
/// rounding rule: `out = clamp(zero_point − to_output(d · step + log2 Σ))`.
///
/// Returns [`Error::ShapeMismatch`] (output untouched) on buffer sizes, a
/// table that is not 256 entries with `exp_table[0] = 2^16`, or a step
/// outside `[0, 2^23]`.
pub fn log_softmax(
    rows: usize,
    cols: usize,
    exp_table: &[u32],
    params: &LogSoftmax,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let table: &[u32; 256] = exp_table.try_into().map_err(|_| Error::ShapeMismatch)?;
    if rows.checked_mul(cols) != Some(input.len())
        || input.len() != output.len()
        || table[0] != 1 << 16
        || !(0..=LOG_SOFTMAX_MAX_STEP).contains(&params.step_q16)
    {
        return Err(Error::ShapeMismatch);
    }
    if cols == 0 {
        return Ok(());
    }
    for (x, y) in input.chunks_exact(cols).zip(output.chunks_exact_mut(cols)) {
        let max = x.iter().copied().max().unwrap_or(0) as i32;
        // ≥ 2^16 (the maximum's own weight), ≤ 2^16 · cols.
        let total: u64 = x
            .iter()
            .map(|&v| table[(max - v as i32) as usize] as u64)
            .sum();
        let log_total = log2_q16(total);
        for (y, &v) in y.iter_mut().zip(x) {
            let d = max - v as i32; // 0..=255
            let units = d * params.step_q16 + log_total; // < 2^31 by the bounds
            let steps = params.to_output.apply(units);
            *y = (params.zero_point as i32 - steps).clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn table(scale: f64) -> Vec<u32> {
        (0..256)
            .map(|d| ((-(d as f64) * scale).exp() * 65536.0).round() as u32)
            .collect()
    }

    #[test]
    fn hand_computed() {
        // Equal logits: 1/4 each → 64 − 128 = −64.
        let t = table(0.1);
        let mut y = [0i8; 4];
        softmax(1, 4, &t, &[3, 3, 3, 3], &mut y).unwrap();
        assert_eq!(y, [-64; 4]);
        // One dominant logit: probability ≈ 1 saturates at 127.
        softmax(1, 4, &t, &[127, -128, -128, -128], &mut y).unwrap();
        assert_eq!(y, [127, -128, -128, -128]);
        // Two logits differing by d = 10 at scale 0.1 (Δ = 1.0):
        // t = [65536, 24109], p0 = 0.7311 → 256·p0 = 187.16 → 187 − 128 = 59.
        let mut y = [0i8; 2];
        softmax(1, 2, &t, &[10, 0], &mut y).unwrap();
        assert_eq!(y, [59, -59]);
    }

    #[test]
    fn rejects_bad_buffers_and_tables() {
        let t = table(0.1);
        let mut y = [7i8; 4];
        assert_eq!(
            softmax(2, 3, &t, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            softmax(1, 4, &t[..255], &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        let zero = std::vec![0u32; 256];
        assert_eq!(
            softmax(1, 4, &zero, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            softmax(usize::MAX, 2, &t, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(y, [7; 4]);
    }

    fn log_params(s_in: f64, s_out: f64, zero_point: i8) -> LogSoftmax {
        let (m, e) = requant_of(core::f64::consts::LN_2 / (65536.0 * s_out));
        LogSoftmax {
            step_q16: (65536.0 * s_in / core::f64::consts::LN_2).round() as i32,
            to_output: Requant::new(m, e).unwrap(),
            zero_point,
        }
    }

    /// `real = m · 2^(e − 31)`, m in [2^30, 2^31).
    fn requant_of(real: f64) -> (i32, i32) {
        let mut e = 0;
        let mut m = real;
        while m < 0.5 {
            m *= 2.0;
            e -= 1;
        }
        while m >= 1.0 {
            m /= 2.0;
            e += 1;
        }
        ((m * 2f64.powi(31)).round().min(i32::MAX as f64) as i32, e)
    }

    #[test]
    fn log2_is_exact_on_powers_and_close_elsewhere() {
        assert_eq!(log2_q16(1 << 16), 0);
        assert_eq!(log2_q16(1 << 17), 1 << 16);
        assert_eq!(log2_q16(1 << 40), 24 << 16);
        for total in [65537u64, 100_000, 3 << 20, 123_456_789, u64::MAX >> 20] {
            let exact = (total as f64 / 65536.0).log2() * 65536.0;
            let got = log2_q16(total) as f64;
            assert!((got - exact).abs() < 2.0, "{total}: {got} vs {exact}");
        }
    }

    #[test]
    fn log_softmax_hand_computed() {
        // s_in = 0.1, output 16/256 with zero point 127 (TFLite's choice).
        let t = table(0.1);
        let p = log_params(0.1, 16.0 / 256.0, 127);
        // Two equal logits: log(1/2) = −0.6931 → 127 − 11.09 → 116.
        let mut y = [0i8; 2];
        log_softmax(1, 2, &t, &p, &[5, 5], &mut y).unwrap();
        assert_eq!(y, [116, 116]);
        // d = 10 (Δ = 1.0): log p = [−0.3133, −1.3133] → 127 − [5.01, 21.01].
        log_softmax(1, 2, &t, &p, &[10, 0], &mut y).unwrap();
        assert_eq!(y, [122, 106]);
        // A far-behind logit saturates at −128 (log p < −16).
        log_softmax(1, 2, &t, &p, &[127, -128], &mut y).unwrap();
        assert_eq!(y, [127, -128]);
    }

    #[test]
    fn log_softmax_rejects_bad_parameters() {
        let t = table(0.1);
        let mut y = [7i8; 2];
        let mut p = log_params(0.1, 0.0625, 127);
        assert_eq!(
            log_softmax(1, 3, &t, &p, &[0; 2], &mut y),
            Err(Error::ShapeMismatch)
        );
        let mut bad = t.clone();
        bad[0] = 65535;
        assert_eq!(
            log_softmax(1, 2, &bad, &p, &[0; 2], &mut y),
            Err(Error::ShapeMismatch)
        );
        p.step_q16 = LOG_SOFTMAX_MAX_STEP + 1;
        assert_eq!(
            log_softmax(1, 2, &t, &p, &[0; 2], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(y, [7; 2]);
    }

    proptest! {
        /// Against float log-softmax of the dequantized logits: within one
        /// output step, plus the Q16 rounding of the step (≤ 255 · 2^-17
        /// log2 units) and the table's own rounding.
        #[test]
        fn matches_float_log_softmax(
            x in proptest::collection::vec(any::<i8>(), 1..12),
            s_in in 0.01f64..0.5,
            s_out in 0.01f64..0.2,
        ) {
            let t = table(s_in);
            let p = log_params(s_in, s_out, 127);
            let mut y = std::vec![0i8; x.len()];
            log_softmax(1, x.len(), &t, &p, &x, &mut y).unwrap();
            let max = *x.iter().max().unwrap() as f64;
            let lse: f64 = x.iter().map(|&v| ((v as f64 - max) * s_in).exp()).sum::<f64>().ln();
            for (&q, &v) in y.iter().zip(&x) {
                let real = (v as f64 - max) * s_in - lse;
                let expect = (127.0 + real / s_out).clamp(-128.0, 127.0);
                prop_assert!((q as f64 - expect).abs() <= 1.0, "{q} vs {expect}");
            }
        }

        /// Against float softmax of the dequantized logits: within one
        /// output step (1/256) plus the table's own rounding.
        #[test]
        fn matches_float_softmax(
            x in proptest::collection::vec(any::<i8>(), 1..12),
            scale in 0.01f64..0.5,
        ) {
            let t = table(scale);
            let mut y = std::vec![0i8; x.len()];
            softmax(1, x.len(), &t, &x, &mut y).unwrap();
            let max = *x.iter().max().unwrap() as f64;
            let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - max) * scale).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (&q, &ei) in y.iter().zip(&e) {
                let expect = (256.0 * ei / sum - 128.0).clamp(-128.0, 127.0);
                prop_assert!((q as f64 - expect).abs() <= 1.0, "{q} vs {expect}");
            }
        }
    }
}
