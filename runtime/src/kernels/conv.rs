//! 2-D convolution: standard, grouped and depthwise, over int8 or packed
//! int4 weights ([`Weights`]).
//!
//! Three loop nests share one validation and one window geometry
//! ([`Axis`](super::window::Axis), shared with pooling):
//! - dense (`groups == 1`, `dilation_w == 1`, windows up to
//!   [`GATHER_MAX`]): four output pixels' windows gathered and met by every
//!   output channel ([`super::conv_dense`]; int4 weights unpacked to int8
//!   in blocks of channels first);
//! - depthwise (`groups == in_c`, one output per channel): four channels
//!   at a time over a zero-point-padded band ([`super::conv_depthwise`]);
//!   int4 layers of up to [`UNPACK_MAX`] weights are unpacked to int8 first;
//! - general grouped, and every other shape: innermost loop over the
//!   group's contiguous input channels.
//!
//! Accumulation is i32 with `wrapping_*` ops (see [`super::fully_connected`]):
//! valid models never come near overflow, and a hostile artifact cannot make
//! a debug build panic.

use super::conv_dense::{dense, GATHER_MAX};

/// Most int4 depthwise weights unpacked to int8 for the four-channel path
/// (4 KiB of stack: a 3×3 depthwise over 455 channels, VWW's widest is
/// 256); larger layers take the general loop.
const UNPACK_MAX: usize = 4096;
#[cfg(not(target_arch = "x86_64"))]
use super::conv_depthwise::depthwise;
#[cfg(target_arch = "x86_64")]
use super::conv_sse2::depthwise;

/// Most taps (`kernel_h · kernel_w`) the depthwise path's weight table
/// holds: 7×7 and below take it.
pub(super) const MAX_TAPS: usize = 49;

/// Whether the depthwise path applies to `p` with int8 weights: one
/// output per channel, at most [`MAX_TAPS`] taps.
fn depthwise_applies(p: &Conv2d) -> bool {
    p.groups == p.in_c && p.out_c == p.in_c && p.kernel_h.saturating_mul(p.kernel_w) <= MAX_TAPS
}
use super::fully_connected::{check_requants, finish};
use super::weights::Weights;
use super::window::{volume, Axis};
use super::Activation;
use crate::arith::Requant;
use crate::Error;

/// Shapes and quantization of one Conv2d (NHWC input/output, batch 1).
///
/// Weights are `[out_c][kernel_h][kernel_w][in_c / groups]`; output channel
/// `o` reads input channels of group `o / (out_c / groups)`. Depthwise is
/// `groups == in_c` (with `out_c` a multiple of `in_c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub kernel_h: usize,
    /// Kernel width.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows added above the input.
    pub pad_top: usize,
    /// Zero columns added left of the input.
    pub pad_left: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Channel groups (1 = dense, `in_c` = depthwise).
    pub groups: usize,
    /// `−zp_in`.
    pub input_offset: i32,
    /// `zp_out`.
    pub output_offset: i32,
    /// Fused activation.
    pub act: Activation,
}

/// Runs a convolution; `bias`, `multipliers`, `shifts` have `out_c`
/// entries, `weights` is `&[i8]` or [`crate::int4::PackedI4`].
///
/// `out[oy][ox][o] = clamp(requant_o(bias[o] + Σ (x + input_offset) · w) +
/// output_offset)`, the sum running over the window taps that fall inside
/// the input (padding contributes nothing, i.e. pads with `zp_in`).
///
/// Validation (before anything is written): every buffer length matches `p`
/// (checked arithmetic), `in_c ≥ 1`, kernel, strides, dilations and groups
/// are ≥ 1, `groups` divides `in_c` and `out_c`, the last tap of the last
/// window is addressable, the activation interval is non-empty
/// ([`Error::ShapeMismatch`] otherwise), and every per-channel requant is
/// valid ([`Error::BadRequant`]). Windows lying entirely in the padding are
/// allowed (they output the requantized bias, as the float op would).
pub fn conv2d<W: Weights>(
    p: &Conv2d,
    input: &[i8],
    weights: W,
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) -> Result<(), Error> {
    let path = conv_path(p, &weights);
    conv2d_via(path, p, input, weights, bias, multipliers, shifts, output)
}

/// The loop nest [`conv2d`] runs a layer with. Every nest computes the
/// same bits where it applies; a build that links only some of them
/// ([`crate::kernel_set`]) names its nest to [`conv2d_via`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPath {
    /// One output per channel, at most 49 taps: four channels at a time
    /// over a zero-point-padded band (int4 weights unpacked first, up to
    /// 4,096 of them).
    Depthwise,
    /// One group, no horizontal dilation, windows up to 576 elements:
    /// four output pixels' windows met by every output channel.
    Dense,
    /// Every other shape (grouped, dilated, larger windows).
    General,
}

/// The fastest loop nest that applies to `p` with these weights (any
/// parameters: [`conv2d_via`] validates them, this only picks).
pub fn conv_path<W: Weights>(p: &Conv2d, weights: &W) -> ConvPath {
    if depthwise_applies(p) && (weights.int8().is_some() || weights.elements() <= UNPACK_MAX) {
        ConvPath::Depthwise
    } else if dense_applies(p) {
        ConvPath::Dense
    } else {
        ConvPath::General
    }
}

/// Whether the dense nest applies: one group, no horizontal dilation, and
/// a window that fits the gather buffer.
fn dense_applies(p: &Conv2d) -> bool {
    let window = p.kernel_h.saturating_mul(p.kernel_w).saturating_mul(p.in_c);
    p.groups == 1 && p.dilation_w == 1 && window <= GATHER_MAX
}

/// [`conv2d`] through the loop nest `path`, [`Error::ShapeMismatch`] when
/// [`conv_path`] picks another. Always inlined: where `path` is a
/// constant only its nest is called, so a build links the nests it names
/// and no other.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub fn conv2d_via<W: Weights>(
    path: ConvPath,
    p: &Conv2d,
    input: &[i8],
    weights: W,
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) -> Result<(), Error> {
    let (rows, cols) = validate(
        p,
        input,
        weights.elements(),
        bias,
        multipliers,
        shifts,
        output,
    )?;
    if output.is_empty() {
        return Ok(());
    }
    if path != conv_path(p, &weights) {
        return Err(Error::ShapeMismatch);
    }
    let geometry = (&rows, &cols);
    let params = (bias, multipliers, shifts);
    match path {
        ConvPath::Depthwise => depthwise_any(p, geometry, input, weights, params, output),
        ConvPath::Dense => dense(
            p,
            &rows,
            &cols,
            input,
            weights,
            bias,
            multipliers,
            shifts,
            output,
        ),
        ConvPath::General => general(p, geometry, input, weights, params, output),
    }
}

/// The depthwise nest over int8 weights, or int4 ones unpacked to int8
/// first: every weight serves every output pixel of its channel, so the
/// whole layer is unpacked once.
fn depthwise_any<W: Weights>(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    weights: W,
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) -> Result<(), Error> {
    if let Some(w) = weights.int8() {
        return depthwise(p, rows, cols, input, w, bias, multipliers, shifts, output);
    }
    let mut int8 = [0i8; UNPACK_MAX];
    let w = &mut int8[..weights.elements()];
    weights.unpack(0, w);
    depthwise(p, rows, cols, input, w, bias, multipliers, shifts, output)
}

/// The general nest: every shape, one output at a time, the innermost
/// loop over the group's contiguous input channels. Out of line: the slow
/// fallback, kept out of the fast paths' callers.
#[inline(never)]
fn general<W: Weights>(
    p: &Conv2d,
    (rows, cols): (&Axis, &Axis),
    input: &[i8],
    weights: W,
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    output: &mut [i8],
) -> Result<(), Error> {
    let in_c = p.in_c;
    let out_c = p.out_c;
    let icg = in_c / p.groups;
    let ocg = out_c / p.groups;
    let row_len = p.in_w * in_c;
    let off = p.input_offset;
    // Proof sketch for the indexing below: for a window, `rows.taps` and
    // `cols.taps` give taps `k0..k1` whose input coordinates are `i0 + (k −
    // k0)·dilation < in_len`; channels stay below `in_c`; `o < out_c`,
    // `ky < kernel_h`, `kx < kernel_w`; so every index is below the
    // product that validate compared with the buffer length.
    let mut out_pixel = 0usize;
    for oy in 0..p.out_h {
        let (ky0, ky1, iy0) = rows.taps(oy);
        for ox in 0..p.out_w {
            let (kx0, kx1, ix0) = cols.taps(ox);
            let out = &mut output[out_pixel..out_pixel + out_c];
            out_pixel += out_c;
            let rows_iter = (ky0..ky1).map(|ky| (ky, iy0 + (ky - ky0) * p.dilation_h));
            // General grouped (int4 depthwise past the unpack buffer,
            // dense with horizontal dilation, int8 and int4 windows past
            // the gather buffer).
            for (o, y) in out.iter_mut().enumerate() {
                let rq = Requant::new(multipliers[o], shifts[o])?;
                let ch0 = (o / ocg) * icg;
                let mut acc = bias[o];
                for (ky, iy) in rows_iter.clone() {
                    for kx in kx0..kx1 {
                        let ix = ix0 + (kx - kx0) * p.dilation_w;
                        let xs = iy * row_len + ix * in_c + ch0;
                        let ws = ((o * p.kernel_h + ky) * p.kernel_w + kx) * icg;
                        acc = acc.wrapping_add(weights.dot(&input[xs..xs + icg], ws, off));
                    }
                }
                *y = finish(rq, acc, p.output_offset, p.act);
            }
        }
    }
    Ok(())
}

/// All of [`conv2d`]'s checks; returns the validated window geometry.
fn validate(
    p: &Conv2d,
    input: &[i8],
    weights: usize,
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &[i8],
) -> Result<(Axis, Axis), Error> {
    let bad = Err(Error::ShapeMismatch);
    if p.in_c == 0
        || p.groups == 0
        || p.in_c % p.groups != 0
        || p.out_c % p.groups != 0
        || p.act.min > p.act.max
    {
        return bad;
    }
    let icg = p.in_c / p.groups;
    let weights_len = p
        .out_c
        .checked_mul(p.kernel_h)
        .and_then(|n| n.checked_mul(p.kernel_w))
        .and_then(|n| n.checked_mul(icg));
    if volume(p.in_h, p.in_w, p.in_c) != Some(input.len())
        || volume(p.out_h, p.out_w, p.out_c) != Some(output.len())
        || weights_len != Some(weights)
        || bias.len() != p.out_c
        || multipliers.len() != p.out_c
        || shifts.len() != p.out_c
    {
        return bad;
    }
    let rows = Axis {
        in_len: p.in_h,
        out_len: p.out_h,
        kernel: p.kernel_h,
        stride: p.stride_h,
        pad: p.pad_top,
        dilation: p.dilation_h,
    };
    let cols = Axis {
        in_len: p.in_w,
        out_len: p.out_w,
        kernel: p.kernel_w,
        stride: p.stride_w,
        pad: p.pad_left,
        dilation: p.dilation_w,
    };
    rows.check()?;
    cols.check()?;
    check_requants(multipliers, shifts)?;
    Ok((rows, cols))
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::test_support::*;
    use super::*;
    use crate::int4::PackedI4;
    use core::ops::{Range, RangeInclusive};
    use proptest::prelude::*;
    use std::vec::Vec;

    fn one() -> (i32, i32) {
        quantize_multiplier(1.0)
    }

    #[test]
    fn hand_computed_padded_3x3() {
        // 2×2 single-channel input, zp_in = 1 (offset −1):
        //   x = [[2, 3], [4, 5]]  →  x − zp = [[1, 2], [3, 4]]
        // 3×3 kernel of ones except centre 2, pad 1 each side, stride 1 → 2×2 out.
        // out(0,0): window rows −1..1, cols −1..1; in-bounds (0,0)c,(0,1),(1,0),(1,1)
        //   weights at those taps: centre (1,1)=2 → 1·2, (1,2)=1 → 2, (2,1)=1 → 3, (2,2)=1 → 4
        //   sum = 2 + 2 + 3 + 4 = 11; + bias 1 = 12.
        // out(0,1): in-bounds (0,0) w(1,0)=1 → 1, (0,1) centre → 4, (1,0) w(2,0) → 3, (1,1) w(2,1) → 4
        //   = 12, + 1 = 13.  out(1,0): 1 + 2 + 6 + 4 = 13 + 1 = 14.  out(1,1): 1 + 2 + 3 + 8 = 14 + 1 = 15.
        // Scale 1/2, zp_out = −3: 6−3, 6.5→7−3, 7−3, 7.5→8−3.
        let p = Conv2d {
            in_h: 2,
            in_w: 2,
            in_c: 1,
            out_h: 2,
            out_w: 2,
            out_c: 1,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            pad_top: 1,
            pad_left: 1,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
            input_offset: -1,
            output_offset: -3,
            act: Activation::NONE,
        };
        let w: &[i8] = &[1, 1, 1, 1, 2, 1, 1, 1, 1];
        let (m, e) = quantize_multiplier(0.5);
        let mut out = [0i8; 4];
        conv2d(&p, &[2, 3, 4, 5], w, &[1], &[m], &[e], &mut out).unwrap();
        assert_eq!(out, [3, 4, 4, 5]);
    }

    #[test]
    fn hand_computed_depthwise_with_multiplier() {
        // 1×3 input, 2 channels: ch0 = [1, 2, 3], ch1 = [10, 20, 30] (zp 0).
        // 1×2 kernel, stride 1, no pad → 1×2 output; multiplier 2 → out_c 4.
        // o0 (ch0, w [1, 1]):  [1+2, 2+3]     = [3, 5]
        // o1 (ch0, w [1, −1]): [1−2, 2−3]     = [−1, −1]
        // o2 (ch1, w [0, 1]):  [20, 30]
        // o3 (ch1, w [2, 0]) + bias 5: [25, 45]
        let p = Conv2d {
            in_h: 1,
            in_w: 3,
            in_c: 2,
            out_h: 1,
            out_w: 2,
            out_c: 4,
            kernel_h: 1,
            kernel_w: 2,
            stride_h: 1,
            stride_w: 1,
            pad_top: 0,
            pad_left: 0,
            dilation_h: 1,
            dilation_w: 1,
            groups: 2,
            input_offset: 0,
            output_offset: 0,
            act: Activation::NONE,
        };
        let input = [1, 10, 2, 20, 3, 30];
        let w: &[i8] = &[1, 1, 1, -1, 0, 1, 2, 0];
        let (m, e) = one();
        let mut out = [0i8; 8];
        conv2d(&p, &input, w, &[0, 0, 0, 5], &[m; 4], &[e; 4], &mut out).unwrap();
        assert_eq!(out, [3, -1, 20, 25, 5, -1, 30, 45]);
    }

    #[test]
    fn hand_computed_int4_depthwise_odd_taps() {
        // 1×4 input, 2 channels, zp_in = 1 (offset −1):
        //   ch0 = [1, 2, 3, 4] → [0, 1, 2, 3];  ch1 = [−1, 0, 2, 5] → [−2, −1, 1, 4].
        // 1×3 kernel, groups 2 → 1×2 output. o1's taps start at element 3
        // (a high nibble).
        // o0 (ch0, w [−7, 7, −8]), bias 5:  [0 + 7 − 16, −7 + 14 − 24] + 5 = [−4, −12]
        // o1 (ch1, w [3, −1, −7]), bias −3: [−6 + 1 − 7, −3 − 1 − 28] − 3 = [−15, −35]
        let p = Conv2d {
            in_h: 1,
            in_w: 4,
            in_c: 2,
            out_h: 1,
            out_w: 2,
            out_c: 2,
            kernel_h: 1,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            pad_top: 0,
            pad_left: 0,
            dilation_h: 1,
            dilation_w: 1,
            groups: 2,
            input_offset: -1,
            output_offset: 0,
            act: Activation::NONE,
        };
        let input = [1, -1, 2, 0, 3, 2, 4, 5];
        let bytes = pack_i4(&[-7, 7, -8, 3, -1, -7]);
        let w = PackedI4::new(&bytes, 6).unwrap();
        let (m, e) = one();
        let mut out = [0i8; 4];
        conv2d(&p, &input, w, &[5, -3], &[m; 2], &[e; 2], &mut out).unwrap();
        assert_eq!(out, [-4, -15, -12, -35]);
    }

    #[test]
    fn hand_computed_int4_dense_odd_channels() {
        // One pixel, 3 input channels (odd): o1's row starts at element 3.
        // x = [2, −3, 4] (zp 0); o0: w [1, −7, 7] → 2 + 21 + 28 = 51;
        // o1: w [−8, 2, −1], bias 10 → −16 − 6 − 4 + 10 = −16.
        // Scale 1/2: 25.5 → 26 (ties up), −8.
        let p = Conv2d {
            in_h: 1,
            in_w: 1,
            in_c: 3,
            out_h: 1,
            out_w: 1,
            out_c: 2,
            kernel_h: 1,
            kernel_w: 1,
            ..base()
        };
        let bytes = pack_i4(&[1, -7, 7, -8, 2, -1]);
        let w = PackedI4::new(&bytes, 6).unwrap();
        let (m, e) = quantize_multiplier(0.5);
        let mut out = [0i8; 2];
        conv2d(&p, &[2, -3, 4], w, &[0, 10], &[m; 2], &[e; 2], &mut out).unwrap();
        assert_eq!(out, [26, -8]);
    }

    fn base() -> Conv2d {
        Conv2d {
            in_h: 3,
            in_w: 3,
            in_c: 2,
            out_h: 1,
            out_w: 1,
            out_c: 2,
            kernel_h: 3,
            kernel_w: 3,
            stride_h: 1,
            stride_w: 1,
            pad_top: 0,
            pad_left: 0,
            dilation_h: 1,
            dilation_w: 1,
            groups: 1,
            input_offset: 0,
            output_offset: 0,
            act: Activation::NONE,
        }
    }

    fn run_base(p: &Conv2d) -> Result<(), Error> {
        let (m, e) = one();
        let mut out = [0i8; 2];
        conv2d(
            p,
            &[0; 18],
            &[0i8; 36][..],
            &[0; 2],
            &[m; 2],
            &[e; 2],
            &mut out,
        )
    }

    #[test]
    fn rejects_bad_params() {
        let mismatch = Err(Error::ShapeMismatch);
        assert_eq!(run_base(&base()), Ok(()));
        assert_eq!(
            run_base(&Conv2d {
                stride_h: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                stride_w: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                dilation_h: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                dilation_w: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                kernel_h: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                groups: 0,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                groups: 3,
                ..base()
            }),
            mismatch
        );
        assert_eq!(run_base(&Conv2d { in_c: 0, ..base() }), mismatch);
        assert_eq!(run_base(&Conv2d { out_h: 2, ..base() }), mismatch);
        assert_eq!(
            run_base(&Conv2d {
                act: Activation { min: 1, max: 0 },
                ..base()
            }),
            mismatch
        );
        // Overflowing sizes: in_h·in_w·in_c wraps to 18 in 64-bit arithmetic
        // if computed without checks.
        let wrap = (1usize << (usize::BITS - 1)) + 9;
        assert_eq!(
            run_base(&Conv2d {
                in_h: wrap,
                in_w: 2,
                in_c: 1,
                ..base()
            }),
            mismatch
        );
        assert_eq!(
            run_base(&Conv2d {
                in_h: usize::MAX,
                in_w: usize::MAX,
                ..base()
            }),
            mismatch
        );
        // Last tap position overflows usize.
        // A single window never steps: any stride is fine.
        assert_eq!(
            run_base(&Conv2d {
                stride_h: usize::MAX,
                ..base()
            }),
            Ok(())
        );
        let huge = Conv2d {
            kernel_h: 3,
            dilation_h: usize::MAX,
            ..base()
        };
        assert_eq!(run_base(&huge), mismatch);
        // Bad requant.
        let mut out = [0i8; 2];
        let (m, e) = one();
        let r = conv2d(
            &base(),
            &[0; 18],
            &[0i8; 36][..],
            &[0; 2],
            &[m, m],
            &[e, 31],
            &mut out,
        );
        assert_eq!(r, Err(Error::BadRequant));
        let r = conv2d(
            &base(),
            &[0; 18],
            &[0i8; 36][..],
            &[0; 1],
            &[m, m],
            &[e, e],
            &mut out,
        );
        assert_eq!(r, mismatch);
    }

    #[test]
    fn windows_entirely_in_padding_output_bias() {
        // 1×1 kernel with pad 1: the border outputs see only padding.
        let p = Conv2d {
            in_h: 1,
            in_w: 1,
            in_c: 1,
            out_h: 3,
            out_w: 3,
            out_c: 1,
            kernel_h: 1,
            kernel_w: 1,
            pad_top: 1,
            pad_left: 1,
            ..base()
        };
        let (m, e) = one();
        let mut out = [0i8; 9];
        conv2d(&p, &[10], &[3i8][..], &[-7], &[m], &[e], &mut out).unwrap();
        assert_eq!(out, [-7, -7, -7, -7, 23, -7, -7, -7, -7]);
    }

    /// A random convolution with real scales chosen by the test.
    #[derive(Debug, Clone)]
    struct Case {
        p: Conv2d,
        input: Vec<i8>,
        weights: Vec<i8>,
        bias: Vec<i32>,
        s_in: f64,
        s_w: Vec<f64>,
        s_out: f64,
    }

    impl Case {
        /// The convolution with its codes stored as int8.
        fn run(&self) -> Vec<i8> {
            self.run_with(self.weights.as_slice())
        }

        /// The convolution with its codes packed as int4.
        fn run_i4(&self) -> Vec<i8> {
            let bytes = pack_i4(&self.weights);
            self.run_with(PackedI4::new(&bytes, self.weights.len()).unwrap())
        }

        fn run_with<W: Weights>(&self, weights: W) -> Vec<i8> {
            let (ms, es): (Vec<i32>, Vec<i32>) = self
                .s_w
                .iter()
                .map(|&sw| quantize_multiplier(self.s_in * sw / self.s_out))
                .unzip();
            let p = &self.p;
            let mut out = zeros(p.out_h * p.out_w * p.out_c);
            conv2d(p, &self.input, weights, &self.bias, &ms, &es, &mut out).unwrap();
            out
        }

        /// Calls `f(oy, ox, o, x_index, w_index)` for every (window, tap,
        /// channel) that reads a real input element — written as the plain
        /// definition with signed coordinates, independently of the kernel.
        fn for_each_term(&self, mut f: impl FnMut(usize, usize, usize, usize, usize)) {
            let p = &self.p;
            let icg = p.in_c / p.groups;
            let ocg = p.out_c / p.groups;
            for oy in 0..p.out_h {
                for ox in 0..p.out_w {
                    for o in 0..p.out_c {
                        let g = o / ocg;
                        for ky in 0..p.kernel_h {
                            for kx in 0..p.kernel_w {
                                let iy =
                                    (oy * p.stride_h + ky * p.dilation_h) as i64 - p.pad_top as i64;
                                let ix = (ox * p.stride_w + kx * p.dilation_w) as i64
                                    - p.pad_left as i64;
                                if iy < 0 || ix < 0 || iy >= p.in_h as i64 || ix >= p.in_w as i64 {
                                    continue;
                                }
                                for i in 0..icg {
                                    let c = g * icg + i;
                                    let xi = (iy as usize * p.in_w + ix as usize) * p.in_c + c;
                                    let wi = ((o * p.kernel_h + ky) * p.kernel_w + kx) * icg + i;
                                    f(oy, ox, o, xi, wi);
                                }
                            }
                        }
                    }
                }
            }
        }

        /// Naive integer reference: i64 accumulation, then the runtime's one
        /// rounding rule — must agree with the kernel bit for bit.
        fn naive(&self) -> Vec<i8> {
            let p = &self.p;
            let mut acc: Vec<i64> = (0..p.out_h * p.out_w * p.out_c)
                .map(|i| self.bias[i % p.out_c] as i64)
                .collect();
            self.for_each_term(|oy, ox, o, xi, wi| {
                let x = self.input[xi] as i64 + p.input_offset as i64;
                acc[(oy * p.out_w + ox) * p.out_c + o] += x * self.weights[wi] as i64;
            });
            acc.iter()
                .enumerate()
                .map(|(i, &a)| {
                    let sw = self.s_w[i % p.out_c];
                    let v = requant(self.s_in * sw / self.s_out).apply(a as i32) as i64
                        + p.output_offset as i64;
                    v.clamp(p.act.min as i64, p.act.max as i64) as i8
                })
                .collect()
        }

        /// Real-valued convolution of the dequantized tensors, quantized once.
        fn float(&self) -> Vec<i8> {
            let p = &self.p;
            let zp_in = -p.input_offset;
            let mut real: Vec<f64> = (0..p.out_h * p.out_w * p.out_c)
                .map(|i| {
                    let o = i % p.out_c;
                    self.bias[o] as f64 * self.s_in * self.s_w[o]
                })
                .collect();
            self.for_each_term(|oy, ox, o, xi, wi| {
                let x = dequantize(self.input[xi], self.s_in, zp_in);
                let w = self.weights[wi] as f64 * self.s_w[o];
                real[(oy * p.out_w + ox) * p.out_c + o] += x * w;
            });
            real.iter()
                .map(|&r| quantize(r, self.s_out, p.output_offset, p.act.min, p.act.max))
                .collect()
        }
    }

    /// `(groups, in_c / groups, out_c / groups)` covering the three loop nests.
    fn grouping() -> impl Strategy<Value = (usize, usize, usize)> {
        prop_oneof![
            (Just(1), 1usize..5, 1usize..5), // dense
            // dense over many channels: 3×3 windows past the gather buffer
            (Just(1), 60usize..80, 1usize..4),
            (1usize..10, Just(1), 1usize..4), // depthwise, channel multiplier 1..3
            (2usize..4, 2usize..4, 1usize..3)  // grouped
        ]
    }

    /// A random convolution whose weight codes lie in `codes`.
    fn case(codes: RangeInclusive<i8>) -> impl Strategy<Value = Case> {
        shaped_case(codes, grouping().boxed(), (1..7, 1..7))
    }

    /// Depthwise layers over maps large enough that the four-channel path
    /// fills its band several times (rows × padded width past 1,024 words).
    fn large_depthwise_case() -> impl Strategy<Value = Case> {
        let depthwise = (4usize..10, Just(1), Just(1)).boxed();
        shaped_case(-127..=127, depthwise, (20..70, 20..130))
    }

    /// Dense layers over many input and output channels: int4 weights
    /// unpacked in several blocks of channels (a block holds
    /// `UNPACK_BYTES / window` of them).
    fn many_channels_case() -> impl Strategy<Value = Case> {
        let dense = (Just(1), 60usize..80, 9usize..30).boxed();
        shaped_case(-8..=7, dense, (1..6, 1..6))
    }

    /// A random convolution with channel grouping from `groups` and input
    /// height and width drawn from `size`.
    fn shaped_case(
        codes: RangeInclusive<i8>,
        groups: BoxedStrategy<(usize, usize, usize)>,
        size: (Range<usize>, Range<usize>),
    ) -> impl Strategy<Value = Case> {
        let geometry = (
            groups,
            (
                1usize..4,
                1usize..4,
                1usize..3,
                1usize..3,
                1usize..3,
                1usize..3,
            ),
            (0usize..3, 0usize..3, 0usize..3, 0usize..3),
            size,
        );
        geometry.prop_flat_map(
            move |((g, icg, ocg), (kh, kw, sh, sw, dh, dw), pads, (in_h, in_w))| {
                let (pt, pl, pb, pr) = pads;
                let out_len = |n: usize, k: usize, s: usize, d: usize, a: usize, b: usize| {
                    (n + a + b).saturating_sub((k - 1) * d + 1) / s + 1
                };
                let p = Conv2d {
                    in_h,
                    in_w,
                    in_c: g * icg,
                    out_h: out_len(in_h, kh, sh, dh, pt, pb),
                    out_w: out_len(in_w, kw, sw, dw, pl, pr),
                    out_c: g * ocg,
                    kernel_h: kh,
                    kernel_w: kw,
                    stride_h: sh,
                    stride_w: sw,
                    pad_top: pt,
                    pad_left: pl,
                    dilation_h: dh,
                    dilation_w: dw,
                    groups: g,
                    input_offset: 0,
                    output_offset: 0,
                    act: Activation::NONE,
                };
                (
                    prop::collection::vec(any::<i8>(), in_h * in_w * p.in_c),
                    prop::collection::vec(codes.clone(), p.out_c * kh * kw * icg),
                    prop::collection::vec(-3000i32..3000, p.out_c),
                    0.005f64..0.1,
                    prop::collection::vec(0.001f64..0.02, p.out_c),
                    0.02f64..0.5,
                    (-128i32..=127, -30i32..30),
                    (-128i8..=0, 0i8..=127),
                )
                    .prop_map(
                        move |(input, weights, bias, s_in, s_w, s_out, zps, (lo, hi))| {
                            let p = Conv2d {
                                input_offset: -zps.0,
                                output_offset: zps.1,
                                act: Activation { min: lo, max: hi },
                                ..p
                            };
                            Case {
                                p,
                                input,
                                weights,
                                bias,
                                s_in,
                                s_w,
                                s_out,
                            }
                        },
                    )
            },
        )
    }

    /// Random params that may or may not be consistent, with buffers sized
    /// from them (when the sizes are small), for the no-panic property.
    fn wild_case() -> impl Strategy<Value = (Conv2d, [usize; 3])> {
        let dim = || prop_oneof![4 => 0usize..5, 1 => any::<usize>(), 1 => Just(usize::MAX)];
        (
            (dim(), dim(), dim(), dim(), dim(), dim()),
            (dim(), dim(), dim(), dim(), dim(), dim()),
            (dim(), dim(), dim()),
            any::<(i32, i32, i8, i8)>(),
            (0usize..3, 0usize..3, 0usize..3),
        )
            .prop_map(|(a, b, c, q, jitter)| {
                let p = Conv2d {
                    in_h: a.0,
                    in_w: a.1,
                    in_c: a.2,
                    out_h: a.3,
                    out_w: a.4,
                    out_c: a.5,
                    kernel_h: b.0,
                    kernel_w: b.1,
                    stride_h: b.2,
                    stride_w: b.3,
                    pad_top: b.4,
                    pad_left: b.5,
                    dilation_h: c.0,
                    dilation_w: c.1,
                    groups: c.2,
                    input_offset: q.0,
                    output_offset: q.1,
                    act: Activation { min: q.2, max: q.3 },
                };
                (p, [jitter.0, jitter.1, jitter.2])
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Bit-exact against the naive loop nest: catches any indexing slip.
        #[test]
        fn matches_naive_integer_reference(c in case(-127..=127)) {
            prop_assert_eq!(c.run(), c.naive());
        }

        /// Packed int4 computes exactly what int8 computes on the same
        /// codes, in all three loop nests (−8 included).
        #[test]
        fn int4_equals_int8_on_the_same_codes(c in case(-8..=7)) {
            let int8 = c.run();
            prop_assert_eq!(c.run_i4(), int8.clone());
            prop_assert_eq!(int8, c.naive());
        }

        /// Within 1 LSB of the real-valued convolution with int4 weights as
        /// the quantizer writes them (see `matches_float_reference`).
        #[test]
        fn int4_matches_float_reference(c in case(-7..=7)) {
            let (got, want) = (c.run_i4(), c.float());
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// Within 1 LSB of the real-valued convolution. Not exact: the
        /// kernel scales by a 31-bit approximation of `s_in·s_w/s_out` and
        /// rounds ties up, the reference rounds the exact value half away
        /// from zero, so values near a rounding boundary may land either side.
        #[test]
        fn matches_float_reference(c in case(-127..=127)) {
            let (got, want) = (c.run(), c.float());
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// Whatever the params (huge, zero, inconsistent), the kernel returns
        /// a `Result` and never panics; buffers are sized from the params
        /// (± jitter) whenever that is small, so validation often passes.
        #[test]
        fn arbitrary_params_never_panic(
            (p, jitter) in wild_case(),
            m in prop_oneof![any::<i32>(), (1i32 << 30)..i32::MAX],
            e in prop_oneof![any::<i32>(), -31i32..=30],
        ) {
            let small = |n: Option<usize>, j: usize| match n {
                Some(n) if n <= 256 => (n + j).saturating_sub(1),
                _ => j,
            };
            let icg = p.in_c.checked_div(p.groups);
            let input = std::vec![7i8; small(volume(p.in_h, p.in_w, p.in_c), jitter[0])];
            let wl = volume(p.out_c, p.kernel_h, p.kernel_w).and_then(|n| n.checked_mul(icg?));
            let weights = std::vec![-3i8; small(wl, jitter[1])];
            let c = small(Some(p.out_c), 1);
            let mut out = zeros(small(volume(p.out_h, p.out_w, p.out_c), jitter[2]));
            let (bias, ms, es) = (std::vec![5; c], std::vec![m; c], std::vec![e; c]);
            let _ = conv2d(&p, &input, weights.as_slice(), &bias, &ms, &es, &mut out);
            let packed = pack_i4(&weights);
            let w4 = PackedI4::new(&packed, weights.len()).unwrap();
            let _ = conv2d(&p, &input, w4, &bias, &ms, &es, &mut out);
        }
    }

    proptest! {
        // Large maps: fewer cases, each a few hundred thousand terms.
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The banded depthwise path over large maps (several band
        /// fillings per block), bit-exact against the naive loop nest.
        #[test]
        fn large_depthwise_matches_naive_integer_reference(c in large_depthwise_case()) {
            prop_assert_eq!(c.run(), c.naive());
        }

        /// int4 dense layers unpacked block by block, bit-exact against the
        /// naive loop nest (and so against the int8 path).
        #[test]
        fn int4_in_channel_blocks_matches_naive_integer_reference(c in many_channels_case()) {
            prop_assert_eq!(c.run_i4(), c.naive());
        }

        /// int8 dense and depthwise layers over up to 40 output channels
        /// (several channel blocks, partial groups), with requant scales
        /// below ½ and, when `large`, of ½ and above, bit-exact against
        /// the naive loop nest.
        #[test]
        fn many_output_channels_match_naive_integer_reference(
            c in many_outputs_case(),
            large in any::<bool>(),
        ) {
            let c = if large { Case { s_out: c.s_in * 0.0005, ..c } } else { c };
            prop_assert_eq!(c.run(), c.naive());
        }
    }

    /// Dense int8 layers over many output channels and small windows (the
    /// first layers of image models), and depthwise ones over many
    /// channels.
    fn many_outputs_case() -> impl Strategy<Value = Case> {
        let dense = (Just(1), 1usize..12, 1usize..40);
        let depthwise = (1usize..40, Just(1), Just(1));
        shaped_case(
            -127..=127,
            prop_oneof![dense, depthwise].boxed(),
            (1..9, 1..9),
        )
    }
}
