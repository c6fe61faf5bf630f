//! The eigenvalue spectrum of a layer's weight matrix and its
//! Marchenko–Pastur fit (after "Pruning Deep Neural Networks via the
//! Marchenko–Pastur Distribution", 2026, and WeightWatcher).
//!
//! A Conv/FC layer is the matrix `W` of `out × (kernel_h·kernel_w·in)`;
//! with `M ≤ N` its smaller and larger side, the spectrum is that of
//! `X = W Wᵀ / N` (`M × M`; transposed when `out > in·k·k`). Were `W`'s
//! entries independent with variance `σ²`, `X`'s eigenvalues would follow
//! the MP law on `[σ²(1 − √q)², σ²(1 + √q)²]`, `q = M/N`: what training
//! learnt shows as *spikes* above the upper edge `λ₊`.

use super::eigen;

/// One layer's spectrum and fit.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    /// `M`, the matrix's smaller side.
    pub m: usize,
    /// `N`, its larger side.
    pub n: usize,
    /// Eigenvalues of `W Wᵀ / N`, ascending.
    pub eigenvalues: Vec<f64>,
    /// Fitted bulk variance `σ²`.
    pub sigma2: f64,
    /// The bulk's upper edge `λ₊ = σ²(1 + √(M/N))²`.
    pub edge: f64,
    /// Eigenvalues above `λ₊`: the signal rank.
    pub spikes: usize,
    /// `Σλ / λ_max` (`‖W‖²_F / ‖W‖²_2`).
    pub stable_rank: f64,
    /// Power-law exponent of the tail, with ≥ [`MIN_FOR_ALPHA`] eigenvalues.
    pub alpha: Option<f64>,
}

/// Fewest eigenvalues a tail exponent is fitted on (WeightWatcher's rule:
/// smaller spectra give spurious exponents).
pub const MIN_FOR_ALPHA: usize = 50;

/// The spectrum of `w` (`out × inner`, row-major), with the eigenvectors
/// of `W Wᵀ` (when `out ≤ inner`) or of `Wᵀ W` (otherwise; `transposed`).
pub struct Decomposition {
    /// The spectrum and its fit.
    pub spectrum: Spectrum,
    /// Unit eigenvectors, `vectors[k]` of `eigenvalues[k]`.
    pub vectors: Vec<Vec<f64>>,
    /// Whether the Gram matrix is `Wᵀ W` (`out > inner`).
    pub transposed: bool,
}

/// Decomposes the layer matrix `w` (`out × inner`).
pub fn decompose(w: &[f32], out: usize, inner: usize) -> Decomposition {
    let transposed = out > inner;
    let (m, n) = if transposed {
        (inner, out)
    } else {
        (out, inner)
    };
    let at = |i: usize, k: usize| -> f64 {
        f64::from(if transposed {
            w[k * inner + i]
        } else {
            w[i * inner + k]
        })
    };
    let mut gram = vec![0.0; m * m];
    for i in 0..m {
        for j in i..m {
            let s: f64 = (0..n).map(|k| at(i, k) * at(j, k)).sum::<f64>() / n as f64;
            gram[i * m + j] = s;
            gram[j * m + i] = s;
        }
    }
    let (values, vectors) = eigen::symmetric(&gram, m);
    let eigenvalues: Vec<f64> = values.into_iter().map(|v| v.max(0.0)).collect();
    Decomposition {
        spectrum: fit(eigenvalues, m, n),
        vectors,
        transposed,
    }
}

/// Fits the MP bulk to `eigenvalues` (ascending) of an `m × n` matrix:
/// `σ²` starts at the mean eigenvalue (exactly `σ²` for pure noise, since
/// `tr X / M = Σw² / (MN)`), then is the mean of the eigenvalues at or
/// below the edge it implies, until the bulk stops changing.
pub fn fit(eigenvalues: Vec<f64>, m: usize, n: usize) -> Spectrum {
    let q = m as f64 / n.max(1) as f64;
    let edge_of = |s2: f64| s2 * (1.0 + q.sqrt()).powi(2);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let mut sigma2 = mean(&eigenvalues);
    let mut bulk = eigenvalues.len();
    for _ in 0..100 {
        let edge = edge_of(sigma2);
        let next = eigenvalues.iter().filter(|&&l| l <= edge).count().max(1);
        sigma2 = mean(&eigenvalues[..next]);
        if next == bulk {
            break;
        }
        bulk = next;
    }
    let edge = edge_of(sigma2);
    let spikes = eigenvalues.iter().filter(|&&l| l > edge).count();
    let top = eigenvalues.last().copied().unwrap_or(0.0);
    let stable_rank = if top > 0.0 {
        eigenvalues.iter().sum::<f64>() / top
    } else {
        0.0
    };
    let alpha = (eigenvalues.len() >= MIN_FOR_ALPHA)
        .then(|| hill(&eigenvalues))
        .flatten();
    Spectrum {
        m,
        n,
        eigenvalues,
        sigma2,
        edge,
        spikes,
        stable_rank,
        alpha,
    }
}

/// Tail exponent `α` of a density `∝ λ^(−α)` over the upper half of the
/// spectrum, by the Hill (maximum-likelihood) estimator `1 + k / Σ
/// ln(λᵢ/λ_min)`, `λ_min` the smallest of the `k` tail values.
fn hill(ascending: &[f64]) -> Option<f64> {
    let tail = &ascending[ascending.len() / 2..];
    let xmin = *tail.first()?;
    if xmin <= 0.0 {
        return None;
    }
    let logs: f64 = tail.iter().map(|l| (l / xmin).ln()).sum();
    (logs > 0.0).then(|| 1.0 + tail.len() as f64 / logs)
}

/// The MP density at `lambda` for bulk variance `sigma2` and ratio `q =
/// M/N ≤ 1`: `√((λ₊ − λ)(λ − λ₋)) / (2π σ² q λ)` inside the support, 0
/// outside.
pub fn density(lambda: f64, sigma2: f64, q: f64) -> f64 {
    let (lo, hi) = (
        sigma2 * (1.0 - q.sqrt()).powi(2),
        sigma2 * (1.0 + q.sqrt()).powi(2),
    );
    if lambda <= lo || lambda >= hi || lambda <= 0.0 {
        return 0.0;
    }
    ((hi - lambda) * (lambda - lo)).sqrt() / (2.0 * std::f64::consts::PI * sigma2 * q * lambda)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20::rand_core::{Rng, SeedableRng};
    use chacha20::ChaCha20Rng;

    fn gaussian(rng: &mut ChaCha20Rng) -> f64 {
        let u = |r: &mut ChaCha20Rng| ((r.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        let (a, b) = (u(rng), u(rng));
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }

    #[test]
    fn a_random_gaussian_matrix_gives_back_its_variance_and_no_spikes_to_speak_of() {
        let mut rng = ChaCha20Rng::seed_from_u64(4);
        let (out, inner, sigma) = (120usize, 400usize, 0.05f64);
        let w: Vec<f32> = (0..out * inner)
            .map(|_| (sigma * gaussian(&mut rng)) as f32)
            .collect();
        let d = decompose(&w, out, inner);
        let s = &d.spectrum;
        assert_eq!((s.m, s.n), (120, 400));
        let rel = (s.sigma2 - sigma * sigma).abs() / (sigma * sigma);
        assert!(rel < 0.05, "σ² {} vs {}", s.sigma2, sigma * sigma);
        assert!(s.spikes <= 2, "{} spikes in pure noise", s.spikes);
        // Transposing the layer changes nothing but the orientation.
        let wt: Vec<f32> = (0..inner * out)
            .map(|i| w[(i % out) * inner + i / out])
            .collect();
        let t = decompose(&wt, inner, out);
        assert!(t.transposed && (t.spectrum.sigma2 - s.sigma2).abs() < 1e-12);
    }

    #[test]
    fn planted_spikes_are_counted_and_the_density_integrates_to_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let (out, inner) = (80usize, 320usize);
        let mut w: Vec<f32> = (0..out * inner)
            .map(|_| (0.1 * gaussian(&mut rng)) as f32)
            .collect();
        // Three strong rank-one directions on top of the noise.
        for r in 0..3 {
            for i in 0..out {
                for k in 0..inner {
                    let u = if i % 3 == r { 1.0 } else { 0.0 };
                    let v = if k % 7 == r { 1.0 } else { 0.0 };
                    w[i * inner + k] += (0.8 * u * v) as f32;
                }
            }
        }
        assert_eq!(decompose(&w, out, inner).spectrum.spikes, 3);
        let (s2, q) = (2.0, 0.25);
        let steps = 200_000;
        let (lo, hi) = (s2 * 0.25, s2 * 2.25);
        let h = (hi - lo) / steps as f64;
        let mass: f64 = (0..steps)
            .map(|i| density(lo + (i as f64 + 0.5) * h, s2, q) * h)
            .sum();
        assert!((mass - 1.0).abs() < 1e-3, "{mass}");
    }
}
