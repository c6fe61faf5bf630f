//! Damage found or made on the public plain artifact, carried to the
//! protected forms the way each attacker would aim it:
//!
//! - *reparameterized only, same offsets*: the flipped bits at the same
//!   offsets of the weights section, which now hold other channels;
//! - *protected, same offsets*: the same offsets of the coded image (an
//!   attacker without the key);
//! - *protected, key holder*: the stored bits that really carry the
//!   damaged plain bits (an attacker who knows the interleaver).

use super::batch::Batch;
use super::report::Transfer;
use super::subject::{Protected, Subject};
use crate::protect::attack::{flip, oracle_positions, same_offsets};
use crate::protect::inject::{region_range, Region};
use anyhow::Result;

/// Bits (absolute positions) where `damaged` differs from `plain` inside
/// the plain weights section.
pub fn changed_bits(plain: &[u8], damaged: &[u8]) -> Result<Vec<usize>> {
    let range = region_range(plain, Region::Weights)?;
    Ok(range
        .flat_map(|i| {
            let diff = plain[i] ^ damaged.get(i).copied().unwrap_or(plain[i]);
            (0..8)
                .filter(move |b| diff & (1 << b) != 0)
                .map(move |b| i * 8 + b)
        })
        .collect())
}

/// The ways a damage is carried over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aim {
    /// Same offsets of the reparameterized plain artifact.
    ReparamSameOffsets,
    /// Same offsets of the protected coded image.
    ProtectedSameOffsets,
    /// The protected stored bits that carry the damaged plain bits.
    ProtectedKeyHolder,
}

impl Aim {
    /// Every aim, in report order.
    pub const ALL: [Aim; 3] = [
        Aim::ReparamSameOffsets,
        Aim::ProtectedSameOffsets,
        Aim::ProtectedKeyHolder,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Aim::ReparamSameOffsets => "reparameterized only, same offsets",
            Aim::ProtectedSameOffsets => "protected, same offsets (no key)",
            Aim::ProtectedKeyHolder => "protected, key holder's bits",
        }
    }
}

/// Carries `bits` (flipped on the plain artifact) to `aim`'s artifact and
/// runs `eval` on it: `None` outputs when the loader refuses it.
pub fn carry(
    s: &Subject,
    p: &Protected,
    bits: &[usize],
    aim: Aim,
    eval: &Batch,
) -> Result<(Option<Vec<Vec<i8>>>, String)> {
    let plain_of = |bytes: Vec<u8>| -> Result<(Option<Vec<Vec<i8>>>, String)> {
        match crate::protect::recover(&bytes, &p.key) {
            (Ok(inner), health) => Ok((
                Some(eval.outputs(&inner)?),
                format!(
                    "loaded: {} words corrected ({} bits)",
                    health.corrected_words, health.corrected_bits
                ),
            )),
            (Err(e), _) => Ok((None, format!("refused at load: {e}"))),
        }
    };
    match aim {
        Aim::ReparamSameOffsets => {
            let mut bytes = p.reparam_only.clone();
            flip(&mut bytes, &same_offsets(&s.plain, bits, &p.reparam_only)?);
            Ok((
                eval.outputs(&bytes).ok(),
                "plain load (no code, no tags)".into(),
            ))
        }
        Aim::ProtectedSameOffsets => {
            let mut bytes = p.bytes.clone();
            flip(&mut bytes, &same_offsets(&s.plain, bits, &p.bytes)?);
            plain_of(bytes)
        }
        Aim::ProtectedKeyHolder => {
            let mut bytes = p.bytes.clone();
            flip(
                &mut bytes,
                &oracle_positions(&s.plain, bits, &p.bytes, &p.key)?,
            );
            plain_of(bytes)
        }
    }
}

/// The clean outputs of `aim`'s artifact on `eval`.
pub fn clean_outputs(p: &Protected, aim: Aim, eval: &Batch) -> Result<Vec<Vec<i8>>> {
    match aim {
        Aim::ReparamSameOffsets => eval.outputs(&p.reparam_only),
        _ => {
            let inner = p
                .recover(&p.bytes)
                .ok_or_else(|| anyhow::anyhow!("the protected artifact does not load"))?;
            eval.outputs(&inner)
        }
    }
}

/// Every aim's [`Transfer`] of the plain-artifact flips `bits`.
pub fn transfers(s: &Subject, bits: &[usize], eval: &Batch) -> Result<Vec<Transfer>> {
    let Some(p) = &s.protected else {
        return Ok(Vec::new());
    };
    Aim::ALL
        .iter()
        .map(|&aim| {
            let clean = clean_outputs(p, aim, eval)?;
            let (outputs, note) = carry(s, p, bits, aim, eval)?;
            let accuracy = outputs.as_ref().map(|o| accuracy_of(o, eval));
            Ok(Transfer {
                target: aim.name().into(),
                accuracy,
                outputs_identical: outputs.as_ref() == Some(&clean),
                note,
            })
        })
        .collect()
}

/// Accuracy of `outputs` against `eval`'s labels (0 without labels).
pub fn accuracy_of(outputs: &[Vec<i8>], eval: &Batch) -> f64 {
    let Some(labels) = &eval.labels else {
        return 0.0;
    };
    let correct = outputs
        .iter()
        .zip(labels)
        .filter(|(o, &l)| super::batch::argmax_i8(o) as i64 == l)
        .count();
    correct as f64 / outputs.len().max(1) as f64
}
