//! Which layer ranking should choose the layers stored in int4: the
//! measured answer. Half of the Conv/FC layers (the least sensitive half
//! by each ranking) go to int4, the model is re-quantized the normal way
//! and its accuracy measured — next to all-int8, all-int4 and the naive
//! choice of the largest layers (most flash saved).

use super::report::{Int4Trial, LayerFisher};
use super::spectra::predict;
use crate::ir::{Graph, Op};
use crate::npy::Samples;
use crate::quantize::{quantize_with, QuantizeOptions, RangeMethod, WeightBits};
use anyhow::Result;

/// One trial per ranking; `layers` carry the Fisher and (when the faults
/// section ran) the measured sensitivity; the first `samples` of `set`
/// are scored against `labels`.
pub fn trials(
    graph: &Graph,
    calib: &[Vec<f32>],
    set: &Samples,
    labels: Option<&[i64]>,
    samples: usize,
    layers: &[LayerFisher],
) -> Result<Vec<Int4Trial>> {
    let n = samples.min(set.samples.len());
    let size = |name: &str| {
        graph
            .nodes
            .iter()
            .find(|node| node.name == name)
            .map_or(0, |node| match &node.op {
                Op::Conv(c) => c.weights.len(),
                Op::FullyConnected(f) => f.weights.len(),
                _ => 0,
            })
    };
    let half = (layers.len() / 2).max(1);
    let least_first = |key: &dyn Fn(&LayerFisher) -> f64| -> Vec<String> {
        let mut v: Vec<&LayerFisher> = layers.iter().collect();
        v.sort_by(|a, b| key(a).total_cmp(&key(b)));
        v.iter().take(half).map(|l| l.node.clone()).collect()
    };
    let mut choices = vec![
        ("all int8".to_string(), Vec::new()),
        ("Fisher: least half".to_string(), least_first(&|l| l.fisher)),
    ];
    if layers.iter().all(|l| l.fault_sensitivity.is_some()) {
        choices.push((
            "fault SDC: least half".into(),
            least_first(&|l| l.fault_sensitivity.unwrap_or(0.0)),
        ));
    }
    choices.push((
        "largest half".into(),
        least_first(&|l| -(size(&l.node) as f64)),
    ));
    choices.push((
        "all int4".into(),
        layers.iter().map(|l| l.node.clone()).collect(),
    ));
    choices
        .into_iter()
        .map(|(ranking, chosen)| {
            let bits: Vec<WeightBits> = graph
                .nodes
                .iter()
                .map(|node| {
                    if chosen.contains(&node.name) {
                        WeightBits::Int4
                    } else {
                        WeightBits::Int8
                    }
                })
                .collect();
            let options = QuantizeOptions {
                method: RangeMethod::MinMax,
                weight_bits: &bits,
            };
            let bytes = quantize_with(graph, calib, &options, "int4 choice")?;
            let p = predict(&bytes, set, n)?;
            let accuracy = labels.map(|l| {
                p.iter().zip(l).filter(|(&a, &b)| a as i64 == b).count() as f64 / n.max(1) as f64
            });
            Ok(Int4Trial {
                ranking,
                layers: chosen,
                flash_bytes: bytes.len() as u64,
                accuracy,
            })
        })
        .collect()
}
