//! The drift monitor on the bundled sensor streams (`models/drift/`, made by
//! `models/make_drift_streams.py` from lt_mnist's clean held-out test
//! images): a drifting sensor is noticed and aligned back, a stationary
//! stream and a change of class mix alone are left alone, and the device's
//! re-fit rule agrees with its definition.

use std::sync::OnceLock;
use sturdy_runtime::drift::{identity, ks_distance, project};
use sturdy_runtime::DriftEvent;
use sturdy_tests::{lt_mnist_with_drift_monitor, models_dir};
use sturdy_tools::drift::stream::{accuracy_by_third, play_codes};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;

/// lt_mnist quantized with EmaQ-LT (domains and labels) and a drift monitor.
fn model() -> &'static HostModel {
    static MODEL: OnceLock<HostModel> = OnceLock::new();
    MODEL.get_or_init(|| HostModel::from_bytes(&lt_mnist_with_drift_monitor()).unwrap())
}

/// The stream's codes and labels.
fn stream(kind: &str) -> (Vec<Vec<i8>>, Vec<i64>) {
    let dir = models_dir().join("drift");
    let m = model();
    let set = npy::read_samples(
        &dir.join(format!("lt_mnist_{kind}_x.npy")),
        &m.meta.input.onnx_shape,
    )
    .unwrap();
    let labels = npy::read_labels(&dir.join(format!("lt_mnist_{kind}_y.npy"))).unwrap();
    (
        set.samples.iter().map(|s| m.quantize_input(s)).collect(),
        labels,
    )
}

/// Top-1 accuracy of `codes` run as given (no monitor), per third.
fn plain_by_third(codes: &[Vec<i8>], labels: &[i64]) -> [f64; 3] {
    let outputs: Vec<Vec<i8>> = (codes.iter())
        .map(|c| model().infer_quantized(c).unwrap())
        .collect();
    accuracy_by_third(&outputs, labels)
}

fn mean(x: [f64; 3]) -> f64 {
    x.iter().sum::<f64>() / 3.0
}

#[test]
fn a_drifting_sensor_is_noticed_and_aligned_back_within_3_points_of_clean() {
    let (clean, clean_labels) = stream("stationary");
    let clean_accuracy = mean(plain_by_third(&clean, &clean_labels));
    let (codes, labels) = stream("gain_offset");
    let plain = plain_by_third(&codes, &labels);
    // Without adaptation the last third (all at gain 0.3, offset 0.5) falls
    // to the drifted domain's accuracy (the float model's is below 45 %).
    assert!(plain[2] < 0.45, "no adaptation: last third {:.3}", plain[2]);
    let trace = play_codes(model(), &codes, false).unwrap();
    let adapted = accuracy_by_third(&trace.outputs, &labels);
    assert!(
        adapted[2] >= clean_accuracy - 0.03,
        "adapted last third {:.3}, clean {clean_accuracy:.3}",
        adapted[2]
    );
    // The drift starts at sample 300 (N/10): found within 100 samples of it,
    // never before.
    let alarm = trace
        .status
        .first_alarm
        .expect("the drift was not detected");
    assert!((300..400).contains(&alarm), "first alarm at sample {alarm}");
}

#[test]
fn a_stationary_stream_of_10000_samples_never_refits() {
    let (codes, _) = stream("stationary");
    assert!(codes.len() >= 10_000);
    let trace = play_codes(model(), &codes, false).unwrap();
    assert_eq!(trace.status.refits, 0, "{:?}", trace.status);
}

#[test]
fn a_change_of_class_mix_alone_costs_under_one_point() {
    let (codes, labels) = stream("class_mix");
    let plain = mean(plain_by_third(&codes, &labels));
    let trace = play_codes(model(), &codes, false).unwrap();
    let adapted = mean(accuracy_by_third(&trace.outputs, &labels));
    assert!(
        trace.status.refits == 0 || adapted >= plain - 0.01,
        "{} re-fits, accuracy {adapted:.4} against {plain:.4} unadapted",
        trace.status.refits
    );
}

#[test]
fn a_sensor_swap_is_noticed_right_after_the_swap() {
    let (codes, labels) = stream("swap");
    let trace = play_codes(model(), &codes, false).unwrap();
    let alarm = trace.status.first_alarm.expect("the swap was not detected");
    assert!((750..760).contains(&alarm), "first alarm at sample {alarm}");
    // The histogram starts afresh at the alarm, so the re-fit comes one
    // judging window later and sees only the new sensor.
    let window = model().model().unwrap().artifact().drift().unwrap().window;
    let refit = trace
        .records
        .iter()
        .position(|r| r.event == DriftEvent::Refit);
    assert_eq!(refit, Some((alarm + window) as usize));
    let plain = plain_by_third(&codes, &labels);
    let adapted = accuracy_by_third(&trace.outputs, &labels);
    assert!(adapted[2] > plain[2] + 0.2, "{adapted:?} against {plain:?}");
}

/// The re-fit rule from its definition, by exhaustive search: code `c`
/// goes to the smallest `r` whose reference CDF reaches `c`'s mid-rank.
fn project_by_definition(counts: &[u16; 256], cdf: &[u16; 256]) -> [i8; 256] {
    let total: u64 = counts.iter().map(|&n| n as u64).sum();
    core::array::from_fn(|c| {
        let below: u64 = counts[..c].iter().map(|&n| n as u64).sum();
        let twice_mid_rank = 2 * below + counts[c] as u64; // × 1/(2·total)
        let r = (0..256)
            .find(|&r| cdf[r] as u64 * 2 * total >= twice_mid_rank * 65535)
            .unwrap_or(255);
        (r as i32 - 128) as i8
    })
}

#[test]
fn the_refit_rule_matches_its_definition_and_undoes_its_own_drift() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..200 {
        // Sparse random histograms: a few occupied codes, random counts.
        let mut counts = [0u16; 256];
        for _ in 0..1 + next() % 12 {
            counts[(next() % 256) as usize] += (1 + next() % 500) as u16;
        }
        let mut reference = [0u16; 256];
        for _ in 0..1 + next() % 12 {
            reference[(next() % 256) as usize] += (1 + next() % 500) as u16;
        }
        let total: u64 = reference.iter().map(|&n| n as u64).sum();
        let mut acc = 0u64;
        let cdf: [u16; 256] = core::array::from_fn(|i| {
            acc += reference[i] as u64;
            ((acc * 65535 + total / 2) / total) as u16
        });
        let table = project(&counts, &cdf).unwrap();
        assert_eq!(table, project_by_definition(&counts, &cdf), "case {case}");
        assert!(
            table.windows(2).all(|w| w[0] <= w[1]),
            "case {case}: not monotone"
        );
        // Matching the reference onto itself moves no occupied code.
        let own = project(&reference, &cdf).unwrap();
        let moved = (0..256)
            .filter(|&c| reference[c] > 0 && own[c] != identity()[c])
            .count();
        assert_eq!(moved, 0, "case {case}");
        // ... and leaves no KS distance beyond the CDF's rounding.
        assert!(
            ks_distance(&reference, &identity(), &cdf) <= 1,
            "case {case}"
        );
    }
    assert_eq!(project(&[0u16; 256], &[65535; 256]), None);
}

#[test]
fn malformed_drift_settings_and_missing_sections_are_typed_errors() {
    use sturdy_runtime::format::{DriftSettings, SECTION_DRIFT};
    use sturdy_runtime::{DriftMonitor, Error, Model};
    use sturdy_tools::artifact_writer::with_section;
    use sturdy_tools::fsutil::AlignedBytes;
    let good = model().bytes().to_vec();
    let settings: DriftSettings = model().model().unwrap().artifact().drift().unwrap();
    let broken = [
        DriftSettings {
            memory: 0,
            ..settings
        },
        DriftSettings {
            memory: 40_000,
            ..settings
        },
        DriftSettings {
            stride: 0,
            ..settings
        },
        DriftSettings {
            window: 0,
            ..settings
        },
        DriftSettings {
            version: 1,
            ..settings
        },
        DriftSettings {
            reserved: 1,
            ..settings
        },
    ];
    for (i, s) in broken.iter().enumerate() {
        let bytes = with_section(&good, SECTION_DRIFT, bytemuck::bytes_of(s)).unwrap();
        let err = Model::parse(AlignedBytes::new(&bytes).as_bytes()).err();
        assert_eq!(err, Some(Error::BadDrift), "case {i}");
    }
    let short = with_section(&good, SECTION_DRIFT, &bytemuck::bytes_of(&settings)[..44]).unwrap();
    assert_eq!(
        Model::parse(AlignedBytes::new(&short).as_bytes()).err(),
        Some(Error::BadDrift)
    );
    // Memory too small for one input of 196 codes: refused at construction.
    let tiny = DriftSettings {
        memory: 300,
        ..settings
    };
    let bytes = with_section(&good, SECTION_DRIFT, bytemuck::bytes_of(&tiny)).unwrap();
    let aligned = AlignedBytes::new(&bytes);
    let m = Model::parse(aligned.as_bytes()).unwrap();
    assert_eq!(
        DriftMonitor::new(m.artifact(), m.input_len()).err(),
        Some(Error::BadDrift)
    );
    // An artifact quantized without --drift-monitor has no monitor.
    let dir = models_dir();
    let plain = sturdy_tools::quantize::quantize_onnx(
        &dir.join("lt_mnist.onnx"),
        &dir.join("lt_mnist_calib_x.npy"),
        sturdy_tools::quantize::RangeMethod::MinMax,
    )
    .unwrap();
    let aligned = AlignedBytes::new(&plain);
    let m = Model::parse(aligned.as_bytes()).unwrap();
    assert_eq!(
        DriftMonitor::new(m.artifact(), m.input_len()).err(),
        Some(Error::NoDriftMonitor)
    );
}
