//! Elementwise ops: Add/Sub/Mul/Div, Relu/Clip, Sigmoid/Tanh, and Softmax.

use anyhow::{bail, ensure, Result};

use crate::ir::{Activation, Op};

use super::builder::{Act, Value};
use super::fold::{broadcast_data, broadcast_shape, norm_axis, Const, Dt};
use super::proto::{attr_float, attr_int};
use super::{Importer, NodeCtx};

/// The two IR ops that take a constant operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConstOp {
    /// `Op::Add`.
    Add,
    /// `Op::Mul`.
    Mul,
}

/// Emits `act ∘ c` with the constant laid out in `act`'s storage order and
/// reduced to the smallest form the IR accepts: one value (`[1]`), one per
/// channel (`[C]`, the last storage axis), or the full storage shape.
pub fn emit_const_op(
    imp: &mut Importer,
    act: &Act,
    c: &Const,
    op: ConstOp,
    node: &str,
    out_name: String,
    from_bn: Option<String>,
) -> Result<Act> {
    let shape = broadcast_shape(&act.shape, &c.dims)?;
    ensure!(
        shape == act.shape,
        "a constant of shape {:?} would broadcast the activation {:?} to {shape:?}",
        c.dims,
        act.shape
    );
    let full: Vec<f32> = broadcast_data(&c.data, &c.dims, &act.shape)?
        .iter()
        .map(|&v| v as f32)
        .collect();
    let storage = act.layout.to_storage(&act.shape, &full);
    let storage_shape = act.layout.storage_shape(&act.shape);
    let last = storage_shape.last().copied().unwrap_or(1).max(1);
    let (cshape, cdata) = if storage.iter().all(|&v| v == storage[0]) {
        (vec![1], vec![storage[0]])
    } else if storage
        .iter()
        .enumerate()
        .all(|(i, &v)| v == storage[i % last])
    {
        (vec![last], storage[..last].to_vec())
    } else {
        (storage_shape.clone(), storage)
    };
    let cid = imp.draft.constant(format!("{node}/operand"), cshape, cdata);
    let ir_op = match op {
        ConstOp::Add => Op::Add(Activation::None),
        ConstOp::Mul => Op::Mul(Activation::None),
    };
    let id = imp
        .draft
        .node(node, ir_op, vec![act.id, cid], out_name, storage_shape);
    if let Some(bn) = from_bn {
        if let Some(last) = imp.draft.nodes.last_mut() {
            last.from_bn = Some(bn);
        }
    }
    Ok(Act {
        id,
        shape: act.shape.clone(),
        layout: act.layout,
    })
}

fn map_const(c: &Const, f: impl Fn(f32) -> f32) -> Const {
    Const::new(
        Dt::Float,
        c.dims.clone(),
        c.data.iter().map(|&v| f(v as f32) as f64).collect(),
    )
}

/// Add / Sub / Mul / Div of two activations (same shape) or of an
/// activation and a constant.
pub fn binary(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let op = n.node.op_type.as_str();
    let (a, b) = (n.input(0)?, n.input(1)?);
    let out = n.out(0);
    let act = match (a, b) {
        (Value::Const(_), Value::Const(_)) => {
            bail!("{op} of two constants should have been folded")
        }
        (x, Value::Const(c)) => {
            let x = x.act(op)?;
            match op {
                "Add" => emit_const_op(imp, &x, c, ConstOp::Add, n.name, out, None)?,
                "Sub" => emit_const_op(
                    imp,
                    &x,
                    &map_const(c, |v| -v),
                    ConstOp::Add,
                    n.name,
                    out,
                    None,
                )?,
                "Mul" => emit_const_op(imp, &x, c, ConstOp::Mul, n.name, out, None)?,
                _ => emit_const_op(
                    imp,
                    &x,
                    &map_const(c, |v| 1.0 / v),
                    ConstOp::Mul,
                    n.name,
                    out,
                    None,
                )?,
            }
        }
        (Value::Const(c), x) => {
            let x = x.act(op)?;
            match op {
                "Add" => emit_const_op(imp, &x, c, ConstOp::Add, n.name, out, None)?,
                "Mul" => emit_const_op(imp, &x, c, ConstOp::Mul, n.name, out, None)?,
                "Sub" => {
                    // c − x = (−1)·x + c.
                    let minus = Const::new(Dt::Float, vec![], vec![-1.0]);
                    let neg = emit_const_op(
                        imp,
                        &x,
                        &minus,
                        ConstOp::Mul,
                        &format!("{}/negate", n.name),
                        format!("{out}/negated"),
                        None,
                    )?;
                    emit_const_op(imp, &neg, c, ConstOp::Add, n.name, out, None)?
                }
                _ => bail!("division of a constant by an activation is not supported"),
            }
        }
        (x, y) => {
            let (x, y) = (x.act(op)?, y.act(op)?);
            ensure!(
                x.shape == y.shape,
                "{op} of activations with different shapes {:?} and {:?} (broadcasting between two activations is not supported)",
                x.shape,
                y.shape
            );
            let ir_op = match op {
                "Add" => Op::Add(Activation::None),
                "Mul" => Op::Mul(Activation::None),
                _ => bail!("{op} of two activations is not supported (only Add and Mul are)"),
            };
            let (x, y) = imp.draft.match_layout(&x, &y, n.name)?;
            let shape = imp.draft.shape(x.id).to_vec();
            let id = imp.draft.node(n.name, ir_op, vec![x.id, y.id], out, shape);
            Act { id, ..x }
        }
    };
    Ok(Value::Act(act))
}

/// The scalar of an optional Clip bound input.
fn bound(n: &NodeCtx, i: usize) -> Result<Option<f32>> {
    match n.opt_konst(i)? {
        None => Ok(None),
        Some(c) => Ok(Some(c.scalar()? as f32)),
    }
}

/// Relu / Clip → `Op::Clamp` (the fusion pass moves it into its producer).
pub fn clamp(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let x = n.act(0)?;
    let act = if n.node.op_type == "Relu" {
        Activation::Relu
    } else {
        let (min, max) = if imp.opset < 11 {
            (attr_float(n.node, "min")?, attr_float(n.node, "max")?)
        } else {
            (bound(n, 1)?, bound(n, 2)?)
        };
        let min = min.unwrap_or(f32::NEG_INFINITY);
        let max = max.unwrap_or(f32::INFINITY);
        ensure!(min <= max, "Clip with min {min} > max {max}");
        if min == 0.0 && max == f32::INFINITY {
            Activation::Relu
        } else {
            Activation::Clip { min, max }
        }
    };
    let shape = imp.draft.shape(x.id).to_vec();
    let id = imp
        .draft
        .node(n.name, Op::Clamp(act), vec![x.id], n.out(0), shape);
    Ok(Value::Act(Act { id, ..x }))
}

/// Sigmoid / Tanh (layout-preserving).
pub fn unary(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let x = n.act(0)?;
    let op = if n.node.op_type == "Sigmoid" {
        Op::Sigmoid
    } else {
        Op::Tanh
    };
    let shape = imp.draft.shape(x.id).to_vec();
    let id = imp.draft.node(n.name, op, vec![x.id], n.out(0), shape);
    Ok(Value::Act(Act { id, ..x }))
}

/// Whether softmax over ONNX `axes` of `x` is a softmax over the last
/// storage axis.
fn softmax_is_last(x: &Act, axes: &[usize]) -> bool {
    let rank = x.shape.len();
    let last_storage = x.layout.storage_shape(&x.shape).len() - 1;
    let Some(l) = (0..rank).find(|&a| x.layout.storage_axis(rank, a) == Some(last_storage)) else {
        return false;
    };
    let big: Vec<usize> = axes.iter().copied().filter(|&a| x.shape[a] > 1).collect();
    big == [l] || (big.is_empty() && x.shape[l] == 1 && axes.contains(&l))
}

/// Softmax / LogSoftmax → `Op::Softmax` / `Op::LogSoftmax`, which
/// normalize over the last storage axis; refused when the ONNX axis does not
/// map there.
pub fn softmax(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let x = n.act(0)?;
    let rank = x.shape.len();
    let default = if imp.opset < 13 { 1 } else { -1 };
    let axis = norm_axis(attr_int(n.node, "axis")?.unwrap_or(default), rank)?;
    // Before opset 13, Softmax normalizes over all axes from `axis` on.
    let axes: Vec<usize> = if imp.opset < 13 {
        (axis..rank).collect()
    } else {
        vec![axis]
    };
    let x = if softmax_is_last(&x, &axes) {
        x
    } else {
        let plain = imp.draft.to_plain(&x, n.name);
        ensure!(
            softmax_is_last(&plain, &axes),
            "{} over axis {axis} of shape {:?} is not over the last axis; sturdy's softmax normalizes the innermost (channel) axis only",
            n.node.op_type,
            x.shape
        );
        plain
    };
    let shape = imp.draft.shape(x.id).to_vec();
    let op = if n.node.op_type == "LogSoftmax" {
        Op::LogSoftmax
    } else {
        Op::Softmax
    };
    let id = imp.draft.node(n.name, op, vec![x.id], n.out(0), shape);
    Ok(Value::Act(Act { id, ..x }))
}

/// `QuantizeLinear` of an activation → a pending [`Value::Quantized`] that
/// the matching `DequantizeLinear` resolves.
pub fn quantize_linear(n: &NodeCtx) -> Result<Value> {
    let act = n.act(0)?;
    ensure!(
        attr_int(n.node, "block_size")?.unwrap_or(0) == 0,
        "blocked quantization (block_size) of an activation is not supported"
    );
    let scale = n.konst(1)?.clone();
    let zero_point = n.opt_konst(2)?.cloned();
    // The quantized type: the zero point's, else `output_dtype` (opset 21),
    // else uint8.
    let dt = match &zero_point {
        Some(z) => z.dt,
        None => match attr_int(n.node, "output_dtype")?.unwrap_or(0) {
            0 | 2 => Dt::U8,
            3 => Dt::I8,
            _ => Dt::Int,
        },
    };
    let range = match dt {
        Dt::I8 => Some((-128.0f64, 127.0f64)),
        Dt::U8 => Some((0.0, 255.0)),
        // int16/int32 activations: saturation far outside any real range.
        _ => None,
    };
    let bounds = match range {
        Some((qmin, qmax)) => {
            ensure!(scale.numel() >= 1, "QuantizeLinear with an empty scale");
            let zps = zero_point
                .as_ref()
                .map_or_else(|| vec![0.0; scale.numel()], |z| z.data.clone());
            ensure!(
                zps.len() == scale.numel() || zps.len() == 1,
                "QuantizeLinear scale ({}) and zero point ({}) differ in size",
                scale.numel(),
                zps.len()
            );
            // Per-axis activation quantization: one clamp cannot express
            // per-channel bounds, so keep the loosest (never clips more than
            // the model does).
            let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
            for (i, &s) in scale.data.iter().enumerate() {
                ensure!(s > 0.0, "QuantizeLinear scale {s} is not positive");
                let z = zps[i.min(zps.len() - 1)];
                lo = lo.min((qmin - z) * s);
                hi = hi.max((qmax - z) * s);
            }
            Some((lo as f32, hi as f32))
        }
        None => None,
    };
    Ok(Value::Quantized {
        act,
        node: n.name.to_string(),
        scale,
        zero_point,
        bounds,
    })
}

/// `DequantizeLinear` of a quantized activation → the float activation,
/// clamped to the range the QDQ pair saturates to. The clamp is fused into
/// the producer (or dropped when the producer's range already lies within
/// it), so a plain QDQ pair costs nothing; where an exporter removed a
/// Relu/ReLU6 because the QDQ range implies it, the clamp restores it.
pub fn dequantize_linear(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let Value::Quantized {
        act,
        node,
        scale,
        zero_point,
        bounds,
    } = n.input(0)?
    else {
        bail!("DequantizeLinear of a float activation (expected the output of a QuantizeLinear)");
    };
    let same_zp = match (zero_point, n.opt_konst(2)?) {
        (None, None) => true,
        (Some(a), Some(b)) => a.data == b.data,
        (Some(z), None) | (None, Some(z)) => z.data.iter().all(|&v| v == 0.0),
    };
    ensure!(
        n.konst(1)?.data == scale.data && same_zp,
        "DequantizeLinear uses other quantization parameters than QuantizeLinear '{node}' \
(a requantization); sturdy only reads matching QDQ pairs"
    );
    let Some((lo, hi)) = *bounds else {
        return Ok(Value::Act(act.clone()));
    };
    // On the graph input, sturdy's own input quantization is the saturation.
    let is_graph_input = !imp.draft.nodes.iter().any(|d| d.node.output == act.id);
    if is_graph_input {
        return Ok(Value::Act(act.clone()));
    }
    let clamp = if lo == 0.0 && hi == f32::INFINITY {
        Activation::Relu
    } else {
        Activation::Clip { min: lo, max: hi }
    };
    // One clamp per quantized tensor, however many DequantizeLinears read it.
    let existing = imp
        .draft
        .nodes
        .iter()
        .find(|d| d.node.op == Op::Clamp(clamp) && d.node.inputs.as_slice() == [act.id]);
    if let Some(d) = existing {
        let id = d.node.output;
        return Ok(Value::Act(Act { id, ..act.clone() }));
    }
    let shape = imp.draft.shape(act.id).to_vec();
    let id = imp.draft.node(
        format!("{}/qdq_clamp", n.name),
        Op::Clamp(clamp),
        vec![act.id],
        n.out(0),
        shape,
    );
    Ok(Value::Act(Act { id, ..act.clone() }))
}
