//! Models sturdy was not developed against run bit-exactly on the emulated
//! Cortex-M4 after a plain `quantize`: the MLPerf Tiny families exported by
//! Keras + tf2onnx (ResNet-8, keyword-spotting DS-CNN) and a PyTorch MNIST
//! CNN, from `models/fixtures/` (see its README). Each is calibrated on its
//! 32 fixture samples and every output byte of every sample is compared
//! between board and host.

use std::path::PathBuf;
use sturdy_tests::hil::{qemu_options_for, qemu_or_fail, temp_artifact};
use sturdy_tools::hil::run_hil;
use sturdy_tools::quantize::{quantize_onnx, RangeMethod};

fn fixture(file: &str) -> PathBuf {
    sturdy_tests::models_dir().join("fixtures").join(file)
}

fn check_bit_exact(name: &str) {
    qemu_or_fail();
    let (onnx, samples) = (
        fixture(&format!("{name}.onnx")),
        fixture(&format!("{name}_x.npy")),
    );
    let bytes = quantize_onnx(&onnx, &samples, RangeMethod::MinMax).expect("quantize");
    let artifact = temp_artifact(name, &bytes);
    let report = run_hil(&qemu_options_for(artifact.clone(), samples));
    let _ = std::fs::remove_file(&artifact);
    let report = report.expect("hil run");
    assert_eq!(report.samples, 32, "{name}: every fixture sample");
    assert!(
        report.bit_exact(),
        "{name}: {} bytes differ in {} samples, first {:?}",
        report.mismatches,
        report.mismatched_samples,
        report.first_mismatches
    );
}

#[test]
fn tf2onnx_resnet8_is_bit_exact_on_qemu() {
    check_bit_exact("tf_resnet8");
}

#[test]
fn tf2onnx_kws_dscnn_is_bit_exact_on_qemu() {
    check_bit_exact("tf_kws_dscnn");
}

#[test]
fn pytorch_mnist_cnn_is_bit_exact_on_qemu() {
    check_bit_exact("pt_mnist_cnn");
}

#[test]
fn pytorch_mobilenet_v2_is_bit_exact_on_qemu() {
    check_bit_exact("pt_mobilenet_v2");
}
