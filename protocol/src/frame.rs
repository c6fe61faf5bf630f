//! COBS framing: turning messages into delimited byte frames and a byte
//! stream back into frames, with fixed buffers on both sides.

use serde::{Deserialize, Serialize};

/// Why a frame could not be built or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// The encoded message does not fit the output buffer (or
    /// [`crate::MAX_FRAME`]).
    BufferTooSmall,
    /// More than the deframer's capacity arrived without a delimiter.
    Oversized,
    /// Not valid COBS, or not a valid message once unstuffed.
    Malformed,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FrameError::BufferTooSmall => "message does not fit the frame buffer",
            FrameError::Oversized => "frame longer than the maximum frame size",
            FrameError::Malformed => "malformed frame (bad COBS or message encoding)",
        })
    }
}

impl core::error::Error for FrameError {}

/// Serializes `message` with postcard, COBS-encodes it and appends the `0x00`
/// delimiter; returns the used prefix of `buf`.
pub fn encode<'b, T: Serialize>(
    message: &T,
    buf: &'b mut [u8],
) -> Result<&'b mut [u8], FrameError> {
    let limit = buf.len().min(crate::MAX_FRAME);
    let used = postcard::to_slice_cobs(message, &mut buf[..limit])
        .map_err(|_| FrameError::BufferTooSmall)?
        .len();
    Ok(&mut buf[..used])
}

/// Decodes one frame (with or without its trailing delimiter) in place and
/// deserializes it; borrowed fields point into `frame`.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a mut [u8]) -> Result<T, FrameError> {
    let body = match frame.split_last() {
        Some((0, _)) => frame.len() - 1,
        _ => frame.len(),
    };
    if body == 0 {
        return Err(FrameError::Malformed);
    }
    let frame = &mut frame[..body];
    let len = cobs_decode_in_place(frame).ok_or(FrameError::Malformed)?;
    let (message, rest) =
        postcard::take_from_bytes(&frame[..len]).map_err(|_| FrameError::Malformed)?;
    if !rest.is_empty() {
        // Trailing bytes mean the frame is not what the sender encoded.
        return Err(FrameError::Malformed);
    }
    Ok(message)
}

/// Strict in-place COBS decoding: rejects a zero byte inside the frame and a
/// code byte that points past its end. Returns the decoded length.
fn cobs_decode_in_place(buf: &mut [u8]) -> Option<usize> {
    let (mut read, mut write) = (0usize, 0usize);
    while read < buf.len() {
        let code = buf[read] as usize;
        if code == 0 || read + code > buf.len() {
            return None;
        }
        read += 1;
        for _ in 1..code {
            let byte = buf[read];
            if byte == 0 {
                return None;
            }
            buf[write] = byte;
            read += 1;
            write += 1;
        }
        // A group shorter than 255 stands for a zero, except at the very end.
        if code < 0xFF && read < buf.len() {
            buf[write] = 0;
            write += 1;
        }
    }
    Some(write)
}

/// What [`Deframer::push`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Framed<'a> {
    /// A complete frame (delimiter stripped), still COBS-encoded: pass it to
    /// [`decode`].
    Frame(&'a mut [u8]),
    /// A frame longer than the buffer ended; its bytes were dropped.
    Oversized,
}

/// Splits a byte stream into frames at `0x00` delimiters, in a fixed buffer
/// of `N` bytes. Bytes past `N` are counted but not stored, and the frame is
/// reported as [`Framed::Oversized`] when its delimiter arrives, so one bad
/// frame never desynchronizes the stream. Empty frames (repeated delimiters)
/// are ignored, so a sender can flush a half-sent frame by sending `0x00`.
#[derive(Debug)]
pub struct Deframer<const N: usize> {
    buf: [u8; N],
    len: usize,
    overflow: bool,
}

impl<const N: usize> Default for Deframer<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Deframer<N> {
    /// No partial frame is buffered: the link is between frames, so the
    /// board may spend time on other work (idle scrubbing) without risking
    /// the bytes of a frame that has started arriving.
    pub fn is_between_frames(&self) -> bool {
        self.len == 0 && !self.overflow
    }

    /// An empty deframer.
    pub const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
            overflow: false,
        }
    }

    /// Feeds one byte; returns a frame when `byte` is a delimiter that ends a
    /// non-empty frame.
    pub fn push(&mut self, byte: u8) -> Option<Framed<'_>> {
        if byte != 0 {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = byte;
                    self.len += 1;
                }
                None => self.overflow = true,
            }
            return None;
        }
        let (len, overflow) = (self.len, self.overflow);
        self.len = 0;
        self.overflow = false;
        if overflow {
            Some(Framed::Oversized)
        } else if len == 0 {
            None
        } else {
            Some(Framed::Frame(&mut self.buf[..len]))
        }
    }

    /// Bytes of the current, unfinished frame held so far.
    pub fn pending(&self) -> usize {
        self.len
    }
}
