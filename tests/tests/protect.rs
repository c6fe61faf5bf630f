//! PARDEF layers 2 and 3 end to end on a bundled model: coded storage
//! repairs random flips bit-exactly, tags refuse tampering and wrong keys,
//! and the protected parser survives arbitrary bytes.

use proptest::prelude::*;
use std::sync::OnceLock;
use sturdy_runtime::format::*;
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
use sturdy_runtime::protect::{load, Health, ProtectError, ProtectedArtifact};
use sturdy_tests::{clean_run, CleanRun};
use sturdy_tools::artifact_writer::assemble;
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::protect::inject::{flip_bits, region_range, Region};
use sturdy_tools::protect::{self, load_host, Options};

const MODEL: &str = "digits_dscnn";
const KEY: [u8; 32] = [0x5a; 32];
const SAMPLES: usize = 120;

fn fixture() -> &'static CleanRun {
    static F: OnceLock<CleanRun> = OnceLock::new();
    F.get_or_init(|| clean_run(MODEL, SAMPLES))
}

fn protected(rate: Rate, mac: bool) -> Vec<u8> {
    let options = Options {
        code: Some(Code::new(Length::N1944, rate)),
        mac,
        ..Options::default()
    };
    protect::protect(&fixture().plain, &KEY, [7; 16], options).unwrap()
}

/// Outputs of `host` on the fixture's inputs; a failed inference is `None`.
fn outputs(host: &HostModel) -> Vec<Option<Vec<i8>>> {
    fixture()
        .inputs
        .iter()
        .map(|x| host.infer_quantized(x).ok())
        .collect()
}

fn identical_to_clean(outs: &[Option<Vec<i8>>]) -> usize {
    outs.iter()
        .zip(&fixture().clean)
        .filter(|(o, c)| o.as_ref() == Some(c))
        .count()
}

#[test]
fn clean_protected_model_runs_bit_exactly_at_every_rate() {
    for rate in Rate::ALL {
        let bytes = protected(rate, true);
        let (host, health) = load_host(&bytes, &KEY).unwrap();
        assert_eq!(identical_to_clean(&outputs(&host)), SAMPLES);
        assert!(health.codewords_checked > 0 && health.blocks_checked > 0);
        assert_eq!(
            (
                health.corrected_words,
                health.uncorrectable_words,
                health.mac_failures
            ),
            (0, 0, 0)
        );
    }
}

#[test]
fn ber_1e3_is_repaired_bit_exactly_and_unprotected_degrades() {
    let f = fixture();
    for (rate, seeds) in [(Rate::R5_6, 0..6u64), (Rate::R1_2, 0..3)] {
        let bytes = protected(rate, true);
        for seed in seeds {
            let mut hit = bytes.clone();
            let range = region_range(&hit, Region::Weights).unwrap();
            let flips = flip_bits(&mut hit, range, 1e-3, seed).unwrap();
            assert!(!flips.is_empty());
            let (host, health) = load_host(&hit, &KEY).unwrap();
            assert_eq!(
                identical_to_clean(&outputs(&host)),
                SAMPLES,
                "rate {rate:?} seed {seed}"
            );
            assert_eq!(health.corrected_bits as usize, flips.len());
            assert_eq!(health.uncorrectable_words, 0);
        }
    }
    // The same fault rate on the plain artifact's weights changes outputs.
    let mut degraded = 0;
    for seed in 0..6u64 {
        let mut hit = f.plain.clone();
        let range = region_range(&hit, Region::Weights).unwrap();
        flip_bits(&mut hit, range, 1e-3, seed).unwrap();
        let host = HostModel::from_bytes(&hit);
        let same = host.map_or(0, |h| identical_to_clean(&outputs(&h)));
        degraded += SAMPLES - same;
    }
    assert!(
        degraded > 0,
        "unprotected weights at BER 1e-3 should change some outputs"
    );
}

/// Splices a new coded image under the original protection section (same
/// nonce, header and tags): what an attacker who could re-encode codewords
/// consistently, but not forge tags, can produce.
fn splice(original: &[u8], coded: &[u8]) -> Vec<u8> {
    let a = AlignedBytes::new(original);
    let header: Header = bytemuck::pod_read_unaligned(&original[..HEADER_SIZE]);
    let entry = |kind| {
        (0..header.section_count as usize)
            .map(|i| {
                let at = HEADER_SIZE + i * SECTION_ENTRY_SIZE;
                bytemuck::pod_read_unaligned::<SectionEntry>(&original[at..at + SECTION_ENTRY_SIZE])
            })
            .find(|s| s.kind == kind)
            .map(|s| &a.as_bytes()[s.offset as usize..(s.offset + s.len) as usize])
            .unwrap()
            .to_vec()
    };
    let new_header: Header = bytemuck::pod_read_unaligned(&coded[..HEADER_SIZE]);
    let coded_section = (0..new_header.section_count as usize)
        .map(|i| {
            let at = HEADER_SIZE + i * SECTION_ENTRY_SIZE;
            bytemuck::pod_read_unaligned::<SectionEntry>(&coded[at..at + SECTION_ENTRY_SIZE])
        })
        .find(|s| s.kind == SECTION_CODED)
        .map(|s| coded[s.offset as usize..(s.offset + s.len) as usize].to_vec())
        .unwrap();
    assemble(&[
        (SECTION_PROTECTION, &entry(SECTION_PROTECTION)),
        (SECTION_CODED, &coded_section),
        (SECTION_META, &entry(SECTION_META)),
    ])
    .unwrap()
}

#[test]
fn tampered_block_is_refused_even_when_ldpc_consistent() {
    let f = fixture();
    let original = protected(Rate::R5_6, true);
    // Flip the sign and high bits of a few weight bytes in the plain model,
    // then re-encode with the same key and nonce: every codeword is valid.
    let a = AlignedBytes::new(&f.plain);
    let model = sturdy_runtime::Model::parse(a.as_bytes()).unwrap();
    let weights_at = model
        .artifact()
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_WEIGHTS)
        .unwrap()
        .offset as usize;
    let mut tampered = f.plain.clone();
    for i in [0, 17, 40] {
        tampered[weights_at + i] ^= 0xC0;
    }
    let options = Options {
        code: Some(Code::new(Length::N1944, Rate::R5_6)),
        ..Options::default()
    };
    let recoded = protect::protect(&tampered, &KEY, [7; 16], options).unwrap();
    let forged = splice(&original, &recoded);
    let aligned = AlignedBytes::new(&forged);
    let mut ram = vec![
        0u32;
        ProtectedArtifact::parse(aligned.as_bytes())
            .unwrap()
            .inner_len()
            / 4
    ];
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    let err = load(
        aligned.as_bytes(),
        &KEY,
        &mut ram,
        &mut scratch,
        &mut health,
    )
    .unwrap_err();
    assert!(matches!(err, ProtectError::TagMismatch { .. }), "{err:?}");
    assert_eq!(health.uncorrectable_words, 0);
    assert_eq!(health.corrected_words, 0, "every codeword was valid");
    assert!(health.mac_failures >= 1);
    // Control: the untampered splice loads.
    let honest = splice(&original, &original);
    assert!(load_host(&honest, &KEY).is_ok());

    // Without tags the same forgery loads and silently computes something else.
    let untagged = protected(Rate::R5_6, false);
    let options = Options {
        code: Some(Code::new(Length::N1944, Rate::R5_6)),
        mac: false,
        ..Options::default()
    };
    let recoded = protect::protect(&tampered, &KEY, [7; 16], options).unwrap();
    let forged = splice(&untagged, &recoded);
    assert!(load_host(&forged, &KEY).is_ok());
}

#[test]
fn wrong_key_and_missing_key_are_refused() {
    let bytes = protected(Rate::R3_4, true);
    let err = load_host(&bytes, &[0xa5; 32]).unwrap_err();
    assert!(format!("{err:#}").contains("wrong key"), "{err:#}");
    let err = HostModel::from_bytes(&bytes).unwrap_err();
    assert!(format!("{err:#}").contains("protected"), "{err:#}");
    // Too many flips: a typed refusal, never a wrong model.
    let mut hit = bytes.clone();
    let range = region_range(&hit, Region::Weights).unwrap();
    flip_bits(&mut hit, range, 3e-2, 1).unwrap();
    let err = load_host(&hit, &KEY).unwrap_err();
    assert!(format!("{err:#}").contains("uncorrectable"), "{err:#}");
}

fn try_load(bytes: &[u8]) {
    let aligned = AlignedBytes::new(bytes);
    let _ = ProtectedArtifact::parse(aligned.as_bytes());
    let mut ram = vec![0u32; 2048];
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    let _ = load(
        aligned.as_bytes(),
        &KEY,
        &mut ram,
        &mut scratch,
        &mut health,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        try_load(&bytes);
        let mut with_magic = bytes.clone();
        if with_magic.len() >= 8 {
            with_magic[..8].copy_from_slice(&MAGIC);
        }
        try_load(&with_magic);
    }

    #[test]
    fn corrupted_protected_artifacts_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        let original = BYTES.get_or_init(|| {
            let options = Options { code: Some(Code::new(Length::N648, Rate::R5_6)), ..Options::default() };
            protect::protect(&fixture().plain, &KEY, [1; 16], options).unwrap()
        });
        let mut bytes = original.clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        // Re-seal the header CRC so edits reach the protection header too.
        let header: Header = bytemuck::pod_read_unaligned(&bytes[..HEADER_SIZE]);
        let table = (header.section_count as usize).min(32) * SECTION_ENTRY_SIZE;
        if HEADER_SIZE + table <= bytes.len() {
            let mut h = header;
            h.header_crc = 0;
            let mut sealed = bytemuck::bytes_of(&h).to_vec();
            sealed.extend_from_slice(&bytes[HEADER_SIZE..HEADER_SIZE + table]);
            h.header_crc = sturdy_runtime::crc32(&sealed);
            bytes[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&h));
        }
        let aligned = AlignedBytes::new(&bytes);
        let mut ram = vec![0u32; 1 << 14];
        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        if let Ok(model) = load(aligned.as_bytes(), &KEY, &mut ram, &mut scratch, &mut health) {
            // Anything accepted must be the original model.
            prop_assert_eq!(model.artifact().bytes().len(), ProtectedArtifact::parse(AlignedBytes::new(original).as_bytes()).unwrap().inner_len());
        }
    }
}
