//! Cost on the Cortex-M4: every bundled model runs on the emulated board
//! (QEMU mps2-an386, `-icount shift=0`), which reports instructions per
//! inference — deterministic, unlike wall time — plus the firmware's flash
//! and RAM use. MACs per instruction relate the count to the model's work.
//! Then the cost of protection on the same board: protected artifacts
//! (`sturdy protect`, key compiled into the firmware, decoded into RAM at
//! load) per code rate — load instructions per stored bit, syndrome-check
//! instructions per stored bit, the load with BER 1e-3 of injected faults,
//! and instructions per inference against the plain artifact.
//! Run with `cargo xtask bench`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sturdy_runtime::ldpc::{Code, Length, Rate};
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::{run_hil, HilOptions};
use sturdy_tools::manifest::Manifest;
use sturdy_tools::protect::inject::flip_positions;
use sturdy_tools::protect::{self, key, Options};
use sturdy_tools::quantize::{quantize_onnx, RangeMethod};

/// Models the protection table covers (one small, one larger).
const PROTECTED_MODELS: [&str; 2] = ["digits_dscnn", "mnist_cnn"];
/// Samples per protected run (the inference count barely varies).
const PROTECTED_SAMPLES: usize = 10;

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
    let mut plain_cost = BTreeMap::new();
    for m in &manifest.models {
        let bytes = quantize_onnx(
            &manifest.path(&m.onnx),
            &manifest.path(&m.calib),
            RangeMethod::MinMax,
        )?;
        let artifact = scratch.join(format!("{}.sturdy", m.name));
        std::fs::write(&artifact, bytes)?;
        let report = run_hil(&HilOptions {
            limit: Some(SAMPLES),
            ..HilOptions::qemu(artifact, manifest.path(&m.test_x))
        })?;
        let mean = report.mean_cost();
        plain_cost.insert(m.name.clone(), mean);
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
    protection_table(&manifest, &scratch, &plain_cost)?;
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(())
}

/// Stored-bit indices flipped independently with probability `ber`
/// (seeded: the same seed flips the same bits), as `sturdy inject` draws them.
fn random_flips(stored_bits: u32, ber: f64, seed: u64) -> Vec<u32> {
    flip_positions(stored_bits as usize, ber, seed)
        .expect("valid bit error rate")
        .into_iter()
        .map(|bit| bit as u32)
        .collect()
}

/// Codewords per measured scrub step.
const SCRUB_STEP: u32 = 32;

fn protection_table(
    manifest: &Manifest,
    scratch: &Path,
    plain_cost: &BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let key_bytes: key::Key = [0x42; 32];
    let key_path = scratch.join("bench.key");
    std::fs::write(&key_path, key::to_text(&key_bytes))?;
    let variants: [(&str, Option<Rate>, bool); 6] = [
        ("tags only", None, true),
        ("1/2, no tags", Some(Rate::R1_2), false),
        ("1/2", Some(Rate::R1_2), true),
        ("2/3", Some(Rate::R2_3), true),
        ("3/4", Some(Rate::R3_4), true),
        ("5/6", Some(Rate::R5_6), true),
    ];
    println!();
    println!(
        "Protected artifacts on the Cortex-M4 (QEMU mps2-an386, -icount shift=0; n = 1944, \
         BLAKE2s tags per 1 KiB block; key compiled in, decoded into RAM at load). \
         Load = copy + de-interleave + syndrome check (+ decode) + tag check, at boot \
         and on each Reload; syndrome = one codeword's word-parallel check (mean of 64); \
         scrub step = 32 clean codewords checked bit-sliced (Request::Scrub)"
    );
    println!(
        "| model | code | stored bits | load instr. | load instr./stored bit | syndrome instr./stored bit | scrub step instr./stored bit | load at BER 1e-3 (flips corrected) | instr./inference (plain) | per-inference overhead | extra RAM KiB |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for name in PROTECTED_MODELS {
        let Some(m) = manifest.models.iter().find(|m| m.name == name) else {
            continue;
        };
        let plain = quantize_onnx(
            &manifest.path(&m.onnx),
            &manifest.path(&m.calib),
            RangeMethod::MinMax,
        )?;
        for (label, rate, mac) in variants {
            let options = Options {
                code: rate.map(|r| Code::new(Length::N1944, r)),
                mac,
                ..Options::default()
            };
            let bytes = protect::protect(&plain, &key_bytes, [1; 16], options)?;
            let artifact: PathBuf = scratch.join(format!(
                "{name}-{}.prot",
                label.replace(['/', ' ', ','], "_")
            ));
            std::fs::write(&artifact, &bytes)?;
            let opts = HilOptions {
                limit: Some(PROTECTED_SAMPLES),
                key: Some(key_path.clone()),
                ..HilOptions::qemu(artifact, manifest.path(&m.test_x))
            };
            let report = run_hil(&opts)?;
            anyhow::ensure!(
                report.bit_exact(),
                "{name} {label}: board differs from host"
            );
            let boot = report.health.unwrap_or_default();
            let (mut client, qemu, _) = open_board(&opts)?;
            let info = client.info()?;
            let protection = info.protection.unwrap_or(sturdy_protocol::Protection {
                stored_bits: 0,
                codewords: 0,
                n: 0,
                k: 0,
                blocks: 0,
                inner_len: 0,
                ram: 0,
                fault: None,
            });
            let measured = client.reload(true, true)?;
            // One clean scrub step: gather through the interleaver + syndrome.
            let scrub = if rate.is_some() {
                let s = client.scrub(SCRUB_STEP)?;
                format!(
                    "{:.1}",
                    s.last_cost as f64 / (f64::from(s.last_checked) * f64::from(protection.n))
                )
            } else {
                "-".to_string()
            };
            let flips = random_flips(protection.stored_bits, 1e-3, 7);
            let faulty = if rate.is_some() {
                client.inject(&flips)?;
                let h = client.reload(false, false)?;
                format!("{} ({}/{})", h.load_cost, h.corrected_bits, flips.len())
            } else {
                "-".to_string()
            };
            client.shutdown(0)?;
            if let Some(qemu) = qemu {
                qemu.finish(std::time::Duration::from_secs(10))?;
            }
            let bits = f64::from(protection.stored_bits.max(1));
            let syndrome = if protection.n > 0 {
                format!(
                    "{:.2}",
                    measured.syndrome_check_cost as f64 / f64::from(protection.n)
                )
            } else {
                "-".to_string()
            };
            let mean = report.mean_cost();
            let base = plain_cost.get(name).copied().unwrap_or(0);
            println!(
                "| {name} | {label} | {} | {} | {:.1} | {syndrome} | {scrub} | {faulty} | {mean} ({base}) | {:+.2}% | {} |",
                protection.stored_bits,
                boot.load_cost,
                boot.load_cost as f64 / bits,
                100.0 * (mean as f64 - base as f64) / base.max(1) as f64,
                kib(protection.ram),
            );
        }
    }
    Ok(())
}
