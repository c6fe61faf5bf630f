//! The Cortex-M4 DSP kernels equal the portable ones bit for bit: the
//! emulated board runs its `SMLAD` multiply-accumulate blocks and the
//! portable reference side by side on thousands of seeded random cases
//! (every tail length, every byte alignment, extreme values and offsets)
//! and reports any difference. The portable path is the host's, so this
//! is also the check that host and board kernels agree below the model
//! level; `hil_qemu.rs` checks it over every bundled model's outputs.
//!
//! QEMU is required: without it these tests fail with the install command.

use std::time::Duration;
use sturdy_protocol::ErrorCode;
use sturdy_protocol::Request;
use sturdy_tests::hil::{artifact_file, qemu_options, qemu_or_fail};
use sturdy_tools::hil::firmware::{build_firmware_with, BoardKind};
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::Reply;

#[test]
fn dsp_kernels_equal_the_portable_reference_on_the_board() {
    qemu_or_fail();
    let artifact = artifact_file("digits_nhwc");
    let mut opts = qemu_options("digits_nhwc", artifact.clone());
    let elf = build_firmware_with(
        &artifact,
        None,
        BoardKind::Qemu,
        &["kernel-check"],
        &opts.firmware_dir,
        false,
    )
    .unwrap();
    opts.elf = Some(elf);
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    let mut total = 0;
    for seed in [1u64, 2024, 0xDEAD_BEEF] {
        let check = client.check_kernels(seed, 1500).unwrap();
        assert!(check.dsp, "the firmware was built without the DSP path");
        assert_eq!(check.cases, 1500);
        assert_eq!(
            (check.mismatches, check.first_mismatch),
            (0, None),
            "seed {seed}: the DSP path differs from the portable one"
        );
        total += check.cases;
    }
    assert_eq!(total, 4500);
    client.shutdown(0).unwrap();
    let (status, _) = qemu.unwrap().finish(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
    let _ = std::fs::remove_file(&artifact);
}

#[test]
fn a_product_build_leaves_the_check_out_and_says_so() {
    qemu_or_fail();
    let artifact = artifact_file("digits_dscnn");
    let opts = qemu_options("digits_dscnn", artifact.clone());
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    let request = Request::CheckKernels { seed: 1, cases: 10 };
    assert_eq!(
        client.request(&request).unwrap(),
        Reply::Error(ErrorCode::NotBuilt)
    );
    client.shutdown(0).unwrap();
    let (status, _) = qemu.unwrap().finish(Duration::from_secs(10)).unwrap();
    assert!(status.success(), "QEMU exited with {status}");
    let _ = std::fs::remove_file(&artifact);
}
