//! The artifact's binary layout: fixed-size little-endian records, every
//! array 4-byte aligned, read in place with `bytemuck`.
//!
//! ```text
//! [Header 64 B][SectionEntry 16 B × section_count][sections…]
//! GRAPH   section: [GraphHeader 32 B][TensorRecord 40 B × tensor_count][OpRecord 64 B × op_count]
//! WEIGHTS section: raw bytes; tensors located there give offsets relative to its start
//! META    section: UTF-8 JSON for the host tools (names, labels, layouts, calibration summary)
//! GUARDS  section (optional): [GuardHeader 16 B][GuardRecord 8 B × op_count]
//! INPUT_ALIGN  section (optional): [InputAlignHeader 16 B][i8 × 256 × domains][u16 × 256 reference CDF]
//! LOGIT_ADJUST section (optional): [LogitAdjustHeader 16 B][i32 × classes]
//! DRIFT        section (optional): [DriftSettings 48 B]
//! ```
//!
//! The optional **INPUT_ALIGN** section (EmaQ-LT's CDF-based domain
//! projection) holds one monotone 256-entry table per input domain (sensor,
//! site, lighting): entry `c + 128` is the code an input code `c` of that
//! domain becomes, so that the domain's input distribution matches the
//! reference domain the model was trained on. The reference domain's table
//! is the identity. After the tables comes the reference CDF: entry `c +
//! 128` is the fraction of reference input codes `≤ c`, in units of
//! 1/65535 — what a device compares its running input histogram with to
//! detect drift. [`crate::Model::align_input`] applies a table.
//!
//! The optional **LOGIT_ADJUST** section (EmaQ-LT's confidence-based logit
//! adjustment) names one int8 arena tensor of `rows × classes` logits, an
//! int32 offset per class (`τ·ln π_c` in that tensor's quantized units,
//! centred) and a margin. Right after the op that writes the tensor, every
//! row whose top-1 minus top-2 code is below `margin` becomes `x_c −
//! offset_c`, saturated to int8 ([`crate::kernels::logit_adjust`]): a
//! confident prediction is left alone, an unsure one leans away from the
//! head classes the training data over-represented.
//!
//! The optional **DRIFT** section holds the settings of the on-device drift
//! monitor ([`crate::drift::DriftMonitor`]): how much input history it keeps,
//! the sequential detector's allowance and threshold (fitted by the host on
//! the calibration set played as a stationary stream), and the bounds on a
//! re-fitted alignment table. It needs an INPUT_ALIGN section, whose
//! reference CDF is what the monitor tests its running histogram against.
//!
//! Constants are little-endian arrays of their `DTYPE_*`; the one
//! sub-byte type is [`DTYPE_I4`] (W4A8 Conv/FC weights): signed 4-bit
//! two's-complement values, two per byte, **low nibble first**, packed flat
//! over the tensor's elements in storage order — element `e` lives in byte
//! `e / 2`, bits 0–3 when `e` is even, bits 4–7 when odd — so `len =
//! ⌈elements / 2⌉` and the unused high nibble of an odd count is 0.
//! Writers emit codes in `[-7, 7]` only (symmetric, like int8's
//! `[-127, 127]`); readers accept `-8` too. [`crate::int4`] reads and packs
//! them. Readers that predate the type refuse it (`BadTensor`), so it needs
//! no version bump.
//!
//! The optional **GUARDS** section holds one activation guard per op, in
//! execution order: the inclusive int8 code range `[min, max]` its output
//! is expected to stay in (from calibration, widened by a margin) and
//! `threshold`, the number of out-of-range values the op may produce
//! before [`crate::Model::invoke_guarded`] re-verifies its weights and
//! re-runs it (a trip is `count > threshold`). A record without
//! [`GUARD_ON`] guards nothing. Readers that predate the section ignore it;
//! artifacts without it run unguarded.
//!
//! A **protected** artifact (written by `sturdy protect`, read by
//! [`crate::protect::load`]) uses the same header and section table but
//! carries no GRAPH or WEIGHTS section; the plain artifact lives coded
//! inside it:
//!
//! ```text
//! PROTECTION section: [ProtectionHeader 64 B][tag 16 B × block_count]
//! CODED      section: the stored image, ⌈C·n / 32⌉ u32 words: C QC-LDPC codewords
//!                     (systematic, n bits each) behind the keyed interleaver —
//!                     or, without LDPC, the inner artifact's bytes as they are
//! META       section: as above, uncoded (host-side only)
//! ```
//!
//! The *inner artifact* is a complete plain artifact (header, graph,
//! weights; no metadata) of `inner_len` bytes. Its bytes, as a
//! little-endian bit stream zero-padded to `C·k` bits, are the messages of
//! the `C = ⌈8·inner_len / k⌉` codewords. Key derivation, interleaver and
//! tag definitions are in [`crate::protect`].
//!
//! With [`PROTECT_IN_PLACE`] the CODED section is instead
//! `[inner artifact, zero-padded to C·k bits][C·(n − k) parity bits]`: the
//! message bits are read where the inner artifact already lies (through the
//! same keyed interleaver), so the section's first `inner_len` bytes parse
//! as the plain model.
//!
//! The header CRC-32 covers the header (with `header_crc` zeroed) and the
//! section table, so a corrupted table is caught before it is trusted.
//! These structs are the single definition of the format: the host tools
//! write them, the runtime reads them.

use bytemuck::{Pod, Zeroable};

/// First eight bytes of every artifact.
pub const MAGIC: [u8; 8] = *b"STURDY\r\n";
/// Format major version: a runtime refuses any other.
pub const VERSION_MAJOR: u16 = 1;
/// Format minor version: additions readers may ignore.
pub const VERSION_MINOR: u16 = 0;
/// Alignment of every section and array in the blob.
pub const ALIGN: usize = 4;

/// Section kind: tensors, ops and the arena plan (required).
pub const SECTION_GRAPH: u32 = 1;
/// Section kind: weights, biases, requantization arrays and tables.
pub const SECTION_WEIGHTS: u32 = 2;
/// Section kind: host-side metadata (JSON).
pub const SECTION_META: u32 = 3;
/// Section kind: [`ProtectionHeader`] followed by the integrity tags.
pub const SECTION_PROTECTION: u32 = 4;
/// Section kind: the stored (coded, interleaved) image of the inner artifact.
pub const SECTION_CODED: u32 = 5;

/// Section kind: per-op activation guards ([`GuardHeader`], [`GuardRecord`]s).
pub const SECTION_GUARDS: u32 = 6;

/// Section kind: per-domain input alignment tables ([`InputAlignHeader`]).
pub const SECTION_INPUT_ALIGN: u32 = 7;
/// Section kind: confidence-based logit adjustment ([`LogitAdjustHeader`]).
pub const SECTION_LOGIT_ADJUST: u32 = 8;

/// Section kind: drift-monitor settings ([`DriftSettings`]).
pub const SECTION_DRIFT: u32 = 9;

/// Version of [`InputAlignHeader`] this runtime reads.
pub const INPUT_ALIGN_VERSION: u32 = 1;
/// Entries of one input-alignment table (one per int8 code).
pub const ALIGN_TABLE_LEN: usize = 256;
/// Most input domains one artifact may carry.
pub const MAX_DOMAINS: u32 = 256;

/// Start of the INPUT_ALIGN section.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct InputAlignHeader {
    /// [`INPUT_ALIGN_VERSION`].
    pub version: u32,
    /// Tables that follow (1..=[`MAX_DOMAINS`]); domain ids are `0..domains`.
    pub domains: u32,
    /// The domain whose inputs the model was trained on (identity table).
    pub reference: u32,
    /// Zero.
    pub reserved: u32,
}

/// Version of [`LogitAdjustHeader`] this runtime reads.
pub const LOGIT_ADJUST_VERSION: u32 = 1;
/// Largest `|offset|` a LOGIT_ADJUST section may hold (a larger one could
/// only saturate).
pub const MAX_LOGIT_OFFSET: i32 = 255;

/// Start of the LOGIT_ADJUST section.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct LogitAdjustHeader {
    /// [`LOGIT_ADJUST_VERSION`].
    pub version: u32,
    /// The adjusted tensor: an int8 arena tensor written by some op, whose
    /// length is a multiple of `classes`.
    pub tensor: u32,
    /// Offsets that follow: the tensor's innermost dimension.
    pub classes: u32,
    /// A row is adjusted when its top-1 minus top-2 code is below this
    /// (0: never; above 255: always).
    pub margin: i32,
}

/// Version of [`DriftSettings`] this runtime reads.
pub const DRIFT_VERSION: u32 = 2;
/// Most input values the drift monitor's histogram holds before it halves
/// (its 16-bit bins can then never overflow, whatever one sample adds).
pub const MAX_DRIFT_MEMORY: u32 = 32768;

/// The DRIFT section: settings of the on-device drift monitor. Statistic
/// units are 1/65535 of a probability (the reference CDF's unit).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct DriftSettings {
    /// [`DRIFT_VERSION`].
    pub version: u32,
    /// Observed values the histogram holds before every bin is halved
    /// (the forgetting): 1..=[`MAX_DRIFT_MEMORY`].
    pub memory: u32,
    /// Every `stride`-th input value is observed (the first one rotating
    /// from sample to sample, so every position is seen): ≥ 1.
    pub stride: u32,
    /// Samples observed before the detector may fire (the histogram fills).
    pub warmup: u32,
    /// CUSUM allowance `k`: the KS distance a stationary stream stays below.
    pub allowance: u32,
    /// CUSUM threshold `h`: `S ← max(0, S + D − k)` alarms when `S > h`.
    pub threshold: u32,
    /// Most codes a re-fitted table may move any code from the identity.
    pub max_shift: u32,
    /// Samples after a re-fit over which the model's confidence is judged.
    pub window: u32,
    /// A re-fit is rolled back when the mean top-1 − top-2 output margin
    /// over `window` falls more than this many codes below both its level
    /// before the re-fit and `reference_confidence`.
    pub confidence_drop: u32,
    /// Samples without a re-fit after a rollback.
    pub holdoff: u32,
    /// The mean output margin on the calibration set, in codes: a re-fit
    /// that brings confidence back to it is kept even when the drifted
    /// sensor had made the model more confident (confidently wrong).
    pub reference_confidence: u32,
    /// Zero.
    pub reserved: u32,
}

/// Version of [`GuardHeader`] this runtime reads.
pub const GUARDS_VERSION: u32 = 1;
/// [`GuardRecord::flags`]: this op's output is guarded.
pub const GUARD_ON: u8 = 1;

/// Start of the GUARDS section.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct GuardHeader {
    /// [`GUARDS_VERSION`].
    pub version: u32,
    /// Records that follow: equal to the graph's op count.
    pub op_count: u32,
    /// Zero.
    pub reserved: [u32; 2],
}

/// The guard of one op's output, in execution order.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct GuardRecord {
    /// Smallest expected output code (inclusive).
    pub min: i8,
    /// Largest expected output code (inclusive); `min <= max`.
    pub max: i8,
    /// `GUARD_*` bits.
    pub flags: u8,
    /// Zero.
    pub reserved: u8,
    /// Out-of-range values tolerated per run; more trip the guard.
    pub threshold: u32,
}

/// Version of [`ProtectionHeader`] this runtime reads.
pub const PROTECTION_VERSION: u32 = 1;
/// [`ProtectionHeader::flags`]: the stored image is QC-LDPC coded and interleaved.
pub const PROTECT_LDPC: u32 = 1;
/// [`ProtectionHeader::flags`]: every block carries a keyed tag.
pub const PROTECT_MAC: u32 = 2;
/// [`ProtectionHeader::flags`]: channels were reparameterized with the key (informational).
pub const PROTECT_REPARAM: u32 = 4;
/// [`ProtectionHeader::flags`] (with [`PROTECT_LDPC`] only): the in-place
/// layout. The coded image starts with the inner artifact itself, unpermuted,
/// so a RAM-resident artifact is verified, patched and run where it lies
/// ([`crate::protect::verify_in_place`]) instead of being decoded into a
/// second buffer. See [`crate::protect`], "Message layout".
pub const PROTECT_IN_PLACE: u32 = 8;
/// [`ProtectionHeader::code_rate`]: rate 1/2.
pub const RATE_1_2: u16 = 1;
/// [`ProtectionHeader::code_rate`]: rate 2/3.
pub const RATE_2_3: u16 = 2;
/// [`ProtectionHeader::code_rate`]: rate 3/4.
pub const RATE_3_4: u16 = 3;
/// [`ProtectionHeader::code_rate`]: rate 5/6.
pub const RATE_5_6: u16 = 4;

/// Start of the PROTECTION section: how the inner artifact is stored.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct ProtectionHeader {
    /// [`PROTECTION_VERSION`].
    pub version: u32,
    /// `PROTECT_*` bits.
    pub flags: u32,
    /// Bytes of the inner artifact (multiple of 4): the RAM `load` needs.
    pub inner_len: u32,
    /// Codeword length n: 648, 1296 or 1944 (0 without LDPC).
    pub code_length: u16,
    /// `RATE_*` (0 without LDPC).
    pub code_rate: u16,
    /// Codewords C = ⌈8·inner_len / k⌉ (0 without LDPC).
    pub codewords: u32,
    /// Bytes of inner artifact per tagged block (multiple of 4; 0 without MAC).
    pub block_len: u32,
    /// Tags that follow: ⌈inner_len / block_len⌉ (0 without MAC).
    pub block_count: u32,
    /// Zero.
    pub reserved: u32,
    /// Random per artifact: the subkeys are derived from key and nonce.
    pub nonce: [u8; 16],
    /// Keyed tag over this header (this field zeroed): refuses a wrong key.
    pub key_check: [u8; 16],
}

/// The fixed header at byte 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`VERSION_MAJOR`] of the writer.
    pub version_major: u16,
    /// [`VERSION_MINOR`] of the writer.
    pub version_minor: u16,
    /// Reserved feature flags (0).
    pub flags: u32,
    /// Length of the whole artifact in bytes.
    pub total_len: u32,
    /// Entries in the section table that follows the header.
    pub section_count: u32,
    /// CRC-32 (IEEE) of header (this field as 0) and section table.
    pub header_crc: u32,
    /// Zero.
    pub reserved: [u32; 9],
}

/// One entry of the section table.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct SectionEntry {
    /// `SECTION_*` kind.
    pub kind: u32,
    /// Byte offset from the start of the artifact (multiple of [`ALIGN`]).
    pub offset: u32,
    /// Length in bytes.
    pub len: u32,
    /// Zero.
    pub reserved: u32,
}

/// Start of the graph section.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct GraphHeader {
    /// Tensor records that follow.
    pub tensor_count: u32,
    /// Op records that follow the tensors, in execution order.
    pub op_count: u32,
    /// Tensor index of the model input (int8, in the arena).
    pub input: u32,
    /// Tensor index of the model output (int8, in the arena).
    pub output: u32,
    /// Arena bytes the memory plan needs (peak).
    pub arena_size: u32,
    /// Zero.
    pub reserved: [u32; 3],
}

/// Element type tag: int8.
pub const DTYPE_I8: u8 = 1;
/// Element type tag: int32 (biases, multipliers, shifts).
pub const DTYPE_I32: u8 = 2;
/// Element type tag: uint32 (tables).
pub const DTYPE_U32: u8 = 3;
/// Element type tag: signed int4, two per byte, low nibble first (see the
/// module doc); Conv/FC weights only, so only in the weights section.
pub const DTYPE_I4: u8 = 4;

/// Location tag: activation in the arena at `offset`.
pub const LOC_ARENA: u8 = 0;
/// Location tag: constant in the weights section at `offset`.
pub const LOC_WEIGHTS: u8 = 1;

/// One tensor: an activation in the arena or a constant in the weights.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct TensorRecord {
    /// `DTYPE_*`.
    pub dtype: u8,
    /// Number of meaningful dims (1..=4).
    pub rank: u8,
    /// `LOC_*`.
    pub location: u8,
    /// Zero.
    pub reserved0: u8,
    /// Dims in storage order (NHWC for feature maps); unused trailing dims are 1.
    pub dims: [u32; 4],
    /// Quantization zero point (int8 tensors).
    pub zero_point: i32,
    /// Quantization scale as `f32` bits, for host-side (de)quantization only.
    pub scale_bits: u32,
    /// Byte offset in the arena or in the weights section.
    pub offset: u32,
    /// Length in bytes: element count × element size (⌈count / 2⌉ for
    /// [`DTYPE_I4`]).
    pub len: u32,
    /// Zero.
    pub reserved1: u32,
}

/// Op kind tag: [`crate::kernels::conv2d`].
pub const OP_CONV2D: u16 = 1;
/// Op kind tag: [`crate::kernels::fully_connected`].
pub const OP_FULLY_CONNECTED: u16 = 2;
/// Op kind tag: [`crate::kernels::add`].
pub const OP_ADD: u16 = 3;
/// Op kind tag: [`crate::kernels::mul`].
pub const OP_MUL: u16 = 4;
/// Op kind tag: [`crate::kernels::max_pool`].
pub const OP_MAX_POOL: u16 = 5;
/// Op kind tag: [`crate::kernels::average_pool`].
pub const OP_AVERAGE_POOL: u16 = 6;
/// Op kind tag: [`crate::kernels::softmax`].
pub const OP_SOFTMAX: u16 = 7;
/// Op kind tag: [`crate::kernels::lut`].
pub const OP_LUT: u16 = 8;
/// Op kind tag: [`crate::kernels::concat`].
pub const OP_CONCAT: u16 = 9;
/// Op kind tag: [`crate::kernels::transpose`].
pub const OP_TRANSPOSE: u16 = 10;

/// Most inputs one op record can name.
pub const MAX_OP_INPUTS: usize = 8;
/// Marks an unused entry of [`OpRecord::inputs`].
pub const NO_TENSOR: u16 = u16::MAX;

/// One op, in execution order. `params` are interpreted per kind:
///
/// | kind | inputs | params |
/// |---|---|---|
/// | CONV2D | x, weights i8 or i4 `[O,KH,KW,I/g]`, bias i32 `[O]`, multipliers i32 `[O]`, shifts i32 `[O]` | stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, act_min, act_max |
/// | FULLY_CONNECTED | x, weights i8 or i4 `[O,K]`, bias, multipliers, shifts | act_min, act_max |
/// | ADD | a, b | left_shift, m1, e1, m2, e2, m_out, e_out, act_min, act_max, broadcast |
/// | MUL | a, b | m_out, e_out, act_min, act_max, broadcast |
/// | MAX_POOL | x | kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, act_min, act_max |
/// | AVERAGE_POOL | x | kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left, act_min, act_max, count_include_pad |
/// | SOFTMAX | x, exp table u32 `[256]` | — |
/// | LUT | x, table i8 `[256]` | — |
/// | CONCAT | x0 … xk−1, rescale i32 `[k,2]` (multiplier, shift per input) | axis |
/// | TRANSPOSE | x | perm0, perm1, perm2, perm3 (over dims padded to rank 4) |
///
/// `broadcast`: 0 same shape, 1 per channel (last axis), 2 scalar.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct OpRecord {
    /// `OP_*` kind.
    pub kind: u16,
    /// Entries of `inputs` in use.
    pub input_count: u16,
    /// Tensor indices, unused = [`NO_TENSOR`].
    pub inputs: [u16; MAX_OP_INPUTS],
    /// Output tensor index.
    pub output: u16,
    /// Zero.
    pub reserved: u16,
    /// Kind-specific parameters (see the table above).
    pub params: [i32; 10],
}

/// Byte size of [`Header`].
pub const HEADER_SIZE: usize = core::mem::size_of::<Header>();
/// Byte size of [`SectionEntry`].
pub const SECTION_ENTRY_SIZE: usize = core::mem::size_of::<SectionEntry>();
/// Byte size of [`GraphHeader`].
pub const GRAPH_HEADER_SIZE: usize = core::mem::size_of::<GraphHeader>();
/// Byte size of [`TensorRecord`].
pub const TENSOR_RECORD_SIZE: usize = core::mem::size_of::<TensorRecord>();
/// Byte size of [`OpRecord`].
pub const OP_RECORD_SIZE: usize = core::mem::size_of::<OpRecord>();
/// Byte size of [`GuardHeader`].
pub const GUARD_HEADER_SIZE: usize = core::mem::size_of::<GuardHeader>();
/// Byte size of [`GuardRecord`].
pub const GUARD_RECORD_SIZE: usize = core::mem::size_of::<GuardRecord>();
/// Byte size of [`InputAlignHeader`].
pub const INPUT_ALIGN_HEADER_SIZE: usize = core::mem::size_of::<InputAlignHeader>();
/// Byte size of [`LogitAdjustHeader`].
pub const LOGIT_ADJUST_HEADER_SIZE: usize = core::mem::size_of::<LogitAdjustHeader>();
/// Byte size of [`DriftSettings`].
pub const DRIFT_SETTINGS_SIZE: usize = core::mem::size_of::<DriftSettings>();
/// Byte size of [`ProtectionHeader`].
pub const PROTECTION_HEADER_SIZE: usize = core::mem::size_of::<ProtectionHeader>();

const _: () = assert!(HEADER_SIZE == 64);
const _: () = assert!(SECTION_ENTRY_SIZE == 16);
const _: () = assert!(GRAPH_HEADER_SIZE == 32);
const _: () = assert!(TENSOR_RECORD_SIZE == 40);
const _: () = assert!(OP_RECORD_SIZE == 64);
const _: () = assert!(PROTECTION_HEADER_SIZE == 64);
const _: () = assert!(GUARD_HEADER_SIZE == 16);
const _: () = assert!(GUARD_RECORD_SIZE == 8);
const _: () = assert!(INPUT_ALIGN_HEADER_SIZE == 16);
const _: () = assert!(LOGIT_ADJUST_HEADER_SIZE == 16);
const _: () = assert!(DRIFT_SETTINGS_SIZE == 48);
