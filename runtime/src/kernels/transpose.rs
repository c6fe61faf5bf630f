//! Axis permutation of an int8 tensor of rank ≤ 4 (layout changes the import
//! could not fold away).

use crate::Error;

/// `output[i0, i1, i2, i3] = input[i_perm…]`: output axis `k` is input axis `perm[k]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transpose {
    /// Input dims, padded with leading 1s to rank 4.
    pub in_dims: [usize; 4],
    /// Permutation of `0..4`.
    pub perm: [usize; 4],
}

/// Permutes `input` into `output`.
///
/// Returns [`Error::ShapeMismatch`] (output untouched) if `perm` is not a
/// permutation of `0..4` or either buffer does not hold `Π in_dims` elements.
pub fn transpose(p: &Transpose, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let mut seen = [false; 4];
    for &axis in &p.perm {
        match seen.get_mut(axis) {
            Some(s) if !*s => *s = true,
            _ => return Err(Error::ShapeMismatch),
        }
    }
    let len = p.in_dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if len != Some(input.len()) || input.len() != output.len() {
        return Err(Error::ShapeMismatch);
    }
    let d = p.in_dims;
    let in_strides = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1];
    let out_dims = p.perm.map(|a| d[a]);
    let strides = p.perm.map(|a| in_strides[a]);
    let mut out = output.iter_mut();
    for i0 in 0..out_dims[0] {
        for i1 in 0..out_dims[1] {
            for i2 in 0..out_dims[2] {
                let base = i0 * strides[0] + i1 * strides[1] + i2 * strides[2];
                for i3 in 0..out_dims[3] {
                    // Every index is < its dim, so the offset is < input.len().
                    if let Some(y) = out.next() {
                        *y = input[base + i3 * strides[3]];
                    }
                }
            }
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

    #[test]
    fn nchw_to_nhwc_hand_computed() {
        // 1×2×2×3 (N, C, H, W) → (N, H, W, C).
        let x: Vec<i8> = (0..12).collect();
        let p = Transpose {
            in_dims: [1, 2, 2, 3],
            perm: [0, 2, 3, 1],
        };
        let mut y = [0i8; 12];
        transpose(&p, &x, &mut y).unwrap();
        assert_eq!(y, [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]);
    }

    #[test]
    fn rejects_non_permutations_and_bad_lengths() {
        let mut y = [3i8; 6];
        let x = [0i8; 6];
        for perm in [[0, 0, 1, 2], [0, 1, 2, 4]] {
            let p = Transpose {
                in_dims: [1, 1, 2, 3],
                perm,
            };
            assert_eq!(transpose(&p, &x, &mut y), Err(Error::ShapeMismatch));
        }
        let p = Transpose {
            in_dims: [1, 1, 2, 4],
            perm: [0, 1, 3, 2],
        };
        assert_eq!(transpose(&p, &x, &mut y), Err(Error::ShapeMismatch));
        let huge = Transpose {
            in_dims: [usize::MAX, 2, 1, 1],
            perm: [0, 1, 2, 3],
        };
        assert_eq!(transpose(&huge, &x, &mut y), Err(Error::ShapeMismatch));
        assert_eq!(y, [3; 6]);
    }

    proptest! {
        /// Applying a permutation then its inverse restores the input, and
        /// every output element equals the input at the permuted index.
        #[test]
        fn permutes_indices(
            dims in [1usize..4, 1usize..4, 1usize..4, 1usize..4],
            perm in Just([0usize, 1, 2, 3]).prop_shuffle(),
        ) {
            let n: usize = dims.iter().product();
            let x: Vec<i8> = (0..n).map(|i| i as i8).collect();
            let mut y = std::vec![0i8; n];
            transpose(&Transpose { in_dims: dims, perm }, &x, &mut y).unwrap();
            let out_dims = perm.map(|a| dims[a]);
            let mut inverse = [0usize; 4];
            for (k, &a) in perm.iter().enumerate() {
                inverse[a] = k;
            }
            let mut back = std::vec![0i8; n];
            transpose(&Transpose { in_dims: out_dims, perm: inverse }, &y, &mut back).unwrap();
            prop_assert_eq!(&back, &x);
            // Spot check: output index (a, b, c, d) reads input at perm-mapped index.
            let idx = [out_dims[0] - 1, 0, out_dims[2] - 1, out_dims[3] / 2];
            let mut src = [0usize; 4];
            for k in 0..4 {
                src[perm[k]] = idx[k];
            }
            let flat_in = ((src[0] * dims[1] + src[1]) * dims[2] + src[2]) * dims[3] + src[3];
            let flat_out = ((idx[0] * out_dims[1] + idx[1]) * out_dims[2] + idx[2]) * out_dims[3] + idx[3];
            prop_assert_eq!(y[flat_out], x[flat_in]);
        }
    }
}
