//! QC-LDPC codec for weights stored in flash: the IEEE 802.11n codes.
//!
//! Memory gives no soft information, and a flipped bit in a stored weight
//! silently changes what the network computes. This module stores data as
//! systematic codewords of a standard quasi-cyclic LDPC code (the twelve
//! 802.11n codes: n = 648, 1296, 1944 bits; rates 1/2, 2/3, 3/4, 5/6) and,
//! at run time, checks them cheaply and repairs the ones that fail:
//!
//! 1. [`Code::syndrome_ok`] — word-parallel syndrome check: each Z×Z circulant
//!    is one rotation of a Z-bit block, so a whole codeword is checked with a
//!    few hundred word operations, no per-bit loop.
//! 2. [`decode`] — only for codewords that fail: integer layered normalized
//!    min-sum on constant-magnitude LLRs (hard decisions), all working memory
//!    in a caller-provided [`DecoderScratch`], early stop on the first valid
//!    codeword.
//! 3. [`Code::encode`] — the linear-time systematic encoder the standard's
//!    dual-diagonal parity structure allows (host side, or on-device
//!    re-encoding after a weight update).
//!
//! [`fer`] measures frame-error rates on a binary symmetric channel, the
//! model of independent bit flips in memory.
//!
//! # Bit layout
//!
//! A bit vector (message, parity or codeword) is packed **LSB-first into
//! `u32` words**: bit `i` is `(words[i / 32] >> (i % 32)) & 1`. This is the
//! layout of the little-endian artifact read in place, so a codeword in
//! flash is used without copying or byte swapping, and `u32` is the native
//! word of a Cortex-M. A vector of `len` bits occupies exactly
//! `len.div_ceil(32)` words; the unused high bits of the last word are
//! ignored on input and left unchanged on output. A codeword is the `k`
//! message bits followed by the `n − k` parity bits (systematic), so the
//! stored weights are readable without decoding.
//!
//! Inside the codec a codeword is handled as 24 blocks of Z bits (Z = 27, 54
//! or 81), each in a `u128`; block `j` holds codeword bits `j·Z .. (j+1)·Z`,
//! bit `r` of the block being codeword bit `j·Z + r`.
//!
//! # Not an integrity check
//!
//! The code is public and linear: it repairs random faults, but a decoder
//! can converge to a *different* valid codeword when too many bits flipped,
//! and an attacker can flip bits into another codeword on purpose. Both pass
//! the syndrome check; the keyed integrity tag (a later layer) catches them.

mod base_matrices;
mod bits;
mod code;
mod decode;
pub mod fer;

pub use code::{Code, Length, Rate, MAX_CODEWORD_WORDS};
pub use decode::{decode, DecoderScratch, DEFAULT_MAX_ITERATIONS};

use core::fmt;

/// Everything that can go wrong in the LDPC codec.
///
/// Kept separate from the runtime's [`crate::Error`] so the codec can be used
/// (and tested) on its own; the artifact layer maps these when it integrates
/// coded weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LdpcError {
    /// A message, parity or codeword buffer does not have the number of
    /// `u32` words the code needs (see [`Code::words`]).
    BadLength {
        /// Words the code needs.
        expected: usize,
        /// Words provided.
        got: usize,
    },
    /// The [`DecoderScratch`] is too small for the code.
    ScratchTooSmall {
        /// Codeword bits (`n`) the code needs the scratch to hold.
        bits: usize,
        /// Parity checks (`n − k`) the code needs the scratch to hold.
        checks: usize,
    },
    /// The decoder did not reach a valid codeword within its iteration
    /// budget: more bits flipped than the code can repair. The codeword is
    /// left as it was.
    Uncorrectable,
}

impl fmt::Display for LdpcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LdpcError::BadLength { expected, got } => {
                write!(f, "LDPC buffer has {got} words, the code needs {expected}")
            }
            LdpcError::ScratchTooSmall { bits, checks } => write!(
                f,
                "LDPC decoder scratch too small: the code needs {bits} bits and {checks} checks"
            ),
            LdpcError::Uncorrectable => write!(f, "LDPC codeword is uncorrectable"),
        }
    }
}

impl core::error::Error for LdpcError {}
