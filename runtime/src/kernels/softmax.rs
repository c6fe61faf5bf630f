//! Integer softmax over the last axis, from a host-computed exponent table.

use crate::Error;

/// Softmax of `rows` rows of `cols` int8 logits each.
///
/// `exp_table[d] = round(2^16 · exp(−d · s_in · β))` for `d = max − x ∈
/// [0, 255]` (computed on the host, stored in the artifact). The output
/// quantization is fixed: scale 1/256, zero point −128, so
/// `out = clamp(round(256 · t / Σt) − 128)`, rounding half up in exact
/// integer arithmetic (u64, so no table can overflow it).
///
/// Returns [`Error::ShapeMismatch`] (output untouched) if the buffers are not
/// `rows × cols` long, the table has not 256 entries, or `exp_table[0]` is 0
/// (the row maximum must have weight, which also keeps `Σt > 0`).
pub fn softmax(
    rows: usize,
    cols: usize,
    exp_table: &[u32],
    input: &[i8],
    output: &mut [i8],
) -> Result<(), Error> {
    let table: &[u32; 256] = exp_table.try_into().map_err(|_| Error::ShapeMismatch)?;
    if rows.checked_mul(cols) != Some(input.len()) || input.len() != output.len() || table[0] == 0 {
        return Err(Error::ShapeMismatch);
    }
    if cols == 0 {
        return Ok(());
    }
    for (x, y) in input.chunks_exact(cols).zip(output.chunks_exact_mut(cols)) {
        let max = x.iter().copied().max().unwrap_or(0) as i32;
        let weight = |v: i8| table[(max - v as i32) as usize] as u64;
        let total: u64 = x.iter().map(|&v| weight(v)).sum();
        for (y, &v) in y.iter_mut().zip(x) {
            let q = (256 * weight(v) + total / 2) / total;
            *y = (q as i64 - 128).clamp(-128, 127) as i8;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use proptest::prelude::*;
    use std::vec::Vec;

    fn table(scale: f64) -> Vec<u32> {
        (0..256)
            .map(|d| ((-(d as f64) * scale).exp() * 65536.0).round() as u32)
            .collect()
    }

    #[test]
    fn hand_computed() {
        // Equal logits: 1/4 each → 64 − 128 = −64.
        let t = table(0.1);
        let mut y = [0i8; 4];
        softmax(1, 4, &t, &[3, 3, 3, 3], &mut y).unwrap();
        assert_eq!(y, [-64; 4]);
        // One dominant logit: probability ≈ 1 saturates at 127.
        softmax(1, 4, &t, &[127, -128, -128, -128], &mut y).unwrap();
        assert_eq!(y, [127, -128, -128, -128]);
        // Two logits differing by d = 10 at scale 0.1 (Δ = 1.0):
        // t = [65536, 24109], p0 = 0.7311 → 256·p0 = 187.16 → 187 − 128 = 59.
        let mut y = [0i8; 2];
        softmax(1, 2, &t, &[10, 0], &mut y).unwrap();
        assert_eq!(y, [59, -59]);
    }

    #[test]
    fn rejects_bad_buffers_and_tables() {
        let t = table(0.1);
        let mut y = [7i8; 4];
        assert_eq!(
            softmax(2, 3, &t, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            softmax(1, 4, &t[..255], &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        let zero = std::vec![0u32; 256];
        assert_eq!(
            softmax(1, 4, &zero, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(
            softmax(usize::MAX, 2, &t, &[0; 4], &mut y),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(y, [7; 4]);
    }

    proptest! {
        /// Against float softmax of the dequantized logits: within one
        /// output step (1/256) plus the table's own rounding.
        #[test]
        fn matches_float_softmax(
            x in proptest::collection::vec(any::<i8>(), 1..12),
            scale in 0.01f64..0.5,
        ) {
            let t = table(scale);
            let mut y = std::vec![0i8; x.len()];
            softmax(1, x.len(), &t, &x, &mut y).unwrap();
            let max = *x.iter().max().unwrap() as f64;
            let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - max) * scale).exp()).collect();
            let sum: f64 = e.iter().sum();
            for (&q, &ei) in y.iter().zip(&e) {
                let expect = (256.0 * ei / sum - 128.0).clamp(-128.0, 127.0);
                prop_assert!((q as f64 - expect).abs() <= 1.0, "{q} vs {expect}");
            }
        }
    }
}
