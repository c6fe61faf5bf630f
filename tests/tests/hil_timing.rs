//! Timing faults on the emulated Cortex-M4: with the same per-sample seed
//! the board flips the same op-output bits the host does, under every guard
//! policy, so outputs stay bit-identical and the flip counts equal — the
//! host's accuracy figures under faults are the board's. The redundant
//! policy costs about twice the instructions of a plain run.
//!
//! QEMU is required: without it these tests fail with the install command.

use sturdy_runtime::GuardPolicy;
use sturdy_tests::hil::{artifact_file, qemu_options, qemu_or_fail};
use sturdy_tools::hil::{run_hil, HilOptions, HilReport};
use sturdy_tools::host_model::TimingSetting;

const MODEL: &str = "digits_dscnn";
const SAMPLES: usize = 40;

fn run(policy: GuardPolicy, rate_ppb: u32) -> HilReport {
    let artifact = artifact_file(MODEL);
    let opts = HilOptions {
        limit: Some(SAMPLES),
        timing: Some(TimingSetting {
            rate_ppb,
            seed: 11,
            policy,
        }),
        ..qemu_options(MODEL, artifact.clone())
    };
    let report = run_hil(&opts).unwrap();
    let _ = std::fs::remove_file(&artifact);
    report
}

#[test]
fn board_and_host_flip_the_same_bits_under_every_policy() {
    qemu_or_fail();
    // 1e-3 per bit: several flips per inference, so every policy acts.
    for policy in [
        GuardPolicy::Off,
        GuardPolicy::Strict,
        GuardPolicy::Redundant,
    ] {
        let report = run(policy, 1_000_000);
        assert_eq!(
            report.mismatches, 0,
            "{policy:?}: outputs differ: {:?}",
            report.first_mismatches
        );
        let (host, board) = report.timing_flips;
        assert_eq!(host, board, "{policy:?}: flip counts differ");
        assert!(board > SAMPLES as u64, "{policy:?}: only {board} flips");
        assert!(report.bit_exact());
        if policy == GuardPolicy::Redundant {
            assert!(report.guards.trips > 0, "mismatching runs are re-run");
        }
    }
}

#[test]
fn redundancy_costs_about_twice_a_plain_run() {
    qemu_or_fail();
    let plain = run(GuardPolicy::Stored, 0).mean_cost();
    let twice = run(GuardPolicy::Redundant, 0).mean_cost();
    let ratio = twice as f64 / plain as f64;
    assert!(
        (1.9..2.3).contains(&ratio),
        "redundant / plain = {ratio:.2}"
    );
}
