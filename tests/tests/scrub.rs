//! Scrubbing (`sturdy_runtime::protect::Scrubber`) on a bundled model: a
//! bounded number of codewords per step, flips repaired where they lie so a
//! whole pass restores the image byte for byte (in place) or the running
//! decoded copy (sequential layout), uncorrectable words left alone and
//! counted, passes reported once each — and the aging indicator fed by
//! those passes.

use sturdy_runtime::aging::{AgingIndicator, SAFE_BER_PPM};
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
use sturdy_runtime::protect::{load, Health, ProtectError, Scrubber};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::protect::inject::{flip_positions, region_range, Region};
use sturdy_tools::protect::{self, split_inner, Options};

const KEY: [u8; 32] = [0x5a; 32];
const NONCE: [u8; 16] = [3; 16];

/// Flips stored bits of protected `bytes` with probability `ber` (seeded),
/// over the codewords' `C·n` bits only (the coded section's last word may
/// carry padding no codeword covers); returns the bits flipped.
fn flip_bits(bytes: &mut [u8], ber: f64, seed: u64) -> Vec<usize> {
    let start = region_range(bytes, Region::Weights).unwrap().start;
    let aligned = AlignedBytes::new(bytes);
    let p = sturdy_runtime::protect::ProtectedArtifact::parse(aligned.as_bytes()).unwrap();
    let bits = p.header().codewords as usize * p.code().unwrap().n();
    let flipped = flip_positions(bits, ber, seed).unwrap();
    for &bit in &flipped {
        bytes[start + bit / 8] ^= 1 << (bit % 8);
    }
    flipped
}

fn plain() -> Vec<u8> {
    sturdy_tests::clean_run("digits_dscnn", 1).plain
}

fn protected(in_place: bool, rate: Rate) -> Vec<u8> {
    let plain = plain();
    let options = Options {
        reparam: false,
        code: Some(Code::new(Length::N648, rate)),
        in_place,
        ..Options::default()
    };
    protect::protect(&plain, &KEY, NONCE, options).unwrap()
}

/// Runs whole steps of `budget` until one completes a pass; returns the
/// pass's counts and the number of steps it took.
fn scrub_pass(
    scrubber: &mut Scrubber,
    image: &mut AlignedBytes,
    decoded: &mut [u32],
    budget: u32,
) -> (sturdy_runtime::protect::ScrubCounts, u32) {
    let mut scratch: Box<DecoderScratch> = Box::default();
    for steps in 1.. {
        let step = scrubber
            .step(image.words_mut(), decoded, budget, &mut scratch)
            .unwrap();
        assert!(step.counts.checked <= budget, "{step:?}");
        if let Some(pass) = step.completed_pass {
            return (pass, steps);
        }
    }
    unreachable!()
}

#[test]
fn one_pass_repairs_the_in_place_image_byte_for_byte() {
    let clean = protected(true, Rate::R5_6);
    let mut bytes = clean.clone();
    let flipped = flip_bits(&mut bytes, 2e-4, 11);
    assert!(flipped.len() >= 5, "{}", flipped.len());
    let mut image = AlignedBytes::new(&bytes);
    let mut scrubber = Scrubber::new(image.as_bytes(), &KEY).unwrap();
    let codewords = scrubber.codewords();
    let (pass, steps) = scrub_pass(&mut scrubber, &mut image, &mut [], 7);
    assert_eq!(steps, codewords.div_ceil(7));
    assert_eq!(pass.checked, codewords);
    assert_eq!(pass.corrected_bits as usize, flipped.len());
    assert_eq!(pass.uncorrectable_words, 0);
    assert_eq!(image.as_bytes(), &clean[..], "the image is restored");
    // A second pass finds nothing.
    let (again, _) = scrub_pass(&mut scrubber, &mut image, &mut [], 1000);
    assert_eq!((again.corrected_bits, again.checked), (0, codewords));
    assert_eq!(scrubber.passes(), 2);
}

#[test]
fn the_sequential_layout_repairs_the_running_decoded_copy_too() {
    let clean = protected(false, Rate::R1_2);
    let (inner, _) = split_inner(&plain()).unwrap();
    let aligned = AlignedBytes::new(&clean);
    let mut decoded = vec![0u32; inner.len().div_ceil(4)];
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    load(
        aligned.as_bytes(),
        &KEY,
        &mut decoded,
        &mut scratch,
        &mut health,
    )
    .unwrap();
    let pristine = decoded.clone();
    // Soft errors in the running copy and in the stored image.
    for bit in [5usize, 77, 1000, 4321] {
        decoded[bit / 32] ^= 1 << (bit % 32);
    }
    let mut bytes = clean.clone();
    let flipped = flip_bits(&mut bytes, 3e-4, 5);
    let mut image = AlignedBytes::new(&bytes);
    let mut scrubber = Scrubber::new(image.as_bytes(), &KEY).unwrap();
    let (pass, _) = scrub_pass(&mut scrubber, &mut image, &mut decoded, 16);
    assert_eq!(pass.corrected_bits as usize, flipped.len());
    assert_eq!(pass.decoded_bits_repaired, 4);
    assert_eq!(decoded, pristine);
    assert_eq!(image.as_bytes(), &clean[..]);
}

#[test]
fn uncorrectable_words_are_counted_and_left_alone() {
    let clean = protected(true, Rate::R5_6);
    let mut bytes = clean.clone();
    // 5 % of the stored bits: far past what rate 5/6 corrects.
    flip_bits(&mut bytes, 5e-2, 2);
    let mut image = AlignedBytes::new(&bytes);
    let mut scrubber = Scrubber::new(image.as_bytes(), &KEY).unwrap();
    let (pass, _) = scrub_pass(&mut scrubber, &mut image, &mut [], 50);
    assert!(pass.uncorrectable_words > 0, "{pass:?}");
    assert_eq!(pass.checked, scrubber.codewords());
}

#[test]
fn wrong_key_uncoded_and_short_images_are_refused() {
    let clean = protected(true, Rate::R5_6);
    let aligned = AlignedBytes::new(&clean);
    assert!(matches!(
        Scrubber::new(aligned.as_bytes(), &[0; 32]),
        Err(ProtectError::WrongKey)
    ));
    let plain = plain();
    let tags_only = Options {
        code: None,
        ..Options::default()
    };
    let uncoded = protect::protect(&plain, &KEY, NONCE, tags_only).unwrap();
    let uncoded = AlignedBytes::new(&uncoded);
    assert!(Scrubber::new(uncoded.as_bytes(), &KEY).is_err());
    let mut scrubber = Scrubber::new(aligned.as_bytes(), &KEY).unwrap();
    let mut short = vec![0u32; 16];
    let mut scratch: Box<DecoderScratch> = Box::default();
    assert!(scrubber.step(&mut short, &mut [], 4, &mut scratch).is_err());
    // A scratch too small for the code is an error, not 100 % damage.
    let mut image = AlignedBytes::new(&clean);
    let mut small: Box<DecoderScratch<648, 100>> = Box::default();
    assert!(matches!(
        scrubber.step(image.words_mut(), &mut [], 4, &mut small),
        Err(ProtectError::RamTooSmall { .. })
    ));
    assert_eq!(scrubber.position(), 0, "a refused step checks nothing");
}

/// Scrubs `passes` intervals whose flips are drawn at `ber(pass)`; returns
/// the indicator's report after each pass and checks every pass repaired
/// all it found.
fn aging_run(passes: u64, ber: impl Fn(u64) -> f64) -> Vec<sturdy_runtime::aging::AgingReport> {
    let clean = protected(true, Rate::R5_6);
    let stored_bits = (region_range(&clean, Region::Weights).unwrap().len() * 8) as u32;
    // Ten years of daily passes ahead.
    let mut indicator = AgingIndicator::new(stored_bits, SAFE_BER_PPM, 3650);
    let mut image = AlignedBytes::new(&clean);
    let mut scrubber = Scrubber::new(image.as_bytes(), &KEY).unwrap();
    let mut reports = Vec::new();
    for pass in 0..passes {
        // Flips accumulated over one interval.
        let mut bytes = image.as_bytes().to_vec();
        flip_bits(&mut bytes, ber(pass), 100 + pass);
        image = AlignedBytes::new(&bytes);
        let (counts, _) = scrub_pass(&mut scrubber, &mut image, &mut [], 64);
        assert_eq!(counts.uncorrectable_words, 0, "pass {pass}");
        indicator.record(counts.corrected_bits, counts.uncorrectable_words);
        reports.push(indicator.report());
    }
    assert_eq!(image.as_bytes(), &clean[..]);
    reports
}

#[test]
fn a_steady_error_rate_does_not_raise_the_alarm() {
    let reports = aging_run(12, |_| 2e-4);
    let last = reports.last().unwrap();
    assert!(last.last_bits > 0, "{last:?}");
    assert!(reports.iter().all(|r| !r.alarm), "{reports:?}");
}

#[test]
fn a_rising_error_rate_raises_the_alarm_before_any_word_is_lost() {
    // Uncorrectable words would fail `aging_run`'s checks.
    let reports = aging_run(8, |pass| 1e-4 * (pass + 1) as f64);
    let first = reports.iter().position(|r| r.alarm);
    let last = reports.last().unwrap();
    assert!(last.trend_lower_milli > 0, "{reports:?}");
    // It fires within the first half, not only once the rate is highest.
    assert!(first.is_some_and(|p| p < 4), "{reports:?}");
    // It fires while a pass still corrects far fewer bits than the limit.
    let at = &reports[first.unwrap()];
    assert!(at.last_bits < at.limit_bits / 2, "{at:?}");
}
