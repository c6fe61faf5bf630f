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
pub fn transpose(p: &Transpose, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let _ = (p, input, output);
    Err(Error::ShapeMismatch)
}
