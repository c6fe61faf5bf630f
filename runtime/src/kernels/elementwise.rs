//! Element-wise Add and Mul of two int8 tensors with their own quantization.

use super::Activation;
use crate::arith::{clamp_to_i8, Requant};
use crate::Error;

/// How the second operand `b` is broadcast against `a` (whose length equals
/// the output's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broadcast {
    /// `b` has as many elements as `a`.
    None,
    /// `b` has one element per channel (the last, contiguous NHWC axis):
    /// `b[i % b.len()]`.
    PerChannel,
    /// `b` has one element.
    Scalar,
}

/// Quantization of an Add (TFLite scheme: both inputs are shifted left by
/// `left_shift`, rescaled to a common scale, summed and rescaled to the output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Add {
    /// `−zp_a`.
    pub input1_offset: i32,
    /// `−zp_b`.
    pub input2_offset: i32,
    /// `zp_out`.
    pub output_offset: i32,
    /// Headroom shift applied to both inputs (TFLite uses 20 for int8).
    pub left_shift: u32,
    /// `s_a / (2·max(s_a, s_b))`.
    pub input1: Requant,
    /// `s_b / (2·max(s_a, s_b))`.
    pub input2: Requant,
    /// `2·max(s_a, s_b) / (2^left_shift · s_out)`.
    pub output: Requant,
    /// Fused activation.
    pub act: Activation,
    /// Shape of `b` relative to `a`.
    pub broadcast: Broadcast,
}

/// Quantization of a Mul: `out = requant((a − zp_a)(b − zp_b)) + zp_out`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mul {
    /// `−zp_a`.
    pub input1_offset: i32,
    /// `−zp_b`.
    pub input2_offset: i32,
    /// `zp_out`.
    pub output_offset: i32,
    /// `s_a · s_b / s_out`.
    pub output: Requant,
    /// Fused activation.
    pub act: Activation,
    /// Shape of `b` relative to `a`.
    pub broadcast: Broadcast,
}

/// Largest accepted [`Add::left_shift`]: TFLite uses 20 for int8; 24 leaves
/// room for any offset-corrected int8 value (`|a + offset| ≤ 255 < 2^8`)
/// while anything larger can only come from a corrupted artifact.
pub const MAX_ADD_LEFT_SHIFT: u32 = 24;

/// `output = a + b` in the output's quantization (TFLite int8 Add).
///
/// Per element: `a' = input1.apply((a + input1_offset) << left_shift)`,
/// likewise `b'`, then `out = clamp(output.apply(a' + b') + output_offset,
/// act)`. Offsets come from the artifact, so the additions wrap or saturate
/// instead of overflowing (never reached with real zero points). Errors
/// ([`Error::ShapeMismatch`], nothing written): `output.len() != a.len()`,
/// `b` not matching [`Add::broadcast`], `left_shift > MAX_ADD_LEFT_SHIFT`,
/// empty activation interval.
pub fn add(p: &Add, a: &[i8], b: &[i8], output: &mut [i8]) -> Result<(), Error> {
    if p.left_shift > MAX_ADD_LEFT_SHIFT {
        return Err(Error::ShapeMismatch);
    }
    let scale_a = |x: i8| {
        p.input1
            .apply((x as i32).wrapping_add(p.input1_offset) << p.left_shift)
    };
    let scale_b = |x: i8| {
        p.input2
            .apply((x as i32).wrapping_add(p.input2_offset) << p.left_shift)
    };
    let (lo, hi, off) = (p.act.min, p.act.max, p.output_offset);
    let finish = |sum: i32| clamp_to_i8(p.output.apply(sum).saturating_add(off), lo, hi);
    // Each operand's rescale depends on its int8 code alone: 256 entries
    // per input, computed once (about 512 elements' worth of work, 2 KiB
    // of stack), replace two requantizations per element.
    let (mut table_a, mut table_b) = ([0i32; 256], [0i32; 256]);
    for (code, (ta, tb)) in (0..=255u8).zip(table_a.iter_mut().zip(&mut table_b)) {
        (*ta, *tb) = (scale_a(code as i8), scale_b(code as i8));
    }
    binary(p.broadcast, p.act, a, b, output, |x, y| {
        finish(table_a[x as u8 as usize].saturating_add(table_b[y as u8 as usize]))
    })
}

/// `output = a · b` in the output's quantization (TFLite int8 Mul).
///
/// `out = clamp(output.apply((a + input1_offset)(b + input2_offset)) +
/// output_offset, act)`, with wrapping/saturating integer ops as in [`add`].
/// Same shape errors as [`add`].
pub fn mul(p: &Mul, a: &[i8], b: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let (lo, hi, off) = (p.act.min, p.act.max, p.output_offset);
    binary(p.broadcast, p.act, a, b, output, |x, y| {
        let xa = (x as i32).wrapping_add(p.input1_offset);
        let yb = (y as i32).wrapping_add(p.input2_offset);
        clamp_to_i8(
            p.output.apply(xa.wrapping_mul(yb)).saturating_add(off),
            lo,
            hi,
        )
    })
}

/// Validates the operand lengths against `broadcast` and applies `f`
/// element-wise, broadcasting `b`.
#[inline(always)]
fn binary(
    broadcast: Broadcast,
    act: Activation,
    a: &[i8],
    b: &[i8],
    output: &mut [i8],
    f: impl Fn(i8, i8) -> i8,
) -> Result<(), Error> {
    let b_ok = match broadcast {
        Broadcast::None => b.len() == a.len(),
        Broadcast::PerChannel => !b.is_empty() && a.len() % b.len() == 0,
        Broadcast::Scalar => b.len() == 1,
    };
    if !b_ok || output.len() != a.len() || act.min > act.max {
        return Err(Error::ShapeMismatch);
    }
    match broadcast {
        Broadcast::None => {
            for ((y, &x), &z) in output.iter_mut().zip(a).zip(b) {
                *y = f(x, z);
            }
        }
        // `b` is non-empty and divides `a` (checked above).
        Broadcast::PerChannel | Broadcast::Scalar => {
            let n = b.len();
            for (ys, xs) in output.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
                for ((y, &x), &z) in ys.iter_mut().zip(xs).zip(b) {
                    *y = f(x, z);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    /// TFLite's derivation of the Add parameters from real scales.
    fn add_params(sa: f64, zpa: i32, sb: f64, zpb: i32, so: f64, zpo: i32) -> Add {
        let left_shift = 20;
        let twice_max = 2.0 * sa.max(sb);
        Add {
            input1_offset: -zpa,
            input2_offset: -zpb,
            output_offset: zpo,
            left_shift,
            input1: requant(sa / twice_max),
            input2: requant(sb / twice_max),
            output: requant(twice_max / ((1u64 << left_shift) as f64 * so)),
            act: Activation::NONE,
            broadcast: Broadcast::None,
        }
    }

    #[test]
    fn hand_computed_add_with_different_scales() {
        // a: scale 0.5, zp 0; b: scale 0.25, zp 4; out: scale 1, zp −10.
        // a = 6 → 3.0; b = 8 → 0.25·4 = 1.0; sum 4.0 → 4 − 10 = −6.
        // a = −3 → −1.5; b = 2 → −0.5; sum −2.0 → −12.
        // a = 100 → 50; b = 127 → 30.75; sum 80.75 → 81 − 10 = 71.
        let p = add_params(0.5, 0, 0.25, 4, 1.0, -10);
        let mut out = [0i8; 3];
        add(&p, &[6, -3, 100], &[8, 2, 127], &mut out).unwrap();
        assert_eq!(out, [-6, -12, 71]);
        // Scalar b = 8 (1.0) against a = [6, −4, 100] ([3.0, −2.0, 50.0]):
        // sums 4, −1, 51 → −6, −11, 41.
        let p = Add {
            broadcast: Broadcast::Scalar,
            ..p
        };
        add(&p, &[6, -4, 100], &[8], &mut out).unwrap();
        assert_eq!(out, [-6, -11, 41]);
    }

    #[test]
    fn hand_computed_mul_per_channel() {
        // a zp 1, b zp −2, output scale 0.5 (s_a·s_b/s_out), zp 3.
        // a = [3, 5, −1, 0], b (per channel, 2) = [0, 1]:
        //   (2)(2)=4, (4)(3)=12, (−2)(2)=−4, (−1)(3)=−3 → ·0.5 = 2, 6, −2, −1.5→−1 (ties up)
        //   + 3 = 5, 9, 1, 2.
        let p = Mul {
            input1_offset: -1,
            input2_offset: 2,
            output_offset: 3,
            output: requant(0.5),
            act: Activation::NONE,
            broadcast: Broadcast::PerChannel,
        };
        let mut out = [0i8; 4];
        mul(&p, &[3, 5, -1, 0], &[0, 1], &mut out).unwrap();
        assert_eq!(out, [5, 9, 1, 2]);
    }

    #[test]
    fn rejects_bad_shapes() {
        let p = add_params(0.5, 0, 0.5, 0, 1.0, 0);
        let mut out = [0i8; 4];
        let err = Err(Error::ShapeMismatch);
        assert_eq!(add(&p, &[1; 4], &[1; 3], &mut out), err);
        assert_eq!(add(&p, &[1; 4], &[1; 4], &mut out[..3]), err);
        let pc = Add {
            broadcast: Broadcast::PerChannel,
            ..p
        };
        assert_eq!(add(&pc, &[1; 4], &[1; 3], &mut out), err);
        assert_eq!(add(&pc, &[1; 4], &[], &mut out), err);
        assert_eq!(add(&pc, &[1; 4], &[1; 2], &mut out), Ok(()));
        let sc = Add {
            broadcast: Broadcast::Scalar,
            ..p
        };
        assert_eq!(add(&sc, &[1; 4], &[1; 2], &mut out), err);
        assert_eq!(
            add(
                &Add {
                    left_shift: 25,
                    ..p
                },
                &[1; 4],
                &[1; 4],
                &mut out
            ),
            err
        );
        assert_eq!(
            add(
                &Add {
                    left_shift: u32::MAX,
                    ..p
                },
                &[1; 4],
                &[1; 4],
                &mut out
            ),
            err
        );
        let bad_act = Add {
            act: Activation { min: 0, max: -1 },
            ..p
        };
        assert_eq!(add(&bad_act, &[1; 4], &[1; 4], &mut out), err);
        let m = Mul {
            input1_offset: 0,
            input2_offset: 0,
            output_offset: 0,
            output: requant(1.0),
            act: Activation::NONE,
            broadcast: Broadcast::Scalar,
        };
        assert_eq!(mul(&m, &[1; 4], &[1; 4], &mut out), err);
        assert_eq!(mul(&m, &[1; 4], &[1], &mut out[..2]), err);
    }

    fn broadcast() -> impl Strategy<Value = Broadcast> {
        prop_oneof![
            Just(Broadcast::None),
            Just(Broadcast::PerChannel),
            Just(Broadcast::Scalar)
        ]
    }

    /// Random operands: `(a, b, broadcast)` with consistent lengths.
    fn operands() -> impl Strategy<Value = (Vec<i8>, Vec<i8>, Broadcast)> {
        (broadcast(), 1usize..5, 0usize..6).prop_flat_map(|(bc, c, pixels)| {
            let b_len = match bc {
                Broadcast::None => c * pixels,
                Broadcast::PerChannel => c,
                Broadcast::Scalar => 1,
            };
            let a_len = if bc == Broadcast::Scalar {
                pixels
            } else {
                c * pixels
            };
            (
                prop::collection::vec(any::<i8>(), a_len),
                prop::collection::vec(any::<i8>(), b_len),
                Just(bc),
            )
        })
    }

    /// Real scales and zero points `(s_a, zp_a, s_b, zp_b, s_out, zp_out)`.
    fn quant() -> impl Strategy<Value = (f64, i32, f64, i32, f64, i32)> {
        (
            0.005f64..0.2,
            -128i32..=127,
            0.005f64..0.2,
            -128i32..=127,
            0.005f64..0.5,
            -128i32..=127,
        )
    }

    proptest! {
        /// Add within 1 LSB of `quantize(s_a(a − zp_a) + s_b(b − zp_b))`.
        /// Not exact: the TFLite scheme rounds three times (each input's
        /// rescale at 2^-20 resolution, then the output) with 31-bit
        /// multipliers, and rounds ties up where the reference rounds half
        /// away from zero.
        #[test]
        fn add_matches_float_reference((a, b, bc) in operands(), q in quant(),
                                       act in (-128i8..=0, 0i8..=127)) {
            let (sa, zpa, sb, zpb, so, zpo) = q;
            let act = Activation { min: act.0, max: act.1 };
            let p = Add { broadcast: bc, act, ..add_params(sa, zpa, sb, zpb, so, zpo) };
            let mut got = zeros(a.len());
            add(&p, &a, &b, &mut got).unwrap();
            let want: Vec<i8> = a.iter().enumerate().map(|(i, &x)| {
                let y = b[i % b.len()];
                let real = dequantize(x, sa, zpa) + dequantize(y, sb, zpb);
                quantize(real, so, zpo, act.min, act.max)
            }).collect();
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// The tabulated rescales give exactly the per-element formula of
        /// the doc comment, computed here directly.
        #[test]
        fn add_is_the_documented_formula(
            (a, b, bc) in operands(), q in quant(), act in (-128i8..=0, 0i8..=127),
        ) {
            let (sa, zpa, sb, zpb, so, zpo) = q;
            let act = Activation { min: act.0, max: act.1 };
            let p = Add { broadcast: bc, act, ..add_params(sa, zpa, sb, zpb, so, zpo) };
            let mut got = zeros(a.len());
            add(&p, &a, &b, &mut got).unwrap();
            let want: Vec<i8> = a.iter().enumerate().map(|(i, &x)| {
                let y = b[i % b.len()];
                let xa = p.input1.apply((x as i32 + p.input1_offset) << p.left_shift);
                let yb = p.input2.apply((y as i32 + p.input2_offset) << p.left_shift);
                let out = p.output.apply(xa.saturating_add(yb)).saturating_add(p.output_offset);
                out.clamp(act.min as i32, act.max as i32) as i8
            }).collect();
            prop_assert_eq!(got, want);
        }

        /// Mul within 1 LSB of `quantize(s_a(a − zp_a) · s_b(b − zp_b))`
        /// (one rounding with a 31-bit multiplier vs exact real rounding).
        #[test]
        fn mul_matches_float_reference((a, b, bc) in operands(), q in quant(),
                                       act in (-128i8..=0, 0i8..=127)) {
            let (sa, zpa, sb, zpb, so, zpo) = q;
            let act = Activation { min: act.0, max: act.1 };
            let p = Mul {
                input1_offset: -zpa,
                input2_offset: -zpb,
                output_offset: zpo,
                output: requant(sa * sb / so),
                act,
                broadcast: bc,
            };
            let mut got = zeros(a.len());
            mul(&p, &a, &b, &mut got).unwrap();
            let want: Vec<i8> = a.iter().enumerate().map(|(i, &x)| {
                let y = b[i % b.len()];
                let real = dequantize(x, sa, zpa) * dequantize(y, sb, zpb);
                quantize(real, so, zpo, act.min, act.max)
            }).collect();
            prop_assert!(max_diff(&got, &want) <= 1, "got {:?} want {:?}", got, want);
        }

        /// Arbitrary offsets, shifts, requants and lengths: `Result`, no panic.
        #[test]
        fn arbitrary_params_never_panic(
            offs in any::<(i32, i32, i32)>(),
            left_shift in prop_oneof![0u32..=24, any::<u32>()],
            ms in any::<[u16; 3]>(),
            es in (-31i32..=30, -31i32..=30, -31i32..=30),
            act in any::<(i8, i8)>(),
            bc in broadcast(),
            a in prop::collection::vec(any::<i8>(), 0..12),
            b in prop::collection::vec(any::<i8>(), 0..12),
            out_len in 0usize..12,
        ) {
            // Multipliers spread over the whole non-negative i32 range.
            let m = |k: usize| (ms[k] as i32) << 15;
            let act = Activation { min: act.0, max: act.1 };
            let p = Add {
                input1_offset: offs.0,
                input2_offset: offs.1,
                output_offset: offs.2,
                left_shift,
                input1: Requant::new(m(0), es.0).unwrap(),
                input2: Requant::new(m(1), es.1).unwrap(),
                output: Requant::new(m(2), es.2).unwrap(),
                act,
                broadcast: bc,
            };
            let mut out = zeros(out_len);
            let _ = add(&p, &a, &b, &mut out);
            let mut out = zeros(a.len());
            let _ = add(&p, &a, &b, &mut out);
            let q = Mul {
                input1_offset: offs.0,
                input2_offset: offs.1,
                output_offset: offs.2,
                output: Requant::new(m(2), es.2).unwrap(),
                act,
                broadcast: bc,
            };
            let _ = mul(&q, &a, &b, &mut out);
        }
    }
}
