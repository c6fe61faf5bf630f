//! The in-place protection layout (`sturdy protect --in-place`) end to end on
//! a bundled model: the coded image starts with the plain inner artifact,
//! every stored codeword is a codeword, `verify_in_place` repairs random
//! flips where they lie (bit-exact outputs, image restored byte for byte,
//! no second buffer), tags refuse consistent forgeries the decoder would
//! accept, and no bytes make it panic.

use proptest::prelude::*;
use std::sync::OnceLock;
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
use sturdy_runtime::protect::{
    encode_stored, load, verify_in_place, Health, Layout, ProtectError, ProtectedArtifact, Subkeys,
};
use sturdy_tests::{clean_run, CleanRun};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::protect::inject::{flip_bits, region_range, Region};
use sturdy_tools::protect::{self, load_host, split_inner, Options};

const MODEL: &str = "mnist_cnn";
const KEY: [u8; 32] = [0x3c; 32];
const NONCE: [u8; 16] = [9; 16];
const SAMPLES: usize = 60;

fn fixture() -> &'static CleanRun {
    static F: OnceLock<CleanRun> = OnceLock::new();
    F.get_or_init(|| clean_run(MODEL, SAMPLES))
}

/// The fixture protected in place (reparameterization off, so the inner
/// artifact is the plain one's).
fn in_place(length: Length, rate: Rate) -> Vec<u8> {
    let options = Options {
        reparam: false,
        code: Some(Code::new(length, rate)),
        in_place: true,
        ..Options::default()
    };
    protect::protect(&fixture().plain, &KEY, NONCE, options).unwrap()
}

/// Runs `verify_in_place` on an aligned RAM copy of `bytes`; returns the
/// result (inner bytes), the health record and the image after patching.
fn verify(bytes: &[u8]) -> (Result<Vec<u8>, ProtectError>, Health, Vec<u8>) {
    let mut ram = AlignedBytes::new(bytes);
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    let result = verify_in_place(ram.words_mut(), &KEY, &mut scratch, &mut health)
        .map(|m| m.artifact().bytes().to_vec());
    (result, health, ram.as_bytes().to_vec())
}

#[test]
fn image_starts_with_the_inner_artifact_and_every_word_is_a_codeword() {
    let (inner, _) = split_inner(&fixture().plain).unwrap();
    for rate in [Rate::R5_6, Rate::R1_2] {
        let bytes = in_place(Length::N1944, rate);
        let aligned = AlignedBytes::new(&bytes);
        let p = ProtectedArtifact::parse(aligned.as_bytes()).unwrap();
        assert_eq!(p.layout(), Layout::InPlace);
        let coded = &bytes[region_range(&bytes, Region::Weights).unwrap()];
        assert_eq!(&coded[..inner.len()], &inner[..], "rate {rate:?}");
        let code = p.code().unwrap();
        let codewords = p.header().codewords as usize;
        let il = Subkeys::derive(&KEY, &NONCE).interleaver(codewords);
        for i in 0..codewords {
            let mut cw = vec![0u32; code.words()];
            for j in 0..code.n() {
                let at = il.position(i, j);
                cw[j / 32] |= u32::from((coded[at / 8] >> (at % 8)) & 1) << (j % 32);
            }
            assert!(
                code.syndrome_ok(&cw),
                "H·c ≠ 0: codeword {i}, rate {rate:?}"
            );
        }
    }
}

#[test]
fn both_loaders_read_the_in_place_layout() {
    let (inner, _) = split_inner(&fixture().plain).unwrap();
    let bytes = in_place(Length::N648, Rate::R3_4);
    let (verified, health, _) = verify(&bytes);
    assert_eq!(verified.unwrap(), inner);
    assert_eq!((health.corrected_words, health.mac_failures), (0, 0));
    let (decoded, _) = protect::recover(&bytes, &KEY);
    assert_eq!(decoded.unwrap(), inner);
    let aligned = AlignedBytes::new(&bytes);
    let mut ram = vec![0u32; inner.len() / 4];
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    let model = load(
        aligned.as_bytes(),
        &KEY,
        &mut ram,
        &mut scratch,
        &mut health,
    )
    .unwrap();
    assert_eq!(model.artifact().bytes(), &inner[..]);
}

#[test]
fn ber_1e3_is_patched_in_place_bit_exactly() {
    let f = fixture();
    for (rate, seeds) in [(Rate::R5_6, 0..4u64), (Rate::R1_2, 0..3)] {
        let clean = in_place(Length::N1944, rate);
        for seed in seeds {
            let mut hit = clean.clone();
            let range = region_range(&hit, Region::Weights).unwrap();
            let flips = flip_bits(&mut hit, range, 1e-3, seed).unwrap();
            assert!(!flips.is_empty());
            let (result, health, patched) = verify(&hit);
            assert!(result.is_ok(), "rate {rate:?} seed {seed}: {result:?}");
            assert_eq!(health.corrected_bits as usize, flips.len());
            assert_eq!(health.uncorrectable_words, 0);
            assert_eq!(patched, clean, "the patch restores every stored bit");
            let (host, _) = load_host(&hit, &KEY).unwrap();
            let outs: Vec<Vec<i8>> = f
                .inputs
                .iter()
                .map(|x| host.infer_quantized(x).unwrap())
                .collect();
            assert_eq!(outs, f.clean, "rate {rate:?} seed {seed}");
        }
    }
}

#[test]
fn the_model_lives_in_the_image_and_needs_no_second_buffer() {
    let bytes = in_place(Length::N1944, Rate::R5_6);
    let mut ram = AlignedBytes::new(&bytes);
    let image = ram.as_bytes().as_ptr_range();
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut health = Health::default();
    // The only buffers are the artifact and the fixed-size decoder scratch.
    let model = verify_in_place(ram.words_mut(), &KEY, &mut scratch, &mut health).unwrap();
    let inner = model.artifact().bytes().as_ptr_range();
    assert!(image.start <= inner.start && inner.end <= image.end);
    let report = protect::report(&bytes).unwrap();
    assert_eq!(report["mode"], "verify in place");
    assert_eq!(report["ram"]["verify_in_place"], bytes.len());
    let inner_len = report["inner_bytes"].as_u64().unwrap() as usize;
    assert_eq!(
        report["ram"]["decode_into_ram_from_ram"],
        bytes.len() + inner_len
    );
}

#[test]
fn sequential_images_are_refused_by_verify_in_place() {
    let options = Options {
        code: Some(Code::new(Length::N648, Rate::R5_6)),
        ..Options::default()
    };
    let bytes = protect::protect(&fixture().plain, &KEY, NONCE, options).unwrap();
    assert_eq!(verify(&bytes).0.unwrap_err(), ProtectError::NotInPlace);
    assert!(protect::protect(
        &fixture().plain,
        &KEY,
        NONCE,
        Options {
            code: None,
            in_place: true,
            ..Options::default()
        }
    )
    .is_err());
    let wrong = {
        let mut ram = AlignedBytes::new(&in_place(Length::N648, Rate::R5_6));
        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        verify_in_place(ram.words_mut(), &[1; 32], &mut scratch, &mut health).map(|_| ())
    };
    assert_eq!(wrong, Err(ProtectError::WrongKey));
}

/// An attacker who knows the interleaver re-encodes tampered weights into
/// valid codewords, then flips one more stored bit: the decoder "corrects"
/// it into the forged codeword, and only the tag refuses the result.
#[test]
fn a_forgery_the_decoder_accepts_is_refused_by_the_tag() {
    let bytes = in_place(Length::N648, Rate::R5_6);
    let aligned = AlignedBytes::new(&bytes);
    let p = ProtectedArtifact::parse(aligned.as_bytes()).unwrap();
    let (code, codewords, inner_len) = (
        p.code().unwrap(),
        p.header().codewords as usize,
        p.inner_len(),
    );
    let range = region_range(&bytes, Region::Weights).unwrap();
    let mut forged = bytes.clone();
    let coded = &mut forged[range.clone()];
    for at in [inner_len / 2, inner_len / 2 + 13, inner_len - 40] {
        coded[at] ^= 0x81;
    }
    let inner: Vec<u32> = coded[..inner_len]
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut stored = vec![0u32; coded.len() / 4];
    let il = Subkeys::derive(&KEY, &NONCE).interleaver(codewords);
    encode_stored(
        &code,
        &il,
        codewords,
        &inner,
        inner_len * 8,
        &mut stored,
        Layout::InPlace,
    )
    .unwrap();
    coded.copy_from_slice(bytemuck::cast_slice(&stored));
    let one_more = range.start * 8 + 8 * inner_len / 2 + 3;
    forged[one_more / 8] ^= 1 << (one_more % 8);
    let (result, health, _) = verify(&forged);
    assert!(
        matches!(result, Err(ProtectError::TagMismatch { .. })),
        "{result:?}"
    );
    assert_eq!((health.corrected_words, health.uncorrectable_words), (1, 0));
    assert!(health.mac_failures >= 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = verify(&bytes);
    }

    #[test]
    fn corrupted_in_place_artifacts_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16),
    ) {
        static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
        let original = BYTES.get_or_init(|| in_place(Length::N648, Rate::R5_6));
        let mut bytes = original.clone();
        for (at, value) in edits {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let (Ok(inner), _, _) = verify(&bytes) {
            // Anything accepted must be the original model.
            prop_assert_eq!(inner, split_inner(&fixture().plain).unwrap().0);
        }
    }
}
