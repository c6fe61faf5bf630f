//! The integer arithmetic contract shared by host and board.
//!
//! A real scale `s > 0` is represented as a Q31 multiplier `M` and a shift `e`
//! with `s = M · 2^(e − 31)`, `M ∈ [2^30, 2^31)` (or `M = 0` for `s = 0`).
//!
//! **The rounding rule** (one, used everywhere): with `n = 31 − e`,
//!
//! ```text
//! requantize(x, M, e) = saturate_i32( floor((x·M + 2^(n−1)) / 2^n) )
//! ```
//!
//! computed exactly in 64 bits: the product `x·M` rounded to the nearest
//! integer, ties towards +∞ (TFLite's "single rounding"). `n` must lie in
//! `1..=62` so that `|x·M| + 2^(n−1) < 2^63`; [`Requant::new`] refuses others.
//! This is one 32×32→64 multiply (`SMULL` on Cortex-M4), an add and a shift.

use crate::Error;

/// A validated requantization factor: Q31 multiplier and power-of-two shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Requant {
    multiplier: i32,
    /// `n = 31 − shift`, the right shift applied to the 64-bit product.
    right_shift: u32,
}

/// Smallest allowed `shift` (`n = 62`): scales below `2^−31` round to zero.
pub const MIN_SHIFT: i32 = -31;
/// Largest allowed `shift` (`n = 1`): scales up to `2^30`.
pub const MAX_SHIFT: i32 = 30;
/// Largest `shift` with the hoisted narrow form (`n = 33`,
/// [`Requant::narrow`]): scales below ½.
pub const NARROW_MAX_SHIFT: i32 = -2;

impl Requant {
    /// Checks `multiplier ≥ 0` and `shift ∈ [MIN_SHIFT, MAX_SHIFT]`.
    pub fn new(multiplier: i32, shift: i32) -> Result<Self, Error> {
        if multiplier < 0 || !(MIN_SHIFT..=MAX_SHIFT).contains(&shift) {
            return Err(Error::BadRequant);
        }
        Ok(Self {
            multiplier,
            right_shift: (31 - shift) as u32,
        })
    }

    /// A requant whose parameters [`Requant::new`] already accepted (the
    /// kernels check every channel's once per call, then rebuild each
    /// output's without repeating the test).
    #[inline(always)]
    pub(crate) fn prechecked(multiplier: i32, shift: i32) -> Self {
        Self {
            multiplier,
            right_shift: (31 - shift) as u32,
        }
    }

    /// The Q31 multiplier `M`.
    pub fn multiplier(self) -> i32 {
        self.multiplier
    }

    /// The shift `e` such that the scale is `M · 2^(e − 31)`.
    pub fn shift(self) -> i32 {
        31 - self.right_shift as i32
    }

    /// Applies the rounding rule documented at module level to `x`.
    ///
    /// Two exact ways to the same value, picked by `n`. For `n > 32` (every
    /// scale below 2^−1, the usual case), with `k = n − 32`: the rounding
    /// term `2^(n−1) = 2^(k−1) · 2^32` only touches the high word of the
    /// product, and `floor(floor(a / 2^32) / 2^k) = floor(a / 2^n)`, so the
    /// result is `(hi(x·M) + 2^(k−1)) >> k` in 32-bit arithmetic — on
    /// Cortex-M4 `SMULL`, an add and an `ASR`. Nothing overflows or
    /// saturates there: `|x·M| < 2^62` gives `|hi| < 2^30` and a result
    /// below 2^29. `n = 32` (scales in `[½, 1)`, common with int4 weights)
    /// is the rounded high word (`SMMULR`), which cannot overflow either;
    /// `n < 32` takes the 64-bit sum, shift and saturation.
    #[inline(always)]
    pub fn apply(self, x: i32) -> i32 {
        let n = self.right_shift;
        let product = x as i64 * self.multiplier as i64;
        if n > 32 {
            let k = n - 32;
            (((product >> 32) as i32) + (1i32 << (k - 1))) >> k
        } else if n == 32 {
            ((product + (1 << 31)) >> 32) as i32
        } else {
            wide_scale(product, n)
        }
    }
}

/// A [`Requant`] with `n > 32` (every scale below ½), in the form a kernel
/// hoists out of its per-output loop: with `k = n − 32`, `h = hi(x·M)`
/// (the high word of the product, one `SMMUL`), the value is
/// `((h >> (k − 1)) + 1) >> 1` — exactly [`Requant::apply`]'s. Why: the
/// rule is `⌊(x·M + 2^(n−1)) / 2^n⌋ = ⌊(h + 2^(k−1)) / 2^k⌋` (the low
/// word only ever adds a fraction below one to `h`), and with `h = q·2^(k−1)
/// + r`, `0 ≤ r < 2^(k−1)`, both sides are `⌊(q + 1) / 2⌋`. The last
/// halving can then take the zero point along (`(v >> 1) + zp = (v + 2zp)
/// >> 1`) and fuse with the saturation ([`crate::kernels::mac`]'s
/// `requant4`): no rounding constant is built per channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NarrowRequant {
    multiplier: i32,
    /// `k − 1 ∈ [0, 29]`.
    pre_shift: u32,
}

impl NarrowRequant {
    /// The narrow form of a channel whose `(multiplier, shift)`
    /// [`Requant::new`] accepted with `shift ≤` [`NARROW_MAX_SHIFT`], as a
    /// kernel that checked all its channels once per call rebuilds each
    /// output's without [`Requant::narrow`]'s test (`k − 1 = −2 − shift`).
    /// The shift is masked to five bits, so no input can make it overflow.
    #[inline(always)]
    pub(crate) fn prechecked(multiplier: i32, shift: i32) -> Self {
        Self {
            multiplier,
            pre_shift: (NARROW_MAX_SHIFT.wrapping_sub(shift) as u32) & 31,
        }
    }

    /// `h >> (k − 1)`: twice the requantized value, less one, before the
    /// halving that rounds it (`apply(x) = (before_halving(x) + 1) >> 1`).
    #[inline(always)]
    pub fn before_halving(self, x: i32) -> i32 {
        (((x as i64 * self.multiplier as i64) >> 32) as i32) >> self.pre_shift
    }

    /// Applies the requant (see the type for why this is exact).
    #[inline(always)]
    pub fn apply(self, x: i32) -> i32 {
        (self.before_halving(x) + 1) >> 1
    }
}

impl Requant {
    /// The hoisted 32-bit form, when `n > 32`.
    #[inline(always)]
    pub fn narrow(self) -> Option<NarrowRequant> {
        let k = self.right_shift.checked_sub(32).filter(|&k| k > 0)?;
        Some(NarrowRequant {
            multiplier: self.multiplier,
            pre_shift: k - 1,
        })
    }
}

/// [`Requant::apply`] for `n < 32` (scales of 1 and above: rare), out of
/// line so that every inlined requantization carries only the common
/// 32-bit paths.
#[cold]
#[inline(never)]
fn wide_scale(product: i64, n: u32) -> i32 {
    let rounded = (product + (1i64 << (n - 1))) >> n;
    rounded.clamp(i32::MIN as i64, i32::MAX as i64) as i32
}

/// Clamps an i32 to `[lo, hi]` and narrows it to i8 (`lo`, `hi` are int8 values).
#[inline(always)]
pub fn clamp_to_i8(x: i32, lo: i8, hi: i8) -> i8 {
    // max-then-min rather than `clamp`, which carries a panic path for
    // `lo > hi` (kernels reject such activations before any output).
    x.max(lo as i32).min(hi as i32) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rq(m: i32, e: i32) -> Requant {
        Requant::new(m, e).unwrap()
    }

    #[test]
    fn rejects_out_of_range_parameters() {
        assert_eq!(Requant::new(-1, 0), Err(Error::BadRequant));
        assert_eq!(Requant::new(1 << 30, 31), Err(Error::BadRequant));
        assert_eq!(Requant::new(1 << 30, -32), Err(Error::BadRequant));
        assert!(Requant::new(i32::MAX, MAX_SHIFT).is_ok());
        assert!(Requant::new(0, MIN_SHIFT).is_ok());
    }

    #[test]
    fn half_scale_rounds_ties_up() {
        // M = 2^30, e = 0  →  s = 1/2.
        let r = rq(1 << 30, 0);
        assert_eq!(r.apply(5), 3); // 2.5 → 3
        assert_eq!(r.apply(-5), -2); // -2.5 → -2 (towards +∞)
        assert_eq!(r.apply(4), 2);
        assert_eq!(r.apply(-3), -1); // -1.5 → -1
        assert_eq!(r.apply(-1), 0); // -0.5 → 0
        assert_eq!(r.apply(1), 1); // 0.5 → 1
    }

    #[test]
    fn i32_extremes_do_not_overflow() {
        // s = 2^-31 · (2^31 - 1) ≈ 1 − 2^-31 at n = 31.
        let r = rq(i32::MAX, 0);
        // i32::MIN · (2^31 − 1) / 2^31 = −2^31 + 1 exactly.
        assert_eq!(r.apply(i32::MIN), i32::MIN + 1);
        // (2^31 − 1)² / 2^31 = 2^31 − 2 + 2^-31 → 2^31 − 2.
        assert_eq!(r.apply(i32::MAX), i32::MAX - 1);
        // Largest right shift: tiny scale flushes to 0 (or −0 rounding up).
        let tiny = rq(1 << 30, MIN_SHIFT);
        assert_eq!(tiny.apply(i32::MAX), 0);
        assert_eq!(tiny.apply(i32::MIN), 0);
    }

    #[test]
    fn large_scales_saturate() {
        // s = 2^29 (M = 2^30, e = 30): 8 · 2^29 = 2^32 saturates.
        let r = rq(1 << 30, MAX_SHIFT);
        assert_eq!(r.apply(8), i32::MAX);
        assert_eq!(r.apply(-8), i32::MIN);
        assert_eq!(r.apply(1), 1 << 29);
        assert_eq!(r.apply(i32::MIN), i32::MIN);
    }

    #[test]
    fn matches_hand_computed_tflite_style_scale() {
        // s = 0.0078125 · 0.5 / 0.1 = 0.0390625 = 0.625 · 2^-4
        // M = 0.625 · 2^31 = 1342177280, e = -4.
        let r = rq(1_342_177_280, -4);
        assert_eq!(r.apply(1000), 39); // 39.0625
        assert_eq!(r.apply(-1000), -39); // -39.0625
        assert_eq!(r.apply(12800), 500); // exact
        assert_eq!(r.apply(-12816), -501); // -500.625 → -501
    }

    proptest::proptest! {
        /// The hoisted form gives `apply`'s value wherever it exists.
        #[test]
        fn narrow_equals_apply(
            x in proptest::num::i32::ANY,
            m in 0i32..=i32::MAX,
            e in MIN_SHIFT..=MAX_SHIFT,
        ) {
            let r = rq(m, e);
            proptest::prop_assert_eq!(r.narrow().is_some(), e <= NARROW_MAX_SHIFT);
            if let Some(n) = r.narrow() {
                proptest::prop_assert_eq!(n.apply(x), r.apply(x));
                proptest::prop_assert_eq!(NarrowRequant::prechecked(m, e), n);
            }
        }

        /// `apply` equals the module-level rule computed in exact 128-bit
        /// arithmetic (floor division, then saturation), for every shift.
        #[test]
        fn apply_is_the_documented_rule(
            x in proptest::num::i32::ANY,
            m in 0i32..=i32::MAX,
            e in MIN_SHIFT..=MAX_SHIFT,
        ) {
            let n = 31 - e;
            let exact = (x as i128 * m as i128 + (1i128 << (n - 1))).div_euclid(1i128 << n);
            let expected = exact.clamp(i32::MIN as i128, i32::MAX as i128) as i32;
            proptest::prop_assert_eq!(rq(m, e).apply(x), expected);
        }
    }

    #[test]
    fn clamp_saturates_to_activation_range() {
        assert_eq!(clamp_to_i8(300, -128, 127), 127);
        assert_eq!(clamp_to_i8(-300, -128, 127), -128);
        assert_eq!(clamp_to_i8(-5, -20, 127), -5);
        assert_eq!(clamp_to_i8(-50, -20, 60), -20);
        assert_eq!(clamp_to_i8(i32::MIN, -128, 127), -128);
    }
}
