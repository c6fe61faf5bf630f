//! The dense convolution loop nest (`groups == 1`, `dilation_w == 1`),
//! blocked by four output pixels.
//!
//! Two ways to the windows:
//! - **gathered** (int8 weights, windows up to [`GATHER_MAX`] elements;
//!   `conv2d` sends larger int8 windows to its generic loop):
//!   a window is widened once into a stack buffer — i16, input offset
//!   added, in the layout the target's multiply-accumulate path reads —
//!   and then met by every output channel. Padding taps are left at 0,
//!   which is `(zp + offset)`, so they add nothing, exactly as skipped taps
//!   would; every window is then whole, so pixels go in fours. 1×1 kernels
//!   gather a single pixel;
//! - **unpacked** (int4 weights, windows up to [`GATHER_MAX`]; `conv2d`
//!   sends larger ones to its generic loop too): the same gathered pixel
//!   quads, met by as many output channels at a time as [`UNPACK_BYTES`]
//!   hold, their weights first unpacked to int8 on the stack — a weight
//!   serves every pixel of the output, so unpacking it once per layer
//!   costs next to nothing, and the int8 multiply-accumulate path runs.
//!
//! Every output is the same wrapping sum in whatever block it lands, so
//! blocking changes no bit.

use super::conv::Conv2d;
use super::fully_connected::finish_all;
use super::mac;
use super::weights::Weights;
use super::window::Axis;
use crate::arith::Requant;
use crate::Error;

/// Largest window (`kernel_h · kernel_w · in_c` elements) gathered: 3×3
/// over 64 channels, or a 1×1 over 576. The four pixels' widened windows
/// (4 × 576 i16 as 1,152 words, 4.5 KiB) live on the stack while a
/// convolution runs.
pub const GATHER_MAX: usize = 576;

/// Output channels per multiply-accumulate call of the gathered path
/// (their accumulators, 512 B, live on the stack).
pub const CHANNEL_BLOCK: usize = 32;

/// Bytes of int4 weights unpacked to int8 at a time (on the stack while a
/// convolution runs): eight channels of the largest gathered window, or a
/// whole layer of 64 channels over 72-element windows.
pub const UNPACK_BYTES: usize = 8 * GATHER_MAX;

/// Geometry and quantization shared by every block of one call.
struct Dense<'a, W> {
    p: &'a Conv2d,
    weights: W,
    bias: &'a [i32],
    multipliers: &'a [i32],
    shifts: &'a [i32],
    /// `kernel_h · kernel_w · in_c`: one output channel's weights.
    k_out: usize,
}

impl<W: Weights> Dense<'_, W> {
    /// Four gathered windows against every output channel, writing the
    /// outputs of the `out.len() / out_c` pixels `out` holds (the windows
    /// of missing pixels are stale stand-ins whose sums are dropped),
    /// [`CHANNEL_BLOCK`] channels per multiply-accumulate call.
    #[cfg(not(target_arch = "x86_64"))]
    fn channels_quad(
        &self,
        w: &[i8],
        x: mac::QuadWindow<'_>,
        scratch: &mut BlockScratch,
        out: &mut [i8],
    ) {
        let k = self.k_out;
        for first in (0..self.p.out_c).step_by(CHANNEL_BLOCK) {
            let n = CHANNEL_BLOCK.min(self.p.out_c - first);
            let block = &w[first * k..(first + n) * k];
            self.block_quad(block, (first, n), x, scratch, out);
        }
    }

    /// Four gathered windows against the `n ≤` [`CHANNEL_BLOCK`] output
    /// channels `first ..` whose weights are `w`: one multiply-accumulate
    /// call into the scratch sums (`4 · n`, overwritten), then
    /// requantization of each channel's four sums at once, written to the
    /// pixels `out` holds.
    fn block_quad(
        &self,
        w: &[i8],
        (first, n): (usize, usize),
        x: mac::QuadWindow<'_>,
        scratch: &mut BlockScratch,
        out: &mut [i8],
    ) {
        let (zp, act) = (self.p.output_offset, self.p.act);
        let (lo4, hi4) = (mac::bytes4(act.min), mac::bytes4(act.max));
        let BlockScratch { acc, packed } = scratch;
        let acc = acc.get_mut(..4 * n).unwrap_or(&mut []);
        mac::dot_quad_channels(x, w, acc);
        // Channel `o`'s four outputs, pixel `p` in byte `p`.
        let quant = self.bias[first..first + n]
            .iter()
            .zip(&self.multipliers[first..first + n])
            .zip(&self.shifts[first..first + n])
            .zip(acc.chunks_exact(4));
        for (y, (((&bias, &m), &s), sums)) in packed.iter_mut().zip(quant) {
            // Literal, not `array::map` (left out of line on the host).
            let sum = |p: usize| bias.wrapping_add(sums[p]);
            let sums = [sum(0), sum(1), sum(2), sum(3)];
            let rq = Requant::prechecked(m, s);
            *y = match rq.narrow() {
                Some(n) => mac::requant4(sums, [n; 4], zp, lo4, hi4),
                None => u32::from_le_bytes(finish_all(rq, sums, zp, act).map(|y| y as u8)),
            };
        }
        let mut rows = out.chunks_mut(self.p.out_c);
        let rows: [&mut [i8]; 4] = [(); 4].map(|()| {
            let row = rows.next().unwrap_or(&mut []);
            row.get_mut(first..first + n).unwrap_or(&mut [])
        });
        scatter_packed(packed.get(..n).unwrap_or(&[]), rows);
    }
}

/// A channel block's sums and packed outputs, kept for a whole layer:
/// zeroing them for every pixel quad cost as much as a narrow layer's
/// requantization.
struct BlockScratch {
    acc: [i32; 4 * CHANNEL_BLOCK],
    /// Channel `o`'s four outputs, pixel `p` in byte `p`.
    packed: [u32; CHANNEL_BLOCK],
}

impl BlockScratch {
    fn new() -> Self {
        BlockScratch {
            acc: [0; 4 * CHANNEL_BLOCK],
            packed: [0; CHANNEL_BLOCK],
        }
    }
}

/// Writes byte `p` of `packed[o]` to `rows[p][o]`: four channels at a
/// time as a 4 × 4 byte transpose, one word store per row (a row shorter
/// than `packed`, a missing pixel's, is skipped).
fn scatter_packed(packed: &[u32], mut rows: [&mut [i8]; 4]) {
    let whole = rows.iter().all(|r| r.len() == packed.len());
    let blocks = if whole { packed.len() / 4 } else { 0 };
    for (b, w) in packed.chunks_exact(4).take(blocks).enumerate() {
        let (w0, w1, w2, w3) = (w[0], w[1], w[2], w[3]);
        // Pair bytes of channels (0, 1) and (2, 3), then halfwords.
        let (e01, o01) = (
            (w0 & 0x00FF_00FF) | (w1 & 0x00FF_00FF) << 8,
            (w0 >> 8 & 0x00FF_00FF) | (w1 & 0xFF00_FF00),
        );
        let (e23, o23) = (
            (w2 & 0x00FF_00FF) | (w3 & 0x00FF_00FF) << 8,
            (w2 >> 8 & 0x00FF_00FF) | (w3 & 0xFF00_FF00),
        );
        let t = [
            (e01 & 0xFFFF) | e23 << 16,
            (o01 & 0xFFFF) | o23 << 16,
            e01 >> 16 | (e23 & 0xFFFF_0000),
            o01 >> 16 | (o23 & 0xFFFF_0000),
        ];
        for (row, t) in rows.iter_mut().zip(t) {
            if let Some(dst) = row.get_mut(4 * b..4 * b + 4) {
                for (d, v) in dst.iter_mut().zip(t.to_le_bytes()) {
                    *d = v as i8;
                }
            }
        }
    }
    for (p, row) in rows.iter_mut().enumerate() {
        for (dst, &y) in row.iter_mut().zip(packed).skip(4 * blocks) {
            *dst = (y >> (8 * p)) as i8;
        }
    }
}

/// Runs a dense convolution whose buffers and geometry `conv2d` validated.
///
/// Proof sketch for the indexing: `rows.taps` / `cols.taps` give in-bounds
/// taps `k0..k1` whose input coordinates stay below the input's extent, so
/// every input run lies inside a row of the input; weight offsets stay
/// inside channel `o`'s `k_out` weights (`ky < kernel_h`, `kx0 + taps ≤
/// kernel_w`), and only pixels that exist are written; a gather buffer
/// holds exactly `k_out ≤ GATHER_MAX` elements; outputs are `out_c`-byte
/// pixels of the validated output length.
#[allow(clippy::too_many_arguments)]
pub(super) fn dense<W: Weights>(
    p: &Conv2d,
    rows: &Axis,
    cols: &Axis,
    input: &[i8],
    weights: W,
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) -> Result<(), Error> {
    let d = Dense {
        p,
        weights,
        bias,
        multipliers,
        shifts,
        k_out: p.kernel_h * p.kernel_w * p.in_c,
    };
    match d.weights.int8() {
        #[cfg(target_arch = "x86_64")]
        Some(w) => {
            super::conv_sse2::gathered(p, rows, cols, input, w, bias, multipliers, shifts, output);
            Ok(())
        }
        #[cfg(not(target_arch = "x86_64"))]
        Some(w) => gathered(&d, w, rows, cols, input, output),
        None => unpacked(&d, rows, cols, input, output),
    }
}

/// The gathered path: four pixels' windows widened into one stack buffer,
/// met by every output channel (x86-64 hosts take
/// [`super::conv_sse2`] instead).
#[cfg(not(target_arch = "x86_64"))]
fn gathered<W: Weights>(
    d: &Dense<'_, W>,
    w: &[i8],
    rows: &Axis,
    cols: &Axis,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let mut buf = [0u32; 2 * GATHER_MAX];
    let mut scratch = BlockScratch::new();
    each_pixel_quad(d.p, (rows, cols), input, output, &mut buf, |x, out| {
        d.channels_quad(w, x, &mut scratch, out)
    })
}

/// The unpacked path (int4 weights): per block of as many output channels
/// as [`UNPACK_BYTES`] hold, their weights unpacked to int8 once, then
/// every pixel quad gathered and met by the block — the whole layer in one
/// block when it fits, so the windows are gathered once, as for int8.
fn unpacked<W: Weights>(
    d: &Dense<'_, W>,
    rows: &Axis,
    cols: &Axis,
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let k = d.k_out;
    let mut buf = [0u32; 2 * GATHER_MAX];
    let mut int8 = [0i8; UNPACK_BYTES];
    let mut scratch = BlockScratch::new();
    // `dense` sends windows up to GATHER_MAX ≤ UNPACK_BYTES here.
    let per_block = UNPACK_BYTES.checked_div(k).unwrap_or(1).max(1);
    for first in (0..d.p.out_c).step_by(per_block) {
        let n = per_block.min(d.p.out_c - first);
        let w = int8.get_mut(..n * k).ok_or(Error::ShapeMismatch)?;
        d.weights.unpack(first * k, w);
        let w: &[i8] = w;
        // Not through `channels_quad`: its int4 twin would be merged
        // with the int8 one, which then stays out of line.
        each_pixel_quad(d.p, (rows, cols), input, output, &mut buf, |x, out| {
            for start in (0..n).step_by(CHANNEL_BLOCK) {
                let m = CHANNEL_BLOCK.min(n - start);
                let block = &w[start * k..(start + m) * k];
                d.block_quad(block, (first + start, m), x, &mut scratch, out);
            }
        })?;
    }
    Ok(())
}

/// Calls `f(windows, out)` for every run of four output pixels (fewer at
/// the end), their windows widened into `buf`, `out` their outputs.
fn each_pixel_quad(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    output: &mut [i8],
    buf: &mut [u32; 2 * GATHER_MAX],
    mut f: impl FnMut(mac::QuadWindow<'_>, &mut [i8]),
) -> Result<(), Error> {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    // `conv2d` sends only windows that fit here.
    let words = buf.get_mut(..2 * k).ok_or(Error::ShapeMismatch)?;
    // Channels not in fours (a first layer's 1 or 3) start kernel rows off
    // the four-element groups `widen` converts with one load: such windows
    // are first copied into `stage` as bytes, padding taps as the zero
    // point, and widened whole.
    let mut stage = [0i8; GATHER_MAX];
    let staged = p.in_c % 4 != 0;
    let zero_point = p.input_offset.wrapping_neg() as i8;
    // Widens output pixel `pixel`'s window as window `slot` of the quad.
    let mut gather = |words: &mut [u32], slot: usize, pixel: usize| {
        let (oy, ox) = (pixel / p.out_w, pixel % p.out_w);
        let (ky0, ky1, iy0) = rows.taps(oy);
        let (kx0, kx1, ix0) = cols.taps(ox);
        let clipped = ky1 - ky0 < p.kernel_h || kx1 - kx0 < p.kernel_w;
        let run = (kx1 - kx0) * p.in_c;
        let rows = (ky0..ky1).map(|ky| {
            let iy = iy0 + (ky - ky0) * p.dilation_h;
            let src = (iy * p.in_w + ix0) * p.in_c;
            let j0 = (ky * p.kernel_w + kx0) * p.in_c;
            (j0, &input[src..src + run])
        });
        if staged {
            let stage = &mut stage[..k];
            if clipped {
                // Padding taps hold the zero point: zp + offset = 0.
                stage.fill(zero_point);
            }
            for (j0, src) in rows {
                stage[j0..j0 + run].copy_from_slice(src);
            }
            mac::widen(words, k, slot, 0, stage, p.input_offset);
            return;
        }
        if clipped {
            // Padding taps hold zp + offset = 0; a whole window rewrites
            // every element, so only a clipped one needs clearing.
            mac::clear(words, k, slot);
        }
        for (j0, src) in rows {
            mac::widen(words, k, slot, j0, src, p.input_offset);
        }
    };
    for (i, out) in output.chunks_mut(4 * p.out_c).enumerate() {
        for slot in 0..out.len() / p.out_c.max(1) {
            gather(words, slot, 4 * i + slot);
        }
        f(mac::QuadWindow { words }, out);
    }
    Ok(())
}
