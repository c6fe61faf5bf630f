//! int8 kernels, NHWC layout, batch 1; Conv and FC also take packed int4
//! weights (W4A8) through [`Weights`].
//!
//! Every kernel first checks that the buffers it is given match its
//! parameters and returns [`Error::ShapeMismatch`](crate::Error) otherwise,
//! so indexing inside the loops can never go out of bounds whatever the
//! artifact says. Accumulation is in i32; requantization goes through
//! [`crate::arith::Requant`], the one rounding rule of the runtime.
//!
//! Conventions shared by all kernels:
//! - `*_offset` fields are the *negated* input zero point (`input_offset =
//!   −zp_in`) and the output zero point (`output_offset = zp_out`), as in TFLite;
//! - weights are symmetric (no weight zero point), per output channel;
//! - the fused activation is the int8 interval [`Activation`].

mod concat;
mod conv;
mod conv_dense;
#[cfg(not(target_arch = "x86_64"))]
mod conv_depthwise;
#[cfg(target_arch = "x86_64")]
mod conv_sse2;
mod elementwise;
mod fully_connected;
#[cfg(target_arch = "x86_64")]
mod fully_connected_sse2;
mod logit_adjust;
mod lut;
pub mod mac;
mod pool;
mod softmax;
#[cfg(target_arch = "x86_64")]
mod sse2;
mod transpose;
mod weights;
mod window;

#[cfg(test)]
mod test_support;

pub use concat::{concat, ConcatInput};
pub use conv::{conv2d, conv2d_via, conv_path, Conv2d, ConvPath};
pub use elementwise::{add, mul, Add, Broadcast, Mul};
pub use fully_connected::{fully_connected, FullyConnected};
pub use logit_adjust::{logit_adjust, top_margin};
pub use lut::lut;
pub use pool::{average_pool, max_pool, Pool};
pub use softmax::{log_softmax, softmax, LogSoftmax, LOG_SOFTMAX_MAX_STEP};
pub use transpose::{transpose, Transpose};
pub use weights::Weights;

/// The int8 interval a fused activation clamps outputs to (ReLU, ReLU6, Clip
/// or none = `[-128, 127]`), already in the output's quantized units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activation {
    /// Lowest output value.
    pub min: i8,
    /// Highest output value.
    pub max: i8,
}

impl Activation {
    /// No clamping beyond the int8 range.
    pub const NONE: Activation = Activation {
        min: -128,
        max: 127,
    };
}
