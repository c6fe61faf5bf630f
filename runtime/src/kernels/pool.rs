//! Max and average pooling over NHWC int8 (input and output share quantization).

use super::window::{volume, Axis};
use super::Activation;
use crate::arith::clamp_to_i8;
use crate::Error;
use core::ops::Range;

/// Window geometry of a pooling op; GlobalAveragePool is a window covering
/// the whole input with `out_h = out_w = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Channels (input = output).
    pub channels: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Window height.
    pub kernel_h: usize,
    /// Window width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Padding rows above.
    pub pad_top: usize,
    /// Padding columns left.
    pub pad_left: usize,
    /// Average only: divide by the full window (true) or by the in-bounds part.
    pub count_include_pad: bool,
    /// Average only, with `count_include_pad`: the code of a real 0 (the
    /// input zero point), which padded taps contribute.
    pub pad_value: i8,
    /// Fused activation.
    pub act: Activation,
}

impl Pool {
    /// Checks buffer sizes and geometry; every window must hold at least one
    /// in-bounds tap. Returns the two window axes.
    fn check(&self, input: &[i8], output: &[i8]) -> Result<(Axis, Axis), Error> {
        if volume(self.in_h, self.in_w, self.channels) != Some(input.len())
            || volume(self.out_h, self.out_w, self.channels) != Some(output.len())
            || self.act.min > self.act.max
        {
            return Err(Error::ShapeMismatch);
        }
        let axis = |in_len, out_len, kernel, stride, pad| Axis {
            in_len,
            out_len,
            kernel,
            stride,
            pad,
            dilation: 1,
        };
        let rows = axis(
            self.in_h,
            self.out_h,
            self.kernel_h,
            self.stride_h,
            self.pad_top,
        );
        let cols = axis(
            self.in_w,
            self.out_w,
            self.kernel_w,
            self.stride_w,
            self.pad_left,
        );
        rows.check_covered()?;
        cols.check_covered()?;
        Ok((rows, cols))
    }

    /// Calls `reduce(out_pixel, window)` for every output pixel with the
    /// in-bounds part of its window.
    fn for_each_window(&self, rows: Axis, cols: Axis, mut reduce: impl FnMut(usize, Window)) {
        for oy in 0..self.out_h {
            let (ky0, ky1, iy0) = rows.taps(oy);
            for ox in 0..self.out_w {
                let (kx0, kx1, ix0) = cols.taps(ox);
                let window = Window {
                    rows: iy0..iy0 + (ky1 - ky0),
                    cols: ix0..ix0 + (kx1 - kx0),
                    in_w: self.in_w,
                };
                reduce(oy * self.out_w + ox, window);
            }
        }
    }
}

/// The in-bounds part of one pooling window.
struct Window {
    rows: Range<usize>,
    cols: Range<usize>,
    in_w: usize,
}

impl Window {
    /// Input pixel indices (row-major over the plane) inside the window.
    fn pixels(&self) -> impl Iterator<Item = usize> + '_ {
        self.rows
            .clone()
            .flat_map(move |y| self.cols.clone().map(move |x| y * self.in_w + x))
    }

    /// Number of in-bounds taps.
    fn count(&self) -> usize {
        self.rows.len() * self.cols.len()
    }
}

/// Max over each window (padding never wins).
///
/// Returns [`Error::ShapeMismatch`] (output untouched) if the buffers
/// disagree with `p` or a window lies entirely in the padding.
pub fn max_pool(p: &Pool, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let (rows, cols) = p.check(input, output)?;
    let c = p.channels;
    p.for_each_window(rows, cols, |o, window| {
        let out = &mut output[o * c..(o + 1) * c];
        out.fill(i8::MIN);
        for pixel in window.pixels() {
            for (y, &x) in out.iter_mut().zip(&input[pixel * c..(pixel + 1) * c]) {
                *y = (*y).max(x);
            }
        }
        for y in out {
            *y = clamp_to_i8(*y as i32, p.act.min, p.act.max);
        }
    });
    Ok(())
}

/// Rounded average over each window: `round(Σ x / count)`, ties away from
/// zero (as TFLite). `count` is the in-bounds tap count, or the full window
/// with `count_include_pad`, in which case padded taps add `pad_value`.
///
/// Sums are i32: a window of more than 2^24 taps would be needed to overflow.
/// Returns [`Error::ShapeMismatch`] (output untouched) if the buffers
/// disagree with `p`, a window lies entirely in the padding, or the full
/// window size does not fit in an i32.
pub fn average_pool(p: &Pool, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let (rows, cols) = p.check(input, output)?;
    let full = p
        .kernel_h
        .checked_mul(p.kernel_w)
        .and_then(|n| i32::try_from(n).ok())
        .ok_or(Error::ShapeMismatch)?;
    let c = p.channels;
    p.for_each_window(rows, cols, |o, window| {
        let inside = window.count() as i32; // ≤ full
        let (count, padded) = if p.count_include_pad {
            (full, full - inside)
        } else {
            (inside, 0)
        };
        // Pixels outer, channels inner: each pixel's channels are
        // contiguous, so the sums run over consecutive bytes, a block of
        // channels at a time.
        for first in (0..c).step_by(SUM_BLOCK) {
            let n = SUM_BLOCK.min(c - first);
            let mut sums = [(p.pad_value as i32).wrapping_mul(padded); SUM_BLOCK];
            let sums = &mut sums[..n];
            for pixel in window.pixels() {
                let x = &input[pixel * c + first..][..n];
                for (s, &x) in sums.iter_mut().zip(x) {
                    *s = s.wrapping_add(x as i32);
                }
            }
            let out = &mut output[o * c + first..][..n];
            for (y, &sum) in out.iter_mut().zip(sums.iter()) {
                *y = clamp_to_i8(div_round(sum, count), p.act.min, p.act.max);
            }
        }
    });
    Ok(())
}

/// Channels an average pool sums at once (their sums, 256 B, on the stack).
const SUM_BLOCK: usize = 64;

/// `round(sum / count)` with ties away from zero; `count ≥ 1`.
fn div_round(sum: i32, count: i32) -> i32 {
    let half = count / 2;
    if sum >= 0 {
        sum.saturating_add(half) / count
    } else {
        sum.saturating_sub(half) / count
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn pool(in_hw: (usize, usize), c: usize, k: usize, s: usize, pad: usize) -> Pool {
        let out = |n: usize| (n + 2 * pad - k) / s + 1;
        Pool {
            in_h: in_hw.0,
            in_w: in_hw.1,
            channels: c,
            out_h: out(in_hw.0),
            out_w: out(in_hw.1),
            kernel_h: k,
            kernel_w: k,
            stride_h: s,
            stride_w: s,
            pad_top: pad,
            pad_left: pad,
            count_include_pad: false,
            pad_value: 0,
            act: Activation::NONE,
        }
    }

    #[test]
    fn max_pool_hand_computed() {
        // 4×4 single channel, 2×2 stride 2.
        #[rustfmt::skip]
        let x = [
            1, 2, -3, 4,
            5, -6, 7, 8,
            -9, 10, 11, -12,
            13, 14, -15, -16i8,
        ];
        let mut y = [0i8; 4];
        max_pool(&pool((4, 4), 1, 2, 2, 0), &x, &mut y).unwrap();
        assert_eq!(y, [5, 8, 14, 11]);
    }

    #[test]
    fn max_pool_padding_never_wins_and_act_clamps() {
        let x = [-100i8, -90, -80, -70];
        let mut p = pool((2, 2), 1, 2, 1, 1); // 3×3 output, corners see one pixel
        let mut y = [0i8; 9];
        max_pool(&p, &x, &mut y).unwrap();
        assert_eq!(y, [-100, -90, -90, -80, -70, -70, -80, -70, -70]);
        p.act = Activation { min: -85, max: 127 };
        max_pool(&p, &x, &mut y).unwrap();
        assert_eq!(y[0], -85);
    }

    #[test]
    fn average_rounds_ties_away_from_zero() {
        // Windows of 2 pixels along a 1×4 row, 2 channels.
        let x = [1i8, -1, 2, -2, 3, -3, 4, -4];
        let mut p = pool((1, 4), 2, 1, 1, 0);
        p.kernel_w = 2;
        p.stride_w = 2;
        p.out_w = 2;
        let mut y = [0i8; 4];
        average_pool(&p, &x, &mut y).unwrap();
        // (1+2)/2 = 1.5 → 2, (−1−2)/2 → −2, (3+4)/2 = 3.5 → 4, −3.5 → −4.
        assert_eq!(y, [2, -2, 4, -4]);
    }

    #[test]
    fn average_count_include_pad_uses_zero_point() {
        // One pixel 10, window 2×2 padded top-left: three padded taps of 4.
        let mut p = pool((1, 1), 1, 2, 1, 1);
        p.out_h = 1;
        p.out_w = 1;
        p.pad_value = 4;
        let mut y = [0i8];
        average_pool(&p, &[10], &mut y).unwrap();
        assert_eq!(y, [10]);
        p.count_include_pad = true;
        average_pool(&p, &[10], &mut y).unwrap();
        assert_eq!(y, [6]); // (10 + 3·4) / 4 = 5.5 → 6
    }

    #[test]
    fn global_average_pool() {
        let x: Vec<i8> = (0..18).map(|v| v as i8 - 9).collect(); // 3×3×2
        let mut p = pool((3, 3), 2, 3, 1, 0);
        assert_eq!((p.out_h, p.out_w), (1, 1));
        let mut y = [0i8; 2];
        average_pool(&p, &x, &mut y).unwrap();
        // channel 0: −9,−7,…,7 → mean −1; channel 1: −8,…,8 → mean 0.
        assert_eq!(y, [-1, 0]);
        p.act = Activation { min: 0, max: 127 };
        average_pool(&p, &x, &mut y).unwrap();
        assert_eq!(y, [0, 0]);
    }

    #[test]
    fn rejects_bad_geometry_without_writing() {
        let x = [1i8; 4];
        let mut y = [9i8; 4];
        let bad = [
            Pool {
                stride_h: 0,
                ..pool((2, 2), 1, 1, 1, 0)
            },
            Pool {
                kernel_w: 0,
                ..pool((2, 2), 1, 1, 1, 0)
            },
            Pool {
                out_h: 3,
                ..pool((2, 2), 1, 1, 1, 0)
            },
            // A window entirely in the padding.
            Pool {
                pad_top: 5,
                ..pool((2, 2), 1, 1, 1, 0)
            },
            Pool {
                act: Activation { min: 3, max: 2 },
                ..pool((2, 2), 1, 1, 1, 0)
            },
        ];
        for p in bad {
            assert_eq!(max_pool(&p, &x, &mut y), Err(Error::ShapeMismatch), "{p:?}");
            assert_eq!(
                average_pool(&p, &x, &mut y),
                Err(Error::ShapeMismatch),
                "{p:?}"
            );
            assert_eq!(y, [9; 4]);
        }
    }

    proptest! {
        /// Against a float reference: the mean of the dequantized window,
        /// requantized with round-half-away-from-zero, matches exactly.
        #[test]
        fn average_matches_float(
            h in 1usize..6, w in 1usize..6, c in prop_oneof![1usize..4, 60usize..140],
            k in 1usize..4, s in 1usize..3, pad in 0usize..2,
            include in any::<bool>(), zp in -128i32..128,
            seed in any::<u64>(),
        ) {
            prop_assume!(k > pad && h + 2 * pad >= k && w + 2 * pad >= k);
            let mut p = pool((h, w), c, k, s, pad);
            p.count_include_pad = include;
            p.pad_value = zp as i8;
            let x: Vec<i8> = (0..h * w * c)
                .map(|i| (seed.wrapping_add(i as u64).wrapping_mul(6364136223846793005) >> 56) as i8)
                .collect();
            let mut y = std::vec![0i8; p.out_h * p.out_w * c];
            average_pool(&p, &x, &mut y).unwrap();
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for ch in 0..c {
                        let (mut sum, mut n) = (0.0f64, 0.0f64);
                        for ky in 0..k {
                            for kx in 0..k {
                                let iy = (oy * s + ky) as isize - pad as isize;
                                let ix = (ox * s + kx) as isize - pad as isize;
                                let inside = iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w;
                                if inside {
                                    // Real value relative to the zero point.
                                    sum += (x[(iy as usize * w + ix as usize) * c + ch] as i32 - zp) as f64;
                                    n += 1.0;
                                } else if include {
                                    n += 1.0;
                                }
                            }
                        }
                        let real = sum / n + zp as f64;
                        let expect = real.round().clamp(-128.0, 127.0) as i32;
                        let got = y[(oy * p.out_w + ox) * c + ch] as i32;
                        // Exact, except at a tie: the kernel breaks ties
                        // away from zero in codes, not in real units.
                        let tie = (real.abs().fract() - 0.5).abs() < 1e-9;
                        prop_assert!(got == expect || tie && (got - expect).abs() == 1, "{got} vs {real}");
                    }
                }
            }
        }
    }
}
