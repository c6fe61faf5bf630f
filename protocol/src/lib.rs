//! `sturdy-protocol`: the hardware-in-loop wire protocol.
//!
//! The host (`sturdy hil`) and the board (`sturdy-firmware`) depend on this
//! one crate, so the two ends cannot drift apart. Messages are [`Request`]s
//! from the host and [`Response`]s from the board, serialized with postcard
//! and framed with COBS: every frame ends with a `0x00` byte that cannot
//! occur inside it, so either side resynchronizes after garbage by waiting for
//! the next delimiter.
//!
//! The protocol is strictly request/response: the board answers every frame
//! it receives with exactly one frame, an error included, and never speaks
//! first. No frame exceeds [`MAX_FRAME`] bytes, so both sides use fixed
//! buffers and the board needs no allocator.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod frame;
mod message;

pub use frame::{decode, encode, Deframer, FrameError, Framed};
pub use message::{
    AgingStats, Board, CounterUnit, DriftStats, ErrorCode, GuardMode, GuardStats, Health, Info,
    KernelCheck, Memory, ModelFault, ProtectFault, Protection, Request, Response, ScrubStats,
    Stats, Version,
};

/// Bumped on any incompatible change to [`Request`] or [`Response`], so the
/// host can refuse to talk to a board flashed with another protocol.
pub const PROTOCOL_VERSION: u16 = 6;

/// Largest payload of one [`Request::LoadInput`] or [`Response::Output`]:
/// small enough for a UART receive buffer on a tiny MCU, large enough that
/// framing overhead stays under 5 %.
pub const MAX_CHUNK: usize = 256;

/// Largest encoded frame, delimiter included. Anything longer is refused
/// with [`ErrorCode::Oversized`] without being buffered.
///
/// Worst case: a chunk message is 1 (variant) + 5 (offset varint) + 2 (length
/// varint) + [`MAX_CHUNK`] bytes of postcard, COBS adds one byte per 254 plus
/// one, and the delimiter adds one; 320 leaves room for every other message.
pub const MAX_FRAME: usize = 320;
