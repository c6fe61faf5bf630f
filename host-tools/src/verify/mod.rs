//! Sound verification of the integer artifact (`sturdy verify`).
//!
//! A proof here is about the bits the board computes: bounds propagate in
//! the runtime's own integer arithmetic ([`bounds`]: requantization,
//! rounding and saturation are monotone, Conv/FC split by weight sign,
//! nothing in float), so "proved" means every int8 input of the region
//! gets the property from `sturdy_runtime` — no float surrogate, no
//! tolerance. Interval bound propagation is the cheap, sound first tier of
//! neural-network verification (exact verification of quantized networks
//! is PSPACE-hard, Henzinger et al. 2021); splitting the input region
//! ([`search`], branch and bound) tightens what it leaves unknown. A
//! falsified property comes with an input of the region that the runtime
//! really gets wrong.
//!
//! The properties ([`property`]): local robustness (every input within ±ε
//! codes of a sample keeps its label), blur tolerance after veriFIRE
//! (every input on the path from a sample to its Gaussian-blurred copy
//! keeps its label), monotonicity after veriFIRE (raising the bright inputs
//! by up to Δ codes never lowers a class's score below its value at the
//! sample), and the user's own from a property file ([`spec`]).

pub mod bounds;
pub mod campaign;
pub mod interval;
pub mod linear;
pub mod property;
pub mod search;
pub mod spec;

use anyhow::{bail, ensure, Result};
use interval::Interval;
use property::{Condition, Property, Region};

/// Local robustness: every input within ±`eps` codes of `x` gets `label`.
pub fn robustness(x: &[i8], label: usize, eps: u8) -> Property {
    Property {
        name: format!("±{eps} codes keeps label {label}"),
        region: Region::Box(Interval::around(x, eps)),
        condition: Condition::Label(label),
    }
}

/// Blur tolerance: every input on the path from `x` to its Gaussian blur
/// (standard deviation `sigma` pixels) gets `label`. `dims` is the input's
/// storage shape; the blur needs an image, `[1, H, W, C]`.
pub fn blur(x: &[i8], dims: &[usize], sigma: f64, label: usize) -> Result<Property> {
    let &[1, h, w, c] = dims else {
        bail!("blur needs an image input [1, H, W, C]; this model's input is {dims:?}");
    };
    ensure!(
        sigma > 0.0 && sigma.is_finite(),
        "blur sigma {sigma} is not a positive number"
    );
    Ok(Property {
        name: format!("blur σ={sigma} keeps label {label}"),
        region: Region::Segment {
            from: x.to_vec(),
            to: gaussian_blur(x, [h, w, c], sigma),
            t0: 0.0,
            t1: 1.0,
        },
        condition: Condition::Label(label),
    })
}

/// Monotonicity: raising every input of `x` above code `above` by its own
/// δ ∈ [0, `delta`] never lowers `class`'s score below its value at `x`
/// (`base`, the runtime's score there).
pub fn monotone(x: &[i8], above: i8, delta: u8, class: usize, base: i8) -> Property {
    let hi = x
        .iter()
        .map(|&v| {
            if v > above {
                (i32::from(v) + i32::from(delta)).min(127) as i8
            } else {
                v
            }
        })
        .collect();
    Property {
        name: format!("raising inputs > {above} by ≤ {delta} keeps score[{class}] ≥ {base}"),
        region: Region::Box(Interval { lo: x.to_vec(), hi }),
        condition: Condition::AtLeast { class, code: base },
    }
}

/// Gaussian blur of an NHWC image in code space, each channel on its own,
/// edges replicated, rounded to the nearest code. Codes are affine in the
/// real values and the kernel sums to one, so this is the blur of the real
/// image, requantized.
fn gaussian_blur(x: &[i8], [h, w, c]: [usize; 3], sigma: f64) -> Vec<i8> {
    let radius = (3.0 * sigma).ceil() as isize;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|d| (-(d * d) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let at = |y: isize, xx: isize, ch: usize| {
        let y = y.clamp(0, h as isize - 1) as usize;
        let xx = xx.clamp(0, w as isize - 1) as usize;
        f64::from(x[(y * w + xx) * c + ch])
    };
    let mut rows = vec![0.0; h * w * c];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                rows[(y * w + xx) * c + ch] = (-radius..=radius)
                    .zip(&weights)
                    .map(|(d, k)| k * at(y as isize, xx as isize + d, ch))
                    .sum::<f64>()
                    / total;
            }
        }
    }
    let row = |y: isize, xx: usize, ch: usize| {
        rows[(y.clamp(0, h as isize - 1) as usize * w + xx) * c + ch]
    };
    let mut out = vec![0i8; h * w * c];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                let v: f64 = (-radius..=radius)
                    .zip(&weights)
                    .map(|(d, k)| k * row(y as isize + d, xx, ch))
                    .sum::<f64>()
                    / total;
                out[(y * w + xx) * c + ch] = v.round().clamp(-128.0, 127.0) as i8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blur_keeps_a_flat_image_and_spreads_a_dot_symmetrically() {
        assert_eq!(gaussian_blur(&[7; 12], [3, 4, 1], 1.0), vec![7; 12]);
        let mut dot = vec![0i8; 25];
        dot[12] = 100;
        let b = gaussian_blur(&dot, [5, 5, 1], 0.8);
        // 1-D weights at σ = 0.8, radius 3: e^0 = 1, e^(−1/1.28) = 0.4578,
        // e^(−4/1.28) = 0.0439, e^(−9/1.28) = 0.00088, sum 2.0052; the
        // centre keeps 100 / 2.0052² = 24.87.
        assert_eq!(b[12], 25);
        assert_eq!(b[11], b[13]);
        assert_eq!(b[7], b[17]);
        assert_eq!(b[7], b[11]);
    }

    #[test]
    fn monotone_raises_only_bright_inputs_and_saturates() {
        let p = monotone(&[-128, 0, 120], -100, 10, 1, 5);
        let Region::Box(b) = p.region else { panic!() };
        assert_eq!((b.lo, b.hi), (vec![-128, 0, 120], vec![-128, 10, 127]));
        assert_eq!(p.condition, Condition::AtLeast { class: 1, code: 5 });
    }
}
