//! The bundled long-tailed benchmarks: the domain-shifted one EmaQ-LT was
//! built on (`models/lt_mnist*`, made by `models/make_longtail.py`) and
//! four more ([`UNSEEN`], `make_longtail_unseen.py`: other architectures,
//! seeds, imbalances, clean data only). Their files,
//! and the figures EmaQ-LT is judged by — balanced accuracy and tail recall
//! on the clean domain, accuracy per domain. Shared by `sturdy demo`, the
//! README's table (`cargo xtask emaq-table`) and the tests.

use crate::eval::{evaluate, Engine, Task};
use crate::npy;
use crate::quantize::bits::BitsChoice;
use crate::quantize::emaq::EmaqInputs;
use anyhow::Result;
use std::path::{Path, PathBuf};

/// Long-tailed models besides `lt_mnist` (other architectures, seeds and
/// imbalances), whose calibration sets' rarest classes hold one to three
/// samples. The logit fit's evidence threshold was chosen on them; the
/// `--holdout` variants of `make_longtail_unseen.py` are the unseen check.
pub const UNSEEN: [&str; 4] = ["lt_dscnn", "lt_mlp", "lt_digits", "lt_resnet"];

/// One benchmark's files in a models folder: `NAME.onnx`,
/// `NAME_{calib,test}_{x,y}.npy`, `NAME_train_prior.npy` and, for a
/// domain-shifted one, `NAME_{calib,test}_d.npy`.
pub struct LongTail {
    dir: PathBuf,
    name: String,
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
    /// The domain-shifted benchmark `lt_mnist` in `dir` (the repository's
    /// `models/`).
    pub fn new(dir: &Path) -> Self {
        Self::named(dir, "lt_mnist")
    }

    /// The benchmark `name` in `dir`.
    pub fn named(dir: &Path, name: &str) -> Self {
        LongTail {
            dir: dir.to_path_buf(),
            name: name.into(),
        }
    }

    /// Its name (the files' stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Path of one of its files (name + `suffix`).
    pub fn file(&self, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}{suffix}", self.name))
    }

    /// Domain ids of `split` (`calib` or `test`), if the benchmark has them.
    fn domains(&self, split: &str) -> Result<Option<Vec<u32>>> {
        let path = self.file(&format!("_{split}_d.npy"));
        path.exists().then(|| npy::read_domains(&path)).transpose()
    }

    /// EmaQ-LT's inputs: calibration labels, domains (if any) and the
    /// training prior, with the default evidence rule.
    pub fn emaq_inputs(&self, bits: BitsChoice) -> Result<EmaqInputs> {
        Ok(EmaqInputs {
            labels: Some(npy::read_labels(&self.file("_calib_y.npy"))?),
            domains: self.domains("calib")?,
            prior: Some(npy::read_prior(&self.file("_train_prior.npy"))?),
            reference_domain: 0,
            percentile: 99.99,
            bits,
            logit_evidence: crate::quantize::emaq::logit::EVIDENCE_Z,
        })
    }

    /// The training prior.
    pub fn prior(&self) -> Result<Vec<f64>> {
        npy::read_prior(&self.file("_train_prior.npy"))
    }

    /// Scores `engine` over every domain's test set, each sample tagged
    /// with its domain (only an artifact with alignment tables uses it).
    pub fn score(&self, engine: &Engine) -> Result<LongTailScore> {
        self.score_adjusted(engine, 0.0)
    }

    /// [`Self::score`] of the outputs after post-hoc logit adjustment
    /// `y_c − τ·ln π_c` with the training prior (τ = 1 on a float model is
    /// the baseline the quantized model's own adjustment is judged by).
    pub fn score_adjusted(&self, engine: &Engine, tau: f64) -> Result<LongTailScore> {
        let set = npy::read_samples(&self.file("_test_x.npy"), &engine.input_shape())?;
        let labels = npy::read_labels(&self.file("_test_y.npy"))?;
        let domains = self
            .domains("test")?
            .unwrap_or_else(|| vec![0; labels.len()]);
        let prior = self.prior()?;
        let task = Some(Task::Classification);
        let mut all = evaluate(engine, &set, Some(&labels), Some(&domains), task)?;
        for output in &mut all.outputs {
            for (y, p) in output.iter_mut().zip(&prior) {
                *y -= (tau * p.ln()) as f32;
            }
        }
        let predictions: Vec<i64> = all
            .outputs
            .iter()
            .map(|o| crate::metrics::argmax(o) as i64)
            .collect();
        let clean: Vec<usize> = (0..labels.len()).filter(|&i| domains[i] == 0).collect();
        let per_domain_hits = |d: u32| {
            let ids: Vec<usize> = (0..labels.len()).filter(|&i| domains[i] == d).collect();
            let hits = ids.iter().filter(|&&i| predictions[i] == labels[i]).count();
            hits as f64 / ids.len().max(1) as f64
        };
        let predictions: Vec<i64> = clean.iter().map(|&i| predictions[i]).collect();
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
        let per_domain = (0..ids).map(per_domain_hits).collect();
        Ok(LongTailScore {
            balanced: c.balanced_accuracy,
            tail: tail.iter().map(|&k| recall(k)).sum::<f64>() / tail.len().max(1) as f64,
            per_domain,
        })
    }
}
