//! The runtime's promise on hostile bytes: `Model::parse` and `infer` on any
//! artifact — random, truncated, bit-flipped, or with a forged header CRC so
//! corruption reaches the graph checks, with int8 or packed int4 weights —
//! return `Err` or run, never panic, never read out of bounds.

use proptest::prelude::*;
use std::sync::OnceLock;
use sturdy_runtime::format::*;
use sturdy_runtime::{crc32, Artifact, Error, Model};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::quantize::{RangeMethod, WeightBits};

fn quantized(bits: WeightBits) -> Vec<u8> {
    let (manifest, m) = sturdy_tests::bundled("digits_dscnn");
    sturdy_tests::quantize_bundled_bits(&manifest, &m, RangeMethod::MinMax, bits).unwrap()
}

/// A real artifact (the depthwise-separable net: every op family but one).
fn artifact() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| quantized(WeightBits::Int8))
}

/// The same net with packed int4 Conv/FC weights.
fn artifact_i4() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| quantized(WeightBits::Int4))
}

/// Byte offset of tensor record `index` and the index of the first int4
/// tensor of `bytes`.
fn int4_record(bytes: &[u8]) -> (usize, usize) {
    let aligned = AlignedBytes::new(bytes);
    let a = Artifact::parse(aligned.as_bytes()).unwrap();
    let graph = a
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_GRAPH)
        .unwrap();
    let index = a
        .tensors()
        .iter()
        .position(|t| t.dtype == DTYPE_I4)
        .unwrap();
    (
        graph.offset as usize + GRAPH_HEADER_SIZE + index * TENSOR_RECORD_SIZE,
        index,
    )
}

/// Recomputes the header CRC so that a mutation is judged by the structural
/// checks behind it rather than stopped at the door.
fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_SIZE {
        return;
    }
    let mut header: Header = bytemuck::pod_read_unaligned(&bytes[..HEADER_SIZE]);
    let sections = (header.section_count as usize).min(32);
    let end = HEADER_SIZE + sections * SECTION_ENTRY_SIZE;
    if end > bytes.len() {
        return;
    }
    header.total_len = bytes.len() as u32;
    header.header_crc = 0;
    let mut sealed = bytemuck::bytes_of(&header).to_vec();
    sealed.extend_from_slice(&bytes[HEADER_SIZE..end]);
    header.header_crc = crc32(&sealed);
    bytes[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
}

/// Parses and, if that succeeds, runs one inference: must not panic.
fn exercise(bytes: &[u8]) -> Result<(), Error> {
    let aligned = AlignedBytes::new(bytes);
    let model = Model::parse(aligned.as_bytes())?;
    let mut arena = vec![0u8; model.arena_size().min(1 << 20)];
    let input = vec![3i8; model.input_len()];
    let mut output = vec![0i8; model.output_len()];
    model.infer(&mut arena, &input, &mut output)
}

#[test]
fn the_clean_artifact_parses_and_runs() {
    exercise(artifact()).unwrap();
}

#[test]
fn the_clean_int4_artifact_parses_and_runs() {
    exercise(artifact_i4()).unwrap();
}

#[test]
fn int4_tensors_are_checked() {
    let (at, tensor) = int4_record(artifact_i4());
    let record: TensorRecord =
        bytemuck::pod_read_unaligned(&artifact_i4()[at..at + TENSOR_RECORD_SIZE]);
    let with = |edit: &dyn Fn(&mut TensorRecord)| {
        let mut r = record;
        edit(&mut r);
        let mut bytes = artifact_i4().to_vec();
        bytes[at..at + TENSOR_RECORD_SIZE].copy_from_slice(bytemuck::bytes_of(&r));
        exercise(&bytes)
    };
    let bad = Err(Error::BadTensor { tensor });
    // ⌈elements / 2⌉ bytes exactly: one more or one less is refused, as is
    // the int8 length of the same elements.
    assert_eq!(with(&|r| r.len += 1), bad);
    assert_eq!(with(&|r| r.len -= 1), bad);
    assert_eq!(with(&|r| r.len *= 2), bad);
    // Only in the weights section, never as an activation.
    assert_eq!(with(&|r| r.location = LOC_ARENA), bad);
    // Elements whose count overflows, and an unknown dtype.
    assert_eq!(with(&|r| r.dims = [u32::MAX, u32::MAX, 1, 1]), bad);
    assert_eq!(with(&|r| r.dtype = 5), bad);
    // An int8 weight record with the int4 tag is refused by its length.
    let (at8, tensor8) = {
        let aligned = AlignedBytes::new(artifact());
        let a = Artifact::parse(aligned.as_bytes()).unwrap();
        let op = a
            .ops()
            .iter()
            .find(|op| op.kind == OP_FULLY_CONNECTED)
            .unwrap();
        let graph = a
            .sections()
            .iter()
            .find(|s| s.kind == SECTION_GRAPH)
            .unwrap();
        let index = op.inputs[1] as usize;
        (
            graph.offset as usize + GRAPH_HEADER_SIZE + index * TENSOR_RECORD_SIZE,
            index,
        )
    };
    let mut bytes = artifact().to_vec();
    bytes[at8] = DTYPE_I4;
    assert_eq!(exercise(&bytes), Err(Error::BadTensor { tensor: tensor8 }));
}

#[test]
fn header_corruption_is_caught_by_the_crc() {
    let mut bytes = artifact().to_vec();
    bytes[HEADER_SIZE + 4] ^= 0x10; // first section's offset
    assert!(matches!(exercise(&bytes), Err(Error::HeaderCrc { .. })));
}

#[test]
fn typed_errors_for_classic_faults() {
    assert_eq!(
        exercise(&[]).unwrap_err(),
        Error::Truncated {
            offset: 0,
            needed: HEADER_SIZE
        }
    );
    let mut bytes = artifact().to_vec();
    bytes[0] = b'X';
    assert_eq!(exercise(&bytes).unwrap_err(), Error::BadMagic);
    let mut bytes = artifact().to_vec();
    bytes[8] = 9; // major version
    reseal(&mut bytes);
    assert_eq!(
        exercise(&bytes).unwrap_err(),
        Error::UnsupportedVersion { major: 9 }
    );
    let bytes = &artifact()[..artifact().len() - 4];
    assert!(matches!(exercise(bytes), Err(Error::Truncated { .. })));
}

#[test]
fn too_small_arena_and_wrong_io_lengths_are_errors() {
    let aligned = AlignedBytes::new(artifact());
    let model = Model::parse(aligned.as_bytes()).unwrap();
    let mut arena = vec![0u8; model.arena_size() - 1];
    let input = vec![0i8; model.input_len()];
    let mut output = vec![0i8; model.output_len()];
    assert!(matches!(
        model.infer(&mut arena, &input, &mut output),
        Err(Error::ArenaTooSmall { .. })
    ));
    let mut arena = vec![0u8; model.arena_size()];
    assert!(matches!(
        model.infer(&mut arena, &input[1..], &mut output),
        Err(Error::BadIoLength { .. })
    ));
}

/// Flips bit `bit` of byte `at` for each flip in a copy of `artifact`,
/// optionally re-seals the header CRC, and parses and runs the result.
fn flip_and_exercise(artifact: &[u8], flips: &[(prop::sample::Index, u8)], seal: bool) {
    let mut bytes = artifact.to_vec();
    for (at, bit) in flips {
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
    }
    if seal {
        reseal(&mut bytes);
    }
    let _ = exercise(&bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = exercise(&bytes);
    }

    #[test]
    fn flipped_bits_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..16), seal in any::<bool>()) {
        flip_and_exercise(artifact(), &flips, seal);
    }

    #[test]
    fn flipped_bits_in_int4_artifacts_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..16), seal in any::<bool>()) {
        flip_and_exercise(artifact_i4(), &flips, seal);
    }

    #[test]
    fn overwritten_int4_records_never_panic(field in 0usize..10, value in any::<u32>()) {
        // Any word of an int4 weight record (dtype/rank/location, dims,
        // zero point, scale, offset, len, reserved) set to anything.
        let (at, _) = int4_record(artifact_i4());
        let mut bytes = artifact_i4().to_vec();
        let i = at + 4 * field;
        bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
        let _ = exercise(&bytes);
    }

    #[test]
    fn overwritten_words_never_panic(writes in proptest::collection::vec((any::<prop::sample::Index>(), any::<u32>()), 1..8)) {
        // Whole little-endian words: counts, offsets, dims and params set to
        // arbitrary values (a single bit flip rarely reaches u32::MAX).
        let mut bytes = artifact().to_vec();
        for (at, value) in writes {
            let i = at.index(bytes.len() / 4) * 4;
            bytes[i..i + 4].copy_from_slice(&value.to_le_bytes());
        }
        reseal(&mut bytes);
        let _ = exercise(&bytes);
    }

    #[test]
    fn truncated_or_extended_artifacts_never_panic(cut in any::<prop::sample::Index>(), extra in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut bytes = artifact()[..cut.index(artifact().len())].to_vec();
        bytes.extend(extra);
        reseal(&mut bytes);
        let _ = exercise(&bytes);
    }
}
