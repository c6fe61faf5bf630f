//! Section 4's continuous and structured families: Gaussian noise on the
//! weight codes (σ a fraction of each layer's code standard deviation),
//! and whole output channels zeroed or sign-flipped — one layer at a time
//! and the most damaging few overall. The damage is made on the plain
//! artifact and carried to the protected one at the bits that store it
//! (the key holder's aim: the worst case for the defender).

use super::batch::outcome;
use super::knobs::Knobs;
use super::layers::WeightLayer;
use super::report::{StructuredDamage, SweepPoint};
use super::stats::{rate_estimate, task_seed};
use super::subject::Subject;
use super::transfer::{accuracy_of, carry, changed_bits, Aim};
use anyhow::Result;
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use indicatif::ProgressBar;
use rayon::prelude::*;

/// Noise levels: σ as a fraction of each layer's code std.
pub const SIGMAS: [f64; 7] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0];
/// Fraction of a layer's channels the per-layer structured rows damage.
pub const CHANNEL_FRACTION: f64 = 0.1;
/// Channels the "most damaging overall" rows damage together.
pub const TOP_K: usize = 5;

/// `bytes` with Gaussian noise of `sigma` × each layer's code std added to
/// every weight code (rounded, clamped).
pub fn with_noise(plain: &[u8], layers: &[WeightLayer], sigma: f64, seed: u64) -> Vec<u8> {
    let mut bytes = plain.to_vec();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut uniform = move || ((rng.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    for layer in layers {
        let codes = layer.codes(&bytes);
        let n = codes.len().max(1) as f64;
        let mean = codes.iter().map(|&c| f64::from(c)).sum::<f64>() / n;
        let std = (codes
            .iter()
            .map(|&c| (f64::from(c) - mean).powi(2))
            .sum::<f64>()
            / n)
            .sqrt();
        let noisy: Vec<i8> = codes
            .iter()
            .map(|&c| {
                // Box–Muller.
                let z = (-2.0 * uniform().ln()).sqrt() * (std::f64::consts::TAU * uniform()).cos();
                (f64::from(c) + sigma * std * z)
                    .round()
                    .clamp(-128.0, 127.0) as i8
            })
            .collect();
        layer.set_codes(&mut bytes, &noisy);
    }
    bytes
}

/// Accuracy vs noise for the plain artifact and (with a key) the
/// protected one.
pub fn noise(s: &Subject, k: &Knobs, bar: &ProgressBar) -> Result<Vec<SweepPoint>> {
    let batch = s.batch.head(k.samples);
    let clean = batch.predictions(&s.plain)?;
    let mut points = Vec::new();
    for (i, &sigma) in SIGMAS.iter().enumerate() {
        let runs: Vec<(f64, Option<f64>)> = (0..k.seeds)
            .into_par_iter()
            .map(|r| -> Result<(f64, Option<f64>)> {
                let noisy = with_noise(
                    &s.plain,
                    &s.layers,
                    sigma,
                    task_seed(k.base_seed, "noise", i, r),
                );
                let plain =
                    outcome(&batch.predictions(&noisy)?, &clean, batch.labels.as_deref()).accuracy;
                let protected = match &s.protected {
                    Some(p) => {
                        let bits = changed_bits(&s.plain, &noisy)?;
                        carry(s, p, &bits, Aim::ProtectedKeyHolder, &batch)?
                            .0
                            .map(|o| accuracy_of(&o, &batch))
                    }
                    None => None,
                };
                bar.inc(1);
                Ok((plain, protected))
            })
            .collect::<Result<_>>()?;
        points.push(curve_point("plain", sigma, runs.iter().map(|r| Some(r.0))));
        if s.protected.is_some() {
            points.push(curve_point(
                Aim::ProtectedKeyHolder.name(),
                sigma,
                runs.iter().map(|r| r.1),
            ));
        }
    }
    Ok(points)
}

/// A sweep point from per-seed accuracies (`None`: refused at load).
fn curve_point(variant: &str, x: f64, runs: impl Iterator<Item = Option<f64>>) -> SweepPoint {
    let runs: Vec<Option<f64>> = runs.collect();
    let loaded: Vec<f64> = runs.iter().flatten().copied().collect();
    SweepPoint {
        variant: variant.into(),
        x,
        accuracy: rate_estimate(&loaded),
        refused: (runs.len() - loaded.len()) as u32,
        ..SweepPoint::default()
    }
}

/// How a channel is damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every weight of the channel set to 0.
    Zero,
    /// Every weight of the channel negated.
    SignFlip,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Zero => "zero",
            Mode::SignFlip => "sign-flip",
        }
    }
}

/// `bytes` with channels `channels` of `layer` damaged by `mode`.
pub fn damage_channels(bytes: &mut [u8], layer: &WeightLayer, channels: &[usize], mode: Mode) {
    let mut codes = layer.codes(bytes);
    let per = layer.per_channel();
    for &c in channels {
        for v in codes.iter_mut().skip(c * per).take(per) {
            *v = match mode {
                Mode::Zero => 0,
                Mode::SignFlip => v.saturating_neg(),
            };
        }
    }
    layer.set_codes(bytes, &codes);
}

/// Channels of `layer` by decreasing L1 norm of their codes.
fn by_norm(bytes: &[u8], layer: &WeightLayer) -> Vec<usize> {
    let codes = layer.codes(bytes);
    let per = layer.per_channel().max(1);
    let mut norms: Vec<(i64, usize)> = codes
        .chunks(per)
        .enumerate()
        .map(|(c, w)| (w.iter().map(|&v| i64::from(v).abs()).sum(), c))
        .collect();
    norms.sort_by_key(|&(n, c)| (std::cmp::Reverse(n), c));
    norms.into_iter().map(|(_, c)| c).collect()
}

/// Per-layer rows (the largest-norm tenth of each layer's channels) and
/// the `TOP_K` single channels that hurt most when zeroed, together —
/// on the plain artifact and carried to the protected one.
pub fn structured(s: &Subject, k: &Knobs, bar: &ProgressBar) -> Result<Vec<StructuredDamage>> {
    let batch = s.batch.head(k.heat_samples);
    let accuracy = |bytes: &[u8]| -> Result<f64> {
        let p = batch.predictions(bytes)?;
        Ok(outcome(&p, &p, batch.labels.as_deref()).accuracy)
    };
    let mut rows = Vec::new();
    for layer in &s.layers {
        let count = ((layer.channels as f64 * CHANNEL_FRACTION).ceil() as usize).max(1);
        let chosen: Vec<usize> = by_norm(&s.plain, layer).into_iter().take(count).collect();
        for mode in [Mode::Zero, Mode::SignFlip] {
            let mut bytes = s.plain.clone();
            damage_channels(&mut bytes, layer, &chosen, mode);
            rows.push(StructuredDamage {
                variant: "plain".into(),
                mode: mode.name().into(),
                node: layer.node.clone(),
                channels: count,
                accuracy: Some(accuracy(&bytes)?),
            });
        }
        bar.inc(1);
    }
    // Every single channel, zeroed alone, ranked by the accuracy it leaves.
    let singles: Vec<(usize, usize)> = s
        .layers
        .iter()
        .enumerate()
        .flat_map(|(l, layer)| (0..layer.channels).map(move |c| (l, c)))
        .collect();
    let mut scored: Vec<(f64, usize, usize)> = singles
        .par_iter()
        .map(|&(l, c)| -> Result<(f64, usize, usize)> {
            let mut bytes = s.plain.clone();
            damage_channels(&mut bytes, &s.layers[l], &[c], Mode::Zero);
            Ok((accuracy(&bytes)?, l, c))
        })
        .collect::<Result<_>>()?;
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut worst = s.plain.clone();
    for &(_, l, c) in scored.iter().take(TOP_K) {
        damage_channels(&mut worst, &s.layers[l], &[c], Mode::Zero);
    }
    let top = |variant: &str, accuracy: Option<f64>| StructuredDamage {
        variant: variant.into(),
        mode: "zero".into(),
        node: format!("{TOP_K} most damaging channels, all layers"),
        channels: TOP_K.min(scored.len()),
        accuracy,
    };
    rows.push(top("plain", Some(accuracy(&worst)?)));
    if let Some(p) = &s.protected {
        let bits = changed_bits(&s.plain, &worst)?;
        for aim in Aim::ALL {
            let outputs = carry(s, p, &bits, aim, &batch)?.0;
            rows.push(top(aim.name(), outputs.map(|o| accuracy_of(&o, &batch))));
        }
    }
    bar.inc(1);
    Ok(rows)
}

/// Progress units of the two campaigns.
pub fn work(s: &Subject, k: &Knobs) -> u64 {
    SIGMAS.len() as u64 * u64::from(k.seeds) + s.layers.len() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_noise_changes_nothing() {
        let layer = WeightLayer {
            op: 0,
            node: "n".into(),
            weights: 0..4,
            int4: false,
            count: 4,
            channels: 2,
            bias: 0..0,
            multipliers: 0..0,
            shifts: 0..0,
        };
        let bytes = vec![1u8, 0xfe, 7, 9];
        assert_eq!(
            with_noise(&bytes, std::slice::from_ref(&layer), 0.0, 3),
            bytes
        );
        let noisy = with_noise(&bytes, std::slice::from_ref(&layer), 1.0, 3);
        assert_ne!(noisy, bytes);
        let mut damaged = bytes.clone();
        damage_channels(&mut damaged, &layer, &[1], Mode::SignFlip);
        assert_eq!(damaged, vec![1, 0xfe, (-7i8) as u8, (-9i8) as u8]);
        damage_channels(&mut damaged, &layer, &[0], Mode::Zero);
        assert_eq!(&damaged[..2], &[0, 0]);
    }
}
