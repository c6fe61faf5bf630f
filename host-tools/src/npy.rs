//! Reading sample sets and labels from `.npy`, writing outputs.

use anyhow::{bail, Context, Result};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{read_npy, WriteNpyExt};
use std::path::Path;

/// `N` float samples stacked on axis 0.
#[derive(Debug, Clone, PartialEq)]
pub struct Samples {
    /// Dims of one sample.
    pub sample_shape: Vec<usize>,
    /// Each sample's values, row-major.
    pub samples: Vec<Vec<f32>>,
}

/// Reads `path` as float32 samples whose per-sample element count must be
/// that of `model_shape` (the model's input with batch 1).
pub fn read_samples(path: &Path, model_shape: &[usize]) -> Result<Samples> {
    read_samples_checked(path, Some(model_shape))
}

/// Reads `path` as float32 samples of whatever shape they have (a
/// calibration set transformed before the model is known).
pub fn read_samples_as_stored(path: &Path) -> Result<Samples> {
    read_samples_checked(path, None)
}

fn read_samples_checked(path: &Path, model_shape: Option<&[usize]>) -> Result<Samples> {
    let array: ArrayD<f32> = match read_npy(path) {
        Ok(a) => a,
        Err(e) => match crate::npy_f16::read(path)? {
            Some(a) => a,
            None => {
                return Err(e).with_context(|| {
                    format!(
                        "reading {} (expected a float32 or float16 .npy array)",
                        path.display()
                    )
                })
            }
        },
    };
    let shape = array.shape().to_vec();
    let Some((&count, rest)) = shape.split_first() else {
        bail!("{}: a 0-d array holds no samples", path.display());
    };
    let per_sample: usize = rest.iter().product();
    let model_shape = model_shape.unwrap_or(rest);
    let per_model: usize = model_shape.iter().product();
    if per_sample != per_model {
        bail!(
            "{}: samples of shape {rest:?} ({per_sample} values) do not fit the model input {model_shape:?} ({per_model} values); stack samples on axis 0",
            path.display()
        );
    }
    let flat = array
        .as_standard_layout()
        .iter()
        .copied()
        .collect::<Vec<f32>>();
    if let Some(at) = flat.iter().position(|v| !v.is_finite()) {
        let (sample, element) = (at / per_sample.max(1), at % per_sample.max(1));
        bail!(
            "{}: sample {sample} holds {} at element {element} (index {:?} of a {rest:?} sample); every value must be finite, clean or drop that sample",
            path.display(),
            flat[at],
            unravel(element, rest)
        );
    }
    let samples = flat
        .chunks(per_sample.max(1))
        .take(count)
        .map(<[f32]>::to_vec)
        .collect();
    Ok(Samples {
        sample_shape: rest.to_vec(),
        samples,
    })
}

/// The multi-index of the `flat`-th element of a row-major `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (i, &dim) in shape.iter().enumerate().rev() {
        index[i] = flat % dim.max(1);
        flat /= dim.max(1);
    }
    index
}

/// Reads integer class labels (int64 or int32), each `>= 0`; the upper
/// bound is the model's class count ([`check_label_range`]).
pub fn read_labels(path: &Path) -> Result<Vec<i64>> {
    let read = || -> Result<Vec<i64>> {
        if let Ok(a) = read_npy::<_, ArrayD<i64>>(path) {
            return Ok(a.iter().copied().collect());
        }
        let a: ArrayD<i32> = read_npy(path)?;
        Ok(a.iter().map(|&v| v as i64).collect())
    };
    let labels = read().with_context(|| {
        format!(
            "reading labels {} (expected int64 or int32)",
            path.display()
        )
    })?;
    if let Some(i) = labels.iter().position(|&l| l < 0) {
        bail!(
            "{}: sample {i} has label {}; labels are class indices from 0",
            path.display(),
            labels[i]
        );
    }
    Ok(labels)
}

/// Refuses labels read from `path` that name no class of a model with
/// `classes` outputs (the first offender is named).
pub fn check_label_range(path: &Path, labels: &[i64], classes: usize) -> Result<()> {
    match labels
        .iter()
        .position(|&l| l < 0 || l as u64 >= classes as u64)
    {
        None => Ok(()),
        Some(i) => bail!(
            "{}: sample {i} has label {}, but the model has {classes} classes (0..{})",
            path.display(),
            labels[i],
            classes.saturating_sub(1)
        ),
    }
}

/// Reads domain ids (int64 or int32, each in `0..2^32`).
pub fn read_domains(path: &Path) -> Result<Vec<u32>> {
    read_labels(path)?
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            u32::try_from(d)
                .with_context(|| format!("{}: sample {i} has domain id {d}", path.display()))
        })
        .collect()
}

/// Reads a class prior: float32 or float64 probabilities, one per class,
/// each positive (they are renormalised to sum to 1).
pub fn read_prior(path: &Path) -> Result<Vec<f64>> {
    let read = || -> Result<Vec<f64>> {
        if let Ok(a) = read_npy::<_, ArrayD<f32>>(path) {
            return Ok(a.iter().map(|&v| v as f64).collect());
        }
        let a: ArrayD<f64> = read_npy(path)?;
        Ok(a.iter().copied().collect())
    };
    let prior = read().with_context(|| {
        format!(
            "reading prior {} (expected float32 or float64)",
            path.display()
        )
    })?;
    anyhow::ensure!(!prior.is_empty(), "{}: the prior is empty", path.display());
    if let Some(c) = prior.iter().position(|&p| !(p > 0.0 && p.is_finite())) {
        bail!(
            "{}: the prior of class {c} is {}; every class prior must be positive and finite",
            path.display(),
            prior[c]
        );
    }
    let total: f64 = prior.iter().sum();
    Ok(prior.iter().map(|p| p / total).collect())
}

/// Writes outputs stacked on axis 0 (`N × output_shape`) as float32.
pub fn write_outputs(path: &Path, outputs: &[Vec<f32>], output_shape: &[usize]) -> Result<()> {
    let mut shape = vec![outputs.len()];
    shape.extend_from_slice(output_shape);
    let flat: Vec<f32> = outputs.concat();
    let array = ArrayD::from_shape_vec(IxDyn(&shape), flat)
        .context("output shapes differ between samples")?;
    let mut bytes = Vec::new();
    array.write_npy(&mut bytes)?;
    crate::fsutil::write_atomic(path, &bytes)
}
