//! The four MLPerf Tiny reference models on the Cortex-M4 against TensorFlow
//! Lite Micro + CMSIS-NN: instructions per inference on the emulated board
//! (QEMU mps2-an386, `-icount shift=0`: instructions, not cycles), bit-exact
//! with the host, with the firmware's flash, code and RAM.
//!
//! The comparison figures are constants, not measured here: TFLM with the
//! CMSIS-NN kernels (and with its reference kernels) built for
//! Cortex-M4+FP by arm-none-eabi-gcc 12.2 -O2 and run on the same emulator
//! under the same count, as recorded when the speed work was filed (issue
//! 14); "before" is sturdy's count then. The counts are deterministic, so
//! ratios against them are exact. The models are the reference
//! architectures with random weights (`models/make_mlperf_tiny.py`): speed
//! depends on topology, not on weight values.
//! Run with `cargo xtask bench`.

use std::path::Path;
use sturdy_tools::hil::{run_hil, HilOptions};
use sturdy_tools::quantize::{quantize_onnx_bits, RangeMethod, WeightBits};

/// One benchmark model and the recorded comparison counts.
struct Reference {
    name: &'static str,
    /// TFLM + CMSIS-NN instructions per inference.
    cmsis_nn: u64,
    /// TFLM reference kernels.
    tflm_reference: u64,
    /// sturdy before the DSP kernels.
    before: u64,
}

const MODELS: [Reference; 4] = [
    Reference {
        name: "kws_dscnn",
        cmsis_nn: 7_700_240,
        tflm_reference: 43_000_000,
        before: 33_467_430,
    },
    Reference {
        name: "ic_resnet8",
        cmsis_nn: 29_863_800,
        tflm_reference: 107_400_000,
        before: 90_291_630,
    },
    Reference {
        name: "vww_mobilenet",
        cmsis_nn: 24_102_800,
        tflm_reference: 100_300_000,
        before: 92_334_780,
    },
    Reference {
        name: "ad_autoencoder",
        cmsis_nn: 583_260,
        tflm_reference: 1_950_000,
        before: 1_710_120,
    },
];

fn kib(bytes: u32) -> String {
    format!("{:.1}", f64::from(bytes) / 1024.0)
}

/// Instructions per inference of `name` at `bits`, and the report's figures.
fn measure(
    dir: &Path,
    scratch: &Path,
    name: &str,
    bits: WeightBits,
) -> anyhow::Result<sturdy_tools::hil::HilReport> {
    let bytes = quantize_onnx_bits(
        &dir.join(format!("{name}.onnx")),
        &dir.join(format!("{name}_calib_x.npy")),
        RangeMethod::MinMax,
        bits,
    )?;
    let artifact = scratch.join(format!("{name}-{bits:?}.sturdy"));
    std::fs::write(&artifact, bytes)?;
    run_hil(&HilOptions::qemu(
        artifact,
        dir.join(format!("{name}_test_x.npy")),
    ))
}

fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/mlperf_tiny");
    let scratch = std::env::temp_dir().join(format!("sturdy-mlperf-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    println!(
        "MLPerf Tiny on the Cortex-M4 (QEMU mps2-an386, -icount shift=0: instructions per inference, \
         not cycles), W8A8, activation guards on; TFLM columns recorded on the same emulator (issue 14)"
    );
    println!(
        "| model | MACs | TFLM + CMSIS-NN | TFLM reference | sturdy before | sturdy | instr./MAC | sturdy / CMSIS-NN | goal ≤ 0.8× | W4A8 | W4A8 / W8A8 | bit-exact | code KiB | artifact KiB | arena KiB | stack KiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|");
    for r in &MODELS {
        let w8 = measure(&dir, &scratch, r.name, WeightBits::Int8)?;
        let w4 = measure(&dir, &scratch, r.name, WeightBits::Int4)?;
        let (n8, n4) = (w8.mean_cost(), w4.mean_cost());
        let ratio = n8 as f64 / r.cmsis_nn as f64;
        let mem = w8.info.memory;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.2} | {:.2}× | {} | {} | {:.2}× | {} | {} | {} | {} | {} |",
            r.name,
            w8.macs,
            r.cmsis_nn,
            r.tflm_reference,
            r.before,
            n8,
            n8 as f64 / w8.macs.max(1) as f64,
            ratio,
            if ratio <= 0.8 { "met" } else { "not yet" },
            n4,
            n4 as f64 / n8.max(1) as f64,
            if w8.bit_exact() && w4.bit_exact() { "yes" } else { "NO" },
            kib(mem.code),
            kib(mem.artifact),
            kib(mem.arena),
            kib(w8.stack_peak),
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
