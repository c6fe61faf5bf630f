//! Work per inference, counted from the artifact: multiply-accumulates of
//! the conv and fully connected ops, so board counters can be reported as
//! MACs per instruction (or cycle).

use sturdy_runtime::{Model, OpKind};

/// Multiply-accumulates one inference of `model` performs.
pub fn macs(model: &Model<'_>) -> u64 {
    (0..model.op_count())
        .filter_map(|i| model.op(i).ok())
        .map(|op| op_macs(&op.kind))
        .sum()
}

/// Multiply-accumulates of one op (0 for ops without a weight product).
pub fn op_macs(kind: &OpKind<'_>) -> u64 {
    match kind {
        OpKind::Conv2d { params: p, .. } => {
            let per_output = (p.kernel_h * p.kernel_w * (p.in_c / p.groups.max(1))) as u64;
            (p.out_h * p.out_w * p.out_c) as u64 * per_output
        }
        OpKind::FullyConnected { params: p, .. } => {
            (p.rows * p.in_features * p.out_features) as u64
        }
        _ => 0,
    }
}

/// A short name for an op kind tag (`sturdy_runtime::format::OP_*`).
pub fn op_name(kind: u16) -> &'static str {
    use sturdy_runtime::format::*;
    match kind {
        OP_CONV2D => "conv2d",
        OP_FULLY_CONNECTED => "fully_connected",
        OP_ADD => "add",
        OP_MUL => "mul",
        OP_MAX_POOL => "max_pool",
        OP_AVERAGE_POOL => "average_pool",
        OP_SOFTMAX => "softmax",
        OP_LUT => "lut",
        OP_CONCAT => "concat",
        OP_TRANSPOSE => "transpose",
        _ => "unknown",
    }
}
