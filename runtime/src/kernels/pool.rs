//! Max and average pooling over NHWC int8 (input and output share quantization).

use super::Activation;
use crate::Error;

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
    /// Fused activation.
    pub act: Activation,
}

/// Max over each window (padding never wins).
pub fn max_pool(p: &Pool, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let _ = (p, input, output);
    Err(Error::ShapeMismatch)
}

/// Rounded average over each window (ties away from zero, as TFLite).
pub fn average_pool(p: &Pool, input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let _ = (p, input, output);
    Err(Error::ShapeMismatch)
}
