//! The drift monitor on the emulated Cortex-M4: the board plays the whole
//! gain/offset drift stream (`models/drift/`, 3000 samples) through its
//! monitor, and every output, KS statistic, CUSUM sum, re-fit and rollback
//! equals its host twin's (`sturdy run --adapt`); the board reports the
//! monitor's RAM and what counting, judging and re-fitting cost.
//!
//! QEMU is required: without it these tests fail with the install command.

use sturdy_protocol::{ErrorCode, ModelFault};
use sturdy_tests::hil::{qemu_options_for, qemu_or_fail, temp_artifact};
use sturdy_tests::{lt_mnist_with_drift_monitor, models_dir};
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::{run_hil, BoardError, HilOptions};

#[test]
fn the_board_tracks_a_drifting_sensor_exactly_as_the_host_does() {
    qemu_or_fail();
    let artifact = temp_artifact("lt_mnist_drift", &lt_mnist_with_drift_monitor());
    let input = models_dir().join("drift/lt_mnist_gain_offset_x.npy");
    let opts = HilOptions {
        adapt: true,
        ..qemu_options_for(artifact.clone(), input)
    };
    let report = run_hil(&opts).unwrap();
    let _ = std::fs::remove_file(&artifact);
    assert_eq!(report.samples, 3000);
    assert_eq!(
        report.mismatches, 0,
        "outputs differ: {:?}",
        report.first_mismatches
    );
    let drift = report.drift.as_ref().expect("an --adapt run reports drift");
    assert_eq!(
        drift.mismatched_samples, 0,
        "statistics differ from sample {:?}",
        drift.first_mismatch
    );
    assert!(report.bit_exact());
    // The drift starts at sample 300: the board notices it after that and
    // re-fits, as the host did.
    let last = drift.last;
    assert_eq!(last.samples, 3000);
    let alarm = last.first_alarm.expect("the drift is detected");
    assert!((300..400).contains(&alarm), "first alarm at {alarm}");
    assert!(last.refits > 0 && !drift.refit_at.is_empty());
    // Fixed RAM within the 1.5 KiB goal, and costs the board measured.
    assert!(
        last.ram_bytes > 0 && last.ram_bytes <= 1536,
        "{} B",
        last.ram_bytes
    );
    assert!(drift.input_cost_max > 0 && drift.output_cost_sum > 0 && drift.refit_cost_max > 0);
    assert!(
        drift.refit_cost_max > drift.output_cost_sum / 3000,
        "a re-fit costs more than a quiet judgement"
    );
}

#[test]
fn a_board_without_a_monitor_refuses_adapt_by_name() {
    qemu_or_fail();
    let (manifest, model) = sturdy_tests::bundled("digits_dscnn");
    let artifact = sturdy_tests::hil::artifact_file("digits_dscnn");
    let opts = qemu_options_for(artifact.clone(), manifest.path(&model.test_x));
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    let _ = std::fs::remove_file(&artifact);
    let refused = |e| matches!(e, BoardError::Refused(code) if code == ErrorCode::Model(ModelFault::NoDriftMonitor));
    assert!(refused(client.adapt(true).unwrap_err()));
    assert!(matches!(
        client.drift().unwrap_err(),
        BoardError::Refused(ErrorCode::NotAdapting)
    ));
    // Stopping a monitor that never ran is fine, and the board keeps serving.
    client.adapt(false).unwrap();
    assert!(client.info().is_ok());
    if let Some(qemu) = qemu {
        client.shutdown(0).unwrap();
        let (status, _) = qemu.finish(std::time::Duration::from_secs(10)).unwrap();
        assert!(status.success());
    }
}
