//! Concatenation along one axis, requantizing each input to the output.

use crate::arith::Requant;
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
pub fn concat(
    outer: usize,
    inputs: &[ConcatInput<'_>],
    output_offset: i32,
    output: &mut [i8],
) -> Result<(), Error> {
    let _ = (outer, inputs, output_offset, output);
    Err(Error::ShapeMismatch)
}
