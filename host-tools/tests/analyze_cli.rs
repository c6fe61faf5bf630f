//! `sturdy analyze` as a user drives it: a whole report on the bundled
//! MNIST CNN with a key, the page opened in a real browser, clear refusals
//! of bad input, and nothing half-written when a run is interrupted.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::*;

fn mnist_args<'a>(test_x: &'a str, test_y: &'a str) -> Vec<&'a str> {
    vec!["--input", test_x, "--labels", test_y]
}

fn files() -> (PathBuf, PathBuf, PathBuf) {
    (
        models().join("mnist_cnn.onnx"),
        models().join("mnist_test_x.npy"),
        models().join("mnist_test_y.npy"),
    )
}

/// Renders `page` in headless Chromium to `png`; returns what Chromium
/// logged (console messages appear as `:CONSOLE` lines).
fn screenshot(page: &Path, png: &Path) -> String {
    let profile = png.with_extension("profile");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,1400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .expect("chromium runs (`cargo xtask test` installs Debian's chromium)");
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Fraction of pixels that differ from the top-left one, and the number
/// of distinct colours (a blank page has 0 and 1).
fn ink(png: &Path) -> (f64, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let px = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(px).collect();
    let background = pixels[0];
    let differ = pixels.iter().filter(|p| *p != &background).count();
    let colours: std::collections::HashSet<&[u8]> = pixels.iter().copied().collect();
    (differ as f64 / pixels.len() as f64, colours.len())
}

#[test]
fn a_protected_mnist_report_holds_every_section_and_renders_in_a_browser() {
    let dir = scratch("analyze-full");
    let (onnx, x, y) = files();
    let key = dir.join("device.key");
    sturdy_ok(&["keygen", "-o", path(&key)]);
    let out = dir.join("report");
    let mut args = vec!["analyze", path(&onnx)];
    args.extend(mnist_args(path(&x), path(&y)));
    args.extend([
        "--key",
        path(&key),
        "--samples",
        "150",
        "--seeds",
        "2",
        "--max-flips",
        "30",
        "--verify-samples",
        "12",
        "--flash",
        "100000",
        "--ram",
        "4096",
        "-o",
        path(&out),
    ]);
    sturdy_ok(&args);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    for section in [
        "fit",
        "fidelity",
        "faults",
        "attacks",
        "verification",
        "cost",
    ] {
        assert!(report[section].is_object(), "report.json lacks {section}");
    }
    // Every verification row decides each of the 12 samples one way.
    let rows = report["verification"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5, "±1, ±2, ±4 codes, blur σ 0.5 and 1");
    for r in rows {
        let n = |k: &str| r[k].as_u64().unwrap();
        assert_eq!(n("proved") + n("falsified") + n("unknown"), 12, "{r}");
    }
    // The arena (7,840 bytes, see `sturdy inspect`) exceeds a 4 KiB budget.
    assert_eq!(report["summary"]["fits"], Value::Bool(false));
    assert_eq!(report["fit"]["arena_bytes"], 7840);
    // The float accuracy is tract's on the whole test split: onnxruntime
    // measured the same model at this figure (models/expected_float.json).
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(models().join("expected_float.json")).unwrap(),
    )
    .unwrap();
    let float = report["summary"]["float_accuracy"].as_f64().unwrap();
    assert!((float - expected["mnist_cnn"]["accuracy"].as_f64().unwrap()).abs() < 0.002);
    let flips = report["summary"]["bfa_flips_plain"]
        .as_u64()
        .expect("the attack breaks the plain model");
    assert!(flips <= 30);
    assert_eq!(
        report["summary"]["bfa_protected_accuracy"], report["attacks"]["bfa"]["plain_curve"][0],
        "the protected artifact keeps its clean accuracy under the attack's flips"
    );
    assert_eq!(report["settings"]["seeds"], 2);

    let html = out.join("report.html");
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg"), "the report draws its plots inline");
    let png = dir.join("summary.png");
    let log = screenshot(&html, &png);
    assert!(
        !log.contains(":CONSOLE"),
        "the page logged to the console:\n{log}"
    );
    let (covered, colours) = ink(&png);
    assert!(
        covered > 0.02 && colours > 16,
        "the screenshot looks blank ({covered}, {colours} colours)"
    );
}

#[test]
fn bad_input_is_refused_with_the_reason() {
    let dir = scratch("analyze-errors");
    let (onnx, x, _) = files();
    let out = dir.join("r");
    let short_labels = models().join("digits_test_y.npy");
    let mut args = vec!["analyze", path(&onnx)];
    args.extend(mnist_args(path(&x), path(&short_labels)));
    args.extend(["-o", path(&out)]);
    let err = sturdy_err(&args);
    assert!(err.contains("must pair one to one"), "{err}");

    let err = sturdy_err(&[
        "analyze",
        path(&onnx),
        "--input",
        path(&x),
        "--sections",
        "fit,speed",
        "-o",
        path(&out),
    ]);
    assert!(err.contains("unknown section 'speed'"), "{err}");
    let err = sturdy_err(&[
        "analyze",
        path(&onnx),
        "--input",
        path(&x),
        "--sections",
        "aging",
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("the aging section needs --profile, --key and --labels"),
        "{err}"
    );

    let artifact = dir.join("digits.sturdy");
    let key = dir.join("k.key");
    sturdy_ok(&[
        "quantize",
        path(&models().join("digits_dscnn.onnx")),
        "--calib",
        path(&models().join("digits_calib_x.npy")),
        "-o",
        path(&artifact),
    ]);
    sturdy_ok(&["keygen", "-o", path(&key)]);
    let protected = dir.join("digits.prot");
    sturdy_ok(&[
        "protect",
        path(&artifact),
        "--key",
        path(&key),
        "-o",
        path(&protected),
    ]);
    let err = sturdy_err(&[
        "analyze",
        path(&protected),
        "--input",
        path(&models().join("digits_test_x.npy")),
        "-o",
        path(&out),
    ]);
    assert!(
        err.contains("is a protected artifact: give its key with --key"),
        "{err}"
    );
    assert!(!out.exists(), "a refused run writes nothing");
}

/// Under the stress profile (raw BER ≈ 4e-4 after one year, ≈ 4e-3 at
/// the end: hundreds of flips in the 238,080 stored bits of the plain
/// MNIST CNN) an unprotected model cannot survive, while the planned code
/// with its yearly scrub sees one interval's flips, far inside what it
/// corrects.
#[test]
fn the_aging_section_shows_decay_unprotected_and_the_planned_scrub_holding() {
    let dir = scratch("analyze-aging");
    let (onnx, x, y) = files();
    let key = dir.join("device.key");
    sturdy_ok(&["keygen", "-o", path(&key)]);
    let out = dir.join("report");
    let mut args = vec!["analyze", path(&onnx)];
    args.extend(mnist_args(path(&x), path(&y)));
    let stress = models().join("profiles/stress.toml");
    args.extend([
        "--key",
        path(&key),
        "--profile",
        path(&stress),
        "--sections",
        "aging",
        "--samples",
        "200",
        "-o",
        path(&out),
    ]);
    sturdy_ok(&args);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let aging = &report["aging"];
    assert!(
        aging["plan"].as_str().unwrap().contains("scrub every"),
        "{aging}"
    );
    let clean = aging["clean_accuracy"].as_f64().unwrap();
    assert!(clean > 0.95, "clean {clean}");
    let curves = aging["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 3);
    let end = |i: usize, field: &str| {
        curves[i][field]
            .as_array()
            .unwrap()
            .last()
            .and_then(Value::as_f64)
            .unwrap()
    };
    for c in curves {
        assert_eq!(c["years"][0], 0.0, "curves start at deployment");
        assert_eq!(c["accuracy"][0], clean);
        assert_eq!(c["years"].as_array().unwrap().last().unwrap(), 10.0);
    }
    assert!(curves[0]["name"]
        .as_str()
        .unwrap()
        .starts_with("unprotected"));
    assert!(end(0, "accuracy") < 0.2, "{}", curves[0]);
    assert!(
        curves[0]["uncorrectable_words"].is_null(),
        "no code, no codewords"
    );
    assert!(curves[2]["name"]
        .as_str()
        .unwrap()
        .contains("scrubbed every"));
    assert_eq!(end(2, "worst_accuracy"), clean, "{}", curves[2]);
    assert_eq!(curves[2]["uncorrectable_words"], 0);
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("<h2>Aging over the mission</h2>"));
    assert!(!page.contains("<h2>Fit</h2>"), "only the asked section");
}

/// `--board qemu`: the per-op counts come from the emulated Cortex-M4 (the
/// board's outputs are checked against the host's before any figure is
/// kept), they add up to the inference, and the protected artifact pays
/// its load once at boot, not per inference.
#[test]
fn board_figures_come_from_the_emulated_cortex_m4() {
    let dir = scratch("analyze-board");
    let key = dir.join("device.key");
    sturdy_ok(&["keygen", "-o", path(&key)]);
    let out = dir.join("report");
    let (onnx, x, calib) = (
        models().join("digits_dscnn.onnx"),
        models().join("digits_test_x.npy"),
        models().join("digits_calib_x.npy"),
    );
    sturdy_ok(&[
        "analyze",
        path(&onnx),
        "--calib",
        path(&calib),
        "--input",
        path(&x),
        "--key",
        path(&key),
        "--board",
        "qemu",
        "--sections",
        "fit,cost",
        "-o",
        path(&out),
    ]);
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let plain = &report["fit"]["board"];
    assert_eq!(plain["unit"], "instructions", "QEMU counts instructions");
    let per_op: Vec<u64> = plain["instructions_per_op"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(
        per_op.len(),
        report["fit"]["layers"].as_array().unwrap().len()
    );
    assert!(per_op.iter().all(|&n| n > 0), "{per_op:?}");
    let total = plain["instructions_total"].as_u64().unwrap();
    let sum: u64 = per_op.iter().sum();
    assert!(
        sum <= total && sum as f64 > 0.95 * total as f64,
        "ops {sum} of inference {total}"
    );
    assert!(
        plain["load"].is_null(),
        "a plain artifact has no protected load"
    );
    let protected = &report["cost"]["board"];
    assert!(protected["load"].as_u64().unwrap() > total, "{protected}");
    let inference = protected["instructions_total"].as_u64().unwrap();
    assert!(
        (inference as f64 - total as f64).abs() < 0.01 * total as f64,
        "decoded into RAM, a protected inference costs what a plain one does: {inference} vs {total}"
    );
    let page = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(page.contains("instructions / MAC"));
}

#[test]
fn an_interrupted_run_leaves_no_report_behind() {
    let dir = scratch("analyze-interrupted");
    let (onnx, x, y) = files();
    let out = dir.join("r");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sturdy"))
        .args([
            "analyze",
            path(&onnx),
            "--input",
            path(&x),
            "--labels",
            path(&y),
            "-o",
            path(&out),
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the full analysis takes longer than 3 s"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let left: Vec<_> = std::fs::read_dir(&out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "an interrupted run left {left:?}");
}
