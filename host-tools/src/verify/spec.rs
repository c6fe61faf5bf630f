//! The property file of `sturdy verify --property FILE`: the user's own
//! properties, in JSON.
//!
//! ```json
//! { "properties": [
//!   { "name": "sample 3, ±2 codes", "input": { "sample": 3, "eps": 2 }, "output": "keeps_label" },
//!   { "name": "sample 0 blurred",   "input": { "sample": 0, "blur": 0.8 }, "output": { "label": 7 } },
//!   { "name": "my box",             "input": { "lo": [-128, …], "hi": [-100, …] },
//!                                   "output": { "score_at_least": { "class": 2, "code": -20 } } }
//! ] }
//! ```
//!
//! Inputs are int8 codes in the artifact's storage layout (`lo`/`hi`, one
//! per input element), or a sample of `--input` (its index) with a
//! perturbation. `keeps_label` is the label the runtime gives the sample.

use super::bounds::Bounder;
use super::interval::Interval;
use super::property::{Condition, Property, Region};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    properties: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: Option<String>,
    input: Input,
    output: Output,
}

#[derive(Deserialize)]
#[serde(untagged, deny_unknown_fields)]
enum Input {
    Bounds { lo: Vec<i8>, hi: Vec<i8> },
    Around { sample: usize, eps: u8 },
    Blur { sample: usize, blur: f64 },
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Output {
    KeepsLabel,
    Label(usize),
    ScoreAtLeast { class: usize, code: i8 },
}

/// Reads the properties of `path`; `samples` are the `--input` samples as
/// int8 codes (storage layout), `dims` the input's storage shape. Errors
/// name the property (its position and name) and the field at fault.
pub fn read(
    path: &Path,
    samples: &[Vec<i8>],
    dims: &[usize],
    bounder: &Bounder<'_>,
) -> Result<Vec<Property>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not a property file (expected {{\"properties\": [{{\"input\": …, \"output\": …}}]}})",
            path.display()
        )
    })?;
    file.properties
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let name = e.name.clone().unwrap_or_else(|| format!("property {i}"));
            entry(e, name.clone(), samples, dims, bounder)
                .with_context(|| format!("{}: property {i} ({name})", path.display()))
        })
        .collect()
}

fn entry(
    e: Entry,
    name: String,
    samples: &[Vec<i8>],
    dims: &[usize],
    bounder: &Bounder<'_>,
) -> Result<Property> {
    let sample = |k: usize| {
        samples.get(k).ok_or_else(|| {
            anyhow!(
                "input.sample {k} is out of range ({} samples in --input)",
                samples.len()
            )
        })
    };
    let len = bounder.model().input_len();
    let (region, base) = match e.input {
        Input::Bounds { lo, hi } => {
            if lo.len() != len || hi.len() != len {
                bail!(
                    "input.lo has {} and input.hi {} codes; the model input has {len}",
                    lo.len(),
                    hi.len()
                );
            }
            let b = Interval::new(lo, hi).context("input")?;
            let centre = b.center();
            (Region::Box(b), centre)
        }
        Input::Around { sample: k, eps } => {
            let x = sample(k)?;
            (Region::Box(Interval::around(x, eps)), x.clone())
        }
        Input::Blur { sample: k, blur } => {
            let x = sample(k)?;
            (
                super::blur(x, dims, blur, 0).context("input.blur")?.region,
                x.clone(),
            )
        }
    };
    let classes = bounder.classes();
    let class_ok = |c: usize, field: &str| {
        if c < classes {
            Ok(c)
        } else {
            Err(anyhow!(
                "{field} {c} is not a class (the model has {classes})"
            ))
        }
    };
    let condition = match e.output {
        Output::KeepsLabel => Condition::Label(bounder.label(&base)?),
        Output::Label(c) => Condition::Label(class_ok(c, "output.label")?),
        Output::ScoreAtLeast { class, code } => Condition::AtLeast {
            class: class_ok(class, "output.score_at_least.class")?,
            code,
        },
    };
    Ok(Property {
        name,
        region,
        condition,
    })
}
