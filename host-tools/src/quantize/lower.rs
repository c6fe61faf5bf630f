//! Lowers a calibrated float graph to artifact records: one runtime op per
//! IR node, reshapes as aliases of the same arena buffer, constants
//! quantized into the weights section, and a static arena plan.

use super::bias_correction::corrected_bias;
use super::bits::WeightBits;
use super::scales::*;
use super::tables;
use crate::artifact_writer::{ArtifactBuilder, QParams};
use crate::ir::{Activation, Graph, Node, Op, TensorId};
use crate::meta::OpMeta;
use crate::planner::{self, Buffer, Plan};
use anyhow::{bail, ensure, Context, Result};
use sturdy_runtime::format::*;

/// TFLite's headroom shift for int8 Add.
const ADD_LEFT_SHIFT: i32 = 20;

/// The lowered artifact before its metadata is attached.
pub struct Lowered {
    /// Records and constants.
    pub builder: ArtifactBuilder,
    /// Record of the model input.
    pub input: u16,
    /// Record of the model output.
    pub output: u16,
    /// The arena plan.
    pub plan: Plan,
    /// One entry per emitted op.
    pub ops: Vec<OpMeta>,
    /// IR tensor → its record (activations; `None` for constants).
    pub records: Vec<Option<u16>>,
}

struct Lowering<'g> {
    graph: &'g Graph,
    q: &'g [QParams],
    builder: ArtifactBuilder,
    /// IR tensor → (record, buffer) for activations.
    activation: Vec<Option<(u16, usize)>>,
    buffers: Vec<Buffer>,
    buffer_records: Vec<Vec<u16>>,
    ops: Vec<OpMeta>,
}

/// Lowers `graph` with `q[t]` the quantization of every activation tensor
/// `t`, `weight_bits[n]` the weight width of node `n` (Conv/FC only) and
/// `input_means[n]` its input channel means where its int4 biases are
/// corrected ([`super::bias_correction`]).
pub fn lower(
    graph: &Graph,
    q: &[QParams],
    weight_bits: &[WeightBits],
    input_means: &[Option<Vec<f64>>],
) -> Result<Lowered> {
    ensure!(
        weight_bits.len() == graph.nodes.len() && input_means.len() == graph.nodes.len(),
        "{} weight widths and {} input means for {} nodes",
        weight_bits.len(),
        input_means.len(),
        graph.nodes.len()
    );
    let mut l = Lowering {
        graph,
        q,
        builder: ArtifactBuilder::new(),
        activation: vec![None; graph.tensors.len()],
        buffers: Vec::new(),
        buffer_records: Vec::new(),
        ops: Vec::new(),
    };
    l.new_buffer(graph.input, 0)?;
    for (n, node) in graph.nodes.iter().enumerate() {
        l.node(node, weight_bits[n], input_means[n].as_deref())
            .with_context(|| format!("lowering node '{}'", node.name))?;
    }
    ensure!(
        !l.ops.is_empty(),
        "the model computes nothing (no ops after import)"
    );
    let (input, _) = l.activation(graph.input)?;
    let (output, out_buffer) = l.activation(graph.output)?;
    l.buffers[out_buffer].last_op = l.ops.len() - 1;

    let plan = planner::plan(&l.buffers, ALIGN);
    for (records, &offset) in l.buffer_records.iter().zip(&plan.offsets) {
        for &r in records {
            l.builder.set_arena_offset(r, offset)?;
        }
    }
    Ok(Lowered {
        builder: l.builder,
        input,
        output,
        plan,
        ops: l.ops,
        records: l.activation.iter().map(|a| a.map(|(r, _)| r)).collect(),
    })
}

fn act_params(act: Activation, q: QParams) -> [i32; 2] {
    let (lo, hi) = activation_range(act, q);
    [lo, hi]
}

fn act_suffix(act: Activation) -> String {
    match act {
        Activation::None => String::new(),
        Activation::Relu => "+Relu".into(),
        Activation::Clip { min, max } => format!("+Clip({min},{max})"),
    }
}

impl<'g> Lowering<'g> {
    fn shape(&self, t: TensorId) -> &'g [usize] {
        &self.graph.tensors[t].shape
    }

    fn new_buffer(&mut self, t: TensorId, op: usize) -> Result<u16> {
        let record = self.builder.add_activation(self.shape(t), self.q[t])?;
        let size = self.shape(t).iter().product();
        self.buffers.push(Buffer {
            size,
            first_op: op,
            last_op: op,
        });
        self.buffer_records.push(vec![record]);
        self.activation[t] = Some((record, self.buffers.len() - 1));
        Ok(record)
    }

    fn activation(&self, t: TensorId) -> Result<(u16, usize)> {
        self.activation[t].with_context(|| {
            format!(
                "tensor '{}' is used before it is computed",
                self.graph.tensors[t].name
            )
        })
    }

    /// The record of activation input `t`, extending its buffer's life to op `op`.
    fn read(&mut self, t: TensorId, op: usize) -> Result<u16> {
        let (record, buffer) = self.activation(t)?;
        let b = &mut self.buffers[buffer];
        b.last_op = b.last_op.max(op);
        Ok(record)
    }

    fn is_constant(&self, t: TensorId) -> bool {
        self.graph.tensors[t].value.is_some()
    }

    fn emit(
        &mut self,
        node: &Node,
        kind: u16,
        inputs: &[u16],
        params: &[i32],
        label: String,
    ) -> Result<()> {
        let op = self.ops.len();
        let output = self.new_buffer(node.output, op)?;
        self.builder.add_op(kind, inputs, output, params)?;
        self.ops.push(OpMeta {
            node: node.name.clone(),
            kind: label,
        });
        Ok(())
    }

    /// Weights (at `bits`), bias (corrected by `means` when given),
    /// multipliers and shifts of a Conv/FC node reading `x` with `groups`
    /// channel groups: its operands after the input.
    fn weight_operands(
        &mut self,
        node: &Node,
        (x, groups): (TensorId, usize),
        shape: &[usize],
        (weights, bias): (&[f32], &[f32]),
        (bits, means): (WeightBits, Option<&[f64]>),
    ) -> Result<[u16; 4]> {
        let (qi, qo) = (self.q[x], self.q[node.output]);
        let channels = shape.first().copied().unwrap_or(1);
        let (codes, w_scales) = bits.quantize(weights, channels);
        let bias = match means {
            Some(m) => corrected_bias(bias, (weights, &codes, &w_scales), groups, m),
            None => bias.to_vec(),
        };
        let (mults, shifts) = channel_multipliers(qi.scale, &w_scales, qo.scale)?;
        let w = match bits {
            WeightBits::Int8 => {
                let no_q = QParams {
                    scale: 0.0,
                    zero_point: 0,
                };
                self.builder.add_i8(shape, &codes, no_q)?
            }
            WeightBits::Int4 => self.builder.add_i4(shape, &codes)?,
        };
        Ok([
            w,
            self.builder
                .add_i32(&[channels], &quantize_bias(&bias, qi.scale, &w_scales))?,
            self.builder.add_i32(&[channels], &mults)?,
            self.builder.add_i32(&[channels], &shifts)?,
        ])
    }

    fn node(&mut self, node: &Node, bits: WeightBits, means: Option<&[f64]>) -> Result<()> {
        let op = self.ops.len();
        let x = node.inputs.first().copied().context("node has no input")?;
        match &node.op {
            Op::Reshape => self.alias(node, x),
            Op::Conv(c) => {
                let xr = self.read(x, op)?;
                let [_, kh, kw, _] = c.weight_shape;
                let [w, b, m, s] = self.weight_operands(
                    node,
                    (x, c.groups),
                    &c.weight_shape,
                    (&c.weights, &c.bias),
                    (bits, means),
                )?;
                let inputs = [xr, w, b, m, s];
                let [amin, amax] = act_params(c.act, self.q[node.output]);
                let p = [
                    c.stride[0],
                    c.stride[1],
                    c.pads[0],
                    c.pads[1],
                    c.dilation[0],
                    c.dilation[1],
                    c.groups,
                ];
                let mut params: Vec<i32> = p
                    .iter()
                    .map(|&v| i32::try_from(v))
                    .collect::<Result<_, _>>()?;
                params.extend([amin, amax]);
                let label = format!(
                    "Conv2d {kh}x{kw}/{} groups={}{}",
                    c.stride[0],
                    c.groups,
                    act_suffix(c.act)
                );
                self.emit(node, OP_CONV2D, &inputs, &params, label)
            }
            Op::FullyConnected(f) => {
                let xr = self.read(x, op)?;
                let o = f.out_features;
                let shape = [o, f.in_features];
                let [w, b, m, s] = self.weight_operands(
                    node,
                    (x, 1),
                    &shape,
                    (&f.weights, &f.bias),
                    (bits, means),
                )?;
                let label = format!("FullyConnected {}→{o}{}", f.in_features, act_suffix(f.act));
                self.emit(
                    node,
                    OP_FULLY_CONNECTED,
                    &[xr, w, b, m, s],
                    &act_params(f.act, self.q[node.output]),
                    label,
                )
            }
            Op::Add(act) | Op::Mul(act) => self.binary(node, *act),
            Op::MaxPool(p) | Op::AveragePool(p) => {
                let xr = self.read(x, op)?;
                let (kind, name) = match node.op {
                    Op::MaxPool(_) => (OP_MAX_POOL, "MaxPool"),
                    _ => (OP_AVERAGE_POOL, "AveragePool"),
                };
                let g = [
                    p.kernel[0],
                    p.kernel[1],
                    p.stride[0],
                    p.stride[1],
                    p.pads[0],
                    p.pads[1],
                ];
                let mut params: Vec<i32> = g
                    .iter()
                    .map(|&v| i32::try_from(v))
                    .collect::<Result<_, _>>()?;
                params.extend([-128, 127, p.count_include_pad as i32]);
                let label = format!("{name} {}x{}/{}", p.kernel[0], p.kernel[1], p.stride[0]);
                self.emit(node, kind, &[xr], &params, label)
            }
            Op::Softmax => {
                let xr = self.read(x, op)?;
                let table = self
                    .builder
                    .add_u32(&[256], &tables::softmax_exp_table(self.q[x].scale))?;
                self.emit(node, OP_SOFTMAX, &[xr, table], &[], "Softmax".into())
            }
            Op::LogSoftmax => {
                let xr = self.read(x, op)?;
                let s_in = self.q[x].scale as f64;
                let s_out = self.q[node.output].scale as f64;
                let table = self
                    .builder
                    .add_u32(&[256], &tables::softmax_exp_table(self.q[x].scale))?;
                // One input step in Q16 log2 units, and Q16 log2 units →
                // output steps (see sturdy_runtime::kernels::log_softmax).
                let step = (65536.0 * s_in / std::f64::consts::LN_2).round();
                anyhow::ensure!(
                    step <= sturdy_runtime::kernels::LOG_SOFTMAX_MAX_STEP as f64,
                    "node '{}': LogSoftmax input scale {s_in} is too large",
                    node.name
                );
                let (m, e) =
                    super::scales::quantize_multiplier(std::f64::consts::LN_2 / (65536.0 * s_out))?;
                self.emit(
                    node,
                    OP_SOFTMAX,
                    &[xr, table],
                    &[1, step as i32, m, e],
                    "LogSoftmax".into(),
                )
            }
            Op::Sigmoid => self.lut(node, x, |v| 1.0 / (1.0 + (-v).exp()), "Sigmoid"),
            Op::Tanh => self.lut(node, x, f32::tanh, "Tanh"),
            Op::Clamp(act) => {
                let act = *act;
                self.lut(node, x, move |v| act.apply(v), "Clamp")
            }
            Op::Concat { axis } => {
                let qo = self.q[node.output];
                let mut inputs = Vec::new();
                let mut rescale = Vec::new();
                for &t in &node.inputs {
                    ensure!(
                        !self.is_constant(t),
                        "constant operands of Concat are not supported"
                    );
                    inputs.push(self.read(t, op)?);
                    let (m, e) = quantize_multiplier(self.q[t].scale as f64 / qo.scale as f64)?;
                    rescale.extend([m, e]);
                }
                ensure!(
                    inputs.len() < MAX_OP_INPUTS,
                    "Concat of {} inputs (at most {})",
                    inputs.len(),
                    MAX_OP_INPUTS - 1
                );
                inputs.push(self.builder.add_i32(&[node.inputs.len(), 2], &rescale)?);
                self.emit(
                    node,
                    OP_CONCAT,
                    &inputs,
                    &[i32::try_from(*axis)?],
                    format!("Concat axis={axis}"),
                )
            }
            Op::Transpose { perm } => {
                let xr = self.read(x, op)?;
                let rank = perm.len();
                ensure!(rank <= 4, "Transpose of rank {rank} (at most 4)");
                let lead = 4 - rank;
                let mut p4 = [0i32, 1, 2, 3];
                for (k, &axis) in perm.iter().enumerate() {
                    p4[lead + k] = (lead + axis) as i32;
                }
                self.emit(
                    node,
                    OP_TRANSPOSE,
                    &[xr],
                    &p4,
                    format!("Transpose {perm:?}"),
                )
            }
        }
    }

    /// A reshape: a second record over the same arena buffer.
    fn alias(&mut self, node: &Node, x: TensorId) -> Result<()> {
        let (_, buffer) = self.activation(x)?;
        let out = node.output;
        ensure!(
            self.shape(out).iter().product::<usize>() == self.shape(x).iter().product::<usize>(),
            "reshape changes the element count"
        );
        let record = self.builder.add_activation(self.shape(out), self.q[x])?;
        self.buffer_records[buffer].push(record);
        self.activation[out] = Some((record, buffer));
        Ok(())
    }

    fn lut(&mut self, node: &Node, x: TensorId, f: impl Fn(f32) -> f32, name: &str) -> Result<()> {
        let xr = self.read(x, self.ops.len())?;
        let table = tables::lut(f, self.q[x], self.q[node.output]);
        let no_q = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        let tr = self.builder.add_i8(&[256], &table, no_q)?;
        self.emit(node, OP_LUT, &[xr, tr], &[], format!("{name} (table)"))
    }

    /// An int8 operand: an activation, or a constant quantized per tensor.
    fn operand(&mut self, t: TensorId, op: usize) -> Result<(u16, QParams)> {
        match &self.graph.tensors[t].value {
            None => Ok((self.read(t, op)?, self.q[t])),
            Some(values) => {
                let (lo, hi) = values
                    .iter()
                    .fold((0f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let q = activation_qparams(lo, hi);
                let codes: Vec<i8> = values.iter().map(|&v| quantize_value(v, q)).collect();
                let shape = self.graph.tensors[t].shape.clone();
                Ok((self.builder.add_i8(&shape, &codes, q)?, q))
            }
        }
    }

    fn binary(&mut self, node: &Node, act: Activation) -> Result<()> {
        let op = self.ops.len();
        ensure!(node.inputs.len() == 2, "expected two operands");
        let (mut a, mut b) = (node.inputs[0], node.inputs[1]);
        if self.is_constant(a) {
            std::mem::swap(&mut a, &mut b);
        }
        ensure!(
            !self.is_constant(a),
            "both operands are constants (should have been folded)"
        );
        let (a_len, b_len) = (
            self.shape(a).iter().product::<usize>(),
            self.shape(b).iter().product::<usize>(),
        );
        let channels = self.shape(a).last().copied().unwrap_or(1);
        let broadcast = if b_len == a_len {
            0
        } else if b_len == 1 {
            2
        } else if b_len == channels {
            1
        } else {
            bail!(
                "operand shapes {:?} and {:?} do not broadcast",
                self.shape(a),
                self.shape(b)
            );
        };
        let (ar, qa) = self.operand(a, op)?;
        let (br, qb) = self.operand(b, op)?;
        let qo = self.q[node.output];
        let [amin, amax] = act_params(act, qo);
        let (kind, params, name) = if matches!(node.op, Op::Add(_)) {
            let twice_max = 2.0 * (qa.scale as f64).max(qb.scale as f64);
            let (m1, e1) = quantize_multiplier(qa.scale as f64 / twice_max)?;
            let (m2, e2) = quantize_multiplier(qb.scale as f64 / twice_max)?;
            let out_real = twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * qo.scale as f64);
            let (mo, eo) = quantize_multiplier(out_real)?;
            (
                OP_ADD,
                vec![
                    ADD_LEFT_SHIFT,
                    m1,
                    e1,
                    m2,
                    e2,
                    mo,
                    eo,
                    amin,
                    amax,
                    broadcast,
                ],
                "Add",
            )
        } else {
            let (mo, eo) =
                quantize_multiplier(qa.scale as f64 * qb.scale as f64 / qo.scale as f64)?;
            (OP_MUL, vec![mo, eo, amin, amax, broadcast], "Mul")
        };
        self.emit(
            node,
            kind,
            &[ar, br],
            &params,
            format!("{name}{}", act_suffix(act)),
        )
    }
}
