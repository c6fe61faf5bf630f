//! The device-side check that the target's multiply-accumulate path equals
//! [`super::portable`] bit for bit: seeded random cases of every block
//! shape, with lengths that exercise every tail (`len % 4`), slices at
//! every byte alignment, and offsets and values drawn with extra weight on
//! the extremes (`−128`, `127`, offsets `−127` and `128`).
//!
//! The firmware runs it when the host sends the protocol's kernel check
//! (`tests/tests/hil_kernels.rs`); on the host, where the active path *is*
//! the portable one, it has nothing to find. Fixed-size stack buffers, no
//! heap.

use super::{portable, QuadWindow, TapOffsets, WideVector};

/// Longest dot product drawn (terms).
pub const MAX_LEN: usize = 96;

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Report {
    /// Cases run (each compares all three block shapes).
    pub cases: u32,
    /// Cases where any result differed.
    pub mismatches: u32,
    /// Index of the first such case, to replay it.
    pub first_mismatch: Option<u32>,
}

/// xorshift64*: a small, seedable generator with no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An int8 value, one in four an extreme.
    fn code(&mut self) -> i8 {
        match self.below(8) {
            0 => -128,
            1 => 127,
            _ => self.next() as i8,
        }
    }

    /// A negated zero point in `[−127, 128]`, the extremes often.
    fn offset(&mut self) -> i32 {
        match self.below(4) {
            0 => 128,
            1 => -127,
            _ => self.below(256) as i32 - 127,
        }
    }
}

/// `lanes4`'s signature.
pub type Lanes4 = fn([i32; 4], &[i8], &[i8], u32) -> [i32; 4];
/// `taps4`'s signature.
pub type Taps4 = fn([i32; 4], &[i8], TapOffsets<'_>, &[i8]) -> [i32; 4];
/// `window3x3`'s signature.
pub type Window3x3 = fn([i32; 4], &[i8], usize, &[u32]) -> [i32; 4];
/// `rows4`'s signature.
pub type Rows4 = fn(&mut [i32], WideVector<'_>, &[i8], usize);
/// `rows2_i4`'s signature.
pub type Rows2I4 = fn(&mut [i32], WideVector<'_, 8>, &[u8], usize);

/// One implementation of the multiply-accumulate contract.
#[derive(Clone, Copy)]
pub struct Path {
    /// `dot`.
    pub dot: fn(&[i8], &[i8], i32) -> i32,
    /// `widen`: into the quad layout.
    pub widen: fn(&mut [u32], usize, usize, usize, &[i8], i32),
    /// `dot_quad_channels`.
    pub dot_quad_channels: fn(QuadWindow<'_>, &[i8], &mut [i32]),
    /// `lanes4`.
    pub lanes4: Lanes4,
    /// `taps4`.
    pub taps4: Taps4,
    /// `window3x3`.
    pub window3x3: Window3x3,
    /// `rows4`.
    pub rows4: Rows4,
    /// `rows2_i4`.
    pub rows2_i4: Rows2I4,
    /// `sat8_half`.
    pub sat8_half: fn(i32) -> i8,
    /// `clamp4`.
    pub clamp4: fn(u32, u32, u32) -> u32,
    /// `clamp_count`.
    pub clamp_count: fn(&mut [u8], i8, i8) -> u32,
}

/// The path this target runs.
pub const ACTIVE: Path = Path {
    dot: super::dot,
    widen: super::widen,
    dot_quad_channels: super::dot_quad_channels,
    lanes4: super::lanes4,
    taps4: super::taps4,
    window3x3: super::window3x3,
    rows4: super::rows4,
    rows2_i4: super::rows2_i4,
    sat8_half: super::sat8_half,
    clamp4: super::clamp4,
    clamp_count: super::clamp_count,
};

/// Runs `cases` seeded cases through the target's path and the portable
/// reference.
pub fn run(seed: u64, cases: u32) -> Report {
    run_against(seed, cases, ACTIVE)
}

/// [`run`] with the implementation under test given explicitly (so a test
/// can show the check catches a wrong one). Out of line: the firmware
/// links one copy, not one inlined into its request loop.
#[inline(never)]
pub fn run_against(seed: u64, cases: u32, path: Path) -> Report {
    // Called through opaque pointers: one out-of-line copy of each
    // function (the code the kernels call), not copies inlined here.
    let path = core::hint::black_box(path);
    let mut rng = Rng(seed | 1);
    let mut report = Report::default();
    let mut bufs = [[0i8; MAX_LEN + 3]; 4];
    let mut quad = [0u32; 2 * MAX_LEN];
    let mut reference = [0u32; 2 * MAX_LEN];
    for case in 0..cases {
        let len = rng.below(MAX_LEN as u64 + 1) as usize;
        let offset = rng.offset();
        for b in bufs.iter_mut() {
            for v in b.iter_mut() {
                *v = rng.code();
            }
        }
        let starts = [(); 4].map(|()| rng.below(4) as usize);
        let [xa, xb, w0, w1] = [0, 1, 2, 3].map(|i| &bufs[i][starts[i]..starts[i] + len]);
        let p = core::hint::black_box(portable_path());
        let mut same = (path.dot)(xa, w0, offset) == (p.dot)(xa, w0, offset);
        // Four windows widened into the quad layout, each in two runs
        // split at a random point (as a convolution gathers kernel rows).
        let windows = [xa, xb, w1, xb];
        let (quad, reference) = (&mut quad[..2 * len], &mut reference[..2 * len]);
        for (pixel, x) in windows.into_iter().enumerate() {
            let cut = rng.below(len as u64 + 1) as usize;
            (path.widen)(quad, len, pixel, 0, &x[..cut], offset);
            (path.widen)(quad, len, pixel, cut, &x[cut..], offset);
            (p.widen)(reference, len, pixel, 0, x, offset);
        }
        let window = |words| QuadWindow { words };
        let sums = portable::dot_quad(window(quad), w0);
        same &= quad == reference
            // The quad form computes what the int8 forms do.
            && sums == windows.map(|x| (p.dot)(x, w0, offset));
        // Every channel of a weight tensor against the quad: channels of
        // `len` weights cut from the four buffers laid end to end.
        let mut flat = [0i8; 4 * (MAX_LEN + 3)];
        for (dst, src) in flat.chunks_exact_mut(MAX_LEN + 3).zip(&bufs) {
            dst.copy_from_slice(src);
        }
        let channels = flat.len().checked_div(len).unwrap_or(0).min(8);
        let mut sums = [0i32; 32];
        (path.dot_quad_channels)(
            window(quad),
            &flat[..channels * len],
            &mut sums[..4 * channels],
        );
        for (c, got) in sums[..4 * channels].chunks_exact(4).enumerate() {
            same &= got == portable::dot_quad(window(reference), &flat[c * len..(c + 1) * len]);
        }
        if len >= 4 {
            let acc = [0; 4].map(|_| rng.next() as i32);
            let lanes = (path.lanes4)(acc, &xa[..4], &w0[..4], super::both_halves(offset));
            let expected = core::array::from_fn(|j| {
                acc[j].wrapping_add((p.dot)(&xa[j..=j], &w0[j..=j], offset))
            });
            same &= lanes == expected;
            // A window of 1..=9 taps at growing offsets inside `xa`.
            let taps = 1 + rng.below(9) as usize;
            let mut at = [0usize; 9];
            for t in 1..taps {
                at[t] = at[t - 1] + rng.below(((len - 4) / 8 + 1) as u64) as usize;
            }
            if let Some(offsets) = TapOffsets::new(&at[..taps]) {
                let table = &bufs[2][..4 * taps];
                let got = (path.taps4)(acc, xa, offsets, table);
                let mut want = acc;
                for (&a, w) in at[..taps].iter().zip(table.chunks_exact(4)) {
                    want = (p.lanes4)(want, &xa[a..a + 4], w, 0);
                }
                same &= got == want && (p.taps4)(acc, xa, offsets, table) == want;
            }
        }
        // A 3×3 window over a band whose rows lie `row` bytes apart, the
        // weights widened once: against nine `lanes4` taps.
        let row = 12 + rng.below(((MAX_LEN + 3 - 12) / 2 - 11) as u64) as usize;
        let mut wide = [0u32; super::WIDE_3X3];
        super::widen_taps(&bufs[3][..4 * super::TAPS_3X3], &mut wide);
        let acc = [0; 4].map(|_| rng.next() as i32);
        let band = &bufs[1][..];
        let mut want = acc;
        for t in 0..super::TAPS_3X3 {
            let at = (t / 3) * row + 4 * (t % 3);
            want = (p.lanes4)(want, &band[at..at + 4], &bufs[3][4 * t..4 * t + 4], 0);
        }
        same &= (path.window3x3)(acc, band, row, &wide) == want
            && (p.window3x3)(acc, band, row, &wide) == want;
        // Four weight rows of `len` against one widened vector: the
        // complete groups, as `dot` computes them.
        let mut wide = [0u32; MAX_LEN / 2 + 2];
        if let Some(v) = WideVector::new(xa, offset, &mut wide) {
            let main = len - len % 4;
            // Two quads when they fit (the second's rows start at `4k`),
            // and a fifth sum left alone.
            let rows = if 8 * len <= flat.len() { 8 } else { 4 };
            let w = &flat[..rows * len];
            let start = [0; 9].map(|_| rng.next() as i32);
            let mut want = start;
            for (r, s) in want[..rows].iter_mut().enumerate() {
                *s = s.wrapping_add((p.dot)(&xa[..main], &w[r * len..], offset));
            }
            let (mut by_path, mut by_portable) = (start, start);
            (path.rows4)(&mut by_path[..rows + 1], v, w, len);
            (p.rows4)(&mut by_portable[..rows + 1], v, w, len);
            same &= by_path == want && by_portable == want;
        }
        // Two rows of packed int4 codes (any byte is two codes), `row`
        // bytes apart, against one vector widened in octets: the complete
        // octets, as `dot` computes them on the codes unpacked by hand.
        let mut wide = [0u32; MAX_LEN / 2 + 2];
        if let Some(v) = WideVector::<8>::new(xa, offset, &mut wide) {
            let main = len - len % 8;
            let row = main / 2 + rng.below(3) as usize;
            let bytes = flat.map(|b| b as u8);
            let w = &bytes[..2 * row];
            let start = [0; 3].map(|_| rng.next() as i32);
            let mut want = start;
            for (r, s) in want[..2].iter_mut().enumerate() {
                let mut codes = [0i8; MAX_LEN];
                for (e, c) in codes[..main].iter_mut().enumerate() {
                    let b = w[r * row + e / 2];
                    *c = if e % 2 == 0 {
                        (b << 4) as i8 >> 4
                    } else {
                        b as i8 >> 4
                    };
                }
                *s = s.wrapping_add((p.dot)(&xa[..main], &codes[..main], offset));
            }
            let (mut by_path, mut by_portable) = (start, start);
            (path.rows2_i4)(&mut by_path, v, w, row);
            (p.rows2_i4)(&mut by_portable, v, w, row);
            same &= by_path == want && by_portable == want;
        }
        // Halving with saturation to int8 (floor division: an independent
        // reference for the arithmetic shift), and the four-lane clamp.
        let wide_value = (rng.next() as i32) >> rng.below(32);
        same &= (path.sat8_half)(wide_value) == wide_value.div_euclid(2).clamp(-128, 127) as i8;
        let (lo, hi) = (rng.code(), rng.code());
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let word = rng.next() as u32;
        let clamped = u32::from_le_bytes(word.to_le_bytes().map(|b| (b as i8).clamp(lo, hi) as u8));
        let (lo4, hi4) = (super::bytes4(lo), super::bytes4(hi));
        same &= (path.clamp4)(word, lo4, hi4) == clamped && (p.clamp4)(word, lo4, hi4) == clamped;
        // The guards' clamp, on the activations as raw bytes.
        let (lo, hi) = (rng.code(), rng.code());
        let (lo, hi) = (lo.min(hi), lo.max(hi));
        let mut by_path = [0u8; MAX_LEN];
        let mut reference = [0u8; MAX_LEN];
        for (i, &x) in xa.iter().enumerate() {
            (by_path[i], reference[i]) = (x as u8, x as u8);
        }
        let n = (path.clamp_count)(&mut by_path[..len], lo, hi);
        let expected = xa.iter().filter(|&&x| x < lo || x > hi).count() as u32;
        same &= n == (p.clamp_count)(&mut reference[..len], lo, hi)
            && n == expected
            && by_path == reference;
        report.cases += 1;
        if !same {
            report.mismatches += 1;
            report.first_mismatch.get_or_insert(case);
        }
    }
    report
}

/// The portable reference as a [`Path`].
fn portable_path() -> Path {
    Path {
        dot: portable::dot,
        widen: portable::widen,
        dot_quad_channels: portable::dot_quad_channels,
        lanes4: portable::lanes4,
        taps4: portable::taps4,
        window3x3: portable::window3x3,
        rows4: portable::rows4,
        rows2_i4: portable::rows2_i4,
        sat8_half: portable::sat8_half,
        clamp4: portable::clamp4,
        clamp_count: portable::clamp_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The check's report for `path` over 500 seeded cases.
    fn against(path: Path) -> Report {
        run_against(7, 500, path)
    }

    #[test]
    fn the_active_path_matches_and_a_wrong_one_is_caught() {
        let ok = run(7, 500);
        assert_eq!((ok.cases, ok.mismatches, ok.first_mismatch), (500, 0, None));
        // An implementation that drops the last term whenever len % 4 == 3.
        fn short(x: &[i8], w: &[i8], o: i32) -> i32 {
            let n = x.len().min(w.len());
            let n = if n % 4 == 3 { n - 1 } else { n };
            portable::dot(&x[..n], &w[..n], o)
        }
        let bad = against(Path {
            dot: short,
            ..ACTIVE
        });
        assert!(bad.mismatches > 50, "{bad:?}");
        assert!(bad.first_mismatch.is_some());
        // A channel loop that swaps two pixels.
        fn swapped(x: QuadWindow<'_>, w: &[i8], acc: &mut [i32]) {
            portable::dot_quad_channels(x, w, acc);
            for quad in acc.chunks_exact_mut(4) {
                quad.swap(1, 2);
            }
        }
        let bad = against(Path {
            dot_quad_channels: swapped,
            ..ACTIVE
        });
        assert!(bad.mismatches > 50, "{bad:?}");
        // A 3×3 window that reads its last row where its second lies.
        fn two_rows(acc: [i32; 4], x: &[i8], row: usize, wide: &[u32]) -> [i32; 4] {
            let rows = [x, &x[row..], &x[row..]];
            let mut acc = acc;
            for (r, x) in rows.iter().enumerate() {
                let taps = &wide[6 * r..6 * r + 6];
                acc = portable::window3x3(acc, x, 0, taps);
            }
            acc
        }
        let bad = against(Path {
            window3x3: two_rows,
            ..ACTIVE
        });
        assert!(bad.mismatches > 400, "{bad:?}");
        // Four rows with the middle two swapped.
        fn crossed(sums: &mut [i32], x: WideVector<'_>, w: &[i8], k: usize) {
            portable::rows4(sums, x, w, k);
            sums.swap(1, 2);
        }
        let bad = against(Path {
            rows4: crossed,
            ..ACTIVE
        });
        assert!(bad.mismatches > 400, "{bad:?}");
        // int4 rows with each byte's two codes read the wrong way round.
        fn nibbles_swapped(sums: &mut [i32], x: WideVector<'_, 8>, w: &[u8], row: usize) {
            let mut swapped = [0u8; 4 * (MAX_LEN + 3)];
            for (d, &b) in swapped.iter_mut().zip(w) {
                *d = b.rotate_left(4);
            }
            portable::rows2_i4(sums, x, &swapped[..w.len()], row);
        }
        let bad = against(Path {
            rows2_i4: nibbles_swapped,
            ..ACTIVE
        });
        assert!(bad.mismatches > 400, "{bad:?}");
    }
}
