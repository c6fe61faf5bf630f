//! Tables the runtime reads instead of computing transcendental functions:
//! all float work happens here, on the host, once.

use super::scales::{dequantize_value, quantize_value};
use crate::artifact_writer::QParams;

/// Softmax output quantization fixed by the runtime's kernel.
pub const SOFTMAX_OUTPUT: QParams = QParams {
    scale: 1.0 / 256.0,
    zero_point: -128,
};
/// Log-softmax output quantization (TFLite's): `[-16, 0]`, log-probability
/// 0 at code 127; anything below −16 (p < 1.1e-7) saturates at −128.
pub const LOG_SOFTMAX_OUTPUT: QParams = QParams {
    scale: 16.0 / 256.0,
    zero_point: 127,
};
/// Sigmoid output quantization: `[0, 1)` over the full int8 range.
pub const SIGMOID_OUTPUT: QParams = QParams {
    scale: 1.0 / 256.0,
    zero_point: -128,
};
/// Tanh output quantization: `[-1, 1)` over the full int8 range.
pub const TANH_OUTPUT: QParams = QParams {
    scale: 1.0 / 128.0,
    zero_point: 0,
};

/// `table[d] = round(2^16 · exp(−d · input_scale))`, `d = max − x ∈ [0, 255]`.
pub fn softmax_exp_table(input_scale: f32) -> Vec<u32> {
    (0..256)
        .map(|d| ((-(d as f64) * input_scale as f64).exp() * 65536.0).round() as u32)
        .collect()
}

/// The 256-entry int8 table of `f` from quantization `input` to `output`,
/// indexed by `x + 128`.
pub fn lut(f: impl Fn(f32) -> f32, input: QParams, output: QParams) -> Vec<i8> {
    (-128i32..=127)
        .map(|x| quantize_value(f(dequantize_value(x as i8, input)), output))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_table_endpoints() {
        let t = softmax_exp_table(0.1);
        assert_eq!(t[0], 65536);
        assert_eq!(t[10], (65536.0 * (-1.0f64).exp()).round() as u32); // 24109
        assert_eq!(t[10], 24109);
        assert!(t.windows(2).all(|w| w[0] >= w[1]));
    }

    #[test]
    fn sigmoid_lut_hand_checked() {
        let input = QParams {
            scale: 0.1,
            zero_point: 0,
        };
        let t = lut(|x| 1.0 / (1.0 + (-x).exp()), input, SIGMOID_OUTPUT);
        assert_eq!(t[128], 0); // sigmoid(0) = 0.5 → 128 − 128
        assert_eq!(t[0], -128); // sigmoid(−12.8) ≈ 2.8e-6 → code −128
        assert_eq!(t[255], 127); // sigmoid(12.7) saturates at 127
    }
}
