//! Scrubbing on the emulated Cortex-M4: faults injected over the protocol
//! between scrub passes, at a rising rate, are repaired by bounded scrub
//! steps (no reload), the outputs stay bit-identical with the clean host
//! run, the aging indicator's trend rises with the rate and its alarm fires
//! while every word is still correctable; idle-time scrubbing repairs
//! faults with no request at all; and the cost of a step is measured.
//!
//! QEMU is required: without it these tests fail with the install command.

use std::time::{Duration, Instant};
use sturdy_protocol::ErrorCode;
use sturdy_runtime::ldpc::Rate;
use sturdy_tests::hil::{
    assert_board_matches, protected_files, protected_reference, qemu_options, qemu_or_fail,
};
use sturdy_tools::hil::session::open_board;
use sturdy_tools::hil::{Client, HilOptions, Reply};
use sturdy_tools::protect::inject::flip_positions;

const MODEL: &str = "digits_dscnn";
const SAMPLES: usize = 6;
/// Codewords per scrub step: one full group of the bit-sliced check, the
/// step size whose cost per bit the README reports (this image has 30
/// codewords, so a step is a pass; `tests/tests/scrub.rs` covers passes
/// of many steps).
const STEP: u32 = 32;
/// Codewords per idle slice: small, so a pass takes several slices.
const IDLE_SLICE: u32 = 4;

fn flips(stored_bits: u32, ber: f64, seed: u64) -> Vec<u32> {
    flip_positions(stored_bits as usize, ber, seed)
        .unwrap()
        .into_iter()
        .map(|b| b as u32)
        .collect()
}

fn board(tag: &str, in_place: bool) -> (Client, Option<sturdy_tools::hil::QemuBoard>, HilOptions) {
    qemu_or_fail();
    let (artifact, key_path) = protected_files(MODEL, tag, Rate::R5_6, in_place);
    let opts = HilOptions {
        key: Some(key_path),
        ..qemu_options(MODEL, artifact)
    };
    let (client, qemu, _) = open_board(&opts).unwrap();
    (client, qemu, opts)
}

fn finish(mut client: Client, qemu: Option<sturdy_tools::hil::QemuBoard>) {
    if let Some(qemu) = qemu {
        client.shutdown(0).unwrap();
        let (status, _) = qemu.finish(Duration::from_secs(10)).unwrap();
        assert!(status.success());
    }
}

#[test]
fn rising_faults_are_scrubbed_away_and_the_alarm_fires_first() {
    rising_faults("scrub-in-place", true);
}

/// The decode-into-RAM layout: faults land in the working copy of the
/// stored image (the protocol injects there), which the steps repair; the
/// running decoded copy is rewritten from each checked codeword too, which
/// `tests/tests/scrub.rs` checks on the host with faults in that copy.
#[test]
fn rising_faults_are_scrubbed_away_decoding_into_ram() {
    rising_faults("scrub-sequential", false);
}

fn rising_faults(tag: &str, in_place: bool) {
    let (mut client, qemu, opts) = board(tag, in_place);
    let (inputs, expected) = protected_reference(&opts, SAMPLES);
    let protection = client.info().unwrap().protection.unwrap();
    let start = client
        .stats()
        .unwrap()
        .scrub
        .expect("a coded image has a scrubber");
    assert_eq!((start.passes, start.checked, start.aging.passes), (0, 0, 0));
    // Ten years of daily passes ahead (the default too), scheduling off.
    client.scrub_every(0, 0, 3650).unwrap();
    let mut alarm_at = None;
    let mut trend = Vec::new();
    let mut corrected = 0;
    for pass in 0..6u64 {
        // One interval's flips, at a rate rising with age.
        let injected = flips(protection.stored_bits, 2e-4 * (pass + 1) as f64, 40 + pass);
        client.inject(&injected).unwrap();
        let before = client.stats().unwrap().scrub.unwrap().passes;
        let stats = loop {
            let s = client.scrub(STEP).unwrap();
            assert!(s.last_checked <= STEP, "{s:?}");
            if s.passes > before {
                break s;
            }
        };
        assert_eq!(stats.uncorrectable_words, 0, "pass {pass}");
        assert_eq!(
            (stats.corrected_bits - corrected) as usize,
            injected.len(),
            "pass {pass}: every injected flip repaired"
        );
        corrected = stats.corrected_bits;
        assert_eq!(stats.aging.last_bits as usize, injected.len());
        // No reload: the scrubbed working copy serves the clean outputs.
        assert_board_matches(&mut client, &inputs, &expected);
        trend.push(stats.aging.trend_milli);
        if stats.aging.alarm && alarm_at.is_none() {
            alarm_at = Some((pass, stats.aging));
        }
    }
    let (pass, aging) = alarm_at.unwrap_or_else(|| panic!("no alarm; trend {trend:?}"));
    eprintln!("{tag}: alarm at pass {pass}: {aging:?}");
    assert!(
        aging.last_bits < aging.limit_bits,
        "alarm before the limit: {aging:?}"
    );
    assert!(trend.last().unwrap() > &0, "{trend:?}");
    // A step over clean codewords: the gather and the syndrome check only.
    let clean = client.scrub(STEP).unwrap();
    assert_eq!(clean.corrected_bits, corrected);
    let bits = |checked: u32| f64::from(checked) * f64::from(protection.n);
    eprintln!(
        "{tag}: scrub step of {STEP} codewords: clean {} instructions ({:.1} per stored bit), worst (with decodes) {} ({:.1} per stored bit); indicator {} B RAM",
        clean.last_cost,
        clean.last_cost as f64 / bits(clean.last_checked),
        clean.worst_cost,
        clean.worst_cost as f64 / bits(clean.worst_checked),
        clean.aging.ram_bytes
    );
    assert!(clean.last_cost > 0 && clean.worst_cost >= clean.last_cost);
    finish(client, qemu);
}

#[test]
fn idle_scrubbing_repairs_faults_without_a_request() {
    let (mut client, qemu, opts) = board("scrub-idle", true);
    let (inputs, expected) = protected_reference(&opts, SAMPLES);
    let protection = client.info().unwrap().protection.unwrap();
    let injected = flips(protection.stored_bits, 5e-4, 7);
    client.inject(&injected).unwrap();
    // A slice of 4 codewords every 200 000 instructions of idle time.
    client.scrub_every(200_000, IDLE_SLICE, 3650).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let stats = loop {
        let s = client.stats().unwrap().scrub.unwrap();
        if s.passes >= 1 {
            break s;
        }
        assert!(Instant::now() < deadline, "no idle pass in 60 s: {s:?}");
        std::thread::sleep(Duration::from_millis(50));
    };
    client.scrub_every(0, 0, 3650).unwrap();
    // Requests arrived while the board napped (DelayNs) or ran slices: the
    // receive interrupt queued their bytes, none was lost.
    assert_eq!(client.stats().unwrap().bad_frames, 0);
    assert!(stats.steps > 1, "a pass took several slices: {stats:?}");
    assert!(stats.corrected_bits as usize >= injected.len(), "{stats:?}");
    assert_eq!(stats.uncorrectable_words, 0);
    assert_board_matches(&mut client, &inputs, &expected);
    finish(client, qemu);
}

#[test]
fn a_plain_board_has_no_scrubber() {
    qemu_or_fail();
    let opts = qemu_options(MODEL, sturdy_tests::hil::artifact_file(MODEL));
    let (mut client, qemu, _) = open_board(&opts).unwrap();
    assert_eq!(client.stats().unwrap().scrub, None);
    match client
        .request(&sturdy_protocol::Request::Scrub { codewords: 1 })
        .unwrap()
    {
        Reply::Error(ErrorCode::NotProtected) => {}
        other => panic!("{other:?}"),
    }
    finish(client, qemu);
}
