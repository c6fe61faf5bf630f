//! `sturdy quantize --aging P`: the calibration set plus an end-of-life copy
//! of every sample, so that activation ranges keep their margin when the
//! sensor has aged.
//!
//! An aged sensor (the drift streams in `models/drift/` model the same
//! mechanisms) has lost gain, its offset has crept and it is noisier. With
//! the calibration set's value range `[lo, hi]` (width `w`) and severity
//! `P ∈ (0, 1)`, the aged copy of a value `x` is
//! `lo + (1 − P)·(x − lo) + (P/2)·w + ε`, with `ε` uniform noise of standard
//! deviation `P·w/8` drawn from a fixed seed (the same file always gives
//! the same copies).

use crate::npy;
use anyhow::{ensure, Result};
use std::path::Path;

/// The samples of `calib` followed by one aged copy of each, written to
/// `out` (float32, same sample shape).
pub fn write_aged_calibration(calib: &Path, severity: f64, out: &Path) -> Result<usize> {
    ensure!(
        severity > 0.0 && severity < 1.0,
        "--aging {severity}: the end-of-life severity is a fraction in (0, 1), e.g. 0.3"
    );
    let set = npy::read_samples_as_stored(calib)?;
    let aged = aged_copies(&set.samples, severity as f32);
    let all: Vec<Vec<f32>> = set.samples.iter().cloned().chain(aged).collect();
    npy::write_outputs(out, &all, &set.sample_shape)?;
    Ok(all.len())
}

/// One aged copy of each of `samples` at `severity` (see the module docs).
pub fn aged_copies(samples: &[Vec<f32>], severity: f32) -> Vec<Vec<f32>> {
    let values = samples.iter().flatten().copied();
    let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    let width = (hi - lo).max(0.0);
    // Uniform on [−a, a] has standard deviation a/√3.
    let amplitude = severity * width / 8.0 * 3f32.sqrt();
    let mut state = 0x5EED_A9E0_u64;
    let mut noise = move || {
        // splitmix64 (Steele, Lea, Flood 2014): a fixed, portable sequence.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        ((z >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amplitude
    };
    samples
        .iter()
        .map(|s| {
            s.iter()
                .map(|&x| lo + (1.0 - severity) * (x - lo) + severity / 2.0 * width + noise())
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gain_falls_and_offset_creeps_by_hand() {
        // Range [0, 1], severity 0.4, noise σ = 0.05: 0 → 0.2, 1 → 0.8.
        let samples = vec![vec![0.0f32; 2000], vec![1.0f32; 2000]];
        let aged = aged_copies(&samples, 0.4);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
        assert!((mean(&aged[0]) - 0.2).abs() < 0.005);
        assert!((mean(&aged[1]) - 0.8).abs() < 0.005);
        let sd = (aged[0].iter().map(|x| (x - 0.2).powi(2)).sum::<f32>() / 2000.0).sqrt();
        assert!((sd - 0.05).abs() < 0.004, "σ {sd}");
        assert_eq!(aged, aged_copies(&samples, 0.4), "a fixed seed");
    }
}
