//! Rank-`r` factorization of one layer in the float graph: the way a
//! spectral advice is tested rather than asserted.
//!
//! `W ≈ A·B` from the top `r` eigenvectors of the layer's Gram matrix
//! (the truncated SVD): with `U_r` those of `W Wᵀ`, `A = U_r`, `B = U_rᵀ
//! W`; with `V_r` those of `Wᵀ W`, `A = W V_r`, `B = V_rᵀ`. The layer
//! becomes two: `B` with the original geometry and `r` outputs (no bias,
//! no clamp), then `A` as a 1×1 convolution (or FC) with the original bias
//! and clamp. The new graph goes through the normal quantization path, so
//! the bytes and accuracy measured are those a user would ship.

use super::mp::Decomposition;
use crate::ir::{Activation, Conv, FullyConnected, Graph, Node, Op, Tensor};
use anyhow::{bail, ensure, Result};

/// A layer a factorization applies to: a dense Conv (one group) or an FC,
/// as its `out × inner` matrix.
#[derive(Debug, Clone)]
pub struct LayerMatrix {
    /// Index of the node in the graph.
    pub node: usize,
    /// Its ONNX name.
    pub name: String,
    /// `Conv` or `FC`.
    pub kind: &'static str,
    /// Rows (output channels or features).
    pub out: usize,
    /// Columns (`kernel_h·kernel_w·in_c`, or input features).
    pub inner: usize,
    /// Row-major `out × inner`.
    pub weights: Vec<f32>,
}

/// Every dense Conv and FC of `graph`, in order (depthwise and grouped
/// convolutions hold one small kernel per channel, not one matrix: left out).
pub fn layers(graph: &Graph) -> Vec<LayerMatrix> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let (kind, out, weights) = match &n.op {
                Op::Conv(c) if c.groups == 1 => ("Conv", c.weight_shape[0], &c.weights),
                Op::FullyConnected(f) => ("FC", f.out_features, &f.weights),
                _ => return None,
            };
            Some(LayerMatrix {
                node: i,
                name: n.name.clone(),
                kind,
                out,
                inner: weights.len() / out.max(1),
                weights: weights.clone(),
            })
        })
        .collect()
}

/// Artifact bytes the second layer adds besides its weights: one op record
/// (64 B), five tensor records (the new activation and four constants,
/// 40 B each) and a guard record (8 B). Its metadata line (node name and
/// kind, tens of bytes) is not counted: the measured saving includes it.
pub const EXTRA_LAYER_BYTES: i64 = 64 + 5 * 40 + 8;

/// Bytes a rank-`rank` factorization of an `out × inner` int8 layer saves:
/// the weights it drops, less the new channels' bias, multiplier and shift
/// (4 B each) and [`EXTRA_LAYER_BYTES`]. Negative when it would cost flash.
pub fn predicted_saving(out: usize, inner: usize, rank: usize) -> i64 {
    (out * inner) as i64 - (rank * (out + inner)) as i64 - 12 * rank as i64 - EXTRA_LAYER_BYTES
}

/// `graph` with layer `layer` replaced by its rank-`rank` factorization
/// from decomposition `d` of its matrix.
pub fn factorize(
    graph: &Graph,
    layer: &LayerMatrix,
    d: &Decomposition,
    rank: usize,
) -> Result<Graph> {
    let (out, inner, w) = (layer.out, layer.inner, &layer.weights);
    ensure!(
        rank >= 1 && rank <= d.vectors.len(),
        "rank {rank} of a {out} × {inner} layer"
    );
    let top = &d.vectors[d.vectors.len() - rank..];
    // a[i][k] (out × rank), b[k][j] (rank × inner).
    let (a, b): (Vec<f32>, Vec<f32>) = if d.transposed {
        let a = (0..out)
            .flat_map(|i| {
                top.iter().map(move |v| {
                    (0..inner)
                        .map(|j| f64::from(w[i * inner + j]) * v[j])
                        .sum::<f64>() as f32
                })
            })
            .collect();
        let b = top
            .iter()
            .flat_map(|v| v.iter().map(|&x| x as f32))
            .collect();
        (a, b)
    } else {
        let a = (0..out)
            .flat_map(|i| top.iter().map(move |u| u[i] as f32))
            .collect();
        let b = top
            .iter()
            .flat_map(|u| {
                (0..inner).map(move |j| {
                    (0..out)
                        .map(|i| u[i] * f64::from(w[i * inner + j]))
                        .sum::<f64>() as f32
                })
            })
            .collect();
        (a, b)
    };
    let mut g = graph.clone();
    let node = g.nodes[layer.node].clone();
    let out_shape = g.tensors[node.output].shape.clone();
    let mut mid_shape = out_shape.clone();
    let Some(last) = mid_shape.last_mut() else {
        bail!("node {}: an output without dims", node.name);
    };
    *last = rank;
    let (first, second) = match &node.op {
        Op::Conv(c) => (
            Op::Conv(Conv {
                weights: b,
                weight_shape: [
                    rank,
                    c.weight_shape[1],
                    c.weight_shape[2],
                    c.weight_shape[3],
                ],
                bias: vec![0.0; rank],
                act: Activation::None,
                ..c.clone()
            }),
            Op::Conv(Conv {
                weights: a,
                weight_shape: [out, 1, 1, rank],
                bias: c.bias.clone(),
                stride: [1, 1],
                pads: [0; 4],
                dilation: [1, 1],
                groups: 1,
                act: c.act,
            }),
        ),
        Op::FullyConnected(f) => (
            Op::FullyConnected(FullyConnected {
                weights: b,
                out_features: rank,
                in_features: inner,
                bias: vec![0.0; rank],
                act: Activation::None,
            }),
            Op::FullyConnected(FullyConnected {
                weights: a,
                out_features: out,
                in_features: rank,
                bias: f.bias.clone(),
                act: f.act,
            }),
        ),
        _ => bail!("node {} is not a Conv or FC", node.name),
    };
    let mid = g.tensors.len();
    g.tensors.push(Tensor {
        name: format!("{}/rank{rank}", node.name),
        shape: mid_shape,
        value: None,
    });
    g.nodes[layer.node] = Node {
        name: format!("{}/rank{rank}.0", node.name),
        op: first,
        inputs: node.inputs.clone(),
        output: mid,
    };
    g.nodes.insert(
        layer.node + 1,
        Node {
            name: format!("{}/rank{rank}.1", node.name),
            op: second,
            inputs: vec![mid],
            output: node.output,
        },
    );
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::super::mp::decompose;
    use super::*;
    use crate::ir::IoLayout;

    /// `A·B` at full rank rebuilds the layer, in both orientations.
    #[test]
    fn full_rank_factors_multiply_back_to_the_layer() {
        for (out, inner) in [(3usize, 5usize), (5, 3)] {
            let w: Vec<f32> = (0..out * inner)
                .map(|i| ((i * 7 % 11) as f32 - 5.0) / 4.0)
                .collect();
            let d = decompose(&w, out, inner);
            let rank = out.min(inner);
            let layer = LayerMatrix {
                node: 0,
                name: "fc".into(),
                kind: "FC",
                out,
                inner,
                weights: w.clone(),
            };
            let graph = Graph {
                tensors: vec![
                    Tensor {
                        name: "x".into(),
                        shape: vec![1, inner],
                        value: None,
                    },
                    Tensor {
                        name: "y".into(),
                        shape: vec![1, out],
                        value: None,
                    },
                ],
                nodes: vec![Node {
                    name: "fc".into(),
                    op: Op::FullyConnected(FullyConnected {
                        weights: w.clone(),
                        out_features: out,
                        in_features: inner,
                        bias: vec![0.5; out],
                        act: Activation::Relu,
                    }),
                    inputs: vec![0],
                    output: 1,
                }],
                input: 0,
                output: 1,
                onnx_input_shape: vec![1, inner],
                onnx_output_shape: vec![1, out],
                input_layout: IoLayout::AsIs,
                output_layout: IoLayout::AsIs,
            };
            let g = factorize(&graph, &layer, &d, rank).unwrap();
            let (Op::FullyConnected(b), Op::FullyConnected(a)) = (&g.nodes[0].op, &g.nodes[1].op)
            else {
                panic!("two FCs")
            };
            assert_eq!(
                (b.out_features, a.in_features, a.act, b.act),
                (rank, rank, Activation::Relu, Activation::None)
            );
            assert_eq!(g.nodes[1].output, 1);
            for i in 0..out {
                for j in 0..inner {
                    let ab: f32 = (0..rank)
                        .map(|k| a.weights[i * rank + k] * b.weights[k * inner + j])
                        .sum();
                    assert!(
                        (ab - w[i * inner + j]).abs() < 1e-4,
                        "({i}, {j}) of {out} × {inner}"
                    );
                }
            }
        }
    }
}
