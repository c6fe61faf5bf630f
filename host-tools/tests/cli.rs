//! The `sturdy` binary as a user drives it: quantize, run, inspect, and the
//! errors a user sees when something is wrong.
//!
//! Figures are checked against independent values: onnxruntime's float
//! accuracy recorded by `models/make_models.py`, and the artifact's size on
//! disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn sturdy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sturdy"))
        .args(args)
        .output()
        .expect("the sturdy binary runs")
}

/// Runs `sturdy`, requires success and returns stdout.
fn sturdy_ok(args: &[&str]) -> String {
    let out = sturdy(args);
    assert!(
        out.status.success(),
        "sturdy {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sturdy`, requires failure and returns stderr.
fn sturdy_err(args: &[&str]) -> String {
    let out = sturdy(args);
    assert!(
        !out.status.success(),
        "sturdy {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch directory unique to one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sturdy-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// onnxruntime's float accuracy for a bundled model.
fn onnxruntime_accuracy(model: &str) -> f64 {
    let text = std::fs::read_to_string(models().join("expected_float.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[model]["accuracy"].as_f64().unwrap()
}

fn quantize_digits(dir: &Path) -> PathBuf {
    let out = dir.join("digits.sturdy");
    let (onnx, calib) = (
        models().join("digits_dscnn.onnx"),
        models().join("digits_calib_x.npy"),
    );
    sturdy_ok(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "-o",
        path(&out),
    ]);
    out
}

#[test]
fn quantize_then_run_reports_accuracy_as_json() {
    let dir = scratch("run");
    let artifact = quantize_digits(&dir);
    let (x, y) = (
        models().join("digits_test_x.npy"),
        models().join("digits_test_y.npy"),
    );
    let outputs = dir.join("out.npy");
    let stdout = sturdy_ok(&[
        "run",
        path(&artifact),
        "--input",
        path(&x),
        "--labels",
        path(&y),
        "--output",
        path(&outputs),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout).expect("--json prints one JSON object");
    let samples = report["samples"].as_u64().unwrap();
    assert_eq!(samples, 360, "the digits test split has 360 samples");
    let accuracy = report["accuracy"].as_f64().unwrap();
    let reference = onnxruntime_accuracy("digits_dscnn");
    assert!(
        (accuracy - reference).abs() <= 0.005,
        "int8 {accuracy} vs onnxruntime {reference}"
    );
    assert!(report["balanced_accuracy"].as_f64().unwrap() > 0.9);
    let per_class = report["per_class_accuracy"].as_object().unwrap();
    assert_eq!(per_class.len(), 10);

    // --output holds one dequantized row per sample whose argmax gives the
    // same accuracy the report printed.
    let logits: ndarray::Array2<f32> = ndarray_npy::read_npy(&outputs).unwrap();
    let labels: ndarray::Array1<i64> = ndarray_npy::read_npy(&y).unwrap();
    assert_eq!(logits.dim(), (360, 10));
    let correct = logits
        .outer_iter()
        .zip(&labels)
        .filter(|(row, &label)| {
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap();
            best as i64 == label
        })
        .count();
    assert!((correct as f64 / 360.0 - accuracy).abs() < 1e-9);
}

#[test]
fn run_on_onnx_uses_the_float_reference() {
    let (onnx, x, y) = (
        models().join("digits_dscnn.onnx"),
        models().join("digits_test_x.npy"),
        models().join("digits_test_y.npy"),
    );
    let stdout = sturdy_ok(&[
        "run",
        path(&onnx),
        "--input",
        path(&x),
        "--labels",
        path(&y),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let reference = onnxruntime_accuracy("digits_dscnn");
    let accuracy = report["accuracy"].as_f64().unwrap();
    assert!(
        (accuracy - reference).abs() <= 1.0 / 360.0 + 1e-9,
        "tract {accuracy} vs onnxruntime {reference}"
    );
}

#[test]
fn inspect_json_sizes_match_the_file() {
    let dir = scratch("inspect");
    let artifact = quantize_digits(&dir);
    let report: Value =
        serde_json::from_str(&sturdy_ok(&["inspect", path(&artifact), "--json"])).unwrap();
    let file_len = std::fs::metadata(&artifact).unwrap().len();
    assert_eq!(report["flash_bytes"].as_u64(), Some(file_len));
    let weights = report["weights_bytes"].as_u64().unwrap();
    assert!(weights > 0 && weights < file_len);
    let sections: u64 = report["sections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(sections, file_len, "sections must account for every byte");
    let arena = report["arena_bytes"].as_u64().unwrap();
    assert!(arena > 0 && arena <= report["greedy_by_size_arena_bytes"].as_u64().unwrap());
    // The human view names every op's source node.
    let text = sturdy_ok(&["inspect", path(&artifact)]);
    for op in report["ops"].as_array().unwrap() {
        assert!(text.contains(op["node"].as_str().unwrap()));
    }
}

#[test]
fn errors_name_the_file_and_the_fault() {
    let dir = scratch("errors");
    let artifact = quantize_digits(&dir);
    let bytes = std::fs::read(&artifact).unwrap();
    let truncated = dir.join("truncated.sturdy");
    std::fs::write(&truncated, &bytes[..100]).unwrap();
    let x = models().join("digits_test_x.npy");
    let err = sturdy_err(&["run", path(&truncated), "--input", path(&x)]);
    assert!(
        err.contains("truncated.sturdy") && err.contains("truncated"),
        "{err}"
    );

    // Samples of the wrong size: the message names the file and both shapes.
    let mnist = models().join("mnist_test_x.npy");
    let err = sturdy_err(&["run", path(&artifact), "--input", path(&mnist)]);
    assert!(
        err.contains("mnist_test_x.npy") && err.contains("784"),
        "{err}"
    );
}

#[test]
fn failed_quantize_leaves_no_output_behind() {
    let dir = scratch("atomic");
    let out = dir.join("never.sturdy");
    let (onnx, wrong) = (
        models().join("digits_dscnn.onnx"),
        models().join("mnist_calib_x.npy"),
    );
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&wrong),
        "-o",
        path(&out),
    ]);
    assert!(err.contains("mnist_calib_x.npy"), "{err}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(leftovers.is_empty(), "quantize left {leftovers:?}");
}

#[test]
fn help_teaches_by_example() {
    let help = sturdy_ok(&["--help"]);
    assert!(help.contains("sturdy quantize") && help.contains("sturdy run"));
    let help = sturdy_ok(&["quantize", "--help"]);
    assert!(help.contains("--calib") && help.contains("percentile"));
}

#[test]
fn emaq_lt_quantize_run_and_inspect_from_the_command_line() {
    let dir = scratch("emaq");
    let m = |f: &str| models().join(f);
    let out = dir.join("lt.sturdy");
    sturdy_ok(&[
        "quantize",
        path(&m("lt_mnist.onnx")),
        "--calib",
        path(&m("lt_mnist_calib_x.npy")),
        "--method",
        "emaq-lt",
        "--labels",
        path(&m("lt_mnist_calib_y.npy")),
        "--domains",
        path(&m("lt_mnist_calib_d.npy")),
        "--bits",
        "4",
        "-o",
        path(&out),
    ]);
    let report: Value = serde_json::from_str(&sturdy_ok(&[
        "run",
        path(&out),
        "--input",
        path(&m("lt_mnist_test_x.npy")),
        "--labels",
        path(&m("lt_mnist_test_y.npy")),
        "--domains",
        path(&m("lt_mnist_test_d.npy")),
        "--json",
    ]))
    .unwrap();
    let per_domain = report["per_domain_accuracy"].as_object().unwrap();
    assert_eq!(per_domain.keys().collect::<Vec<_>>(), ["0", "1", "2", "3"]);
    assert!(report["balanced_accuracy"].as_f64().unwrap() > 0.7);
    let inspect = sturdy_ok(&["inspect", path(&out)]);
    for needle in [
        "emaq-lt",
        "input alignment: 4 domain tables",
        "logit adjustment: τ =",
    ] {
        assert!(
            inspect.contains(needle),
            "inspect lacks {needle:?}:\n{inspect}"
        );
    }
    // The EmaQ-LT side files need the method, and mixed widths need EmaQ-LT.
    let err = sturdy_err(&[
        "quantize",
        path(&m("lt_mnist.onnx")),
        "--calib",
        path(&m("lt_mnist_calib_x.npy")),
        "--labels",
        path(&m("lt_mnist_calib_y.npy")),
        "-o",
        path(&out),
    ]);
    assert!(err.contains("need --method emaq-lt"), "{err}");
    let err = sturdy_err(&[
        "quantize",
        path(&m("lt_mnist.onnx")),
        "--calib",
        path(&m("lt_mnist_calib_x.npy")),
        "--bits",
        "mixed",
        "-o",
        path(&out),
    ]);
    assert!(err.contains("--bits mixed needs --method emaq-lt"), "{err}");
    // A domain id the artifact has no table for is refused, naming it.
    let bad = dir.join("bad_d.npy");
    let ids: Vec<i64> = vec![7; 2400];
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&ndarray::Array1::from(ids), &mut bytes).unwrap();
    std::fs::write(&bad, bytes).unwrap();
    let err = sturdy_err(&[
        "run",
        path(&out),
        "--input",
        path(&m("lt_mnist_test_x.npy")),
        "--domains",
        path(&bad),
    ]);
    assert!(
        err.contains("input domain 7 has no alignment table"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
