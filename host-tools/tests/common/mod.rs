//! Driving the `sturdy` binary from integration tests: run it, require
//! success or failure, scratch directories, the bundled models.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The bundled models directory.
pub fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

/// Runs `sturdy` with `args`.
pub fn sturdy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sturdy"))
        .args(args)
        .output()
        .expect("the sturdy binary runs")
}

/// Runs `sturdy`, requires success and returns stdout.
pub fn sturdy_ok(args: &[&str]) -> String {
    let out = sturdy(args);
    assert!(
        out.status.success(),
        "sturdy {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `sturdy`, requires failure and returns stderr.
pub fn sturdy_err(args: &[&str]) -> String {
    let out = sturdy(args);
    assert!(
        !out.status.success(),
        "sturdy {args:?} unexpectedly succeeded"
    );
    String::from_utf8(out.stderr).unwrap()
}

/// A path as the `&str` an argument list wants.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch directory unique to one test.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sturdy-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sturdy quantize models/NAME.onnx --calib models/CALIB -o DIR/NAME.sturdy`;
/// returns the artifact's path.
pub fn quantize_bundled(dir: &Path, name: &str, calib: &str) -> PathBuf {
    quantize_bundled_with(dir, name, calib, &[])
}

/// [`quantize_bundled`] with `extra` quantize options (the output file is
/// named after the model, so one call per model and directory).
pub fn quantize_bundled_with(dir: &Path, name: &str, calib: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.sturdy"));
    let (onnx, calib) = (models().join(format!("{name}.onnx")), models().join(calib));
    let mut args = vec![
        "quantize",
        path(&onnx),
        "--calib",
        path(&calib),
        "-o",
        path(&out),
    ];
    args.extend_from_slice(extra);
    sturdy_ok(&args);
    out
}
