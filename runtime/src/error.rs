//! The one error type of the runtime.

use core::fmt;

/// Everything that can go wrong while parsing or running a model.
///
/// Variants carry the byte offset, section, tensor or op index at fault so a
/// user can find the problem in `sturdy inspect` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The blob is shorter than the structure that must be read at `offset`.
    Truncated {
        /// Byte offset where the missing structure starts.
        offset: usize,
        /// Bytes needed from `offset`.
        needed: usize,
    },
    /// The blob does not start with the sturdy magic bytes.
    BadMagic,
    /// The artifact's major format version is not one this runtime reads.
    UnsupportedVersion {
        /// Major version found in the header.
        major: u16,
    },
    /// The header/section-table CRC does not match: the blob is corrupted.
    HeaderCrc {
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the bytes.
        computed: u32,
    },
    /// The blob itself does not start on a 4-byte boundary (wrap
    /// `include_bytes!` data in a `#[repr(align(16))]` struct).
    Misaligned,
    /// A section's offset or length lies outside the blob or is misaligned.
    BadSection {
        /// Section kind tag.
        kind: u32,
    },
    /// A required section is absent.
    MissingSection {
        /// Section kind tag.
        kind: u32,
    },
    /// A tensor record is inconsistent (dtype, rank, dims, offsets).
    BadTensor {
        /// Tensor index.
        tensor: usize,
    },
    /// An op record is inconsistent with its tensors or parameters.
    BadOp {
        /// Op index.
        op: usize,
    },
    /// The op kind tag is not one this runtime knows.
    UnknownOp {
        /// Op index.
        op: usize,
        /// Kind tag found.
        kind: u16,
    },
    /// A kernel received buffers whose sizes do not match its parameters.
    ShapeMismatch,
    /// A requantization shift is outside the supported range.
    BadRequant,
    /// The GUARDS section is malformed: bad header or length (`op: None`),
    /// or the record of op `op` is inconsistent.
    BadGuards {
        /// Op whose record is at fault, if any.
        op: Option<usize>,
    },
    /// The INPUT_ALIGN section is malformed (header, length, or a table
    /// that is not monotone).
    BadInputAlign,
    /// The LOGIT_ADJUST section is malformed (header, length, tensor or
    /// an offset out of range).
    BadLogitAdjust,
    /// The DRIFT section is malformed (version, memory, stride, window),
    /// or one input holds more observed values than half its memory.
    BadDrift,
    /// Drift monitoring needs a DRIFT and an INPUT_ALIGN section (quantize
    /// with `--drift-monitor`).
    NoDriftMonitor,
    /// An input was tagged with a domain the artifact has no table for.
    UnknownDomain {
        /// Domain id given.
        domain: u32,
        /// Domains the artifact has tables for.
        domains: u32,
    },
    /// A guard tripped and re-verifying op `op`'s weights found them damaged.
    GuardReverify {
        /// Op index.
        op: usize,
    },
    /// The build links a kernel set ([`crate::kernel_set`]) without the
    /// kernel op `op` runs: a firmware built for another artifact.
    KernelNotLinked {
        /// Op index.
        op: usize,
    },
    /// The caller's arena is smaller than the model's planned peak.
    ArenaTooSmall {
        /// Bytes the plan needs.
        needed: usize,
        /// Bytes provided.
        got: usize,
    },
    /// The caller's input or output buffer has the wrong length.
    BadIoLength {
        /// Elements expected.
        expected: usize,
        /// Elements provided.
        got: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::Truncated { offset, needed } => {
                write!(
                    f,
                    "artifact truncated: {needed} bytes needed at byte {offset}"
                )
            }
            Error::BadMagic => write!(f, "not a sturdy artifact (bad magic)"),
            Error::UnsupportedVersion { major } => {
                write!(f, "artifact format version {major} is not supported")
            }
            Error::HeaderCrc { stored, computed } => write!(
                f,
                "header CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::Misaligned => write!(f, "artifact bytes are not 4-byte aligned"),
            Error::BadSection { kind } => {
                write!(f, "section {kind} is out of bounds or misaligned")
            }
            Error::MissingSection { kind } => write!(f, "required section {kind} is missing"),
            Error::BadTensor { tensor } => write!(f, "tensor {tensor} is malformed"),
            Error::BadOp { op } => write!(f, "op {op} is malformed"),
            Error::UnknownOp { op, kind } => write!(f, "op {op} has unknown kind {kind}"),
            Error::ShapeMismatch => write!(f, "kernel buffers do not match the op's shapes"),
            Error::BadRequant => write!(f, "requantization shift out of range"),
            Error::BadInputAlign => write!(f, "input-alignment section is malformed"),
            Error::BadLogitAdjust => write!(f, "logit-adjustment section is malformed"),
            Error::BadDrift => write!(f, "drift-monitor section is malformed or its memory is too small for this input"),
            Error::NoDriftMonitor => write!(f, "artifact has no drift-monitor settings or no reference CDF (quantize with --drift-monitor)"),
            Error::UnknownDomain { domain, domains } => write!(
                f,
                "input domain {domain} has no alignment table (the artifact has {domains})"
            ),
            Error::BadGuards { op: None } => write!(f, "guards section is malformed"),
            Error::BadGuards { op: Some(op) } => write!(f, "guard record of op {op} is malformed"),
            Error::GuardReverify { op } => write!(
                f,
                "op {op} tripped its activation guard and its weights failed re-verification"
            ),
            Error::KernelNotLinked { op } => write!(
                f,
                "op {op} needs a kernel this build does not link (build the firmware for this artifact)"
            ),
            Error::ArenaTooSmall { needed, got } => {
                write!(f, "arena too small: {needed} bytes needed, {got} given")
            }
            Error::BadIoLength { expected, got } => {
                write!(f, "input/output length {got}, expected {expected}")
            }
        }
    }
}

impl core::error::Error for Error {}
