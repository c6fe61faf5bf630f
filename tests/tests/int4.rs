//! int4 weights (W4A8) end to end, against independent references: the
//! accuracy of every bundled classifier against onnxruntime's float figure,
//! the Conv/FC weight bytes against the int8 artifact's, activation guards,
//! and protection (reparameterization, LDPC, tags) on int4 artifacts.
//! Bit-exactness on the board is in `hil_qemu.rs`, keyed permutations in
//! `reparam.rs`.

use serde_json::Value;
use sturdy_runtime::format::*;
use sturdy_runtime::Artifact;
use sturdy_tests::{bundled, manifest, quantize_bundled_bits, test_split_report};
use sturdy_tools::eval::Engine;
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::protect::inject::{flip_bits, region_range, Region};
use sturdy_tools::protect::{self, load_host, Options};
use sturdy_tools::quantize::{RangeMethod, WeightBits};

/// Most accuracy points W4A8 may lose against the float model.
const MAX_DROP_POINTS: f64 = 1.5;

fn quantize(name: &str, bits: WeightBits) -> Vec<u8> {
    let (manifest, model) = bundled(name);
    quantize_bundled_bits(&manifest, &model, RangeMethod::MinMax, bits).unwrap()
}

/// onnxruntime's float figures, written by models/make_models.py.
fn expected_float(name: &str) -> Value {
    let path = sturdy_tests::models_dir().join("expected_float.json");
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all[name].clone()
}

/// `(count, total bytes)` of the weight tensors of the Conv/FC ops, and
/// whether every one is stored as `dtype`.
fn conv_fc_weights(bytes: &[u8], dtype: u8) -> (usize, usize, bool) {
    let aligned = AlignedBytes::new(bytes);
    let a = Artifact::parse(aligned.as_bytes()).unwrap();
    let weights: Vec<&TensorRecord> = a
        .ops()
        .iter()
        .filter(|op| op.kind == OP_CONV2D || op.kind == OP_FULLY_CONNECTED)
        .map(|op| &a.tensors()[op.inputs[1] as usize])
        .collect();
    let total = weights.iter().map(|t| t.len as usize).sum();
    (
        weights.len(),
        total,
        weights.iter().all(|t| t.dtype == dtype),
    )
}

fn check_accuracy(name: &str) {
    let host = HostModel::from_bytes(&quantize(name, WeightBits::Int4)).unwrap();
    let (int4, samples) = test_split_report(name, &Engine::Int8(Box::new(host)));
    let float = expected_float(name)["accuracy"].as_f64().unwrap();
    let w4a8 = int4["accuracy"].as_f64().unwrap();
    let drop = 100.0 * (float - w4a8);
    eprintln!(
        "{name}: float (onnxruntime) {:.2} %, W4A8 {:.2} %, drop {drop:+.2} points over {} test samples",
        100.0 * float,
        100.0 * w4a8,
        samples
    );
    assert!(
        drop <= MAX_DROP_POINTS + 1e-9,
        "{name}: W4A8 accuracy {w4a8} is {drop:.2} points below float {float}"
    );
}

#[test]
fn mnist_cnn_w4a8_accuracy_is_within_1_5_points_of_float() {
    check_accuracy("mnist_cnn");
}

#[test]
fn digits_dscnn_w4a8_accuracy_is_within_1_5_points_of_float() {
    check_accuracy("digits_dscnn");
}

#[test]
fn digits_nhwc_w4a8_accuracy_is_within_1_5_points_of_float() {
    check_accuracy("digits_nhwc");
}

#[test]
fn int4_halves_the_conv_and_fc_weight_bytes() {
    for model in &manifest().models {
        let (n8, bytes8, all_i8) =
            conv_fc_weights(&quantize(&model.name, WeightBits::Int8), DTYPE_I8);
        let (n4, bytes4, all_i4) =
            conv_fc_weights(&quantize(&model.name, WeightBits::Int4), DTYPE_I4);
        assert!(all_i8 && all_i4 && n8 == n4 && n4 > 0, "{}", model.name);
        // ⌈n / 2⌉ per tensor: at most half a byte of rounding each.
        assert!(
            2 * bytes4 <= bytes8 + n4,
            "{}: {bytes4} B int4 vs {bytes8} B int8",
            model.name
        );
        eprintln!(
            "{}: Conv/FC weights {bytes8} B int8 → {bytes4} B int4 ({:.3}×, {n4} tensors)",
            model.name,
            bytes4 as f64 / bytes8 as f64
        );
    }
}

/// The int4 artifact's quantized test inputs and its outputs for them.
fn clean_outputs(name: &str, plain: &[u8]) -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let (manifest, m) = bundled(name);
    let host = HostModel::from_bytes(plain).unwrap();
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
    let inputs: Vec<Vec<i8>> = set.samples.iter().map(|s| host.quantize_input(s)).collect();
    let outputs = inputs
        .iter()
        .map(|x| host.infer_quantized(x).unwrap())
        .collect();
    (inputs, outputs)
}

#[test]
fn guards_stay_quiet_on_clean_int4_inputs() {
    let plain = quantize("digits_dscnn", WeightBits::Int4);
    let (inputs, clean) = clean_outputs("digits_dscnn", &plain);
    let mut host = HostModel::from_bytes(&plain).unwrap();
    assert!(host.has_guards());
    host.set_guarded(true);
    for (x, want) in inputs.iter().zip(&clean) {
        let got = host.infer_quantized(x).unwrap();
        let argmax = |v: &[i8]| v.iter().enumerate().max_by_key(|(_, &y)| y).map(|(i, _)| i);
        assert_eq!(argmax(&got), argmax(want));
    }
    let totals = host.guard_totals();
    assert!(totals.ops_checked > 0);
    assert_eq!(totals.trips, 0, "{totals:?}");
}

#[test]
fn protected_int4_artifacts_load_and_repair_bit_exactly() {
    const KEY: [u8; 32] = [0x4b; 32];
    let plain = quantize("digits_dscnn", WeightBits::Int4);
    let (inputs, clean) = clean_outputs("digits_dscnn", &plain);
    let bytes = protect::protect(&plain, &KEY, [3; 16], Options::default()).unwrap();
    assert_eq!(protect::report(&bytes).unwrap()["reparam"], true);
    for seed in 0..3u64 {
        let mut hit = bytes.clone();
        let range = region_range(&hit, Region::Weights).unwrap();
        let flips = flip_bits(&mut hit, range, 1e-3, seed).unwrap();
        let (host, health) = load_host(&hit, &KEY).unwrap();
        assert_eq!(health.corrected_bits as usize, flips.len());
        for (x, want) in inputs.iter().zip(&clean) {
            assert_eq!(&host.infer_quantized(x).unwrap(), want, "seed {seed}");
        }
    }
}
