//! The depthwise convolution loop nest for one weight per input channel
//! (`groups == in_c == out_c`, int8 weights), four channels at a time.
//!
//! NHWC puts a pixel's channels side by side, so one word load brings the
//! same tap of four neighbouring channels, and [`mac::lanes4`] multiplies
//! it with those channels' weights for that tap — gathered once per block
//! into a small table, since the artifact stores each channel's taps
//! together. Channel blocks are the outer loop: the block's bias and
//! requants are read once and serve every pixel, which matters because a
//! depthwise output is only `kernel_h · kernel_w` MACs. A last block of
//! fewer than four channels runs the same loop one channel at a time.

use super::conv::Conv2d;
use super::mac;
use super::window::Axis;
use crate::arith::{clamp_to_i8, Requant};
use crate::Error;

/// Most taps (`kernel_h · kernel_w`) the block's weight table holds: 7×7
/// and below take this path.
pub const MAX_TAPS: usize = 49;

/// Whether [`depthwise`] applies to `p` with int8 weights.
pub(super) fn applies(p: &Conv2d) -> bool {
    p.groups == p.in_c && p.out_c == p.in_c && p.kernel_h * p.kernel_w <= MAX_TAPS
}

/// Runs the depthwise convolution `conv2d` validated (see [`applies`]).
///
/// Proof sketch for the indexing: tap coordinates come from the window
/// axes, so `iy < in_h`, `ix < in_w`; a block's channels `c..c + n` have
/// `c + n ≤ in_c`, so each 4-byte (or 1-byte) read lies inside the input
/// pixel; the table holds `taps · 4 ≤ 4 · MAX_TAPS` weights, read from
/// channel `c + j`'s `taps` weights; outputs are `(pixel, c + j)` with
/// `pixel < out_h · out_w`.
#[allow(clippy::too_many_arguments)]
pub(super) fn depthwise(
    p: &Conv2d,
    rows: &Axis,
    cols: &Axis,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) -> Result<(), Error> {
    let channels = p.in_c;
    let taps = p.kernel_h * p.kernel_w;
    let offset = mac::both_halves(p.input_offset);
    let mut table = [0i8; 4 * MAX_TAPS];
    // Where each tap of a whole window sits, from the window's first.
    let mut tap_at = [0usize; MAX_TAPS];
    for (t, at) in tap_at.iter_mut().take(taps).enumerate() {
        let (ky, kx) = (t / p.kernel_w, t % p.kernel_w);
        *at = (ky * p.dilation_h * p.in_w + kx * p.dilation_w) * channels;
    }
    // `None` when the offsets do not grow (windows wider than the input,
    // which never lie whole inside it anyway).
    let tap_at = mac::TapOffsets::new(&tap_at[..taps]);
    let mut c = 0;
    while c < channels {
        let n = (channels - c).min(4);
        for t in 0..taps {
            for j in 0..n {
                table[4 * t + j] = weights[(c + j) * taps + t];
            }
        }
        let rq: [Requant; 4] = core::array::from_fn(|j| {
            let o = c + j.min(n - 1);
            Requant::prechecked(multipliers[o], shifts[o])
        });
        // The block's requants in their hoisted form, once for every pixel.
        let fast = rq.map(Requant::narrow);
        let b: [i32; 4] = core::array::from_fn(|j| bias[c + j.min(n - 1)]);
        // Whole windows fold the input offset into the bias: Σ (x + off)·w
        // = Σ x·w + off·Σ w, exact in wrapping arithmetic.
        let folded: [i32; 4] = core::array::from_fn(|j| {
            let sum = (0..taps).fold(0i32, |s, t| s.wrapping_add(table[4 * t + j] as i32));
            b[j].wrapping_add(p.input_offset.wrapping_mul(sum))
        });
        for oy in 0..p.out_h {
            let (ky0, ky1, iy0) = rows.taps(oy);
            for ox in 0..p.out_w {
                let (kx0, kx1, ix0) = cols.taps(ox);
                let mut acc = b;
                let whole = ky1 - ky0 == p.kernel_h && kx1 - kx0 == p.kernel_w;
                let interior = tap_at.filter(|_| whole && n == 4);
                if let Some(tap_at) = interior {
                    // Every tap in bounds, at fixed distances.
                    let first = (iy0 * p.in_w + ix0) * channels + c;
                    let x = input.get(first..).unwrap_or(&[]);
                    acc = mac::taps4(folded, x, tap_at, &table[..4 * taps]);
                }
                for ky in (ky0..ky1).filter(|_| interior.is_none()) {
                    let iy = iy0 + (ky - ky0) * p.dilation_h;
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * p.dilation_w;
                        let x = (iy * p.in_w + ix) * channels + c;
                        let w = &table[4 * (ky * p.kernel_w + kx)..][..4];
                        if n == 4 {
                            acc = mac::lanes4(acc, &input[x..x + 4], w, offset);
                        } else {
                            for j in 0..n {
                                let v = (input[x + j] as i32).wrapping_add(p.input_offset);
                                acc[j] = acc[j].wrapping_add(v.wrapping_mul(w[j] as i32));
                            }
                        }
                    }
                }
                let out = &mut output[(oy * p.out_w + ox) * channels + c..][..n];
                for (j, y) in out.iter_mut().enumerate() {
                    let v = fast[j].map_or_else(|| rq[j].apply(acc[j]), |f| f.apply(acc[j]));
                    *y = clamp_to_i8(v.saturating_add(p.output_offset), p.act.min, p.act.max);
                }
            }
        }
        c += n;
    }
    Ok(())
}
