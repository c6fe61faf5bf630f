//! Every bundled model, end to end: the float figures tract gives must match
//! the independent onnxruntime figures recorded when the model was made, and
//! the int8 artifact must stay within 0.5 accuracy points of them.

use serde_json::Value;
use sturdy_tests::{bundled, quantize_bundled, test_split_report};
use sturdy_tools::eval::{Engine, Task};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::quantize::RangeMethod;
use sturdy_tools::reference::TractReference;

/// onnxruntime's float figures, written by models/make_models.py.
fn expected_float(name: &str) -> Value {
    let path = sturdy_tests::models_dir().join("expected_float.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[name].clone()
}

fn check_model(name: &str) {
    let (manifest, m) = bundled(name);
    let bytes = quantize_bundled(&manifest, &m, RangeMethod::MinMax).unwrap();
    let host = HostModel::from_bytes(&bytes).unwrap();
    assert!(
        host.meta.plan.arena_bytes <= host.meta.plan.greedy_by_size_bytes,
        "{name}: arena plan {} B exceeds greedy-by-size {} B",
        host.meta.plan.arena_bytes,
        host.meta.plan.greedy_by_size_bytes
    );
    let float = Engine::Float(TractReference::load(&manifest.path(&m.onnx)).unwrap());
    let (float, n) = test_split_report(name, &float);
    let (int8, _) = test_split_report(name, &Engine::Int8(Box::new(host)));
    let reference = expected_float(name);
    let n = n as f64;
    let key = if m.task == Task::Classification {
        "accuracy"
    } else {
        "auc"
    };
    let (f, q, ort) = (
        float[key].as_f64().unwrap(),
        int8[key].as_f64().unwrap(),
        reference[key].as_f64().unwrap(),
    );
    eprintln!("{name}: onnxruntime {ort:.4}, tract {f:.4}, sturdy int8 {q:.4}");
    // tract and onnxruntime may disagree on at most one near-tie sample.
    assert!(
        (f - ort).abs() <= 1.0 / n + 1e-9,
        "{name}: tract {key} {f} vs onnxruntime {ort}"
    );
    match m.task {
        Task::Classification => {
            assert!(
                (q - f).abs() <= 0.005 + 1e-9,
                "{name}: int8 accuracy {q} vs float {f}"
            );
            let balanced = int8["balanced_accuracy"].as_f64().unwrap();
            let float_balanced = float["balanced_accuracy"].as_f64().unwrap();
            assert!(
                (balanced - float_balanced).abs() <= 0.01,
                "{name}: balanced {balanced} vs {float_balanced}"
            );
        }
        Task::Reconstruction => {
            assert!((q - f).abs() <= 0.01, "{name}: int8 AUC {q} vs float {f}");
            let (mse_f, mse_q) = (
                float["mean_mse"].as_f64().unwrap(),
                int8["mean_mse"].as_f64().unwrap(),
            );
            assert!(
                (mse_q - mse_f).abs() <= 0.1 * mse_f,
                "{name}: int8 MSE {mse_q} vs float {mse_f}"
            );
        }
    }
}

#[test]
fn mnist_cnn_int8_matches_float() {
    check_model("mnist_cnn");
}

#[test]
fn digits_dscnn_int8_matches_float() {
    check_model("digits_dscnn");
}

#[test]
fn digits_nhwc_int8_matches_float() {
    check_model("digits_nhwc");
}

#[test]
fn mnist_autoencoder_int8_matches_float() {
    check_model("mnist_autoencoder");
}
