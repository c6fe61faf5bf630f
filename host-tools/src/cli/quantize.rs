//! `sturdy quantize`: ONNX + calibration samples → int8 artifact.

use crate::fsutil::write_atomic;
use crate::quantize::{quantize_onnx, RangeMethod};
use anyhow::Result;
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
    let method = match args.method {
        Method::Minmax => RangeMethod::MinMax,
        Method::Percentile => RangeMethod::Percentile(args.percentile),
    };
    let bytes = quantize_onnx(&args.model, &args.calib, method)?;
    write_atomic(&args.output, &bytes)?;
    let meta = crate::host_model::HostModel::from_bytes(&bytes)?.meta;
    println!(
        "{} → {}: {} ops, {} B flash, {} B arena, calibrated on {} samples ({})",
        args.model.display(),
        args.output.display(),
        meta.ops.len(),
        bytes.len(),
        meta.plan.arena_bytes,
        meta.calibration.samples,
        meta.calibration.method,
    );
    Ok(())
}
