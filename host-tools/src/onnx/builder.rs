//! The IR under construction and the values flowing between ONNX nodes.
//!
//! Translation first produces a [`Draft`]: IR tensors and nodes, plus a
//! little provenance (which nodes came from a BatchNormalization) that the
//! fusion passes need. Each ONNX value name maps to a [`Value`]: a folded
//! constant, an activation with its [`Layout`], or one of the two
//! "pending" forms (a Pad waiting for its Conv, a QuantizeLinear waiting for
//! its DequantizeLinear) that must be absorbed by their consumer.

use anyhow::{bail, Result};

use crate::ir::{Node, Op, Tensor, TensorId};

use super::fold::Const;
use super::layout::Layout;

/// An activation as seen by ONNX nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct Act {
    /// The IR tensor holding it (several ONNX values may share one when a
    /// Transpose or Identity is free).
    pub id: TensorId,
    /// ONNX (logical) shape, batch 1.
    pub shape: Vec<usize>,
    /// How the logical elements sit in the IR tensor.
    pub layout: Layout,
}

/// What an ONNX value name stands for during import.
#[derive(Debug, Clone)]
pub enum Value {
    /// A value known at import time (weights, shapes).
    Const(Const),
    /// A run-time tensor.
    Act(Act),
    /// The output of a zero-padding `Pad` node (ONNX-order pads
    /// `[begin…, end…]`), to be folded into the Conv that reads it.
    Padded {
        /// The unpadded input.
        act: Act,
        /// ONNX pads, `2 × rank` values.
        pads: Vec<usize>,
        /// The Pad node, for error messages.
        node: String,
    },
    /// The output of `QuantizeLinear` on an activation; the matching
    /// `DequantizeLinear` turns it back into the activation. Calibration
    /// chooses sturdy's own ranges, so the pair itself is dropped — but its
    /// saturation is kept as a clamp (quantizers remove a Relu/ReLU6 whose
    /// effect the QDQ range already has).
    Quantized {
        /// The float activation.
        act: Act,
        /// The QuantizeLinear node, for error messages.
        node: String,
        /// Scale, as the QuantizeLinear reads it.
        scale: Const,
        /// Zero point (its element type is the quantized type), if given.
        zero_point: Option<Const>,
        /// `[lo, hi]` the pair saturates to (`None`: no finite bound known).
        bounds: Option<(f32, f32)>,
    },
}

impl Value {
    /// The activation, or an error explaining why this value is not one
    /// `what` can consume.
    pub fn act(&self, what: &str) -> Result<Act> {
        match self {
            Value::Act(a) => Ok(a.clone()),
            Value::Const(_) => bail!("{what} on a constant input is not supported here"),
            Value::Padded { node, .. } => bail!(
                "Pad node '{node}' feeds {what}: sturdy only folds a zero Pad into a following Conv"
            ),
            Value::Quantized { node, .. } => bail!(
                "QuantizeLinear node '{node}' feeds {what}: only a DequantizeLinear may read a quantized activation"
            ),
        }
    }

    /// The constant, if this value is one.
    pub fn as_const(&self) -> Option<&Const> {
        match self {
            Value::Const(c) => Some(c),
            _ => None,
        }
    }
}

/// A draft IR node with its provenance.
#[derive(Debug, Clone)]
pub struct DraftNode {
    /// The node as it will appear in the IR.
    pub node: Node,
    /// Name of the BatchNormalization this Mul/Add came from (it must be
    /// folded into a Conv/FC by the end of import).
    pub from_bn: Option<String>,
}

/// The IR graph under construction.
#[derive(Debug, Default)]
pub struct Draft {
    /// Tensors (activations and constants), storage shapes.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution order.
    pub nodes: Vec<DraftNode>,
}

impl Draft {
    /// Adds an activation tensor.
    pub fn activation(&mut self, name: impl Into<String>, shape: Vec<usize>) -> TensorId {
        self.tensors.push(Tensor {
            name: name.into(),
            shape,
            value: None,
        });
        self.tensors.len() - 1
    }

    /// Adds a constant tensor (values in storage order).
    pub fn constant(
        &mut self,
        name: impl Into<String>,
        shape: Vec<usize>,
        value: Vec<f32>,
    ) -> TensorId {
        self.tensors.push(Tensor {
            name: name.into(),
            shape,
            value: Some(value),
        });
        self.tensors.len() - 1
    }

    /// Emits `op` reading `input` and returns its output as an activation
    /// of ONNX shape `shape` held in `layout` (the storage shape follows).
    pub fn node_act(
        &mut self,
        name: &str,
        op: Op,
        input: TensorId,
        out_name: &str,
        shape: Vec<usize>,
        layout: Layout,
    ) -> Act {
        let id = self.node(
            name,
            op,
            vec![input],
            out_name,
            layout.storage_shape(&shape),
        );
        Act { id, shape, layout }
    }

    /// Appends a node writing a new activation tensor named `out_name` with
    /// storage shape `out_shape`; returns that tensor.
    pub fn node(
        &mut self,
        name: impl Into<String>,
        op: Op,
        inputs: Vec<TensorId>,
        out_name: impl Into<String>,
        out_shape: Vec<usize>,
    ) -> TensorId {
        let output = self.activation(out_name, out_shape);
        self.nodes.push(DraftNode {
            node: Node {
                name: name.into(),
                op,
                inputs,
                output,
            },
            from_bn: None,
        });
        output
    }

    /// Storage shape of tensor `id`.
    pub fn shape(&self, id: TensorId) -> &[usize] {
        &self.tensors[id].shape
    }

    fn tensor_name(&self, id: TensorId) -> String {
        self.tensors[id].name.clone()
    }

    /// A tensor with the same bytes under a new storage shape: the tensor
    /// itself when the shape is unchanged, else an `Op::Reshape`.
    pub fn reshape_storage(
        &mut self,
        id: TensorId,
        shape: Vec<usize>,
        node: &str,
        out_name: String,
    ) -> TensorId {
        if self.shape(id) == shape.as_slice() {
            id
        } else {
            self.node(node.to_string(), Op::Reshape, vec![id], out_name, shape)
        }
    }

    /// A storage-order transpose (`output dim k = input dim perm[k]`).
    pub fn transpose_storage(
        &mut self,
        id: TensorId,
        perm: Vec<usize>,
        node: &str,
        out_name: String,
    ) -> TensorId {
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape(id)[p]).collect();
        self.node(
            node.to_string(),
            Op::Transpose { perm },
            vec![id],
            out_name,
            shape,
        )
    }

    /// The same activation with [`Layout::Plain`] (storage in ONNX order),
    /// adding the Transpose/Reshape nodes that needs.
    pub fn to_plain(&mut self, act: &Act, node: &str) -> Act {
        if act.layout == Layout::Plain {
            return act.clone();
        }
        let base = self.tensor_name(act.id);
        let plain_shape = act.shape.clone();
        let id = if act.layout.is_trivial(&act.shape) {
            self.reshape_storage(
                act.id,
                plain_shape.clone(),
                &format!("{node}/to_nchw"),
                format!("{base}/nchw"),
            )
        } else {
            match act.layout {
                Layout::ChannelsLast if act.shape.len() == 4 => self.transpose_storage(
                    act.id,
                    vec![0, 3, 1, 2],
                    &format!("{node}/to_nchw"),
                    format!("{base}/nchw"),
                ),
                Layout::ChannelsLast => {
                    // [N, 1, W, C] → [N, C, 1, W] → [N, C, W].
                    let t = self.transpose_storage(
                        act.id,
                        vec![0, 3, 1, 2],
                        &format!("{node}/to_ncw"),
                        format!("{base}/nc1w"),
                    );
                    self.reshape_storage(
                        t,
                        plain_shape.clone(),
                        &format!("{node}/to_ncw_reshape"),
                        format!("{base}/ncw"),
                    )
                }
                Layout::FlattenedNhwc { c, h, w } => {
                    let m = self.reshape_storage(
                        act.id,
                        vec![1, h, w, c],
                        &format!("{node}/unflatten"),
                        format!("{base}/nhwc"),
                    );
                    let t = self.transpose_storage(
                        m,
                        vec![0, 3, 1, 2],
                        &format!("{node}/to_nchw"),
                        format!("{base}/nchw"),
                    );
                    self.reshape_storage(
                        t,
                        plain_shape.clone(),
                        &format!("{node}/reflatten"),
                        format!("{base}/flat"),
                    )
                }
                Layout::Plain => act.id,
            }
        };
        Act {
            id,
            shape: plain_shape,
            layout: Layout::Plain,
        }
    }

    /// The same rank-3/4 activation with [`Layout::ChannelsLast`], adding the
    /// Transpose/Reshape nodes that needs.
    pub fn to_channels_last(&mut self, act: &Act, node: &str) -> Result<Act> {
        let rank = act.shape.len();
        if !(rank == 3 || rank == 4) {
            bail!(
                "expected a 3-D or 4-D feature map, got shape {:?}",
                act.shape
            );
        }
        if act.layout == Layout::ChannelsLast {
            return Ok(act.clone());
        }
        let act = self.to_plain(act, node);
        let base = self.tensor_name(act.id);
        let cl_shape = Layout::ChannelsLast.storage_shape(&act.shape);
        let id = if Layout::ChannelsLast.is_trivial(&act.shape) {
            self.reshape_storage(
                act.id,
                cl_shape,
                &format!("{node}/to_nhwc"),
                format!("{base}/nhwc"),
            )
        } else if rank == 4 {
            self.transpose_storage(
                act.id,
                vec![0, 2, 3, 1],
                &format!("{node}/to_nhwc"),
                format!("{base}/nhwc"),
            )
        } else {
            let t = self.transpose_storage(
                act.id,
                vec![0, 2, 1],
                &format!("{node}/to_nwc"),
                format!("{base}/nwc"),
            );
            self.reshape_storage(
                t,
                cl_shape,
                &format!("{node}/to_nwc_reshape"),
                format!("{base}/n1wc"),
            )
        };
        Ok(Act {
            id,
            shape: act.shape,
            layout: Layout::ChannelsLast,
        })
    }

    /// Brings `b` into `a`'s layout (both have the same ONNX shape) so an
    /// elementwise op can pair their storage element by element.
    pub fn match_layout(&mut self, a: &Act, b: &Act, node: &str) -> Result<(Act, Act)> {
        if a.layout == b.layout {
            return Ok((a.clone(), b.clone()));
        }
        Ok(match a.layout {
            Layout::ChannelsLast => {
                let b = self.to_channels_last(b, node)?;
                (a.clone(), b)
            }
            Layout::Plain => (a.clone(), self.to_plain(b, node)),
            Layout::FlattenedNhwc { .. } => (self.to_plain(a, node), self.to_plain(b, node)),
        })
    }
}
