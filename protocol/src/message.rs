//! The messages: what the host asks, what the board answers.

use serde::{Deserialize, Serialize};

/// A message from the host to the board.
///
/// A session loads one input in chunks (offsets must be contiguous, starting
/// at 0), runs it, and reads the output back in chunks; `Info` and `Stats`
/// may be asked at any time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Describe the firmware, the linked artifact and the memory it uses.
    Info,
    /// Write `chunk` into the model input at byte `offset`. Offset 0 starts a
    /// new input; any other offset must continue exactly where the previous
    /// chunk ended, so a lost or reordered frame is detected, not run.
    LoadInput {
        /// Byte offset in the int8 input tensor.
        offset: u32,
        /// Input bytes (int8 values as `u8`), at most [`crate::MAX_CHUNK`].
        #[serde(borrow)]
        chunk: &'a [u8],
    },
    /// Run the model on the fully loaded input. With `domain`, the input is
    /// first mapped through that domain's alignment table (an artifact
    /// quantized with EmaQ-LT domain projection: the sensor or site the
    /// sample came from); `None` runs it as loaded.
    Infer {
        /// Input domain id, `0..domains` of the linked artifact.
        domain: Option<u32>,
    },
    /// Read `len` bytes of the last output from byte `offset`.
    ReadOutput {
        /// Byte offset in the int8 output tensor.
        offset: u32,
        /// Bytes wanted, at most [`crate::MAX_CHUNK`].
        len: u16,
    },
    /// Counters of the last inference and of the link.
    Stats,
    /// The cost of one op in the last inference.
    OpStats {
        /// Op index in execution order.
        op: u16,
    },
    /// Flip bits of the working RAM copy of a protected artifact's stored
    /// (coded, interleaved) image, as radiation or an attacker would. The
    /// indices are little-endian `u32`s packed in `bits` (at most
    /// [`crate::MAX_CHUNK`] bytes, so 64 per frame); stored bit `t` is bit
    /// `t % 32` of the image's word `t / 32`. All indices are checked before
    /// any is flipped: a malformed request changes nothing. The flips take
    /// effect at the next [`Request::Reload`].
    InjectFaults {
        /// Stored-image bit indices, `u32` little-endian each.
        #[serde(borrow)]
        bits: &'a [u8],
    },
    /// Re-run the protected load on the working copy: syndrome-check every
    /// codeword, decode the failing ones, verify every tag and rebuild the
    /// model in RAM. With `restore`, the pristine image is first copied back
    /// from flash (undoing every injected fault). Answered with
    /// [`Response::Health`], or an error when the image cannot be repaired
    /// (the model is then unusable until a load succeeds).
    Reload {
        /// Copy the flashed image back into the working copy first.
        restore: bool,
        /// Also measure one codeword's syndrome check
        /// ([`Health::syndrome_check_cost`]).
        measure: bool,
    },
    /// Scrub now: check the next `codewords` codewords of the protected
    /// working copy (a bounded step, so its cost is known), repair the
    /// correctable ones where they lie — and, for the decode-into-RAM
    /// layout, the running decoded copy — and feed each completed pass to
    /// the aging indicator. Answered with [`Response::Scrubbed`].
    Scrub {
        /// Codewords to check (a step stops where a pass ends).
        codewords: u32,
    },
    /// Scrub in idle time: whenever no frame is arriving and `period`
    /// counter units ([`Info::counter`]) have passed since the last slice,
    /// run a step of `codewords` codewords. `period` 0 stops it (the
    /// default: scrubbing then happens only on [`Request::Scrub`]).
    /// `passes_to_end_of_life` tells the aging indicator how many passes
    /// remain, for its projection.
    ScrubEvery {
        /// Counter units between slices (0: off).
        period: u64,
        /// Codewords per slice.
        codewords: u32,
        /// Scrub passes the device has ahead of it.
        passes_to_end_of_life: u32,
    },
    /// End the session: on an emulator the board exits with `code`
    /// (semihosting); a real board answers `Ok` and keeps serving.
    Shutdown {
        /// Process exit code for the emulator.
        code: u8,
    },
    /// Compare the board's multiply-accumulate kernels (the Cortex-M4 DSP
    /// path) with the portable reference on `cases` random cases drawn
    /// from `seed` (`sturdy_runtime::kernels::mac::check`).
    CheckKernels {
        /// Seed of the case generator.
        seed: u64,
        /// Cases to run.
        cases: u32,
    },
    /// Start the drift monitor afresh (`on`) or stop it. While it runs,
    /// every [`Request::Infer`] counts the raw input into its histogram,
    /// maps the input through its table and feeds it the output
    /// (`sturdy_runtime::DriftMonitor`); [`Request::Drift`] reports it.
    /// Refused with `Model(NoDriftMonitor)` for an artifact quantized
    /// without `--drift-monitor`.
    Adapt {
        /// Start (true) or stop (false).
        on: bool,
    },
    /// The drift monitor's counters and costs after the last inference,
    /// answered with [`Response::Drift`] (`NotAdapting` when it is off).
    Drift,
    /// Emulate transient timing faults of aging logic from the next
    /// inference on (`sturdy_runtime::TimingFaults`): each op output byte
    /// is struck with probability `8·rate_ppb/10⁹` (one bit flipped), from
    /// a generator seeded with `seed`, and the guards act as `policy` says.
    /// `rate_ppb` 0 with [`GuardMode::Stored`] is the normal board.
    TimingFaults {
        /// Wrong output bits per 10⁹.
        rate_ppb: u32,
        /// Generator seed.
        seed: u32,
        /// What the activation guards do.
        policy: GuardMode,
    },
}

/// What the activation guards do after each op (`sturdy_runtime::GuardPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum GuardMode {
    /// No check.
    Off,
    /// Clamp and count, never re-run.
    Clamp,
    /// Re-run above the artifact's stored threshold (the default).
    Stored,
    /// Re-run on any out-of-range value.
    Strict,
    /// Run every op twice, compare, a third run on a mismatch.
    Redundant,
}

/// A message from the board to the host: exactly one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<'a> {
    /// Answer to [`Request::Info`].
    Info(Info),
    /// The request was carried out and has nothing to return.
    Ok,
    /// Answer to [`Request::ReadOutput`].
    Output {
        /// Byte offset of `data` in the output tensor.
        offset: u32,
        /// Output bytes (int8 values as `u8`).
        #[serde(borrow)]
        data: &'a [u8],
    },
    /// Answer to [`Request::Stats`].
    Stats(Stats),
    /// Answer to [`Request::OpStats`].
    OpStats {
        /// Op index in execution order.
        op: u16,
        /// The op's kind tag (`sturdy_runtime::format::OP_*`).
        kind: u16,
        /// Instructions or cycles ([`Info::counter`]) the op took.
        count: u64,
    },
    /// Answer to [`Request::Reload`]: what the load found and did.
    Health(Health),
    /// Answer to [`Request::Scrub`]: the scrubber's counters after the step.
    Scrubbed(ScrubStats),
    /// The request was refused; the board keeps serving.
    Error(ErrorCode),
    /// Answer to [`Request::CheckKernels`].
    KernelCheck(KernelCheck),
    /// Answer to [`Request::Drift`].
    Drift(DriftStats),
}

/// What the board's kernel check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelCheck {
    /// `true` when the board runs the DSP path (else the check compared
    /// the portable path with itself and proves nothing).
    pub dsp: bool,
    /// Cases run.
    pub cases: u32,
    /// Cases whose results differed from the portable reference.
    pub mismatches: u32,
    /// The first differing case, to replay it.
    pub first_mismatch: Option<u32>,
}

/// Why the board refused a request. Every variant is recoverable: the board
/// answers and waits for the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorCode {
    /// The frame was not valid COBS or not a valid postcard [`Request`]
    /// (truncated, corrupted, or from another protocol version).
    Malformed,
    /// The frame was longer than [`crate::MAX_FRAME`]; it was skipped up to
    /// its delimiter.
    Oversized,
    /// `offset + len` lies outside a tensor of `limit` bytes, or a chunk is
    /// larger than [`crate::MAX_CHUNK`].
    OutOfRange {
        /// Requested offset.
        offset: u32,
        /// Requested length.
        len: u32,
        /// Size of the tensor addressed.
        limit: u32,
    },
    /// A [`Request::LoadInput`] chunk did not continue the previous one.
    OutOfOrder {
        /// The offset the board expected (0 always restarts).
        expected: u32,
        /// The offset received.
        got: u32,
    },
    /// [`Request::Infer`] before the whole input was loaded.
    InputIncomplete {
        /// Bytes loaded so far.
        loaded: u32,
        /// Bytes the model input has.
        needed: u32,
    },
    /// [`Request::ReadOutput`] or [`Request::OpStats`] before a successful
    /// [`Request::Infer`] on the current input.
    NoOutput,
    /// [`Request::OpStats`] named an op the model does not have.
    NoSuchOp {
        /// Ops in the model.
        op_count: u16,
    },
    /// The linked artifact did not parse, or inference failed.
    Model(ModelFault),
    /// [`Request::InjectFaults`] or [`Request::Reload`] on a board whose
    /// artifact is not protected (there is no coded image to flip).
    NotProtected,
    /// [`Request::InjectFaults`] whose `bits` is not a whole number of `u32`
    /// indices (`len` bytes) or exceeds [`crate::MAX_CHUNK`].
    BadInjection {
        /// Bytes of `bits` received.
        len: u32,
    },
    /// A bit index at or beyond the stored image's `limit` bits.
    BitOutOfRange {
        /// The offending index.
        bit: u32,
        /// Bits in the stored image.
        limit: u32,
    },
    /// Loading the protected artifact failed (the model is unusable).
    Protect(ProtectFault),
    /// The request needs a firmware feature this build left out (the
    /// kernel check: `--features kernel-check`).
    NotBuilt,
    /// [`Request::Infer`] named a domain while the drift monitor runs: the
    /// monitor chooses the alignment itself.
    Adapting,
    /// [`Request::Drift`] while the drift monitor is off.
    NotAdapting,
}

/// Why a protected artifact did not load, without payloads (the counts are
/// in the [`Health`] record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProtectFault {
    /// The container, or the recovered inner artifact, is malformed.
    Model(ModelFault),
    /// The protection header or sections are inconsistent.
    BadProtection,
    /// The key compiled into the firmware is not the artifact's.
    WrongKey,
    /// The firmware's RAM buffer cannot hold the inner artifact.
    RamTooSmall,
    /// Codewords with more flips than the code corrects.
    Uncorrectable,
    /// Blocks whose integrity tag does not match: tampering or a miscorrection.
    TagMismatch,
    /// A loader error this protocol version does not name.
    Other,
}

/// What the last protected load found and did (`sturdy_runtime::protect::Health`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Loads run since reset (boot included).
    pub loads: u32,
    /// Instructions or cycles ([`Info::counter`]) the last load took.
    pub load_cost: u64,
    /// Codewords whose syndrome was checked.
    pub codewords_checked: u32,
    /// Codewords that failed the check and were repaired.
    pub corrected_words: u32,
    /// Bits the decoder changed.
    pub corrected_bits: u32,
    /// Codewords the decoder could not repair.
    pub uncorrectable_words: u32,
    /// Tagged blocks checked.
    pub blocks_checked: u32,
    /// Blocks whose tag did not match.
    pub mac_failures: u32,
    /// Stored bits flipped by [`Request::InjectFaults`] since reset or the
    /// last restore.
    pub injected_bits: u32,
    /// Instructions or cycles of one codeword's syndrome check (the cheap
    /// path every clean codeword takes), measured over repeated checks of
    /// the first codeword when a [`Request::Reload`] asks for it; 0 otherwise.
    pub syndrome_check_cost: u64,
}

/// How the linked artifact is protected (see `sturdy protect`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protection {
    /// Bits of the stored image [`Request::InjectFaults`] may flip.
    pub stored_bits: u32,
    /// Codewords in the stored image (0: stored uncoded).
    pub codewords: u32,
    /// Codeword length n in bits (0: uncoded).
    pub n: u16,
    /// Message bits k per codeword (0: uncoded).
    pub k: u16,
    /// Tagged blocks (0: no tags).
    pub blocks: u32,
    /// Bytes of the inner artifact decoded into RAM.
    pub inner_len: u32,
    /// RAM reserved for the working copy of the stored image and the decoded
    /// inner artifact.
    pub ram: u32,
    /// Why the last load failed, if it did.
    pub fault: Option<ProtectFault>,
}

/// The runtime's error kinds, without their payloads, so the protocol does
/// not depend on the runtime crate's types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // one-to-one with `sturdy_runtime::Error`, documented there
pub enum ModelFault {
    Truncated,
    BadMagic,
    UnsupportedVersion,
    HeaderCrc,
    Misaligned,
    BadSection,
    MissingSection,
    BadTensor,
    BadOp,
    UnknownOp,
    ShapeMismatch,
    BadRequant,
    ArenaTooSmall,
    BadIoLength,
    /// [`Request::Infer`] named a domain the artifact has no table for.
    UnknownDomain,
    /// The artifact's DRIFT section is malformed.
    BadDrift,
    /// [`Request::Adapt`] on an artifact without a drift monitor.
    NoDriftMonitor,
    /// The artifact needs a kernel this firmware does not link: the
    /// firmware was built for another artifact.
    KernelNotLinked,
    /// A runtime error this protocol version does not name.
    Other,
}

/// A semantic version, for firmware and formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Version {
    pub major: u16,
    pub minor: u16,
    pub patch: u16,
}

/// Which board answered, so reports name the hardware they measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Board {
    /// QEMU `mps2-an386` (Cortex-M4, emulated; counts instructions).
    QemuMps2An386,
    /// ST Nucleo-F401RE (Cortex-M4F at 84 MHz; counts cycles).
    NucleoF401re,
}

/// What [`Stats`] counts: an emulator executes instructions in virtual time,
/// real silicon spends cycles; the two are never mixed up in reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterUnit {
    /// Retired instructions (QEMU `-icount shift=0`; resolution one SysTick
    /// tick = [`Info::counter_resolution`] instructions).
    Instructions,
    /// Core clock cycles (DWT `CYCCNT`).
    Cycles,
}

/// The board's description of itself, its model and its memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Info {
    /// [`crate::PROTOCOL_VERSION`] the firmware was built with.
    pub protocol: u16,
    /// `sturdy-firmware` crate version.
    pub firmware: Version,
    /// The board.
    pub board: Board,
    /// Artifact format version found in the linked artifact's header.
    pub artifact_format: Version,
    /// Length of the linked artifact in bytes.
    pub artifact_len: u32,
    /// CRC-32 of the whole linked artifact, so the host can check the board
    /// runs the artifact it compares against.
    pub artifact_crc: u32,
    /// `None` when the artifact parsed; otherwise why it did not (the board
    /// still answers `Info` and `Stats`).
    pub model_fault: Option<ModelFault>,
    /// Arena bytes the model's plan needs.
    pub arena_needed: u32,
    /// Arena bytes the firmware reserved.
    pub arena_capacity: u32,
    /// Model input bytes.
    pub input_len: u32,
    /// Model output bytes.
    pub output_len: u32,
    /// Ops in the model.
    pub op_count: u16,
    /// What [`Stats::last`] counts.
    pub counter: CounterUnit,
    /// Smallest step of the counter, in its unit.
    pub counter_resolution: u32,
    /// Flash and RAM use, from the linker's symbols.
    pub memory: Memory,
    /// `Some` when the linked artifact is protected (the key was compiled
    /// into the firmware).
    pub protection: Option<Protection>,
}

/// Flash and RAM use of the running firmware, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memory {
    /// Flash size of the memory map.
    pub flash_total: u32,
    /// Flash used: vector table, code, read-only data (artifact included)
    /// and the initial values of `.data`.
    pub flash_used: u32,
    /// Of `flash_used`: the vector table and code (`.vector_table` + `.text`).
    pub code: u32,
    /// Of `flash_used`: the linked artifact.
    pub artifact: u32,
    /// RAM size of the memory map.
    pub ram_total: u32,
    /// Statically allocated RAM (`.data` + `.bss` + `.uninit`), arena included.
    pub ram_static: u32,
    /// Of `ram_static`: the arena.
    pub arena: u32,
    /// Bytes left for the stack between the static data and the top of RAM.
    pub stack_reserved: u32,
}

/// Counters, from the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Successful inferences since reset.
    pub inferences: u32,
    /// What `last` counts.
    pub unit: CounterUnit,
    /// Instructions or cycles of the last inference (0 before the first).
    pub last: u64,
    /// Deepest stack use since reset, in bytes (painted-stack high-water
    /// mark; 0 if the board does not measure it).
    pub stack_peak: u32,
    /// Frames refused as malformed or oversized since reset.
    pub bad_frames: u32,
    /// The health record of the last protected load (`None`: plain artifact).
    pub health: Option<Health>,
    /// Activation guards of the last inference (all zero without a GUARDS
    /// section).
    pub guards: GuardStats,
    /// Guard trips since reset.
    pub guard_trips: u32,
    /// The scrubber and aging indicator (`None`: plain artifact, or stored
    /// uncoded).
    pub scrub: Option<ScrubStats>,
    /// Output bits the timing-fault emulation flipped in the last
    /// inference (re-runs included; see [`Request::TimingFaults`]).
    pub timing_flips: u32,
}

/// What the drift monitor reported after the last inference
/// (`sturdy_runtime::DriftStatus`), and what it cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftStats {
    /// Samples observed since the monitor started.
    pub samples: u32,
    /// The last KS statistic, × 65535.
    pub statistic: u32,
    /// The CUSUM sum.
    pub cusum: u32,
    /// Re-fits so far.
    pub refits: u32,
    /// Re-fits rolled back so far.
    pub rollbacks: u32,
    /// Sample of the first alarm.
    pub first_alarm: Option<u32>,
    /// The last sample re-fitted the table.
    pub refitted: bool,
    /// The last sample rolled a re-fit back.
    pub rolled_back: bool,
    /// Input values the monitor counts per sample (every stride-th).
    pub values_observed: u32,
    /// Instructions or cycles of the last input's count and mapping.
    pub input_cost: u64,
    /// Instructions or cycles of the last output's judgement (statistic,
    /// detector, re-fit when one happened).
    pub output_cost: u64,
    /// `output_cost` of the last sample that re-fitted (0 before one).
    pub refit_cost: u64,
    /// RAM of the monitor's state, in bytes.
    pub ram_bytes: u32,
}

/// What scrubbing has found and cost since reset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStats {
    /// Steps run (requested and idle).
    pub steps: u32,
    /// Complete passes over the stored image.
    pub passes: u32,
    /// Where the next step starts: an interleaver row (a pass walks rows
    /// `0 .. C` in order, 32 at a time; see `Scrubber::position`).
    pub position: u32,
    /// Codewords checked.
    pub checked: u32,
    /// Codewords repaired.
    pub corrected_words: u32,
    /// Stored bits the decoder changed.
    pub corrected_bits: u32,
    /// Codewords found uncorrectable (left as they are).
    pub uncorrectable_words: u32,
    /// Bits of the decoded running copy rewritten (decode-into-RAM layout).
    pub decoded_bits_repaired: u32,
    /// Instructions or cycles ([`Info::counter`]) of the last step.
    pub last_cost: u64,
    /// Codewords the last step checked.
    pub last_checked: u32,
    /// The costliest step so far.
    pub worst_cost: u64,
    /// Codewords that step checked.
    pub worst_checked: u32,
    /// The aging indicator over the completed passes.
    pub aging: AgingStats,
}

/// The aging indicator (`sturdy_runtime::aging::AgingReport`): corrected
/// bits per pass, their least-squares trend projected to the end of life,
/// and the alarm when the projection reaches the code's safe limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgingStats {
    /// Passes in the indicator's history.
    pub passes: u32,
    /// Corrected bits of the last complete pass.
    pub last_bits: u32,
    /// Trend, thousandths of a corrected bit per pass.
    pub trend_milli: i64,
    /// Its lower bound (two standard errors below; `i64::MIN` before three
    /// passes), which the projection grows by.
    pub trend_lower_milli: i64,
    /// Corrected bits per pass the trend projects at the end of life.
    pub projected_bits: u32,
    /// Corrected bits per pass at which the code stops being safe.
    pub limit_bits: u32,
    /// A pass found a word the code could not repair.
    pub uncorrectable_seen: bool,
    /// The projection reaches the limit before the end of life, or a word
    /// was lost.
    pub alarm: bool,
    /// RAM of the indicator's state, in bytes.
    pub ram_bytes: u32,
}

/// What the activation guards saw in one inference (the runtime's
/// `GuardReport`): out-of-range values are clamped and counted; an op
/// whose count crosses its threshold trips — its weights are re-verified
/// (a protected artifact's codewords and tags) and it is re-run once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardStats {
    /// Guarded op runs (re-runs included).
    pub ops_checked: u32,
    /// Output values clamped into their op's guard range.
    pub values_clamped: u32,
    /// Ops that crossed their threshold (each re-verified and re-run).
    pub trips: u32,
    /// Re-runs still over the threshold (clamped and kept).
    pub trips_after_rerun: u32,
}
