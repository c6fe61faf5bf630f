//! The int8 fully connected layer on x86-64 hosts, with SSE2's `pmaddwd`.
//!
//! The board's loop ([`super::mac::rows4`]) reads its input in `SXTB16`
//! lane order, which the host's portable form first unpacks and then sums
//! in fixed chunks through a call per row and chunk. Here the input row is
//! widened once into plain i16 (offset added, zero-padded to a multiple of
//! 16), and four weight rows at a time meet each 16 inputs: a row's 16
//! weights are one load, sign-extended in two halves, and two `pmaddwd`
//! add their terms to the row's four partial sums; the two input vectors
//! serve all four rows. A 4 × 4 transpose-add then gives the four rows'
//! sums in one vector, and the outputs are requantized four at once.
//!
//! Every sum wraps in i32 as on the board (`pmaddwd` adds two products of
//! at most 255 · 128, `paddd` wraps), so the terms' order changes no bit.
//! A row's last, partial 16 weights are loaded zero-padded.

use super::fully_connected::{finish, FullyConnected};
use super::sse2::{load16, narrow_tail};
use crate::arith::{NarrowRequant, Requant};
use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_madd_epi16, _mm_set1_epi16, _mm_set1_epi32, _mm_setzero_si128,
    _mm_srai_epi16, _mm_unpackhi_epi32, _mm_unpackhi_epi64, _mm_unpackhi_epi8, _mm_unpacklo_epi32,
    _mm_unpacklo_epi64, _mm_unpacklo_epi8,
};

use super::fully_connected::WIDE_MAX;

/// Runs the layer `fully_connected` validated, with int8 weights and at
/// most [`WIDE_MAX`] input features; `narrow` as `check_requants` found.
pub(super) fn fully_connected(
    p: &FullyConnected,
    input: &[i8],
    weights: &[i8],
    params: (&[i32], &[i32], &[i32]),
    narrow: bool,
    output: &mut [i8],
) {
    #[allow(unsafe_code)]
    // SAFETY: `run` is safe code; its `target_feature` names SSE2, which
    // every x86-64 CPU implements (it is in the target's baseline).
    unsafe {
        run(p, input, weights, params, narrow, output)
    }
}

/// [`fully_connected`]'s body. Proof sketch for the indexing: the caller
/// validated every length against `p` and `in_features ≤ WIDE_MAX`; an
/// output quad's rows `first + r < out_features` index the per-channel
/// arrays, and each row's weights are read through `get` (empty past the
/// end, which a validated layer never reaches).
#[target_feature(enable = "sse2")]
fn run(
    p: &FullyConnected,
    input: &[i8],
    weights: &[i8],
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    narrow: bool,
    output: &mut [i8],
) {
    let (in_f, out_f) = (p.in_features, p.out_features);
    let chunks = in_f.div_ceil(16).min(WIDE_MAX / 16);
    let mut wide = [_mm_setzero_si128(); WIDE_MAX / 8];
    let carry = _mm_set1_epi32(p.output_offset.wrapping_mul(2).wrapping_add(1));
    let (lo, hi) = (
        _mm_set1_epi16(p.act.min as i16),
        _mm_set1_epi16(p.act.max as i16),
    );
    for (x, out_row) in input.chunks_exact(in_f).zip(output.chunks_exact_mut(out_f)) {
        let elements: &mut [i16] = bytemuck::cast_slice_mut(&mut wide[..2 * chunks]);
        let (head, pad) = elements.split_at_mut(in_f.min(elements.len()));
        for (d, &v) in head.iter_mut().zip(x) {
            *d = (v as i16).wrapping_add(p.input_offset as i16);
        }
        pad.fill(0);
        let x: &[__m128i] = &wide[..2 * chunks];
        for (q, out) in out_row.chunks_mut(4).enumerate() {
            let first = 4 * q;
            let row = |r: usize| {
                let start = (first + r.min(out.len() - 1)) * in_f;
                weights.get(start..start + in_f).unwrap_or(&[])
            };
            let sums = rows4(x, [row(0), row(1), row(2), row(3)]);
            let sum = |r: usize| {
                let o = first + r.min(out.len() - 1);
                bias[o].wrapping_add(sums[r])
            };
            let s = [sum(0), sum(1), sum(2), sum(3)];
            let rq = |r: usize| {
                let o = first + r.min(out.len() - 1);
                (multipliers[o], shifts[o])
            };
            let bytes = if narrow {
                let h = |r: usize| {
                    let (m, e) = rq(r);
                    NarrowRequant::prechecked(m, e).before_halving(s[r])
                };
                narrow_tail([h(0), h(1), h(2), h(3)], carry, lo, hi).to_le_bytes()
            } else {
                let y = |r: usize| {
                    let (m, e) = rq(r);
                    finish(Requant::prechecked(m, e), s[r], p.output_offset, p.act) as u8
                };
                [y(0), y(1), y(2), y(3)]
            };
            for (o, b) in out.iter_mut().zip(bytes) {
                *o = b as i8;
            }
        }
    }
}

/// The four weight rows `rows` (each `in_features` long) against the
/// widened input `x` (two vectors per 16 inputs, zero past the end): each
/// row's sum, in order.
#[target_feature(enable = "sse2")]
fn rows4(x: &[__m128i], rows: [&[i8]; 4]) -> [i32; 4] {
    let mut acc = [_mm_setzero_si128(); 4];
    let terms = |a: &mut __m128i, (xa, xb): (__m128i, __m128i), w: __m128i| {
        let wa = _mm_srai_epi16::<8>(_mm_unpacklo_epi8(w, w));
        let wb = _mm_srai_epi16::<8>(_mm_unpackhi_epi8(w, w));
        let t = _mm_add_epi32(_mm_madd_epi16(xa, wa), _mm_madd_epi16(xb, wb));
        *a = _mm_add_epi32(*a, t);
    };
    let whole = rows[0].len() / 16;
    let [r0, r1, r2, r3] = rows.map(|r| r.chunks_exact(16));
    let chunks = r0.zip(r1).zip(r2.zip(r3));
    for (pair, ((w0, w1), (w2, w3))) in x.chunks_exact(2).zip(chunks) {
        let x = (pair[0], pair[1]);
        for (a, w) in acc.iter_mut().zip([w0, w1, w2, w3]) {
            let w: [i8; 16] = w.try_into().unwrap_or([0; 16]);
            terms(a, x, bytemuck::cast(w));
        }
    }
    // The rows' last `in_features % 16` weights, zero-padded.
    if let Some(pair) = x.get(2 * whole..2 * whole + 2) {
        let x = (pair[0], pair[1]);
        for (a, r) in acc.iter_mut().zip(rows) {
            terms(a, x, load16(r, 16 * whole));
        }
    }
    // Transpose-add: lane r of the result is the sum of acc[r]'s lanes.
    let t0 = _mm_add_epi32(
        _mm_unpacklo_epi32(acc[0], acc[1]),
        _mm_unpackhi_epi32(acc[0], acc[1]),
    );
    let t1 = _mm_add_epi32(
        _mm_unpacklo_epi32(acc[2], acc[3]),
        _mm_unpackhi_epi32(acc[2], acc[3]),
    );
    bytemuck::cast(_mm_add_epi32(
        _mm_unpacklo_epi64(t0, t1),
        _mm_unpackhi_epi64(t0, t1),
    ))
}
