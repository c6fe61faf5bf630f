//! What the x86-64 host kernels ([`super::conv_sse2`],
//! [`super::fully_connected_sse2`]) share: loads of a few activations or
//! weights into a vector, and the requantization's tail on four outputs.
//!
//! Every function here is safe code compiled with SSE2, which every x86-64
//! CPU implements (it is the target's baseline); the kernels' entry points
//! each make the one `unsafe` call into such code.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_max_epi16, _mm_min_epi16, _mm_packs_epi16,
    _mm_packs_epi32, _mm_srai_epi32,
};

/// Up to eight int8 values as the low bytes of an i64, zero-filled.
#[inline]
pub(super) fn load8(bytes: &[i8]) -> i64 {
    let bytes: &[u8] = bytemuck::cast_slice(bytes);
    match <[u8; 8]>::try_from(bytes) {
        Ok(whole) => i64::from_le_bytes(whole),
        Err(_) => {
            let mut part = [0u8; 8];
            for (d, &b) in part.iter_mut().zip(bytes) {
                *d = b;
            }
            i64::from_le_bytes(part)
        }
    }
}

/// The 16 int8 values at `at` of `bytes` as a vector, zero-filled past
/// the end of `bytes`.
#[inline]
pub(super) fn load16(bytes: &[i8], at: usize) -> __m128i {
    let tail = bytes.get(at..).unwrap_or(&[]);
    match tail.get(..16).map(<[i8; 16]>::try_from) {
        Some(Ok(whole)) => bytemuck::cast(whole),
        _ => {
            let mut part = [0i8; 16];
            for (d, &b) in part.iter_mut().zip(tail) {
                *d = b;
            }
            bytemuck::cast(part)
        }
    }
}

/// Four outputs from their hoisted requants' values before the last
/// halving (`h`, see [`crate::arith::NarrowRequant`]), packed as bytes:
/// `(h + carry) >> 1` with `carry = 2zp + 1`, saturated to int8, clamped
/// to `[lo, hi]` (every i16 lane) — [`super::mac::requant4`]'s rule, with
/// no branch (scalar clamps compiled to branches that real activations
/// mispredict).
#[target_feature(enable = "sse2")]
pub(super) fn narrow_tail(h: [i32; 4], carry: __m128i, lo: __m128i, hi: __m128i) -> u32 {
    let v: __m128i = bytemuck::cast(h);
    let v = _mm_srai_epi32::<1>(_mm_add_epi32(v, carry));
    let v = _mm_packs_epi32(v, v);
    let v = _mm_min_epi16(_mm_max_epi16(v, lo), hi);
    _mm_cvtsi128_si32(_mm_packs_epi16(v, v)) as u32
}
