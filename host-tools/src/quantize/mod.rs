//! Post-training quantization: float graph + calibration samples → artifact.
//!
//! 1. `calibrate` measures every activation's range (min/max or percentile);
//! 2. [`assign_qparams`] turns ranges into int8 scales, sharing them where a
//!    kernel requires it (pools, transposes and reshapes keep their input's
//!    quantization; softmax, sigmoid and tanh have fixed output scales);
//! 3. `lower::lower` quantizes weights per channel — int8, or int4 (W4A8)
//!    where [`QuantizeOptions::weight_bits`] says so, scaled by
//!    [`clip`]'s search and with [`bias_correction`] — and emits the records;
//! 4. [`guards::measure`] runs the integer model over the calibration set
//!    and records each op's activation guard range (GUARDS section).
//!
//! [`emaq`] replaces step 1 for long-tailed, multi-domain calibration data
//! (and adds input alignment, logit adjustment and mixed int4/int8).

pub mod aged_calibration;
pub mod bias_correction;
pub mod bits;
mod calibrate;
pub mod clip;
pub mod emaq;
pub mod guards;
mod lower;
mod observer;
pub mod scales;
mod tables;

pub use bits::WeightBits;
pub use calibrate::RangeMethod;

use crate::artifact_writer::QParams;
use crate::ir::{Graph, Op};
use crate::meta::{CalibrationMeta, IoMeta, Meta, PlanMeta};
use crate::{float_exec, npy, onnx};
use anyhow::{ensure, Context, Result};
use std::path::Path;

/// How [`quantize_with`] quantizes a graph.
#[derive(Debug, Clone, Copy)]
pub struct QuantizeOptions<'a> {
    /// How activation ranges are chosen from the calibration samples.
    pub method: RangeMethod,
    /// Weight width per IR node (indexed like `Graph::nodes`; only Conv
    /// and FC nodes read their entry).
    pub weight_bits: &'a [WeightBits],
}

/// The whole `quantize` job from files with int8 weights: imports the ONNX
/// `model`, reads the calibration samples in `calib` (model input layout,
/// stacked on axis 0), and returns the artifact bytes. Errors name the file
/// at fault.
pub fn quantize_onnx(model: &Path, calib: &Path, method: RangeMethod) -> Result<Vec<u8>> {
    quantize_onnx_bits(model, calib, method, WeightBits::Int8)
}

/// Imports the ONNX `model` and reads the calibration samples in `calib`
/// (model input layout, stacked on axis 0) into storage layout; also
/// returns the model's file name for the metadata.
pub fn load_calibration(model: &Path, calib: &Path) -> Result<(Graph, Vec<Vec<f32>>, String)> {
    let graph = onnx::import(model)?;
    let calib = npy::read_samples(calib, &graph.onnx_input_shape)?;
    let samples: Vec<Vec<f32>> = calib
        .samples
        .iter()
        .map(|s| float_exec::to_storage(graph.input_layout, &graph.onnx_input_shape, s))
        .collect();
    let source = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((graph, samples, source))
}

/// [`quantize_onnx`] with every Conv/FC layer's weights at `bits`.
pub fn quantize_onnx_bits(
    model: &Path,
    calib: &Path,
    method: RangeMethod,
    bits: WeightBits,
) -> Result<Vec<u8>> {
    let (graph, samples, source) = load_calibration(model, calib)?;
    let options = QuantizeOptions {
        method,
        weight_bits: &bits.uniform(&graph),
    };
    quantize_with(&graph, &samples, &options, &source)
        .with_context(|| format!("quantizing {}", model.display()))
}

/// [`quantize_onnx`] with EmaQ-LT ([`emaq::quantize_emaq`]): `inputs`
/// carries the calibration labels, domains and prior.
pub fn quantize_onnx_emaq(
    model: &Path,
    calib: &Path,
    inputs: &emaq::EmaqInputs,
) -> Result<Vec<u8>> {
    let (graph, samples, source) = load_calibration(model, calib)?;
    emaq::quantize_emaq(&graph, &samples, inputs, &source)
        .with_context(|| format!("quantizing {} with EmaQ-LT", model.display()))
}

/// Quantizes `graph` with int8 weights using `samples` (each already in
/// storage layout) and returns the artifact bytes. `source` names the model
/// in the metadata.
pub fn quantize(
    graph: &Graph,
    samples: &[Vec<f32>],
    method: RangeMethod,
    source: &str,
) -> Result<Vec<u8>> {
    let options = QuantizeOptions {
        method,
        weight_bits: &WeightBits::Int8.uniform(graph),
    };
    quantize_with(graph, samples, &options, source)
}

/// [`quantize`] with each node's weight width from `options`.
pub fn quantize_with(
    graph: &Graph,
    samples: &[Vec<f32>],
    options: &QuantizeOptions<'_>,
    source: &str,
) -> Result<Vec<u8>> {
    ensure!(!samples.is_empty(), "the calibration set is empty");
    let method = options.method;
    let ranges = calibrate::calibrate(graph, samples, method)?;
    let (method_name, percentile) = match method {
        RangeMethod::MinMax => ("minmax", None),
        RangeMethod::Percentile(p) => ("percentile", Some(p)),
    };
    let calibration = CalibrationMeta {
        method: method_name.into(),
        percentile,
        samples: samples.len(),
        emaq: None,
    };
    let means = bias_correction::input_means(graph, samples, options.weight_bits)?;
    let plain = build(
        graph,
        &ranges,
        options.weight_bits,
        &means,
        calibration,
        source,
    )?
    .bytes;
    let guards = guards::measure(&plain, samples)?;
    crate::artifact_writer::with_guards(&plain, &guards)
}

/// An artifact built from chosen ranges, before guards and calibration
/// sections are attached.
pub struct Built {
    /// The artifact (graph, weights, metadata).
    pub bytes: Vec<u8>,
    /// IR tensor → its record in the artifact (activations only).
    pub records: Vec<Option<u16>>,
}

/// Lowers `graph` with activation `ranges` (one per IR tensor), weight
/// widths `weight_bits` (one per IR node) and the int4 layers' input means
/// for bias correction ([`bias_correction::input_means`]), and attaches the
/// metadata: the shared last step of every quantization method.
pub fn build(
    graph: &Graph,
    ranges: &[(f32, f32)],
    weight_bits: &[WeightBits],
    means: &[Option<Vec<f64>>],
    calibration: CalibrationMeta,
    source: &str,
) -> Result<Built> {
    let q = assign_qparams(graph, ranges);
    let lowered = lower::lower(graph, &q, weight_bits, means)?;
    let io = |t: usize, onnx_shape: &[usize], layout| IoMeta {
        name: graph.tensors[t].name.clone(),
        onnx_shape: onnx_shape.to_vec(),
        layout,
    };
    let meta = Meta {
        producer: format!("sturdy {}", env!("CARGO_PKG_VERSION")),
        source: source.to_string(),
        input: io(graph.input, &graph.onnx_input_shape, graph.input_layout),
        output: io(graph.output, &graph.onnx_output_shape, graph.output_layout),
        ops: lowered.ops,
        calibration,
        plan: PlanMeta {
            arena_bytes: lowered.plan.peak,
            greedy_by_size_bytes: lowered.plan.greedy_by_size_peak,
            lower_bound_bytes: lowered.plan.lower_bound,
        },
        aging: None,
    };
    let meta_json = serde_json::to_vec(&meta)?;
    let bytes =
        lowered
            .builder
            .finish(lowered.input, lowered.output, lowered.plan.peak, &meta_json)?;
    Ok(Built {
        bytes,
        records: lowered.records,
    })
}

/// int8 parameters of every tensor from its calibrated range, then the
/// sharing rules of the kernels applied in execution order.
pub fn assign_qparams(graph: &Graph, ranges: &[(f32, f32)]) -> Vec<QParams> {
    let mut q: Vec<QParams> = ranges
        .iter()
        .map(|&(lo, hi)| scales::activation_qparams(lo, hi))
        .collect();
    for node in &graph.nodes {
        match forced_qparams(&node.op) {
            Some(Forced::Input) => q[node.output] = q[node.inputs[0]],
            Some(Forced::Fixed(fixed)) => q[node.output] = fixed,
            None => {}
        }
    }
    q
}

/// Why an op's output quantization is not chosen from its range.
pub enum Forced {
    /// The kernel keeps its input's quantization (pools, transposes, reshapes).
    Input,
    /// A table kernel's fixed output scale (softmax, sigmoid, tanh).
    Fixed(QParams),
}

/// The quantization `op`'s output is forced to, if any: the ops whose
/// calibrated range is not a choice.
pub fn forced_qparams(op: &Op) -> Option<Forced> {
    match op {
        Op::MaxPool(_) | Op::AveragePool(_) | Op::Transpose { .. } | Op::Reshape => {
            Some(Forced::Input)
        }
        Op::Softmax => Some(Forced::Fixed(tables::SOFTMAX_OUTPUT)),
        Op::LogSoftmax => Some(Forced::Fixed(tables::LOG_SOFTMAX_OUTPUT)),
        Op::Sigmoid => Some(Forced::Fixed(tables::SIGMOID_OUTPUT)),
        Op::Tanh => Some(Forced::Fixed(tables::TANH_OUTPUT)),
        _ => None,
    }
}
