//! `sturdy verify`: prove properties of the integer artifact, or find the
//! input that breaks them.

use crate::host_model::HostModel;
use crate::npy;
use crate::quantize::scales::quantize_value;
use crate::verify::bounds::Bounder;
use crate::verify::campaign::{decide_all, label_campaign};
use crate::verify::property::Property;
use crate::verify::search::{Budget, Outcome, Status};
use crate::verify::{monotone, spec};
use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Prove properties of an artifact for the exact bits the board computes.
///
/// Bounds propagate through the runtime's own integer arithmetic (interval
/// bound propagation: requantization, rounding and saturation are
/// monotone; Conv/FC split by weight sign; no float), so "proved" holds for
/// every int8 input of the region as `sturdy run` and the board compute
/// it. Each property ends
///   proved     true for every input of the region;
///   falsified  with an input of the region the runtime gets wrong (found
///              by random and gradient-guided search, confirmed by running it);
///   unknown    neither within --regions (the region is split, branch and
///              bound, until every part is proved or the budget is spent).
/// Properties are about the label (the first index of the output's largest
/// code) or about the scores: the output, or the logits before a final
/// Softmax.
///
/// Properties (--robustness and --blur combine; the others stand alone):
///   --robustness 1,2,4   every input within ±ε codes of a sample keeps the
///                        runtime's label; table of the certified fraction per ε
///   --blur SIGMA         every input on the path from a sample to its
///                        Gaussian blur (σ in pixels) keeps its label
///   --monotone CLASS     raising every input brighter than --above by up to
///                        --delta codes never lowers CLASS's score below its
///                        value at the sample
///   --property FILE      your own (JSON; see below)
///
/// Property file:
///   {"properties": [
///     {"name": "s3", "input": {"sample": 3, "eps": 2}, "output": "keeps_label"},
///     {"input": {"sample": 0, "blur": 0.8}, "output": {"label": 7}},
///     {"input": {"lo": [...], "hi": [...]},
///      "output": {"score_at_least": {"class": 2, "code": -20}}}]}
/// lo/hi are int8 codes in the artifact's storage layout; samples index --input.
///
///   sturdy verify mnist.sturdy --input models/mnist_test_x.npy \
///       --labels models/mnist_test_y.npy --robustness 1,2,4 --samples 100
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A sturdy artifact (plain, or protected with --key).
    model: PathBuf,
    /// Samples (float32 .npy in the model's input units): the centres of
    /// the properties.
    #[arg(long)]
    input: Option<PathBuf>,
    /// Labels of the samples (.npy): adds the certified accuracy (proved
    /// and right).
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Device key of a protected artifact.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Local robustness at these radii (codes), comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["monotone", "property"])]
    robustness: Vec<u8>,
    /// Blur tolerance: Gaussian standard deviation in pixels.
    #[arg(long, conflicts_with_all = ["monotone", "property"])]
    blur: Option<f64>,
    /// Monotonicity of this class's score.
    #[arg(long, conflicts_with = "property")]
    monotone: Option<usize>,
    /// With --monotone: the largest rise of an input, in codes.
    #[arg(long, default_value_t = 8)]
    delta: u8,
    /// With --monotone: only inputs above this value (model units) rise.
    #[arg(long, default_value_t = 0.0)]
    above: f32,
    /// A property file (JSON).
    #[arg(long)]
    property: Option<PathBuf>,
    /// First samples of --input to check.
    #[arg(long, default_value_t = 100)]
    samples: usize,
    /// Regions bounded per property before answering unknown.
    #[arg(long, default_value_t = Budget::default().regions)]
    regions: usize,
    /// Seed of the counterexample search.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `sturdy verify`.
pub fn main(args: Args) -> Result<()> {
    let host = match &args.key {
        Some(key) => {
            let key = crate::protect::key::read(key)?;
            let bytes = std::fs::read(&args.model)
                .with_context(|| format!("reading {}", args.model.display()))?;
            crate::protect::load_host(&bytes, &key)
                .with_context(|| format!("loading {}", args.model.display()))?
                .0
        }
        None => HostModel::load(&args.model)?,
    };
    let model = host.model()?;
    let bounder = Bounder::new(model)
        .with_context(|| format!("{}: cannot be bounded", args.model.display()))?;
    let samples: Vec<Vec<i8>> = match &args.input {
        Some(path) => {
            let set = npy::read_samples(path, &host.meta.input.onnx_shape)?;
            set.samples
                .iter()
                .take(args.samples)
                .map(|s| host.quantize_input(s))
                .collect()
        }
        None => Vec::new(),
    };
    let labels = args.labels.as_deref().map(npy::read_labels).transpose()?;
    let budget = Budget {
        regions: args.regions.max(1),
        ..Budget::default()
    };
    let need_samples = || -> Result<()> {
        ensure!(!samples.is_empty(), "this property needs --input samples");
        Ok(())
    };
    let mut report = json!({
        "model": args.model.display().to_string(),
        "samples": samples.len(),
        "regions": budget.regions,
    });
    let props = if let Some(path) = &args.property {
        spec::read(path, &samples, &bounder.input_dims(), &bounder)?
    } else if let Some(class) = args.monotone {
        need_samples()?;
        let classes = bounder.classes();
        ensure!(
            class < classes,
            "--monotone {class}: the model has {classes} classes"
        );
        let above = quantize_value(args.above, host.input_qparams());
        samples
            .iter()
            .map(|x| {
                let base = bounder.point_scores(x)?[class];
                Ok(monotone(x, above, args.delta, class, base))
            })
            .collect::<Result<Vec<_>>>()?
    } else if !args.robustness.is_empty() || args.blur.is_some() {
        need_samples()?;
        let sigmas: Vec<f64> = args.blur.into_iter().collect();
        let rows = label_campaign(
            &bounder,
            &samples,
            labels.as_deref(),
            &args.robustness,
            &sigmas,
            budget,
            args.seed,
        )?;
        report["labels"] = serde_json::to_value(rows)?;
        Vec::new()
    } else {
        bail!("say what to prove: --robustness, --blur, --monotone or --property (see --help)");
    };
    if !props.is_empty() {
        let outcomes = decide_all(&bounder, &props, budget, args.seed, "properties")?;
        report["properties"] = props
            .iter()
            .zip(&outcomes)
            .map(|(p, o)| property_json(p, o))
            .collect();
    }
    if args.json {
        println!("{report}");
    } else {
        print_text(&report);
    }
    Ok(())
}

fn property_json(p: &Property, o: &Outcome) -> Value {
    let mut v = json!({
        "name": p.name,
        "condition": p.condition.describe(),
        "status": o.status.word(),
        "regions": o.regions,
        "seconds": o.seconds,
    });
    if let Status::Falsified(x) = &o.status {
        v["counterexample"] = x.iter().map(|&c| i64::from(c)).collect::<Vec<_>>().into();
    }
    v
}

fn print_text(report: &Value) {
    println!(
        "{} ({} samples, ≤ {} regions per property)",
        report["model"].as_str().unwrap_or(""),
        report["samples"],
        report["regions"]
    );
    if let Some(rows) = report["labels"].as_array() {
        println!(
            "  property      proved  falsified  unknown  certified  certified acc.  time/sample"
        );
        for r in rows {
            let pct = |k: &str| {
                r[k].as_f64()
                    .map_or("—".to_string(), |v| format!("{:.1} %", 100.0 * v))
            };
            let n = |k: &str| r[k].as_u64().unwrap_or(0);
            println!(
                "  {:<12}  {:>6}  {:>9}  {:>7}  {:>9}  {:>14}  {:>8.1} ms",
                r["property"].as_str().unwrap_or(""),
                n("proved"),
                n("falsified"),
                n("unknown"),
                pct("certified_fraction"),
                pct("certified_accuracy"),
                1e3 * r["seconds_per_sample"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(rows) = report["properties"].as_array() {
        let count = |w: &str| rows.iter().filter(|p| p["status"] == w).count();
        println!(
            "  {} proved, {} falsified, {} unknown",
            count("proved"),
            count("falsified"),
            count("unknown")
        );
        println!(
            "  {:<52} {:<18} {:<9} {:>7} {:>10}",
            "property", "condition", "status", "regions", "time"
        );
        for p in rows {
            println!(
                "  {:<52} {:<18} {:<9} {:>7} {:>7.1} ms",
                p["name"].as_str().unwrap_or(""),
                p["condition"].as_str().unwrap_or(""),
                p["status"].as_str().unwrap_or(""),
                p["regions"],
                1e3 * p["seconds"].as_f64().unwrap_or(0.0)
            );
        }
    }
}
