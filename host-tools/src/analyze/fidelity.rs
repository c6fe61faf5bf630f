//! Section 2: how faithful the integer model is to the float one — scores,
//! confusion, per-class and per-domain accuracy, output error, and the
//! error of every op's output against the float graph's same tensor.

use super::batch::Batch;
use super::report::{ClassScore, DomainScore, ErrorMetrics, Fidelity, LayerError, Scores};
use super::tape::{real, Tape};
use crate::float_exec::{execute, to_storage};
use crate::host_model::HostModel;
use crate::ir::Graph;
use crate::metrics::{self, argmax};
use crate::reference::TractReference;
use anyhow::{anyhow, Result};
use indicatif::ProgressBar;
use rayon::prelude::*;

/// Sums from which the error figures of one tensor pair follow.
#[derive(Debug, Clone, Copy, Default)]
pub struct ErrorSums {
    n: f64,
    abs: f64,
    sq: f64,
    ref_sq: f64,
    test_sq: f64,
    dot: f64,
}

impl ErrorSums {
    /// Adds the elements of `test` against `reference`.
    pub fn add(&mut self, test: &[f32], reference: &[f32]) {
        for (&t, &r) in test.iter().zip(reference) {
            let (t, r) = (f64::from(t), f64::from(r));
            self.n += 1.0;
            self.abs += (t - r).abs();
            self.sq += (t - r).powi(2);
            self.ref_sq += r * r;
            self.test_sq += t * t;
            self.dot += t * r;
        }
    }

    /// Merges two partial sums.
    pub fn merge(mut self, o: ErrorSums) -> ErrorSums {
        self.n += o.n;
        self.abs += o.abs;
        self.sq += o.sq;
        self.ref_sq += o.ref_sq;
        self.test_sq += o.test_sq;
        self.dot += o.dot;
        self
    }

    /// RMSE, MAE, L2 relative error, cosine and SQNR (dB; +∞ capped at
    /// 200 dB for an exact match).
    pub fn metrics(&self) -> ErrorMetrics {
        let n = self.n.max(1.0);
        let norm = (self.ref_sq * self.test_sq).sqrt();
        ErrorMetrics {
            rmse: (self.sq / n).sqrt(),
            mae: self.abs / n,
            l2_relative: if self.ref_sq > 0.0 {
                (self.sq / self.ref_sq).sqrt()
            } else {
                0.0
            },
            cosine: if norm > 0.0 { self.dot / norm } else { 1.0 },
            sqnr_db: if self.sq > 0.0 {
                (10.0 * (self.ref_sq / self.sq).log10()).min(200.0)
            } else {
                200.0
            },
        }
    }
}

/// The float side: tract for the outputs, the imported graph for the
/// per-op tensors.
pub struct FloatModel<'a> {
    /// The ONNX model under tract (the independent reference).
    pub tract: &'a TractReference,
    /// The imported float graph (storage layout).
    pub graph: &'a Graph,
}

/// Measures fidelity on `samples` (float, ONNX layout) and their quantized
/// `batch`; per-op errors use the first `layer_samples`.
pub fn run(
    host: &HostModel,
    float: Option<&FloatModel<'_>>,
    samples: &[Vec<f32>],
    batch: &Batch,
    layer_samples: usize,
    bar: &ProgressBar,
) -> Result<Fidelity> {
    let int8: Vec<Vec<f32>> = batch
        .outputs(host.bytes())?
        .iter()
        .map(|o| host.dequantize_output(o))
        .collect();
    bar.inc(1);
    let float_out: Option<Vec<Vec<f32>>> = float
        .map(|f| {
            samples
                .par_iter()
                .enumerate()
                .map(|(i, x)| f.tract.run(x).map_err(|e| anyhow!("sample {i}: {e}")))
                .collect::<Result<Vec<_>>>()
        })
        .transpose()?;
    bar.inc(1);
    let reconstruction = int8.first().map(Vec::len) == samples.first().map(Vec::len);
    let mut fid = Fidelity {
        task: if reconstruction {
            "reconstruction"
        } else {
            "classification"
        }
        .into(),
        int8: scores(&int8, samples, batch.labels.as_deref(), reconstruction),
        float: float_out
            .as_ref()
            .map(|f| scores(f, samples, batch.labels.as_deref(), reconstruction)),
        ..Fidelity::default()
    };
    if let Some(f) = &float_out {
        let mut sums = ErrorSums::default();
        for (t, r) in int8.iter().zip(f) {
            sums.add(t, r);
        }
        fid.output_error = Some(sums.metrics());
        if !reconstruction {
            let agree = int8
                .iter()
                .zip(f)
                .filter(|(a, b)| argmax(a) == argmax(b))
                .count();
            fid.top1_agreement = Some(agree as f64 / int8.len().max(1) as f64);
        }
    }
    if !reconstruction {
        if let Some(labels) = &batch.labels {
            confusion(
                &mut fid,
                &int8,
                labels,
                host.meta.output.onnx_shape.iter().product(),
            );
            if let Some(domains) = &batch.domains {
                fid.per_domain = per_domain(&int8, float_out.as_deref(), labels, domains);
            }
        }
    }
    if let Some(f) = float {
        fid.layers = layer_errors(host, f.graph, samples, batch, layer_samples)?;
    }
    bar.inc(1);
    Ok(fid)
}

fn scores(
    outputs: &[Vec<f32>],
    inputs: &[Vec<f32>],
    labels: Option<&[i64]>,
    reconstruction: bool,
) -> Scores {
    if reconstruction {
        let mse: f64 = outputs
            .iter()
            .zip(inputs)
            .map(|(y, x)| metrics::mean_squared_error(x, y))
            .sum::<f64>()
            / outputs.len().max(1) as f64;
        return Scores {
            mean_mse: Some(mse),
            ..Scores::default()
        };
    }
    let Some(labels) = labels else {
        return Scores::default();
    };
    let predictions: Vec<i64> = outputs.iter().map(|o| argmax(o) as i64).collect();
    let c = metrics::classification(&predictions, labels);
    Scores {
        accuracy: Some(c.accuracy),
        balanced_accuracy: Some(c.balanced_accuracy),
        mean_mse: None,
    }
}

fn confusion(fid: &mut Fidelity, outputs: &[Vec<f32>], labels: &[i64], classes: usize) {
    let mut m = vec![vec![0u64; classes]; classes];
    for (o, &l) in outputs.iter().zip(labels) {
        if let (Ok(l), p) = (usize::try_from(l), argmax(o)) {
            if l < classes && p < classes {
                m[l][p] += 1;
            }
        }
    }
    fid.classes = (0..classes as i64).collect();
    fid.per_class = (0..classes)
        .map(|c| {
            let count: u64 = m[c].iter().sum();
            let predicted: u64 = m.iter().map(|row| row[c]).sum();
            let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
            ClassScore {
                class: c as i64,
                count,
                precision: ratio(m[c][c], predicted),
                recall: ratio(m[c][c], count),
            }
        })
        .collect();
    fid.confusion = m;
}

fn per_domain(
    int8: &[Vec<f32>],
    float: Option<&[Vec<f32>]>,
    labels: &[i64],
    domains: &[u32],
) -> Vec<DomainScore> {
    let ids: std::collections::BTreeSet<u32> = domains.iter().copied().collect();
    let correct = |outputs: &[Vec<f32>], id: u32| -> (u64, u64) {
        outputs
            .iter()
            .zip(labels)
            .zip(domains)
            .filter(|(_, &d)| d == id)
            .fold((0, 0), |(c, n), ((o, &l), _)| {
                (c + u64::from(argmax(o) as i64 == l), n + 1)
            })
    };
    ids.into_iter()
        .map(|id| {
            let (c, n) = correct(int8, id);
            DomainScore {
                domain: id,
                samples: n,
                float_accuracy: float.map(|f| {
                    let (c, n) = correct(f, id);
                    c as f64 / n.max(1) as f64
                }),
                int8_accuracy: c as f64 / n.max(1) as f64,
            }
        })
        .collect()
}

/// Every op whose ONNX node the float graph also has, with an output of
/// the same size: error of the dequantized int8 tensor against the float one.
fn layer_errors(
    host: &HostModel,
    graph: &Graph,
    samples: &[Vec<f32>],
    batch: &Batch,
    limit: usize,
) -> Result<Vec<LayerError>> {
    let model = host.model()?;
    let tensors = model.artifact().tensors();
    let pairs: Vec<(usize, usize)> = host
        .meta
        .ops
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let node = graph.nodes.iter().find(|n| n.name == m.node)?;
            let out = model.artifact().ops()[i].output as usize;
            let float_len: usize = graph.tensors[node.output].shape.iter().product();
            (float_len == tensors[out].len as usize).then_some((i, node.output))
        })
        .collect();
    let n = limit.min(samples.len());
    let sums: Vec<ErrorSums> = (0..n)
        .into_par_iter()
        .map(|s| -> Result<Vec<ErrorSums>> {
            let stored = to_storage(graph.input_layout, &graph.onnx_input_shape, &samples[s]);
            let values = execute(graph, &stored)?;
            let domain = batch.domains.as_ref().map(|d| d[s]);
            let tape = Tape::record(&model, &batch.inputs[s], domain)?;
            Ok(pairs
                .iter()
                .map(|&(op, float_t)| {
                    let out = model.artifact().ops()[op].output as usize;
                    let r = &tensors[out];
                    let deq: Vec<f32> = tape.get(out).iter().map(|&q| real(r, q)).collect();
                    let mut e = ErrorSums::default();
                    e.add(&deq, &values[float_t]);
                    e
                })
                .collect())
        })
        .try_reduce(
            || vec![ErrorSums::default(); pairs.len()],
            |a, b| Ok(a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect()),
        )?;
    Ok(pairs
        .iter()
        .zip(sums)
        .map(|(&(op, _), e)| LayerError {
            index: op,
            node: host.meta.ops[op].node.clone(),
            kind: host.meta.ops[op].kind.clone(),
            error: e.metrics(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_metrics_by_hand() {
        let mut e = ErrorSums::default();
        // error (0.1, -0.1) on reference (1, 1): sq 0.02, ref 2.
        e.add(&[1.1, 0.9], &[1.0, 1.0]);
        let m = e.metrics();
        assert!((m.rmse - 0.1).abs() < 1e-6);
        assert!((m.mae - 0.1).abs() < 1e-6);
        assert!((m.l2_relative - 0.1).abs() < 1e-6);
        assert!((m.sqnr_db - 20.0).abs() < 1e-4);
        assert!((m.cosine - 2.0 / (2.0f64 * 2.02).sqrt()).abs() < 1e-6);
    }
}
