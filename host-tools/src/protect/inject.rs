//! Seeded, reproducible bit-flip injection into stored artifacts.

use crate::fsutil::AlignedBytes;
use anyhow::{anyhow, bail, Result};
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use std::ops::Range;
use sturdy_runtime::format::*;
use sturdy_runtime::protect::{is_protected, ProtectedArtifact};
use sturdy_runtime::Artifact;

/// Which stored bytes may be hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Region {
    /// What the kernels read: the weights section of a plain artifact, the
    /// coded image of a protected one.
    Weights,
    /// Every byte of the file, headers included.
    All,
}

/// The byte range of `region` in a (plain or protected) artifact.
pub fn region_range(bytes: &[u8], region: Region) -> Result<Range<usize>> {
    if region == Region::All {
        return Ok(0..bytes.len());
    }
    let aligned = AlignedBytes::new(bytes);
    let kind = if is_protected(aligned.as_bytes()) {
        ProtectedArtifact::parse(aligned.as_bytes())
            .map_err(|e| anyhow!("invalid protected artifact: {e}"))?;
        SECTION_CODED
    } else {
        Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
        SECTION_WEIGHTS
    };
    let header: Header = bytemuck::pod_read_unaligned(&bytes[..HEADER_SIZE]);
    (0..header.section_count as usize)
        .map(|i| {
            let at = HEADER_SIZE + i * SECTION_ENTRY_SIZE;
            bytemuck::pod_read_unaligned::<SectionEntry>(&bytes[at..at + SECTION_ENTRY_SIZE])
        })
        .find(|s| s.kind == kind)
        .map(|s| s.offset as usize..(s.offset + s.len) as usize)
        .ok_or_else(|| anyhow!("the artifact has no section {kind} to inject into"))
}

/// Flips every bit of `bytes[range]` independently with probability `ber`,
/// drawn from ChaCha20 seeded with `seed` (same inputs, same flips).
/// Returns the flipped bit positions (absolute, bit `b` of byte `b / 8`).
pub fn flip_bits(bytes: &mut [u8], range: Range<usize>, ber: f64, seed: u64) -> Result<Vec<usize>> {
    let start = range.start * 8;
    let flipped: Vec<usize> = flip_positions(range.len() * 8, ber, seed)?
        .into_iter()
        .map(|at| start + at)
        .collect();
    for &bit in &flipped {
        bytes[bit / 8] ^= 1 << (bit % 8);
    }
    Ok(flipped)
}

/// The positions in `0..bits` that independent flips with probability
/// `ber` hit, drawn from ChaCha20 seeded with `seed`, in increasing order.
/// Sampled by geometric gaps: exact for independent flips, and the cost is
/// per flip, not per bit.
pub fn flip_positions(bits: usize, ber: f64, seed: u64) -> Result<Vec<usize>> {
    if !(0.0..=1.0).contains(&ber) {
        bail!("--ber must lie in [0, 1], got {ber}");
    }
    let mut flipped = Vec::new();
    if ber == 0.0 || bits == 0 {
        return Ok(flipped);
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut uniform = || ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let log_keep = (1.0 - ber).ln();
    let mut at = 0usize;
    loop {
        let gap = if ber >= 1.0 {
            0.0
        } else {
            (uniform().ln() / log_keep).floor()
        };
        if !gap.is_finite() || gap >= (bits - at) as f64 {
            break;
        }
        at += gap as usize;
        flipped.push(at);
        at += 1;
        if at >= bits {
            break;
        }
    }
    Ok(flipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_reproducibility() {
        let mut a = vec![0u8; 100_000];
        let flips = flip_bits(&mut a, 0..100_000, 1e-2, 7).unwrap();
        let expected = 8e5 * 1e-2;
        assert!((flips.len() as f64 - expected).abs() < 5.0 * expected.sqrt());
        let ones: u32 = a.iter().map(|b| b.count_ones()).sum();
        assert_eq!(ones as usize, flips.len());
        let mut b = vec![0u8; 100_000];
        assert_eq!(flip_bits(&mut b, 0..100_000, 1e-2, 7).unwrap(), flips);
        assert_eq!(a, b);
        let mut c = vec![0u8; 16];
        assert_eq!(flip_bits(&mut c, 4..8, 1.0, 1).unwrap().len(), 32);
        assert_eq!(&c[..4], &[0; 4]);
        assert!(flip_bits(&mut c, 0..16, 0.0, 1).unwrap().is_empty());
    }
}
