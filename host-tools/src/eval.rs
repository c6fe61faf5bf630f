//! Evaluating a model (float or int8) on a sample set: the figures `sturdy
//! run` prints and `sturdy demo` compares.

use crate::host_model::HostModel;
use crate::metrics;
use crate::npy::Samples;
use crate::reference::TractReference;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::Path;

/// What a model's output is scored as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Scores per class: the arg-max is the prediction.
    Classification,
    /// A reconstruction of the input: its error is the anomaly score.
    Reconstruction,
}

/// Either engine behind one interface.
pub enum Engine {
    /// The ONNX model in float32, executed by tract: the independent reference.
    Float(TractReference),
    /// An artifact, executed by `sturdy-runtime` in int8.
    Int8(Box<HostModel>),
}

impl Engine {
    /// Loads an artifact (recognised by its magic bytes) or an ONNX model.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.starts_with(&sturdy_runtime::format::MAGIC) {
            let model = HostModel::from_bytes(&bytes)
                .with_context(|| format!("loading {}", path.display()))?;
            Ok(Engine::Int8(Box::new(model)))
        } else {
            Ok(Engine::Float(TractReference::load(path)?))
        }
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Engine::Float(_) => "tract-float32",
            Engine::Int8(_) => "sturdy-int8",
        }
    }

    /// One sample's shape in ONNX layout (batch 1).
    pub fn input_shape(&self) -> Vec<usize> {
        match self {
            Engine::Float(r) => r.input_shape().to_vec(),
            Engine::Int8(m) => m.meta.input.onnx_shape.clone(),
        }
    }

    /// Runs one sample from `domain` (ONNX layout in, flat output out).
    /// The float model has no alignment tables and ignores the domain.
    pub fn run(&self, sample: &[f32], domain: Option<u32>) -> Result<Vec<f32>> {
        match self {
            Engine::Float(r) => r.run(sample),
            Engine::Int8(m) => m.run(sample, domain),
        }
    }
}

/// Every output and the JSON report of one evaluation.
pub struct Evaluation {
    /// One flat output per sample.
    pub outputs: Vec<Vec<f32>>,
    /// `samples`, `task` and the task's figures (see [`evaluate`]).
    pub report: Value,
}

/// Runs every sample through `engine` and scores the outputs.
///
/// Classification reports `accuracy`, `balanced_accuracy`,
/// `per_class_accuracy` and `per_class_count` (with labels) or
/// `predictions`; reconstruction reports `mean_mse` and, with 0/1 labels,
/// the `auc` of the error as an anomaly score. `task` defaults to
/// reconstruction when outputs have the inputs' size. With `domains` (one
/// id per sample) each sample runs through its domain's alignment table
/// and classification adds `per_domain_accuracy` (keyed by domain id).
pub fn evaluate(
    engine: &Engine,
    set: &Samples,
    labels: Option<&[i64]>,
    domains: Option<&[u32]>,
    task: Option<Task>,
) -> Result<Evaluation> {
    for (what, len) in [
        ("labels", labels.map(<[i64]>::len)),
        ("domain ids", domains.map(<[u32]>::len)),
    ] {
        if let Some(len) = len {
            anyhow::ensure!(
                len == set.samples.len(),
                "{len} {what} for {} samples",
                set.samples.len()
            );
        }
    }
    let bar = ProgressBar::new(set.samples.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>14} [{bar:32}] {pos}/{len} samples ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(engine.name());
    // Samples are independent: every core runs some, and `collect` keeps
    // file order, so outputs and reports do not depend on the thread count
    // (guard totals are sums). `RAYON_NUM_THREADS` limits the cores used.
    let outputs = set
        .samples
        .par_iter()
        .enumerate()
        .map(|(i, sample)| {
            let domain = domains.map(|d| d[i]);
            let out = engine
                .run(sample, domain)
                .with_context(|| format!("sample {i}"));
            bar.inc(1);
            out
        })
        .collect::<Result<Vec<_>>>()?;
    bar.finish_and_clear();
    Ok(judge(engine.name(), set, outputs, labels, domains, task))
}

/// Scores `outputs` (one per sample of `set`, in order) as `task` — or,
/// when not given, as a reconstruction when outputs have the inputs' size
/// and a classification otherwise.
pub fn judge(
    engine: &str,
    set: &Samples,
    outputs: Vec<Vec<f32>>,
    labels: Option<&[i64]>,
    domains: Option<&[u32]>,
    task: Option<Task>,
) -> Evaluation {
    let task = task.unwrap_or_else(|| {
        let same_size = outputs.first().map(Vec::len) == set.samples.first().map(Vec::len);
        if same_size {
            Task::Reconstruction
        } else {
            Task::Classification
        }
    });
    let mut report = json!({ "engine": engine, "samples": set.samples.len() });
    match task {
        Task::Classification => classification_report(&mut report, &outputs, labels, domains),
        Task::Reconstruction => reconstruction_report(&mut report, &set.samples, &outputs, labels),
    }
    Evaluation { outputs, report }
}

fn classification_report(
    report: &mut Value,
    outputs: &[Vec<f32>],
    labels: Option<&[i64]>,
    domains: Option<&[u32]>,
) {
    report["task"] = json!("classification");
    let predictions: Vec<i64> = outputs.iter().map(|o| metrics::argmax(o) as i64).collect();
    let Some(labels) = labels else {
        report["predictions"] = json!(predictions);
        return;
    };
    let c = metrics::classification(&predictions, labels);
    report["accuracy"] = json!(c.accuracy);
    report["balanced_accuracy"] = json!(c.balanced_accuracy);
    report["per_class_accuracy"] = json!(c.per_class_accuracy);
    report["per_class_count"] = json!(c.per_class_count);
    if let Some(domains) = domains {
        let mut per_domain = serde_json::Map::new();
        let ids: std::collections::BTreeSet<u32> = domains.iter().copied().collect();
        for id in ids {
            let (p, l): (Vec<i64>, Vec<i64>) = predictions
                .iter()
                .zip(labels)
                .zip(domains)
                .filter(|(_, &d)| d == id)
                .map(|((&p, &l), _)| (p, l))
                .unzip();
            per_domain.insert(
                id.to_string(),
                json!(metrics::classification(&p, &l).accuracy),
            );
        }
        report["per_domain_accuracy"] = Value::Object(per_domain);
    }
}

fn reconstruction_report(
    report: &mut Value,
    inputs: &[Vec<f32>],
    outputs: &[Vec<f32>],
    labels: Option<&[i64]>,
) {
    report["task"] = json!("reconstruction");
    let errors: Vec<f64> = inputs
        .iter()
        .zip(outputs)
        .map(|(x, y)| metrics::mean_squared_error(x, y))
        .collect();
    report["mean_mse"] = json!(errors.iter().sum::<f64>() / errors.len().max(1) as f64);
    if let Some(labels) = labels {
        let anomalous: Vec<bool> = labels.iter().map(|&l| l != 0).collect();
        report["auc"] = json!(metrics::roc_auc(&errors, &anomalous));
    }
}
