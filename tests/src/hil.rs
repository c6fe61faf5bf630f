//! Helpers for the hardware-in-loop tests: QEMU must be there (a missing
//! emulator fails the tests with the install command, it never skips them),
//! and each test gets its own artifact file and board.

use crate::{bundled, quantize_bundled, quantize_bundled_bits};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use sturdy_runtime::ldpc::{Code, Length, Rate};
use sturdy_tools::hil::qemu::require_qemu;
use sturdy_tools::hil::{Client, HilOptions};
use sturdy_tools::protect::{self, key, Options};
use sturdy_tools::quantize::{RangeMethod, WeightBits};

/// Panics with the exact install command when QEMU is missing.
pub fn qemu_or_fail() {
    if let Err(e) = require_qemu() {
        panic!("{e:#}");
    }
}

/// Quantizes bundled model `name` (min/max, int8) into a file of its own
/// (one per call: tests running in parallel remove theirs when done).
pub fn artifact_file(name: &str) -> PathBuf {
    artifact_file_bits(name, WeightBits::Int8)
}

/// [`artifact_file`] with every Conv/FC layer's weights at `bits`.
pub fn artifact_file_bits(name: &str, bits: WeightBits) -> PathBuf {
    let (manifest, model) = bundled(name);
    let bytes =
        quantize_bundled_bits(&manifest, &model, RangeMethod::MinMax, bits).expect("quantize");
    temp_artifact(name, &bytes)
}

/// Writes artifact `bytes` to a temporary file unique to this call.
pub fn temp_artifact(name: &str, bytes: &[u8]) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let path = std::env::temp_dir().join(format!(
        "sturdy-hil-{}-{}-{name}.sturdy",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).expect("write artifact");
    path
}

/// The plain QEMU firmware ELF for bundled model `name` (min/max, int8),
/// built once per artifact; the artifact file is removed afterwards.
pub fn plain_firmware(name: &str) -> PathBuf {
    qemu_or_fail();
    let artifact = artifact_file(name);
    let elf = sturdy_tools::hil::build_firmware(
        &artifact,
        sturdy_tools::hil::BoardKind::Qemu,
        &sturdy_tools::hil::firmware::default_firmware_dir(),
        false,
    );
    let _ = std::fs::remove_file(&artifact);
    elf.expect("firmware builds")
}

/// Options running `artifact` on QEMU over bundled model `name`'s test split.
pub fn qemu_options(name: &str, artifact: PathBuf) -> HilOptions {
    let (manifest, model) = bundled(name);
    qemu_options_for(artifact, manifest.path(&model.test_x))
}

/// Options running `artifact` on QEMU over the samples in `input`.
pub fn qemu_options_for(artifact: PathBuf, input: PathBuf) -> HilOptions {
    HilOptions::qemu(artifact, input)
}

/// A key file and bundled model `name` quantized (min/max) and protected
/// at `rate` with LDPC and tags (in the in-place layout when `in_place`),
/// in files of their own (`tag` names them).
pub fn protected_files(name: &str, tag: &str, rate: Rate, in_place: bool) -> (PathBuf, PathBuf) {
    let (manifest, model) = bundled(name);
    let plain = quantize_bundled(&manifest, &model, RangeMethod::MinMax).unwrap();
    let key: key::Key = [0xA5; 32];
    let options = Options {
        code: Some(Code::new(Length::N1944, rate)),
        mac: true,
        in_place,
        ..Options::default()
    };
    let bytes = protect::protect(&plain, &key, [3; 16], options).unwrap();
    let dir = std::env::temp_dir().join(format!("sturdy-hil-protect-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_path = dir.join("device.key");
    std::fs::write(&key_path, key::to_text(&key)).unwrap();
    let artifact = dir.join(format!("{name}.prot"));
    std::fs::write(&artifact, bytes).unwrap();
    (artifact, key_path)
}

/// Quantized inputs (the first `samples` of `opts.input`) and the host's
/// clean outputs of the protected artifact `opts.artifact` under
/// `opts.key`: what a board running it must answer.
pub fn protected_reference(opts: &HilOptions, samples: usize) -> (Vec<Vec<i8>>, Vec<Vec<i8>>) {
    let bytes = std::fs::read(&opts.artifact).unwrap();
    let k = key::read(opts.key.as_deref().expect("a protected run has a key")).unwrap();
    let (host, health) = sturdy_tools::protect::load_host(&bytes, &k).unwrap();
    assert_eq!(
        health.corrected_bits, 0,
        "the reference is the clean artifact"
    );
    crate::host_outputs(&host, &opts.input, samples)
}

/// Runs every input on the board and requires each output to equal the
/// expected (clean host) one, byte for byte.
pub fn assert_board_matches(client: &mut Client, inputs: &[Vec<i8>], expected: &[Vec<i8>]) {
    for (i, (x, y)) in inputs.iter().zip(expected).enumerate() {
        client.load_input(x).unwrap();
        client.infer(None).unwrap();
        let got = client.read_output(y.len()).unwrap();
        assert_eq!(&got, y, "sample {i} differs from the clean host run");
    }
}
