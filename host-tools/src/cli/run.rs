//! `sturdy run`: evaluate an ONNX model (float, through tract) or an
//! artifact (int8, through the device runtime) on a sample set.

use super::timing_args::TimingArgs;
use crate::eval::{evaluate, judge, Engine, Task};
use crate::npy;
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

/// Run a model on every sample of a .npy file and report how well it does.
///
/// MODEL is an ONNX file (float reference, executed by tract) or a sturdy
/// artifact (integer path, executed by the very runtime the board runs).
/// Samples run one at a time (fixed-batch-1 models work as they are), on
/// every core at once; results keep file order and do not depend on the
/// number of threads (set RAYON_NUM_THREADS to limit them).
///
/// With --labels, classifiers report accuracy, balanced accuracy and
/// per-class accuracy; reconstruction models (autoencoders, whose output has
/// the input's size) report the mean squared reconstruction error and, with
/// 0/1 anomaly labels, the ROC AUC of that error as an anomaly score.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// An ONNX model or a sturdy artifact.
    model: PathBuf,
    /// Inputs: float32 .npy, samples stacked on axis 0, in the model's input units.
    #[arg(long)]
    input: PathBuf,
    /// Integer labels (.npy, int64 or int32), one per sample.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Domain id of each sample (.npy, int64/int32): an artifact quantized
    /// with `--method emaq-lt --domains` maps each input through its
    /// domain's alignment table; with --labels the report adds
    /// per-domain accuracy.
    #[arg(long)]
    domains: Option<PathBuf>,
    /// Write every output as float32 [N, output elements] here.
    #[arg(long)]
    output: Option<PathBuf>,
    /// What the outputs mean (default: reconstruction when the output has the
    /// input's size, classification otherwise).
    #[arg(long, value_enum)]
    task: Option<Task>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Device key of a protected artifact (from `sturdy keygen`): the model
    /// is verified and repaired at load and the health record reported.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Run an artifact plainly, ignoring its activation guards (by default
    /// an artifact with a GUARDS section runs guarded: out-of-range
    /// activations are clamped and counted, tripped ops re-run).
    #[arg(long)]
    no_guards: bool,
    /// Play the samples in file order as one sensor stream through the
    /// device's drift monitor (an artifact quantized with --drift-monitor):
    /// it tests its running input histogram against the stored reference
    /// CDF, re-fits the input-alignment table when the sensor drifts and
    /// rolls a re-fit back when the model's confidence falls. Outputs are
    /// those the board gives for the same stream (`sturdy hil --adapt`);
    /// the report adds detections, re-fits and accuracy per third.
    #[arg(long)]
    adapt: bool,
    #[command(flatten)]
    timing: TimingArgs,
}

/// Runs `sturdy run`.
pub fn main(args: Args) -> Result<()> {
    let (mut engine, health) = match &args.key {
        Some(key) => {
            let key = crate::protect::key::read(key)?;
            let bytes = std::fs::read(&args.model)
                .with_context(|| format!("reading {}", args.model.display()))?;
            let (model, health) = crate::protect::load_host(&bytes, &key)
                .with_context(|| format!("loading {}", args.model.display()))?;
            (Engine::Int8(Box::new(model)), Some(health))
        }
        None => (Engine::load(&args.model)?, None),
    };
    let timing = args.timing.setting()?;
    match &mut engine {
        Engine::Int8(model) => {
            model.set_guarded(!args.no_guards);
            model.set_timing_faults(timing);
        }
        Engine::Float(_) => anyhow::ensure!(
            timing.is_none(),
            "--timing-faults flips bits of the integer runtime's op outputs: give an artifact"
        ),
    }
    anyhow::ensure!(
        !(timing.is_some() && (args.adapt || args.no_guards)),
        "--timing-faults takes its guard policy from --guard-policy: drop --adapt and --no-guards"
    );
    let set = npy::read_samples(&args.input, &engine.input_shape())?;
    let labels = args.labels.as_deref().map(npy::read_labels).transpose()?;
    let domains = args.domains.as_deref().map(npy::read_domains).transpose()?;
    let mut eval = match (&engine, args.adapt) {
        (_, false) => evaluate(
            &engine,
            &set,
            labels.as_deref(),
            domains.as_deref(),
            args.task,
        )?,
        (Engine::Int8(model), true) => {
            anyhow::ensure!(
                domains.is_none(),
                "--adapt finds the sensor's alignment itself: drop --domains"
            );
            let codes: Vec<Vec<i8>> = set
                .samples
                .iter()
                .map(|s| model.quantize_input(s))
                .collect();
            let trace = crate::drift::stream::play_codes(model, &codes, true)
                .with_context(|| format!("--adapt on {}", args.model.display()))?;
            let outputs = trace
                .outputs
                .iter()
                .map(|o| model.dequantize_output(o))
                .collect();
            let mut eval = judge(
                engine.name(),
                &set,
                outputs,
                labels.as_deref(),
                None,
                args.task,
            );
            eval.report["drift"] = crate::drift::stream::trace_json(&trace, labels.as_deref());
            eval
        }
        (Engine::Float(_), true) => {
            anyhow::bail!(
                "--adapt runs the device's drift monitor: give an artifact, not an ONNX model"
            )
        }
    };
    if let (Some(path), Some(labels), Some("classification")) =
        (&args.labels, &labels, eval.report["task"].as_str())
    {
        let classes = eval.outputs.first().map_or(0, Vec::len);
        npy::check_label_range(path, labels, classes)?;
    }
    if let Some(path) = &args.output {
        let len = eval.outputs.first().map_or(0, Vec::len);
        npy::write_outputs(path, &eval.outputs, &[len])?;
    }
    eval.report["model"] = args.model.display().to_string().into();
    if let Some(health) = &health {
        eval.report["health"] = crate::protect::health_json(health);
    }
    if let (Engine::Int8(model), Some(t)) = (&engine, &timing) {
        eval.report["timing_faults"] = serde_json::json!({
            "rate": f64::from(t.rate_ppb) / 1e9,
            "seed": t.seed,
            "guard_policy": format!("{:?}", t.policy).to_lowercase(),
            "bits_flipped": model.timing_flips(),
        });
    }
    if let Engine::Int8(model) = &engine {
        let guarded = model.has_guards() && !args.no_guards;
        eval.report["guards"] = if guarded {
            crate::host_model::guards_json(&model.guard_totals())
        } else {
            Value::Null
        };
        if guarded && health.is_some() {
            // The health record of a protected run counts guard trips too.
            eval.report["health"]["guard_trips"] = model.guard_totals().trips.into();
        }
    }
    if args.json {
        println!("{}", eval.report);
    } else {
        print_text(&eval.report);
    }
    Ok(())
}

fn print_text(report: &Value) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    println!(
        "{} ({}) on {} samples",
        text(&report["model"]),
        text(&report["engine"]),
        report["samples"]
    );
    let pct = |v: &Value| {
        v.as_f64()
            .map_or("-".to_string(), |x| format!("{:.2}%", 100.0 * x))
    };
    if let Some(acc) = report.get("accuracy") {
        println!("  accuracy           {}", pct(acc));
        println!("  balanced accuracy  {}", pct(&report["balanced_accuracy"]));
        if let Some(per_class) = report["per_class_accuracy"].as_object() {
            let cells: Vec<String> = per_class
                .iter()
                .map(|(k, v)| format!("{k}:{}", pct(v)))
                .collect();
            println!("  per class          {}", cells.join("  "));
        }
        if let Some(per_domain) = report["per_domain_accuracy"].as_object() {
            let cells: Vec<String> = per_domain
                .iter()
                .map(|(k, v)| format!("{k}:{}", pct(v)))
                .collect();
            println!("  per domain         {}", cells.join("  "));
        }
    }
    if let Some(h) = report.get("health") {
        println!(
            "  health             {} codewords checked, {} corrected ({} bits), {} uncorrectable; {} blocks, {} tag failures; {} guard trips",
            h["codewords_checked"], h["corrected_words"], h["corrected_bits"],
            h["uncorrectable_words"], h["blocks_checked"], h["mac_failures"],
            h.get("guard_trips").unwrap_or(&Value::Null)
        );
    }
    match report.get("guards") {
        Some(Value::Null) => println!("  guards             off (none in this artifact, or --no-guards)"),
        Some(g) => println!(
            "  guards             {} values clamped over {} guarded op runs; {} trips (re-verified, re-run), {} still over after re-run",
            g["values_clamped"], g["ops_checked"], g["trips"], g["trips_after_rerun"]
        ),
        None => {}
    }
    if let Some(t) = report.get("timing_faults") {
        println!(
            "  timing faults      rate {} per bit, seed {}, guards {}: {} bits flipped",
            t["rate"],
            t["seed"],
            text(&t["guard_policy"]),
            t["bits_flipped"]
        );
    }
    if let Some(d) = report.get("drift") {
        println!(
            "  drift monitor      {} re-fits, {} rolled back; first alarm at sample {}; last KS statistic {:.4}",
            d["refits"], d["rollbacks"], d["first_alarm"], d["last_statistic"].as_f64().unwrap_or(0.0)
        );
        if let Some(thirds) = d["accuracy_by_third"].as_array() {
            let cells: Vec<String> = thirds.iter().map(pct).collect();
            println!("  accuracy by third  {}", cells.join("  "));
        }
    }
    if let Some(mse) = report.get("mean_mse").and_then(Value::as_f64) {
        println!("  mean squared error {mse:.6}");
    }
    if let Some(auc) = report.get("auc").and_then(Value::as_f64) {
        println!("  anomaly ROC AUC    {auc:.4}");
    }
    if let Some(p) = report.get("predictions").and_then(Value::as_array) {
        println!(
            "  predictions        {} (pass --labels for accuracy)",
            p.len()
        );
    }
}
