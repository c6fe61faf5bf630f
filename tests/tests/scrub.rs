//! Scrubbing (`sturdy_runtime::protect::Scrubber`) on a bundled model: a
//! bounded number of codewords per step, flips repaired where they lie so a
//! whole pass restores the image byte for byte (in place) or the running
//! decoded copy (sequential layout), uncorrectable words left alone and
//! counted, passes reported once each — the aging indicator fed by those
//! passes, and the repair of an image kept in NOR flash.

use embedded_storage::nor_flash::{
    check_erase, check_read, check_write, ErrorType, NorFlash, NorFlashError, NorFlashErrorKind,
    ReadNorFlash,
};
use sturdy_runtime::aging::{AgingIndicator, SAFE_BER_PPM};
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
use sturdy_runtime::protect::{
    find_repairs, load, rewrite_blocks, FlashRepairError, FlashScan, Health, ProtectError, Scrubber,
};
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

/// NOR flash in RAM with the rules a chip enforces: an erase sets whole
/// 1 KiB blocks to 0xFF, a write must be word-aligned and land on erased
/// bytes (each word written once after an erase). Counts the erases.
struct NorInRam {
    bytes: Vec<u8>,
    erased_blocks: u32,
}

#[derive(Debug)]
struct NorFault(NorFlashErrorKind);

impl NorFlashError for NorFault {
    fn kind(&self) -> NorFlashErrorKind {
        self.0
    }
}

impl ErrorType for NorInRam {
    type Error = NorFault;
}

impl ReadNorFlash for NorInRam {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), NorFault> {
        check_read(self, offset, bytes.len()).map_err(NorFault)?;
        let at = offset as usize;
        bytes.copy_from_slice(&self.bytes[at..at + bytes.len()]);
        Ok(())
    }
    fn capacity(&self) -> usize {
        self.bytes.len()
    }
}

impl NorFlash for NorInRam {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 1024;
    fn erase(&mut self, from: u32, to: u32) -> Result<(), NorFault> {
        check_erase(self, from, to).map_err(NorFault)?;
        self.bytes[from as usize..to as usize].fill(0xFF);
        self.erased_blocks += (to - from) / Self::ERASE_SIZE as u32;
        Ok(())
    }
    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), NorFault> {
        check_write(self, offset, bytes.len()).map_err(NorFault)?;
        let target = &mut self.bytes[offset as usize..offset as usize + bytes.len()];
        if target.iter().any(|&b| b != 0xFF) {
            return Err(NorFault(NorFlashErrorKind::Other)); // written twice
        }
        target.copy_from_slice(bytes);
        Ok(())
    }
}

/// Where the artifact lies in the 64 KiB test flash, and its spare block.
const FLASH_AT: u32 = 4096;
const SPARE_AT: u32 = 63 * 1024;

/// A 64 KiB flash holding `bytes` at [`FLASH_AT`], a pattern elsewhere.
fn flash_with(bytes: &[u8]) -> NorInRam {
    let mut flash: Vec<u8> = (0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    flash[FLASH_AT as usize..FLASH_AT as usize + bytes.len()].copy_from_slice(bytes);
    NorInRam {
        bytes: flash,
        erased_blocks: 0,
    }
}

/// One scan of the flash image and a rewrite of what it lists, with at most
/// `F` fixes per scan; returns the scan and the blocks rewritten.
fn repair_once<const F: usize>(flash: &mut NorInRam, len: usize) -> (FlashScan, u32, usize) {
    let at = FLASH_AT as usize;
    let image = AlignedBytes::new(&flash.bytes[at..at + len]);
    let words: &[u32] = bytemuck::cast_slice(image.as_bytes());
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut fixes = heapless::Vec::<u32, F>::new();
    let scan = find_repairs(words, &KEY, &mut scratch, &mut fixes).unwrap();
    let mut chunk = [0u8; 256];
    let range = FLASH_AT..FLASH_AT + len as u32;
    let blocks = rewrite_blocks(flash, range, SPARE_AT, &mut fixes, &mut chunk).unwrap();
    (scan, blocks, fixes.len())
}

#[test]
fn a_flash_image_is_repaired_block_by_block_through_a_spare() {
    let clean = protected(false, Rate::R5_6);
    let mut bytes = clean.clone();
    let flipped = flip_bits(&mut bytes, 3e-4, 11);
    assert!(flipped.len() >= 5, "{} flips", flipped.len());
    let mut flash = flash_with(&bytes);
    let before = flash.bytes.clone();
    let (scan, blocks, fixes) = repair_once::<256>(&mut flash, clean.len());
    assert!(scan.complete && scan.uncorrectable_words == 0, "{scan:?}");
    assert_eq!(fixes, flipped.len(), "every flipped bit listed once");
    // The blocks holding a flip, each erased once, plus the spare per block.
    let start = region_range(&clean, Region::Weights).unwrap().start;
    let mut touched: Vec<usize> = (flipped.iter())
        .map(|b| (FLASH_AT as usize + start + b / 8) / 1024)
        .collect();
    touched.dedup();
    assert_eq!(blocks as usize, touched.len());
    assert_eq!(flash.erased_blocks, 2 * blocks);
    let at = FLASH_AT as usize;
    assert!(
        flash.bytes[at..at + clean.len()] == clean[..],
        "image restored"
    );
    assert!(
        flash.bytes[..at] == before[..at],
        "nothing before it touched"
    );
    let after = at + clean.len();
    assert!(flash.bytes[after..SPARE_AT as usize] == before[after..SPARE_AT as usize]);
}

#[test]
fn a_short_fix_list_repairs_over_several_scans() {
    let clean = protected(true, Rate::R1_2);
    let mut bytes = clean.clone();
    let flipped = flip_bits(&mut bytes, 1e-3, 12);
    let mut flash = flash_with(&bytes);
    let mut scans = 0;
    loop {
        let (scan, _, fixes) = repair_once::<8>(&mut flash, clean.len());
        assert!(fixes <= 8);
        scans += 1;
        if scan.complete {
            break;
        }
    }
    assert!(
        scans > flipped.len() / 8,
        "{scans} scans for {} flips",
        flipped.len()
    );
    let at = FLASH_AT as usize;
    assert!(flash.bytes[at..at + clean.len()] == clean[..]);
}

#[test]
fn a_spare_sharing_a_block_with_the_artifact_or_a_bad_chunk_is_refused() {
    let clean = protected(false, Rate::R5_6);
    let mut flash = flash_with(&clean);
    let range = FLASH_AT..FLASH_AT + clean.len() as u32;
    let mut fixes = [8u32];
    let bad = [
        (FLASH_AT + 1024, 256usize), // inside the artifact
        (SPARE_AT + 4, 256),         // not block-aligned
        (SPARE_AT, 3),               // not whole words
        (SPARE_AT, 0),
    ];
    for (spare, chunk) in bad {
        let mut chunk = vec![0u8; chunk];
        let got = rewrite_blocks(&mut flash, range.clone(), spare, &mut fixes, &mut chunk);
        assert!(
            matches!(got, Err(FlashRepairError::BadLayout)),
            "{spare} {}",
            chunk.len()
        );
    }
    let mut outside = [clean.len() as u32 * 8];
    let got = rewrite_blocks(&mut flash, range, SPARE_AT, &mut outside, &mut [0; 256]);
    assert!(matches!(got, Err(FlashRepairError::BadLayout)));
    assert_eq!(flash.erased_blocks, 0, "a refused rewrite erases nothing");
}
