//! `sturdy quantize`: ONNX + calibration samples → int8 (or W4A8) artifact.

use crate::fsutil::write_atomic;
use crate::quantize::{quantize_onnx_bits, RangeMethod, WeightBits};
use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;

/// Quantize an ONNX model to an int8 sturdy artifact.
///
/// Weights become symmetric per-channel int8 (or int4 with --bits 4),
/// activations asymmetric per-tensor int8 with ranges measured on the
/// calibration samples, and the arena is planned statically. BatchNorm,
/// Pad, the NHWC input Transpose of tf2onnx exports and DequantizeLinear'd
/// weights are folded at import; an op sturdy does not support is refused
/// with its node name.
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
    /// Bits per Conv/FC weight: 8, or 4 for W4A8.
    ///
    /// W4A8 = 4-bit weights, 8-bit activations: every Conv/FC weight is a
    /// symmetric per-channel int4 code in [-7, 7], two per byte, so those
    /// layers take half the flash of int8 (biases, requantization arrays
    /// and activations stay as they are; the arena does not change). Each
    /// channel's scale comes from a clipping search minimizing its weight
    /// error, and its bias absorbs the mean error the rounding leaves on
    /// the calibration data. The cost: 15 levels instead of 255 per
    /// channel, so accuracy
    /// drops more than with int8 (check it with `sturdy run --labels`),
    /// and the kernels unpack nibbles: about 10–20 % more instructions per
    /// inference on a Cortex-M4.
    #[arg(long, value_enum, default_value_t = Bits::Eight)]
    bits: Bits,
    /// Where to write the artifact (written to a temporary file, then renamed).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Method {
    Minmax,
    Percentile,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Bits {
    #[value(name = "8")]
    Eight,
    #[value(name = "4")]
    Four,
}

/// Runs `sturdy quantize`.
pub fn main(args: Args) -> Result<()> {
    let method = match args.method {
        Method::Minmax => RangeMethod::MinMax,
        Method::Percentile => RangeMethod::Percentile(args.percentile),
    };
    let bits = match args.bits {
        Bits::Eight => WeightBits::Int8,
        Bits::Four => WeightBits::Int4,
    };
    let bytes = quantize_onnx_bits(&args.model, &args.calib, method, bits)?;
    write_atomic(&args.output, &bytes)?;
    let meta = crate::host_model::HostModel::from_bytes(&bytes)?.meta;
    println!(
        "{} → {}: {} ops, {} B flash, {} B arena, int{} weights, calibrated on {} samples ({})",
        args.model.display(),
        args.output.display(),
        meta.ops.len(),
        bytes.len(),
        meta.plan.arena_bytes,
        bits.bits(),
        meta.calibration.samples,
        meta.calibration.method,
    );
    Ok(())
}
