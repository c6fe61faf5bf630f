//! Bounds of Conv2d and FullyConnected outputs: the accumulator split by
//! weight sign, then the runtime's own requantization.
//!
//! The kernels compute `clamp(requant_o(bias[o] + Σ (x + input_offset) ·
//! w) + output_offset)`. Over an input interval the sum is smallest with
//! every positively weighted input at its lowest code and every
//! negatively weighted one at its highest, and largest the other way
//! round; the sum is exact here (i64). The kernels add in wrapping i32:
//! wrapping arithmetic is exact modulo 2^32, so whenever both bounds fit
//! an i32 every reachable accumulator does too and the kernel's sum is the
//! true one. Outside that range the bound is refused ([`Overflow`]), not
//! guessed. Requantization ([`Requant::apply`]: a non-negative multiplier,
//! a floor), the saturating add and the clamp are all non-decreasing, so
//! they map the accumulator bounds to the output bounds.

use anyhow::{bail, ensure, Result};
use sturdy_runtime::arith::Requant;
use sturdy_runtime::kernels::{Activation, Conv2d, FullyConnected};
use sturdy_runtime::WeightData;

/// The per-channel arrays of one Conv/FC op.
pub struct Channels<'a> {
    /// Weight codes in the kernel's order.
    pub weights: Vec<i32>,
    /// Per-channel bias.
    pub bias: &'a [i32],
    /// Per-channel requantization.
    pub requants: Vec<Requant>,
}

impl<'a> Channels<'a> {
    /// Decodes the weights and checks every channel's requant.
    pub fn new(
        weights: &WeightData<'_>,
        bias: &'a [i32],
        multipliers: &[i32],
        shifts: &[i32],
    ) -> Result<Self> {
        let weights = match weights {
            WeightData::I8(w) => w.iter().map(|&v| i32::from(v)).collect(),
            WeightData::I4(w) => (0..w.len()).map(|i| w.get(i)).collect(),
        };
        let requants = multipliers
            .iter()
            .zip(shifts)
            .map(|(&m, &s)| Requant::new(m, s).map_err(|e| anyhow::anyhow!("{e}")))
            .collect::<Result<Vec<_>>>()?;
        ensure!(
            requants.len() == bias.len(),
            "{} requants for {} channels",
            requants.len(),
            bias.len()
        );
        Ok(Self {
            weights,
            bias,
            requants,
        })
    }
}

/// The accumulator sum went past i32: the kernel's wrapping sum could
/// differ from the true one, so no bound is claimed.
#[derive(Debug)]
pub struct Overflow;

impl std::fmt::Display for Overflow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an accumulator bound leaves the i32 range")
    }
}

impl std::error::Error for Overflow {}

/// Low and high accumulators of one output, then its output bounds.
#[derive(Clone, Copy)]
struct Acc {
    lo: i64,
    hi: i64,
}

impl Acc {
    fn new(bias: i32) -> Self {
        Self {
            lo: bias.into(),
            hi: bias.into(),
        }
    }

    #[inline]
    fn add(&mut self, w: i32, lo: i8, hi: i8, offset: i32) {
        let (a, b) = (
            i64::from(lo) + i64::from(offset),
            i64::from(hi) + i64::from(offset),
        );
        let w = i64::from(w);
        if w >= 0 {
            self.lo += w * a;
            self.hi += w * b;
        } else {
            self.lo += w * b;
            self.hi += w * a;
        }
    }

    fn finish(self, rq: Requant, output_offset: i32, act: Activation) -> Result<(i8, i8)> {
        let fit = |v: i64| i32::try_from(v).map_err(|_| Overflow);
        let out = |acc: i32| {
            rq.apply(acc)
                .saturating_add(output_offset)
                .clamp(act.min.into(), act.max.into()) as i8
        };
        Ok((out(fit(self.lo)?), out(fit(self.hi)?)))
    }
}

/// Output bounds of a Conv2d over input bounds `lo`, `hi` (NHWC, the
/// kernel's indexing: taps outside the input contribute nothing).
pub fn conv2d(p: &Conv2d, ch: &Channels<'_>, lo: &[i8], hi: &[i8]) -> Result<(Vec<i8>, Vec<i8>)> {
    let groups = p.groups.max(1);
    let (cin_g, cout_g) = (p.in_c / groups, p.out_c / groups);
    let taps = p.kernel_h * p.kernel_w * cin_g;
    if lo.len() != p.in_h * p.in_w * p.in_c
        || ch.weights.len() != p.out_c * taps
        || ch.bias.len() != p.out_c
        || cout_g == 0
    {
        bail!("conv shapes do not match its parameters");
    }
    let n = p.out_h * p.out_w * p.out_c;
    let (mut out_lo, mut out_hi) = (vec![0i8; n], vec![0i8; n]);
    for oy in 0..p.out_h {
        for ox in 0..p.out_w {
            for o in 0..p.out_c {
                let first = (o / cout_g) * cin_g;
                let mut acc = Acc::new(ch.bias[o]);
                for ky in 0..p.kernel_h {
                    let Some(iy) = (oy * p.stride_h + ky * p.dilation_h)
                        .checked_sub(p.pad_top)
                        .filter(|&y| y < p.in_h)
                    else {
                        continue;
                    };
                    for kx in 0..p.kernel_w {
                        let Some(ix) = (ox * p.stride_w + kx * p.dilation_w)
                            .checked_sub(p.pad_left)
                            .filter(|&x| x < p.in_w)
                        else {
                            continue;
                        };
                        let at = (iy * p.in_w + ix) * p.in_c + first;
                        let w = (o * taps) + (ky * p.kernel_w + kx) * cin_g;
                        for c in 0..cin_g {
                            acc.add(ch.weights[w + c], lo[at + c], hi[at + c], p.input_offset);
                        }
                    }
                }
                let y = (oy * p.out_w + ox) * p.out_c + o;
                (out_lo[y], out_hi[y]) = acc.finish(ch.requants[o], p.output_offset, p.act)?;
            }
        }
    }
    Ok((out_lo, out_hi))
}

/// Output bounds of a FullyConnected over input bounds `lo`, `hi`.
pub fn fully_connected(
    p: &FullyConnected,
    ch: &Channels<'_>,
    lo: &[i8],
    hi: &[i8],
) -> Result<(Vec<i8>, Vec<i8>)> {
    let (i_n, o_n) = (p.in_features, p.out_features);
    if lo.len() != p.rows * i_n || ch.weights.len() != o_n * i_n || ch.bias.len() != o_n {
        bail!("fully connected shapes do not match its parameters");
    }
    let (mut out_lo, mut out_hi) = (vec![0i8; p.rows * o_n], vec![0i8; p.rows * o_n]);
    for r in 0..p.rows {
        let (xl, xh) = (&lo[r * i_n..(r + 1) * i_n], &hi[r * i_n..(r + 1) * i_n]);
        for o in 0..o_n {
            let mut acc = Acc::new(ch.bias[o]);
            for ((&w, &l), &h) in ch.weights[o * i_n..(o + 1) * i_n].iter().zip(xl).zip(xh) {
                acc.add(w, l, h, p.input_offset);
            }
            (out_lo[r * o_n + o], out_hi[r * o_n + o]) =
                acc.finish(ch.requants[o], p.output_offset, p.act)?;
        }
    }
    Ok((out_lo, out_hi))
}
