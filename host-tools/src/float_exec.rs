//! f32 execution of the float IR, for calibration and as the imported
//! model's reference on the host.
//!
//! Inputs and outputs are in *storage* layout (NHWC feature maps);
//! [`to_storage`] / [`from_storage`] convert one sample from / to the ONNX
//! layout the user's data is in. Every op checks its operand sizes first, so
//! a malformed graph is an error, not a panic.

use anyhow::{bail, ensure, Context, Result};

use crate::ir::{Activation, Conv, FullyConnected, Graph, IoLayout, Op, Pool};

/// Converts one sample from ONNX layout (`onnx_shape`, batch included) to
/// storage layout: NCHW → NHWC for [`IoLayout::NchwAsNhwc`], a copy
/// otherwise. A sample whose length does not match `onnx_shape` is returned
/// unchanged (the executor then rejects its length).
pub fn to_storage(layout: IoLayout, onnx_shape: &[usize], sample: &[f32]) -> Vec<f32> {
    match layout {
        IoLayout::NchwAsNhwc if onnx_shape.len() == 4 && numel(onnx_shape) == sample.len() => {
            crate::onnx::fold::transpose_data(sample, onnx_shape, &[0, 2, 3, 1])
        }
        _ => sample.to_vec(),
    }
}

/// Converts one sample from storage layout back to ONNX layout
/// (`onnx_shape` is the ONNX shape): NHWC → NCHW for
/// [`IoLayout::NchwAsNhwc`], a copy otherwise. Length mismatches are
/// returned unchanged, as in [`to_storage`].
pub fn from_storage(layout: IoLayout, onnx_shape: &[usize], data: &[f32]) -> Vec<f32> {
    match layout {
        IoLayout::NchwAsNhwc if onnx_shape.len() == 4 && numel(onnx_shape) == data.len() => {
            let s = onnx_shape;
            crate::onnx::fold::transpose_data(data, &[s[0], s[2], s[3], s[1]], &[0, 3, 1, 2])
        }
        _ => data.to_vec(),
    }
}

fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Runs `graph` on one `input` (storage layout) and returns the value of
/// every tensor, indexed by `TensorId` (constants included).
pub fn execute(graph: &Graph, input: &[f32]) -> Result<Vec<Vec<f32>>> {
    let n_tensors = graph.tensors.len();
    ensure!(
        graph.input < n_tensors && graph.output < n_tensors,
        "graph input/output out of range"
    );
    let mut values: Vec<Vec<f32>> = graph
        .tensors
        .iter()
        .map(|t| t.value.clone().unwrap_or_default())
        .collect();
    let in_len = numel(&graph.tensors[graph.input].shape);
    ensure!(
        input.len() == in_len,
        "input has {} values, the model expects {in_len}",
        input.len()
    );
    values[graph.input] = input.to_vec();
    for node in &graph.nodes {
        ensure!(
            node.output < n_tensors,
            "node '{}': output out of range",
            node.name
        );
        let mut ins = Vec::with_capacity(node.inputs.len());
        for &i in &node.inputs {
            ensure!(i < n_tensors, "node '{}': input out of range", node.name);
            ins.push((values[i].as_slice(), graph.tensors[i].shape.as_slice()));
        }
        let out_shape = &graph.tensors[node.output].shape;
        let out =
            run_op(&node.op, &ins, out_shape).with_context(|| format!("node '{}'", node.name))?;
        ensure!(
            out.len() == numel(out_shape),
            "node '{}' produced {} values for shape {out_shape:?}",
            node.name,
            out.len()
        );
        values[node.output] = out;
    }
    Ok(values)
}

type In<'a> = (&'a [f32], &'a [usize]);

fn one<'a>(ins: &[In<'a>]) -> Result<In<'a>> {
    match ins {
        [x] => Ok(*x),
        _ => bail!("expected one input, got {}", ins.len()),
    }
}

fn check_len((v, s): In) -> Result<()> {
    ensure!(
        v.len() == numel(s),
        "tensor of shape {s:?} holds {} values (not computed yet?)",
        v.len()
    );
    Ok(())
}

fn run_op(op: &Op, ins: &[In], out_shape: &[usize]) -> Result<Vec<f32>> {
    for &i in ins {
        check_len(i)?;
    }
    match op {
        Op::Conv(c) => conv(c, one(ins)?, out_shape),
        Op::FullyConnected(f) => fully_connected(f, one(ins)?),
        Op::Add(a) => binary(ins, *a, |x, y| x + y),
        Op::Mul(a) => binary(ins, *a, |x, y| x * y),
        Op::MaxPool(p) => pool(p, one(ins)?, out_shape, true),
        Op::AveragePool(p) => pool(p, one(ins)?, out_shape, false),
        Op::Softmax => softmax(one(ins)?),
        Op::LogSoftmax => log_softmax(one(ins)?),
        Op::Sigmoid => Ok(one(ins)?
            .0
            .iter()
            .map(|&x| 1.0 / (1.0 + (-x).exp()))
            .collect()),
        Op::Tanh => Ok(one(ins)?.0.iter().map(|&x| x.tanh()).collect()),
        Op::Clamp(a) => Ok(one(ins)?.0.iter().map(|&x| a.apply(x)).collect()),
        Op::Concat { axis } => concat(ins, *axis, out_shape),
        Op::Transpose { perm } => {
            let (x, s) = one(ins)?;
            ensure!(
                perm.len() == s.len(),
                "permutation {perm:?} for shape {s:?}"
            );
            crate::onnx::fold::check_perm(perm, s.len())?;
            Ok(crate::onnx::fold::transpose_data(x, s, perm))
        }
        Op::Reshape => Ok(one(ins)?.0.to_vec()),
    }
}

/// `[1, H, W, C]` of a feature map.
fn nhwc(s: &[usize]) -> Result<[usize; 3]> {
    match s {
        [1, h, w, c] => Ok([*h, *w, *c]),
        _ => bail!("expected a [1, H, W, C] feature map, got {s:?}"),
    }
}

fn conv(c: &Conv, (x, s): In, out_shape: &[usize]) -> Result<Vec<f32>> {
    let [h, w, cin] = nhwc(s)?;
    let [oh, ow, oc] = nhwc(out_shape)?;
    let [o, kh, kw, ig] = c.weight_shape;
    let g = c.groups;
    ensure!(
        g >= 1 && ig * g == cin && o == oc && o % g == 0,
        "conv weights {:?} / groups {g} vs input {s:?}",
        c.weight_shape
    );
    ensure!(
        c.weights.len() == o * kh * kw * ig && c.bias.len() == o,
        "conv weights/bias sizes"
    );
    ensure!(
        c.stride.iter().all(|&v| v >= 1) && c.dilation.iter().all(|&v| v >= 1),
        "conv stride/dilation 0"
    );
    let og = o / g;
    let mut out = vec![0f32; oh * ow * o];
    let [sh, sw] = c.stride;
    let [dh, dw] = c.dilation;
    let [pt, pl, _, _] = c.pads;
    for y in 0..oh {
        for xo in 0..ow {
            let acc = &mut out[(y * ow + xo) * o..(y * ow + xo + 1) * o];
            acc.copy_from_slice(&c.bias);
            for ky in 0..kh {
                let iy = (y * sh + ky * dh) as isize - pt as isize;
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ix = (xo * sw + kx * dw) as isize - pl as isize;
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    let pix = &x[(iy as usize * w + ix as usize) * cin..][..cin];
                    for (oc_i, a) in acc.iter_mut().enumerate() {
                        let grp = oc_i / og;
                        let xin = &pix[grp * ig..(grp + 1) * ig];
                        let wrow = &c.weights[((oc_i * kh + ky) * kw + kx) * ig..][..ig];
                        *a += xin.iter().zip(wrow).map(|(a, b)| a * b).sum::<f32>();
                    }
                }
            }
            acc.iter_mut().for_each(|v| *v = c.act.apply(*v));
        }
    }
    Ok(out)
}

fn fully_connected(f: &FullyConnected, (x, _): In) -> Result<Vec<f32>> {
    let k = f.in_features;
    ensure!(
        k > 0 && x.len() % k == 0,
        "FC input of {} values is not rows of {k}",
        x.len()
    );
    ensure!(
        f.weights.len() == f.out_features * k && f.bias.len() == f.out_features,
        "FC weights/bias sizes"
    );
    let mut out = Vec::with_capacity(x.len() / k * f.out_features);
    for row in x.chunks(k) {
        for (wrow, b) in f.weights.chunks(k).zip(&f.bias) {
            let v = b + row.iter().zip(wrow).map(|(a, b)| a * b).sum::<f32>();
            out.push(f.act.apply(v));
        }
    }
    Ok(out)
}

fn binary(ins: &[In], act: Activation, f: impl Fn(f32, f32) -> f32) -> Result<Vec<f32>> {
    let [(a, sa), (b, _)] = ins else {
        bail!("expected two inputs, got {}", ins.len())
    };
    let last = sa.last().copied().unwrap_or(1);
    let out = if b.len() == a.len() {
        a.iter()
            .zip(*b)
            .map(|(&x, &y)| act.apply(f(x, y)))
            .collect()
    } else if b.len() == 1 {
        a.iter().map(|&x| act.apply(f(x, b[0]))).collect()
    } else if b.len() == last && last > 0 {
        a.iter()
            .enumerate()
            .map(|(i, &x)| act.apply(f(x, b[i % last])))
            .collect()
    } else {
        bail!(
            "operand of {} values does not broadcast to shape {sa:?}",
            b.len()
        )
    };
    Ok(out)
}

fn pool(p: &Pool, (x, s): In, out_shape: &[usize], max: bool) -> Result<Vec<f32>> {
    let [h, w, c] = nhwc(s)?;
    let [oh, ow, oc] = nhwc(out_shape)?;
    ensure!(oc == c, "pool changes channels {c} → {oc}");
    let [kh, kw] = p.kernel;
    let [sh, sw] = p.stride;
    ensure!(
        kh >= 1 && kw >= 1 && sh >= 1 && sw >= 1,
        "pool kernel/stride 0"
    );
    let [pt, pl, pb, pr] = p.pads;
    let mut out = vec![0f32; oh * ow * c];
    let mut acc = vec![0f32; c];
    for y in 0..oh {
        for xo in 0..ow {
            let y0 = (y * sh) as isize - pt as isize;
            let x0 = (xo * sw) as isize - pl as isize;
            acc.iter_mut()
                .for_each(|a| *a = if max { f32::NEG_INFINITY } else { 0.0 });
            let mut count = 0usize;
            for iy in y0..y0 + kh as isize {
                if iy < 0 || iy >= h as isize {
                    continue;
                }
                for ix in x0..x0 + kw as isize {
                    if ix < 0 || ix >= w as isize {
                        continue;
                    }
                    count += 1;
                    let pix = &x[(iy as usize * w + ix as usize) * c..][..c];
                    for (a, &v) in acc.iter_mut().zip(pix) {
                        *a = if max { a.max(v) } else { *a + v };
                    }
                }
            }
            let dst = &mut out[(y * ow + xo) * c..][..c];
            if max {
                dst.copy_from_slice(&acc);
            } else {
                let div = if p.count_include_pad {
                    // Window clipped to the padded extent (ONNX semantics).
                    let ye = (y0 + kh as isize).min((h + pb) as isize);
                    let xe = (x0 + kw as isize).min((w + pr) as isize);
                    ((ye - y0.max(-(pt as isize))) * (xe - x0.max(-(pl as isize)))).max(1) as usize
                } else {
                    count.max(1)
                };
                dst.iter_mut()
                    .zip(&acc)
                    .for_each(|(d, a)| *d = a / div as f32);
            }
        }
    }
    Ok(out)
}

fn softmax((x, s): In) -> Result<Vec<f32>> {
    let last = s.last().copied().unwrap_or(1).max(1);
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(last) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let e: Vec<f32> = row.iter().map(|&v| (v - m).exp()).collect();
        let sum: f32 = e.iter().sum();
        out.extend(e.iter().map(|v| v / sum));
    }
    Ok(out)
}

/// `(x − max) − ln Σ exp(x − max)` per row: finite even where the
/// probability underflows.
fn log_softmax((x, s): In) -> Result<Vec<f32>> {
    let last = s.last().copied().unwrap_or(1).max(1);
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks(last) {
        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = row.iter().map(|&v| (v - m).exp()).sum::<f32>().ln();
        out.extend(row.iter().map(|&v| (v - m) - lse));
    }
    Ok(out)
}

fn concat(ins: &[In], axis: usize, out_shape: &[usize]) -> Result<Vec<f32>> {
    ensure!(axis < out_shape.len(), "concat axis {axis} out of range");
    let outer: usize = out_shape[..axis].iter().product();
    let mut total = 0;
    for (_, s) in ins {
        ensure!(s.len() == out_shape.len(), "concat of mismatched ranks");
        ensure!(
            (0..s.len()).all(|i| i == axis || s[i] == out_shape[i]),
            "concat input {s:?} does not fit output {out_shape:?}"
        );
        total += s[axis];
    }
    ensure!(total == out_shape[axis], "concat sizes do not add up");
    let mut out = Vec::with_capacity(numel(out_shape));
    for o in 0..outer {
        for (v, s) in ins {
            let chunk: usize = s[axis..].iter().product();
            out.extend_from_slice(&v[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(out)
}
