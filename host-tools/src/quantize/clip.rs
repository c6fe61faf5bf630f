//! int4 weight scales by clipping search.
//!
//! With 15 levels, scaling a channel by its largest weight (`max|w| / 7`,
//! what int8 does with 255 levels) spends most levels on a few outliers
//! and rounds the bulk of the weights to 0 or ±1. Instead each channel
//! tries clipping ratios `α ∈ {0.50, 0.51, …, 1.00}`, scale `α·max|w| / 7`,
//! keeps the one with the least squared reconstruction error over the
//! channel, then refines it by least squares for its codes (the scale
//! minimizing `Σ (w − s·q)²` for fixed codes `q` is `Σ w·q / Σ q²`) while
//! that lowers the error.

/// Largest int4 code written (symmetric: `-8` is never used).
pub const INT4_MAX: f32 = 7.0;
/// Clipping ratios tried: `1 − k / GRID_STEPS · (1 − MIN_RATIO)`.
const GRID_STEPS: u32 = 50;
/// Smallest clipping ratio tried.
const MIN_RATIO: f64 = 0.5;
/// Least-squares refinements tried after the grid.
const REFINEMENTS: usize = 4;

/// The int4 code of `w` at `scale`.
fn code(w: f32, scale: f64) -> f64 {
    (w as f64 / scale)
        .round()
        .clamp(-INT4_MAX as f64, INT4_MAX as f64)
}

/// `Σ (w − scale·code(w))²` over a channel.
pub fn squared_error(channel: &[f32], scale: f64) -> f64 {
    channel
        .iter()
        .map(|&w| (w as f64 - scale * code(w, scale)).powi(2))
        .sum()
}

/// The scale of one channel: best clipping ratio on the grid, then least
/// squares refinements while they help. 1.0 for an all-zero channel.
pub fn channel_scale(channel: &[f32]) -> f64 {
    let max_abs = channel.iter().fold(0f64, |m, &w| m.max((w as f64).abs()));
    if max_abs == 0.0 {
        return 1.0;
    }
    // From α = 1 down, keeping only strict improvements: ties keep the
    // wider range.
    let full = max_abs / INT4_MAX as f64;
    let mut best = (squared_error(channel, full), full);
    for k in 1..=GRID_STEPS {
        let alpha = 1.0 - (1.0 - MIN_RATIO) * k as f64 / GRID_STEPS as f64;
        let scale = alpha * max_abs / INT4_MAX as f64;
        let error = squared_error(channel, scale);
        if error < best.0 {
            best = (error, scale);
        }
    }
    for _ in 0..REFINEMENTS {
        let (wq, qq) = channel.iter().fold((0f64, 0f64), |(wq, qq), &w| {
            let q = code(w, best.1);
            (wq + w as f64 * q, qq + q * q)
        });
        if qq == 0.0 {
            break;
        }
        let scale = wq / qq;
        let error = squared_error(channel, scale);
        if !(scale > 0.0 && error < best.0) {
            break;
        }
        best = (error, scale);
    }
    best.1
}

/// Symmetric per-output-channel int4 weights in `[-7, 7]`: `weights` is
/// `channels` rows of equal length. Returns the codes and one scale per
/// channel.
pub fn quantize_per_channel_i4(weights: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
    let row = weights.len() / channels.max(1);
    let mut codes = Vec::with_capacity(weights.len());
    let mut scales = Vec::with_capacity(channels);
    for channel in weights.chunks(row.max(1)).take(channels) {
        // Codes from the f32 scale the artifact records, so bias and
        // multipliers (computed from it) describe exactly these codes.
        let scale = channel_scale(channel) as f32;
        codes.extend(channel.iter().map(|&w| code(w, scale as f64) as i8));
        scales.push(scale);
    }
    (codes, scales)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_grids_keep_the_full_range() {
        // Already on the int4 grid of max|w| / 7: zero error at α = 1.
        let (codes, scales) = quantize_per_channel_i4(&[0.7, -0.7, 0.3, 0.0, 0.0, 0.0], 2);
        assert_eq!(codes, vec![7, -7, 3, 0, 0, 0]);
        assert!((scales[0] - 0.1).abs() < 1e-7, "{scales:?}");
        assert_eq!(scales[1], 1.0);
    }

    #[test]
    fn one_outlier_is_clipped_when_that_serves_the_bulk() {
        // 1.0 once, 0.2 a hundred times. Max-abs (s = 1/7) stores 0.2 as
        // 1/7: error 100·(0.2 − 1/7)² ≈ 0.327. Clipping to s = 0.1 (α =
        // 0.7) stores 0.2 exactly and 1.0 as 0.7: error 0.09.
        let mut channel = vec![0.2f32; 100];
        channel.push(1.0);
        let max_abs_error = squared_error(&channel, 1.0 / 7.0);
        let scale = channel_scale(&channel);
        let error = squared_error(&channel, scale);
        assert!((max_abs_error - 0.3265).abs() < 1e-3, "{max_abs_error}");
        assert!(error <= 0.09 + 1e-6, "scale {scale}: error {error}");
        assert!(scale < 1.0 / 7.0);
        let (codes, _) = quantize_per_channel_i4(&channel, 1);
        assert!(codes.iter().all(|c| (-7..=7).contains(c)));
        assert_eq!((codes[0], codes[100]), (2, 7));
    }

    #[test]
    fn never_worse_than_max_abs_and_codes_stay_symmetric() {
        // A deterministic spread of channels: heavy-tailed, uniform, signed.
        for seed in 1..40u32 {
            let channel: Vec<f32> = (0..37u32)
                .map(|i| {
                    let hash = i.wrapping_mul(2654435761).wrapping_mul(seed) >> 8;
                    let v = hash as f32 / (1 << 24) as f32;
                    (v - 0.5) * if i % 11 == 0 { 4.0 } else { 1.0 }
                })
                .collect();
            let max_abs = channel.iter().fold(0f32, |m, w| m.max(w.abs())) as f64;
            let scale = channel_scale(&channel);
            assert!(squared_error(&channel, scale) <= squared_error(&channel, max_abs / 7.0));
            let (codes, _) = quantize_per_channel_i4(&channel, 1);
            assert!(codes.iter().all(|c| (-7..=7).contains(c)), "seed {seed}");
        }
    }
}
