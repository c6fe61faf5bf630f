//! Ops that move data without computing: Flatten/Reshape/Squeeze/Unsqueeze,
//! Transpose, Concat and Pad. Most of them cost nothing once the layout of
//! each activation is tracked.

use anyhow::{anyhow, bail, ensure, Result};

use crate::ir::Op;

use super::builder::{Act, Value};
use super::fold::{
    axes_param, check_perm, flatten_shape, norm_axis, resolve_reshape, squeeze_shape,
    unsqueeze_shape,
};
use super::layout::Layout;
use super::proto::{attr_float, attr_int, attr_ints, attr_string};
use super::{Importer, NodeCtx};

/// Flatten / Reshape / Squeeze / Unsqueeze of an activation.
///
/// Same ONNX shape → no-op. A channels-last map flattened to `[1, C·H·W]`
/// for FC consumers only → `Op::Reshape` and a [`Layout::FlattenedNhwc`]
/// value (the FC permutes its weight columns). Otherwise the bytes are put
/// in ONNX order first (a Transpose unless the layout is trivial) and
/// reshaped.
pub fn reshape_like(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let x = n.act(0)?;
    let node = n.node;
    let new_shape = match node.op_type.as_str() {
        "Flatten" => flatten_shape(&x.shape, attr_int(node, "axis")?.unwrap_or(1))?,
        "Reshape" => {
            let target = if imp.opset < 5 {
                attr_ints(node, "shape")?.ok_or_else(|| anyhow!("Reshape without shape"))?
            } else {
                n.konst(1)?.as_i64s()
            };
            resolve_reshape(
                &x.shape,
                &target,
                attr_int(node, "allowzero")?.unwrap_or(0) != 0,
            )?
        }
        "Squeeze" => {
            let axes = axes_param(node, n.opt_konst(1)?, imp.opset)?;
            squeeze_shape(&x.shape, axes.as_deref())?
        }
        _ => {
            let axes = axes_param(node, n.opt_konst(1)?, imp.opset)?
                .ok_or_else(|| anyhow!("Unsqueeze without axes"))?;
            unsqueeze_shape(&x.shape, &axes)?
        }
    };
    Ok(Value::Act(reshape_act(imp, x, new_shape, n.name, n.out(0))))
}

/// `x` under the ONNX shape `new_shape` (same element count): free when the
/// shape is unchanged or the layout is trivial, a Reshape when a
/// channels-last map is flattened for FC consumers only (which absorb the
/// reordering), else put in ONNX order first and reshaped.
pub fn reshape_act(
    imp: &mut Importer,
    x: Act,
    new_shape: Vec<usize>,
    node: &str,
    out: String,
) -> Act {
    if new_shape == x.shape {
        return x;
    }
    let numel: usize = x.shape.iter().product();
    let x = if x.layout.is_trivial(&x.shape) {
        x
    } else if x.layout == Layout::ChannelsLast
        && new_shape == [1, numel]
        && imp.only_fc_consumers(&out)
    {
        let (c, h, w) = match x.shape.len() {
            4 => (x.shape[1], x.shape[2], x.shape[3]),
            _ => (x.shape[1], 1, x.shape[2]),
        };
        let id = imp
            .draft
            .reshape_storage(x.id, new_shape.clone(), node, out);
        return Act {
            id,
            shape: new_shape,
            layout: Layout::FlattenedNhwc { c, h, w },
        };
    } else {
        imp.draft.to_plain(&x, node)
    };
    let id = imp
        .draft
        .reshape_storage(x.id, new_shape.clone(), node, out);
    Act {
        id,
        shape: new_shape,
        layout: Layout::Plain,
    }
}

/// Storage axis of each ONNX axis (`sigma[logical] = storage`).
fn storage_axes(layout: Layout, rank: usize) -> Vec<usize> {
    (0..rank)
        .map(|a| layout.storage_axis(rank, a).unwrap_or(a))
        .collect()
}

/// True when permuting `shape` by `perm` keeps the bytes in place (only
/// unit axes move).
fn perm_is_noop(shape: &[usize], perm: &[usize]) -> bool {
    let big: Vec<usize> = perm.iter().copied().filter(|&p| shape[p] > 1).collect();
    big.windows(2).all(|w| w[0] < w[1])
}

/// `Transpose` of an activation: free when it only changes the layout
/// bookkeeping (tf2onnx's NHWC↔NCHW transposes), else `Op::Transpose` with
/// the permutation expressed in storage order.
pub fn transpose(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let mut x = n.act(0)?;
    let rank = x.shape.len();
    let perm: Vec<usize> = match attr_ints(n.node, "perm")? {
        Some(p) => p
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).rev().collect(),
    };
    check_perm(&perm, rank)?;
    if !(x.layout == Layout::Plain || (x.layout == Layout::ChannelsLast && rank == 4)) {
        x = imp.draft.to_plain(&x, n.name);
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let sigma = storage_axes(x.layout, rank);
    let in_storage = imp.draft.shape(x.id).to_vec();
    // Output stored plain: storage dim k = ONNX out dim k = ONNX in dim perm[k].
    let q_plain: Vec<usize> = perm.iter().map(|&p| sigma[p]).collect();
    // Output stored channels-last: storage dim k = ONNX out dim tau[k].
    let q_cl: Option<Vec<usize>> =
        (rank == 4).then(|| [0, 2, 3, 1].iter().map(|&t| sigma[perm[t]]).collect());
    let identity: Vec<usize> = (0..rank).collect();
    let out = n.out(0);
    let cl_storage = Layout::ChannelsLast.storage_shape(&out_shape);
    let (layout, id) = if q_plain == identity {
        (Layout::Plain, x.id)
    } else if q_cl.as_ref() == Some(&identity) {
        (Layout::ChannelsLast, x.id)
    } else if perm_is_noop(&in_storage, &q_plain) {
        (
            Layout::Plain,
            imp.draft
                .reshape_storage(x.id, out_shape.clone(), n.name, out),
        )
    } else if let Some(q) = q_cl.as_ref().filter(|q| perm_is_noop(&in_storage, q)) {
        let _ = q;
        (
            Layout::ChannelsLast,
            imp.draft.reshape_storage(x.id, cl_storage, n.name, out),
        )
    } else if let Some(q) = q_cl {
        (
            Layout::ChannelsLast,
            imp.draft.transpose_storage(x.id, q, n.name, out),
        )
    } else {
        (
            Layout::Plain,
            imp.draft.transpose_storage(x.id, q_plain, n.name, out),
        )
    };
    Ok(Value::Act(Act {
        id,
        shape: out_shape,
        layout,
    }))
}

/// `Concat` of activations → `Op::Concat` on the matching storage axis.
pub fn concat(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let parts: Vec<Act> = n
        .inputs
        .iter()
        .flatten()
        .map(|v| match v {
            Value::Const(_) => bail!("Concat of an activation with a constant is not supported"),
            v => v.act("Concat"),
        })
        .collect::<Result<_>>()?;
    let first = parts
        .first()
        .ok_or_else(|| anyhow!("Concat without inputs"))?;
    let rank = first.shape.len();
    let axis = norm_axis(
        attr_int(n.node, "axis")?.ok_or_else(|| anyhow!("Concat without axis"))?,
        rank,
    )?;
    let mut shape = first.shape.clone();
    shape[axis] = 0;
    for p in &parts {
        ensure!(
            p.shape.len() == rank,
            "Concat of ranks {rank} and {}",
            p.shape.len()
        );
        for i in 0..rank {
            ensure!(
                i == axis || p.shape[i] == first.shape[i],
                "Concat of shapes {:?} and {:?} along axis {axis}",
                first.shape,
                p.shape
            );
        }
        shape[axis] += p.shape[axis];
    }
    let channels_last =
        matches!(rank, 3 | 4) && parts.iter().any(|p| p.layout == Layout::ChannelsLast);
    let mut ids = Vec::with_capacity(parts.len());
    for p in &parts {
        let p = if channels_last {
            imp.draft.to_channels_last(p, n.name)?
        } else {
            imp.draft.to_plain(p, n.name)
        };
        ids.push(p.id);
    }
    let layout = if channels_last {
        Layout::ChannelsLast
    } else {
        Layout::Plain
    };
    let storage_axis = layout
        .storage_axis(rank, axis)
        .ok_or_else(|| anyhow!("Concat axis {axis} has no storage axis"))?;
    let id = imp.draft.node(
        n.name,
        Op::Concat { axis: storage_axis },
        ids,
        n.out(0),
        layout.storage_shape(&shape),
    );
    Ok(Value::Act(Act { id, shape, layout }))
}

/// Zero `Pad` of the spatial axes of a feature map → a pending
/// [`Value::Padded`] that the next Conv absorbs into its own pads.
pub fn pad(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let (x, prior) = match n.input(0)? {
        Value::Padded { act, pads, .. } => (act.clone(), Some(pads.clone())),
        v => (v.act("Pad")?, None),
    };
    let rank = x.shape.len();
    let node = n.node;
    let mode = attr_string(node, "mode")?.unwrap_or_else(|| "constant".into());
    ensure!(
        mode == "constant",
        "Pad mode '{mode}' is not supported (only zero padding before a Conv)"
    );
    let (raw, value) = if imp.opset < 11 {
        (
            attr_ints(node, "pads")?.ok_or_else(|| anyhow!("Pad without pads"))?,
            attr_float(node, "value")?.unwrap_or(0.0) as f64,
        )
    } else {
        let v = match n.opt_konst(2)? {
            Some(c) if c.numel() > 0 => c.scalar()?,
            _ => 0.0,
        };
        (n.konst(1)?.as_i64s(), v)
    };
    ensure!(
        value == 0.0,
        "Pad with value {value} is not supported (only zero padding)"
    );
    // Opset 18: pads may cover only the listed axes.
    let axes: Vec<usize> = match n.opt_konst(3)? {
        Some(a) => a
            .as_i64s()
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<Result<_>>()?,
        None => (0..rank).collect(),
    };
    ensure!(
        raw.len() == 2 * axes.len(),
        "Pad has {} pads for {} axes",
        raw.len(),
        axes.len()
    );
    let mut pads = prior.unwrap_or_else(|| vec![0; 2 * rank]);
    for (i, &a) in axes.iter().enumerate() {
        let (b, e) = (raw[i], raw[i + axes.len()]);
        ensure!(b >= 0 && e >= 0, "negative Pad (cropping) is not supported");
        pads[a] += b as usize;
        pads[a + rank] += e as usize;
    }
    ensure!(
        matches!(rank, 3 | 4),
        "Pad of a {rank}-D tensor: sturdy folds only spatial Pads of feature maps into a Conv"
    );
    ensure!(
        pads[0] == 0 && pads[1] == 0 && pads[rank] == 0 && pads[rank + 1] == 0,
        "Pad of the batch or channel axis is not supported (only spatial padding before a Conv)"
    );
    if pads.iter().all(|&p| p == 0) {
        return Ok(Value::Act(x));
    }
    Ok(Value::Padded {
        act: x,
        pads,
        node: n.name.to_string(),
    })
}
