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
//!
//! A block copies the input rows its windows read into a *band*, as many
//! rows as its buffer holds: one word (the block's four channels) per padded column,
//! the padding filled with the input zero point. The input offset folded
//! into the bias makes a zero-point tap add nothing, so every window of
//! the band is whole — no edge cases (half of a 25×5 map's pixels touch
//! the padding) — and its taps lie at fixed distances: a 3×3 window is one
//! unrolled [`mac::window3x3`], others loop over [`mac::taps4`]. A band
//! too wide for its stack buffer, and the last block of fewer than four
//! channels, clip each window to the input instead.

use super::conv::{Conv2d, MAX_TAPS};
use super::mac;
use super::window::Axis;
use crate::arith::{clamp_to_i8, NarrowRequant, Requant};
use crate::Error;

/// Words of the band buffer (4 KiB of stack): as many padded rows as fit,
/// at least a window's (a 3×3 window over rows up to 341 pixels wide).
const MAX_BAND: usize = 1024;

/// Runs the depthwise convolution `conv2d` validated (see
/// [`super::conv::depthwise_applies`]).
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
    let mut table = [0i8; 4 * MAX_TAPS];
    let band = Band::of(p, cols);
    // One band buffer for every block: filling a 4 KiB array per block
    // cost as much as a layer's band rows.
    let mut band_words = [0u32; MAX_BAND];
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
        let block = Block {
            c,
            n,
            table: &table[..4 * taps],
            bias: core::array::from_fn(|j| bias[c + j.min(n - 1)]),
            rq,
            // The block's requants in their hoisted form, once for every pixel.
            fast: rq.map(Requant::narrow),
        };
        match band.filter(|_| n == 4) {
            Some(band) => {
                let words = &mut band_words[..];
                block.banded(p, (rows, cols), &band, words, input, output)
            }
            None => block.clipped(p, rows, cols, input, output),
        }
        c += n;
    }
    Ok(())
}

/// Four outputs of a block whose requants all take the hoisted 32-bit
/// form (the common case), inlined into the pixel loop: one packed word
/// ([`mac::requant4`]) stored at once.
#[inline(always)]
fn store_fast(p: &Conv2d, rq: [NarrowRequant; 4], acc: [i32; 4], at: usize, output: &mut [i8]) {
    let (lo4, hi4) = (mac::bytes4(p.act.min), mac::bytes4(p.act.max));
    let y = mac::requant4(acc, rq, p.output_offset, lo4, hi4);
    if let Some(out) = output.get_mut(at..at + 4) {
        for (o, b) in out.iter_mut().zip(y.to_le_bytes()) {
            *o = b as i8;
        }
    }
}

/// One block of up to four channels: its weights, bias and requants.
struct Block<'t> {
    c: usize,
    n: usize,
    table: &'t [i8],
    bias: [i32; 4],
    rq: [Requant; 4],
    fast: [Option<NarrowRequant>; 4],
}

/// The band geometry of a layer: padded columns per band row, how many
/// output rows one filling serves, the taps' byte distances in the band,
/// and whether the window is 3×3 (unrolled).
#[derive(Clone, Copy)]
struct Band {
    width: usize,
    /// Padded rows one window spans: `(kernel_h − 1) · dilation_h + 1`.
    span: usize,
    /// Output rows per filling: as many as [`MAX_BAND`] words hold.
    out_rows: usize,
    tap_at: [usize; MAX_TAPS],
    three: bool,
}

impl Band {
    /// `None` when not even one output row's band fits [`MAX_BAND`] words.
    fn of(p: &Conv2d, cols: &Axis) -> Option<Band> {
        // The padded columns the last window reaches.
        let width = cols.out_len.checked_sub(1)? * p.stride_w + (p.kernel_w - 1) * p.dilation_w + 1;
        let span = (p.kernel_h - 1) * p.dilation_h + 1;
        let fit = MAX_BAND / width;
        if fit < span {
            return None;
        }
        let out_rows = (fit - span) / p.stride_h + 1;
        let mut tap_at = [0usize; MAX_TAPS];
        for (t, at) in tap_at.iter_mut().take(p.kernel_h * p.kernel_w).enumerate() {
            let (ky, kx) = (t / p.kernel_w, t % p.kernel_w);
            *at = 4 * (ky * p.dilation_h * width + kx * p.dilation_w);
        }
        let three = p.kernel_h == 3 && p.kernel_w == 3 && p.dilation_w == 1;
        Some(Band {
            width,
            span,
            out_rows,
            tap_at,
            three,
        })
    }
}

impl Block<'_> {
    /// The input offset folded into the bias: Σ (x + off)·w = Σ x·w +
    /// off·Σ w, exact in wrapping arithmetic.
    fn folded(&self, offset: i32) -> [i32; 4] {
        core::array::from_fn(|j| {
            let sum = self
                .table
                .chunks_exact(4)
                .fold(0i32, |s, w| s.wrapping_add(w[j] as i32));
            self.bias[j].wrapping_add(offset.wrapping_mul(sum))
        })
    }

    /// Requantizes, offsets and clamps the block's outputs at `pixel`.
    fn store(&self, p: &Conv2d, acc: [i32; 4], pixel: usize, output: &mut [i8]) {
        let out = &mut output[pixel * p.in_c + self.c..][..self.n];
        for (j, y) in out.iter_mut().enumerate() {
            let v = self.fast[j].map_or_else(|| self.rq[j].apply(acc[j]), |f| f.apply(acc[j]));
            *y = clamp_to_i8(v.saturating_add(p.output_offset), p.act.min, p.act.max);
        }
    }

    /// Four channels, every window whole inside a zero-point-padded band.
    fn banded(
        &self,
        p: &Conv2d,
        (rows, cols): (&Axis, &Axis),
        band: &Band,
        words: &mut [u32],
        input: &[i8],
        output: &mut [i8],
    ) {
        let taps = p.kernel_h * p.kernel_w;
        let folded = self.folded(p.input_offset);
        let mut wide = [0u32; mac::WIDE_3X3];
        if band.three {
            mac::widen_taps(self.table, &mut wide);
        }
        let Some(tap_at) = mac::TapOffsets::new(&band.tap_at[..taps]) else {
            return self.clipped(p, rows, cols, input, output);
        };
        let zero = u32::from_ne_bytes([p.input_offset.wrapping_neg() as u8; 4]);
        let row_bytes = 4 * band.width * p.dilation_h;
        let fast = match self.fast {
            [Some(a), Some(b), Some(c), Some(d)] => Some([a, b, c, d]),
            _ => None,
        };
        for oy0 in (0..p.out_h).step_by(band.out_rows) {
            let oy1 = (oy0 + band.out_rows).min(p.out_h);
            // Padded rows from window row oy0's first to window row oy1 − 1's last.
            let first = oy0 * p.stride_h;
            let height = (oy1 - 1 - oy0) * p.stride_h + band.span;
            let used = words.get_mut(..height * band.width).unwrap_or(&mut []);
            for (r, dst) in used.chunks_exact_mut(band.width).enumerate() {
                let iy = (first + r).checked_sub(rows.pad).filter(|&iy| iy < p.in_h);
                self.fill_row(p, iy, zero, input, dst);
            }
            let x: &[i8] = bytemuck::cast_slice(used);
            for oy in oy0..oy1 {
                let top = 4 * (oy - oy0) * p.stride_h * band.width;
                for ox in 0..p.out_w {
                    let x = x.get(top + 4 * ox * p.stride_w..).unwrap_or(&[]);
                    let acc = if band.three {
                        mac::window3x3(folded, x, row_bytes, &wide)
                    } else {
                        mac::taps4(folded, x, tap_at, self.table)
                    };
                    let pixel = oy * p.out_w + ox;
                    match fast {
                        Some(rq) => store_fast(p, rq, acc, pixel * p.in_c + self.c, output),
                        None => self.store(p, acc, pixel, output),
                    }
                }
            }
        }
    }

    /// One band row: input row `iy`'s four channels of the block per
    /// column, the zero point where the row or column is padding.
    fn fill_row(&self, p: &Conv2d, iy: Option<usize>, zero: u32, input: &[i8], dst: &mut [u32]) {
        let (left, rest) = dst.split_at_mut(p.pad_left.min(dst.len()));
        left.fill(zero);
        let Some(iy) = iy else {
            rest.fill(zero);
            return;
        };
        let (mid, right) = rest.split_at_mut(p.in_w.min(rest.len()));
        right.fill(zero);
        let row = input.get((iy * p.in_w) * p.in_c + self.c..).unwrap_or(&[]);
        for (ix, d) in mid.iter_mut().enumerate() {
            let at = ix * p.in_c;
            *d = match row.get(at..at + 4) {
                Some(&[a, b, c, e]) => u32::from_ne_bytes([a as u8, b as u8, c as u8, e as u8]),
                _ => zero,
            };
        }
    }

    /// Any block, each window clipped to the input: the taps in bounds
    /// only, with the input offset added per tap.
    fn clipped(&self, p: &Conv2d, rows: &Axis, cols: &Axis, input: &[i8], output: &mut [i8]) {
        let (c, n) = (self.c, self.n);
        let offset = mac::both_halves(p.input_offset);
        for oy in 0..p.out_h {
            let (ky0, ky1, iy0) = rows.taps(oy);
            for ox in 0..p.out_w {
                let (kx0, kx1, ix0) = cols.taps(ox);
                let mut acc = self.bias;
                for ky in ky0..ky1 {
                    let iy = iy0 + (ky - ky0) * p.dilation_h;
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * p.dilation_w;
                        let x = (iy * p.in_w + ix) * p.in_c + c;
                        let w = &self.table[4 * (ky * p.kernel_w + kx)..][..4];
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
                self.store(p, acc, oy * p.out_w + ox, output);
            }
        }
    }
}
