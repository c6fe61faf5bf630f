//! Cost on the Cortex-M4: every bundled model runs on the emulated board
//! (QEMU mps2-an386, `-icount shift=0`), which reports instructions per
//! inference — deterministic, unlike wall time — plus the firmware's flash
//! and RAM use. MACs per instruction relate the count to the model's work.
//! Run with `cargo xtask bench`.

use std::path::Path;
use sturdy_tools::hil::firmware::default_firmware_dir;
use sturdy_tools::hil::{run_hil, BoardSpec, HilOptions};
use sturdy_tools::manifest::Manifest;
use sturdy_tools::quantize::{quantize_onnx, RangeMethod};

/// Samples per model: counts vary by a few instructions between inputs
/// (data-dependent clamps), so a few dozen give a stable mean.
const SAMPLES: usize = 50;

fn kib(bytes: u32) -> String {
    format!("{:.1}", f64::from(bytes) / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let manifest = Manifest::load(&dir)?;
    let scratch = std::env::temp_dir().join(format!("sturdy-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    println!(
        "Cortex-M4 (QEMU mps2-an386, -icount shift=0): mean of {SAMPLES} test samples per model; sizes in KiB"
    );
    println!(
        "| model | instructions/inference | MACs | MACs/instruction | bit-exact | flash used | code | artifact | static RAM | arena | stack peak |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
    for m in &manifest.models {
        let bytes = quantize_onnx(
            &manifest.path(&m.onnx),
            &manifest.path(&m.calib),
            RangeMethod::MinMax,
        )?;
        let artifact = scratch.join(format!("{}.sturdy", m.name));
        std::fs::write(&artifact, bytes)?;
        let report = run_hil(&HilOptions {
            artifact,
            input: manifest.path(&m.test_x),
            board: BoardSpec::Qemu,
            elf: None,
            firmware_dir: default_firmware_dir(),
            limit: Some(SAMPLES),
            verbose: false,
            progress: false,
        })?;
        let mean = report.mean_cost();
        let mem = report.info.memory;
        println!(
            "| {} | {} | {} | {:.3} | {} | {} | {} | {} | {} | {} | {} |",
            m.name,
            mean,
            report.macs,
            report.macs as f64 / mean.max(1) as f64,
            if report.bit_exact() { "yes" } else { "NO" },
            kib(mem.flash_used),
            kib(mem.code),
            kib(mem.artifact),
            kib(mem.ram_static),
            kib(mem.arena),
            kib(report.stack_peak),
        );
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}
