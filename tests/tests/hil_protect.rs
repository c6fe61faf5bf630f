//! Protected artifacts on the emulated Cortex-M4: the key is compiled into
//! the firmware, which decodes the artifact into RAM at boot and serves it
//! bit-exactly with the host's clean run; faults injected over the protocol
//! into the working copy of the stored image are repaired at the next load
//! (the health record counts them) and the outputs stay bit-identical; too
//! many faults are a typed error, never a wrong answer; every malformed
//! injection request gets a typed error and changes nothing.
//!
//! QEMU is required: without it these tests fail with the install command.

use std::path::{Path, PathBuf};
use sturdy_protocol::{ErrorCode, ProtectFault, Request, MAX_CHUNK};
use sturdy_runtime::ldpc::Rate;
use sturdy_tests::hil::{
    artifact_file, assert_board_matches, protected_reference, qemu_options, qemu_or_fail,
};
use sturdy_tests::{bundled, quantize_bundled};
use sturdy_tools::hil::firmware::default_firmware_dir;
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::{build_firmware_keyed, run_hil, BoardKind, Client, HilOptions, Reply};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::protect::inject::flip_positions;
use sturdy_tools::protect::key;
use sturdy_tools::quantize::RangeMethod;

const MODEL: &str = "digits_dscnn";
const SAMPLES: usize = 12;

fn protected_files(tag: &str, rate: Rate) -> (PathBuf, PathBuf) {
    sturdy_tests::hil::protected_files(MODEL, tag, rate, false)
}

fn options(artifact: &Path, key: &Path) -> HilOptions {
    HilOptions {
        key: Some(key.to_path_buf()),
        ..qemu_options(MODEL, artifact.to_path_buf())
    }
}

/// Quantized inputs and the host's clean outputs of the protected model,
/// which equal the clean host run of the public (plain) model.
fn reference(opts: &HilOptions) -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let (inputs, outputs) = protected_reference(opts, SAMPLES);
    let (manifest, model) = bundled(MODEL);
    let plain =
        HostModel::from_bytes(&quantize_bundled(&manifest, &model, RangeMethod::MinMax).unwrap())
            .unwrap();
    for (x, y) in inputs.iter().zip(&outputs) {
        assert_eq!(&plain.infer_quantized(x).unwrap(), y);
    }
    (inputs, outputs)
}

fn run_all(client: &mut Client, inputs: &[Vec<i8>], expected: &[Vec<i8>]) {
    assert_board_matches(client, inputs, expected);
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

fn error(client: &mut Client, request: &Request<'_>) -> ErrorCode {
    match client.request(request).unwrap() {
        Reply::Error(code) => code,
        other => panic!("{request:?} answered {other:?}, expected an error"),
    }
}

#[test]
fn injected_faults_are_corrected_and_outputs_stay_bit_identical() {
    faults_are_corrected("faults", false);
}

/// The in-place layout on the board: `verify_in_place` patches the working
/// copy the model runs from (no decoded copy in RAM).
#[test]
fn in_place_faults_are_patched_and_outputs_stay_bit_identical() {
    faults_are_corrected("in-place", true);
}

fn faults_are_corrected(tag: &str, in_place: bool) {
    qemu_or_fail();
    let (artifact, key_path) = sturdy_tests::hil::protected_files(MODEL, tag, Rate::R5_6, in_place);
    let opts = options(&artifact, &key_path);
    let (inputs, expected) = reference(&opts);
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    let info = client.info().unwrap();
    let protection = info.protection.expect("the board reports its protection");
    assert_eq!((protection.n, protection.k), (1944, 1620));
    assert_eq!(protection.stored_bits, protection.codewords * 1944);
    assert_eq!(protection.fault, None);
    // RAM: the working copy and the decoder scratch (2n + 8(n − k) bytes),
    // plus the decoded inner artifact unless the model runs in place.
    let image = std::fs::metadata(&artifact).unwrap().len().div_ceil(4) as u32 * 4;
    let decoded = if in_place { 0 } else { protection.inner_len };
    assert_eq!(
        protection.ram,
        image + decoded + 2 * 1944 + 8 * (1944 - 1620),
        "{tag}"
    );

    // Clean: decoded at boot, bit-exact with the host.
    let boot = client.stats().unwrap().health.unwrap();
    assert_eq!(boot.codewords_checked, protection.codewords);
    assert_eq!((boot.corrected_bits, boot.uncorrectable_words), (0, 0));
    assert_eq!(boot.mac_failures, 0);
    run_all(&mut client, &inputs, &expected);

    // BER 1e-3 worth of random flips, three seeds: all repaired.
    for seed in 1..=3u64 {
        let flips = random_flips(protection.stored_bits, 1e-3, seed);
        assert!(!flips.is_empty());
        client.reload(true, false).unwrap();
        client.inject(&flips).unwrap();
        let health = client.reload(false, false).unwrap();
        assert_eq!(health.injected_bits as usize, flips.len());
        assert_eq!(health.corrected_bits as usize, flips.len(), "seed {seed}");
        assert!(health.corrected_words > 0);
        assert_eq!((health.uncorrectable_words, health.mac_failures), (0, 0));
        assert_eq!(client.stats().unwrap().health, Some(health));
        run_all(&mut client, &inputs, &expected);
    }

    // Far beyond the code's strength: a typed error, and no inference.
    client.reload(true, false).unwrap();
    client
        .inject(&random_flips(protection.stored_bits, 5e-2, 9))
        .unwrap();
    let code = error(
        &mut client,
        &Request::Reload {
            restore: false,
            measure: false,
        },
    );
    assert!(
        matches!(
            code,
            ErrorCode::Protect(ProtectFault::Uncorrectable | ProtectFault::TagMismatch)
        ),
        "{code:?}"
    );
    assert_eq!(error(&mut client, &Request::Infer { domain: None }), code);
    let health = client.stats().unwrap().health.unwrap();
    assert!(health.uncorrectable_words + health.mac_failures > 0);
    assert_eq!(
        client.info().unwrap().protection.unwrap().fault,
        Some(match code {
            ErrorCode::Protect(f) => f,
            _ => unreachable!(),
        })
    );

    // Restoring the flashed image brings the model back.
    let health = client.reload(true, true).unwrap();
    assert_eq!((health.corrected_bits, health.injected_bits), (0, 0));
    assert!(health.syndrome_check_cost > 0);
    run_all(&mut client, &inputs, &expected);

    if let Some(qemu) = qemu {
        client.shutdown(0).unwrap();
        let (status, _) = qemu.finish(std::time::Duration::from_secs(10)).unwrap();
        assert!(status.success());
    }
}

#[test]
fn malformed_injections_get_typed_errors_and_change_nothing() {
    qemu_or_fail();
    let (artifact, key_path) = protected_files("malformed", Rate::R1_2);
    let opts = options(&artifact, &key_path);
    let (inputs, expected) = reference(&opts);
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    let limit = client.info().unwrap().protection.unwrap().stored_bits;

    let inject = |bits: &[u32]| -> Vec<u8> { bits.iter().flat_map(|b| b.to_le_bytes()).collect() };
    for len in [1usize, 3, 5, 7] {
        let bytes = vec![0u8; len];
        assert_eq!(
            error(&mut client, &Request::InjectFaults { bits: &bytes }),
            ErrorCode::BadInjection { len: len as u32 }
        );
    }
    let too_many = vec![0u8; MAX_CHUNK + 4];
    assert_eq!(
        error(&mut client, &Request::InjectFaults { bits: &too_many }),
        ErrorCode::BadInjection {
            len: (MAX_CHUNK + 4) as u32
        }
    );
    // Valid indices before an out-of-range one: none of them is flipped.
    for bad in [limit, limit + 1, u32::MAX] {
        let bytes = inject(&[0, 1, 2, bad]);
        assert_eq!(
            error(&mut client, &Request::InjectFaults { bits: &bytes }),
            ErrorCode::BitOutOfRange { bit: bad, limit }
        );
    }
    // An empty injection is a no-op, not an error.
    assert_eq!(
        client
            .request(&Request::InjectFaults { bits: &[] })
            .unwrap(),
        Reply::Ok
    );
    let health = client.reload(false, false).unwrap();
    assert_eq!((health.injected_bits, health.corrected_bits), (0, 0));
    // The last valid bit and the first: flipped and repaired.
    client.inject(&[0, limit - 1]).unwrap();
    let health = client.reload(false, false).unwrap();
    assert_eq!((health.injected_bits, health.corrected_bits), (2, 2));
    run_all(&mut client, &inputs, &expected);
    assert_eq!(client.stats().unwrap().bad_frames, 0);

    if let Some(qemu) = qemu {
        client.shutdown(0).unwrap();
        let (status, _) = qemu.finish(std::time::Duration::from_secs(10)).unwrap();
        assert!(status.success());
    }
}

#[test]
fn a_plain_board_refuses_injection_and_reload() {
    qemu_or_fail();
    let artifact = artifact_file(MODEL);
    let (mut client, qemu, _) = open_board(&qemu_options(MODEL, artifact.clone())).unwrap();
    let _ = std::fs::remove_file(&artifact);
    assert_eq!(client.info().unwrap().protection, None);
    assert_eq!(client.stats().unwrap().health, None);
    assert_eq!(
        error(&mut client, &Request::InjectFaults { bits: &[0; 4] }),
        ErrorCode::NotProtected
    );
    assert_eq!(
        error(
            &mut client,
            &Request::Reload {
                restore: true,
                measure: false
            }
        ),
        ErrorCode::NotProtected
    );
    if let Some(qemu) = qemu {
        client.shutdown(0).unwrap();
        assert!(qemu
            .finish(std::time::Duration::from_secs(10))
            .unwrap()
            .0
            .success());
    }
}

#[test]
fn hil_with_the_key_is_bit_exact_and_reports_health() {
    qemu_or_fail();
    let (artifact, key_path) = protected_files("json", Rate::R2_3);
    let opts = HilOptions {
        limit: Some(SAMPLES),
        ..options(&artifact, &key_path)
    };
    let report = run_hil(&opts).unwrap();
    assert!(report.bit_exact());
    let json = report.to_json();
    let health = &json["health"];
    assert!(health["codewords_checked"].as_u64().unwrap() > 0);
    assert_eq!(health["corrected_bits"], 0);
    assert_eq!(health["uncorrectable_words"], 0);
    assert_eq!(health["mac_failures"], 0);
    assert!(health["load_cost"].as_u64().unwrap() > 0);
    // The scrubber is there, idle: nothing scrubbed without a request.
    let scrub = &json["scrub"];
    assert_eq!(
        (scrub["steps"].as_u64(), scrub["passes"].as_u64()),
        (Some(0), Some(0))
    );
    let limit = scrub["aging"]["limit_bits"].as_u64().unwrap();
    let stored = report.info.protection.unwrap().stored_bits;
    assert_eq!(
        limit,
        u64::from(stored) / 1000,
        "BER 1e-3 of the stored bits"
    );
    assert_eq!(scrub["aging"]["alarm"], false);
}

#[test]
fn the_firmware_build_refuses_a_protected_artifact_without_its_key() {
    let (artifact, key_path) = protected_files("nokey", Rate::R5_6);
    let dir = default_firmware_dir();
    let err = build_firmware_keyed(&artifact, None, BoardKind::Qemu, &dir, false).unwrap_err();
    assert!(format!("{err:#}").contains("STURDY_KEY"), "{err:#}");
    let wrong = key_path.with_file_name("wrong.key");
    std::fs::write(&wrong, key::to_text(&[0x11; 32])).unwrap();
    let err =
        build_firmware_keyed(&artifact, Some(&wrong), BoardKind::Qemu, &dir, false).unwrap_err();
    assert!(format!("{err:#}").contains("key"), "{err:#}");
    let _ = key_path;
}
