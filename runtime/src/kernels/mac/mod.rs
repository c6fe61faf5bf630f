//! The multiply-accumulate loops every Conv and FC kernel bottoms out in:
//! dot products `Σ (x + offset) · w` of int8 activations with int8 weights,
//! one at a time or in blocks that share loads.
//!
//! Two implementations with one contract: [`portable`] (plain loops the
//! compiler vectorizes on the host) and, on Armv7E-M, `dsp` (two MACs per
//! `SMLAD` instruction). Every sum wraps in i32 — exact arithmetic modulo
//! 2^32 — so the order in which terms are added cannot change a bit, and
//! the two give identical results by construction; [`check`] verifies it
//! on the device (the firmware answers the protocol's kernel check with it).
//! The build script picks the path for the target; the kernels call the
//! re-exports below and never name a path.
//!
//! Every function sums over the common length of its slices.
//!
//! The *quad* forms serve convolutions, which meet one window of
//! activations with every output channel: four windows (four output
//! pixels) are widened once into a [`QuadWindow`] — i16, input offset
//! added — and each output channel's weights are then read once for all
//! four.
//!
//! The quad layout (shared by both paths, so the gather code is one): a
//! `k`-element window quad takes `2k` u32 words. Each complete group `g`
//! of four elements `x0..x3` of pixel `p` (0..4) fills words `8g + 2p` =
//! `(x0, x2)` and `8g + 2p + 1` = `(x1, x3)` (low, high halfword): the
//! lane order `SXTB16` gives a weight word, so on the DSP path two `LDM`s
//! bring the four pixels' group and eight `SMLAD`s consume it with one
//! weight word. The last `k % 4` elements follow two words each: pixels 0
//! and 1 (low, high), then pixels 2 and 3.

pub mod check;
pub mod portable;

#[cfg(sturdy_dsp)]
pub mod dsp;

#[cfg(sturdy_dsp)]
pub use dsp::{
    clamp4, clamp_count, dot, dot_quad_channels, lanes4, rows2_i4, rows4, sat8_half, taps4, widen,
    window3x3,
};
#[cfg(not(sturdy_dsp))]
pub use portable::{
    clamp4, clamp_count, dot, dot_quad_channels, lanes4, rows2_i4, rows4, sat8_half, taps4, widen,
    window3x3,
};

use crate::arith::NarrowRequant;

/// Whether the re-exports are the DSP path (`SMLAD`) rather than the
/// portable one: the firmware reports it with its kernel check.
pub const DSP: bool = cfg!(sturdy_dsp);

/// The input offset in both halfwords (its low 16 bits: `SXTAB16` adds
/// per halfword, and the exact sums fit in 16 bits), as [`lanes4`] takes it.
#[inline(always)]
pub fn both_halves(offset: i32) -> u32 {
    (offset as u32 & 0xFFFF) * 0x0001_0001
}

/// Where element `j` of pixel `pixel`'s window goes in the quad layout:
/// the word and the halfword (0 low, 1 high).
#[inline(always)]
pub fn quad_slot(j: usize, k: usize, pixel: usize) -> (usize, u32) {
    let main = k - k % 4;
    if j < main {
        (2 * (j & !3) + 2 * pixel + (j & 1), ((j >> 1) & 1) as u32)
    } else {
        (2 * j + pixel / 2, (pixel % 2) as u32)
    }
}

/// Sets one halfword of a word.
#[inline(always)]
fn set_half(word: &mut u32, half: u32, value: i16) {
    let shift = 16 * half;
    *word = (*word & !(0xFFFF << shift)) | ((value as u16 as u32) << shift);
}

/// Stores `x + offset` as element `j` of pixel `pixel`'s window.
#[inline(always)]
fn put(words: &mut [u32], k: usize, pixel: usize, j: usize, x: i8, offset: i32) {
    let (w, half) = quad_slot(j, k, pixel);
    if let Some(word) = words.get_mut(w) {
        set_half(word, half, (x as i32).wrapping_add(offset) as i16);
    }
}

/// Four windows of `k` activations each, widened, in the quad layout.
#[derive(Clone, Copy)]
pub struct QuadWindow<'a> {
    /// The words: two per element of each window (`2k` of them).
    pub words: &'a [u32],
}

impl QuadWindow<'_> {
    /// Elements per window: the layout takes two words per element.
    #[inline(always)]
    pub fn k(&self) -> usize {
        self.words.len() / 2
    }
}

/// Sets pixel `pixel`'s window of the quad layout to zeros (a clipped
/// window's padding taps), leaving the other pixels'.
pub fn clear(words: &mut [u32], k: usize, pixel: usize) {
    let main = k - k % 4;
    let (groups, tail) = words.split_at_mut((2 * main).min(words.len()));
    for g in groups.chunks_exact_mut(8) {
        g[2 * pixel] = 0;
        g[2 * pixel + 1] = 0;
    }
    for w in tail.chunks_exact_mut(2).take(k % 4) {
        set_half(&mut w[pixel / 2], (pixel % 2) as u32, 0);
    }
}

/// Where each tap of a whole depthwise window sits, in bytes from the
/// window's first tap: non-decreasing (checked once here), so the last
/// entry bounds every read and [`taps4`] checks one number per window.
#[derive(Clone, Copy)]
pub struct TapOffsets<'a>(&'a [usize]);

impl<'a> TapOffsets<'a> {
    /// `None` unless `at` is non-empty and non-decreasing.
    pub fn new(at: &'a [usize]) -> Option<Self> {
        let sorted = at.windows(2).all(|w| w[0] <= w[1]);
        (sorted && !at.is_empty()).then_some(Self(at))
    }

    /// The offsets.
    pub fn get(self) -> &'a [usize] {
        self.0
    }

    /// Bytes a window needs from its first tap: the last tap's 4-byte read.
    pub fn span(self) -> usize {
        self.0.last().map_or(0, |&a| a + 4)
    }
}

/// Taps of the 3×3 window [`window3x3`] takes.
pub const TAPS_3X3: usize = 9;

/// Weight words of a [`window3x3`] table: two per tap.
pub const WIDE_3X3: usize = 2 * TAPS_3X3;

/// Four channels' weights of each tap (`table[4t + j]`, channel `j`),
/// sign-extended once into the lane order `SXTB16` gives an activation
/// word: word `2t` holds channels 0 and 2 (low, high halfword), word
/// `2t + 1` channels 1 and 3. A depthwise block widens its table once and
/// every window of the block reads it.
pub fn widen_taps(table: &[i8], wide: &mut [u32]) {
    let half = |w: i8| w as i16 as u16 as u32;
    for (w, pair) in table.chunks_exact(4).zip(wide.chunks_exact_mut(2)) {
        pair[0] = half(w[0]) | half(w[2]) << 16;
        pair[1] = half(w[1]) | half(w[3]) << 16;
    }
}

/// `v` in every byte of a word: an activation bound as [`requant4`] takes it.
#[inline(always)]
pub fn bytes4(v: i8) -> u32 {
    u32::from_ne_bytes([v as u8; 4])
}

/// Four outputs packed into a word (lane `j` in byte `j`): `clamp(rq[j](
/// acc[j]) + zp, lo, hi)`, the kernels' per-output requantization for the
/// hoisted 32-bit form, with `lo4`, `hi4` from [`bytes4`]. Exact: the
/// zero point rides the requant's final halving (`(v + 1) >> 1 + zp = (v
/// + 2zp + 1) >> 1`, see [`NarrowRequant`]) with no wrap (`|v| ≤ 2^30`,
/// the zero point an int8 value), the halving and the clamp to the int8
/// range are one `SSAT` ([`sat8_half`]), which changes nothing since
/// `[lo, hi]` lies inside that range; the bounds then apply to all four
/// bytes at once ([`clamp4`]).
#[inline(always)]
pub fn requant4(acc: [i32; 4], rq: [NarrowRequant; 4], zp: i32, lo4: u32, hi4: u32) -> u32 {
    // An array literal, not `array::map`: LLVM left the map out of line
    // (a call and a stack round trip per four outputs on the host).
    let carry = zp.wrapping_mul(2).wrapping_add(1);
    let v = |j: usize| sat8_half(rq[j].before_halving(acc[j]).wrapping_add(carry)) as u8;
    clamp4(u32::from_le_bytes([v(0), v(1), v(2), v(3)]), lo4, hi4)
}

/// Marks the end of a [`WideVector`]'s groups: a lane value no activation
/// reaches (`|x + offset| ≤ 255`), so the DSP loop needs no counter.
pub const END_OF_GROUPS: u32 = 0x8000_8000;

/// One input vector widened for the fully connected loops, in groups of
/// `GROUP` elements (offset added): group `x0 .. x(G−1)` fills `G / 2`
/// words, word `j` = `(x_j, x_(j + G/2))` (low, high halfword) — the lane
/// order `SXTB16` gives a weight word of four int8 codes ([`rows4`], `G =
/// 4`: `(x0, x2)`, `(x1, x3)`), or the even and odd nibbles of a word of
/// eight int4 codes once each is moved to the top of its byte
/// ([`rows2_i4`], `G = 8`). Then the pair ([`END_OF_GROUPS`], 0), so the
/// DSP loop's pair load that meets the end mark stays inside the words
/// too. The last `len % G` elements stay with the caller.
#[derive(Clone, Copy)]
pub struct WideVector<'a, const GROUP: usize = 4> {
    words: &'a [u32],
}

impl<'a, const GROUP: usize> WideVector<'a, GROUP> {
    /// Words per group.
    const HALF: usize = GROUP / 2;

    /// Widens `x` (offset added) into `buf`; `None` when `buf` is shorter
    /// than `G/2 · ⌊len / G⌋ + 2` words.
    pub fn new(x: &[i8], offset: i32, buf: &'a mut [u32]) -> Option<Self> {
        let groups = x.len().checked_div(GROUP)?;
        let words = buf.get_mut(..Self::HALF * groups + 2)?;
        let half = |v: i8| (v as i32).wrapping_add(offset) as u16 as u32;
        for (w, x) in words
            .chunks_exact_mut(Self::HALF)
            .zip(x.chunks_exact(GROUP))
        {
            for (j, w) in w.iter_mut().enumerate() {
                *w = half(x[j]) | half(x[j + Self::HALF]) << 16;
            }
        }
        words[Self::HALF * groups] = END_OF_GROUPS;
        words[Self::HALF * groups + 1] = 0;
        Some(WideVector { words })
    }

    /// Complete groups of `GROUP` elements.
    pub fn groups(self) -> usize {
        self.words
            .len()
            .saturating_sub(2)
            .checked_div(Self::HALF)
            .unwrap_or(0)
    }

    /// The words, the end mark last.
    pub fn words(self) -> &'a [u32] {
        self.words
    }
}
