//! The multiply-accumulate contract on Armv7E-M (Cortex-M4/M7), two MACs
//! per instruction with the DSP extension.
//!
//! Per group of four int8 values, one 32-bit load gives bytes `b0 b1 b2
//! b3`; `SXTB16` sign-extends bytes 0 and 2 into the two 16-bit halves of a
//! register, `SXTB16 … ROR #8` bytes 1 and 3. Activations use `SXTAB16`
//! instead, which adds the input offset to both halves in the same
//! instruction. Weights and activations are split in the same lane order,
//! so one `SMLAD` (`acc + lo·lo + hi·hi`) adds two products and the pair
//! of registers covers all four. A convolution's channel meets four
//! pixels at once: 2 window loads, 1 weight load, 2 extensions and 8
//! `SMLAD` per 16 MACs.
//!
//! Why the results equal [`super::portable`]'s bit for bit: each lane is an
//! exact 16-bit value (`|x + offset| ≤ 255`, `|w| ≤ 128`, the offset being
//! a negated int8 zero point in `[−127, 128]`), each product is exact in 32
//! bits, and `SMLAD` returns the 32-bit wrap of the exact sum — the same
//! wrapping i32 arithmetic the portable loops do, only associated
//! differently. (`SMLAD` sets the sticky Q flag on a wrap; nothing reads it.)
//! The last `len % 4` terms are added one by one.
//!
//! This is the runtime's one module with `unsafe`: `asm!` for single
//! register-to-register instructions (`core::arch::arm` has no stable DSP
//! intrinsics), each with no memory access, no stack use and, except
//! `SMLAD`, no flag change; and the loops in [`dot_quad_channels`],
//! [`taps4`] and [`window3x3`], whose bounds are argued where each stands. Other loads stay in safe Rust
//! (`u32::from_le_bytes`, which LLVM turns into one `LDR`; Armv7-M allows
//! unaligned `LDR`).
#![allow(unsafe_code)]

use super::{both_halves, QuadWindow, TapOffsets, WideVector};
use core::arch::asm;

/// Bytes 0 and 2 of `x`, sign-extended into the low and high halfword.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only instruction: no memory, stack or flags touched.
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, sign-extended into the low and high halfword.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only instruction: no memory, stack or flags touched.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 0 and 2 of `x`, sign-extended, plus the halfwords of `a`.
#[inline(always)]
fn sxtab16(a: u32, x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only instruction: no memory, stack or flags touched.
    unsafe {
        asm!("sxtab16 {r}, {a}, {x}", r = lateout(reg) r, a = in(reg) a, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, sign-extended, plus the halfwords of `a`.
#[inline(always)]
fn sxtab16_ror8(a: u32, x: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only instruction: no memory, stack or flags touched.
    unsafe {
        asm!("sxtab16 {r}, {a}, {x}, ror #8", r = lateout(reg) r, a = in(reg) a, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// `acc + lo(a)·lo(b) + hi(a)·hi(b)`, halfwords signed, wrapping.
#[inline(always)]
fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only instruction: no memory or stack touched; it may
    // set the Q flag, so flags are not declared preserved.
    unsafe {
        asm!("smlad {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// `acc + lo(a)·lo(b)`, halfwords signed.
#[inline(always)]
fn smlabb(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only instruction: no memory or stack touched; it may
    // set the Q flag, so flags are not declared preserved.
    unsafe {
        asm!("smlabb {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// `acc + hi(a)·hi(b)`, halfwords signed.
#[inline(always)]
fn smlatt(a: u32, b: u32, acc: i32) -> i32 {
    let r: i32;
    // SAFETY: register-only instruction: no memory or stack touched; it may
    // set the Q flag, so flags are not declared preserved.
    unsafe {
        asm!("smlatt {r}, {a}, {b}, {acc}", r = lateout(reg) r, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    r
}

/// Four int8 values as one little-endian word (one `LDR`).
#[inline(always)]
fn word(c: &[i8]) -> u32 {
    match *c {
        [a, b, c, d] => u32::from_le_bytes([a as u8, b as u8, c as u8, d as u8]),
        _ => 0,
    }
}

/// An activation word split into its two lane pairs, offset added.
#[inline(always)]
fn activations(c: &[i8], offset: u32) -> (u32, u32) {
    let x = word(c);
    (sxtab16(offset, x), sxtab16_ror8(offset, x))
}

/// A weight word split into its two lane pairs.
#[inline(always)]
fn weights(c: &[i8]) -> (u32, u32) {
    let w = word(c);
    (sxtb16(w), sxtb16_ror8(w))
}

/// `(x + offset) · w`, wrapping: the scalar step of the tails.
#[inline(always)]
fn term(x: i8, offset: i32, w: i8) -> i32 {
    (x as i32).wrapping_add(offset).wrapping_mul(w as i32)
}

/// `Σ (x[i] + offset) · w[i]`: the general loops' and the tails' dot
/// product, one out-of-line copy (the hot paths have blocked forms).
#[inline(never)]
pub fn dot(x: &[i8], w: &[i8], offset: i32) -> i32 {
    let n = x.len().min(w.len());
    let (x, w) = (&x[..n], &w[..n]);
    let main = n - n % 4;
    let off = both_halves(offset);
    let mut acc = 0i32;
    for (cx, cw) in x.chunks_exact(4).zip(w.chunks_exact(4)) {
        let (xe, xo) = activations(cx, off);
        let (we, wo) = weights(cw);
        acc = smlad(xo, wo, smlad(xe, we, acc));
    }
    for i in main..n {
        acc = acc.wrapping_add(term(x[i], offset, w[i]));
    }
    acc
}

/// Widens `src` (offset added) into pixel `pixel`'s window of the quad
/// layout, as its elements `j0..`: whole groups of four with one load,
/// two `SXTAB16` and two stores when `j0` starts a group, element by
/// element otherwise and for the window's last `k % 4`.
#[inline]
pub fn widen(words: &mut [u32], k: usize, pixel: usize, j0: usize, src: &[i8], offset: i32) {
    let main = k - k % 4;
    let mut done = 0;
    if j0 % 4 == 0 && j0 < main {
        let groups = (main - j0).min(src.len()) / 4;
        let off = both_halves(offset);
        let dst = words
            .get_mut(2 * j0..2 * j0 + 8 * groups)
            .unwrap_or(&mut []);
        for (c, d) in src.chunks_exact(4).zip(dst.chunks_exact_mut(8)) {
            let (e, o) = activations(c, off);
            d[2 * pixel] = e;
            d[2 * pixel + 1] = o;
            done += 4;
        }
    }
    for (t, &x) in src.iter().enumerate().skip(done) {
        super::put(words, k, pixel, j0 + t, x, offset);
    }
}

/// `acc[j] + (x[j] + offset) · w[j]` for four independent channels `j`:
/// one word of activations and one of weights, two `SXTAB16`, two
/// `SXTB16`, and `SMLABB` / `SMLATT` per lane pair. `offset` is given in
/// both halfwords ([`super::both_halves`]).
#[inline(always)]
pub fn lanes4(acc: [i32; 4], x: &[i8], w: &[i8], offset: u32) -> [i32; 4] {
    let (xe, xo) = activations(x, offset);
    let (we, wo) = weights(w);
    [
        smlabb(xe, we, acc[0]),
        smlabb(xo, wo, acc[1]),
        smlatt(xe, we, acc[2]),
        smlatt(xo, wo, acc[3]),
    ]
}

/// `acc[j] + Σ_t x[at_t + j] · table[4t + j]` for four channels `j` (the
/// input offset folded into `acc`): one `asm!` loop per window, per tap
/// an offset load, one activation and one weight word, four `SXTB16` and
/// `SMLABB`/`SMLATT` per lane — 13 instructions per 4 MACs, no spills.
#[inline]
pub fn taps4(acc: [i32; 4], x: &[i8], at: TapOffsets<'_>, table: &[i8]) -> [i32; 4] {
    let offsets = at.get();
    if at.span() > x.len() || table.len() < 4 * offsets.len() {
        return cold::taps4(acc, x, at, table);
    }
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    // SAFETY: `offsets` is non-empty and non-decreasing (`TapOffsets`), so
    // for each of its `n ≥ 1` entries `a`, `a + 4 ≤ span ≤ x.len()`: every
    // 4-byte activation read `x[a..a + 4]` is in bounds (unaligned `LDR`
    // is allowed on Armv7-M); the table read `4t..4t + 4` is below
    // `4n ≤ table.len()`; the offset read walks `offsets` once. The loop
    // writes only its register operands and the flags.
    unsafe {
        asm!(
            "2:",
            "ldr {t}, [{pt}], #4",
            "ldr {xv}, [{px}, {t}]",
            "ldr {wv}, [{pw}], #4",
            "sxtb16 {t}, {xv}, ror #8",
            "sxtb16 {xv}, {xv}",
            "sxtb16 {we}, {wv}",
            "sxtb16 {wv}, {wv}, ror #8",
            "smlabb {a0}, {xv}, {we}, {a0}",
            "smlabb {a1}, {t}, {wv}, {a1}",
            "smlatt {a2}, {xv}, {we}, {a2}",
            "smlatt {a3}, {t}, {wv}, {a3}",
            "subs {n}, {n}, #1",
            "bne 2b",
            pt = inout(reg) offsets.as_ptr() => _,
            px = in(reg) x.as_ptr(),
            pw = inout(reg) table.as_ptr() => _,
            n = inout(reg) offsets.len() => _,
            t = out(reg) _,
            xv = out(reg) _,
            wv = out(reg) _,
            we = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// One tap of [`window3x3`]: the activation word at `$at`, the tap's two
/// pre-widened weight words, four `SMLABB`/`SMLATT` into the lanes.
macro_rules! tap3x3 {
    ($at:literal) => {
        concat!(
            "ldr {xv}, ",
            $at,
            "\n",
            "ldrd {we}, {wo}, [{pw}], #8\n",
            "sxtb16 {xt}, {xv}, ror #8\n",
            "sxtb16 {xv}, {xv}\n",
            "smlabb {a0}, {xv}, {we}, {a0}\n",
            "smlatt {a2}, {xv}, {we}, {a2}\n",
            "smlabb {a1}, {xt}, {wo}, {a1}\n",
            "smlatt {a3}, {xt}, {wo}, {a3}",
        )
    };
}

/// `acc[j] + Σ_{ky,kx<3} x[ky·row + 4kx + j] · w(ky·3 + kx, j)` for four
/// channels `j` (see the portable twin): the 3×3 depthwise window over a
/// padded band, unrolled — per tap one activation `LDR` at a fixed offset,
/// two `SXTB16`, one `LDRD` of the pre-widened weights and four
/// `SMLABB`/`SMLATT`: 8 instructions per 4 MACs, no loop, no offset table.
#[inline]
pub fn window3x3(acc: [i32; 4], x: &[i8], row: usize, wide: &[u32]) -> [i32; 4] {
    let need = row.checked_mul(2).and_then(|r| r.checked_add(12));
    if need.is_none_or(|need| x.len() < need) || wide.len() < super::WIDE_3X3 {
        return cold::window3x3(acc, x, row, wide);
    }
    let [mut a0, mut a1, mut a2, mut a3] = acc;
    // SAFETY: every activation read is `x[r·row + 4kx ..][..4]` with
    // `r, kx ≤ 2`, whose last byte `2·row + 11 < x.len()` (checked above;
    // unaligned `LDR` is allowed on Armv7-M); `px` moves by `row` twice
    // between the rows. The weight reads are words `0..18` of `wide`
    // (`LDRD`, `wide` is 4-byte aligned, 18 ≤ `wide.len()`). Only register
    // operands and flags are written.
    unsafe {
        asm!(
            tap3x3!("[{px}]"),
            tap3x3!("[{px}, #4]"),
            tap3x3!("[{px}, #8]"),
            "add {px}, {px}, {row}",
            tap3x3!("[{px}]"),
            tap3x3!("[{px}, #4]"),
            tap3x3!("[{px}, #8]"),
            "add {px}, {px}, {row}",
            tap3x3!("[{px}]"),
            tap3x3!("[{px}, #4]"),
            tap3x3!("[{px}, #8]"),
            px = inout(reg) x.as_ptr() => _,
            pw = inout(reg) wide.as_ptr() => _,
            row = in(reg) row,
            xv = out(reg) _,
            xt = out(reg) _,
            we = out(reg) _,
            wo = out(reg) _,
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            options(nostack, readonly),
        );
    }
    [a0, a1, a2, a3]
}

/// The entry of the int8 fully connected loop ([`rows4`]), which takes two
/// groups per pass: `{x0}` holds the group count on entry; the
/// first group's lane pair is loaded, an odd count enters at the second
/// half (`4:`), an even one ends at once on the mark (`3:`), and `2:`
/// starts a pass.
macro_rules! pass_entry {
    () => {
        concat!(
            "tst {x0}, #1\n",
            "ldrd {x0}, {x1}, [{px}], #8\n",
            "bne 4f\n",
            "cmp {x0}, #0x80008000\n",
            "beq 3f\n",
            "2:",
        )
    };
}

/// The end of a pass of that loop: the next group's lane pair, and
/// another pass unless it is the end mark.
macro_rules! pass_end {
    () => {
        concat!(
            "ldrd {x0}, {x1}, [{px}], #8\n",
            "cmp {x0}, #0x80008000\n",
            "bne 2b\n",
            "3:",
        )
    };
}

/// One weight row of [`rows4`]'s group: the weight word at `$at`, its two
/// lane pairs, two `SMLAD` into `$acc`.
macro_rules! row4 {
    ($at:literal, $acc:literal) => {
        concat!(
            "ldr {w}, ",
            $at,
            "\n",
            "sxtb16 {we}, {w}\n",
            "sxtb16 {w}, {w}, ror #8\n",
            "smlad ",
            $acc,
            ", {x0}, {we}, ",
            $acc,
            "\n",
            "smlad ",
            $acc,
            ", {x1}, {w}, ",
            $acc,
        )
    };
}

/// The group count of `x` when the fully connected loops may run `rows`
/// weight rows of `row` bytes from `w_len` bytes over it: the words end
/// with the mark pair right after the groups, every row holds every group
/// (four weight bytes each, int8 quad or int4 octet), and the rows lie in
/// the weights. `None` sends the caller to its portable twin.
fn row_bounds<const G: usize>(
    x: WideVector<'_, G>,
    rows: usize,
    row: usize,
    w_len: usize,
) -> Option<usize> {
    let groups = x.groups();
    let marked = matches!(
        x.words().get(G / 2 * groups..),
        Some(&[super::END_OF_GROUPS, _])
    );
    let fits = 4 * groups <= row && rows.checked_mul(row).is_some_and(|n| n <= w_len);
    (marked && fits && row <= 0x7FFF_FFFF).then_some(groups)
}

/// `sums[r] += Σ_j x[j] · w[r·k + j]` over `x`'s complete groups for the
/// rows `r` of `sums`' complete quads (see the portable twin), the bounds
/// checked once for all of them. Per quad one `LDRD` of a group's two
/// lane words serves the four rows, each an `LDR`, two `SXTB16` and two
/// `SMLAD`. The loop takes two groups per pass and tests for the vector's
/// end mark once per pass (22 instructions per 16 MACs), so it keeps no
/// counter; an odd group count enters at the second half. Rows 1 and 2
/// are read at `k` and `2k` from row 0's pointer, row 3 through its own.
#[inline]
pub fn rows4(sums: &mut [i32], x: WideVector<'_>, w: &[i8], k: usize) {
    let words = x.words();
    let Some(groups) = row_bounds(x, sums.len() - sums.len() % 4, k, w.len()) else {
        return cold::rows4(sums, x, w, k);
    };
    for (q, quad) in sums.chunks_exact_mut(4).enumerate() {
        let row0 = w.as_ptr().wrapping_add(4 * q * k);
        let [mut a0, mut a1, mut a2, mut a3] = [quad[0], quad[1], quad[2], quad[3]];
        // SAFETY: the words end with the pair (`END_OF_GROUPS`, _) at word
        // `2·groups` (checked above); no activation lane is −32768, so the
        // mark is nowhere before (were it, the loop would only stop
        // early). The loop reads word pairs `2g, 2g + 1` (`LDRD`,
        // word-aligned): the first pair, then one more after each half.
        // The end test follows the first read and every second half, so a
        // pair is read unchecked only after a first half; a first half
        // runs at a group `g < groups` (the test passed) of the parity of
        // `groups` (both even from the top, both odd after an odd count's
        // entry at the second half, 2 added per pass), so `g + 1 <
        // groups`: every pair read lies in `words`, the last the mark
        // pair. For each visited group `g < groups` it reads weight bytes
        // `(4q + r)·k + 4g .. + 4` for rows `r ≤ 3` (`LDR`, unaligned
        // allowed on Armv7-M), below `(4q + 4)·k ≤ rows·k ≤ w.len()`
        // since `4·groups ≤ k`. Only register operands and flags are
        // written.
        unsafe {
            asm!(
                pass_entry!(),
                row4!("[{p0}, {k}]", "{a1}"),
                row4!("[{p0}, {k}, lsl #1]", "{a2}"),
                row4!("[{p3}], #4", "{a3}"),
                row4!("[{p0}], #4", "{a0}"),
                "ldrd {x0}, {x1}, [{px}], #8",
                "4:",
                row4!("[{p0}, {k}]", "{a1}"),
                row4!("[{p0}, {k}, lsl #1]", "{a2}"),
                row4!("[{p3}], #4", "{a3}"),
                row4!("[{p0}], #4", "{a0}"),
                pass_end!(),
                px = inout(reg) words.as_ptr() => _,
                p0 = inout(reg) row0 => _,
                p3 = inout(reg) row0.wrapping_add(3 * k) => _,
                k = in(reg) k,
                x0 = inout(reg) groups => _,
                x1 = out(reg) _,
                w = out(reg) _,
                we = out(reg) _,
                a0 = inout(reg) a0,
                a1 = inout(reg) a1,
                a2 = inout(reg) a2,
                a3 = inout(reg) a3,
                options(nostack, readonly),
            );
        }
        quad.copy_from_slice(&[a0, a1, a2, a3]);
    }
}

/// Octets [`rows2_i4`] sums per loop run: its sums hold the weights as
/// `4096·w`, so one run adds at most `256 · 8 · 255 · 4096 < 2^31` (256
/// terms of a valid layer: `|x + offset| ≤ 255`, `|w| ≤ 8`) and cannot wrap.
const I4_RUN: usize = 32;

/// `sums[r] += Σ_j x[j] · w[r][j]` over `x`'s complete octets for the rows
/// `r` of `sums`' complete pairs, `w` packed int4 with row `r` from byte
/// `r · row` (see the portable twin), the bounds checked once. A word of
/// eight codes holds codes `j` and `j + 4` at bits `4j` and `16 + 4j`: one
/// `AND` with `0xF000F000` of the word shifted left by `12 − 4j` puts both
/// at the top of their halfwords, lanes `4096·w` that `SMLAD` meets with
/// the lane word `(x_j, x_(j+4))` directly — one instruction per two
/// weights, as `SXTB16` is for int8. Per octet: row 1's word, then row
/// 0's, each one `LDR`, four `AND` and four `SMLAD`, the four lane words
/// read with three `LDRD` (the middle pair serves both rows): 23
/// instructions per 16 MACs (int8's [`rows4`]: 22). Runs of [`I4_RUN`]
/// octets, each shifted down by 12 (exact: the run's sum is a multiple of
/// 4096 that cannot wrap), give the twin's exact sum.
#[inline]
pub fn rows2_i4(sums: &mut [i32], x: WideVector<'_, 8>, w: &[u8], row: usize) {
    let words = x.words();
    let Some(octets) = row_bounds(x, sums.len() - sums.len() % 2, row, w.len()) else {
        return cold::rows2_i4(sums, x, w, row);
    };
    for (q, pair) in sums.chunks_exact_mut(2).enumerate() {
        for first in (0..octets).step_by(I4_RUN) {
            let run = I4_RUN.min(octets - first);
            let px = words.as_ptr().wrapping_add(4 * first);
            let row0 = w.as_ptr().wrapping_add(2 * q * row + 4 * first);
            let (mut a0, mut a1) = (0i32, 0i32);
            // SAFETY: `first < octets` and `run ≥ 1`, so the loop (which
            // tests at its end) visits octets `g = first .. first + run ≤
            // octets`, reading words `4g .. 4g + 4` (`LDRD`, word-aligned)
            // below `4·octets ≤ words.len()` (checked above) and weight
            // bytes `(2q + r)·row + 4g .. + 4` for rows `r ≤ 1` (`LDR`,
            // unaligned allowed on Armv7-M), below `(2q + 2)·row ≤
            // rows·row ≤ w.len()` since `4·octets ≤ row`; `px` steps 16
            // bytes per octet and meets `end` exactly. Only register
            // operands and flags are written.
            unsafe {
                asm!(
                    "2:",
                    "ldrd {xa}, {xb}, [{px}]",
                    "ldr {w}, [{p0}, {row}]",
                    "and {t}, {m}, {w}, lsl #12",
                    "smlad {a1}, {xa}, {t}, {a1}",
                    "and {t}, {m}, {w}, lsl #8",
                    "smlad {a1}, {xb}, {t}, {a1}",
                    "ldrd {xa}, {xb}, [{px}, #8]",
                    "and {t}, {m}, {w}, lsl #4",
                    "smlad {a1}, {xa}, {t}, {a1}",
                    "and {t}, {m}, {w}",
                    "smlad {a1}, {xb}, {t}, {a1}",
                    "ldr {w}, [{p0}], #4",
                    "and {t}, {m}, {w}, lsl #4",
                    "smlad {a0}, {xa}, {t}, {a0}",
                    "and {t}, {m}, {w}",
                    "smlad {a0}, {xb}, {t}, {a0}",
                    "ldrd {xa}, {xb}, [{px}], #16",
                    "and {t}, {m}, {w}, lsl #12",
                    "smlad {a0}, {xa}, {t}, {a0}",
                    "and {t}, {m}, {w}, lsl #8",
                    "smlad {a0}, {xb}, {t}, {a0}",
                    "cmp {px}, {end}",
                    "bne 2b",
                    px = inout(reg) px => _,
                    end = in(reg) px.wrapping_add(4 * run),
                    p0 = inout(reg) row0 => _,
                    row = in(reg) row,
                    m = in(reg) 0xF000_F000u32,
                    xa = out(reg) _,
                    xb = out(reg) _,
                    w = out(reg) _,
                    t = out(reg) _,
                    a0 = inout(reg) a0,
                    a1 = inout(reg) a1,
                    options(nostack, readonly),
                );
            }
            pair[0] = pair[0].wrapping_add(a0 >> 12);
            pair[1] = pair[1].wrapping_add(a1 >> 12);
        }
    }
}

/// `x >> 1` clamped to the int8 range: one `SSAT` with its shift.
#[inline(always)]
pub fn sat8_half(x: i32) -> i8 {
    let r: i32;
    // SAFETY: one register-to-register instruction (it may set the Q
    // flag, which nothing reads): no memory, no stack.
    unsafe {
        asm!("ssat {r}, #8, {x}, asr #1", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack));
    }
    r as i8
}

/// Every byte of `x` (an int8 code) clamped into `[lo, hi]` (bounds in
/// every byte): `SSUB8` sets each lane's GE flag where `x ≥ lo` and `SEL`
/// keeps `x` there (else `lo`), then the same against `hi` — a lane-wise
/// max and min (`lo ≤ hi`).
#[inline(always)]
pub fn clamp4(x: u32, lo4: u32, hi4: u32) -> u32 {
    let r: u32;
    // SAFETY: register-only instructions (the GE flags they set and read
    // stay inside this block): no memory or stack touched.
    unsafe {
        asm!(
            "ssub8 {t}, {x}, {lo}",
            "sel {r}, {x}, {lo}",
            "ssub8 {t}, {hi}, {r}",
            "sel {r}, {r}, {hi}",
            t = out(reg) _,
            r = out(reg) r,
            x = in(reg) x,
            lo = in(reg) lo4,
            hi = in(reg) hi4,
            options(pure, nomem, nostack),
        );
    }
    r
}

/// Clamps every byte (an int8 code) into `[lo, hi]`; returns how many
/// changed. Four bytes per step ([`clamp4`]): `SSUB8` sets each lane's GE flag where
/// `x ≥ lo` and `SEL` keeps `x` there (else `lo`), then the same against
/// `hi` — a lane-wise max and min; only a word that changed is stored and
/// its lanes counted. The last `len % 4` bytes go one by one. (`lo ≤ hi`
/// gives the same result as the portable max-then-min in every lane.)
#[inline]
pub fn clamp_count(bytes: &mut [u8], lo: i8, hi: i8) -> u32 {
    let lo4 = u32::from_ne_bytes([lo as u8; 4]);
    let hi4 = u32::from_ne_bytes([hi as u8; 4]);
    let mut count = 0u32;
    let mut words = bytes.chunks_exact_mut(4);
    for w in &mut words {
        let x = match *w {
            [a, b, c, d] => u32::from_le_bytes([a, b, c, d]),
            _ => continue,
        };
        let r = clamp4(x, lo4, hi4);
        if r != x {
            let (new, old) = (r.to_le_bytes(), x.to_le_bytes());
            let changed = new.iter().zip(&old).filter(|(n, o)| n != o).count();
            count = count.saturating_add(changed as u32);
            w.copy_from_slice(&new);
        }
    }
    count.saturating_add(super::portable::clamp_count(words.into_remainder(), lo, hi))
}

/// `acc[4c..4c + 4] = dot_quad(x, w[c·k..(c + 1)·k])` for every channel
/// `c < acc.len() / 4`, `k = x.k()`: a convolution's output channels
/// against four output pixels in a single `asm!` loop nest. Per group of
/// four elements: two `LDM`s (the four pixels' lane words), one weight
/// `LDR`, two `SXTB16`, eight `SMLAD` and the loop test against the end
/// of the window — 16 instructions per 16 MACs. The loop invariants live
/// in a 20-byte stack frame inside the block.
pub fn dot_quad_channels(x: QuadWindow<'_>, w: &[i8], acc: &mut [i32]) {
    let k = x.k();
    let main = k - k % 4;
    let groups = main / 4;
    let channels = acc.len() / 4;
    let fits = x.words.len() >= 2 * main && w.len() >= channels * k;
    if groups == 0 || channels == 0 || !fits {
        for (c, quad) in acc.chunks_exact_mut(4).enumerate() {
            quad.copy_from_slice(&cold::dot_quad(x, w.get(c * k..(c + 1) * k).unwrap_or(&[])));
        }
        return;
    }
    let words = x.words.as_ptr();
    // SAFETY: `groups ≥ 1`, `channels ≥ 1`. Channel `c` reads words
    // `0..8·groups = 0..2·main` of `x.words` (two `LDM`s per group,
    // word-aligned, in bounds by `fits`; the loop ends when the pointer
    // reaches `words + 2·main`, a multiple of 8 words past the start) and
    // weight bytes `c·k..c·k + main` (`LDR`; unaligned allowed on
    // Armv7-M), below `channels · k ≤ w.len()`; the pointer then skips the
    // `k − main` tail bytes to channel `c + 1`. It writes `acc[4c..4c + 4]`
    // (four `STR`s, `acc` is 4-byte aligned), inside `acc` as `4·channels
    // ≤ acc.len()`. The 20-byte frame below `sp` is released before the end.
    unsafe {
        asm!(
            "sub sp, sp, #20",
            "str {px}, [sp]",
            "add {a0}, {px}, {a0}, lsl #2",
            "str {a0}, [sp, #4]",
            "str {a1}, [sp, #8]",
            "str {a2}, [sp, #12]",
            "str {a3}, [sp, #16]",
            "3:",
            "ldr {px}, [sp]",
            "movs {a0}, #0",
            "movs {a1}, #0",
            "movs {a2}, #0",
            "movs {a3}, #0",
            "2:",
            "ldm {px}!, {{r2, r3, r4, r5}}",
            "ldr {wv}, [{pw}], #4",
            "sxtb16 {we}, {wv}",
            "sxtb16 {wv}, {wv}, ror #8",
            "smlad {a0}, r2, {we}, {a0}",
            "smlad {a0}, r3, {wv}, {a0}",
            "smlad {a1}, r4, {we}, {a1}",
            "smlad {a1}, r5, {wv}, {a1}",
            "ldm {px}!, {{r2, r3, r4, r5}}",
            "smlad {a2}, r2, {we}, {a2}",
            "smlad {a2}, r3, {wv}, {a2}",
            "smlad {a3}, r4, {we}, {a3}",
            "smlad {a3}, r5, {wv}, {a3}",
            "ldr r2, [sp, #4]",
            "cmp {px}, r2",
            "bne 2b",
            "ldr r2, [sp, #8]",
            "add {pw}, {pw}, r2",
            "ldr r2, [sp, #16]",
            "str {a0}, [r2], #4",
            "str {a1}, [r2], #4",
            "str {a2}, [r2], #4",
            "str {a3}, [r2], #4",
            "str r2, [sp, #16]",
            "ldr r2, [sp, #12]",
            "subs r2, r2, #1",
            "str r2, [sp, #12]",
            "bne 3b",
            "add sp, sp, #20",
            px = inout(reg) words => _,
            a0 = inout(reg) 2 * main => _,
            a1 = inout(reg) k - main => _,
            a2 = inout(reg) channels => _,
            a3 = inout(reg) acc.as_mut_ptr() => _,
            pw = inout(reg) w.as_ptr() => _,
            wv = out(reg) _,
            we = out(reg) _,
            out("r2") _,
            out("r3") _,
            out("r4") _,
            out("r5") _,
        );
    }
    let tail = x.words.get(2 * main..2 * k).unwrap_or(&[]);
    if !tail.is_empty() {
        let lo = |v: u32| v as u16 as i16 as i32;
        let hi = |v: u32| (v >> 16) as u16 as i16 as i32;
        for (quad, w) in acc.chunks_exact_mut(4).zip(w.chunks_exact(k)) {
            for (v, &w) in tail.chunks_exact(2).zip(&w[main..]) {
                let w = w as i32;
                quad[0] = quad[0].wrapping_add(lo(v[0]) * w);
                quad[1] = quad[1].wrapping_add(hi(v[0]) * w);
                quad[2] = quad[2].wrapping_add(lo(v[1]) * w);
                quad[3] = quad[3].wrapping_add(hi(v[1]) * w);
            }
        }
    }
}

/// The portable code for the cases the DSP loops do not take (lengths a
/// caller did not guarantee): rare, so kept out of
/// line and cold — one small copy each rather than unrolled inline ones.
mod cold {
    use super::super::{portable, QuadWindow, TapOffsets, WideVector};

    #[cold]
    #[inline(never)]
    pub fn rows4(sums: &mut [i32], x: WideVector<'_>, w: &[i8], k: usize) {
        portable::rows4(sums, x, w, k)
    }

    #[cold]
    #[inline(never)]
    pub fn rows2_i4(sums: &mut [i32], x: WideVector<'_, 8>, w: &[u8], row: usize) {
        portable::rows2_i4(sums, x, w, row)
    }

    #[cold]
    #[inline(never)]
    pub fn dot_quad(x: QuadWindow<'_>, w: &[i8]) -> [i32; 4] {
        portable::dot_quad(x, w)
    }

    #[cold]
    #[inline(never)]
    pub fn window3x3(acc: [i32; 4], x: &[i8], row: usize, wide: &[u32]) -> [i32; 4] {
        portable::window3x3(acc, x, row, wide)
    }

    #[cold]
    #[inline(never)]
    pub fn taps4(acc: [i32; 4], x: &[i8], at: TapOffsets<'_>, table: &[i8]) -> [i32; 4] {
        portable::taps4(acc, x, at, table)
    }
}
