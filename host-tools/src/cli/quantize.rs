//! `sturdy quantize`: ONNX + calibration samples → int8 (or W4A8) artifact.

use crate::fsutil::write_atomic;
use crate::npy;
use crate::quantize::bits::BitsChoice;
use crate::quantize::emaq::EmaqInputs;
use crate::quantize::{quantize_onnx_bits, quantize_onnx_emaq, RangeMethod, WeightBits};
use anyhow::Result;
use clap::ValueEnum;
use std::path::PathBuf;

/// Quantize an ONNX model to an int8 sturdy artifact.
///
/// Weights become symmetric per-channel int8 (or int4 with --bits 4),
/// activations asymmetric per-tensor int8 with ranges measured on the
/// calibration samples, and the arena is planned statically. BatchNorm, Pad, the NHWC input Transpose of
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
    /// emaq-lt: how many standard errors a logit-adjustment setting's gain
    /// on the calibration set must clear before it replaces the prior's own
    /// correction (τ = 1 on every row).
    ///
    /// Tail classes with one to three calibration samples make the best
    /// calibration score mostly noise; the gain's standard error, computed
    /// per class, is as large as a lone sample's share. 0 takes the best
    /// calibration score as it stands.
    #[arg(long, default_value_t = crate::quantize::emaq::logit::EVIDENCE_Z)]
    logit_evidence: f64,
    /// Bits per Conv/FC weight: 8, 4 (W4A8) or mixed (emaq-lt).
    ///
    /// W4A8 = 4-bit weights, 8-bit activations: every Conv/FC weight is a
    /// symmetric per-channel int4 code in [-7, 7], two per byte, so those
    /// layers take half the flash of int8 (biases, requantization arrays
    /// and activations stay as they are; the arena does not change). Each
    /// channel's scale comes from a clipping search minimizing its weight
    /// error, and its bias absorbs the mean error the rounding leaves on
    /// the calibration data. The cost: 15 levels instead of 255 per
    /// channel, so accuracy drops more than with int8 (check it with
    /// `sturdy run --labels`), and the kernels unpack nibbles: on a
    /// Cortex-M4 2–8 % more instructions per inference than int8 on the
    /// four MLPerf Tiny models, the fully connected autoencoder included
    /// (`cargo xtask bench`). `mixed` (with --method emaq-lt)
    /// measures each layer's sensitivity to int4 on the calibration set and
    /// moves the least sensitive layers (per byte saved) to int4 until the
    /// Conv/FC weights fit --flash-budget.
    #[arg(long, value_enum, default_value_t = Bits::Eight)]
    bits: Bits,
    /// With --bits mixed: most bytes the Conv/FC weights may take (default:
    /// three quarters of their int8 size).
    #[arg(long)]
    flash_budget: Option<usize>,
    /// Store a drift monitor for the device (and `sturdy run --adapt`):
    /// the reference input CDF of the calibration set (kept from emaq-lt's
    /// alignment, computed otherwise) and detector settings fitted so that
    /// the calibration set replayed as a stationary stream never alarms.
    /// In the field the monitor notices that the sensor's input histogram
    /// left the reference and re-fits the input-alignment table itself.
    #[arg(long)]
    drift_monitor: bool,
    /// With --drift-monitor: most codes a re-fitted table may move any
    /// input code (0..=255).
    #[arg(long, default_value_t = crate::drift::DEFAULT_MAX_SHIFT)]
    drift_max_shift: u32,
    /// Calibrate for the end of life too: add an aged copy of every
    /// calibration sample (gain lost by P, offset crept by P/2 of the
    /// value range, noise of σ = P/8 of it), so activation ranges keep
    /// their margin when the sensor has aged. Severity P in (0, 1), e.g.
    /// 0.3; min/max and percentile methods (EmaQ-LT aligns domains instead).
    #[arg(long, value_name = "P")]
    aging: Option<f64>,
    /// Where to write the artifact (written to a temporary file, then renamed).
    #[arg(short, long)]
    output: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Method {
    Minmax,
    Percentile,
    EmaqLt,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Bits {
    #[value(name = "8")]
    Eight,
    #[value(name = "4")]
    Four,
    Mixed,
}

/// `bytes` with a drift monitor fitted on the calibration inputs.
fn with_drift_monitor(args: &Args, bytes: &[u8]) -> Result<Vec<u8>> {
    let model = crate::host_model::HostModel::from_bytes(bytes)?;
    let set = npy::read_samples(&args.calib, &model.meta.input.onnx_shape)?;
    let domains = args.domains.as_deref().map(npy::read_domains).transpose()?;
    crate::drift::attach(
        bytes,
        &set.samples,
        domains.as_deref(),
        args.drift_max_shift,
    )
}

/// Runs `sturdy quantize`.
pub fn main(args: Args) -> Result<()> {
    let emaq_only = [&args.labels, &args.domains, &args.prior];
    let bits = match args.bits {
        Bits::Eight => BitsChoice::Uniform(WeightBits::Int8),
        Bits::Four => BitsChoice::Uniform(WeightBits::Int4),
        Bits::Mixed => BitsChoice::Mixed {
            flash_budget: args.flash_budget,
        },
    };
    let aged = match args.aging {
        Some(_) if args.method == Method::EmaqLt => anyhow::bail!(
            "--aging adds aged copies to min/max or percentile calibration; EmaQ-LT aligns \
             known domains instead (give the aged sensor's samples as a domain)"
        ),
        Some(p) => Some(AgedCalibration::write(&args.calib, p)?),
        None => None,
    };
    let calib = aged
        .as_ref()
        .map_or(args.calib.as_path(), |a| a.path.as_path());
    let uniform = |method| match bits {
        BitsChoice::Uniform(b) => quantize_onnx_bits(&args.model, calib, method, b),
        BitsChoice::Mixed { .. } => anyhow::bail!(
            "--bits mixed needs --method emaq-lt (it measures each layer's sensitivity)"
        ),
    };
    let mut labels = None;
    let bytes = match args.method {
        Method::Minmax | Method::Percentile if emaq_only.iter().any(|a| a.is_some()) => {
            anyhow::bail!("--labels, --domains and --prior need --method emaq-lt")
        }
        Method::Minmax => uniform(RangeMethod::MinMax)?,
        Method::Percentile => uniform(RangeMethod::Percentile(args.percentile))?,
        Method::EmaqLt => {
            let inputs = emaq_inputs(&args, bits)?;
            let bytes = quantize_onnx_emaq(&args.model, &args.calib, &inputs)?;
            labels = inputs.labels;
            bytes
        }
    };
    let bytes = if args.drift_monitor {
        with_drift_monitor(&args, &bytes)?
    } else {
        bytes
    };
    let meta = crate::host_model::HostModel::from_bytes(&bytes)?.meta;
    if let (Some(path), Some(labels)) = (&args.labels, &labels) {
        npy::check_label_range(path, labels, meta.output.onnx_shape.iter().product())?;
    }
    write_atomic(&args.output, &bytes)?;
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

/// The calibration set with its aged copies, in a temporary file removed
/// when dropped.
struct AgedCalibration {
    path: PathBuf,
}

impl AgedCalibration {
    fn write(calib: &std::path::Path, severity: f64) -> Result<Self> {
        let path =
            std::env::temp_dir().join(format!("sturdy-aged-calib-{}.npy", std::process::id()));
        let aged = AgedCalibration { path };
        crate::quantize::aged_calibration::write_aged_calibration(calib, severity, &aged.path)?;
        Ok(aged)
    }
}

impl Drop for AgedCalibration {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads the EmaQ-LT side files named on the command line.
fn emaq_inputs(args: &Args, bits: BitsChoice) -> Result<EmaqInputs> {
    anyhow::ensure!(
        args.logit_evidence.is_finite() && args.logit_evidence >= 0.0,
        "--logit-evidence {} must be a finite number of standard errors ≥ 0",
        args.logit_evidence
    );
    Ok(EmaqInputs {
        labels: args.labels.as_deref().map(npy::read_labels).transpose()?,
        domains: args.domains.as_deref().map(npy::read_domains).transpose()?,
        prior: args.prior.as_deref().map(npy::read_prior).transpose()?,
        reference_domain: args.reference_domain,
        percentile: args.percentile,
        bits,
        logit_evidence: args.logit_evidence,
    })
}
