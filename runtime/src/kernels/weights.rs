//! How the Conv/FC kernels read their weights: one small trait, one
//! implementation per storage format — int8 slices and packed int4
//! ([`PackedI4`]) — so each kernel is monomorphized per format (no dynamic
//! dispatch). The int8 instantiation hands its slices to the
//! multiply-accumulate blocks of [`super::mac`] (`SMLAD` on Cortex-M4); the
//! int4 one unpacks nibbles itself and takes the trait's blocked defaults.
//!
//! Accumulation wraps in i32 (see [`super::fully_connected`]).

use super::mac;
use crate::int4::{high, low, spread4, PackedI4};

/// Read access to a Conv/FC weight tensor in one storage format.
///
/// Kernels check every index range against [`Weights::elements`] before
/// the loops (see each kernel's proof sketch), so the int8 slices index
/// exactly as the kernels always did; the int4 view reads weights past its
/// end as 0 rather than indexing.
pub trait Weights: Copy {
    /// Number of weights (elements, not bytes).
    fn elements(&self) -> usize;

    /// `Σ_i (x[i] + offset) · w[start + i]` over `i < x.len()`: the
    /// innermost loop of FC and of dense and grouped convolution.
    fn dot(&self, x: &[i8], start: usize, offset: i32) -> i32;

    /// The weights as int8 codes, when that is how they are stored: the
    /// kernels' widened-activation paths read them directly.
    fn int8(&self) -> Option<&[i8]> {
        None
    }

    /// The packed bytes, when the weights are int4 ([`PackedI4`]): the
    /// fully connected kernel's nibble path reads them directly.
    fn int4_bytes(&self) -> Option<&[u8]> {
        None
    }

    /// Weights `start..start + n` one by one: a depthwise kernel row, whose
    /// input taps are not contiguous.
    fn taps(&self, start: usize, n: usize) -> impl Iterator<Item = i32>;

    /// Weights `start..start + dst.len()` as int8 codes into `dst` (0 past
    /// the end, as [`Weights::taps`] reads them): a block of int4 weights
    /// unpacked once for the int8 multiply-accumulate paths.
    fn unpack(&self, start: usize, dst: &mut [i8]);
}

/// `(x + offset) · w`, wrapping.
#[inline(always)]
fn term(x: i8, offset: i32, w: i32) -> i32 {
    (x as i32).wrapping_add(offset).wrapping_mul(w)
}

/// int8 weights, one per byte (`DTYPE_I8`).
impl Weights for &[i8] {
    #[inline(always)]
    fn elements(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn dot(&self, x: &[i8], start: usize, offset: i32) -> i32 {
        mac::dot(x, &self[start..start + x.len()], offset)
    }

    #[inline(always)]
    fn int8(&self) -> Option<&[i8]> {
        Some(self)
    }

    #[inline(always)]
    fn taps(&self, start: usize, n: usize) -> impl Iterator<Item = i32> {
        self[start..start + n].iter().map(|&w| w as i32)
    }

    fn unpack(&self, start: usize, dst: &mut [i8]) {
        let src = self.get(start..).unwrap_or(&[]);
        let n = src.len().min(dst.len());
        let (copied, rest) = dst.split_at_mut(n);
        copied.copy_from_slice(&src[..n]);
        rest.fill(0);
    }
}

/// Packed int4 weights, two per byte, low nibble first (`DTYPE_I4`).
impl Weights for PackedI4<'_> {
    #[inline(always)]
    fn elements(&self) -> usize {
        self.len()
    }

    #[inline(always)]
    fn int4_bytes(&self) -> Option<&[u8]> {
        Some(self.bytes())
    }

    /// Aligns to a byte boundary (one high nibble when `start` is odd),
    /// then takes two weights per byte, and a last low nibble when an odd
    /// number of terms remains. Out of line: the int4 hot paths unpack
    /// instead, so this serves the general loops and the tails.
    #[inline(never)]
    fn dot(&self, x: &[i8], start: usize, offset: i32) -> i32 {
        let (mut acc, x, first_byte) = match x.split_first() {
            Some((&x0, rest)) if start % 2 == 1 => {
                (term(x0, offset, self.get(start)), rest, start / 2 + 1)
            }
            _ => (0, x, start / 2),
        };
        let bytes = self.bytes().get(first_byte..).unwrap_or(&[]);
        let pairs = x.chunks_exact(2);
        let last = pairs.remainder().first();
        for (pair, &b) in pairs.zip(bytes) {
            if let [x0, x1] = *pair {
                acc = acc
                    .wrapping_add(term(x0, offset, low(b)))
                    .wrapping_add(term(x1, offset, high(b)));
            }
        }
        if let Some(&x_last) = last {
            let w = bytes.get(x.len() / 2).map_or(0, |&b| low(b));
            acc = acc.wrapping_add(term(x_last, offset, w));
        }
        acc
    }

    #[inline]
    fn taps(&self, start: usize, n: usize) -> impl Iterator<Item = i32> {
        (0..n).map(move |k| self.get(start.saturating_add(k)))
    }

    /// A high nibble first when `start` is odd, then eight codes per word
    /// ([`spread4`], about one instruction per code on a Cortex-M4), two
    /// per byte for the rest, and a last low nibble when an odd number
    /// remains.
    fn unpack(&self, start: usize, dst: &mut [i8]) {
        let n = self.len().saturating_sub(start).min(dst.len());
        let (dst, past_end) = dst.split_at_mut(n);
        past_end.fill(0);
        let (dst, first_byte) = match dst.split_first_mut() {
            Some((d0, rest)) if start % 2 == 1 => {
                *d0 = self.get(start) as i8;
                (rest, start / 2 + 1)
            }
            _ => (dst, start / 2),
        };
        let bytes = self.bytes().get(first_byte..).unwrap_or(&[]);
        let words = (dst.len() / 8).min(bytes.len() / 4);
        let (by_word, dst) = dst.split_at_mut(8 * words);
        let (word_bytes, bytes) = bytes.split_at(4 * words);
        for (out, b) in by_word.chunks_exact_mut(8).zip(word_bytes.chunks_exact(4)) {
            let w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let codes = (spread4(w) as u64 | (spread4(w >> 16) as u64) << 32).to_le_bytes();
            for (o, c) in out.iter_mut().zip(codes) {
                *o = c as i8;
            }
        }
        let last = bytes.get(dst.len() / 2).map_or(0, |&b| low(b) as i8);
        let mut pairs = dst.chunks_exact_mut(2);
        for (pair, &b) in (&mut pairs).zip(bytes) {
            pair[0] = low(b) as i8;
            pair[1] = high(b) as i8;
        }
        if let Some(d) = pairs.into_remainder().first_mut() {
            *d = last;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::int4::pack;
    use proptest::prelude::*;
    use std::vec::Vec;

    #[test]
    fn hand_computed_int4_dots() {
        // w = [1, −1, 7, −8, −7] → bytes [0xF1, 0x87, 0x09]; x + 2 = [3, 4, 5, 6, 7].
        let bytes: Vec<u8> = pack(&[1, -1, 7, -8, -7]).collect();
        let w = PackedI4::new(&bytes, 5).unwrap();
        let x = [1i8, 2, 3, 4, 5];
        // All five: 3 − 4 + 35 − 48 − 49 = −63.
        assert_eq!(w.dot(&x, 0, 2), -63);
        // Odd start (element 1), odd length 3: 3·(−1) + 4·7 + 5·(−8) = −15.
        assert_eq!(w.dot(&x[..3], 1, 2), -15);
        // Odd start, even length 4: −15 + 6·(−7) = −57.
        assert_eq!(w.dot(&x[..4], 1, 2), -57);
        // Even start, odd length: elements 2..5 = [7, −8, −7] · [3, 4, 5] = 21 − 32 − 35.
        assert_eq!(w.dot(&x[..3], 2, 2), -46);
        // One term at the last (even, lone) element; empty sums are 0.
        assert_eq!(w.dot(&x[..1], 4, 2), -21);
        assert_eq!(w.dot(&[], 3, 2), 0);
        // One by one, from an odd start.
        assert!(w.taps(1, 3).eq([-1, 7, -8]));
        assert!(w.taps(3, 2).eq([-8, -7]));
    }

    #[test]
    fn int4_reads_past_the_end_count_as_zero() {
        let bytes: Vec<u8> = pack(&[3, 3, 3]).collect();
        let w4 = PackedI4::new(&bytes, 3).unwrap();
        for start in [2, 3, 4, usize::MAX - 1, usize::MAX] {
            let sum = w4.dot(&[1, 1, 1], start, 0);
            assert!(sum <= 3, "start {start}: {sum}");
            assert!(w4.taps(start, 2).all(|w| w == 0 || w == 3));
        }
    }

    proptest! {
        /// Packed int4 gives exactly the int8 sums of the same codes, for
        /// every start parity and length (the never-written −8 included).
        #[test]
        fn int4_dots_equal_int8_dots(
            codes in prop::collection::vec(-8i8..=7, 0..40),
            x in prop::collection::vec(any::<i8>(), 0..40),
            start in 0usize..40,
            offset in -128i32..=128,
        ) {
            let bytes: Vec<u8> = pack(&codes).collect();
            let w4 = PackedI4::new(&bytes, codes.len()).unwrap();
            let w8: &[i8] = &codes;
            let start = start.min(codes.len());
            let n = x.len().min(codes.len() - start);
            prop_assert_eq!(w4.dot(&x[..n], start, offset), w8.dot(&x[..n], start, offset));
            prop_assert!(w4.taps(start, n).eq(w8.taps(start, n)));
        }

        /// Unpacking gives the codes themselves, from either nibble, and
        /// zeros for a block that runs past the end.
        #[test]
        fn int4_unpacks_to_its_codes(
            codes in prop::collection::vec(-8i8..=7, 0..40),
            start in 0usize..44,
            n in 0usize..44,
        ) {
            let bytes: Vec<u8> = pack(&codes).collect();
            let w4 = PackedI4::new(&bytes, codes.len()).unwrap();
            let want: Vec<i8> = (start..start + n).map(|i| codes.get(i).copied().unwrap_or(0)).collect();
            let mut got = std::vec![99i8; n];
            w4.unpack(start, &mut got);
            prop_assert_eq!(&got, &want);
            let mut got = std::vec![99i8; n];
            codes.as_slice().unpack(start, &mut got);
            prop_assert_eq!(got, want);
        }
    }
}
