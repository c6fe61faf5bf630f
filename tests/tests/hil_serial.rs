//! The transport for real boards (`--board serial:PATH`) against the
//! emulated board: QEMU exposes its UART as a pseudo-terminal, exactly what
//! a USB serial adapter looks like to the host.
//!
//! QEMU is required: without it this test fails with the install command.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use sturdy_tests::hil::{artifact_file, qemu_options, qemu_or_fail};
use sturdy_tools::hil::firmware::default_firmware_dir;
use sturdy_tools::hil::qemu::{machine_args, QEMU};
use sturdy_tools::hil::{build_firmware, run_hil, BoardKind, BoardSpec};

#[test]
fn serial_transport_is_bit_exact_over_a_pty() {
    qemu_or_fail();
    let artifact = artifact_file("digits_nhwc");
    let elf = build_firmware(&artifact, BoardKind::Qemu, &default_firmware_dir(), false).unwrap();
    let mut qemu = Command::new(QEMU)
        .args(machine_args())
        .args(["-display", "none", "-monitor", "none", "-serial", "pty"])
        .arg("-kernel")
        .arg(&elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // QEMU names the pty on stdout before the guest runs; the guest's
    // semihosting log follows on the same stream.
    let mut stdout = BufReader::new(qemu.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let pty = line
        .split_whitespace()
        .find(|w| w.starts_with("/dev/"))
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("no pty in {line:?}"));
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });

    let mut opts = qemu_options("digits_nhwc", artifact.clone());
    opts.board = BoardSpec::Serial(pty);
    opts.limit = Some(40);
    let report = run_hil(&opts);
    let _ = qemu.kill();
    let _ = qemu.wait();
    let _ = std::fs::remove_file(&artifact);
    let report = report.unwrap();
    assert_eq!(report.samples, 40);
    assert!(report.bit_exact(), "{:?}", report.first_mismatches);
    assert!(report.mean_cost() > 0);
}
