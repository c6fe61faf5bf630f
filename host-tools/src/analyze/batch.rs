//! The samples a campaign runs, already quantized, and a fast way to run
//! every one of them through an artifact's bytes: the runtime itself, one
//! sample per rayon task, no metadata parsing per run (a campaign runs an
//! artifact thousands of times).

use crate::fsutil::AlignedBytes;
use crate::metrics::argmax;
use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use sturdy_runtime::Model;

/// Quantized inputs with their labels and domains.
#[derive(Debug, Clone)]
pub struct Batch {
    /// int8 inputs in storage layout.
    pub inputs: Vec<Vec<i8>>,
    /// Class of each input, when known.
    pub labels: Option<Vec<i64>>,
    /// Domain of each input, when known (mapped through its alignment table).
    pub domains: Option<Vec<u32>>,
}

impl Batch {
    /// Samples in the batch.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The first `n` samples (all when `n` exceeds the batch).
    pub fn head(&self, n: usize) -> Batch {
        self.slice(0, n)
    }

    /// Samples `from..from + n` (clipped to the batch).
    pub fn slice(&self, from: usize, n: usize) -> Batch {
        let from = from.min(self.len());
        let to = (from + n).min(self.len());
        Batch {
            inputs: self.inputs[from..to].to_vec(),
            labels: self.labels.as_ref().map(|l| l[from..to].to_vec()),
            domains: self.domains.as_ref().map(|d| d[from..to].to_vec()),
        }
    }

    /// Runs every input through the artifact `bytes` (plain, parsed and
    /// validated here) and returns the int8 outputs in sample order.
    pub fn outputs(&self, bytes: &[u8]) -> Result<Vec<Vec<i8>>> {
        let aligned = AlignedBytes::new(bytes);
        let model =
            Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
        (0..self.len())
            .into_par_iter()
            .map(|i| {
                let domain = self.domains.as_ref().map(|d| d[i]);
                run_one(&model, &self.inputs[i], domain).with_context(|| format!("sample {i}"))
            })
            .collect()
    }

    /// Top-1 class of every input under `bytes`.
    pub fn predictions(&self, bytes: &[u8]) -> Result<Vec<usize>> {
        Ok(self.outputs(bytes)?.iter().map(|o| argmax_i8(o)).collect())
    }
}

/// One inference: fresh arena, input (through its domain's table), invoke.
pub fn run_one(model: &Model<'_>, input: &[i8], domain: Option<u32>) -> Result<Vec<i8>> {
    let mut arena = crate::host_model::load_input(model, input, domain)?;
    model.invoke(&mut arena).map_err(|e| anyhow!("{e}"))?;
    Ok(model.output(&arena).map_err(|e| anyhow!("{e}"))?.to_vec())
}

/// Top-1 of int8 scores, with [`argmax`]'s tie rule (first maximum wins).
pub fn argmax_i8(scores: &[i8]) -> usize {
    let as_f32: Vec<f32> = scores.iter().map(|&v| f32::from(v)).collect();
    argmax(&as_f32)
}

/// How one faulty run compares with the fault-free one, TensorFI's way.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Outcome {
    /// Fraction of samples predicted correctly (needs labels; else agreement
    /// with the fault-free predictions).
    pub accuracy: f64,
    /// Of the samples the fault-free model gets right, the fraction whose
    /// prediction changed: silent data corruption.
    pub sdc_rate: f64,
    /// Of the samples the fault-free model gets wrong, the fraction that
    /// became right.
    pub correction_rate: f64,
}

/// Scores `faulty` predictions against `labels` and the fault-free `clean`
/// ones. Without labels the clean predictions stand in for them (then
/// accuracy is agreement and there is nothing to correct).
pub fn outcome(faulty: &[usize], clean: &[usize], labels: Option<&[i64]>) -> Outcome {
    let truth: Vec<i64> = match labels {
        Some(l) => l.to_vec(),
        None => clean.iter().map(|&c| c as i64).collect(),
    };
    let (mut correct, mut right, mut sdc, mut wrong, mut fixed) = (0, 0, 0, 0, 0);
    for ((&f, &c), &t) in faulty.iter().zip(clean).zip(&truth) {
        correct += usize::from(f as i64 == t);
        if c as i64 == t {
            right += 1;
            sdc += usize::from(f != c);
        } else {
            wrong += 1;
            fixed += usize::from(f as i64 == t);
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Outcome {
        accuracy: ratio(correct, truth.len()),
        sdc_rate: ratio(sdc, right),
        correction_rate: ratio(fixed, wrong),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_counts_by_hand() {
        // labels 0 1 2 3; clean gets 0,1,2 right and 3 wrong (says 0).
        let labels = [0, 1, 2, 3];
        let clean = [0, 1, 2, 0];
        // faulty: breaks sample 1, fixes sample 3.
        let faulty = [0, 2, 2, 3];
        let o = outcome(&faulty, &clean, Some(&labels));
        assert_eq!(o.accuracy, 0.75);
        assert!((o.sdc_rate - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(o.correction_rate, 1.0);
        let unlabelled = outcome(&faulty, &clean, None);
        assert_eq!(unlabelled.accuracy, 0.5);
        assert_eq!(unlabelled.sdc_rate, 0.5);
    }

    #[test]
    fn argmax_ties_pick_the_first() {
        assert_eq!(argmax_i8(&[-3, 7, 7, 1]), 1);
    }
}
