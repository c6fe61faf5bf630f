//! Integer layered normalized min-sum decoding from hard decisions.
//!
//! Memory gives no soft information, so every bit enters with the same
//! confidence, `±CHANNEL_LLR`. Checks are processed one block row (layer) at
//! a time and each layer's output updates the bit beliefs immediately, which
//! converges in about half the iterations of flooding schedules. Check
//! messages are the min-sum approximation scaled by 3/4 (two shifts and an
//! add), saturated to `i8` magnitudes; all arithmetic is integer and
//! saturating, so host and board decode bit for bit alike.

use super::bits::{Blocks, BLOCK_COLUMNS};
use super::code::check_len;
use super::{Code, LdpcError};

/// Iterations after which [`decode`] gives up when the caller has no better
/// figure. Measured on the binary symmetric channel: 50 iterations lower the
/// frame-error rate by at most ~15 % relative to 20 (n = 1944, rate 5/6, BER
/// 10⁻²: 2.6 % → 2.3 %), while 10 lose up to 5× more frames at rate 1/2; 20
/// bounds the worst case at 20 passes over the edges.
pub const DEFAULT_MAX_ITERATIONS: u32 = 20;

/// Magnitude of the channel LLR given to every bit (hard decision: bit 0 ↦
/// `+CHANNEL_LLR`, bit 1 ↦ `−CHANNEL_LLR`). Min-sum is scale-invariant, so
/// only resolution against saturation matters: 16 keeps the 3/4 scaling
/// exact at the first iteration and leaves ~8 channel units before check
/// messages saturate at 127. Measured: 16 and 32 decode alike; 4 or 8 lose
/// resolution (up to 3× the frame errors at rate 1/2), 64 saturates too
/// early (10× at n = 1944, rate 1/2, BER 5 %).
const CHANNEL_LLR: i16 = 16;

/// Largest check-to-bit message magnitude (fits the `u8` storage).
const MAX_CHECK_MAGNITUDE: u16 = 127;

/// Largest check degree over all 802.11n codes (rate 5/6: 22); the sign
/// bits of a check fit one `u32`.
const MAX_CHECK_DEGREE: usize = BLOCK_COLUMNS;

/// One parity check's outgoing messages in compressed min-sum form: every
/// edge gets `min1`, except the edge at `min1_at` which gets `min2`, with
/// the sign in bit `e` of `signs`. 8 bytes per check whatever its degree,
/// instead of one byte per edge; signs are stored already multiplied by the
/// parity of the check so reading a message needs no popcount (Cortex-M4
/// has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CheckState {
    /// Normalized smallest input magnitude.
    min1: u8,
    /// Normalized second smallest input magnitude.
    min2: u8,
    /// Edge position (within the check's row) of the smallest input.
    min1_at: u8,
    /// Bit `e` set when the message on edge `e` is negative.
    signs: u32,
}

impl CheckState {
    /// No message yet: every edge receives 0.
    const ZERO: CheckState = CheckState {
        min1: 0,
        min2: 0,
        min1_at: 0,
        signs: 0,
    };

    /// The message this check sends on edge `e`.
    fn message(&self, e: usize) -> i16 {
        let magnitude = i16::from(if e == usize::from(self.min1_at) {
            self.min2
        } else {
            self.min1
        });
        if (self.signs >> e) & 1 == 1 {
            -magnitude
        } else {
            magnitude
        }
    }
}

/// All working memory of [`decode`], supplied by the caller (no allocator):
/// `N` bit beliefs (`i16`) and `M` check states (8 bytes each).
///
/// The defaults fit every 802.11n code (n ≤ 1944, n − k ≤ 972): 11 664
/// bytes. A firmware that uses one code sizes it exactly, e.g.
/// `DecoderScratch::<1944, 324>` for n = 1944 at rate 5/6 (6 480 bytes).
/// Reusable across calls; `decode` re-initializes what it uses.
#[derive(Debug, Clone)]
pub struct DecoderScratch<const N: usize = 1944, const M: usize = 972> {
    beliefs: [i16; N],
    checks: [CheckState; M],
}

impl<const N: usize, const M: usize> DecoderScratch<N, M> {
    /// Zeroed scratch; `const` so it can live in a `static`.
    pub const fn new() -> Self {
        DecoderScratch {
            beliefs: [0; N],
            checks: [CheckState::ZERO; M],
        }
    }
}

impl<const N: usize, const M: usize> Default for DecoderScratch<N, M> {
    fn default() -> Self {
        Self::new()
    }
}

/// The 3/4 normalization of min-sum, saturated to the stored range.
fn normalize(magnitude: u16) -> u8 {
    let scaled = (u32::from(magnitude) * 3) >> 2;
    scaled.min(u32::from(MAX_CHECK_MAGNITUDE)) as u8
}

/// Repairs `codeword` (packed, [`Code::words`] long) in place and returns
/// how many bits it changed.
///
/// A codeword that already satisfies every check returns `Ok(0)` after the
/// syndrome check alone, without touching `scratch`. Otherwise it runs up to
/// `max_iterations` layered min-sum iterations, checking the syndrome of the
/// hard decisions after each, and stops at the first valid codeword.
///
/// An `Ok` codeword always satisfies every parity check, but with many flips
/// it may be a *different* codeword than the one stored (a miscorrection);
/// only an integrity tag can tell. `Err(Uncorrectable)` leaves `codeword`
/// unchanged, as do the length and scratch errors. Padding bits above `n`
/// are never changed.
///
/// Cost per iteration: two passes over the code's edges (3.3–3.7 per bit:
/// 6 966 for n = 1944, rate 1/2) of a few integer operations each, plus one
/// syndrome check; about 40 µs for n = 1944 and 13 µs for n = 648 on an
/// x86-64 host core.
pub fn decode<const N: usize, const M: usize>(
    code: &Code,
    codeword: &mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    max_iterations: u32,
) -> Result<usize, LdpcError> {
    check_len(codeword, code.words())?;
    if N < code.n() || M < code.m() {
        return Err(LdpcError::ScratchTooSmall {
            bits: code.n(),
            checks: code.m(),
        });
    }
    let received = code.load(codeword);
    if code.blocks_ok(&received) {
        return Ok(0);
    }
    let z = code.z();
    for (j, &block) in received.iter().enumerate() {
        for (r, belief) in scratch.beliefs[j * z..(j + 1) * z].iter_mut().enumerate() {
            *belief = if (block >> r) & 1 == 1 {
                -CHANNEL_LLR
            } else {
                CHANNEL_LLR
            };
        }
    }
    scratch.checks[..code.m()].fill(CheckState::ZERO);

    for _ in 0..max_iterations {
        for (layer, row) in code.base_matrix().iter().enumerate() {
            update_layer(
                row,
                z,
                &mut scratch.beliefs,
                &mut scratch.checks[layer * z..],
            );
        }
        let decided = hard_decisions(&scratch.beliefs, z);
        if code.blocks_ok(&decided) {
            let changed = decided
                .iter()
                .zip(&received)
                .map(|(a, b)| (a ^ b).count_ones() as usize)
                .sum();
            code.store(&decided, codeword);
            return Ok(changed);
        }
    }
    Err(LdpcError::Uncorrectable)
}

/// One layer: the Z checks of one base-matrix row, each reading its bits'
/// beliefs minus its own previous message, and writing back the beliefs plus
/// its new message. `checks` starts at the layer's first check.
fn update_layer(
    row: &[i8; BLOCK_COLUMNS],
    z: usize,
    beliefs: &mut [i16],
    checks: &mut [CheckState],
) {
    // The layer's edges: (first bit of the block column, circulant shift).
    let mut edges = [(0usize, 0usize); MAX_CHECK_DEGREE];
    let mut degree = 0;
    for (j, &shift) in row.iter().enumerate() {
        if shift >= 0 {
            edges[degree] = (j * z, shift as usize);
            degree += 1;
        }
    }
    let edges = &edges[..degree];

    for (r, state) in checks.iter_mut().take(z).enumerate() {
        let mut bit = [0u16; MAX_CHECK_DEGREE];
        let mut input = [0i16; MAX_CHECK_DEGREE];
        let (mut min1, mut min2, mut min1_at) = (u16::MAX, u16::MAX, 0);
        let (mut negative, mut odd) = (0u32, 0u32);
        for (e, &(base, shift)) in edges.iter().enumerate() {
            let offset = r + shift;
            let v = base + if offset >= z { offset - z } else { offset };
            let t = beliefs[v].saturating_sub(state.message(e));
            if t < 0 {
                negative |= 1 << e;
                odd ^= 1;
            }
            let magnitude = t.unsigned_abs();
            if magnitude < min1 {
                min2 = min1;
                min1 = magnitude;
                min1_at = e;
            } else if magnitude < min2 {
                min2 = magnitude;
            }
            bit[e] = v as u16;
            input[e] = t;
        }
        // Each edge's sign is the product of the *other* inputs' signs.
        let all_edges = (1u32 << degree) - 1;
        *state = CheckState {
            min1: normalize(min1),
            min2: normalize(min2),
            min1_at: min1_at as u8,
            signs: if odd == 1 {
                !negative & all_edges
            } else {
                negative
            },
        };
        for e in 0..degree {
            let v = usize::from(bit[e]);
            beliefs[v] = input[e].saturating_add(state.message(e));
        }
    }
}

/// Packs the signs of the beliefs into blocks (negative ↦ bit 1).
fn hard_decisions(beliefs: &[i16], z: usize) -> Blocks {
    let mut blocks = [0u128; BLOCK_COLUMNS];
    for (block, chunk) in blocks.iter_mut().zip(beliefs.chunks_exact(z)) {
        for (r, &belief) in chunk.iter().enumerate() {
            *block |= u128::from(belief < 0) << r;
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::ldpc::fer::SplitMix64;
    use crate::ldpc::{Length, Rate, MAX_CODEWORD_WORDS};
    use proptest::prelude::*;
    use std::boxed::Box;

    fn flip(codeword: &mut [u32], i: usize) {
        codeword[i / 32] ^= 1 << (i % 32);
    }

    fn random_codeword(code: &Code, rng: &mut SplitMix64) -> [u32; MAX_CODEWORD_WORDS] {
        let mut words = [0u32; MAX_CODEWORD_WORDS];
        for w in &mut words[..code.words()] {
            *w = rng.next_u32();
        }
        code.encode_in_place(&mut words[..code.words()]).unwrap();
        words
    }

    #[test]
    fn valid_codeword_is_returned_untouched() {
        let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
        let mut rng = SplitMix64::new(1);
        for code in Code::ALL {
            let mut c = random_codeword(&code, &mut rng);
            let before = c;
            assert_eq!(
                decode(&code, &mut c[..code.words()], &mut scratch, 0),
                Ok(0)
            );
            assert_eq!(c, before);
        }
    }

    #[test]
    fn typed_errors_for_lengths_and_scratch() {
        let code = Code::new(Length::N1944, Rate::R1_2);
        let mut small = Box::new(DecoderScratch::<648, 324>::new());
        let mut c = [0u32; MAX_CODEWORD_WORDS + 1];
        assert_eq!(
            decode(&code, &mut c[..code.words()], &mut small, 5),
            Err(LdpcError::ScratchTooSmall {
                bits: 1944,
                checks: 972
            })
        );
        let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
        for len in (0..=MAX_CODEWORD_WORDS + 1).filter(|&l| l != code.words()) {
            assert_eq!(
                decode(&code, &mut c[..len], &mut scratch, 5),
                Err(LdpcError::BadLength {
                    expected: code.words(),
                    got: len
                })
            );
        }
        // A small code fits a small scratch.
        let small_code = Code::new(Length::N648, Rate::R1_2);
        assert_eq!(
            decode(&small_code, &mut c[..small_code.words()], &mut small, 5),
            Ok(0)
        );
    }

    #[test]
    fn uncorrectable_leaves_the_codeword_unchanged() {
        let code = Code::new(Length::N648, Rate::R5_6);
        let mut scratch = Box::new(DecoderScratch::<648, 108>::new());
        let mut rng = SplitMix64::new(7);
        let mut seen_error = false;
        for _ in 0..50 {
            let mut c = random_codeword(&code, &mut rng);
            for _ in 0..60 {
                flip(&mut c, rng.below(code.n()));
            }
            let before = c;
            match decode(&code, &mut c[..code.words()], &mut scratch, 10) {
                Err(e) => {
                    assert_eq!(e, LdpcError::Uncorrectable);
                    assert_eq!(c, before);
                    seen_error = true;
                }
                Ok(_) => assert!(code.syndrome_ok(&c[..code.words()])),
            }
        }
        assert!(
            seen_error,
            "60 flips in 648 bits at rate 5/6 must defeat the code"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// 1–3 random flips are repaired exactly at rates 1/2 and 5/6, every
        /// length, and the count of changed bits is the number of flips.
        #[test]
        fn corrects_a_few_flips(
            seed in any::<u64>(),
            flips in 1usize..=3,
            length in 0usize..3,
            rate in prop_oneof![Just(Rate::R1_2), Just(Rate::R5_6)],
        ) {
            let code = Code::new(Length::ALL[length], rate);
            let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
            let mut rng = SplitMix64::new(seed);
            let original = random_codeword(&code, &mut rng);
            let mut c = original;
            let mut positions = [usize::MAX; 3];
            for k in 0..flips {
                let mut i = rng.below(code.n());
                while positions.contains(&i) {
                    i = rng.below(code.n());
                }
                positions[k] = i;
                flip(&mut c, i);
            }
            let result = decode(&code, &mut c[..code.words()], &mut scratch, DEFAULT_MAX_ITERATIONS);
            prop_assert_eq!(result, Ok(flips));
            prop_assert_eq!(c, original);
        }

        /// Whatever the damage and whatever the code, the decoder either
        /// returns a word that satisfies every check — having changed exactly
        /// as many bits as it reports — or an error with the word untouched.
        #[test]
        fn never_returns_an_invalid_word(
            seed in any::<u64>(),
            code_index in 0usize..12,
            flips in 0usize..120,
            iterations in 0u32..12,
        ) {
            let code = Code::ALL[code_index];
            let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
            let mut rng = SplitMix64::new(seed);
            let mut c = random_codeword(&code, &mut rng);
            for _ in 0..flips {
                flip(&mut c, rng.below(code.n()));
            }
            let before = c;
            match decode(&code, &mut c[..code.words()], &mut scratch, iterations) {
                Ok(changed) => {
                    prop_assert!(code.syndrome_ok(&c[..code.words()]));
                    let distance: u32 = c.iter().zip(&before).map(|(a, b)| (a ^ b).count_ones()).sum();
                    prop_assert_eq!(changed, distance as usize);
                }
                Err(e) => {
                    prop_assert_eq!(e, LdpcError::Uncorrectable);
                    prop_assert_eq!(c, before);
                }
            }
        }

        /// Arbitrary words of arbitrary length never panic.
        #[test]
        fn arbitrary_input_never_panics(
            words in proptest::collection::vec(any::<u32>(), 0..70),
            code_index in 0usize..12,
        ) {
            let code = Code::ALL[code_index];
            let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
            let mut c = words.clone();
            let result = decode(&code, &mut c, &mut scratch, 4);
            if words.len() != code.words() {
                prop_assert!(
                    matches!(result, Err(LdpcError::BadLength { .. })),
                    "expected BadLength, got {:?}",
                    result
                );
            }
            if result.is_ok() {
                prop_assert!(code.syndrome_ok(&c));
            }
        }
    }
}
