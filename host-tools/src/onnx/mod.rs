//! ONNX → float IR import.
//!
//! [`import`] reads the protobuf (through tract-onnx's decoder), folds
//! everything that is constant once the batch is 1, walks the remaining
//! nodes in order and emits [`crate::ir`] nodes in storage (NHWC) layout,
//! then fuses what the runtime computes in one kernel (BatchNorm, bias adds,
//! per-channel scales, ReLU/Clip). Anything it cannot map exactly is refused
//! with the file, the node and a hint — never silently dropped.
//!
//! Files: [`proto`] reads attributes and tensors, [`fold`] evaluates
//! constants, [`layout`] relates ONNX and storage order, [`builder`] holds
//! the draft IR, `ops`/`elementwise`/`shape_ops` translate nodes, [`fuse`]
//! runs the fusion passes and finishes the graph.

pub mod builder;
mod elementwise;
pub mod fold;
pub mod fuse;
pub mod layout;
mod ops;
pub mod proto;
mod shape_ops;

use std::collections::HashMap;
use std::path::Path;

use anyhow::{anyhow, bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;

use crate::ir::{Graph, IoLayout};
use builder::{Act, Draft, Value};
use fold::Const;
use layout::Layout;
use proto::Dim;

/// The ops sturdy translates (beyond pure constant folding), for the refusal
/// message.
pub const SUPPORTED_OPS: &str =
    "Conv (2-D and 1-D, groups, depthwise), Gemm, MatMul (constant weights), \
Add, Sub, Mul, Div (activation pairs or constant operands), Relu, Clip, Sigmoid, Tanh, Softmax, LogSoftmax, \
MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean/ReduceMax (over spatial axes), \
BatchNormalization (after Conv/Gemm), \
Pad (zero, before Conv), Concat, Flatten, Reshape, Squeeze, Unsqueeze, Transpose, Identity, \
Dropout, Cast, QuantizeLinear/DequantizeLinear, and shape arithmetic on constants";

/// Imports the ONNX model at `path` into the float IR (storage layout,
/// batch 1, constants folded, BN/bias/activations fused).
///
/// Errors name the file and, for node-level problems, the node and its op.
pub fn import(path: &Path) -> Result<Graph> {
    let file = path.display().to_string();
    let model = proto::load_model(path)?;
    let opset = proto::default_opset(&model);
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| anyhow!("{file}: the model has no graph"))?;
    let dir = path.parent().and_then(|p| p.to_str()).map(str::to_string);
    let mut imp = Importer {
        draft: Draft::default(),
        values: HashMap::new(),
        consumers: HashMap::new(),
        nodes: &graph.node,
        opset,
        output_name: String::new(),
    };
    for init in &graph.initializer {
        let c = proto::load_tensor(init, dir.as_deref())
            .with_context(|| format!("{file}: initializer '{}'", init.name))?;
        imp.values.insert(init.name.clone(), Value::Const(c));
    }
    for (i, n) in graph.node.iter().enumerate() {
        for input in n.input.iter().filter(|s| !s.is_empty()) {
            imp.consumers.entry(input.clone()).or_default().push(i);
        }
    }

    // The single run-time input.
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|v| !imp.values.contains_key(&v.name))
        .collect();
    ensure!(
        inputs.len() == 1,
        "{file}: sturdy runs models with exactly one input, this one has {} ({})",
        inputs.len(),
        inputs
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let input = inputs[0];
    let (elem, dims) = proto::value_type(input).with_context(|| format!("{file}: input"))?;
    ensure!(
        elem == 1,
        "{file}: input '{}' must be float32 (element type {elem})",
        input.name
    );
    let dims =
        dims.ok_or_else(|| anyhow!("{file}: input '{}' has no declared shape", input.name))?;
    let in_shape = input_shape(&dims).with_context(|| format!("{file}: input '{}'", input.name))?;
    let in_layout = if in_shape.len() == 4 && !imp.only_nhwc_transposes(&input.name) {
        Layout::ChannelsLast
    } else {
        Layout::Plain
    };
    let in_id = imp
        .draft
        .activation(input.name.clone(), in_layout.storage_shape(&in_shape));
    imp.values.insert(
        input.name.clone(),
        Value::Act(Act {
            id: in_id,
            shape: in_shape.clone(),
            layout: in_layout,
        }),
    );

    ensure!(
        graph.output.len() == 1,
        "{file}: sturdy runs models with exactly one output, this one has {}",
        graph.output.len()
    );
    let output = &graph.output[0];
    imp.output_name = output.name.clone();

    for (i, node) in graph.node.iter().enumerate() {
        let name = proto::node_name(node, i);
        imp.translate(node, &name)
            .with_context(|| format!("{file}: node '{name}' ({})", node.op_type))?;
    }

    let out_value = imp.values.get(&output.name).cloned().ok_or_else(|| {
        anyhow!(
            "{file}: output '{}' is not computed by any node",
            output.name
        )
    })?;
    let out_act = out_value
        .act("the graph output")
        .with_context(|| format!("{file}: output '{}'", output.name))?;
    let out_act = match (out_act.layout, out_act.shape.len()) {
        (Layout::Plain, _) | (Layout::ChannelsLast, 4) => out_act,
        _ => imp.draft.to_plain(&out_act, &output.name),
    };
    ensure!(
        out_act.id != in_id,
        "{file}: the model computes nothing (output = input)"
    );
    if let (_, Some(declared)) =
        proto::value_type(output).with_context(|| format!("{file}: output"))?
    {
        check_declared(&declared, &out_act.shape)
            .with_context(|| format!("{file}: output '{}'", output.name))?;
    }
    let output_layout = match out_act.layout {
        Layout::ChannelsLast => IoLayout::NchwAsNhwc,
        _ => IoLayout::AsIs,
    };
    let input_layout = match in_layout {
        Layout::ChannelsLast => IoLayout::NchwAsNhwc,
        _ => IoLayout::AsIs,
    };
    let draft = std::mem::take(&mut imp.draft);
    fuse::finish(
        draft,
        in_id,
        out_act.id,
        in_shape,
        out_act.shape,
        input_layout,
        output_layout,
    )
    .with_context(|| format!("{file}: fusing"))
}

/// Batch → 1: a symbolic or unit leading dim of a rank ≥ 2 input becomes 1;
/// every other dim must be known.
fn input_shape(dims: &[Dim]) -> Result<Vec<usize>> {
    ensure!(!dims.is_empty(), "scalar inputs are not supported");
    dims.iter()
        .enumerate()
        .map(|(i, d)| match (i, d) {
            (0, Dim::Symbolic) if dims.len() >= 2 => Ok(1),
            (0, Dim::Known(n)) if dims.len() >= 2 && *n != 1 => {
                bail!("batch dimension is {n}: sturdy runs one sample at a time (export with batch 1 or a symbolic batch)")
            }
            (_, Dim::Known(n)) => Ok(*n),
            (i, Dim::Symbolic) => bail!("dimension {i} is symbolic: only the batch may be"),
        })
        .collect()
}

fn check_declared(declared: &[Dim], computed: &[usize]) -> Result<()> {
    let fits = declared.len() == computed.len()
        && declared
            .iter()
            .zip(computed)
            .enumerate()
            .all(|(i, (d, &c))| match d {
                Dim::Known(n) => *n == c || (i == 0 && c == 1),
                Dim::Symbolic => true,
            });
    ensure!(
        fits,
        "declared shape {declared:?} differs from the computed {computed:?}"
    );
    Ok(())
}

/// Import state: the draft IR and what every ONNX value name stands for.
pub(crate) struct Importer<'a> {
    /// IR under construction.
    pub draft: Draft,
    /// ONNX value name → value.
    values: HashMap<String, Value>,
    /// ONNX value name → indices of the nodes reading it.
    consumers: HashMap<String, Vec<usize>>,
    nodes: &'a [NodeProto],
    /// Default-domain opset.
    pub opset: i64,
    /// Name of the graph output.
    pub output_name: String,
}

/// One node being translated, with its inputs resolved.
pub(crate) struct NodeCtx<'a> {
    /// The protobuf node.
    pub node: &'a NodeProto,
    /// Its printable name.
    pub name: &'a str,
    /// Resolved inputs (`None`: absent optional input).
    pub inputs: Vec<Option<Value>>,
}

impl NodeCtx<'_> {
    /// Input `i`, required.
    pub fn input(&self, i: usize) -> Result<&Value> {
        self.inputs
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("missing required input #{i}"))
    }

    /// Input `i` as an activation.
    pub fn act(&self, i: usize) -> Result<Act> {
        self.input(i)?.act(&self.node.op_type)
    }

    /// Input `i` as a constant (weights, shapes).
    pub fn konst(&self, i: usize) -> Result<&Const> {
        let v = self.input(i)?;
        v.as_const().ok_or_else(|| {
            anyhow!("input #{i} ('{}') must be a constant (weights, shape), but it is computed at run time", self.node.input[i])
        })
    }

    /// Optional input `i` as a constant.
    pub fn opt_konst(&self, i: usize) -> Result<Option<&Const>> {
        match self.inputs.get(i).and_then(Option::as_ref) {
            None => Ok(None),
            Some(_) => self.konst(i).map(Some),
        }
    }

    /// Name of output `i` (IR tensor name).
    pub fn out(&self, i: usize) -> String {
        self.node
            .output
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("{}:{i}", self.name))
    }
}

impl Importer<'_> {
    /// True when every consumer of `name` is `Transpose(perm = 0,3,1,2)` or
    /// a pure reshape (Reshape/Flatten/Squeeze/Unsqueeze): a tf2onnx NHWC
    /// input (behind a Transpose, or behind a Reshape when it has one
    /// channel), kept as is — storing it channels-last would only add a
    /// Transpose in front of those consumers.
    fn only_nhwc_transposes(&self, name: &str) -> bool {
        let Some(cons) = self.consumers.get(name) else {
            return false;
        };
        !cons.is_empty()
            && cons.iter().all(|&i| {
                let n = &self.nodes[i];
                match n.op_type.as_str() {
                    "Transpose" => {
                        proto::attr_ints(n, "perm").ok().flatten().as_deref() == Some(&[0, 3, 1, 2])
                    }
                    "Reshape" | "Flatten" | "Squeeze" | "Unsqueeze" => {
                        n.input.first().map(String::as_str) == Some(name)
                    }
                    _ => false,
                }
            })
    }

    /// True when value `name` is read only by Gemm/MatMul nodes (as their
    /// first operand) and is not the graph output: its FC consumers can
    /// absorb a flatten's reordering into their weights.
    pub fn only_fc_consumers(&self, name: &str) -> bool {
        if name == self.output_name {
            return false;
        }
        let Some(cons) = self.consumers.get(name) else {
            return false;
        };
        !cons.is_empty()
            && cons.iter().all(|&i| {
                let n = &self.nodes[i];
                matches!(n.op_type.as_str(), "Gemm" | "MatMul")
                    && n.input.first().map(String::as_str) == Some(name)
                    && n.input.iter().skip(1).all(|s| s != name)
            })
    }

    /// True when some node reads value `name`.
    pub fn is_used(&self, name: &str) -> bool {
        name == self.output_name || self.consumers.get(name).is_some_and(|c| !c.is_empty())
    }

    fn set(&mut self, name: &str, v: Value) {
        if !name.is_empty() {
            self.values.insert(name.to_string(), v);
        }
    }

    fn translate(&mut self, node: &NodeProto, name: &str) -> Result<()> {
        let op = node.op_type.as_str();
        if !(node.domain.is_empty() || node.domain == "ai.onnx") {
            bail!(unsupported(&format!("{}.{op}", node.domain), name));
        }
        let inputs = node
            .input
            .iter()
            .map(|n| {
                if n.is_empty() {
                    Ok(None)
                } else {
                    self.values.get(n).cloned().map(Some).ok_or_else(|| {
                        anyhow!("input '{n}' is not defined before this node (graph not topologically sorted, or an output sturdy does not produce)")
                    })
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let n = NodeCtx { node, name, inputs };
        let out0 = n.out(0);

        if op == "Constant" {
            let c = fold::constant_node(node, None)?;
            self.set(&out0, Value::Const(c));
            return Ok(());
        }
        let all_const = n.inputs.iter().flatten().all(|v| v.as_const().is_some());
        if all_const && fold::FOLDABLE.contains(&op) {
            let consts: Vec<Option<Const>> = n
                .inputs
                .iter()
                .map(|v| v.as_ref().and_then(|v| v.as_const().cloned()))
                .collect();
            let outs = fold::fold_node(node, name, &consts, self.opset)?;
            for (i, c) in outs.into_iter().enumerate() {
                self.set(&n.out(i), Value::Const(c));
            }
            return Ok(());
        }

        let value = match op {
            "Identity" | "Dropout" => {
                if op == "Dropout" && node.output.len() > 1 && self.is_used(&node.output[1]) {
                    bail!("the Dropout mask output is used; sturdy only runs inference graphs");
                }
                n.input(0)?.clone()
            }
            "Cast" => {
                let to = proto::attr_int(node, "to")?.unwrap_or(0);
                ensure!(
                    matches!(to, 1 | 10 | 11),
                    "Cast of an activation to a non-float type ({to}) is not supported"
                );
                Value::Act(n.act(0)?)
            }
            "Shape" | "Size" => {
                let dims = match n.input(0)? {
                    Value::Const(c) => c.dims.clone(),
                    Value::Act(a) | Value::Quantized { act: a, .. } => a.shape.clone(),
                    Value::Padded { act, pads, .. } => {
                        let r = act.shape.len();
                        act.shape
                            .iter()
                            .enumerate()
                            .map(|(i, d)| d + pads[i] + pads[i + r])
                            .collect()
                    }
                };
                Value::Const(if op == "Shape" {
                    fold::shape_of(node, &dims)?
                } else {
                    Const::new(
                        fold::Dt::Int,
                        vec![],
                        vec![dims.iter().product::<usize>() as f64],
                    )
                })
            }
            "Conv" => ops::conv(self, &n)?,
            "MaxPool" | "AveragePool" | "GlobalAveragePool" | "GlobalMaxPool" => {
                ops::pool(self, &n)?
            }
            "Gemm" => ops::gemm(self, &n)?,
            "MatMul" => ops::matmul(self, &n)?,
            "BatchNormalization" => ops::batch_norm(self, &n)?,
            "Relu" | "Clip" => elementwise::clamp(self, &n)?,
            "Sigmoid" | "Tanh" => elementwise::unary(self, &n)?,
            "Softmax" | "LogSoftmax" => elementwise::softmax(self, &n)?,
            "Add" | "Sub" | "Mul" | "Div" => elementwise::binary(self, &n)?,
            "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" => shape_ops::reshape_like(self, &n)?,
            "Transpose" => shape_ops::transpose(self, &n)?,
            "Concat" => shape_ops::concat(self, &n)?,
            "Pad" => shape_ops::pad(self, &n)?,
            "QuantizeLinear" => elementwise::quantize_linear(&n)?,
            "DequantizeLinear" => elementwise::dequantize_linear(self, &n)?,
            "ReduceMean" | "ReduceMax" => ops::reduce(self, &n)?,
            _ if all_const => bail!(
                "cannot evaluate {op} on constant inputs; {}",
                unsupported(op, name)
            ),
            _ => bail!(unsupported(op, name)),
        };
        for extra in node.output.iter().skip(1) {
            if !extra.is_empty() && self.is_used(extra) && op != "Dropout" {
                bail!("secondary output '{extra}' of {op} is used; sturdy only computes the first output");
            }
        }
        self.set(&out0, value);
        Ok(())
    }
}

/// The refusal message for an op sturdy cannot run.
fn unsupported(op: &str, node: &str) -> String {
    format!(
        "unsupported ONNX op '{op}' at node '{node}'. sturdy supports: {SUPPORTED_OPS}. \
Hint: re-export the model without it (e.g. ReLU instead of GELU/Erf, Conv1d instead of recurrent layers, \
fold the op into its neighbours), or open an issue with the model attached"
    )
}
