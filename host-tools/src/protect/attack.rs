//! Targeted bit flips: the attack that keyed reparameterization and coded
//! storage are meant to defeat (issue 4, "targeted flips").
//!
//! The attacker studies the *public* plain artifact and picks damaging
//! stored bits: the sign bit (bit 7) and the top magnitude bit (bit 6) of
//! the int8 weights of largest magnitude in the last Conv/FC layers
//! ([`targeted_bits`]), or one high bit of a last-layer bias
//! ([`bias_bit`]: one flip, one class wins everywhere). [`same_offsets`] carries the
//! addresses over to another artifact the way an attacker without the key
//! would (same offset from the start of the stored weights), and
//! [`oracle_positions`] the way one *with* the interleaver key would (the
//! stored bits that really carry those weight bits).

use super::inject::{region_range, Region};
use crate::fsutil::AlignedBytes;
use anyhow::{anyhow, bail, Result};
use sturdy_runtime::format::*;
use sturdy_runtime::protect::{Key, ProtectedArtifact, Subkeys};
use sturdy_runtime::Artifact;

/// Bits of a stored weight an attacker flips: sign and top magnitude bit.
pub const TARGET_BITS: [u8; 2] = [7, 6];

fn section(a: &Artifact<'_>, kind: u32) -> Option<usize> {
    a.sections()
        .iter()
        .find(|s| s.kind == kind)
        .map(|s| s.offset as usize)
}

/// The `count` largest-magnitude int8 weights over the last `layers`
/// Conv/FC ops of the plain artifact `plain`, and for each its bits
/// [`TARGET_BITS`]: absolute bit positions in the file (bit `b % 8` of byte
/// `b / 8`), sorted.
pub fn targeted_bits(plain: &[u8], layers: usize, count: usize) -> Result<Vec<usize>> {
    let aligned = AlignedBytes::new(plain);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let base = section(&a, SECTION_WEIGHTS).ok_or_else(|| anyhow!("no weights section"))?;
    let last: Vec<&OpRecord> = a
        .ops()
        .iter()
        .filter(|op| op.kind == OP_CONV2D || op.kind == OP_FULLY_CONNECTED)
        .collect();
    if last.is_empty() {
        bail!("the model has no Conv/FC layer");
    }
    let mut weights: Vec<(u8, usize)> = Vec::new();
    for op in &last[last.len().saturating_sub(layers)..] {
        let t = a
            .tensor(op.inputs[1] as usize)
            .map_err(|e| anyhow!("{e}"))?;
        if t.dtype != DTYPE_I8 {
            continue;
        }
        let at = base + t.offset as usize;
        for (i, &w) in plain[at..at + t.len as usize].iter().enumerate() {
            weights.push(((w as i8).unsigned_abs(), at + i));
        }
    }
    // Largest magnitude first; ties by address so the choice is reproducible.
    weights.sort_by_key(|&(m, at)| (std::cmp::Reverse(m), at));
    let mut bits: Vec<usize> = weights
        .iter()
        .take(count)
        .flat_map(|&(_, at)| TARGET_BITS.map(|b| at * 8 + b as usize))
        .collect();
    bits.sort_unstable();
    Ok(bits)
}

/// One flip that makes the bias of output channel `channel` of the last
/// Conv/FC layer huge and positive (bit 30 of a non-negative bias, the sign
/// bit of a negative one): that class then wins on every input. Absolute bit
/// position in the file.
pub fn bias_bit(plain: &[u8], channel: usize) -> Result<usize> {
    let aligned = AlignedBytes::new(plain);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let base = section(&a, SECTION_WEIGHTS).ok_or_else(|| anyhow!("no weights section"))?;
    let op = a
        .ops()
        .iter()
        .rfind(|op| op.kind == OP_CONV2D || op.kind == OP_FULLY_CONNECTED)
        .ok_or_else(|| anyhow!("the model has no Conv/FC layer"))?;
    let t = a
        .tensor(op.inputs[2] as usize)
        .map_err(|e| anyhow!("{e}"))?;
    if channel * 4 >= t.len as usize {
        bail!("the last layer has no channel {channel}");
    }
    let at = base + t.offset as usize + 4 * channel;
    let bias = i32::from_le_bytes([plain[at], plain[at + 1], plain[at + 2], plain[at + 3]]);
    let bit = if bias < 0 { 31 } else { 30 };
    Ok(at * 8 + bit)
}

/// Flips the bits `bits` (absolute positions) of `bytes`.
pub fn flip(bytes: &mut [u8], bits: &[usize]) {
    for &b in bits {
        if let Some(byte) = bytes.get_mut(b / 8) {
            *byte ^= 1 << (b % 8);
        }
    }
}

/// The positions `bits` of `plain` moved to the same offsets from the start
/// of `other`'s stored weights (the weights section of a plain artifact, the
/// coded image of a protected one): what an attacker without the key can
/// aim at. Positions past the end of `other`'s region are dropped.
pub fn same_offsets(plain: &[u8], bits: &[usize], other: &[u8]) -> Result<Vec<usize>> {
    let from = region_range(plain, Region::Weights)?;
    let to = region_range(other, Region::Weights)?;
    Ok(bits
        .iter()
        .filter_map(|&b| b.checked_sub(from.start * 8))
        .map(|rel| to.start * 8 + rel)
        .filter(|&b| b < to.end * 8)
        .collect())
}

/// The stored bits of the protected artifact `protected` (made from
/// `plain` with `key`) that carry the plain bits `bits` of the weights
/// section: an attacker who knows the key and so the interleaver. Requires
/// the LDPC layer. (With reparameterization on, the carried bits are those
/// at the same weights-section offsets, which then belong to other weights.)
pub fn oracle_positions(
    plain: &[u8],
    bits: &[usize],
    protected: &[u8],
    key: &Key,
) -> Result<Vec<usize>> {
    let aligned = AlignedBytes::new(plain);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let plain_weights = section(&a, SECTION_WEIGHTS).ok_or_else(|| anyhow!("no weights"))?;
    let (inner, _) = super::split_inner(plain)?;
    let inner_aligned = AlignedBytes::new(&inner);
    let i = Artifact::parse(inner_aligned.as_bytes()).map_err(|e| anyhow!("{e}"))?;
    let inner_weights = section(&i, SECTION_WEIGHTS).ok_or_else(|| anyhow!("no weights"))?;

    let p_aligned = AlignedBytes::new(protected);
    let p = ProtectedArtifact::parse(p_aligned.as_bytes())
        .map_err(|e| anyhow!("invalid protected artifact: {e}"))?;
    let code = p
        .code()
        .ok_or_else(|| anyhow!("the artifact is not LDPC coded"))?;
    let header = *p.header();
    let interleaver = Subkeys::derive(key, &header.nonce).interleaver(header.codewords as usize);
    let coded = region_range(protected, Region::Weights)?.start * 8;
    Ok(bits
        .iter()
        .filter_map(|&b| b.checked_sub(plain_weights * 8))
        .map(|rel| {
            let t = inner_weights * 8 + rel;
            coded + interleaver.position(t / code.k(), t % code.k())
        })
        .collect())
}
