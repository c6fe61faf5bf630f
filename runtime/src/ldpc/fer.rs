//! Frame-error-rate measurement on a binary symmetric channel.
//!
//! Picking a code for a memory means knowing how often a codeword is lost
//! at that memory's raw bit-error rate. [`simulate`] encodes random
//! messages, flips every bit independently with the given probability (the
//! usual model of retention and radiation faults), decodes, and counts what
//! happened. It is `no_std` and allocation-free like the rest of the
//! runtime, so `cargo xtask bench` on the host and a board alike can run it;
//! it is deterministic for a given seed.
//!
//! Measured (`cargo test -p sturdy-runtime --release --lib -- --ignored
//! measure_fer --nocapture`: 10 000 frames per point, seed 2024, 20
//! iterations; "0" means none in 10 000, i.e. below 3·10⁻⁴ at 95 %
//! confidence):
//!
//! | code              | BER 10⁻³ | 3·10⁻³  | 10⁻²     | 3·10⁻²   |
//! |-------------------|----------|---------|----------|----------|
//! | n = 1944, R 1/2   | 0        | 0       | 0        | 0        |
//! | n = 1944, R 5/6   | 0        | 0       | 2.6·10⁻² | 0.9998   |
//! | n = 648, R 1/2    | 0        | 0       | 0        | 2·10⁻⁴   |
//! | n = 648, R 5/6    | 0        | 2·10⁻⁴  | 7.0·10⁻² | 0.976    |
//!
//! Of the 20 720 lost frames, 2 were miscorrections (decoded to a valid
//! but wrong codeword); the decoder reported all others uncorrectable.

use super::{decode, Code, DecoderScratch, LdpcError, MAX_CODEWORD_WORDS};

/// What happened to the frames of one [`simulate`] run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FerReport {
    /// Frames (codewords) sent.
    pub frames: u32,
    /// Bits flipped by the channel, over all frames.
    pub flipped_bits: u64,
    /// Frames with at least one flip that decoded back to the codeword sent.
    pub corrected: u32,
    /// Frames the decoder reported as uncorrectable (detected loss).
    pub uncorrectable: u32,
    /// Frames that decoded to a valid but different codeword, or were
    /// flipped into one (undetected by the code: only an integrity tag
    /// catches these).
    pub miscorrected: u32,
}

impl FerReport {
    /// Frames not recovered: uncorrectable plus miscorrected.
    pub fn frame_errors(&self) -> u32 {
        self.uncorrectable + self.miscorrected
    }
}

/// Sends `frames` random codewords of `code` through a binary symmetric
/// channel that flips each bit with probability `ber_ppm / 1 000 000`
/// (values ≥ 10⁶ flip every bit), decodes each with at most
/// `max_iterations` iterations, and reports the outcome. Same `seed`, same
/// report.
///
/// The error rate is in parts per million so that the measurement needs no
/// floating point on a microcontroller. Errors: the scratch is too small
/// for `code`.
pub fn simulate<const N: usize, const M: usize>(
    code: &Code,
    ber_ppm: u32,
    frames: u32,
    seed: u64,
    max_iterations: u32,
    scratch: &mut DecoderScratch<N, M>,
) -> Result<FerReport, LdpcError> {
    let mut rng = SplitMix64::new(seed);
    // P(next_u32 < threshold) = ber_ppm / 10⁶.
    let threshold = (u64::from(ber_ppm) << 32) / 1_000_000;
    let words = code.words();
    let mut report = FerReport::default();
    for _ in 0..frames {
        let mut sent = [0u32; MAX_CODEWORD_WORDS];
        for w in &mut sent[..words] {
            *w = rng.next_u32();
        }
        code.encode_in_place(&mut sent[..words])?;
        let mut received = sent;
        let mut flips = 0u64;
        for i in 0..code.n() {
            if u64::from(rng.next_u32()) < threshold {
                received[i / 32] ^= 1 << (i % 32);
                flips += 1;
            }
        }
        report.frames += 1;
        report.flipped_bits += flips;
        match decode(code, &mut received[..words], scratch, max_iterations) {
            Err(LdpcError::Uncorrectable) => report.uncorrectable += 1,
            Err(e) => return Err(e),
            Ok(_) if received != sent => report.miscorrected += 1,
            Ok(_) if flips > 0 => report.corrected += 1,
            Ok(_) => {}
        }
    }
    Ok(report)
}

/// SplitMix64 (Steele, Lea, Flood 2014): a tiny, seedable, well-mixed
/// generator, so simulations need no `rand` dependency and reproduce exactly
/// on any target.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator whose output is fixed by `seed`.
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// Next 64 uniformly distributed bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Next 32 uniformly distributed bits (the high half, the better mixed).
    pub(crate) fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Uniform in `0..n` for `n ≤ 2³²` (multiply-shift; the bias is below
    /// 2⁻²⁰ for the codeword lengths used here).
    #[cfg(test)]
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u64::from(self.next_u32()) * n as u64) >> 32) as usize
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::ldpc::{Length, Rate, DEFAULT_MAX_ITERATIONS};
    use std::boxed::Box;
    use std::println;
    use std::time::Instant;

    #[test]
    fn clean_channel_loses_nothing() {
        let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
        for code in Code::ALL {
            let report = simulate(&code, 0, 20, 3, 10, &mut scratch).unwrap();
            assert_eq!(
                report,
                FerReport {
                    frames: 20,
                    ..FerReport::default()
                }
            );
        }
    }

    #[test]
    fn deterministic_and_accounted() {
        let code = Code::new(Length::N648, Rate::R5_6);
        let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
        let a = simulate(&code, 20_000, 200, 11, 10, &mut scratch).unwrap();
        let b = simulate(&code, 20_000, 200, 11, 10, &mut scratch).unwrap();
        assert_eq!(a, b);
        assert!(a.corrected + a.frame_errors() <= a.frames);
        assert!(a.frame_errors() > 0 && a.corrected > 0, "{a:?}");
        // ~13 flips per frame expected at 2 %.
        let mean = a.flipped_bits as f64 / f64::from(a.frames);
        assert!((mean - 12.96).abs() < 1.5, "{mean}");

        let all = simulate(&code, 1_000_000, 3, 1, 1, &mut scratch).unwrap();
        assert_eq!(all.flipped_bits, 3 * code.n() as u64);
    }

    #[test]
    fn scratch_too_small_is_reported() {
        let code = Code::new(Length::N1944, Rate::R1_2);
        let mut scratch = Box::new(DecoderScratch::<648, 324>::new());
        assert!(matches!(
            simulate(&code, 1000, 5, 1, 10, &mut scratch),
            Err(LdpcError::ScratchTooSmall { .. })
        ));
    }

    /// The FER table of the README / report. Run in release:
    /// `cargo test -p sturdy-runtime --release --lib -- --ignored measure_fer --nocapture`
    #[test]
    #[ignore = "measurement, run explicitly in release"]
    fn measure_fer() {
        let mut scratch = Box::new(DecoderScratch::<1944, 972>::new());
        let frames = 10_000;
        println!("frames per point: {frames}, max iterations: {DEFAULT_MAX_ITERATIONS}");
        println!("code            BER     FER        uncorrectable  miscorrected  corrected");
        for length in [Length::N1944, Length::N648] {
            for rate in [Rate::R1_2, Rate::R5_6] {
                let code = Code::new(length, rate);
                for ppm in [1_000, 3_000, 10_000, 30_000] {
                    let r = simulate(
                        &code,
                        ppm,
                        frames,
                        2024,
                        DEFAULT_MAX_ITERATIONS,
                        &mut scratch,
                    )
                    .unwrap();
                    println!(
                        "n={:<4} {:?}  {:.0e}  {:<9.3e}  {:>13}  {:>12}  {:>9}",
                        code.n(),
                        rate,
                        f64::from(ppm) / 1e6,
                        f64::from(r.frame_errors()) / f64::from(r.frames),
                        r.uncorrectable,
                        r.miscorrected,
                        r.corrected,
                    );
                }
            }
        }
    }

    /// Host cost of the syndrome check per valid codeword (the fast path).
    /// `cargo test -p sturdy-runtime --release --lib -- --ignored measure_syndrome --nocapture`
    #[test]
    #[ignore = "measurement, run explicitly in release"]
    fn measure_syndrome_cost() {
        let mut rng = SplitMix64::new(5);
        for code in Code::ALL {
            let mut words = [[0u32; MAX_CODEWORD_WORDS]; 64];
            for w in &mut words {
                for x in &mut w[..code.words()] {
                    *x = rng.next_u32();
                }
                code.encode_in_place(&mut w[..code.words()]).unwrap();
            }
            // Best of 30 batches: the figure the code costs, not the load
            // of a shared machine.
            let mut best = f64::MAX;
            for _ in 0..30 {
                let start = Instant::now();
                let mut ok = 0usize;
                for _ in 0..500 {
                    for w in &words {
                        ok +=
                            usize::from(code.syndrome_ok(std::hint::black_box(&w[..code.words()])));
                    }
                }
                assert_eq!(ok, 500 * words.len());
                best = best.min(start.elapsed().as_nanos() as f64 / (500 * words.len()) as f64);
            }
            let ns = best;
            println!(
                "n={:<4} {:?}: {:6.1} ns per codeword, {:.3} ns per bit",
                code.n(),
                code.rate(),
                ns,
                ns / code.n() as f64
            );
        }
    }
}
