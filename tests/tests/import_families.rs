//! Real exports of the MLPerf Tiny model families import, quantize and run
//! without hand edits.
//!
//! The fixtures in `models/fixtures/` (made by `make_fixtures.py`, listed in
//! `fixtures.json`) are what Keras + tf2onnx, PyTorch's two exporters and
//! onnxruntime's static QDQ quantizer emit for a KWS DS-CNN, ResNet-8,
//! MobileNetV1/V2, MNIST CNNs and the AD autoencoder. Each carries 32 input
//! samples and onnxruntime's float outputs for them. For every fixture:
//!
//! 1. tract's float output matches onnxruntime's (two independent engines
//!    agree on what the model computes);
//! 2. sturdy's own float IR — after layout rewriting, constant folding and
//!    BatchNorm/bias/clamp fusion — matches onnxruntime just as tightly, so
//!    an import mistake shows up here, separated from quantization error;
//! 3. the int8 artifact, calibrated on the same 32 samples, agrees with the
//!    float outputs: top-1 and output SQNR for classifiers, SQNR and the
//!    reconstruction error (the anomaly score) for the autoencoder.
//!
//! Models with an op outside sturdy's set must be refused with an error
//! naming the op and the node.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sturdy_tools::float_exec;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::metrics::argmax;
use sturdy_tools::npy;
use sturdy_tools::onnx;
use sturdy_tools::quantize::{quantize, RangeMethod};
use sturdy_tools::reference::TractReference;

/// Float models: tract, sturdy's float IR and onnxruntime all compute in
/// f32 and differ only in summation order and fused multiply-adds; observed
/// differences are below 1e-5 relative (|a − b| / (1 + |b|)). 1e-4 leaves
/// head-room for other CPUs yet catches any real mistake: a wrong pad, a
/// mis-permuted flatten, a lost clamp or a badly folded BatchNorm each move
/// outputs by whole percents.
const FLOAT_TOL: f64 = 1e-4;

/// The QDQ model rounds every activation in onnxruntime's simulation; tract
/// and sturdy's float IR do not reproduce that rounding bit for bit (sturdy
/// keeps the pair's saturation as a clamp and drops the rounding, since it
/// recalibrates), so they are compared by SQNR instead: measured 47 dB for
/// tract and 36 dB for the IR. 30 dB is an error of 3 % of the signal RMS —
/// far below what a lost ReLU (the bug this catches: negative SQNR) does.
const QDQ_FLOAT_SQNR_DB: f64 = 30.0;

/// int8 vs float, classifiers: at most 3 of the 32 samples may change their
/// arg-max (measured: 0 or 1, on near-ties of models with 84-100 % held-out
/// accuracy); any systematic quantization error (a wrong zero point, scale
/// or weight layout) flips most of them.
const MIN_TOP1_AGREEMENT: f64 = 0.90;

/// int8 vs float output SQNR (signal taken about its per-output mean).
/// Per-tensor int8 activations with min/max ranges give ~40 dB per layer;
/// over 6-21 ops the fixtures measure 28.5-38.5 dB. 25 dB (error RMS
/// 5.6 % of the signal's) keeps a margin for platform differences while
/// one mis-scaled layer (≥ 6 dB per lost bit) or a saturated tensor fails.
const MIN_INT8_SQNR_DB: f64 = 25.0;

/// Autoencoder: the per-sample reconstruction MSE is the anomaly score; the
/// int8 model's mean score must stay within 10 % of float's (measured ~1 %).
const MAX_AE_SCORE_REL_ERR: f64 = 0.10;

fn fixture(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../models/fixtures")
        .join(file)
}

/// `fixtures.json`, written by `make_fixtures.py`.
fn index() -> Vec<Value> {
    let text = std::fs::read_to_string(fixture("fixtures.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    v["fixtures"].as_array().unwrap().clone()
}

/// A `(N, …)` float32 `.npy` as N flat rows (the per-sample size comes
/// from the file's own header).
fn read_rows(path: &Path) -> Vec<Vec<f32>> {
    let bytes = std::fs::read(path).unwrap();
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let dims: Vec<usize> = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap()
        .split(',')
        .filter_map(|d| d.trim().parse().ok())
        .collect();
    let per: usize = dims[1..].iter().product();
    npy::read_samples(path, &[per]).unwrap().samples
}

/// Per-sample outputs (ONNX layout, flat) of every engine under test.
struct Runs {
    ort: Vec<Vec<f32>>,
    tract: Vec<Vec<f32>>,
    float_ir: Vec<Vec<f32>>,
    int8: Vec<Vec<f32>>,
    /// Op kinds of the int8 artifact, for the log.
    ops: usize,
}

/// Imports, quantizes (min/max on the fixture's 32 samples) and runs
/// fixture `name` through tract, sturdy's float IR and the int8 runtime.
fn run_all(name: &str) -> Runs {
    let onnx_path = fixture(&format!("{name}.onnx"));
    let tract = TractReference::load(&onnx_path).unwrap();
    let x = npy::read_samples(&fixture(&format!("{name}_x.npy")), tract.input_shape())
        .unwrap()
        .samples;
    let ort = read_rows(&fixture(&format!("{name}_ort.npy")));
    assert_eq!(
        x.len(),
        ort.len(),
        "{name}: inputs and outputs differ in count"
    );

    let graph = onnx::import(&onnx_path).unwrap_or_else(|e| panic!("{name}: import: {e:#}"));
    let storage: Vec<Vec<f32>> = x
        .iter()
        .map(|s| float_exec::to_storage(graph.input_layout, &graph.onnx_input_shape, s))
        .collect();
    let bytes = quantize(&graph, &storage, RangeMethod::MinMax, name)
        .unwrap_or_else(|e| panic!("{name}: quantize: {e:#}"));
    let host = HostModel::from_bytes(&bytes).unwrap();
    let mut runs = Runs {
        ort,
        tract: vec![],
        float_ir: vec![],
        int8: vec![],
        ops: host.meta.ops.len(),
    };
    for (s, st) in x.iter().zip(&storage) {
        runs.tract.push(tract.run(s).unwrap());
        let values = float_exec::execute(&graph, st).unwrap();
        runs.float_ir.push(float_exec::from_storage(
            graph.output_layout,
            &graph.onnx_output_shape,
            &values[graph.output],
        ));
        runs.int8.push(host.run(s, None).unwrap());
    }
    for (what, out) in [
        ("tract", &runs.tract),
        ("float IR", &runs.float_ir),
        ("int8", &runs.int8),
    ] {
        assert!(
            out.iter().zip(&runs.ort).all(|(a, b)| a.len() == b.len()),
            "{name}: {what} output size differs from onnxruntime's"
        );
    }
    runs
}

/// Largest |a − b| / (1 + |b|) over all samples and outputs.
fn max_rel_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    a.iter()
        .zip(b)
        .flat_map(|(x, y)| {
            x.iter()
                .zip(y)
                .map(|(&p, &q)| ((p - q).abs() / (1.0 + q.abs())) as f64)
        })
        .fold(0.0, f64::max)
}

/// Fraction of samples whose arg-max agrees.
fn top1_agreement(a: &[Vec<f32>], b: &[Vec<f32>]) -> f64 {
    let same = a
        .iter()
        .zip(b)
        .filter(|(x, y)| argmax(x) == argmax(y))
        .count();
    same as f64 / a.len() as f64
}

/// SQNR (dB) of `q` against reference `f`, the signal taken about its
/// per-output mean over the samples (so a large constant offset, as in
/// the autoencoder's −20 dB frames, cannot hide the error).
fn sqnr_db(q: &[Vec<f32>], f: &[Vec<f32>]) -> f64 {
    let n = f.len() as f64;
    let dim = f[0].len();
    let mean: Vec<f64> = (0..dim)
        .map(|j| f.iter().map(|r| r[j] as f64).sum::<f64>() / n)
        .collect();
    let (mut sig, mut err) = (0.0, 0.0);
    for (qr, fr) in q.iter().zip(f) {
        for j in 0..dim {
            sig += (fr[j] as f64 - mean[j]).powi(2);
            err += (qr[j] as f64 - fr[j] as f64).powi(2);
        }
    }
    10.0 * (sig / err.max(1e-30)).log10()
}

/// Checks 1 and 2 of the module doc: the float engines agree.
fn check_float(name: &str, r: &Runs, qdq: bool) {
    if qdq {
        let (t, ir) = (sqnr_db(&r.tract, &r.ort), sqnr_db(&r.float_ir, &r.ort));
        eprintln!("{name}: tract vs onnxruntime {t:.1} dB, sturdy float IR {ir:.1} dB");
        assert!(
            t >= QDQ_FLOAT_SQNR_DB,
            "{name}: tract vs onnxruntime {t:.1} dB"
        );
        assert!(
            ir >= QDQ_FLOAT_SQNR_DB,
            "{name}: sturdy's float IR vs onnxruntime {ir:.1} dB"
        );
        for (what, out) in [("tract", &r.tract), ("float IR", &r.float_ir)] {
            let agree = top1_agreement(out, &r.ort);
            assert!(
                agree >= MIN_TOP1_AGREEMENT,
                "{name}: {what} top-1 agreement {agree}"
            );
        }
    } else {
        let (t, ir) = (
            max_rel_diff(&r.tract, &r.ort),
            max_rel_diff(&r.float_ir, &r.ort),
        );
        eprintln!("{name}: vs onnxruntime, tract {t:.1e}, sturdy float IR {ir:.1e}");
        assert!(t <= FLOAT_TOL, "{name}: tract vs onnxruntime {t:e}");
        assert!(
            ir <= FLOAT_TOL,
            "{name}: sturdy's float IR vs onnxruntime {ir:e} (an import error)"
        );
    }
}

/// How a classifier's outputs are compared.
#[derive(Clone, Copy, PartialEq)]
enum Output {
    /// Logits or probabilities: as they are.
    Scores,
    /// A pre-quantized QDQ model (float checks by SQNR, see
    /// [`QDQ_FLOAT_SQNR_DB`]).
    Qdq,
    /// Log-probabilities (`log_softmax`). The int8 output covers [−16, 0]
    /// (TFLite's fixed LogSoftmax quantization), so log-probabilities of
    /// unlikely classes saturate at −16 by design; the int8 SQNR is taken on
    /// the probabilities `exp(y)`, which weights errors as a user of the
    /// output sees them.
    LogProbs,
}

fn check_classifier(name: &str, output: Output) {
    let r = run_all(name);
    check_float(name, &r, output == Output::Qdq);
    let agree = top1_agreement(&r.int8, &r.ort);
    let sqnr = if output == Output::LogProbs {
        let exp = |v: &[Vec<f32>]| -> Vec<Vec<f32>> {
            v.iter()
                .map(|row| row.iter().map(|x| x.exp()).collect())
                .collect()
        };
        sqnr_db(&exp(&r.int8), &exp(&r.ort))
    } else {
        sqnr_db(&r.int8, &r.ort)
    };
    eprintln!(
        "{name}: int8 ({} ops) vs onnxruntime: top-1 agreement {agree:.3}, SQNR {sqnr:.1} dB",
        r.ops
    );
    assert!(
        agree >= MIN_TOP1_AGREEMENT,
        "{name}: int8 top-1 agreement {agree}"
    );
    assert!(sqnr >= MIN_INT8_SQNR_DB, "{name}: int8 SQNR {sqnr:.1} dB");
}

fn check_autoencoder(name: &str) {
    let r = run_all(name);
    check_float(name, &r, false);
    let x = read_rows(&fixture(&format!("{name}_x.npy")));
    let score = |out: &[Vec<f32>]| -> f64 {
        out.iter()
            .zip(&x)
            .map(|(o, i)| sturdy_tools::metrics::mean_squared_error(o, i))
            .sum::<f64>()
            / out.len() as f64
    };
    let (sf, sq) = (score(&r.ort), score(&r.int8));
    let rel = (sq - sf).abs() / sf;
    let sqnr = sqnr_db(&r.int8, &r.ort);
    eprintln!(
        "{name}: int8 ({} ops) vs onnxruntime: SQNR {sqnr:.1} dB, mean reconstruction MSE {sq:.3} vs {sf:.3} ({:.1} %)",
        r.ops,
        100.0 * rel
    );
    assert!(sqnr >= MIN_INT8_SQNR_DB, "{name}: int8 SQNR {sqnr:.1} dB");
    assert!(
        rel <= MAX_AE_SCORE_REL_ERR,
        "{name}: int8 mean reconstruction MSE {sq} vs float {sf}"
    );
}

/// The model is refused; the error names the op and the (first) node
/// that has it.
fn check_refused(name: &str, op: &str) {
    let path = fixture(&format!("{name}.onnx"));
    let model = onnx::proto::load_model(&path).unwrap();
    let nodes = &model.graph.as_ref().unwrap().node;
    let (i, node) = nodes
        .iter()
        .enumerate()
        .find(|(_, n)| n.op_type == op)
        .unwrap_or_else(|| panic!("{name}: the fixture has no {op} node"));
    let node_name = onnx::proto::node_name(node, i);
    let err = match onnx::import(&path) {
        Ok(_) => panic!("{name}: a model with {op} was imported"),
        Err(e) => format!("{e:#}"),
    };
    eprintln!("{name}: {err}");
    assert!(
        err.contains(&format!("unsupported ONNX op '{op}'")),
        "{name}: error does not name the op: {err}"
    );
    assert!(
        err.contains(&format!("node '{node_name}'")),
        "{name}: error does not name node '{node_name}': {err}"
    );
    assert!(err.contains("Hint"), "{name}: no hint: {err}");
}

/// Every fixture in `fixtures.json` is one of the tests below, and vice
/// versa: a new fixture without a test (or a test whose fixture went away)
/// fails here.
#[test]
fn every_fixture_is_tested() {
    let mut listed: Vec<String> = index()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    let mut tested: Vec<String> = TESTED.iter().map(|s| s.to_string()).collect();
    tested.sort();
    assert_eq!(listed, tested);
    for f in index() {
        let name = f["name"].as_str().unwrap();
        assert!(fixture(&format!("{name}.onnx")).exists(), "{name}.onnx");
        if f["kind"] != "unsupported" {
            assert!(fixture(&format!("{name}_x.npy")).exists());
            assert!(fixture(&format!("{name}_ort.npy")).exists());
        }
    }
}

const TESTED: &[&str] = &[
    "tf_kws_dscnn",
    "tf_resnet8",
    "tf_mobilenet_v1",
    "tf_mnist_cnn",
    "tf_ae_fc",
    "pt_resnet8",
    "pt_mobilenet_v2",
    "pt_mnist_cnn",
    "pt_resnet8_qdq",
    "pt_gelu_mlp",
    "pt_lstm",
];

#[test]
fn tf_kws_dscnn() {
    check_classifier("tf_kws_dscnn", Output::Scores);
}

#[test]
fn tf_resnet8() {
    check_classifier("tf_resnet8", Output::Scores);
}

#[test]
fn tf_mobilenet_v1() {
    check_classifier("tf_mobilenet_v1", Output::Scores);
}

#[test]
fn tf_mnist_cnn() {
    check_classifier("tf_mnist_cnn", Output::Scores);
}

#[test]
fn tf_ae_fc() {
    check_autoencoder("tf_ae_fc");
}

#[test]
fn pt_resnet8() {
    check_classifier("pt_resnet8", Output::Scores);
}

#[test]
fn pt_mobilenet_v2() {
    check_classifier("pt_mobilenet_v2", Output::Scores);
}

#[test]
fn pt_mnist_cnn() {
    check_classifier("pt_mnist_cnn", Output::LogProbs);
}

#[test]
fn pt_resnet8_qdq() {
    check_classifier("pt_resnet8_qdq", Output::Qdq);
}

#[test]
fn pt_gelu_mlp_is_refused() {
    check_refused("pt_gelu_mlp", "Erf");
}

#[test]
fn pt_lstm_is_refused() {
    check_refused("pt_lstm", "LSTM");
}
