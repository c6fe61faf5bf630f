//! `sturdy demo`: every bundled model quantized, then run in float and int8.

use crate::eval::{evaluate, Engine, Task};
use crate::host_model::HostModel;
use crate::manifest::{BundledModel, Manifest};
use crate::npy;
use crate::quantize::{quantize_onnx, RangeMethod};
use crate::reference::TractReference;
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::PathBuf;

/// Quantize every bundled model and compare float and int8 side by side.
///
/// For each model in MODELS/manifest.json: import the ONNX file, calibrate
/// on its calibration split (min/max), then evaluate the float model
/// (tract) and the int8 artifact (sturdy's runtime) on the held-out test
/// split. Classifiers are compared on accuracy, autoencoders on the ROC AUC
/// of their reconstruction error. Then the long-tailed, domain-shifted
/// benchmark at W4A8: min/max against EmaQ-LT (balanced, tail and
/// per-domain accuracy).
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// Folder holding manifest.json and the bundled models.
    #[arg(long, default_value = "models")]
    models: PathBuf,
}

struct Row {
    name: String,
    metric: &'static str,
    float: f64,
    int8: f64,
    onnx_bytes: u64,
    artifact_bytes: usize,
    arena_bytes: usize,
}

fn headline(report: &Value, task: Task) -> f64 {
    let key = if task == Task::Classification {
        "accuracy"
    } else {
        "auc"
    };
    report[key].as_f64().unwrap_or(f64::NAN)
}

fn demo_model(manifest: &Manifest, m: &BundledModel) -> Result<Row> {
    let onnx_path = manifest.path(&m.onnx);
    let bytes = quantize_onnx(&onnx_path, &manifest.path(&m.calib), RangeMethod::MinMax)?;
    let host = HostModel::from_bytes(&bytes)?;
    let test = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape)?;
    let int8 = Engine::Int8(Box::new(host));
    let float = Engine::Float(TractReference::load(&onnx_path)?);
    let labels = npy::read_labels(&manifest.path(&m.test_y))?;
    let float_eval = evaluate(&float, &test, Some(&labels), None, Some(m.task))?;
    let int8_eval = evaluate(&int8, &test, Some(&labels), None, Some(m.task))?;
    let arena_bytes = match &int8 {
        Engine::Int8(h) => h.meta.plan.arena_bytes,
        Engine::Float(_) => 0,
    };
    Ok(Row {
        name: m.name.clone(),
        metric: if m.task == Task::Classification {
            "accuracy"
        } else {
            "anomaly AUC"
        },
        float: headline(&float_eval.report, m.task),
        int8: headline(&int8_eval.report, m.task),
        onnx_bytes: std::fs::metadata(&onnx_path)?.len(),
        artifact_bytes: bytes.len(),
        arena_bytes,
    })
}

/// Runs `sturdy demo`.
pub fn main(args: Args) -> Result<()> {
    let manifest = Manifest::load(&args.models)?;
    let mut rows = Vec::new();
    for m in &manifest.models {
        eprintln!("{}: {}", m.name, m.description);
        rows.push(demo_model(&manifest, m).with_context(|| format!("demo of {}", m.name))?);
    }
    println!();
    println!(
        "{:<18} {:<12} {:>8} {:>8} {:>8} {:>10} {:>10} {:>9}",
        "model", "metric", "float32", "int8", "Δ pts", "ONNX B", "sturdy B", "arena B"
    );
    for r in &rows {
        println!(
            "{:<18} {:<12} {:>8.2} {:>8.2} {:>+8.2} {:>10} {:>10} {:>9}",
            r.name,
            r.metric,
            100.0 * r.float,
            100.0 * r.int8,
            100.0 * (r.int8 - r.float),
            r.onnx_bytes,
            r.artifact_bytes,
            r.arena_bytes
        );
    }
    println!("\nfloat32: the ONNX model run by tract; int8: the artifact run by sturdy-runtime,");
    println!("the same code the microcontroller runs. Sizes are whole files; arena is the");
    println!("only RAM the model needs for activations.");
    super::demo_longtail::run(&args.models)
}
