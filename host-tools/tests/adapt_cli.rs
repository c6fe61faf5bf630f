//! `sturdy quantize --drift-monitor` and `sturdy run --adapt` as a user
//! drives them: a swapped sensor is found where it was swapped, and the
//! ways to misuse `--adapt` are refused with the fix named.

use serde_json::Value;

mod common;
use common::*;

#[test]
fn a_sensor_swap_is_found_and_misuse_is_named() {
    let dir = scratch("adapt");
    let m = models();
    let domains = m.join("lt_mnist_calib_d.npy");
    let artifact = quantize_bundled_with(
        &dir,
        "lt_mnist",
        "lt_mnist_calib_x.npy",
        &[
            "--method",
            "emaq-lt",
            "--domains",
            path(&domains),
            "--drift-monitor",
        ],
    );
    let x = m.join("drift/lt_mnist_swap_x.npy");
    let y = m.join("drift/lt_mnist_swap_y.npy");
    let out = sturdy_ok(&[
        "run",
        path(&artifact),
        "--input",
        path(&x),
        "--labels",
        path(&y),
        "--adapt",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let drift = &report["drift"];
    // The swap is at sample 750 of 1500: the first alarm is within a few
    // samples of it, and the statistic is reported for every sample.
    let alarm = drift["first_alarm"].as_u64().unwrap();
    assert!((750..760).contains(&alarm), "{drift}");
    assert_eq!(drift["statistic"].as_array().unwrap().len(), 1500);
    // The re-fit waits one judging window (32 samples) after the alarm, so
    // that its histogram holds only the new sensor.
    assert_eq!(drift["refit_at"][0].as_u64(), Some(alarm + 32));
    let thirds = drift["accuracy_by_third"].as_array().unwrap();
    assert!(thirds[2].as_f64().unwrap() > 0.7, "{drift}");

    let err = sturdy_err(&[
        "run",
        path(&artifact),
        "--input",
        path(&x),
        "--adapt",
        "--domains",
        path(&m.join("lt_mnist_test_d.npy")),
    ]);
    assert!(err.contains("drop --domains"), "{err}");
    let err = sturdy_err(&[
        "run",
        path(&m.join("lt_mnist.onnx")),
        "--input",
        path(&x),
        "--adapt",
    ]);
    assert!(err.contains("give an artifact"), "{err}");
    let plain = quantize_bundled(&scratch("adapt-plain"), "lt_mnist", "lt_mnist_calib_x.npy");
    let err = sturdy_err(&["run", path(&plain), "--input", path(&x), "--adapt"]);
    assert!(err.contains("--drift-monitor"), "{err}");
}
