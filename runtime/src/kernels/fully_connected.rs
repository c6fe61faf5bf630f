//! Fully connected layer (Gemm / MatMul with constant weights), over int8
//! or packed int4 weights ([`Weights`]).
//!
//! Accumulation is i32 with `wrapping_*` operations: with `|x + offset| ≤ 255`
//! and `|w| ≤ 127` a valid model needs more than 66 000 terms per output
//! before it could overflow, far beyond any microcontroller layer, so the
//! wrap never happens in practice; wrapping (rather than `+`) guarantees a
//! malicious artifact cannot make a debug build panic, and costs nothing.

use super::mac::{self, WideVector};
use super::weights::Weights;
use super::Activation;
use crate::arith::{clamp_to_i8, NarrowRequant, Requant, MIN_SHIFT, NARROW_MAX_SHIFT};
use crate::Error;

/// Shapes and quantization of a fully connected layer.
///
/// Input is `[rows][in_features]`, weights `[out_features][in_features]`,
/// output `[rows][out_features]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FullyConnected {
    /// Independent input rows (1 for a flattened feature map).
    pub rows: usize,
    /// Input features per row.
    pub in_features: usize,
    /// Output features per row.
    pub out_features: usize,
    /// `−zp_in`.
    pub input_offset: i32,
    /// `zp_out`.
    pub output_offset: i32,
    /// Fused activation.
    pub act: Activation,
}

/// Runs the layer; `bias`, `multipliers`, `shifts` have `out_features`
/// entries, `weights` is `&[i8]` or [`crate::int4::PackedI4`].
///
/// `out[r][o] = clamp(requant_o(bias[o] + Σ_i (x[r][i] + input_offset) ·
/// w[o][i]) + output_offset)`. Returns [`Error::ShapeMismatch`] if any buffer length
/// disagrees with `p` (sizes computed with checked arithmetic) or the
/// activation interval is empty, [`Error::BadRequant`] for an invalid
/// per-channel multiplier/shift; `output` is untouched on error.
pub fn fully_connected<W: Weights>(
    p: &FullyConnected,
    input: &[i8],
    weights: W,
    bias: &[i32],
    multipliers: &[i32],
    shifts: &[i32],
    output: &mut [i8],
) -> Result<(), Error> {
    let in_f = p.in_features;
    let out_f = p.out_features;
    if p.rows.checked_mul(in_f) != Some(input.len())
        || out_f.checked_mul(in_f) != Some(weights.elements())
        || p.rows.checked_mul(out_f) != Some(output.len())
        || bias.len() != out_f
        || multipliers.len() != out_f
        || shifts.len() != out_f
        || p.act.min > p.act.max
    {
        return Err(Error::ShapeMismatch);
    }
    let narrow = check_requants(multipliers, shifts)?;
    if output.is_empty() {
        return Ok(());
    }
    let fits = (1..=WIDE_MAX).contains(&in_f);
    let params = (bias, multipliers, shifts);
    #[cfg(target_arch = "x86_64")]
    if let Some(w) = weights.int8().filter(|_| fits) {
        super::fully_connected_sse2::fully_connected(p, input, w, params, narrow, output);
        return Ok(());
    }
    #[cfg(not(target_arch = "x86_64"))]
    if let Some(w) = weights.int8().filter(|_| fits) {
        let sums = |sums: &mut [i32], x: WideVector<'_>, first: usize| {
            mac::rows4(sums, x, &w[first * in_f..], in_f);
        };
        return in_blocks(p, input, weights, params, narrow, output, sums);
    }
    if let Some(w) = weights.int4_bytes().filter(|_| fits && in_f % 8 == 0) {
        // Rows of whole words: row `o` starts at byte `o · in_f / 2`.
        let sums = |sums: &mut [i32], x: WideVector<'_, 8>, first: usize| {
            mac::rows2_i4(sums, x, &w[first * in_f / 2..], in_f / 2);
        };
        return in_blocks(p, input, weights, params, narrow, output, sums);
    }
    // Every other layer (inputs past WIDE_MAX, int4 rows off word
    // boundaries), output by output. Here rows ≤ output.len() and out_f ≥
    // 1: the loops are bounded by the buffers, and every slice lies inside
    // its (length-checked) buffer; the requants were checked up front.
    for r in 0..p.rows {
        let x = &input[r * in_f..(r + 1) * in_f];
        let out_row = &mut output[r * out_f..(r + 1) * out_f];
        let params = bias.iter().zip(multipliers).zip(shifts);
        for (o, (y, ((&b, &m), &s))) in out_row.iter_mut().zip(params).enumerate() {
            let acc = b.wrapping_add(weights.dot(x, o * in_f, p.input_offset));
            *y = finish(Requant::prechecked(m, s), acc, p.output_offset, p.act);
        }
    }
    Ok(())
}

/// Most input features the int8 path widens (2 KiB of stack).
pub(super) const WIDE_MAX: usize = 1024;

/// Outputs whose sums [`in_blocks`] holds at a time (1 KiB of stack).
const SUM_BLOCK: usize = 256;

/// The blocked path, `fully_connected` validated: each input row widened
/// once ([`mac::WideVector`], offset
/// added, in groups of `G`), then per block of [`SUM_BLOCK`] outputs two
/// passes — `sums(block, x, first)` adds the complete groups' terms of the
/// block's outputs from `first` to their biases (int8: [`mac::rows4`],
/// four weight rows per activation load; int4: [`mac::rows2_i4`], two per
/// load of eight), then the requantization, four outputs into one word
/// ([`mac::requant4`]) when every channel has the hoisted narrow requant
/// (`narrow`: scales below ½, as good as every int8 layer), else one by
/// one. Apart, each loop keeps its pointers in registers.
/// The last `in_features % G` terms and the last `out_features % 4`
/// outputs are added and computed one by one.
fn in_blocks<W: Weights, const G: usize>(
    p: &FullyConnected,
    input: &[i8],
    weights: W,
    (bias, multipliers, shifts): (&[i32], &[i32], &[i32]),
    narrow: bool,
    output: &mut [i8],
    sums: impl Fn(&mut [i32], WideVector<'_, G>, usize),
) -> Result<(), Error> {
    let (in_f, out_f) = (p.in_features, p.out_features);
    let main = in_f - in_f % G;
    let (lo4, hi4) = (mac::bytes4(p.act.min), mac::bytes4(p.act.max));
    let mut buf = [0u32; WIDE_MAX / 2 + 2];
    let mut block = [0i32; SUM_BLOCK];
    for (x, out_row) in input.chunks_exact(in_f).zip(output.chunks_exact_mut(out_f)) {
        let wide = WideVector::new(x, p.input_offset, &mut buf).ok_or(Error::ShapeMismatch)?;
        let rest = |o: usize| weights.dot(&x[main..], o * in_f + main, p.input_offset);
        let blocks = out_row
            .chunks_mut(SUM_BLOCK)
            .zip(bias.chunks(SUM_BLOCK))
            .zip(multipliers.chunks(SUM_BLOCK).zip(shifts.chunks(SUM_BLOCK)));
        for (i, ((out, b), (m, s))) in blocks.enumerate() {
            let first = i * SUM_BLOCK;
            let block = &mut block[..b.len()];
            block.copy_from_slice(b);
            sums(block, wide, first);
            if main < in_f {
                for (j, s) in block.iter_mut().enumerate() {
                    *s = s.wrapping_add(rest(first + j));
                }
            }
            let quads = out
                .chunks_exact_mut(4)
                .zip(block.chunks_exact(4))
                .zip(m.chunks_exact(4).zip(s.chunks_exact(4)));
            for ((out, acc), (m, s)) in quads {
                let acc = [acc[0], acc[1], acc[2], acc[3]];
                // Literals, not `array::map` (left out of line on the host).
                let y = if narrow {
                    let rq = |j: usize| NarrowRequant::prechecked(m[j], s[j]);
                    let rq = [rq(0), rq(1), rq(2), rq(3)];
                    mac::requant4(acc, rq, p.output_offset, lo4, hi4).to_le_bytes()
                } else {
                    let rq = |j: usize| Requant::prechecked(m[j], s[j]);
                    let y = |j: usize| finish(rq(j), acc[j], p.output_offset, p.act) as u8;
                    [y(0), y(1), y(2), y(3)]
                };
                for (o, y) in out.iter_mut().zip(y) {
                    *o = y as i8;
                }
            }
        }
        let done = out_f - out_f % 4;
        let last = out_row.get_mut(done..).unwrap_or(&mut []);
        for (o, out) in last.iter_mut().enumerate().map(|(j, y)| (done + j, y)) {
            let rq = Requant::prechecked(multipliers[o], shifts[o]);
            let acc = bias[o].wrapping_add(weights.dot(x, o * in_f, p.input_offset));
            *out = finish(rq, acc, p.output_offset, p.act);
        }
    }
    Ok(())
}

/// Validates every per-channel `(multiplier, shift)` pair up front, so a
/// kernel fails before writing any output; tells whether every channel
/// has the hoisted narrow form ([`Requant::narrow`]: `shift ≤ −2`). The
/// common case — all valid, all narrow — takes one branch-free pass (a
/// multiplier's sign bit, the largest `shift − MIN_SHIFT`); only a layer
/// outside it is checked channel by channel.
pub(super) fn check_requants(multipliers: &[i32], shifts: &[i32]) -> Result<bool, Error> {
    let (mut signs, mut widest) = (0i32, 0u32);
    for (&m, &s) in multipliers.iter().zip(shifts) {
        signs |= m;
        widest = widest.max(s.wrapping_sub(MIN_SHIFT) as u32);
    }
    if signs >= 0 && widest <= (NARROW_MAX_SHIFT - MIN_SHIFT) as u32 {
        return Ok(true);
    }
    let mut narrow = true;
    for (&m, &s) in multipliers.iter().zip(shifts) {
        narrow &= Requant::new(m, s)?.narrow().is_some();
    }
    Ok(narrow)
}

/// Requantizes an accumulator, adds the output zero point (saturating: the
/// offset comes from the artifact) and applies the fused activation.
#[inline(always)]
pub(super) fn finish(rq: Requant, acc: i32, output_offset: i32, act: Activation) -> i8 {
    clamp_to_i8(
        rq.apply(acc).saturating_add(output_offset),
        act.min,
        act.max,
    )
}

/// [`finish`] for `N` accumulators of one channel (a convolution's output
/// pixels), with the requant's 32-bit form hoisted out of all of them.
#[inline(always)]
pub(super) fn finish_all<const N: usize>(
    rq: Requant,
    acc: [i32; N],
    output_offset: i32,
    act: Activation,
) -> [i8; N] {
    let clamp = |v: i32| clamp_to_i8(v.saturating_add(output_offset), act.min, act.max);
    match rq.narrow() {
        Some(n) => acc.map(|a| clamp(n.apply(a))),
        None => acc.map(|a| clamp(rq.apply(a))),
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::test_support::*;
    use super::*;
    use crate::int4::PackedI4;
    use core::ops::RangeInclusive;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn params(rows: usize, in_f: usize, out_f: usize) -> FullyConnected {
        FullyConnected {
            rows,
            in_features: in_f,
            out_features: out_f,
            input_offset: 0,
            output_offset: 0,
            act: Activation::NONE,
        }
    }

    #[test]
    fn hand_computed_two_outputs() {
        // zp_in = 3 (offset −3), x = [5, 1, 3] → x − zp = [2, −2, 0].
        // o0: w = [1, 2, 3], bias 10: 10 + 2 − 4 + 0 = 8; scale 1/2 → 4; + zp_out 1 = 5.
        // o1: w = [−4, 0, 7], bias −1: −1 − 8 + 0 + 0 = −9; scale 1/4 → −2.25 → −2; +1 = −1.
        let p = FullyConnected {
            input_offset: -3,
            output_offset: 1,
            ..params(1, 3, 2)
        };
        let (m0, e0) = quantize_multiplier(0.5);
        let (m1, e1) = quantize_multiplier(0.25);
        let run = |p: &FullyConnected| {
            let mut out = [0i8; 2];
            let (x, w): ([i8; 3], &[i8]) = ([5, 1, 3], &[1, 2, 3, -4, 0, 7]);
            fully_connected(p, &x, w, &[10, -1], &[m0, m1], &[e0, e1], &mut out).unwrap();
            out
        };
        assert_eq!(run(&p), [5, -1]);
        // ReLU-like activation [1, 127] clamps the second output.
        let relu = FullyConnected {
            act: Activation { min: 1, max: 127 },
            ..p
        };
        assert_eq!(run(&relu), [5, 1]);
    }

    #[test]
    fn hand_computed_int4_odd_features() {
        // in_features 3 (odd): row o1 starts at element 3, a high nibble.
        // zp_in = 3: x = [5, 1, 4] → [2, −2, 1]; x = [3, 3, 3] → [0, 0, 0].
        // o0: w = [−7, 7, −8] (−8 is never written, but must read back),
        //     bias 1: 1 − 14 − 14 − 8 = −35; scale 1/4 → −8.75 → −9; + zp_out 1 = −8.
        // o1: w = [7, −7, 1], bias −1: −1 + 14 + 14 + 1 = 28 → 7 + 1 = 8.
        // Row 2 sees only the biases: 1/4 → 0 + 1 = 1; −1/4 → 0 + 1 = 1.
        let p = FullyConnected {
            input_offset: -3,
            output_offset: 1,
            ..params(2, 3, 2)
        };
        let bytes = pack_i4(&[-7, 7, -8, 7, -7, 1]);
        assert_eq!(bytes, [0x79, 0x78, 0x19]);
        let w = PackedI4::new(&bytes, 6).unwrap();
        let (m, e) = quantize_multiplier(0.25);
        let mut out = [0i8; 4];
        let x = [5, 1, 4, 3, 3, 3];
        fully_connected(&p, &x, w, &[1, -1], &[m; 2], &[e; 2], &mut out).unwrap();
        assert_eq!(out, [-8, 8, 1, 1]);
        // A packed tensor of the wrong element count is refused.
        let short = PackedI4::new(&bytes[..2], 4).unwrap();
        let r = fully_connected(&p, &x, short, &[1, -1], &[m; 2], &[e; 2], &mut out);
        assert_eq!(r, Err(Error::ShapeMismatch));
    }

    #[test]
    fn rejects_bad_shapes_and_params() {
        let (m, e) = quantize_multiplier(0.5);
        let mut out = [0i8; 2];
        let run =
            |p: &FullyConnected, x: &[i8], w: &[i8], ms: &[i32], es: &[i32], out: &mut [i8]| {
                fully_connected(p, x, w, &[0; 2][..ms.len().min(2)], ms, es, out)
            };
        let p = params(1, 2, 2);
        assert_eq!(
            run(&p, &[1, 2], &[1; 4], &[m, m], &[e, e], &mut out),
            Ok(())
        );
        assert_eq!(
            run(&p, &[1], &[1; 4], &[m, m], &[e, e], &mut out),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            run(&p, &[1, 2], &[1; 3], &[m, m], &[e, e], &mut out),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            run(&p, &[1, 2], &[1; 4], &[m], &[e], &mut out),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            run(&p, &[1, 2], &[1; 4], &[m, m], &[e, e], &mut out[..1]),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            run(&p, &[1, 2], &[1; 4], &[m, -1], &[e, e], &mut out),
            Err(Error::BadRequant)
        );
        assert_eq!(
            run(&p, &[1, 2], &[1; 4], &[m, m], &[e, 99], &mut out),
            Err(Error::BadRequant)
        );
        let huge = params(usize::MAX, 2, usize::MAX / 2 + 1);
        assert_eq!(
            run(&huge, &[1, 2], &[1; 4], &[m, m], &[e, e], &mut out),
            Err(Error::ShapeMismatch)
        );
        let empty_act = FullyConnected {
            act: Activation { min: 5, max: 4 },
            ..p
        };
        assert_eq!(
            run(&empty_act, &[1, 2], &[1; 4], &[m, m], &[e, e], &mut out),
            Err(Error::ShapeMismatch)
        );
    }

    /// A random layer with real scales chosen by the test.
    #[derive(Debug, Clone)]
    struct Case {
        rows: usize,
        in_f: usize,
        out_f: usize,
        input: Vec<i8>,
        weights: Vec<i8>,
        bias: Vec<i32>,
        s_in: f64,
        s_w: Vec<f64>,
        s_out: f64,
        zp_in: i32,
        zp_out: i32,
        act: Activation,
    }

    /// A random layer whose weight codes lie in `codes` (int8 or int4).
    fn case(codes: RangeInclusive<i8>) -> impl Strategy<Value = Case> {
        (
            1usize..4,
            prop_oneof![0usize..12, 60usize..80],
            prop_oneof![1usize..6, 8usize..14],
        )
            .prop_flat_map(move |(rows, in_f, out_f)| {
                (
                    prop::collection::vec(any::<i8>(), rows * in_f),
                    prop::collection::vec(codes.clone(), out_f * in_f),
                    prop::collection::vec(-3000i32..3000, out_f),
                    0.005f64..0.1,
                    prop::collection::vec(0.001f64..0.02, out_f),
                    0.01f64..0.5,
                    -128i32..=127,
                    -30i32..30,
                    (-128i8..=0, 0i8..=127),
                )
                    .prop_map(
                        move |(input, weights, bias, s_in, s_w, s_out, zp_in, zp_out, (lo, hi))| {
                            Case {
                                rows,
                                in_f,
                                out_f,
                                input,
                                weights,
                                bias,
                                s_in,
                                s_w,
                                s_out,
                                zp_in,
                                zp_out,
                                act: Activation { min: lo, max: hi },
                            }
                        },
                    )
            })
    }

    /// The layer with its codes stored as int8.
    fn run(c: &Case) -> Vec<i8> {
        run_with(c, c.weights.as_slice())
    }

    /// The layer with its codes packed as int4.
    fn run_i4(c: &Case) -> Vec<i8> {
        let bytes = pack_i4(&c.weights);
        run_with(c, PackedI4::new(&bytes, c.weights.len()).unwrap())
    }

    fn run_with<W: Weights>(c: &Case, weights: W) -> Vec<i8> {
        let (ms, es): (Vec<i32>, Vec<i32>) = c
            .s_w
            .iter()
            .map(|&sw| quantize_multiplier(c.s_in * sw / c.s_out))
            .unzip();
        let p = FullyConnected {
            rows: c.rows,
            in_features: c.in_f,
            out_features: c.out_f,
            input_offset: -c.zp_in,
            output_offset: c.zp_out,
            act: c.act,
        };
        let mut out = zeros(c.rows * c.out_f);
        fully_connected(&p, &c.input, weights, &c.bias, &ms, &es, &mut out).unwrap();
        out
    }

    /// The real-valued layer computed in f64, quantized once.
    fn float(c: &Case) -> Vec<i8> {
        let mut want = Vec::new();
        for r in 0..c.rows {
            for o in 0..c.out_f {
                let mut real = c.bias[o] as f64 * c.s_in * c.s_w[o];
                for i in 0..c.in_f {
                    let x = dequantize(c.input[r * c.in_f + i], c.s_in, c.zp_in);
                    real += x * c.s_w[o] * c.weights[o * c.in_f + i] as f64;
                }
                want.push(quantize(real, c.s_out, c.zp_out, c.act.min, c.act.max));
            }
        }
        want
    }

    proptest! {
        /// Against the real-valued layer computed in f64. The kernel may
        /// differ by 1 LSB: it rounds once with a 31-bit approximation of the
        /// real multiplier and rounds ties up, while the reference rounds the
        /// exact real value half away from zero.
        #[test]
        fn matches_float_reference(c in case(-127..=127)) {
            let (got, want) = (run(&c), float(&c));
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// Scales of ½ and above (requantized output by output rather than
        /// in the hoisted four-lane form), against the same reference.
        #[test]
        fn wide_scales_match_float_reference(c in case(-127..=127)) {
            let c = Case { s_out: c.s_out / 64.0, ..c };
            let (got, want) = (run(&c), float(&c));
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// The same, with int4 weights as the quantizer writes them.
        #[test]
        fn int4_matches_float_reference(c in case(-7..=7)) {
            let (got, want) = (run_i4(&c), float(&c));
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// Packed int4 computes exactly what int8 computes on the same
        /// codes (odd `in_f` puts rows on odd nibbles; −8 included).
        #[test]
        fn int4_equals_int8_on_the_same_codes(c in case(-8..=7)) {
            prop_assert_eq!(run_i4(&c), run(&c));
        }

        /// The one-pass check accepts exactly the layers whose every
        /// channel `Requant::new` accepts, and calls them narrow exactly
        /// when every shift is at most −2 (the rule written out, not the
        /// code's own constants).
        #[test]
        fn requant_check_is_the_per_channel_rule(
            params in prop::collection::vec(
                (prop_oneof![-2i32..3, any::<i32>()], prop_oneof![-33i32..=31, any::<i32>()]),
                0..6,
            ),
        ) {
            let (m, e): (Vec<i32>, Vec<i32>) = params.into_iter().unzip();
            let valid = m.iter().zip(&e).all(|(&m, &e)| m >= 0 && (-31..=30).contains(&e));
            let want = valid.then(|| e.iter().all(|&e| e <= -2));
            prop_assert_eq!(check_requants(&m, &e).ok(), want);
        }

        /// Never panics, whatever the parameters and buffers.
        #[test]
        fn arbitrary_params_never_panic(
            rows in prop_oneof![0usize..4, any::<usize>()],
            in_f in prop_oneof![0usize..4, any::<usize>()],
            out_f in prop_oneof![0usize..4, any::<usize>()],
            offs in any::<(i32, i32)>(),
            act in any::<(i8, i8)>(),
            x in prop::collection::vec(any::<i8>(), 0..16),
            w in prop::collection::vec(any::<i8>(), 0..16),
            b in prop::collection::vec(any::<i32>(), 0..4),
            m in prop::collection::vec(prop_oneof![any::<i32>(), (1i32 << 30)..i32::MAX], 0..4),
            e in prop::collection::vec(prop_oneof![any::<i32>(), -31i32..=30], 0..4),
            out_len in 0usize..16,
        ) {
            let p = FullyConnected {
                rows, in_features: in_f, out_features: out_f,
                input_offset: offs.0, output_offset: offs.1,
                act: Activation { min: act.0, max: act.1 },
            };
            let mut out = zeros(out_len);
            let _ = fully_connected(&p, &x, w.as_slice(), &b, &m, &e, &mut out);
            let packed = pack_i4(&w);
            let w4 = PackedI4::new(&packed, w.len()).unwrap();
            let _ = fully_connected(&p, &x, w4, &b, &m, &e, &mut out);
        }
    }
}
