//! Shared helpers for the cross-crate tests in `tests/tests/`.

pub mod hil;

use anyhow::Result;
use std::path::PathBuf;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::manifest::{BundledModel, Manifest};
use sturdy_tools::npy;
use sturdy_tools::quantize::{quantize_onnx_bits, RangeMethod, WeightBits};

/// The bundled models folder.
pub fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// The bundled models' manifest.
pub fn manifest() -> Manifest {
    Manifest::load(&models_dir()).expect("models/manifest.json")
}

/// One bundled model by name.
pub fn bundled(name: &str) -> (Manifest, BundledModel) {
    let manifest = manifest();
    let model = manifest
        .models
        .iter()
        .find(|m| m.name == name)
        .cloned()
        .expect("model in manifest");
    (manifest, model)
}

/// Quantizes a bundled model on its calibration split (int8 weights) and
/// returns the artifact bytes.
pub fn quantize_bundled(
    manifest: &Manifest,
    model: &BundledModel,
    method: RangeMethod,
) -> Result<Vec<u8>> {
    quantize_bundled_bits(manifest, model, method, WeightBits::Int8)
}

/// [`quantize_bundled`] with every Conv/FC layer's weights at `bits`.
pub fn quantize_bundled_bits(
    manifest: &Manifest,
    model: &BundledModel,
    method: RangeMethod,
    bits: WeightBits,
) -> Result<Vec<u8>> {
    quantize_onnx_bits(
        &manifest.path(&model.onnx),
        &manifest.path(&model.calib),
        method,
        bits,
    )
}

/// [`quantize_bundled`] with min/max calibration, loaded for host execution.
pub fn host_model(name: &str) -> HostModel {
    let (manifest, model) = bundled(name);
    let bytes = quantize_bundled(&manifest, &model, RangeMethod::MinMax).expect("quantize");
    HostModel::from_bytes(&bytes).expect("artifact loads")
}

/// A bundled model's min/max artifact, its first test inputs quantized and
/// the clean host outputs for them: the baseline fault and protection tests
/// compare damaged or protected runs against.
pub struct CleanRun {
    /// The plain (unprotected) artifact.
    pub plain: Vec<u8>,
    /// Quantized test inputs.
    pub inputs: Vec<Vec<i8>>,
    /// The plain artifact's outputs for `inputs`.
    pub clean: Vec<Vec<i8>>,
}

/// The first `samples` inputs of `input` (.npy) quantized for `host`, and
/// `host`'s outputs for them.
pub fn host_outputs(
    host: &HostModel,
    input: &std::path::Path,
    samples: usize,
) -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let set = npy::read_samples(input, &host.meta.input.onnx_shape).expect("test split");
    let inputs: Vec<Vec<i8>> = set
        .samples
        .iter()
        .take(samples)
        .map(|s| host.quantize_input(s))
        .collect();
    let outputs = inputs
        .iter()
        .map(|x| host.infer_quantized(x).expect("inference"))
        .collect();
    (inputs, outputs)
}

/// [`CleanRun`] of bundled model `name` over its first `samples` test inputs.
pub fn clean_run(name: &str, samples: usize) -> CleanRun {
    let (manifest, model) = bundled(name);
    let plain = quantize_bundled(&manifest, &model, RangeMethod::MinMax).expect("quantize");
    let host = HostModel::from_bytes(&plain).expect("artifact loads");
    let (inputs, clean) = host_outputs(&host, &manifest.path(&model.test_x), samples);
    CleanRun {
        plain,
        inputs,
        clean,
    }
}

/// `engine`'s report (see `sturdy_tools::eval::evaluate`) on bundled model
/// `name`'s labelled test split, and the number of samples.
pub fn test_split_report(
    name: &str,
    engine: &sturdy_tools::eval::Engine,
) -> (serde_json::Value, usize) {
    let (manifest, m) = bundled(name);
    let test = npy::read_samples(&manifest.path(&m.test_x), &engine.input_shape()).unwrap();
    let labels = npy::read_labels(&manifest.path(&m.test_y)).unwrap();
    let eval =
        sturdy_tools::eval::evaluate(engine, &test, Some(&labels), None, Some(m.task)).unwrap();
    (eval.report, test.samples.len())
}

/// lt_mnist quantized with EmaQ-LT (domains and labels) and a drift
/// monitor fitted on its calibration set (max shift 160): the artifact the
/// drift streams in `models/drift/` were made for.
pub fn lt_mnist_with_drift_monitor() -> Vec<u8> {
    use sturdy_tools::longtail::LongTail;
    use sturdy_tools::quantize::bits::BitsChoice;
    let dir = models_dir();
    let inputs = LongTail::new(&dir)
        .emaq_inputs(BitsChoice::default())
        .expect("lt_mnist's EmaQ-LT inputs");
    let calib = dir.join("lt_mnist_calib_x.npy");
    let bytes =
        sturdy_tools::quantize::quantize_onnx_emaq(&dir.join("lt_mnist.onnx"), &calib, &inputs)
            .expect("quantize lt_mnist");
    let host = HostModel::from_bytes(&bytes).expect("parse");
    let set = npy::read_samples(&calib, &host.meta.input.onnx_shape).expect("calibration set");
    let domains = inputs.domains.as_deref();
    sturdy_tools::drift::attach(&bytes, &set.samples, domains, 160).expect("attach the monitor")
}
