//! The multiply-accumulate contract in plain Rust: the reference the DSP
//! path is checked against and the host's implementation. Zipped iterators
//! (no bounds checks) with independent accumulators, which LLVM vectorizes
//! on x86 and AArch64.

use super::{QuadWindow, TapOffsets, WideVector};
use crate::int4::{high, low};

#[cfg(not(sturdy_dsp))]
mod vector;

/// `(x + offset) · w`, wrapping.
#[inline(always)]
fn term(x: i8, offset: i32, w: i8) -> i32 {
    (x as i32).wrapping_add(offset).wrapping_mul(w as i32)
}

/// `Σ (x[i] + offset) · w[i]`.
#[inline]
pub fn dot(x: &[i8], w: &[i8], offset: i32) -> i32 {
    x.iter()
        .zip(w)
        .fold(0i32, |acc, (&x, &w)| acc.wrapping_add(term(x, offset, w)))
}

/// Widens `src` (offset added) into pixel `pixel`'s window of the quad
/// layout, as its elements `j0..`; the other pixels' halves are untouched.
///
/// Whole groups of four (from a `j0` on a group start) are written two
/// words at a time — both halves of those words are this pixel's — and
/// the rest element by element: one halfword store per element cost a
/// convolution as much as its multiplies.
#[inline]
pub fn widen(words: &mut [u32], k: usize, pixel: usize, j0: usize, src: &[i8], offset: i32) {
    let main = k - k % 4;
    let mut done = 0;
    if j0 % 4 == 0 && j0 < main && pixel < 4 {
        let groups = (main - j0).min(src.len()) / 4;
        if let Some(dst) = words.get_mut(2 * j0..2 * j0 + 8 * groups) {
            let half = |v: i8| (v as i32).wrapping_add(offset) as u16 as u32;
            for (g, x) in dst.chunks_exact_mut(8).zip(src.chunks_exact(4)) {
                if let Some(pair) = g.get_mut(2 * pixel..2 * pixel + 2) {
                    pair[0] = half(x[0]) | half(x[2]) << 16;
                    pair[1] = half(x[1]) | half(x[3]) << 16;
                }
            }
            done = 4 * groups;
        }
    }
    for (t, &x) in src.iter().enumerate().skip(done) {
        super::put(words, k, pixel, j0 + t, x, offset);
    }
}

/// `[Σ a[j] · w[j], …, Σ d[j] · w[j]]` over the four windows of `x`.
#[inline]
pub fn dot_quad(x: QuadWindow<'_>, w: &[i8]) -> [i32; 4] {
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    let k = x.k();
    let main = k - k % 4;
    let mut acc = [0i32; 4];
    let words = x.words.get(..2 * main).unwrap_or(&[]);
    for (c, w) in words.chunks_exact(8).zip(w.chunks_exact(4)) {
        let (w0, w1, w2, w3) = (w[0] as i32, w[1] as i32, w[2] as i32, w[3] as i32);
        for (a, p) in acc.iter_mut().zip(c.chunks_exact(2)) {
            *a = a
                .wrapping_add(lo(p[0]) * w0 + hi(p[0]) * w2)
                .wrapping_add(lo(p[1]) * w1 + hi(p[1]) * w3);
        }
    }
    let tail = x.words.get(2 * main..2 * k).unwrap_or(&[]);
    for (v, &w) in tail.chunks_exact(2).zip(w.get(main..).unwrap_or(&[])) {
        let w = w as i32;
        acc[0] = acc[0].wrapping_add(lo(v[0]) * w);
        acc[1] = acc[1].wrapping_add(hi(v[0]) * w);
        acc[2] = acc[2].wrapping_add(lo(v[1]) * w);
        acc[3] = acc[3].wrapping_add(hi(v[1]) * w);
    }
    acc
}

/// `acc[j] + (x[j] + offset) · w[j]` for four independent channels `j`
/// (one depthwise tap of four neighbouring channels); `offset` in both
/// halfwords ([`super::both_halves`]).
#[inline(always)]
pub fn lanes4(acc: [i32; 4], x: &[i8], w: &[i8], offset: u32) -> [i32; 4] {
    let offset = offset as u16 as i16 as i32;
    let mut out = acc;
    for ((a, &x), &w) in out.iter_mut().zip(x).zip(w) {
        *a = a.wrapping_add(term(x, offset, w));
    }
    out
}

/// `acc[j] + Σ_{ky,kx<3} x[ky·row + 4kx + j] · w(ky·3 + kx, j)` for four
/// channels `j`: a whole 3×3 depthwise window over a band of one word per
/// pixel (four channels), rows `row` bytes apart, the input offset folded
/// into `acc`; `wide` is the block's [`super::widen_taps`] table.
///
/// A window whose taps all lie in `x` (the banded kernel's every call)
/// takes one unrolled pass with a single bounds check, which LLVM
/// vectorizes across the four channels (one `pmaddwd` per tap on SSE2);
/// the per-tap checks of the general loop kept it scalar.
#[inline]
pub fn window3x3(acc: [i32; 4], x: &[i8], row: usize, wide: &[u32]) -> [i32; 4] {
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    let whole = row.checked_mul(2).and_then(|r| r.checked_add(12));
    let wide_all = wide
        .get(..super::WIDE_3X3)
        .map(<&[u32; super::WIDE_3X3]>::try_from);
    if let (Some(x), Some(Ok(wide))) = (whole.and_then(|n| x.get(..n)), wide_all) {
        return window3x3_whole(acc, x, row, wide);
    }
    let mut acc = acc;
    for (t, w) in wide.chunks_exact(2).take(super::TAPS_3X3).enumerate() {
        let at = (t / 3) * row + 4 * (t % 3);
        if let (Some(x), &[even, odd]) = (x.get(at..at + 4), w) {
            let ws = [lo(even), lo(odd), hi(even), hi(odd)];
            for ((a, &x), w) in acc.iter_mut().zip(x).zip(ws) {
                *a = a.wrapping_add(x as i32 * w);
            }
        }
    }
    acc
}

/// [`window3x3`] with every tap in bounds (`x` holds `2·row + 12` bytes).
/// Out of line on purpose: inlined into the banded loop, LLVM no longer
/// vectorized it.
#[inline(never)]
fn window3x3_whole(acc: [i32; 4], x: &[i8], row: usize, wide: &[u32; super::WIDE_3X3]) -> [i32; 4] {
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    let mut a = acc;
    let Some(x) = x.get(..2 * row + 12) else {
        return acc;
    };
    let rows = [&x[..12], &x[row..row + 12], &x[2 * row..2 * row + 12]];
    for (ky, r) in rows.iter().enumerate() {
        for kx in 0..3 {
            let t = 3 * ky + kx;
            let xs = &r[4 * kx..4 * kx + 4];
            let (even, odd) = (wide[2 * t], wide[2 * t + 1]);
            let ws = [lo(even), lo(odd), hi(even), hi(odd)];
            for j in 0..4 {
                a[j] = a[j].wrapping_add(xs[j] as i32 * ws[j]);
            }
        }
    }
    a
}

/// `acc[j] + Σ_t x[at_t + j] · table[4t + j]` for four channels `j`: a
/// whole depthwise window (every tap in bounds) with the input offset
/// already folded into `acc`.
#[inline]
pub fn taps4(acc: [i32; 4], x: &[i8], at: TapOffsets<'_>, table: &[i8]) -> [i32; 4] {
    let mut acc = acc;
    for (&a, w) in at.get().iter().zip(table.chunks_exact(4)) {
        if let Some(x) = x.get(a..a + 4) {
            for ((acc, &x), &w) in acc.iter_mut().zip(x).zip(w) {
                *acc = acc.wrapping_add(x as i32 * w as i32);
            }
        }
    }
    acc
}

/// `acc[4c..4c + 4] = dot_quad(x, w[c·k..(c + 1)·k])` for every channel
/// `c < acc.len() / 4`, `k = x.k()`.
///
/// On the host the windows are unpacked to plain runs once per call and
/// each channel is a vectorizable loop (`vector`); the scalar loop below
/// stays the reference the boards' DSP path is checked against.
#[inline]
pub fn dot_quad_channels(x: QuadWindow<'_>, w: &[i8], acc: &mut [i32]) {
    #[cfg(not(sturdy_dsp))]
    if vector::dot_quad_channels(x, w, acc).is_some() {
        return;
    }
    for (quad, w) in acc.chunks_exact_mut(4).zip(w.chunks_exact(x.k().max(1))) {
        quad.copy_from_slice(&dot_quad(x, w));
    }
}

/// `sums[r] += Σ_j x[j] · w[r·k + j]` over `x`'s complete groups, for the
/// rows `r` (of length `k` in `w`) of `sums`' complete quads — fully
/// connected outputs four at a time, their biases the starting sums; a
/// last `sums.len() % 4` are left alone.
///
/// On the host the vector is unpacked to plain runs a chunk at a time,
/// each chunk serving every quad, and a quad's four rows are one
/// vectorizable loop (`vector`).
#[inline]
pub fn rows4(sums: &mut [i32], x: WideVector<'_>, w: &[i8], k: usize) {
    #[cfg(not(sturdy_dsp))]
    if vector::rows4(sums, x, w, k).is_some() {
        return;
    }
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    let rows = sums.len() - sums.len() % 4;
    for (r, a) in sums[..rows].iter_mut().enumerate() {
        let words = x.words().chunks_exact(2).take(x.groups());
        for (g, pair) in words.enumerate() {
            if let Some(w) = w.get(r * k + 4 * g..r * k + 4 * g + 4) {
                let (w0, w1, w2, w3) = (w[0] as i32, w[1] as i32, w[2] as i32, w[3] as i32);
                *a = a
                    .wrapping_add(lo(pair[0]) * w0 + hi(pair[0]) * w2)
                    .wrapping_add(lo(pair[1]) * w1 + hi(pair[1]) * w3);
            }
        }
    }
}

/// `sums[r] += Σ_j x[j] · w[r][j]`, wrapping, over `x`'s complete octets,
/// for the rows `r` of `sums`' complete pairs: `w` holds packed int4 codes
/// (low nibble first, [`crate::int4`]), row `r` from byte `r · row`; a
/// last `sums.len() % 2` is left alone. (The DSP path sums `4096·w` in runs
/// short enough not to wrap, then shifts: the same exact sum for a valid
/// layer, `|x + offset| ≤ 255`, `|w| ≤ 8`.)
#[inline]
pub fn rows2_i4(sums: &mut [i32], x: WideVector<'_, 8>, w: &[u8], row: usize) {
    let lo = |v: u32| v as u16 as i16 as i32;
    let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
    let rows = sums.len() - sums.len() % 2;
    for (r, s) in sums[..rows].iter_mut().enumerate() {
        let octets = x.words().chunks_exact(4).take(x.groups());
        for (g, words) in octets.enumerate() {
            if let Some(b) = w.get(r * row + 4 * g..r * row + 4 * g + 4) {
                let code = |e: usize| {
                    if e % 2 == 0 {
                        low(b[e / 2])
                    } else {
                        high(b[e / 2])
                    }
                };
                for (j, &v) in words.iter().enumerate() {
                    *s = s
                        .wrapping_add(lo(v) * code(j))
                        .wrapping_add(hi(v) * code(j + 4));
                }
            }
        }
    }
}

/// `x >> 1` clamped to the int8 range.
#[inline(always)]
pub fn sat8_half(x: i32) -> i8 {
    (x >> 1).clamp(-128, 127) as i8
}

/// Every byte of `x` (an int8 code) clamped into `[lo, hi]`, the bounds
/// given in every byte (`super::bytes4`).
#[inline(always)]
pub fn clamp4(x: u32, lo4: u32, hi4: u32) -> u32 {
    let (lo, hi) = (lo4 as u8 as i8, hi4 as u8 as i8);
    // Byte by byte rather than `array::map`, which LLVM left out of line
    // (a call per packed output word on the host).
    let [a, b, c, d] = x.to_le_bytes();
    let clamp = |b: u8| (b as i8).max(lo).min(hi) as u8;
    u32::from_le_bytes([clamp(a), clamp(b), clamp(c), clamp(d)])
}

/// Clamps every byte (an int8 code) into `[lo, hi]`; returns how many
/// changed (the activation guards).
#[inline]
pub fn clamp_count(bytes: &mut [u8], lo: i8, hi: i8) -> u32 {
    let mut count = 0u32;
    for b in bytes.iter_mut() {
        let v = *b as i8;
        let c = v.max(lo).min(hi);
        if c != v {
            *b = c as u8;
            count = count.saturating_add(1);
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_blocks() {
        // x + 1 = [2, −1, 4], w0 = [1, 2, 3].
        let (x, w0) = ([1i8, -2, 3], [1i8, 2, 3]);
        assert_eq!(dot(&x, &w0, 1), 12); // 2 − 2 + 12
                                         // A quad window: x + 1 = [2, −1, 4, 1], xb + 1 = [0, 1, −127, 6],
                                         // pixels 2 and 3 the same two swapped; one group of four and, with
                                         // k = 3, the tail alone.
        let (x4, xb4, w4) = ([1i8, -2, 3, 0], [-1i8, 0, -128, 5], [1i8, 2, 3, 4]);
        for (k, [a, b]) in [(4, [16, 2 - 381 + 24]), (3, [12, 2 - 381])] {
            let mut words = [0u32; 8];
            for (pixel, x) in [x4, xb4, xb4, x4].iter().enumerate() {
                widen(&mut words[..2 * k], k, pixel, 0, &x[..k], 1);
            }
            let window = QuadWindow {
                words: &words[..2 * k],
            };
            assert_eq!(dot_quad(window, &w4[..k]), [a, b, b, a], "k = {k}");
        }
        // Common length: the extra weight is ignored.
        assert_eq!(dot(&x[..2], &w0, 1), 0);
    }
}

#[cfg(test)]
mod window_tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `window3x3` equals its definition term by term — any weight
        /// words (the full i16 range per lane), any row pitch, bands long
        /// enough for every tap and bands too short for the last ones
        /// (whose taps the definition skips).
        #[test]
        fn window3x3_matches_the_definition(
            acc in any::<[i32; 4]>(),
            x in proptest::collection::vec(any::<i8>(), 0..=120),
            row in 0usize..=50,
            wide in proptest::collection::vec(any::<u32>(), 16..=20),
        ) {
            let lane = |v: u32, j: usize| {
                let half = if j % 2 == 0 { v } else { v >> 16 };
                half as u16 as i16 as i32
            };
            let mut want = acc;
            for t in 0..super::super::TAPS_3X3 {
                let at = (t / 3) * row + 4 * (t % 3);
                if let (Some(xs), Some(&even), Some(&odd)) = (x.get(at..at + 4), wide.get(2 * t), wide.get(2 * t + 1)) {
                    // Channels 0, 2 in the even word; 1, 3 in the odd one.
                    let ws = [lane(even, 0), lane(odd, 0), lane(even, 1), lane(odd, 1)];
                    for j in 0..4 {
                        want[j] = want[j].wrapping_add(xs[j] as i32 * ws[j]);
                    }
                }
            }
            prop_assert_eq!(window3x3(acc, &x, row, &wide), want);
        }
    }
}

#[cfg(test)]
mod widen_tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `widen` equals storing element by element through the layout's
        /// definition (`put`), for any start (on a group or not), pixel,
        /// run length (past the window too) and buffer length (shorter
        /// than the layout too); the other pixels' halves stay as they were.
        #[test]
        fn widen_matches_element_stores(
            k in 0usize..=40,
            pixel in 0usize..=4,
            j0 in 0usize..=44,
            src in proptest::collection::vec(any::<i8>(), 0..=48),
            offset in any::<i32>(),
            len_cut in 0usize..=8,
            fill in any::<u32>(),
        ) {
            let len = (2 * k + 8).saturating_sub(len_cut);
            let mut got = std::vec![fill; len];
            let mut want = got.clone();
            widen(&mut got, k, pixel, j0, &src, offset);
            for (t, &x) in src.iter().enumerate() {
                super::super::put(&mut want, k, pixel, j0 + t, x, offset);
            }
            prop_assert_eq!(got, want);
        }
    }
}
