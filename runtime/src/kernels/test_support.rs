//! Test-only helpers shared by the kernel tests: the float side of the
//! quantization scheme, written independently of the kernels so tests can
//! compare the integer kernels against a real-valued model.

extern crate std;

use crate::arith::Requant;
use std::vec::Vec;

/// Splits a real scale `s > 0` into `(M, e)` with `s ≈ M · 2^(e − 31)` and
/// `M ∈ [2^30, 2^31)`, the representation [`Requant::new`] expects.
pub fn quantize_multiplier(s: f64) -> (i32, i32) {
    assert!(s > 0.0 && s.is_finite(), "scale must be positive: {s}");
    let (mut m, mut e) = (s, 0i32);
    while m >= 1.0 {
        m /= 2.0;
        e += 1;
    }
    while m < 0.5 {
        m *= 2.0;
        e -= 1;
    }
    let mut q = (m * 2f64.powi(31)).round() as i64;
    if q == 1i64 << 31 {
        q /= 2;
        e += 1;
    }
    (q as i32, e)
}

/// The [`Requant`] for real scale `s`.
pub fn requant(s: f64) -> Requant {
    let (m, e) = quantize_multiplier(s);
    Requant::new(m, e).expect("test scale within the supported range")
}

/// Quantizes a real value: `clamp(round(real / scale) + zp, lo, hi)`
/// (round half away from zero, as `f64::round`).
pub fn quantize(real: f64, scale: f64, zp: i32, lo: i8, hi: i8) -> i8 {
    ((real / scale).round() as i64 + zp as i64).clamp(lo as i64, hi as i64) as i8
}

/// Real value of an int8 code.
pub fn dequantize(q: i8, scale: f64, zp: i32) -> f64 {
    scale * (q as i32 - zp) as f64
}

/// Largest element-wise difference between two int8 buffers of equal length.
pub fn max_diff(a: &[i8], b: &[i8]) -> i32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (x as i32 - y as i32).abs())
        .max()
        .unwrap_or(0)
}

/// int4 `codes` packed as the artifact stores them.
pub fn pack_i4(codes: &[i8]) -> Vec<u8> {
    crate::int4::pack(codes).collect()
}

/// A zeroed output buffer of `n` elements.
pub fn zeros(n: usize) -> Vec<i8> {
    std::vec![0i8; n]
}

#[test]
fn multiplier_round_trips() {
    for &s in &[1.0, 0.5, 0.0390625, 3.0e-5, 1234.5, 0.999_999_999_9] {
        let (m, e) = quantize_multiplier(s);
        assert!((1 << 30..=i32::MAX).contains(&m), "{s}: {m}");
        let back = m as f64 * 2f64.powi(e - 31);
        assert!((back - s).abs() <= s * 1e-9, "{s} → {back}");
    }
    // Hand-computed: 0.0390625 = 0.625 · 2^-4.
    assert_eq!(quantize_multiplier(0.0390625), (1_342_177_280, -4));
    assert_eq!(quantize_multiplier(1.0), (1 << 30, 1));
}
