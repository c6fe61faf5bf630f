//! Fusion passes and graph finishing.
//!
//! The runtime computes `Conv/FC + bias + per-channel scale + clamp` in one
//! kernel, so after translation:
//! 1. a Mul or Add by a scalar/per-channel constant (from BatchNormalization,
//!    a MatMul's bias Add, an explicit scale) right after a Conv/FC is folded
//!    into its weights and bias;
//! 2. a Clamp (Relu/Clip) is moved into its producer (Conv, FC, Add, Mul or
//!    another Clamp);
//! 3. a Clamp that cannot change its input (whose producers already bound it
//!    within the clamp's interval) is removed.
//!
//! 1 and 2 only when the intermediate tensor has exactly one reader and is
//! not the graph output. BatchNorms that found no Conv/FC are refused, dead
//! nodes dropped and tensor ids compacted.

use anyhow::{bail, Result};

use crate::ir::{Activation, Graph, IoLayout, Node, Op, TensorId};

use super::builder::{Draft, DraftNode};

/// Number of readers of every tensor (the graph output counts as one).
fn readers(draft: &Draft, output: TensorId) -> Vec<usize> {
    let mut r = vec![0; draft.tensors.len()];
    for n in &draft.nodes {
        for &i in &n.node.inputs {
            r[i] += 1;
        }
    }
    r[output] += 1;
    r
}

fn producer(draft: &Draft, t: TensorId) -> Option<usize> {
    draft.nodes.iter().position(|n| n.node.output == t)
}

/// The single-reader activation `x` that node `i` reads as `inputs[0]`, with
/// its producer index, if fusing into that producer is allowed.
fn fusable_input(
    draft: &Draft,
    readers: &[usize],
    output: TensorId,
    i: usize,
) -> Option<(TensorId, usize)> {
    let x = *draft.nodes[i].node.inputs.first()?;
    if x == output || readers[x] != 1 || draft.tensors[x].value.is_some() {
        return None;
    }
    Some((x, producer(draft, x)?))
}

/// Removes node `i` after its producer `p` took over its output.
fn splice(draft: &mut Draft, p: usize, i: usize) {
    draft.nodes[p].node.output = draft.nodes[i].node.output;
    draft.nodes.remove(i);
}

/// Pass 1: one fold of a constant Mul/Add into a Conv/FC; false if none.
fn fold_affine_once(draft: &mut Draft, output: TensorId) -> bool {
    let r = readers(draft, output);
    for i in 0..draft.nodes.len() {
        let is_mul = match draft.nodes[i].node.op {
            Op::Mul(Activation::None) => true,
            Op::Add(Activation::None) => false,
            _ => continue,
        };
        let &[_, c] = draft.nodes[i].node.inputs.as_slice() else {
            continue;
        };
        let Some(cv) = draft.tensors[c].value.clone() else {
            continue;
        };
        let Some((_, p)) = fusable_input(draft, &r, output, i) else {
            continue;
        };
        let channels = match &draft.nodes[p].node.op {
            Op::Conv(conv) if conv.act == Activation::None => conv.weight_shape[0],
            Op::FullyConnected(fc) if fc.act == Activation::None => fc.out_features,
            _ => continue,
        };
        let per: Vec<f32> = if cv.len() == 1 {
            vec![cv[0]; channels]
        } else if cv.len() == channels && draft.tensors[c].shape == [channels] {
            cv
        } else {
            continue;
        };
        let (weights, bias) = match &mut draft.nodes[p].node.op {
            Op::Conv(conv) => (&mut conv.weights, &mut conv.bias),
            Op::FullyConnected(fc) => (&mut fc.weights, &mut fc.bias),
            _ => continue,
        };
        if is_mul {
            let per_out = weights.len() / channels;
            for (o, row) in weights.chunks_mut(per_out.max(1)).enumerate() {
                row.iter_mut().for_each(|w| *w *= per[o]);
            }
            bias.iter_mut().zip(&per).for_each(|(b, s)| *b *= s);
        } else {
            bias.iter_mut().zip(&per).for_each(|(b, s)| *b += s);
        }
        splice(draft, p, i);
        return true;
    }
    false
}

fn bounds(a: Activation) -> (f32, f32) {
    match a {
        Activation::None => (f32::NEG_INFINITY, f32::INFINITY),
        Activation::Relu => (0.0, f32::INFINITY),
        Activation::Clip { min, max } => (min, max),
    }
}

/// The clamp equal to applying `first` then `then` (None if the intervals
/// do not meet, which would make the result constant).
pub fn compose(first: Activation, then: Activation) -> Option<Activation> {
    let (a, b) = bounds(first);
    let (c, d) = bounds(then);
    let (lo, hi) = (a.max(c), b.min(d));
    if lo > hi {
        return None;
    }
    Some(if lo == f32::NEG_INFINITY && hi == f32::INFINITY {
        Activation::None
    } else if lo == 0.0 && hi == f32::INFINITY {
        Activation::Relu
    } else {
        Activation::Clip { min: lo, max: hi }
    })
}

/// Pass 2: one Clamp moved into its producer; false if none.
fn fuse_clamp_once(draft: &mut Draft, output: TensorId) -> bool {
    let r = readers(draft, output);
    for i in 0..draft.nodes.len() {
        let Op::Clamp(act) = draft.nodes[i].node.op else {
            continue;
        };
        let Some((_, p)) = fusable_input(draft, &r, output, i) else {
            continue;
        };
        let slot = match &mut draft.nodes[p].node.op {
            Op::Conv(c) => &mut c.act,
            Op::FullyConnected(f) => &mut f.act,
            Op::Add(a) | Op::Mul(a) | Op::Clamp(a) => a,
            _ => continue,
        };
        let Some(merged) = compose(*slot, act) else {
            continue;
        };
        *slot = merged;
        splice(draft, p, i);
        return true;
    }
    false
}

/// An interval every value of tensor `t` is known to lie in, from the
/// clamps on the way to it (unbounded when nothing is known).
fn known_bounds(draft: &Draft, t: TensorId) -> (f32, f32) {
    let unknown = (f32::NEG_INFINITY, f32::INFINITY);
    let Some(p) = producer(draft, t) else {
        return unknown;
    };
    let node = &draft.nodes[p].node;
    let first = || {
        node.inputs
            .first()
            .map_or(unknown, |&i| known_bounds(draft, i))
    };
    match &node.op {
        Op::Conv(c) => bounds(c.act),
        Op::FullyConnected(f) => bounds(f.act),
        Op::Add(a) | Op::Mul(a) | Op::Clamp(a) => bounds(*a),
        Op::MaxPool(_) | Op::Reshape | Op::Transpose { .. } => first(),
        Op::AveragePool(p) => {
            let (lo, hi) = first();
            if p.count_include_pad && p.pads.iter().any(|&x| x > 0) {
                (lo.min(0.0), hi.max(0.0))
            } else {
                (lo, hi)
            }
        }
        Op::Concat { .. } => node
            .inputs
            .iter()
            .map(|&i| known_bounds(draft, i))
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (c, d)| {
                (a.min(c), b.max(d))
            }),
        Op::Softmax | Op::Sigmoid => (0.0, 1.0),
        Op::LogSoftmax => (f32::NEG_INFINITY, 0.0),
        Op::Tanh => (-1.0, 1.0),
    }
}

/// Pass 3: one Clamp removed whose input is already known to lie within
/// its bounds (e.g. the clamp of a QDQ pair after a MaxPool of a clamped
/// map); false if none. The graph output's producer is kept.
fn drop_redundant_clamp_once(draft: &mut Draft, output: TensorId) -> bool {
    for i in 0..draft.nodes.len() {
        let node = &draft.nodes[i].node;
        let Op::Clamp(act) = node.op else {
            continue;
        };
        if node.output == output {
            continue;
        }
        let (Some(&x), y) = (node.inputs.first(), node.output) else {
            continue;
        };
        let (lo, hi) = bounds(act);
        let (a, b) = known_bounds(draft, x);
        if !(lo <= a && b <= hi) {
            continue;
        }
        draft.nodes.remove(i);
        for n in &mut draft.nodes {
            n.node
                .inputs
                .iter_mut()
                .filter(|t| **t == y)
                .for_each(|t| *t = x);
        }
        return true;
    }
    false
}

/// Drops nodes whose output nobody reads.
fn remove_dead(draft: &mut Draft, output: TensorId) {
    loop {
        let r = readers(draft, output);
        let before = draft.nodes.len();
        draft.nodes.retain(|n| r[n.node.output] > 0);
        if draft.nodes.len() == before {
            return;
        }
    }
}

/// Runs the fusion passes on `draft`, refuses unfolded BatchNorms, drops
/// dead nodes and compacts tensor ids into the final [`Graph`].
pub fn finish(
    mut draft: Draft,
    input: TensorId,
    output: TensorId,
    onnx_input_shape: Vec<usize>,
    onnx_output_shape: Vec<usize>,
    input_layout: IoLayout,
    output_layout: IoLayout,
) -> Result<Graph> {
    while fold_affine_once(&mut draft, output) {}
    while fuse_clamp_once(&mut draft, output) {}
    while drop_redundant_clamp_once(&mut draft, output) {}
    remove_dead(&mut draft, output);
    if let Some(bn) = draft.nodes.iter().find_map(|n| n.from_bn.clone()) {
        bail!(
            "BatchNormalization node '{bn}' does not follow a Conv or Gemm whose output only it reads, \
so it cannot be folded; sturdy runs BatchNorm only folded into the preceding Conv/Gemm \
(fold it before export, or place it right after a Conv)"
        );
    }
    // Compact: keep tensors that are read or written.
    let mut keep = vec![false; draft.tensors.len()];
    keep[input] = true;
    keep[output] = true;
    for n in &draft.nodes {
        keep[n.node.output] = true;
        n.node.inputs.iter().for_each(|&i| keep[i] = true);
    }
    let mut remap = vec![usize::MAX; draft.tensors.len()];
    let mut tensors = Vec::new();
    for (i, t) in draft.tensors.into_iter().enumerate() {
        if keep[i] {
            remap[i] = tensors.len();
            tensors.push(t);
        }
    }
    let nodes = draft
        .nodes
        .into_iter()
        .map(|DraftNode { node, .. }| Node {
            inputs: node.inputs.iter().map(|&i| remap[i]).collect(),
            output: remap[node.output],
            ..node
        })
        .collect();
    Ok(Graph {
        tensors,
        nodes,
        input: remap[input],
        output: remap[output],
        onnx_input_shape,
        onnx_output_shape,
        input_layout,
        output_layout,
    })
}
