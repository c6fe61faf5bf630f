//! The dense and depthwise int8 convolutions on x86-64 hosts, with SSE2's
//! `pmaddwd`.
//!
//! The board's paths ([`super::conv_dense`], `conv_depthwise`) are shaped
//! for the Cortex-M4. The dense quad path:
//! four pixels' windows in `SXTB16` lane order, met by one channel at a
//! time. On a host that layout costs a re-shuffle per window, a call per
//! dot product and a transpose per output, which left a first layer's
//! 3×3 over one channel at under one multiply-accumulate per nanosecond.
//! Here the loop runs the other way round, as a small matrix product per
//! pixel: the window is widened into i16 pairs `(x_2t, x_2t+1)`, and
//! [`BLOCK`] output channels' weights are packed once per call as the
//! matching pairs of four channels per vector, so one `pmaddwd` of the
//! broadcast pair adds two taps to four channels' sums. The four sums of
//! a vector are the four channels of one output pixel: requantized, they
//! are stored as they lie (NHWC), with no transpose.
//!
//! The depthwise path runs the same way over eight channels at a time:
//! two taps' activations of the eight channels, interleaved, meet the
//! matching pairs of weights, two `pmaddwd` per tap pair.
//!
//! Every sum wraps in i32 as the other paths' do: `pmaddwd` adds two
//! products of at most 255 · 128 each, which cannot overflow, and `paddd`
//! wraps, so the terms' order changes no bit. SSE2 is part of the x86-64
//! baseline, so the `unsafe` calls into it below cannot reach an
//! instruction the CPU lacks.

use super::conv::{Conv2d, MAX_TAPS};
use super::conv_dense::GATHER_MAX;
use super::fully_connected::finish;
use super::sse2::{load8, narrow_tail};
use super::window::Axis;
use crate::arith::{NarrowRequant, Requant};
use crate::Error;
use core::arch::x86_64::{
    __m128i, _mm_add_epi16, _mm_add_epi32, _mm_cvtsi64_si128, _mm_madd_epi16, _mm_set1_epi16,
    _mm_set1_epi32, _mm_setzero_si128, _mm_srai_epi16, _mm_unpackhi_epi16, _mm_unpacklo_epi16,
    _mm_unpacklo_epi8,
};

/// Output channels per pass: four vectors of four channels, whose sums
/// stay in registers across a window.
const BLOCK: usize = 16;

/// Element pairs of the largest window.
const PAIRS: usize = GATHER_MAX.div_ceil(2);

/// Runs a dense int8 convolution whose buffers and geometry `conv2d`
/// validated (the window fits [`GATHER_MAX`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn gathered(
    p: &Conv2d,
    rows: &Axis,
    cols: &Axis,
    input: &[i8],
    weights: &[i8],
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) {
    #[allow(unsafe_code)]
    // SAFETY: `run` is safe code; its `target_feature` names SSE2, which
    // every x86-64 CPU implements (it is in the target's baseline).
    unsafe {
        run(
            p,
            (rows, cols),
            input,
            weights,
            (bias, multipliers, shifts),
            output,
        )
    }
}

/// [`gathered`]'s body. Proof sketch for the indexing: `validate` matched
/// every buffer with `p`; a block's channels `first .. first + n ≤ out_c`
/// index the per-channel arrays; pixel `oy·out_w + ox < out_h·out_w` owns
/// output bytes `pixel·out_c ..+ out_c`; window taps come from the axes
/// (`iy < in_h`, `ix < in_w`) and fill elements `j < k ≤ GATHER_MAX`, with
/// `k` from `conv_path`'s check; packed vectors `4·pairs ≤ 4·PAIRS`.
#[target_feature(enable = "sse2")]
fn run(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    weights: &[i8],
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) {
    let k = p.kernel_h * p.kernel_w * p.in_c;
    let pairs = k.div_ceil(2).min(PAIRS);
    let mut packed = [_mm_setzero_si128(); 4 * PAIRS];
    let packed = &mut packed[..4 * pairs];
    // The window as i16 pairs; element `k` of an odd window stays 0.
    let mut window = [0u32; PAIRS];
    let window = &mut window[..pairs];
    for first in (0..p.out_c).step_by(BLOCK) {
        let n = BLOCK.min(p.out_c - first);
        pack(weights, k, first, n, packed);
        let requants = Requants::new(&multipliers[first..], &shifts[first..], n);
        let mut pixel = 0;
        for oy in 0..p.out_h {
            for ox in 0..p.out_w {
                gather(p, (rows, cols), input, (oy, ox), k, window);
                let sums = match n.div_ceil(4) {
                    1 => dot::<1>(window, packed),
                    2 => dot::<2>(window, packed),
                    3 => dot::<3>(window, packed),
                    _ => dot::<4>(window, packed),
                };
                let out = &mut output[pixel * p.out_c + first..][..n];
                requants.store(p, &bias[first..first + n], &sums, out);
                pixel += 1;
            }
        }
    }
}

/// Packs channels `first .. first + n` (of `k` weights each) as `pmaddwd`
/// operands: vector `4t + g` holds, for channels `4g .. 4g + 4` of the
/// block, the weight pairs `(w_2t, w_2t+1)`; missing channels and the
/// element past an odd window are 0.
#[target_feature(enable = "sse2")]
fn pack(weights: &[i8], k: usize, first: usize, n: usize, packed: &mut [__m128i]) {
    let at = |c: usize, j: usize| -> i16 {
        if c < n && j < k {
            weights.get((first + c) * k + j).map_or(0, |&w| w as i16)
        } else {
            0
        }
    };
    for (t, vectors) in packed.chunks_exact_mut(4).enumerate() {
        for (g, v) in vectors.iter_mut().enumerate() {
            let mut lanes = [0i16; 8];
            for (c, pair) in lanes.chunks_exact_mut(2).enumerate() {
                pair[0] = at(4 * g + c, 2 * t);
                pair[1] = at(4 * g + c, 2 * t + 1);
            }
            *v = bytemuck::cast(lanes);
        }
    }
}

/// Widens output pixel `(oy, ox)`'s window (input offset added) into
/// `window`'s i16 pairs; padding taps are 0, i.e. `zp + offset`.
#[target_feature(enable = "sse2")]
fn gather(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    (oy, ox): (usize, usize),
    k: usize,
    window: &mut [u32],
) {
    let (ky0, ky1, iy0) = rows.taps(oy);
    let (kx0, kx1, ix0) = cols.taps(ox);
    let elements: &mut [i16] = bytemuck::cast_slice_mut(window);
    if ky1 - ky0 < p.kernel_h || kx1 - kx0 < p.kernel_w {
        elements[..k].fill(0);
    }
    let run = (kx1 - kx0) * p.in_c;
    let off = p.input_offset as i16;
    for ky in ky0..ky1 {
        let iy = iy0 + (ky - ky0) * p.dilation_h;
        let src = &input[(iy * p.in_w + ix0) * p.in_c..][..run];
        let dst = &mut elements[(ky * p.kernel_w + kx0) * p.in_c..][..run];
        for (d, &x) in dst.iter_mut().zip(src) {
            *d = (x as i16).wrapping_add(off);
        }
    }
}

/// The `4G` channels' sums over the window: per pair, one broadcast and
/// `G` multiply-adds.
#[target_feature(enable = "sse2")]
fn dot<const G: usize>(window: &[u32], packed: &[__m128i]) -> [[i32; 4]; 4] {
    let mut acc = [_mm_setzero_si128(); G];
    for (&x, vectors) in window.iter().zip(packed.chunks_exact(4)) {
        let x = _mm_set1_epi32(x as i32);
        for (a, &w) in acc.iter_mut().zip(vectors) {
            *a = _mm_add_epi32(*a, _mm_madd_epi16(x, w));
        }
    }
    let mut sums = [[0i32; 4]; 4];
    for (s, a) in sums.iter_mut().zip(acc) {
        *s = bytemuck::cast(a);
    }
    sums
}

/// A block's per-channel requantization, built once per block.
struct Requants {
    rq: [Requant; BLOCK],
    /// Every channel's scale is below ½: the hoisted 32-bit form applies
    /// (lanes past the block's channels hold a stand-in whose bytes are
    /// dropped).
    narrow: Option<[NarrowRequant; BLOCK]>,
}

impl Requants {
    fn new(multipliers: &[i32], shifts: &[i32], n: usize) -> Self {
        let at = |c: usize| (multipliers.get(c).copied(), shifts.get(c).copied());
        let rq: [Requant; BLOCK] = core::array::from_fn(|c| match at(c) {
            (Some(m), Some(s)) if c < n => Requant::prechecked(m, s),
            _ => Requant::prechecked(0, 0),
        });
        let narrow = rq[..n].iter().all(|r| r.narrow().is_some()).then(|| {
            core::array::from_fn(|c| match at(c) {
                (Some(m), Some(s)) if c < n => NarrowRequant::prechecked(m, s),
                _ => NarrowRequant::prechecked(0, 0),
            })
        });
        Requants { rq, narrow }
    }

    /// Requantizes one pixel's sums (bias added) into `out`, one byte per
    /// channel of the block.
    /// The hoisted form's tail runs on four channels at once
    /// ([`narrow_tail`]).
    #[target_feature(enable = "sse2")]
    fn store(&self, p: &Conv2d, bias: &[i32], sums: &[[i32; 4]; 4], out: &mut [i8]) {
        let (zp, act) = (p.output_offset, p.act);
        let carry = _mm_set1_epi32(zp.wrapping_mul(2).wrapping_add(1));
        let (lo, hi) = (
            _mm_set1_epi16(act.min as i16),
            _mm_set1_epi16(act.max as i16),
        );
        for (g, out) in out.chunks_mut(4).enumerate() {
            let sum = |c: usize| {
                let b = bias.get(4 * g + c).copied().unwrap_or(0);
                b.wrapping_add(sums[g][c])
            };
            let s = [sum(0), sum(1), sum(2), sum(3)];
            let bytes = match &self.narrow {
                Some(n) => {
                    let h = |c: usize| n[4 * g + c].before_halving(s[c]);
                    narrow_tail([h(0), h(1), h(2), h(3)], carry, lo, hi).to_le_bytes()
                }
                None => core::array::from_fn(|c| finish(self.rq[4 * g + c], s[c], zp, act) as u8),
            };
            for (o, b) in out.iter_mut().zip(bytes) {
                *o = b as i8;
            }
        }
    }
}

/// Channels per depthwise pass: two vectors of four channels' sums.
const LANES: usize = 8;

/// Runs a depthwise convolution whose buffers and geometry `conv2d`
/// validated (one output per channel, at most [`MAX_TAPS`] taps).
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
    #[allow(unsafe_code)]
    // SAFETY: as in `gathered`: safe code behind SSE2, in the x86-64 baseline.
    unsafe {
        depthwise_run(
            p,
            (rows, cols),
            input,
            weights,
            (bias, multipliers, shifts),
            output,
        )
    };
    Ok(())
}

/// [`depthwise`]'s body. Proof sketch for the indexing: as for [`run`],
/// with the block's channels `first .. first + n ≤ in_c` read at each tap
/// pixel (`at + n ≤ (iy·in_w + ix + 1)·in_c`) and taps `ky·kernel_w + kx
/// < taps ≤ 2·pairs`, `taps ≤ MAX_TAPS` by `conv_path`.
#[target_feature(enable = "sse2")]
fn depthwise_run(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    weights: &[i8],
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) {
    let taps = p.kernel_h * p.kernel_w;
    let pairs = taps.div_ceil(2).min(MAX_TAPS.div_ceil(2));
    let mut packed = [_mm_setzero_si128(); MAX_TAPS + 1];
    let packed = &mut packed[..2 * pairs];
    let mut x = [_mm_setzero_si128(); MAX_TAPS + 1];
    let x = &mut x[..2 * pairs];
    let offset = _mm_set1_epi16(p.input_offset as i16);
    for first in (0..p.in_c).step_by(LANES) {
        let n = LANES.min(p.in_c - first);
        // Tap pair t: channels 0..4 then 4..8, weights (w_2t, w_2t+1).
        for (t, v) in packed.chunks_exact_mut(2).enumerate() {
            let w = |c: usize, tap: usize| -> i16 {
                let ok = c < n && tap < taps;
                ok.then(|| weights.get((first + c) * taps + tap))
                    .flatten()
                    .map_or(0, |&w| w as i16)
            };
            for (half, v) in v.iter_mut().enumerate() {
                let lanes: [i16; 8] = core::array::from_fn(|l| w(4 * half + l / 2, 2 * t + l % 2));
                *v = bytemuck::cast(lanes);
            }
        }
        let requants = Requants::new(&multipliers[first..], &shifts[first..], n);
        let mut pixel = 0;
        for oy in 0..p.out_h {
            let (ky0, ky1, iy0) = rows.taps(oy);
            for ox in 0..p.out_w {
                let (kx0, kx1, ix0) = cols.taps(ox);
                if ky1 - ky0 < p.kernel_h || kx1 - kx0 < p.kernel_w {
                    // Taps in the padding are 0 (`zp + offset`).
                    x.fill(_mm_setzero_si128());
                }
                let elements: &mut [[i16; 8]] = bytemuck::cast_slice_mut(x);
                for ky in ky0..ky1 {
                    let iy = iy0 + (ky - ky0) * p.dilation_h;
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * p.dilation_w;
                        let at = (iy * p.in_w + ix) * p.in_c + first;
                        let v = _mm_cvtsi64_si128(load8(&input[at..at + n]));
                        let wide = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(v, v));
                        elements[ky * p.kernel_w + kx] =
                            bytemuck::cast(_mm_add_epi16(wide, offset));
                    }
                }
                let (mut lo, mut hi) = (_mm_setzero_si128(), _mm_setzero_si128());
                let taps_x: &[__m128i] = x;
                for (pair, w) in taps_x.chunks_exact(2).zip(packed.chunks_exact(2)) {
                    let (a, b) = (pair[0], pair[1]);
                    lo = _mm_add_epi32(lo, _mm_madd_epi16(_mm_unpacklo_epi16(a, b), w[0]));
                    hi = _mm_add_epi32(hi, _mm_madd_epi16(_mm_unpackhi_epi16(a, b), w[1]));
                }
                let sums = [bytemuck::cast(lo), bytemuck::cast(hi), [0; 4], [0; 4]];
                let out = &mut output[pixel * p.in_c + first..][..n];
                requants.store(p, &bias[first..first + n], &sums, out);
                pixel += 1;
            }
        }
    }
}
