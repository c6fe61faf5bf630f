//! `sturdy quantize`: ONNX + calibration samples → int8 artifact.

use crate::fsutil::write_atomic;
use crate::quantize::{quantize, RangeMethod};
use crate::{float_exec, npy, onnx};
use anyhow::{Context, Result};
use clap::ValueEnum;
use std::path::PathBuf;

/// Quantize an ONNX model to an int8 sturdy artifact.
///
/// Weights become symmetric per-channel int8, activations asymmetric
/// per-tensor int8 with ranges measured on the calibration samples, and the
/// arena is planned statically. BatchNorm, Pad, the NHWC input Transpose of
/// tf2onnx exports and DequantizeLinear'd weights are folded at import; an
/// op sturdy does not support is refused with its node name.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// The float ONNX model.
    model: PathBuf,
    /// Calibration inputs: float32 .npy, samples stacked on axis 0, in the
    /// model's input layout and units (a few hundred training samples).
    #[arg(long)]
    calib: PathBuf,
    /// How activation ranges are chosen: `minmax` never clips,
    /// `percentile` trims rare outliers for finer steps.
    #[arg(long, value_enum, default_value_t = Method::Minmax)]
    method: Method,
    /// Percentile kept by `--method percentile`.
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// Where to write the artifact (written to a temporary file, then renamed).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Method {
    Minmax,
    Percentile,
}

/// Runs `sturdy quantize`.
pub fn main(args: Args) -> Result<()> {
    let graph = onnx::import(&args.model)?;
    let calib = npy::read_samples(&args.calib, &graph.onnx_input_shape)?;
    let samples: Vec<Vec<f32>> = calib
        .samples
        .iter()
        .map(|s| float_exec::to_storage(graph.input_layout, &graph.onnx_input_shape, s))
        .collect();
    let method = match args.method {
        Method::Minmax => RangeMethod::MinMax,
        Method::Percentile => RangeMethod::Percentile(args.percentile),
    };
    let source = args
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let bytes = quantize(&graph, &samples, method, &source)
        .with_context(|| format!("quantizing {}", args.model.display()))?;
    write_atomic(&args.output, &bytes)?;
    let model = crate::host_model::HostModel::from_bytes(&bytes)?;
    println!(
        "{} → {}: {} ops, {} B flash, {} B arena, calibrated on {} samples ({})",
        args.model.display(),
        args.output.display(),
        model.meta.ops.len(),
        bytes.len(),
        model.meta.plan.arena_bytes,
        samples.len(),
        model.meta.calibration.method,
    );
    Ok(())
}
