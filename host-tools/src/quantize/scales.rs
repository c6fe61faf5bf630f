//! Float → integer quantization parameters: activation scales, per-channel
//! weights, biases and Q31 multipliers (the host half of `arith`).

use crate::artifact_writer::QParams;
use crate::ir::Activation;
use anyhow::{bail, Result};
use sturdy_runtime::arith::{MAX_SHIFT, MIN_SHIFT};

/// Asymmetric int8 parameters covering `[min, max]` (widened to include 0 so
/// that zero padding and ReLU are exact).
pub fn activation_qparams(min: f32, max: f32) -> QParams {
    let (min, max) = (min.min(0.0) as f64, max.max(0.0) as f64);
    let span = (max - min).max(1e-6);
    let scale = (span / 255.0) as f32;
    let zero_point = (-128.0 - min / scale as f64).round().clamp(-128.0, 127.0) as i32;
    QParams { scale, zero_point }
}

/// Quantizes one real value with `q`, saturating to int8.
pub fn quantize_value(x: f32, q: QParams) -> i8 {
    ((x as f64 / q.scale as f64).round() + q.zero_point as f64).clamp(-128.0, 127.0) as i8
}

/// Real value of an int8 with `q`.
pub fn dequantize_value(x: i8, q: QParams) -> f32 {
    ((x as i32 - q.zero_point) as f64 * q.scale as f64) as f32
}

/// Splits a positive real scale into a Q31 multiplier and shift such that
/// `real ≈ M · 2^(e − 31)` (see `sturdy_runtime::arith`). Scales too small to
/// represent round to 0; scales ≥ 2^30 are refused.
pub fn quantize_multiplier(real: f64) -> Result<(i32, i32)> {
    if !real.is_finite() || real < 0.0 {
        bail!("requantization scale {real} is not a finite non-negative number");
    }
    if real == 0.0 {
        return Ok((0, 0));
    }
    let mut exponent = real.log2().floor() as i32 + 1;
    let mut fraction = real / 2f64.powi(exponent);
    // Guard against log2 rounding at exact powers of two.
    while fraction >= 1.0 {
        fraction /= 2.0;
        exponent += 1;
    }
    while fraction < 0.5 {
        fraction *= 2.0;
        exponent -= 1;
    }
    let mut multiplier = (fraction * (1u64 << 31) as f64).round() as i64;
    if multiplier == 1 << 31 {
        multiplier /= 2;
        exponent += 1;
    }
    if exponent > MAX_SHIFT {
        bail!("requantization scale {real} is too large (≥ 2^{MAX_SHIFT})");
    }
    if exponent < MIN_SHIFT {
        let extra = (MIN_SHIFT - exponent) as u32;
        multiplier = if extra >= 32 {
            0
        } else {
            (multiplier + (1 << extra >> 1)) >> extra
        };
        exponent = MIN_SHIFT;
    }
    Ok((multiplier as i32, exponent))
}

/// Symmetric per-output-channel int8 weights in `[-127, 127]`:
/// `weights` is `channels` rows of equal length. Returns the codes and one
/// scale per channel (1.0 for an all-zero channel).
pub fn quantize_per_channel(weights: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let row = weights.len() / channels.max(1);
    let mut codes = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(channels);
    for channel in weights.chunks(row.max(1)).take(channels) {
        let max_abs = channel.iter().fold(0f32, |m, w| m.max(w.abs()));
        let scale = if max_abs > 0.0 { max_abs / 127.0 } else { 1.0 };
        codes.extend(
            channel
                .iter()
                .map(|&w| (w / scale).round().clamp(-127.0, 127.0) as i8),
        );
        scales.push(scale);
    }
    (codes, scales)
}

/// int32 bias codes at scale `input_scale · weight_scale[c]`.
pub fn quantize_bias(bias: &[f32], input_scale: f32, weight_scales: &[f32]) -> Vec<i32> {
    bias.iter()
        .zip(weight_scales)
        .map(|(&b, &ws)| {
            let code = (b as f64 / (input_scale as f64 * ws as f64)).round();
            code.clamp(i32::MIN as f64, i32::MAX as f64) as i32
        })
        .collect()
}

/// Per-channel multipliers and shifts for `input_scale · weight_scale[c] / output_scale`.
pub fn channel_multipliers(
    input_scale: f32,
    weight_scales: &[f32],
    output_scale: f32,
) -> Result<(Vec<i32>, Vec<i32>)> {
    let mut multipliers = Vec::with_capacity(weight_scales.len());
    let mut shifts = Vec::with_capacity(weight_scales.len());
    for &ws in weight_scales {
        let (m, e) = quantize_multiplier(input_scale as f64 * ws as f64 / output_scale as f64)?;
        multipliers.push(m);
        shifts.push(e);
    }
    Ok((multipliers, shifts))
}

/// The fused clamp as an int8 interval in the output's quantization.
pub fn activation_range(act: Activation, q: QParams) -> (i32, i32) {
    let code = |x: f32| quantize_value(x, q) as i32;
    match act {
        Activation::None => (-128, 127),
        Activation::Relu => (code(0.0), 127),
        Activation::Clip { min, max } => (code(min), code(max)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sturdy_runtime::arith::Requant;

    #[test]
    fn multiplier_reconstructs_the_scale() {
        for &real in &[
            0.5,
            0.25,
            1.0,
            0.0390625,
            1e-3,
            3.7e-6,
            0.999_999_999,
            123.456,
        ] {
            let (m, e) = quantize_multiplier(real).unwrap();
            let back = m as f64 * 2f64.powi(e - 31);
            assert!(
                (back - real).abs() <= real * 1e-9,
                "{real}: {m} {e} → {back}"
            );
            assert!((1 << 30..=i32::MAX).contains(&m), "{real}: M = {m}");
        }
    }

    #[test]
    fn exact_hand_computed_multipliers() {
        assert_eq!(quantize_multiplier(0.5).unwrap(), (1 << 30, 0));
        assert_eq!(quantize_multiplier(1.0).unwrap(), (1 << 30, 1));
        assert_eq!(quantize_multiplier(0.0390625).unwrap(), (1_342_177_280, -4));
        assert_eq!(quantize_multiplier(0.0).unwrap(), (0, 0));
    }

    #[test]
    fn tiny_scales_saturate_the_shift_and_huge_ones_fail() {
        let (m, e) = quantize_multiplier(2f64.powi(-40)).unwrap();
        assert_eq!(e, MIN_SHIFT);
        // 2^-40 = M · 2^-62 → M = 2^22.
        assert_eq!(m, 1 << 22);
        assert_eq!(quantize_multiplier(1e-30).unwrap().0, 0);
        assert!(quantize_multiplier(2f64.powi(31)).is_err());
        assert!(quantize_multiplier(f64::NAN).is_err());
        assert!(Requant::new(m, e).is_ok());
    }

    #[test]
    fn activation_params_hand_computed() {
        // [0, 6] (ReLU6): scale 6/255, zero at code -128.
        let q = activation_qparams(0.0, 6.0);
        assert!((q.scale - 6.0 / 255.0).abs() < 1e-9);
        assert_eq!(q.zero_point, -128);
        // [-1, 1]: scale 2/255, zp = round(-128 + 127.5) = round(-0.5) = -1 (half away from 0).
        let q = activation_qparams(-1.0, 1.0);
        assert_eq!(q.zero_point, -1);
        // A positive-only range still contains 0.
        let q = activation_qparams(2.0, 4.0);
        assert_eq!(q.zero_point, -128);
        assert_eq!(quantize_value(4.0, q), 127);
    }

    #[test]
    fn per_channel_weights_use_the_full_symmetric_range() {
        let (codes, scales) = quantize_per_channel(&[0.3, -1.0, 0.25, 0.0, 0.0, 0.0], 2);
        assert_eq!(codes, vec![38, -127, 32, 0, 0, 0]); // 38.1 and 31.75 round to nearest
        assert_eq!(scales, vec![1.0 / 127.0, 1.0]);
    }

    #[test]
    fn bias_and_activation_ranges() {
        assert_eq!(quantize_bias(&[0.5, -0.25], 0.5, &[0.25, 0.5]), vec![4, -1]);
        let q = QParams {
            scale: 0.1,
            zero_point: -20,
        };
        assert_eq!(activation_range(Activation::Relu, q), (-20, 127));
        assert_eq!(
            activation_range(Activation::Clip { min: 0.0, max: 6.0 }, q),
            (-20, 40)
        );
        assert_eq!(activation_range(Activation::None, q), (-128, 127));
    }
}
