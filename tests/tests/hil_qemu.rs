//! Every bundled model on the emulated Cortex-M4 (QEMU mps2-an386): the
//! whole test split runs on the board and on the host, and every output byte
//! must match — with int8 weights, and with int4 (W4A8) weights for
//! mnist_cnn (dense convolutions, FC) and digits_dscnn (dense and depthwise
//! convolutions, FC). Also checks that the board's instruction counter
//! agrees with QEMU's own per-instruction trace.
//!
//! QEMU is required: without it these tests fail with the install command.

use std::time::Duration;
use sturdy_tests::hil::{artifact_file, artifact_file_bits, qemu_options, qemu_or_fail};
use sturdy_tools::hil::firmware::default_firmware_dir;
use sturdy_tools::hil::{build_firmware, run_hil, BoardKind, Client, QemuBoard};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::quantize::WeightBits;

fn check_bit_exact(name: &str) {
    check_bit_exact_bits(name, WeightBits::Int8);
}

fn check_bit_exact_bits(name: &str, bits: WeightBits) {
    qemu_or_fail();
    let artifact = artifact_file_bits(name, bits);
    let opts = qemu_options(name, artifact.clone());
    let host = HostModel::load(&artifact).unwrap();
    let expected = npy::read_samples(&opts.input, &host.meta.input.onnx_shape)
        .unwrap()
        .samples
        .len();
    let report = run_hil(&opts).unwrap();
    let _ = std::fs::remove_file(&artifact);

    assert_eq!(report.samples, expected, "{name}: whole test split");
    assert!(
        report.bit_exact(),
        "{name}: {} bytes differ in {} samples, first {:?}",
        report.mismatches,
        report.mismatched_samples,
        report.first_mismatches
    );
    let json = report.to_json();
    assert_eq!(json["samples"], expected);
    assert_eq!(json["bit_exact"], true);
    assert_eq!(json["mismatches"], 0);
    let instructions = json["instructions_per_inference"].as_u64().unwrap();
    // SMLAD, the widest multiply-accumulate the Cortex-M4 has, does two
    // per instruction: no count can fall below half an instruction per MAC.
    assert!(
        2 * instructions >= report.macs && instructions > 0,
        "{name}: {instructions} instructions for {} MACs",
        report.macs
    );
    // Per-op counts cover the inference, up to the counter reads between ops.
    let per_op: u64 = report.per_op.iter().map(|o| o.count).sum();
    let last = *report.costs.last().unwrap();
    assert!(
        per_op <= last && per_op * 100 >= last * 99,
        "{name}: ops {per_op} vs inference {last}"
    );
    // Each op's MACs (the per-MAC column of `sturdy hil`) add up to the model's.
    assert_eq!(
        report.per_op.iter().map(|o| o.macs).sum::<u64>(),
        report.macs
    );
    let m = report.info.memory;
    assert_eq!(m.arena as usize, host.model().unwrap().arena_size());
    assert!(m.ram_static >= m.arena && m.flash_used >= m.artifact + m.code);
    assert!(report.stack_peak > 0 && report.stack_peak < m.stack_reserved);
    assert_eq!(report.bad_frames, 0);
    eprintln!(
        "{name} int{}: {} samples bit-exact, {instructions} instructions/inference, {} MACs, artifact {} B, flash {} B, RAM {} B static, stack peak {} B",
        bits.bits(), report.samples, report.macs, m.artifact, m.flash_used, m.ram_static, report.stack_peak
    );
}

#[test]
fn mnist_cnn_is_bit_exact_on_qemu() {
    check_bit_exact("mnist_cnn");
}

#[test]
fn digits_dscnn_is_bit_exact_on_qemu() {
    check_bit_exact("digits_dscnn");
}

#[test]
fn digits_nhwc_is_bit_exact_on_qemu() {
    check_bit_exact("digits_nhwc");
}

#[test]
fn mnist_autoencoder_is_bit_exact_on_qemu() {
    check_bit_exact("mnist_autoencoder");
}

#[test]
fn mnist_cnn_int4_is_bit_exact_on_qemu() {
    check_bit_exact_bits("mnist_cnn", WeightBits::Int4);
}

#[test]
fn digits_dscnn_int4_is_bit_exact_on_qemu() {
    check_bit_exact_bits("digits_dscnn", WeightBits::Int4);
}

#[test]
fn every_manifest_model_has_a_qemu_test() {
    let names: Vec<String> = sturdy_tests::manifest()
        .models
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(
        names,
        [
            "mnist_cnn",
            "digits_dscnn",
            "digits_nhwc",
            "mnist_autoencoder"
        ],
        "add a *_is_bit_exact_on_qemu test for each new bundled model"
    );
}

/// QEMU's option for one translated block per instruction (renamed in 8.1).
fn one_insn_per_tb() -> Vec<String> {
    let version = std::process::Command::new("qemu-system-arm")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    let numbers: Vec<u32> = version
        .split_whitespace()
        .nth(3)
        .unwrap_or("0.0")
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    if numbers.as_slice() >= [8, 1].as_slice() {
        vec!["-accel".into(), "tcg,one-insn-per-tb=on".into()]
    } else {
        vec!["-singlestep".into()]
    }
}

#[test]
fn the_instruction_counter_matches_qemus_instruction_trace() {
    qemu_or_fail();
    let artifact = artifact_file("digits_dscnn");
    let elf = build_firmware(&artifact, BoardKind::Qemu, &default_firmware_dir(), false).unwrap();
    let trace = std::env::temp_dir().join(format!("sturdy-exec-{}.log", std::process::id()));
    let mut args = one_insn_per_tb();
    args.extend(["-d", "exec,nochain", "-D"].map(String::from));
    args.push(trace.display().to_string());
    let (qemu, link) = QemuBoard::launch_with(&elf, &args).unwrap();
    let mut client = Client::new(Box::new(link), Duration::from_secs(120));
    let host = HostModel::load(&artifact).unwrap();
    let opts = qemu_options("digits_dscnn", artifact.clone());
    let set = npy::read_samples(&opts.input, &host.meta.input.onnx_shape).unwrap();
    client
        .load_input(&host.quantize_input(&set.samples[0]))
        .unwrap();
    client.infer(None).unwrap();
    let reported = client.stats().unwrap().last;
    client.shutdown(0).unwrap();
    let (status, _) = qemu.finish(Duration::from_secs(30)).unwrap();
    assert!(status.success());

    // One trace line per executed instruction, naming its function: the
    // inference spans from the first kernel instruction to the last.
    let text = std::fs::read_to_string(&trace).unwrap();
    let _ = std::fs::remove_file(&trace);
    let _ = std::fs::remove_file(&artifact);
    let in_kernel: Vec<usize> = text
        .lines()
        .filter(|l| l.starts_with("Trace"))
        .enumerate()
        .filter(|(_, l)| l.contains("kernels"))
        .map(|(i, _)| i)
        .collect();
    let span = (in_kernel.last().unwrap() - in_kernel[0] + 1) as u64;
    eprintln!("board counted {reported} instructions, QEMU traced {span} in the kernel span");
    assert!(
        reported.abs_diff(span) * 100 <= span,
        "board {reported} vs trace {span}"
    );
}
