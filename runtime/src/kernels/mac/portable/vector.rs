//! Host forms of the block multiply-accumulates, shaped for the compiler's
//! vectorizers rather than for `SMLAD`.
//!
//! The quad layout and [`WideVector`] pair elements `(x0, x2)`, `(x1, x3)`
//! in one word, the order the Cortex-M4's `SXTB16` gives a weight word.
//! On x86 and AArch64 that order costs shuffles in every multiply, and the
//! lo/hi decoding per word kept LLVM from vectorizing the loops at all. So
//! here a window is first unpacked, [`CHUNK`] elements at a time, into
//! plain i16 runs in element order (one per pixel), zero-padded to whole
//! [`LANES`], and every sum is a series of fixed-size dot products
//! ([`lanes_dot`]): 32 i16 × i8 terms summed into one i32. LLVM's SLP
//! vectorizer turns that shape into four full `pmaddwd` on plain SSE2
//! (eight multiply-accumulates each; a running loop of i32 sums only
//! gets half of each `pmaddwd`, the shape it picks for a loop reduction).
//! Only the host builds this module: the chunk buffers (1 KiB) would be
//! stack the boards do not need to spend.
//!
//! Every sum wraps in i32, so splitting a window into chunks and lanes,
//! and the vectorizer's reordering of terms, leave every bit as the scalar
//! loops in [`super`] compute it; zero padding adds `0 · w = 0`.

use super::super::{QuadWindow, WideVector};

/// Elements of one window unpacked at a time: four pixels' runs take
/// 1 KiB of stack. A multiple of [`LANES`], so chunks start on a group.
pub const CHUNK: usize = 128;

/// Terms per fixed-size dot product: the widest LLVM keeps in full
/// `pmaddwd` form on SSE2 (64 falls back to half-width multiplies).
pub const LANES: usize = 32;

/// `Σ x[l] · w[l]` over exactly `N` terms ([`LANES`], or 16 for a short
/// tail). Out of line on purpose: inlined beside the other pixels' sums,
/// the SLP vectorizer packs the four pixels' same term into one vector
/// instead (a gather of scalars) and loses `pmaddwd`.
#[inline(never)]
fn lanes_dot<const N: usize>(x: &[i16; N], w: &[i8; N]) -> i32 {
    let mut t = 0i32;
    for l in 0..N {
        t = t.wrapping_add((x[l] as i32).wrapping_mul(w[l] as i32));
    }
    t
}

/// `w`'s first `N` weights as an array, zero-padded if shorter.
#[inline(always)]
fn padded<const N: usize>(w: &[i8]) -> [i8; N] {
    let mut pad = [0i8; N];
    let n = w.len().min(N);
    if let (Some(d), Some(s)) = (pad.get_mut(..n), w.get(..n)) {
        d.copy_from_slice(s);
    }
    pad
}

/// Adds `Σ_l run_p[at + l] · w[l]` to `acc[p]` for the four runs.
#[inline(always)]
fn add_pixels<const N: usize, const C: usize>(
    acc: &mut [i32; 4],
    runs: &[[i16; C]; 4],
    at: usize,
    w: &[i8; N],
) {
    for (a, r) in acc.iter_mut().zip(runs) {
        if let Some(Ok(x)) = r.get(at..at + N).map(<&[i16; N]>::try_from) {
            *a = a.wrapping_add(lanes_dot(x, w));
        }
    }
}

/// `Σ_{j<n} run_p[j] · w[j]` for the four runs (each zero from `n ≤ C`
/// to the next multiple of [`LANES`]).
///
/// `w` may run on past `n` (into the next channel's weights): the last,
/// partial block then reads them straight from `w` — the runs' zeros
/// cancel them — and only a block at the very end of the weights is
/// copied into a zero-padded buffer. (Copying every channel's tail cost a
/// store-forwarding stall per channel: byte stores read back as one
/// vector load.)
#[inline(always)]
fn dot_pixels<const C: usize>(runs: &[[i16; C]; 4], w: &[i8], n: usize) -> [i32; 4] {
    let mut acc = [0i32; 4];
    let whole = n.min(w.len()) / LANES;
    for (i, wc) in w.chunks_exact(LANES).take(whole).enumerate() {
        if let Ok(wc) = <&[i8; LANES]>::try_from(wc) {
            add_pixels(&mut acc, runs, LANES * i, wc);
        }
    }
    let at = LANES * whole;
    match n.checked_sub(at) {
        None | Some(0) => {}
        Some(rest) if rest <= 16 => match w.get(at..at + 16).map(<&[i8; 16]>::try_from) {
            Some(Ok(wc)) => add_pixels::<16, C>(&mut acc, runs, at, wc),
            _ => add_pixels::<16, C>(&mut acc, runs, at, &padded(w.get(at..n).unwrap_or(&[]))),
        },
        Some(_) => match w.get(at..at + LANES).map(<&[i8; LANES]>::try_from) {
            Some(Ok(wc)) => add_pixels::<LANES, C>(&mut acc, runs, at, wc),
            _ => add_pixels::<LANES, C>(&mut acc, runs, at, &padded(w.get(at..n).unwrap_or(&[]))),
        },
    }
    acc
}

/// `Σ_{j<n} run[j] · w_r[j]` for one run (zero from `n ≤ CHUNK` to the
/// next multiple of [`LANES`]) against four weight runs, which may run on
/// past `n` as in [`dot_pixels`].
#[inline(always)]
fn dot_rows(run: &[i16; CHUNK], w: [&[i8]; 4], n: usize) -> [i32; 4] {
    let mut acc = [0i32; 4];
    let blocks = n.div_ceil(LANES);
    for (i, x) in run.chunks_exact(LANES).take(blocks).enumerate() {
        let Ok(x) = <&[i16; LANES]>::try_from(x) else {
            continue;
        };
        let (at, end) = (LANES * i, n.min(LANES * (i + 1)));
        for (a, w) in acc.iter_mut().zip(w) {
            let sum = match w.get(at..at + LANES).map(<&[i8; LANES]>::try_from) {
                Some(Ok(w)) => lanes_dot(x, w),
                _ => lanes_dot(x, &padded::<LANES>(w.get(at..end).unwrap_or(&[]))),
            };
            *a = a.wrapping_add(sum);
        }
    }
    acc
}

/// The low and high halfword of a word, as the i16 they hold.
#[inline(always)]
fn halves(v: u32) -> (i16, i16) {
    (v as u16 as i16, (v >> 16) as u16 as i16)
}

/// Two groups' words `(x0, x2), (x1, x3)` as their eight elements in
/// order, stored at once: the dot products read the run back 16 bytes at
/// a time right after, which two 8-byte stores could not forward.
#[inline(always)]
fn natural8(a0: u32, b0: u32, a1: u32, b1: u32) -> [i16; 8] {
    let ((x0, x2), (x1, x3)) = (halves(a0), halves(b0));
    let ((x4, x6), (x5, x7)) = (halves(a1), halves(b1));
    [x0, x1, x2, x3, x4, x5, x6, x7]
}

/// Elements `n..` of a run up to the next multiple of [`LANES`] set to 0.
#[inline(always)]
fn pad_run<const C: usize>(run: &mut [i16; C], n: usize) {
    let end = n.next_multiple_of(LANES).min(C);
    if let Some(tail) = run.get_mut(n..end) {
        tail.fill(0);
    }
}

/// Unpacks elements `j0 .. j0 + n` (`j0` a multiple of 4, `n ≤ C`) of
/// the four windows of a `k`-element quad layout into `runs[p][..n]`, in
/// element order, zero-padded to whole [`LANES`]; `None` if `words` is
/// shorter than the layout.
fn unpack_quad<const C: usize>(
    words: &[u32],
    k: usize,
    (j0, n): (usize, usize),
    runs: &mut [[i16; C]; 4],
) -> Option<()> {
    let main = k - k % 4;
    let grouped = main.saturating_sub(j0).min(n) / 4;
    let src = words.get(2 * j0..2 * j0 + 8 * grouped)?;
    let [r0, r1, r2, r3] = &mut *runs;
    let dst = r0
        .chunks_exact_mut(4)
        .zip(r1.chunks_exact_mut(4))
        .zip(r2.chunks_exact_mut(4).zip(r3.chunks_exact_mut(4)));
    // Group words: pixel p's (x0, x2) then (x1, x3) at 2p, 2p + 1.
    for (g, ((d0, d1), (d2, d3))) in src.chunks_exact(8).zip(dst) {
        for (d, pair) in [d0, d1, d2, d3].into_iter().zip(g.chunks_exact(2)) {
            let ((x0, x2), (x1, x3)) = (halves(pair[0]), halves(pair[1]));
            d.copy_from_slice(&[x0, x1, x2, x3]);
        }
    }
    // Tail elements: two words each, pixels (0, 1) then (2, 3).
    for t in 4 * grouped..n {
        let j = j0 + t;
        let (a, b) = (*words.get(2 * j)?, *words.get(2 * j + 1)?);
        let ((p0, p1), (p2, p3)) = (halves(a), halves(b));
        for (r, v) in runs.iter_mut().zip([p0, p1, p2, p3]) {
            *r.get_mut(t)? = v;
        }
    }
    for r in runs.iter_mut() {
        pad_run(r, n);
    }
    Some(())
}

/// [`super::dot_quad_channels`] by chunks of unpacked runs; `None` (and
/// `acc` untouched) when `x` is not a whole `k`-element layout, which the
/// scalar loop then handles.
pub fn dot_quad_channels(x: QuadWindow<'_>, w: &[i8], acc: &mut [i32]) -> Option<()> {
    let k = x.k();
    if k == 0 || x.words.len() < 2 * k {
        return None;
    }
    let channels = (acc.len() / 4).min(w.len() / k);
    let acc = acc.get_mut(..4 * channels)?;
    // Small windows (a first layer's 3×3 over one channel) get small
    // buffers: clearing 1 KiB per call cost more than their multiplies.
    if k <= LANES {
        channels_by::<LANES>(x.words, k, w, acc)
    } else {
        channels_by::<CHUNK>(x.words, k, w, acc)
    }
}

/// [`dot_quad_channels`] with runs of `C` elements (a multiple of
/// [`LANES`]).
#[inline(always)]
fn channels_by<const C: usize>(words: &[u32], k: usize, w: &[i8], acc: &mut [i32]) -> Option<()> {
    let mut runs = [[0i16; C]; 4];
    for j0 in (0..k).step_by(C) {
        let n = C.min(k - j0);
        unpack_quad(words, k, (j0, n), &mut runs)?;
        for (c, quad) in acc.chunks_exact_mut(4).enumerate() {
            let mut sums = dot_pixels(&runs, w.get(c * k + j0..).unwrap_or(&[]), n);
            if j0 > 0 {
                for (s, &a) in sums.iter_mut().zip(quad.iter()) {
                    *s = s.wrapping_add(a);
                }
            }
            // One 16-byte store: the caller reads each channel's four sums
            // back at once, which separate stores could not forward.
            quad.copy_from_slice(&sums);
        }
    }
    Some(())
}

/// [`super::rows4`] by chunks of the unpacked vector, each chunk unpacked
/// once and met by every quad's four rows; `None` (nothing written)
/// unless every row holds every group (`4 · groups ≤ k` and `rows · k ≤
/// w.len()`), which the scalar loop then handles.
pub fn rows4(sums: &mut [i32], x: WideVector<'_>, w: &[i8], k: usize) -> Option<()> {
    let len = 4 * x.groups();
    let rows = sums.len() - sums.len() % 4;
    if len > k || rows.checked_mul(k)? > w.len() {
        return None;
    }
    let mut run = [0i16; CHUNK];
    let words = x.words().get(..2 * x.groups()).unwrap_or(&[]);
    for (chunk, j0) in words.chunks(CHUNK / 2).zip((0..len).step_by(CHUNK)) {
        let n = 2 * chunk.len();
        let quads = chunk.chunks_exact(4);
        let odd = quads.remainder();
        for (d, q) in run.chunks_exact_mut(8).zip(quads) {
            d.copy_from_slice(&natural8(q[0], q[1], q[2], q[3]));
        }
        if let (&[a, b], Some(d)) = (odd, run.get_mut(n.saturating_sub(4)..n)) {
            let ((x0, x2), (x1, x3)) = (halves(a), halves(b));
            d.copy_from_slice(&[x0, x1, x2, x3]);
        }
        pad_run(&mut run, n);
        for (q, quad) in sums[..rows].chunks_exact_mut(4).enumerate() {
            // Each row from this chunk to the end of the weights (see
            // `dot_rows`).
            let rows: [&[i8]; 4] =
                core::array::from_fn(|r| w.get((4 * q + r) * k + j0..).unwrap_or(&[]));
            for (a, s) in quad.iter_mut().zip(dot_rows(&run, rows, n)) {
                *a = a.wrapping_add(s);
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::super::{quad_slot, QuadWindow, WideVector};
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// Element `j` of pixel `p`'s window, read through the layout's
    /// definition ([`quad_slot`]) rather than the unpacking above.
    fn element(words: &[u32], k: usize, j: usize, p: usize) -> i32 {
        let (w, half) = quad_slot(j, k, p);
        (words[w] >> (16 * half)) as u16 as i16 as i32
    }

    /// `dot_quad_channels` by definition: every channel `w` fully holds,
    /// term by term; other quads untouched.
    fn reference_channels(words: &[u32], w: &[i8], acc: &mut [i32]) {
        let k = words.len() / 2;
        for (c, quad) in acc.chunks_exact_mut(4).enumerate() {
            let Some(w) = w.get(c * k..(c + 1) * k).filter(|_| k > 0) else {
                continue;
            };
            for (p, a) in quad.iter_mut().enumerate() {
                *a = (0..k).fold(0i32, |s, j| {
                    s.wrapping_add(element(words, k, j, p).wrapping_mul(w[j] as i32))
                });
            }
        }
    }

    /// Window lengths around every boundary: tails of 1–3, one lane
    /// block, one chunk, several chunks.
    fn window_len() -> impl Strategy<Value = usize> {
        prop_oneof![0usize..=40, 60usize..=140, 250usize..=300]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        /// Any bit pattern in the words (the full i16 range per element,
        /// not only offset int8 codes), any weights, channels up to 9
        /// with the weights sometimes ending mid-channel.
        #[test]
        fn quad_channels_match_the_definition(
            k in window_len(),
            seed in proptest::collection::vec(any::<u32>(), 600),
            weights in proptest::collection::vec(any::<i8>(), 0..=2800),
            quads in 0usize..=9,
        ) {
            let words: Vec<u32> = seed.iter().cycle().take(2 * k).copied().collect();
            let sentinel = 0x5EED_0000u32 as i32;
            let mut got = std::vec![sentinel; 4 * quads];
            let mut want = got.clone();
            reference_channels(&words, &weights, &mut want);
            let window = QuadWindow { words: &words };
            if dot_quad_channels(window, &weights, &mut got).is_none() {
                // Only an empty window declines: the scalar loop's case.
                prop_assert_eq!(k, 0);
            } else {
                prop_assert_eq!(got, want);
            }
        }

        /// Extreme values everywhere: the largest products, all one sign.
        #[test]
        fn quad_channels_extremes(k in window_len(), v in prop_oneof![Just(i16::MIN), Just(i16::MAX)], w in prop_oneof![Just(-128i8), Just(127i8)]) {
            let half = v as u16 as u32;
            let words = std::vec![half | half << 16; 2 * k];
            let weights = std::vec![w; 3 * k];
            let mut got = [0i32; 12];
            let mut want = [0i32; 12];
            reference_channels(&words, &weights, &mut want);
            if dot_quad_channels(QuadWindow { words: &words }, &weights, &mut got).is_some() {
                prop_assert_eq!(got, want);
            }
        }

        /// Four rows against a widened vector, offsets over the whole i32
        /// range (every i16 lane value), row lengths shorter and longer
        /// than the vector, weights that end inside a row.
        #[test]
        fn rows4_matches_the_definition(
            x in proptest::collection::vec(any::<i8>(), 0..=400),
            offset in any::<i32>(),
            k in 0usize..=420,
            weights in proptest::collection::vec(any::<i8>(), 0..=1700),
            start in proptest::collection::vec(any::<i32>(), 0..=9),
        ) {
            let mut buf = [0u32; 202];
            let v = WideVector::new(&x, offset, &mut buf).unwrap();
            let groups = x.len() / 4;
            let lane = |j: usize| (x[j] as i32).wrapping_add(offset) as i16 as i32;
            let rows = start.len() - start.len() % 4;
            let want: Vec<i32> = start.iter().enumerate().map(|(r, &s)| {
                if r >= rows {
                    return s;
                }
                (0..groups)
                    .filter(|g| r * k + 4 * g + 4 <= weights.len())
                    .flat_map(|g| 4 * g..4 * g + 4)
                    .fold(s, |s, j| s.wrapping_add(lane(j).wrapping_mul(weights[r * k + j] as i32)))
            }).collect();
            let mut got = start.clone();
            match rows4(&mut got, v, &weights, k) {
                Some(()) => prop_assert_eq!(&got, &want),
                // Declined, untouched, only when some row lacks a group.
                None => {
                    prop_assert_eq!(&got, &start);
                    prop_assert!(4 * groups > k || rows * k > weights.len());
                }
            }
            let mut got = start.clone();
            super::super::rows4(&mut got, v, &weights, k);
            prop_assert_eq!(got, want);
        }
    }
}
