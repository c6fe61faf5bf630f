//! Concatenation along one axis, requantizing each input to the output.

use crate::arith::{clamp_to_i8, Requant};
use crate::Error;

/// One concatenated input: its data, its zero point and its rescale to the
/// output quantization.
#[derive(Debug, Clone, Copy)]
pub struct ConcatInput<'a> {
    /// The input tensor, `outer × axis_len × inner` elements.
    pub data: &'a [i8],
    /// Elements this input contributes per outer index (`axis_len × inner`).
    pub chunk: usize,
    /// `−zp_in`.
    pub input_offset: i32,
    /// `s_in / s_out`.
    pub rescale: Requant,
}

/// Concatenates `inputs` into `output` (`outer × Σ chunk` elements).
/// `output_offset` is `zp_out`.
///
/// Each element becomes `clamp(rescale(x − zp_in) + zp_out)`; an input with
/// the output's quantization (rescale 1.0) is copied exactly. Returns
/// [`Error::ShapeMismatch`] (output untouched) if any input is not
/// `outer × chunk` long or the output not `outer × Σ chunk`.
pub fn concat(
    outer: usize,
    inputs: &[ConcatInput<'_>],
    output_offset: i32,
    output: &mut [i8],
) -> Result<(), Error> {
    let mut row = 0usize;
    for part in inputs {
        if outer.checked_mul(part.chunk) != Some(part.data.len()) {
            return Err(Error::ShapeMismatch);
        }
        row = row.checked_add(part.chunk).ok_or(Error::ShapeMismatch)?;
    }
    if outer.checked_mul(row) != Some(output.len()) {
        return Err(Error::ShapeMismatch);
    }
    // Each element's value depends on its code alone: an input of at
    // least 256 elements gets the 256 answers once (on the stack), then
    // one lookup per element instead of a requantization — which for a
    // rescale of ½ or more is the out-of-line 64-bit path.
    let mut tables = [[0i8; 256]; TABLES];
    let mut tabled = [false; TABLES];
    for ((table, on), part) in tables.iter_mut().zip(&mut tabled).zip(inputs) {
        if part.data.len() >= 256 {
            for (code, y) in (0..=255u8).zip(table.iter_mut()) {
                *y = element(part, output_offset, code as i8);
            }
            *on = true;
        }
    }
    let mut out = output.iter_mut();
    for o in 0..outer {
        for (k, part) in inputs.iter().enumerate() {
            let src = &part.data[o * part.chunk..(o + 1) * part.chunk];
            // `src` first: zip must not advance `out` past the chunk's end.
            match tables.get(k).filter(|_| tabled.get(k) == Some(&true)) {
                Some(table) => {
                    for (&x, y) in src.iter().zip(out.by_ref()) {
                        *y = table[x as u8 as usize];
                    }
                }
                None => {
                    for (&x, y) in src.iter().zip(out.by_ref()) {
                        *y = element(part, output_offset, x);
                    }
                }
            }
        }
    }
    Ok(())
}

/// Inputs whose answers [`concat`] tabulates (a model's op has at most
/// `MAX_OP_INPUTS − 1` data inputs; 2 KiB of stack).
const TABLES: usize = crate::format::MAX_OP_INPUTS;

/// One output element: `clamp(rescale(x − zp_in) + zp_out)`.
#[inline(always)]
fn element(part: &ConcatInput<'_>, output_offset: i32, x: i8) -> i8 {
    let real = (x as i32).wrapping_add(part.input_offset);
    clamp_to_i8(
        part.rescale.apply(real).saturating_add(output_offset),
        -128,
        127,
    )
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn part(data: &[i8], chunk: usize, zp: i32, scale: f64) -> ConcatInput<'_> {
        ConcatInput {
            data,
            chunk,
            input_offset: -zp,
            rescale: requant(scale),
        }
    }

    #[test]
    fn interleaves_chunks_per_outer_index() {
        // Two rows; input a gives 2 per row, b gives 1 per row; same quantization.
        let a = [1i8, 2, 3, 4];
        let b = [-5i8, -6];
        let mut y = [0i8; 6];
        concat(2, &[part(&a, 2, 0, 1.0), part(&b, 1, 0, 1.0)], 0, &mut y).unwrap();
        assert_eq!(y, [1, 2, -5, 3, 4, -6]);
    }

    #[test]
    fn requantizes_and_saturates() {
        // Input zp 10 scale 0.5 into output zp −3 scale 0.25: y = 2(x − 10) − 3.
        let a = [10i8, 11, 100, -128];
        let mut y = [0i8; 4];
        concat(1, &[part(&a, 4, 10, 2.0)], -3, &mut y).unwrap();
        assert_eq!(y, [-3, -1, 127, -128]);
    }

    #[test]
    fn rejects_bad_lengths_without_writing() {
        let a = [1i8, 2, 3];
        let mut y = [9i8; 4];
        assert_eq!(
            concat(2, &[part(&a, 2, 0, 1.0)], 0, &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            concat(1, &[part(&a, 3, 0, 1.0)], 0, &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(y, [9; 4]);
    }

    proptest! {
        /// Against float: dequantize with the input's parameters, quantize
        /// with the output's; within one step (the multiplier's rounding).
        #[test]
        fn tabulated_inputs_match_the_definition(
            outer in 1usize..=40,
            chunks in proptest::collection::vec(1usize..=12, 1..=10),
            seed in proptest::collection::vec(any::<i8>(), 512),
            params in proptest::collection::vec((-128i32..128, 0.05f64..4.0), 10),
            zp_out in -128i32..128,
        ) {
            // Up to 10 inputs (past the 8 tables), 40 × 12 elements each
            // (over and under the 256 that get a table), rescales above
            // and below ½ (both requantization paths).
            let data: Vec<Vec<i8>> = chunks
                .iter()
                .enumerate()
                .map(|(k, &c)| seed.iter().cycle().skip(37 * k).take(outer * c).copied().collect())
                .collect();
            let parts: Vec<ConcatInput<'_>> = data
                .iter()
                .zip(&chunks)
                .zip(&params)
                .map(|((d, &c), &(zp, scale))| part(d, c, zp, scale))
                .collect();
            let mut y = std::vec![0i8; outer * chunks.iter().sum::<usize>()];
            concat(outer, &parts, zp_out, &mut y).unwrap();
            let mut want = Vec::new();
            for o in 0..outer {
                for p in &parts {
                    for &x in &p.data[o * p.chunk..(o + 1) * p.chunk] {
                        let v = p.rescale.apply(x as i32 - p.input_offset.wrapping_neg());
                        want.push(v.saturating_add(zp_out).clamp(-128, 127) as i8);
                    }
                }
            }
            prop_assert_eq!(y, want);
        }

        #[test]
        fn matches_float_requantization(
            x in proptest::collection::vec(any::<i8>(), 1..16),
            zp_in in -128i32..128, zp_out in -128i32..128,
            s_in in 0.01f64..1.0, s_out in 0.01f64..1.0,
        ) {
            let mut y = std::vec![0i8; x.len()];
            concat(1, &[part(&x, x.len(), zp_in, s_in / s_out)], zp_out, &mut y).unwrap();
            let expect: Vec<i8> = x.iter()
                .map(|&v| quantize(dequantize(v, s_in, zp_in), s_out, zp_out, -128, 127))
                .collect();
            prop_assert!(max_diff(&y, &expect) <= 1, "{y:?} vs {expect:?}");
        }
    }
}
