//! Activation guards on the emulated Cortex-M4: the board runs every op
//! guarded (clamp, count, re-verify and re-run a tripped op) exactly as the
//! host runtime does. Inputs far outside the calibration data (blank,
//! checkerboard and salt-and-pepper 8×8 digits) trip the guards; the
//! outputs stay bit-identical with the host's guarded run and the board's
//! counts equal the host's. On a protected artifact each trip re-verifies
//! the op's weights against the stored codewords and tags (they are
//! intact, so the op is re-run and the answer is the host's).
//!
//! QEMU is required: without it these tests fail with the install command.

use std::path::{Path, PathBuf};
use sturdy_runtime::ldpc::Rate;
use sturdy_tests::hil::{artifact_file, protected_files, qemu_options_for, qemu_or_fail};
use sturdy_tools::hil::run_hil;
use sturdy_tools::hil::session::host_model;
use sturdy_tools::npy;

const MODEL: &str = "digits_dscnn";

/// 40 out-of-distribution 8×8 inputs in a file of their own.
fn odd_inputs(tag: &str) -> PathBuf {
    let mut samples = Vec::new();
    for i in 0..10u32 {
        samples.push(vec![1.0f32; 64]);
        samples.push((0..64).map(|p| ((p / 8 + p % 8) % 2) as f32).collect());
        // Deterministic salt and pepper, different per sample.
        samples.push(
            (0..64u32)
                .map(|p| (p.wrapping_mul(2_654_435_761).wrapping_add(i * 97) >> 31) as f32)
                .collect(),
        );
        samples.push(
            (0..64u32)
                .map(|p| (((p + i) * 40_503) % 7 == 0) as u32 as f32)
                .collect(),
        );
    }
    let path = std::env::temp_dir().join(format!(
        "sturdy-hil-guards-{}-{tag}.npy",
        std::process::id()
    ));
    npy::write_outputs(&path, &samples, &[1, 8, 8]).unwrap();
    path
}

fn check(artifact: &Path, key: Option<PathBuf>, tag: &str) {
    qemu_or_fail();
    let input = odd_inputs(tag);
    let mut opts = qemu_options_for(artifact.to_path_buf(), input.clone());
    opts.key = key;
    let report = run_hil(&opts).unwrap();
    // The host reference, guarded, over the same inputs.
    let mut host = host_model(&opts).unwrap();
    host.set_guarded(true);
    let set = npy::read_samples(&input, &host.meta.input.onnx_shape).unwrap();
    for s in &set.samples {
        host.infer_quantized(&host.quantize_input(s)).unwrap();
    }
    let expected = host.guard_totals();
    let _ = std::fs::remove_file(&input);
    assert_eq!(report.samples, 40);
    assert!(
        report.bit_exact(),
        "{tag}: {} bytes differ, first {:?}",
        report.mismatches,
        report.first_mismatches
    );
    let g = report.guards;
    eprintln!("{tag}: board guards {g:?}, host {expected:?}");
    assert!(g.trips > 0, "{tag}: the inputs must trip the guards");
    assert_eq!(
        (
            g.ops_checked,
            g.values_clamped,
            g.trips,
            g.trips_after_rerun
        ),
        (
            expected.ops_checked,
            expected.values_clamped,
            expected.trips,
            expected.trips_after_rerun
        ),
        "{tag}: board and host guard counts"
    );
}

#[test]
fn guards_trip_identically_on_board_and_host() {
    let artifact = artifact_file(MODEL);
    check(&artifact, None, "plain");
    let _ = std::fs::remove_file(&artifact);
}

#[test]
fn protected_board_reverifies_tripped_ops_and_stays_bit_exact() {
    let (artifact, key) = protected_files(MODEL, "guards", Rate::R5_6, false);
    check(&artifact, Some(key), "protected");
}
