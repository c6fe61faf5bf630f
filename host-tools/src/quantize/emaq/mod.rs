//! EmaQ-LT post-training quantization for long-tailed, multi-domain
//! calibration data (`sturdy quantize --method emaq-lt`).
//!
//! 1. **Domain projection** ([`align`]): the input range covers every
//!    domain; per domain, a monotone code table maps its input CDF onto the
//!    reference domain's. The tables go into the artifact (INPUT_ALIGN) and
//!    the device applies them; everything below sees aligned inputs.
//! 2. **Class-conditioned ranges** (`balance`): every activation's range
//!    is read from a histogram in which each class and each domain weighs
//!    the same, so head classes do not set the ranges alone.
//! 3. **Sensitivity-aware aggregation** ([`search`]): where that balanced
//!    range and the full range disagree, the measured response of the
//!    integer model decides, tensor by tensor.
//! 4. **Confidence-based logit adjustment** ([`logit`]): `τ·ln π` is
//!    subtracted from unsure rows of the logits, `τ` and the margin fitted
//!    for balanced accuracy (LOGIT_ADJUST, executed in integer on device).
//!
//! Every choice lands in the artifact's calibration summary
//! ([`EmaqSummary`]), which `sturdy inspect` shows.

pub mod align;
mod balance;
pub mod logit;
pub mod mixed;
pub mod search;

use super::bias_correction::InputMeans;
use super::bits::BitsChoice;
use super::observer::MinMax;
use super::scales::{activation_qparams, dequantize_value, quantize_value};
use super::{build, forced_qparams, guards, CalibrationMeta, WeightBits};
use crate::artifact_writer::{input_align_body, logit_adjust_body, with_guards, with_section};
use crate::float_exec;
use crate::fsutil::AlignedBytes;
use crate::host_model::HostModel;
use crate::ir::{Graph, Op};
use anyhow::{bail, ensure, Context, Result};
use balance::WeightedHistogram;
use logit::LogitFit;
use search::{RangeChoice, Yardstick};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use sturdy_runtime::format::{SECTION_INPUT_ALIGN, SECTION_LOGIT_ADJUST, SECTION_META};
use sturdy_runtime::Model;

/// What EmaQ-LT is given besides the model and the calibration inputs.
#[derive(Debug, Clone)]
pub struct EmaqInputs {
    /// Class of each calibration sample (enables balancing and the logit
    /// adjustment).
    pub labels: Option<Vec<i64>>,
    /// Domain of each calibration sample, ids `0..D` (enables alignment).
    pub domains: Option<Vec<u32>>,
    /// Training class prior (default: from the calibration labels).
    pub prior: Option<Vec<f64>>,
    /// The domain the model was trained on.
    pub reference_domain: u32,
    /// Weight percentile kept at each end of a balanced range.
    pub percentile: f64,
    /// Conv/FC weight widths: uniform, or mixed by sensitivity.
    pub bits: BitsChoice,
    /// Standard errors a logit-adjustment setting's calibration gain over
    /// `τ = 1` must clear ([`logit::EVIDENCE_Z`]; 0 takes the best
    /// calibration score, the rule before it overfitted thin tails).
    pub logit_evidence: f64,
}

/// One input domain as calibrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainSummary {
    /// Domain id.
    pub id: u32,
    /// Calibration samples from it.
    pub samples: usize,
    /// Mean |table(c) − c| over the codes its samples used: how far it had
    /// to be moved.
    pub mean_code_shift: f64,
}

/// Every choice EmaQ-LT made, stored in the artifact's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmaqSummary {
    /// Calibration samples per class id (empty without labels).
    pub class_counts: BTreeMap<i64, usize>,
    /// The reference domain (`None` without domains).
    pub reference_domain: Option<u32>,
    /// Per-domain alignment figures.
    pub domains: Vec<DomainSummary>,
    /// Weight percentile of the balanced ranges.
    pub percentile: f64,
    /// Every activation whose balanced and full ranges disagreed.
    pub ranges: Vec<RangeChoice>,
    /// Each Conv/FC layer's weight width (and, for `--bits mixed`, its
    /// measured sensitivity).
    #[serde(default)]
    pub layers: Vec<mixed::LayerBits>,
    /// Balanced output error (vs float) with min/max ranges.
    pub output_error_minmax: f64,
    /// Balanced output error with the chosen ranges.
    pub output_error_chosen: f64,
    /// The logit adjustment (`None`: no labels, or the fit settled on no
    /// adjustment — τ = 0, or offsets that all round to 0).
    pub logit_adjustment: Option<LogitFit>,
}

/// Quantizes `graph` with EmaQ-LT on `samples` (storage layout).
pub fn quantize_emaq(
    graph: &Graph,
    samples: &[Vec<f32>],
    inputs: &EmaqInputs,
    source: &str,
) -> Result<Vec<u8>> {
    let n = samples.len();
    ensure!(n > 0, "the calibration set is empty");
    for (what, len) in [
        ("labels", inputs.labels.as_ref().map(Vec::len)),
        ("domains", inputs.domains.as_ref().map(Vec::len)),
    ] {
        if let Some(len) = len {
            ensure!(len == n, "{len} {what} for {n} calibration samples");
        }
    }
    // 1. Input range over every domain, then per-domain projection.
    let mut input_range = MinMax::default();
    samples.iter().for_each(|s| input_range.observe(s));
    let (lo, hi) = input_range.range();
    let q_in = activation_qparams(lo, hi);
    let raw: Vec<Vec<i8>> = samples
        .iter()
        .map(|s| s.iter().map(|&x| quantize_value(x, q_in)).collect())
        .collect();
    let alignment = inputs
        .domains
        .as_deref()
        .map(|d| Alignment::fit(&raw, d, inputs.reference_domain))
        .transpose()?;
    let codes: Vec<Vec<i8>> = match (&alignment, &inputs.domains) {
        (Some(a), Some(d)) => raw
            .iter()
            .zip(d)
            .map(|(s, &d)| s.iter().map(|&c| a.map(d, c)).collect())
            .collect(),
        _ => raw,
    };
    let aligned: Vec<Vec<f32>> = codes
        .iter()
        .map(|s| s.iter().map(|&c| dequantize_value(c, q_in)).collect())
        .collect();

    // 2. Full and class/domain-balanced ranges of every tensor.
    let weights = balance::sample_weights(inputs.labels.as_deref(), inputs.domains.as_deref(), n);
    let FirstPass {
        mut minmax,
        teacher,
        means,
    } = first_pass(graph, &aligned)?;
    minmax[graph.input] = (lo, hi);
    let mut balanced = observe_balanced(graph, &aligned, &weights, &minmax, inputs.percentile)?;
    balanced[graph.input] = (lo, hi);

    // 3. Sensitivity-aware aggregation: weight widths, then ranges.
    let mut yard = Yardstick::new(graph, codes, teacher, weights, means);
    let (weight_bits, layers) = match inputs.bits {
        BitsChoice::Uniform(b) => (b.uniform(graph), mixed::uniform(graph, b)),
        BitsChoice::Mixed { flash_budget } => mixed::allocate(&yard, &minmax, flash_budget)?,
    };
    yard.weight_bits = weight_bits;
    let free = graph
        .nodes
        .iter()
        .filter(|node| forced_qparams(&node.op).is_none())
        .map(|node| node.output);
    let candidates = search::disagreeing(free, &minmax, &balanced);
    let search::Aggregated {
        ranges,
        choices,
        error_minmax,
        error_chosen,
    } = search::aggregate(&yard, &minmax, &balanced, &candidates)?;

    // 4. Build, fit the logit adjustment on the built model, attach sections.
    let mut summary = EmaqSummary {
        class_counts: inputs
            .labels
            .iter()
            .flatten()
            .fold(BTreeMap::new(), |mut m, &l| {
                *m.entry(l).or_insert(0) += 1;
                m
            }),
        reference_domain: alignment.as_ref().map(|_| inputs.reference_domain),
        domains: alignment
            .as_ref()
            .map(|a| a.summary.clone())
            .unwrap_or_default(),
        percentile: inputs.percentile,
        ranges: choices,
        layers,
        output_error_minmax: error_minmax,
        output_error_chosen: error_chosen,
        logit_adjustment: None,
    };
    let meta = |summary: &EmaqSummary| CalibrationMeta {
        method: "emaq-lt".into(),
        percentile: Some(inputs.percentile),
        samples: n,
        emaq: Some(summary.clone()),
    };
    let means = yard.means_for(&yard.weight_bits);
    let built = build(
        graph,
        &ranges,
        &yard.weight_bits,
        &means,
        meta(&summary),
        source,
    )?;
    let logits = logits_record(graph, &built.records)?;
    let fit = match &inputs.labels {
        Some(labels) => fit_logits(
            &built.bytes,
            logits,
            &yard.codes,
            labels,
            inputs.prior.as_deref(),
            inputs.logit_evidence,
        )?,
        None => None,
    };
    // The fit joins the summary in the metadata; the graph stays as built.
    summary.logit_adjustment = fit.clone();
    let mut full = HostModel::from_bytes(&built.bytes)?.meta;
    full.calibration = meta(&summary);
    let mut bytes = with_section(&built.bytes, SECTION_META, &serde_json::to_vec(&full)?)?;
    if let Some(a) = &alignment {
        let body = input_align_body(&a.tables, inputs.reference_domain, &a.reference_cdf)?;
        bytes = with_section(&bytes, SECTION_INPUT_ALIGN, &body)?;
    }
    if let Some(fit) = &fit {
        let body = logit_adjust_body(logits, fit.margin, &fit.offsets)?;
        bytes = with_section(&bytes, SECTION_LOGIT_ADJUST, &body)?;
    }
    let guards = guards::measure(&bytes, &aligned)?;
    with_guards(&bytes, &guards)
}

/// The record of the logits: the model output, or the input of a final
/// Softmax/LogSoftmax.
fn logits_record(graph: &Graph, records: &[Option<u16>]) -> Result<u16> {
    let producer = graph.nodes.iter().find(|n| n.output == graph.output);
    let tensor = match producer {
        Some(node) if matches!(node.op, Op::Softmax | Op::LogSoftmax) => node.inputs[0],
        _ => graph.output,
    };
    records.get(tensor).copied().flatten().with_context(|| {
        format!(
            "logits tensor '{}' has no record",
            graph.tensors[tensor].name
        )
    })
}

/// One tensor's float range.
type Range = (f32, f32);

/// What one float pass over the aligned calibration set measures.
struct FirstPass {
    /// Full observed range of every tensor.
    minmax: Vec<Range>,
    /// The float outputs (the yardstick's reference).
    teacher: Vec<Vec<f32>>,
    /// Every Conv/FC node's input-channel means (int4 bias correction).
    means: Vec<Option<Vec<f64>>>,
}

fn first_pass(graph: &Graph, aligned: &[Vec<f32>]) -> Result<FirstPass> {
    let mut minmax = vec![MinMax::default(); graph.tensors.len()];
    let mut teacher = Vec::with_capacity(aligned.len());
    let mut means = InputMeans::new(graph, &WeightBits::Int4.uniform(graph));
    let bar = super::calibrate::progress(aligned.len(), "calibrating", "samples");
    for sample in aligned {
        let values = float_exec::execute(graph, sample)?;
        for (observer, v) in minmax.iter_mut().zip(&values) {
            observer.observe(v);
        }
        means.observe(graph, &values);
        teacher.push(values[graph.output].clone());
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(FirstPass {
        minmax: minmax.iter().map(MinMax::range).collect(),
        teacher,
        means: means.finish(),
    })
}

/// Balanced percentile range of every tensor.
fn observe_balanced(
    graph: &Graph,
    aligned: &[Vec<f32>],
    weights: &[f64],
    minmax: &[(f32, f32)],
    percentile: f64,
) -> Result<Vec<(f32, f32)>> {
    let mut histograms: Vec<WeightedHistogram> =
        minmax.iter().map(|&r| WeightedHistogram::new(r)).collect();
    let bar = super::calibrate::progress(aligned.len(), "balancing", "samples");
    for (sample, &w) in aligned.iter().zip(weights) {
        for (h, v) in histograms
            .iter_mut()
            .zip(float_exec::execute(graph, sample)?)
        {
            h.observe(&v, w);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(histograms
        .iter()
        .map(|h| h.percentile_range(percentile))
        .collect())
}

/// The fitted per-domain tables.
struct Alignment {
    tables: Vec<[i8; 256]>,
    reference_cdf: [u16; 256],
    summary: Vec<DomainSummary>,
}

impl Alignment {
    fn fit(codes: &[Vec<i8>], domains: &[u32], reference: u32) -> Result<Self> {
        let count = domains.iter().max().map_or(0, |&d| d as usize + 1);
        ensure!(
            (reference as usize) < count,
            "the reference domain {reference} has no calibration samples"
        );
        let mut histograms = vec![[0u64; 256]; count];
        let mut samples = vec![0usize; count];
        for (s, &d) in codes.iter().zip(domains) {
            let h = align::histogram(s.iter());
            histograms[d as usize]
                .iter_mut()
                .zip(h)
                .for_each(|(a, b)| *a += b);
            samples[d as usize] += 1;
        }
        if let Some(empty) = samples.iter().position(|&s| s == 0) {
            bail!(
                "domain {empty} has no calibration samples (ids must run 0..{count} without gaps)"
            );
        }
        let r = &histograms[reference as usize];
        let tables: Vec<[i8; 256]> = histograms
            .iter()
            .enumerate()
            .map(|(d, h)| {
                if d == reference as usize {
                    Ok(align::identity())
                } else {
                    align::projection(h, r).with_context(|| format!("domain {d}"))
                }
            })
            .collect::<Result<_>>()?;
        let summary = histograms
            .iter()
            .zip(&tables)
            .enumerate()
            .map(|(d, (h, t))| {
                let used: f64 = h.iter().sum::<u64>() as f64;
                let moved: f64 = h
                    .iter()
                    .zip(t.iter().enumerate())
                    .map(|(&n, (c, &to))| n as f64 * (to as f64 - (c as f64 - 128.0)).abs())
                    .sum();
                DomainSummary {
                    id: d as u32,
                    samples: samples[d],
                    mean_code_shift: moved / used.max(1.0),
                }
            })
            .collect();
        Ok(Alignment {
            tables,
            reference_cdf: align::stored_cdf(r),
            summary,
        })
    }

    fn map(&self, domain: u32, code: i8) -> i8 {
        self.tables[domain as usize][(code as i32 + 128) as usize]
    }
}

/// Runs the built model over the aligned calibration codes, captures the
/// logits record right after the op that writes it, and fits the
/// adjustment. `None` when the best fit is "no adjustment".
fn fit_logits(
    artifact: &[u8],
    logits: u16,
    codes: &[Vec<i8>],
    labels: &[i64],
    prior: Option<&[f64]>,
    evidence: f64,
) -> Result<Option<LogitFit>> {
    let aligned = AlignedBytes::new(artifact);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = *model
        .artifact()
        .tensor(logits as usize)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let writer = (0..model.op_count())
        .rev()
        .find(|&i| model.op(i).is_ok_and(|op| op.record.output == logits))
        .context("no op writes the logits")?;
    let mut arena = vec![0u8; model.arena_size()];
    let span = record.offset as usize..(record.offset + record.len) as usize;
    let err = |e: sturdy_runtime::Error| anyhow::anyhow!("calibration run failed: {e}");
    let mut rows = Vec::with_capacity(codes.len());
    for c in codes {
        model.input_mut(&mut arena).map_err(err)?.copy_from_slice(c);
        for i in 0..=writer {
            model.invoke_op(i, &mut arena).map_err(err)?;
        }
        rows.push(
            arena[span.clone()]
                .iter()
                .map(|&b| b as i8)
                .collect::<Vec<i8>>(),
        );
    }
    let classes = rows.first().map_or(0, Vec::len);
    let prior = match prior {
        Some(p) => p.to_vec(),
        None => logit::prior_from_labels(labels, classes),
    };
    let scale = f32::from_bits(record.scale_bits);
    let fit = logit::fit(&rows, labels, &prior, scale, evidence)?;
    Ok((fit.tau > 0.0 && fit.margin > 0 && fit.offsets.iter().any(|&o| o != 0)).then_some(fit))
}
