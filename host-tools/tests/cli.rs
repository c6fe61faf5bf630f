//! The `sturdy` binary as a user drives it: quantize, run, inspect, and the
//! errors a user sees when something is wrong.
//!
//! Figures are checked against independent values: onnxruntime's float
//! accuracy recorded by `models/make_models.py`, and the artifact's size on
//! disk.

use std::path::{Path, PathBuf};

use serde_json::Value;

mod common;
use common::*;

/// onnxruntime's float accuracy for a bundled model.
fn onnxruntime_accuracy(model: &str) -> f64 {
    let text = std::fs::read_to_string(models().join("expected_float.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[model]["accuracy"].as_f64().unwrap()
}

fn quantize_digits(dir: &Path) -> PathBuf {
    quantize_bundled(dir, "digits_dscnn", "digits_calib_x.npy")
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

/// `models/NAME` read as float32, with `(sample, element)` set to `value`
/// and written to `dir/file`.
fn poisoned_samples(dir: &Path, name: &str, file: &str, at: (usize, usize), value: f32) -> PathBuf {
    let mut x: ndarray::ArrayD<f32> = ndarray_npy::read_npy(models().join(name)).unwrap();
    let per_sample = x.len() / x.shape()[0];
    x.as_slice_mut().unwrap()[at.0 * per_sample + at.1] = value;
    let out = dir.join(file);
    ndarray_npy::write_npy(&out, &x).unwrap();
    out
}

fn write_labels(dir: &Path, file: &str, labels: Vec<i64>) -> PathBuf {
    let out = dir.join(file);
    ndarray_npy::write_npy(&out, &ndarray::Array1::from(labels)).unwrap();
    out
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn non_finite_calibration_data_is_refused_and_nothing_is_written() {
    let dir = scratch("nan-calib");
    let onnx = models().join("digits_dscnn.onnx");
    let calib = poisoned_samples(
        &dir,
        "digits_calib_x.npy",
        "calib_nan.npy",
        (7, 5),
        f32::NAN,
    );
    let out = dir.join("never.sturdy");
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("calib_nan.npy") && err.contains("sample 7") && err.contains("NaN"),
        "{err}"
    );
    // digits samples are (1, 8, 8): element 5 is [0, 0, 5].
    assert!(
        err.contains("element 5") && err.contains("[0, 0, 5]"),
        "{err}"
    );
    assert_eq!(files_in(&dir), vec!["calib_nan.npy"]);

    // An all-NaN file fails on its first value, for every method.
    let mut x: ndarray::ArrayD<f32> =
        ndarray_npy::read_npy(models().join("digits_calib_x.npy")).unwrap();
    x.fill(f32::NAN);
    let all_nan = dir.join("all_nan.npy");
    ndarray_npy::write_npy(&all_nan, &x).unwrap();
    for method in ["minmax", "percentile", "emaq-lt"] {
        let err = sturdy_err(&[
            "quantize",
            path(&onnx),
            "--calib",
            path(&all_nan),
            "--method",
            method,
            "-o",
            path(&out),
        ]);
        assert!(
            err.contains("all_nan.npy") && err.contains("sample 0"),
            "{method}: {err}"
        );
    }
    assert!(!out.exists());
}

#[test]
fn non_finite_inputs_and_out_of_range_labels_are_refused_by_run() {
    let dir = scratch("nan-run");
    let artifact = quantize_digits(&dir);
    let onnx = models().join("digits_dscnn.onnx");
    let labels = models().join("digits_test_y.npy");
    let inf = poisoned_samples(
        &dir,
        "digits_test_x.npy",
        "inf.npy",
        (3, 0),
        f32::NEG_INFINITY,
    );
    for model in [&artifact, &onnx] {
        let err = sturdy_err(&[
            "run",
            path(model),
            "--input",
            path(&inf),
            "--labels",
            path(&labels),
        ]);
        assert!(
            err.contains("inf.npy") && err.contains("sample 3") && err.contains("-inf"),
            "{err}"
        );
    }

    let x = models().join("digits_test_x.npy");
    let n = ndarray_npy::read_npy::<_, ndarray::Array1<i64>>(&labels)
        .unwrap()
        .len();
    let mut bad = vec![0i64; n];
    bad[2] = 10; // digits has classes 0..9
    let ten = write_labels(&dir, "ten.npy", bad.clone());
    let out = dir.join("outputs.npy");
    let err = sturdy_err(&[
        "run",
        path(&artifact),
        "--input",
        path(&x),
        "--labels",
        path(&ten),
        "--output",
        path(&out),
    ]);
    assert!(
        err.contains("ten.npy")
            && err.contains("sample 2")
            && err.contains("label 10")
            && err.contains("10 classes"),
        "{err}"
    );
    assert!(!out.exists(), "outputs written despite the refusal");
    bad[2] = 0;
    bad[5] = -1;
    let negative = write_labels(&dir, "negative.npy", bad);
    let err = sturdy_err(&[
        "run",
        path(&onnx),
        "--input",
        path(&x),
        "--labels",
        path(&negative),
    ]);
    assert!(
        err.contains("negative.npy") && err.contains("sample 5") && err.contains("label -1"),
        "{err}"
    );
}

#[test]
fn bad_priors_and_labels_are_refused_by_emaq_lt() {
    let dir = scratch("bad-prior");
    let onnx = models().join("lt_mnist.onnx");
    let calib = models().join("lt_mnist_calib_x.npy");
    let labels = models().join("lt_mnist_calib_y.npy");
    let out = dir.join("never.sturdy");
    let mut prior = vec![0.1f32; 10];
    prior[3] = f32::NAN;
    let nan_prior = dir.join("prior.npy");
    ndarray_npy::write_npy(&nan_prior, &ndarray::Array1::from(prior)).unwrap();
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "--method",
        "emaq-lt",
        "--labels",
        path(&labels),
        "--prior",
        path(&nan_prior),
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("prior.npy") && err.contains("class 3") && err.contains("NaN"),
        "{err}"
    );

    let n = ndarray_npy::read_npy::<_, ndarray::Array1<i64>>(&labels)
        .unwrap()
        .len();
    let mut bad = vec![0i64; n];
    bad[n - 1] = 12;
    let twelve = write_labels(&dir, "twelve.npy", bad);
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "--method",
        "emaq-lt",
        "--labels",
        path(&twelve),
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("twelve.npy")
            && err.contains(&format!("sample {}", n - 1))
            && err.contains("label 12"),
        "{err}"
    );
    assert_eq!(files_in(&dir), vec!["prior.npy", "twelve.npy"]);
}

#[test]
fn a_file_that_is_neither_artifact_nor_onnx_is_named_by_its_first_bytes() {
    let dir = scratch("neither");
    let x = models().join("digits_test_x.npy");
    // A .npy where the model belongs: run, quantize and inspect all say so.
    let err = sturdy_err(&["run", path(&x), "--input", path(&x)]);
    assert!(
        err.contains("digits_test_x.npy")
            && err.contains("neither a sturdy artifact nor an ONNX model")
            && err.contains("93 4e 55 4d 50 59")
            && err.contains("NumPy"),
        "{err}"
    );
    let out = dir.join("never.sturdy");
    let err = sturdy_err(&["quantize", path(&x), "--calib", path(&x), "-o", path(&out)]);
    assert!(
        err.contains("neither a sturdy artifact nor an ONNX model"),
        "{err}"
    );
    let onnx = models().join("digits_dscnn.onnx");
    let err = sturdy_err(&["inspect", path(&onnx)]);
    assert!(
        err.contains("digits_dscnn.onnx") && err.contains("not a sturdy artifact"),
        "{err}"
    );
    // An artifact given where the ONNX model belongs.
    let artifact = quantize_digits(&dir);
    let err = sturdy_err(&[
        "quantize",
        path(&artifact),
        "--calib",
        path(&x),
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("is a sturdy artifact, not an ONNX model"),
        "{err}"
    );
    let text = dir.join("notes.txt");
    std::fs::write(&text, "this is not a model\n").unwrap();
    let err = sturdy_err(&["run", path(&text), "--input", path(&x)]);
    assert!(
        err.contains("\"this is not a mo\"") && err.contains("looks like text"),
        "{err}"
    );
}

#[test]
fn aging_profiles_parse_and_bad_fields_are_named() {
    let dir = scratch("aging-profile");
    let harsh = dir.join("harsh.toml");
    std::fs::write(&harsh, sturdy_ok(&["aging", "example", "harsh"])).unwrap();
    let curve: Value = serde_json::from_str(&sturdy_ok(&[
        "aging",
        "curve",
        "--profile",
        path(&harsh),
        "--json",
    ]))
    .unwrap();
    let rows = curve["curve"].as_array().unwrap();
    // The last point is the end of life: 10 years = 87 660 h.
    let last = rows.last().unwrap();
    assert!(
        (last["hours"].as_f64().unwrap() - 87_660.0).abs() < 1e-6,
        "{last}"
    );
    let total = |r: &Value| r["total"].as_f64().unwrap();
    assert!(
        rows.windows(2).all(|w| total(&w[0]) < total(&w[1])),
        "BER grows with time"
    );

    // (file, edit of the example, what the error must name)
    let text = std::fs::read_to_string(&harsh).unwrap();
    for (file, from, to, field) in [
        (
            "bad.toml",
            "share = 0.2",
            "share = 1.5",
            "temperature[1].share",
        ),
        (
            "missing.toml",
            "retention_years = 10.0",
            "",
            "flash.retention_years",
        ),
        ("typo.toml", "fit_per_mbit", "fit_per_mb", "fit_per_mb"),
    ] {
        let profile = dir.join(file);
        std::fs::write(&profile, text.replace(from, to)).unwrap();
        let err = sturdy_err(&["aging", "curve", "--profile", path(&profile)]);
        assert!(err.contains(file) && err.contains(field), "{err}");
    }
}

#[test]
fn aging_plan_chooses_and_protect_records_it() {
    let dir = scratch("aging-plan");
    let artifact = quantize_digits(&dir);
    let harsh = dir.join("harsh.toml");
    std::fs::write(&harsh, sturdy_ok(&["aging", "example", "harsh"])).unwrap();
    let plan: Value = serde_json::from_str(&sturdy_ok(&[
        "aging",
        "plan",
        path(&artifact),
        "--profile",
        path(&harsh),
        "--frames",
        "200",
        "--json",
    ]))
    .unwrap();
    let rows = plan["plan"]["rows"].as_array().unwrap();
    // 12 codes × (5 scrub intervals + never).
    assert_eq!(rows.len(), 72);
    let chosen = &plan["chosen"];
    assert_eq!(chosen["meets"], true, "{chosen}");
    // Nothing that meets the target stores the model in fewer bytes.
    let bytes = |r: &Value| r["stored_bytes"].as_u64().unwrap();
    assert!(rows
        .iter()
        .filter(|r| r["meets"] == true)
        .all(|r| bytes(r) >= bytes(chosen)));
    // Hourly scrubbing over 10 years wears a 10 000-cycle flash out.
    assert!(rows
        .iter()
        .filter(|r| r["interval_hours"] == 1.0)
        .all(|r| r["endurance_ok"] == false));
    let unprotected = plan["unprotected"]["lifetime_failure"].as_f64().unwrap();
    assert!(
        unprotected > 1e-3,
        "an uncoded model of this size does decay: {unprotected}"
    );

    let key = dir.join("device.key");
    sturdy_ok(&["keygen", "-o", path(&key)]);
    let prot = dir.join("digits.prot");
    let out = sturdy(&[
        "protect",
        path(&artifact),
        "--key",
        path(&key),
        "--profile",
        path(&harsh),
        "-o",
        path(&prot),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value =
        serde_json::from_str(&sturdy_ok(&["inspect", path(&prot), "--json"])).unwrap();
    let applied = &report["protection"]["aging_plan"];
    assert_eq!(applied["lifetime_years"], 10.0, "{applied}");
    let code = applied["code"].as_str().unwrap();
    let stored = &report["protection"]["code"];
    let label = format!("n={} r={}", stored["n"], stored["rate"].as_str().unwrap());
    assert_eq!(
        code, label,
        "the recorded plan is the code the artifact uses"
    );
    let err = sturdy_err(&[
        "protect",
        path(&artifact),
        "--key",
        path(&key),
        "--profile",
        path(&harsh),
        "--rate",
        "1/2",
        "-o",
        path(&prot),
    ]);
    assert!(err.contains("--rate") && err.contains("--profile"), "{err}");

    // Lifetimes through the real decoder under the stress profile (BER up
    // to 3.7e-3), scrubbed yearly; the same seed gives the same figures.
    let stress = models().join("profiles/stress.toml");
    let (x, y) = (
        models().join("digits_test_x.npy"),
        models().join("digits_test_y.npy"),
    );
    let simulate = || {
        sturdy_ok(&[
            "aging",
            "simulate",
            path(&prot),
            "--key",
            path(&key),
            "--profile",
            path(&stress),
            "--scrub-hours",
            "8766",
            "--input",
            path(&x),
            "--labels",
            path(&y),
            "--lifetimes",
            "20",
            "--checkpoints",
            "2",
            "--limit",
            "50",
            "--json",
        ])
    };
    let text = simulate();
    assert_eq!(simulate(), text, "seeded lifetimes reproduce");
    let sim: Value = serde_json::from_str(&text).unwrap();
    let clean = sim["clean_accuracy"].as_f64().unwrap();
    let scenarios = sim["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 3);
    let last = |s: &Value, key: &str| s["checkpoints"][1][key].as_f64().unwrap();
    // Uncoded, hundreds of flips break the model; the coded image is
    // repaired (corrections counted) and, scrubbed yearly, stays clean.
    assert!(
        last(&scenarios[0], "min_accuracy") < clean,
        "{}",
        scenarios[0]
    );
    assert!(
        last(&scenarios[1], "corrected_words") > 0.0,
        "{}",
        scenarios[1]
    );
    let scrubbed = &scenarios[2];
    assert_eq!(scrubbed["uncorrectable_words"], 0, "{scrubbed}");
    for c in scrubbed["checkpoints"].as_array().unwrap() {
        assert!(c["mean_flipped_bits"].as_f64().unwrap() > 5.0, "{c}");
        assert_eq!(c["min_accuracy"].as_f64().unwrap(), clean, "{c}");
    }
}
