//! Which kernels a build links: a bit set `K` that a [`Model`] is typed
//! with (`Model<'a, K>`).
//!
//! A firmware runs one artifact, so it need not carry kernels that artifact
//! never calls. TFLite Micro leaves the choice to a hand-written op
//! resolver; here the firmware's build script derives the set from the
//! artifact itself ([`required`]), so it cannot miss one. Every check
//! against `K` is a constant, so the compiler drops the code of the kernels
//! outside it; an op whose kernel is not linked fails with
//! [`Error::KernelNotLinked`], and [`Model::parse_linking`] refuses such a
//! model up front. Host tools use [`ALL`], the default.

use crate::kernels::{conv_path, ConvPath};
use crate::model::{Model, OpKind, WeightData};
use crate::Error;

/// Depthwise convolution, int8 weights ([`ConvPath::Depthwise`]).
pub const DEPTHWISE_I8: u32 = 1 << 0;
/// Depthwise convolution, int4 weights.
pub const DEPTHWISE_I4: u32 = 1 << 1;
/// Dense convolution, int8 weights ([`ConvPath::Dense`]).
pub const DENSE_I8: u32 = 1 << 2;
/// Dense convolution, int4 weights.
pub const DENSE_I4: u32 = 1 << 3;
/// Every other convolution, int8 weights ([`ConvPath::General`]).
pub const GENERAL_CONV_I8: u32 = 1 << 4;
/// Every other convolution, int4 weights.
pub const GENERAL_CONV_I4: u32 = 1 << 5;
/// Fully connected, int8 weights.
pub const FULLY_CONNECTED_I8: u32 = 1 << 6;
/// Fully connected, int4 weights.
pub const FULLY_CONNECTED_I4: u32 = 1 << 7;
/// Element-wise Add.
pub const ADD: u32 = 1 << 8;
/// Element-wise Mul.
pub const MUL: u32 = 1 << 9;
/// Max pooling.
pub const MAX_POOL: u32 = 1 << 10;
/// Average pooling.
pub const AVERAGE_POOL: u32 = 1 << 11;
/// Softmax.
pub const SOFTMAX: u32 = 1 << 12;
/// Log-softmax.
pub const LOG_SOFTMAX: u32 = 1 << 13;
/// Table lookup (sigmoid, tanh, …).
pub const LUT: u32 = 1 << 14;
/// Concatenation.
pub const CONCAT: u32 = 1 << 15;
/// Transpose.
pub const TRANSPOSE: u32 = 1 << 16;
/// Every kernel: what a build that runs any artifact links.
pub const ALL: u32 = u32::MAX;

/// Whether the set `set` holds every kernel of `kernels`.
pub const fn links(set: u32, kernels: u32) -> bool {
    set & kernels == kernels
}

/// The kernel an op runs.
pub fn of(kind: &OpKind<'_>) -> u32 {
    let conv = |path, int4| match (path, int4) {
        (ConvPath::Depthwise, false) => DEPTHWISE_I8,
        (ConvPath::Depthwise, true) => DEPTHWISE_I4,
        (ConvPath::Dense, false) => DENSE_I8,
        (ConvPath::Dense, true) => DENSE_I4,
        (ConvPath::General, false) => GENERAL_CONV_I8,
        (ConvPath::General, true) => GENERAL_CONV_I4,
    };
    match kind {
        OpKind::Conv2d {
            params, weights, ..
        } => match weights {
            WeightData::I8(w) => conv(conv_path(params, w), false),
            WeightData::I4(w) => conv(conv_path(params, w), true),
        },
        OpKind::FullyConnected {
            weights: WeightData::I8(_),
            ..
        } => FULLY_CONNECTED_I8,
        OpKind::FullyConnected {
            weights: WeightData::I4(_),
            ..
        } => FULLY_CONNECTED_I4,
        OpKind::Add(_) => ADD,
        OpKind::Mul(_) => MUL,
        OpKind::MaxPool(_) => MAX_POOL,
        OpKind::AveragePool(_) => AVERAGE_POOL,
        OpKind::Softmax { log: None, .. } => SOFTMAX,
        OpKind::Softmax { log: Some(_), .. } => LOG_SOFTMAX,
        OpKind::Lut { .. } => LUT,
        OpKind::Concat { .. } => CONCAT,
        OpKind::Transpose(_) => TRANSPOSE,
    }
}

/// Every kernel `model` runs: the set a firmware for it links.
pub fn required<const K: u32>(model: &Model<'_, K>) -> Result<u32, Error> {
    let mut set = 0;
    for i in 0..model.op_count() {
        set |= of(&model.op(i)?.kind);
    }
    Ok(set)
}
