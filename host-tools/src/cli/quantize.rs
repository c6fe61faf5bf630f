//! `sturdy quantize`: ONNX + calibration samples → int8 artifact.

use crate::fsutil::write_atomic;
use crate::npy;
use crate::quantize::emaq::EmaqInputs;
use crate::quantize::{quantize_onnx, quantize_onnx_emaq, RangeMethod};
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
///
/// `--method emaq-lt` is for calibration data that is long-tailed (few
/// samples of some classes) and drawn from several domains (sensors,
/// sites, lighting). With --domains it fits one input-alignment table per
/// domain (the device maps each input through its domain's table); with
/// --labels it reads every activation range from class-balanced statistics,
/// lets the measured output error decide where balanced and full ranges
/// disagree, and fits a confidence-based logit adjustment (τ·ln π
/// subtracted when the top-1 margin is small) for balanced accuracy.
/// Every choice is stored in the artifact; `sturdy inspect` shows it.
///
///   sturdy quantize lt.onnx --calib x.npy --method emaq-lt \
///       --labels y.npy --domains d.npy -o lt.sturdy
///   sturdy run lt.sturdy --input test_x.npy --labels test_y.npy --domains test_d.npy
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
    /// `percentile` trims rare outliers for finer steps, `emaq-lt`
    /// balances classes and domains (see above).
    #[arg(long, value_enum, default_value_t = Method::Minmax)]
    method: Method,
    /// Percentile kept by `--method percentile` (and, of the balanced
    /// weight, by `emaq-lt`).
    #[arg(long, default_value_t = 99.99)]
    percentile: f64,
    /// emaq-lt: class of each calibration sample (.npy, int64/int32).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// emaq-lt: domain id of each calibration sample (.npy, ids 0..D).
    #[arg(long)]
    domains: Option<PathBuf>,
    /// emaq-lt: the training class prior (.npy, float, one per class);
    /// default: the calibration labels' frequencies.
    #[arg(long)]
    prior: Option<PathBuf>,
    /// emaq-lt: the domain the model was trained on (others are aligned to it).
    #[arg(long, default_value_t = 0)]
    reference_domain: u32,
    /// Where to write the artifact (written to a temporary file, then renamed).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Method {
    Minmax,
    Percentile,
    EmaqLt,
}

/// Runs `sturdy quantize`.
pub fn main(args: Args) -> Result<()> {
    let emaq_only = [&args.labels, &args.domains, &args.prior];
    let bytes = match args.method {
        Method::Minmax | Method::Percentile if emaq_only.iter().any(|a| a.is_some()) => {
            anyhow::bail!("--labels, --domains and --prior need --method emaq-lt")
        }
        Method::Minmax => quantize_onnx(&args.model, &args.calib, RangeMethod::MinMax)?,
        Method::Percentile => quantize_onnx(
            &args.model,
            &args.calib,
            RangeMethod::Percentile(args.percentile),
        )?,
        Method::EmaqLt => quantize_onnx_emaq(&args.model, &args.calib, &emaq_inputs(&args)?)?,
    };
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

/// Reads the EmaQ-LT side files named on the command line.
fn emaq_inputs(args: &Args) -> Result<EmaqInputs> {
    Ok(EmaqInputs {
        labels: args.labels.as_deref().map(npy::read_labels).transpose()?,
        domains: args.domains.as_deref().map(npy::read_domains).transpose()?,
        prior: args.prior.as_deref().map(npy::read_prior).transpose()?,
        reference_domain: args.reference_domain,
        percentile: args.percentile,
    })
}
