//! Translation of the compute-heavy ops: Conv, pooling, Gemm/MatMul and
//! BatchNormalization.

use anyhow::{anyhow, bail, ensure, Result};

use crate::ir::{Activation, Conv, FullyConnected, Op, Pool};

use super::builder::{Act, Value};
use super::elementwise::{emit_const_op, ConstOp};
use super::fold::{broadcast_data, norm_axis, transpose_data, Const, Dt};
use super::layout::{same_pads, window_out_len, Layout};
use super::proto::{attr_float, attr_int, attr_ints, attr_string};
use super::{Importer, NodeCtx};

/// Window geometry along the spatial axes, as ONNX describes it.
struct Window {
    kernel: Vec<usize>,
    stride: Vec<usize>,
    dilation: Vec<usize>,
    /// `(begin, end)` per spatial axis.
    pads: Vec<(usize, usize)>,
    out: Vec<usize>,
}

fn usizes(v: Vec<i64>, what: &str) -> Result<Vec<usize>> {
    v.into_iter()
        .map(|x| usize::try_from(x).map_err(|_| anyhow!("negative {what} {x}")))
        .collect()
}

/// Resolves strides/dilations/pads/auto_pad/ceil_mode for a window of
/// `kernel` over spatial dims `input`.
fn window(n: &NodeCtx, input: &[usize], kernel: Vec<usize>, allow_ceil: bool) -> Result<Window> {
    let s = input.len();
    let node = n.node;
    let stride = usizes(
        attr_ints(node, "strides")?.unwrap_or_else(|| vec![1; s]),
        "stride",
    )?;
    let dilation = usizes(
        attr_ints(node, "dilations")?.unwrap_or_else(|| vec![1; s]),
        "dilation",
    )?;
    ensure!(
        stride.len() == s && dilation.len() == s,
        "strides/dilations do not match the {s} spatial axes"
    );
    ensure!(
        kernel.len() == s,
        "kernel_shape does not match the {s} spatial axes"
    );
    let auto_pad = attr_string(node, "auto_pad")?.unwrap_or_else(|| "NOTSET".into());
    let ceil = attr_int(node, "ceil_mode")?.unwrap_or(0) != 0;
    let pads: Vec<(usize, usize)> = match auto_pad.as_str() {
        "NOTSET" | "" => {
            let p = usizes(
                attr_ints(node, "pads")?.unwrap_or_else(|| vec![0; 2 * s]),
                "pad",
            )?;
            ensure!(
                p.len() == 2 * s,
                "pads {p:?} do not match the {s} spatial axes"
            );
            (0..s).map(|i| (p[i], p[i + s])).collect()
        }
        "VALID" => vec![(0, 0); s],
        "SAME_UPPER" | "SAME_LOWER" => (0..s)
            .map(|i| {
                same_pads(
                    input[i],
                    kernel[i],
                    stride[i],
                    dilation[i],
                    auto_pad == "SAME_UPPER",
                )
            })
            .collect(),
        other => bail!("unknown auto_pad '{other}'"),
    };
    let mut out = Vec::with_capacity(s);
    for i in 0..s {
        let floor = window_out_len(
            input[i],
            kernel[i],
            stride[i],
            dilation[i],
            pads[i].0,
            pads[i].1,
            false,
        )?;
        if ceil {
            let up = window_out_len(
                input[i],
                kernel[i],
                stride[i],
                dilation[i],
                pads[i].0,
                pads[i].1,
                true,
            )?;
            ensure!(
                allow_ceil && up == floor,
                "ceil_mode=1 changes the output size here ({up} instead of {floor}); re-export with ceil_mode=0"
            );
        }
        out.push(floor);
    }
    Ok(Window {
        kernel,
        stride,
        dilation,
        pads,
        out,
    })
}

/// 2-D forms `[h, w]` of a 1-D or 2-D spatial parameter.
fn hw(v: &[usize], fill: usize) -> [usize; 2] {
    if v.len() == 1 {
        [fill, v[0]]
    } else {
        [v[0], v[1]]
    }
}

fn pads4(p: &[(usize, usize)]) -> [usize; 4] {
    if p.len() == 1 {
        [0, p[0].0, 0, p[0].1]
    } else {
        [p[0].0, p[1].0, p[0].1, p[1].1]
    }
}

fn feature_map(act: &Act, op: &str) -> Result<()> {
    ensure!(
        matches!(act.shape.len(), 3 | 4),
        "{op} needs a 4-D NCHW (or 3-D NCW) input, got shape {:?}",
        act.shape
    );
    Ok(())
}

/// `Conv` (optionally absorbing a preceding zero `Pad`) → `Op::Conv` with
/// OHWI weights.
pub fn conv(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let (act, extra) = match n.input(0)? {
        Value::Padded { act, pads, .. } => (act.clone(), Some(pads.clone())),
        v => (v.act("Conv")?, None),
    };
    feature_map(&act, "Conv")?;
    let rank = act.shape.len();
    let w = n.konst(1)?;
    ensure!(
        w.dims.len() == rank,
        "Conv weights {:?} do not match the input rank {rank}",
        w.dims
    );
    let groups = usize::try_from(attr_int(n.node, "group")?.unwrap_or(1))?;
    let (o, ig) = (w.dims[0], w.dims[1]);
    let c = act.shape[1];
    ensure!(
        groups >= 1 && ig * groups == c && o % groups == 0,
        "Conv weights {:?} with group={groups} do not fit {c} input channels",
        w.dims
    );
    let kernel = w.dims[2..].to_vec();
    if let Some(ks) = attr_ints(n.node, "kernel_shape")? {
        ensure!(
            usizes(ks.clone(), "kernel")? == kernel,
            "kernel_shape {ks:?} disagrees with weights {:?}",
            w.dims
        );
    }
    // Spatial size as the Conv sees it (after any folded Pad).
    let mut spatial: Vec<usize> = act.shape[2..].to_vec();
    let mut pre = vec![(0usize, 0usize); rank - 2];
    if let Some(p) = &extra {
        for i in 0..rank - 2 {
            pre[i] = (p[2 + i], p[2 + i + rank]);
            spatial[i] += pre[i].0 + pre[i].1;
        }
    }
    let win = window(n, &spatial, kernel.clone(), false)?;
    let pads: Vec<(usize, usize)> = win
        .pads
        .iter()
        .zip(&pre)
        .map(|(a, b)| (a.0 + b.0, a.1 + b.1))
        .collect();

    let bias = match n.opt_konst(2)? {
        Some(b) => {
            ensure!(
                b.numel() == o,
                "Conv bias has {} values for {o} output channels",
                b.numel()
            );
            b.as_f32s()
        }
        None => vec![0.0; o],
    };
    let (kh, kw) = if rank == 4 {
        (kernel[0], kernel[1])
    } else {
        (1, kernel[0])
    };
    let weights = transpose_data(&w.as_f32s(), &[o, ig, kh, kw], &[0, 2, 3, 1]);
    let input = imp.draft.to_channels_last(&act, n.name)?;
    let mut out_shape = vec![1, o];
    out_shape.extend_from_slice(&win.out);
    let op = Op::Conv(Conv {
        weights,
        weight_shape: [o, kh, kw, ig],
        bias,
        stride: hw(&win.stride, 1),
        pads: pads4(&pads),
        dilation: hw(&win.dilation, 1),
        groups,
        act: Activation::None,
    });
    let out = n.out(0);
    let act = imp
        .draft
        .node_act(n.name, op, input.id, &out, out_shape, Layout::ChannelsLast);
    Ok(Value::Act(act))
}

/// MaxPool / AveragePool / GlobalAveragePool / GlobalMaxPool → `Op::MaxPool`
/// or `Op::AveragePool`.
pub fn pool(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let op = n.node.op_type.as_str();
    let act = n.act(0)?;
    feature_map(&act, op)?;
    let spatial = act.shape[2..].to_vec();
    let global = op.starts_with("Global");
    let win = if global {
        let s = spatial.len();
        Window {
            kernel: spatial.clone(),
            stride: vec![1; s],
            dilation: vec![1; s],
            pads: vec![(0, 0); s],
            out: vec![1; s],
        }
    } else {
        let k = usizes(
            attr_ints(n.node, "kernel_shape")?
                .ok_or_else(|| anyhow!("{op} without kernel_shape"))?,
            "kernel",
        )?;
        window(n, &spatial, k, true)?
    };
    ensure!(
        win.dilation.iter().all(|&d| d == 1),
        "{op} with dilations ≠ 1 is not supported"
    );
    let count_include_pad = attr_int(n.node, "count_include_pad")?.unwrap_or(0) != 0;
    let pool = Pool {
        kernel: hw(&win.kernel, 1),
        stride: hw(&win.stride, 1),
        pads: pads4(&win.pads),
        count_include_pad,
    };
    let is_max = op.ends_with("MaxPool");
    let input = imp.draft.to_channels_last(&act, n.name)?;
    let mut out_shape = act.shape[..2].to_vec();
    out_shape.extend_from_slice(&win.out);
    let ir_op = if is_max {
        Op::MaxPool(pool)
    } else {
        Op::AveragePool(pool)
    };
    let out = n.out(0);
    let act = imp.draft.node_act(
        n.name,
        ir_op,
        input.id,
        &out,
        out_shape,
        Layout::ChannelsLast,
    );
    Ok(Value::Act(act))
}

/// Emits a FullyConnected over `act` (ONNX shape `[rows, K]`) with weights
/// `w` (`[N][K]`, columns in ONNX order) — permuting the columns when `act`
/// is a flattened NHWC map.
fn fully_connected(
    imp: &mut Importer,
    n: &NodeCtx,
    act: Act,
    w: Vec<f32>,
    out_f: usize,
    bias: Vec<f32>,
) -> Result<Value> {
    ensure!(
        act.shape.len() == 2,
        "{} needs a 2-D input, got shape {:?}",
        n.node.op_type,
        act.shape
    );
    let (rows, k) = (act.shape[0], act.shape[1]);
    let act = match act.layout {
        Layout::Plain | Layout::FlattenedNhwc { .. } => act,
        _ => imp.draft.to_plain(&act, n.name),
    };
    let weights = if act.layout.is_trivial(&act.shape) {
        w
    } else {
        w.chunks(k)
            .flat_map(|row| act.layout.to_storage(&act.shape, row))
            .collect()
    };
    let op = Op::FullyConnected(FullyConnected {
        weights,
        out_features: out_f,
        in_features: k,
        bias,
        act: Activation::None,
    });
    let out = n.out(0);
    let shape = vec![rows, out_f];
    Ok(Value::Act(imp.draft.node_act(
        n.name,
        op,
        act.id,
        &out,
        shape,
        Layout::Plain,
    )))
}

/// `Gemm` (transA = 0, constant B and C) → `Op::FullyConnected`.
pub fn gemm(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let act = n.act(0)?;
    ensure!(
        attr_int(n.node, "transA")?.unwrap_or(0) == 0,
        "Gemm with transA=1 is not supported"
    );
    let trans_b = attr_int(n.node, "transB")?.unwrap_or(0) != 0;
    let alpha = attr_float(n.node, "alpha")?.unwrap_or(1.0);
    let beta = attr_float(n.node, "beta")?.unwrap_or(1.0);
    let b = n.konst(1)?;
    ensure!(b.dims.len() == 2, "Gemm B must be 2-D, got {:?}", b.dims);
    ensure!(
        act.shape.len() == 2,
        "Gemm A must be 2-D, got {:?}",
        act.shape
    );
    let k = act.shape[1];
    let (out_f, w) = if trans_b {
        ensure!(
            b.dims[1] == k,
            "Gemm B {:?} (transB=1) does not match K={k}",
            b.dims
        );
        (b.dims[0], b.as_f32s())
    } else {
        ensure!(b.dims[0] == k, "Gemm B {:?} does not match K={k}", b.dims);
        (b.dims[1], transpose_data(&b.as_f32s(), &b.dims, &[1, 0]))
    };
    let w: Vec<f32> = w.into_iter().map(|v| v * alpha).collect();
    let bias = match n.opt_konst(2)? {
        Some(c) => {
            let full = broadcast_data(&c.data, &c.dims, &[1, out_f]).map_err(|e| {
                anyhow!(
                    "Gemm C {:?} must broadcast to one row of {out_f}: {e}",
                    c.dims
                )
            })?;
            full.iter().map(|&v| v as f32 * beta).collect()
        }
        None => vec![0.0; out_f],
    };
    fully_connected(imp, n, act, w, out_f, bias)
}

/// `MatMul` of an activation by a constant 2-D weight → `Op::FullyConnected`
/// (a following constant Add becomes its bias in the fusion pass).
pub fn matmul(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let act = n
        .act(0)
        .map_err(|e| anyhow!("MatMul needs the activation as its first operand and constant weights as its second: {e}"))?;
    let b = n.konst(1)?;
    ensure!(
        b.dims.len() == 2,
        "MatMul weights must be 2-D, got {:?}",
        b.dims
    );
    ensure!(
        act.shape.len() == 2,
        "MatMul input must be 2-D, got {:?}",
        act.shape
    );
    ensure!(
        b.dims[0] == act.shape[1],
        "MatMul weights {:?} do not match input {:?}",
        b.dims,
        act.shape
    );
    let out_f = b.dims[1];
    let w = transpose_data(&b.as_f32s(), &b.dims, &[1, 0]);
    fully_connected(imp, n, act, w, out_f, vec![0.0; out_f])
}

/// `BatchNormalization` (inference) → per-channel Mul and Add, which the
/// fusion pass must fold into the preceding Conv/FC.
pub fn batch_norm(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let act = n.act(0)?;
    ensure!(
        attr_int(n.node, "training_mode")?.unwrap_or(0) == 0,
        "BatchNormalization in training mode is not supported"
    );
    ensure!(
        attr_int(n.node, "spatial")?.unwrap_or(1) == 1,
        "BatchNormalization with spatial=0 is not supported"
    );
    let eps = attr_float(n.node, "epsilon")?.unwrap_or(1e-5);
    ensure!(
        act.shape.len() >= 2,
        "BatchNormalization needs a channel axis, got {:?}",
        act.shape
    );
    let c = act.shape[1];
    let get = |i: usize| -> Result<Vec<f32>> {
        let k = n.konst(i)?;
        ensure!(
            k.numel() == c,
            "BatchNormalization parameter #{i} has {} values for {c} channels",
            k.numel()
        );
        Ok(k.as_f32s())
    };
    let (gamma, beta, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
    let scale: Vec<f32> = (0..c).map(|i| gamma[i] / (var[i] + eps).sqrt()).collect();
    let shift: Vec<f32> = (0..c).map(|i| beta[i] - mean[i] * scale[i]).collect();
    let mut dims = vec![1; act.shape.len()];
    dims[1] = c;
    let to_const = |v: &[f32]| {
        Const::new(
            Dt::Float,
            dims.clone(),
            v.iter().map(|&x| x as f64).collect(),
        )
    };
    let bn = Some(n.name.to_string());
    let out = n.out(0);
    let scaled = emit_const_op(
        imp,
        &act,
        &to_const(&scale),
        ConstOp::Mul,
        &format!("{}/scale", n.name),
        format!("{out}/scaled"),
        bn.clone(),
    )?;
    let shifted = emit_const_op(
        imp,
        &scaled,
        &to_const(&shift),
        ConstOp::Add,
        &format!("{}/shift", n.name),
        out,
        bn,
    )?;
    Ok(Value::Act(shifted))
}

/// `ReduceMean` / `ReduceMax` over the spatial axes of a feature map (global
/// pooling as tf2onnx and PyTorch's dynamo exporter write it, keepdims or
/// not) → `Op::AveragePool` / `Op::MaxPool` with a full window.
///
/// Accepted whenever the reduced axes are, in storage order, the H and/or W
/// of a `[1, H, W, C]` tensor (in whatever layout the activation has, or
/// after converting it); a reduction over channels is refused.
pub fn reduce(imp: &mut Importer, n: &NodeCtx) -> Result<Value> {
    let op = n.node.op_type.as_str();
    let x = n.act(0)?;
    let rank = x.shape.len();
    let keepdims = attr_int(n.node, "keepdims")?.unwrap_or(1) != 0;
    // Axes: an attribute before opset 18, an optional input from then on.
    let axes = if imp.opset < 18 {
        attr_ints(n.node, "axes")?
    } else {
        n.opt_konst(1)?.map(|c| c.as_i64s())
    };
    let mut axes: Vec<usize> = match axes {
        Some(a) if !a.is_empty() => a
            .iter()
            .map(|&v| norm_axis(v, rank))
            .collect::<Result<_>>()?,
        _ if attr_int(n.node, "noop_with_empty_axes")?.unwrap_or(0) != 0 => {
            return Ok(Value::Act(x));
        }
        _ => (0..rank).collect(),
    };
    axes.sort_unstable();
    axes.dedup();
    let mut kept = x.shape.clone();
    axes.iter().for_each(|&a| kept[a] = 1);
    let squeezed: Vec<usize> = (0..rank)
        .filter(|a| !axes.contains(a))
        .map(|a| x.shape[a])
        .collect();
    let out_shape = if keepdims { kept.clone() } else { squeezed };
    let big: Vec<usize> = axes.iter().copied().filter(|&a| x.shape[a] > 1).collect();
    if big.is_empty() {
        return Ok(Value::Act(super::shape_ops::reshape_act(
            imp,
            x,
            out_shape,
            n.name,
            n.out(0),
        )));
    }

    // The reduced storage axes must be 1 and/or 2 of a rank-4 storage
    // `[1, H, W, C]`; try the activation's own layout, then the other one.
    let window = |a: &Act, draft: &super::builder::Draft| -> Option<[usize; 2]> {
        let storage = draft.shape(a.id).to_vec();
        if storage.len() != 4 || storage[0] != 1 {
            return None;
        }
        let mut kernel = [1, 1];
        for &ax in &big {
            match a.layout.storage_axis(rank, ax)? {
                s @ (1 | 2) => kernel[s - 1] = storage[s],
                _ => return None,
            }
        }
        Some(kernel)
    };
    let found = match window(&x, &imp.draft) {
        Some(k) => Some((x.clone(), k)),
        None if matches!(rank, 3 | 4) => {
            let other = if x.layout == Layout::ChannelsLast {
                imp.draft.to_plain(&x, n.name)
            } else {
                imp.draft.to_channels_last(&x, n.name)?
            };
            window(&other, &imp.draft).map(|k| (other, k))
        }
        None => None,
    };
    let Some((src, kernel)) = found else {
        bail!(
            "{op} over axes {axes:?} of shape {:?} is not a global pooling over the spatial axes \
(sturdy runs {op} only as an average/max pool over H and W)",
            x.shape
        );
    };
    let pool = Pool {
        kernel,
        stride: [1, 1],
        pads: [0; 4],
        count_include_pad: false,
    };
    let ir_op = if op == "ReduceMax" {
        Op::MaxPool(pool)
    } else {
        Op::AveragePool(pool)
    };
    let pooled_shape = src.layout.storage_shape(&kept);
    let pooled_name = if out_shape == kept {
        n.out(0)
    } else {
        format!("{}/pooled", n.out(0))
    };
    let id = imp
        .draft
        .node(n.name, ir_op, vec![src.id], pooled_name, pooled_shape);
    let pooled = Act {
        id,
        shape: kept,
        layout: src.layout,
    };
    Ok(Value::Act(super::shape_ops::reshape_act(
        imp,
        pooled,
        out_shape,
        n.name,
        n.out(0),
    )))
}
