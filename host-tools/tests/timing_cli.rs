//! The logic-aging commands as a user drives them: `sturdy aging timing`
//! says when a clock margin runs out, `sturdy run --timing-faults` injects
//! the wrong bits it predicts, and `sturdy quantize --aging` calibrates on
//! end-of-life copies of the calibration set.

use serde_json::Value;

mod common;
use common::*;

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap()
}

#[test]
fn aging_timing_finds_the_onset_by_hand() {
    // 85 °C: ΔVth(10 y) = 50 mV · exp(−0.49/k·(1/358.15 − 1/398.15)) = 10.1 mV;
    // a 2 % margin lasts until ΔVth = 0.7·(1 − 1.02^(−1/1.3)) = 10.6 mV,
    // i.e. 10 y · (10.6/10.1)^6 ≈ 12.9 years: the margin holds.
    let r = json(&sturdy_ok(&["aging", "timing", "--json"]));
    let onset = r["onset_years"].as_f64().unwrap();
    assert!((onset - 12.9).abs() < 0.1, "{onset}");
    assert_eq!(r["end_of_life"]["bit_rate"], 0.0);
    // At 125 °C the anchor is reached: +10.1 % delay, past any 2 % margin.
    let hot = json(&sturdy_ok(&[
        "aging",
        "timing",
        "--celsius",
        "125",
        "--json",
    ]));
    let end = &hot["end_of_life"];
    assert!((end["dvth_mv"].as_f64().unwrap() - 50.0).abs() < 1e-9);
    assert!((end["delay_factor"].as_f64().unwrap() - 1.1011).abs() < 1e-3);
    assert!(end["bit_rate"].as_f64().unwrap() > 1e-3);
    assert!(hot["onset_years"].as_f64().unwrap() < 0.01);
}

#[test]
fn timing_faults_flip_bits_and_redundancy_answers_them() {
    let dir = scratch("timing");
    let artifact = quantize_bundled(&dir, "digits_dscnn", "digits_calib_x.npy");
    let (x, y) = (
        models().join("digits_test_x.npy"),
        models().join("digits_test_y.npy"),
    );
    let run = |extra: &[&str]| {
        let mut args = vec![
            "run",
            path(&artifact),
            "--input",
            path(&x),
            "--labels",
            path(&y),
            "--json",
        ];
        args.extend_from_slice(extra);
        json(&sturdy_ok(&args))
    };
    let clean = run(&[])["accuracy"].as_f64().unwrap();
    let none = run(&["--timing-faults", "0", "--guard-policy", "off"]);
    assert_eq!(none["accuracy"].as_f64().unwrap(), clean);
    assert_eq!(none["timing_faults"]["bits_flipped"], 0);
    let hit = run(&["--timing-faults", "1e-3", "--guard-policy", "off"]);
    let flipped = hit["timing_faults"]["bits_flipped"].as_u64().unwrap();
    assert!(flipped > 1000, "{flipped} flips");
    let unguarded = hit["accuracy"].as_f64().unwrap();
    assert!(
        unguarded < clean,
        "1e-3 costs accuracy: {unguarded} vs {clean}"
    );
    let redundant = run(&["--timing-faults", "1e-3", "--guard-policy", "redundant"]);
    assert!(redundant["guards"]["trips"].as_u64().unwrap() > 0);
    assert!(redundant["accuracy"].as_f64().unwrap() > unguarded);
    // The same seed replays the same flips; another does not.
    let again = run(&["--timing-faults", "1e-3", "--guard-policy", "off"]);
    assert_eq!(again["timing_faults"]["bits_flipped"], flipped);
    let other = run(&[
        "--timing-faults",
        "1e-3",
        "--guard-policy",
        "off",
        "--seed",
        "2",
    ]);
    assert_ne!(other["timing_faults"]["bits_flipped"], flipped);
    // Misuse is named.
    let onnx = models().join("digits_dscnn.onnx");
    let err = sturdy_err(&[
        "run",
        path(&onnx),
        "--input",
        path(&x),
        "--timing-faults",
        "1e-4",
    ]);
    assert!(err.contains("give an artifact"), "{err}");
    let err = sturdy_err(&[
        "run",
        path(&artifact),
        "--input",
        path(&x),
        "--timing-faults",
        "0.5",
    ]);
    assert!(err.contains("0.125"), "{err}");
}

#[test]
fn aging_calibration_adds_one_aged_copy_per_sample() {
    let dir = scratch("aged-calib");
    let out = dir.join("aged.sturdy");
    let (onnx, calib) = (
        models().join("digits_dscnn.onnx"),
        models().join("digits_calib_x.npy"),
    );
    let text = sturdy_ok(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "--aging",
        "0.3",
        "-o",
        path(&out),
    ]);
    assert!(text.contains("calibrated on 400 samples"), "{text}");
    let plain = quantize_bundled(&dir, "digits_dscnn", "digits_calib_x.npy");
    assert_ne!(std::fs::read(&plain).unwrap(), std::fs::read(&out).unwrap());
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "--aging",
        "1.5",
        "-o",
        path(&out),
    ]);
    assert!(err.contains("(0, 1)"), "{err}");
    let err = sturdy_err(&[
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "--aging",
        "0.3",
        "--method",
        "emaq-lt",
        "-o",
        path(&out),
    ]);
    assert!(err.contains("EmaQ-LT"), "{err}");
}
