//! Z-bit block arithmetic on LSB-first packed `u32` words.
//!
//! A QC-LDPC parity check is a sum of circulant permutations of Z-bit
//! blocks, and a circulant permutation of a block is one rotation. Holding a
//! block (Z ≤ 81 here) in a `u128` turns every circulant into a handful of
//! word shifts instead of Z single-bit moves; this file is the only place
//! that knows how blocks sit in packed words.

/// A codeword as its 24 Z-bit blocks (802.11n codes have 24 block columns).
pub(crate) type Blocks = [u128; BLOCK_COLUMNS];

/// Block columns of every 802.11n base matrix.
pub(crate) const BLOCK_COLUMNS: usize = 24;

/// The low `z` bits set (`z < 128`).
const fn mask(z: usize) -> u128 {
    (1u128 << z) - 1
}

/// Reads the `z` bits (`z ≤ 96`) that start at bit `start` of `words`
/// (LSB-first), bit `start + r` becoming bit `r` of the result. Bits past the
/// end of `words` read as zero, so no input can make this panic.
pub(crate) fn read_block(words: &[u32], start: usize, z: usize) -> u128 {
    let first = start / 32;
    // `start % 32 + z ≤ 31 + 96 < 128`: four words always cover the block.
    let mut window = 0u128;
    for i in 0..4 {
        let word = words.get(first + i).copied().unwrap_or(0);
        window |= u128::from(word) << (32 * i);
    }
    (window >> (start % 32)) & mask(z)
}

/// Writes the low `z` bits (`z ≤ 96`) of `block` at bit `start` of `words`,
/// leaving every other bit unchanged. Bits that would land past the end of
/// `words` are dropped.
pub(crate) fn write_block(words: &mut [u32], start: usize, z: usize, block: u128) {
    let first = start / 32;
    let shift = start % 32;
    let field = mask(z) << shift;
    let value = (block & mask(z)) << shift;
    for i in 0..4 {
        let word_mask = (field >> (32 * i)) as u32;
        if word_mask == 0 {
            continue;
        }
        if let Some(word) = words.get_mut(first + i) {
            *word = (*word & !word_mask) | ((value >> (32 * i)) as u32 & word_mask);
        }
    }
}

/// Multiplies the Z-bit block `x` by the circulant `P_s` (the identity with
/// columns shifted right by `s < z`): bit `r` of the result is bit
/// `(r + s) mod z` of `x`, a right rotation within `z` bits. `x` must have no
/// bits set at or above `z`.
pub(crate) fn circulant(x: u128, s: usize, z: usize) -> u128 {
    if s == 0 {
        x
    } else {
        ((x >> s) | (x << (z - s))) & mask(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bit(words: &[u32], i: usize) -> bool {
        (words[i / 32] >> (i % 32)) & 1 == 1
    }

    proptest! {
        /// `read_block` returns exactly the bits the documented layout puts
        /// at `start ..`, one at a time.
        #[test]
        fn read_matches_bitwise_layout(
            words in proptest::array::uniform8(any::<u32>()),
            start in 0usize..160,
            z in 1usize..=96,
        ) {
            let block = read_block(&words, start, z);
            for r in 0..z {
                let expected = start + r < 256 && bit(&words, start + r);
                prop_assert_eq!((block >> r) & 1 == 1, expected, "bit {}", r);
            }
            prop_assert_eq!(block >> z, 0);
        }

        /// `write_block` changes exactly the `z` bits at `start ..` (those that
        /// fit) and `read_block` reads them back.
        #[test]
        fn write_then_read_round_trips(
            words in proptest::array::uniform8(any::<u32>()),
            block in any::<u128>(),
            start in 0usize..256,
            z in 1usize..=96,
        ) {
            let mut out = words;
            write_block(&mut out, start, z, block);
            for i in 0..256 {
                let inside = i >= start && i < start + z;
                let expected = if inside { (block >> (i - start)) & 1 == 1 } else { bit(&words, i) };
                prop_assert_eq!(bit(&out, i), expected, "bit {}", i);
            }
        }

        /// `circulant` is the permutation matrix `P_s` applied bit by bit.
        #[test]
        fn circulant_is_the_shifted_identity(x in any::<u128>(), z in 2usize..=96, s in 0usize..96) {
            let s = s % z;
            let x = x & mask(z);
            let y = circulant(x, s, z);
            for r in 0..z {
                prop_assert_eq!((y >> r) & 1, (x >> ((r + s) % z)) & 1);
            }
            prop_assert_eq!(y >> z, 0);
        }
    }
}
