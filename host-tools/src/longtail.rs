//! The bundled long-tailed, domain-shifted benchmark (`models/lt_mnist*`,
//! made by `models/make_longtail.py`): its files, and the figures EmaQ-LT
//! is judged by — balanced accuracy and tail recall on the clean domain,
//! accuracy per domain. Shared by `sturdy demo` and the README's table
//! (`cargo xtask emaq-table`).

use crate::eval::{evaluate, Engine, Task};
use crate::npy;
use crate::quantize::bits::BitsChoice;
use crate::quantize::emaq::EmaqInputs;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// The benchmark's files in a models folder.
pub struct LongTail {
    dir: PathBuf,
}

/// How one engine does on the benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct LongTailScore {
    /// Balanced accuracy on the clean (reference) domain's balanced test set.
    pub balanced: f64,
    /// Mean recall, clean domain, of the 3 classes rarest in the training prior.
    pub tail: f64,
    /// Accuracy per domain id (0 clean, 1 gain/offset, 2 contrast, 3 noise).
    pub per_domain: Vec<f64>,
}

impl LongTail {
    /// The benchmark in `dir` (the repository's `models/`).
    pub fn new(dir: &Path) -> Self {
        LongTail {
            dir: dir.to_path_buf(),
        }
    }

    /// Path of one of its files (`lt_mnist` + `suffix`).
    pub fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("lt_mnist{suffix}"))
    }

    /// EmaQ-LT's inputs: calibration labels, domains and the training prior.
    pub fn emaq_inputs(&self, bits: BitsChoice) -> Result<EmaqInputs> {
        Ok(EmaqInputs {
            labels: Some(npy::read_labels(&self.file("_calib_y.npy"))?),
            domains: Some(npy::read_domains(&self.file("_calib_d.npy"))?),
            prior: Some(npy::read_prior(&self.file("_train_prior.npy"))?),
            reference_domain: 0,
            percentile: 99.99,
            bits,
        })
    }

    /// Scores `engine` over every domain's test set, each sample tagged
    /// with its domain (only an artifact with alignment tables uses it).
    pub fn score(&self, engine: &Engine) -> Result<LongTailScore> {
        let set = npy::read_samples(&self.file("_test_x.npy"), &engine.input_shape())?;
        let labels = npy::read_labels(&self.file("_test_y.npy"))?;
        let domains = npy::read_domains(&self.file("_test_d.npy"))?;
        let prior = npy::read_prior(&self.file("_train_prior.npy"))?;
        let task = Some(Task::Classification);
        let all = evaluate(engine, &set, Some(&labels), Some(&domains), task)?;
        let clean: Vec<usize> = (0..labels.len()).filter(|&i| domains[i] == 0).collect();
        let predictions: Vec<i64> = clean
            .iter()
            .map(|&i| crate::metrics::argmax(&all.outputs[i]) as i64)
            .collect();
        let clean_labels: Vec<i64> = clean.iter().map(|&i| labels[i]).collect();
        let c = crate::metrics::classification(&predictions, &clean_labels);
        let mut by_prior: Vec<usize> = (0..prior.len()).collect();
        by_prior.sort_by(|&a, &b| prior[a].total_cmp(&prior[b]));
        let tail = &by_prior[..3.min(by_prior.len())];
        let recall = |k: usize| {
            c.per_class_accuracy
                .get(&(k as i64))
                .copied()
                .unwrap_or(0.0)
        };
        let ids = domains.iter().max().map_or(0, |&d| d + 1);
        let per_domain = (0..ids)
            .map(|d| {
                all.report["per_domain_accuracy"][d.to_string()]
                    .as_f64()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        Ok(LongTailScore {
            balanced: c.balanced_accuracy,
            tail: tail.iter().map(|&k| recall(k)).sum::<f64>() / tail.len().max(1) as f64,
            per_domain,
        })
    }
}
