//! `sturdy verify` as a user drives it: a property file decided one way
//! or the other, a robustness table whose rows add up, and errors that
//! name the property and the field at fault.

use serde_json::Value;
use std::path::{Path, PathBuf};

mod common;
use common::*;

fn quantize_nhwc(dir: &Path) -> PathBuf {
    quantize_bundled(dir, "digits_nhwc", "digits_nhwc_calib_x.npy")
}

#[test]
fn a_property_file_is_decided_and_bad_entries_are_named() {
    let dir = scratch("verify-properties");
    let artifact = quantize_nhwc(&dir);
    let x = models().join("digits_nhwc_test_x.npy");
    let file = dir.join("props.json");
    // A single input keeps its own label (its bounds are exact); no score
    // reaches 127 at sample 0 and every score is at least -128.
    std::fs::write(
        &file,
        r#"{"properties": [
            {"name": "point", "input": {"sample": 0, "eps": 0}, "output": "keeps_label"},
            {"name": "top", "input": {"sample": 0, "eps": 0}, "output": {"score_at_least": {"class": 0, "code": 127}}},
            {"name": "floor", "input": {"sample": 1, "eps": 3}, "output": {"score_at_least": {"class": 4, "code": -128}}}
        ]}"#,
    )
    .unwrap();
    let out = sturdy_ok(&[
        "verify",
        path(&artifact),
        "--input",
        path(&x),
        "--property",
        path(&file),
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let props = report["properties"].as_array().unwrap();
    let status: Vec<&str> = props
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(status, ["proved", "falsified", "proved"]);
    assert_eq!(props[1]["counterexample"].as_array().unwrap().len(), 64);

    let bad = dir.join("bad.json");
    std::fs::write(
        &bad,
        r#"{"properties": [
            {"input": {"sample": 0, "eps": 1}, "output": "keeps_label"},
            {"name": "far", "input": {"sample": 9999, "eps": 1}, "output": "keeps_label"}
        ]}"#,
    )
    .unwrap();
    let err = sturdy_err(&[
        "verify",
        path(&artifact),
        "--input",
        path(&x),
        "--property",
        path(&bad),
    ]);
    assert!(
        err.contains("property 1 (far)") && err.contains("input.sample 9999 is out of range"),
        "{err}"
    );
    std::fs::write(
        &bad,
        r#"{"properties": [{"input": {"sample": 0, "eps": 1}, "output": {"label": 10}}]}"#,
    )
    .unwrap();
    let err = sturdy_err(&[
        "verify",
        path(&artifact),
        "--input",
        path(&x),
        "--property",
        path(&bad),
    ]);
    assert!(
        err.contains("output.label 10 is not a class (the model has 10)"),
        "{err}"
    );
    let err = sturdy_err(&["verify", path(&artifact), "--input", path(&x)]);
    assert!(err.contains("say what to prove"), "{err}");
}

#[test]
fn the_robustness_table_accounts_for_every_sample() {
    let dir = scratch("verify-robustness");
    let artifact = quantize_nhwc(&dir);
    let (x, y) = (
        models().join("digits_nhwc_test_x.npy"),
        models().join("digits_test_y.npy"),
    );
    let out = sturdy_ok(&[
        "verify",
        path(&artifact),
        "--input",
        path(&x),
        "--labels",
        path(&y),
        "--robustness",
        "0,2",
        "--blur",
        "0.5",
        "--samples",
        "8",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let rows = report["labels"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(n("proved") + n("falsified") + n("unknown"), 8, "{r}");
    }
    // Radius 0 is the sample itself: always proved.
    assert_eq!(rows[0]["proved"], 8);
    assert!(
        rows[0]["certified_accuracy"].as_f64().unwrap()
            >= rows[1]["certified_accuracy"].as_f64().unwrap()
    );
    let help = sturdy_ok(&["verify", "--help"]);
    assert!(help.contains("--robustness") && help.contains("Property file"));
}
