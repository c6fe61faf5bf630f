//! Mixed int4/int8 weights by measured sensitivity (`--bits mixed`).
//!
//! Each Conv/FC layer's sensitivity is the rise of the balanced output
//! error (see [`super::search`]) when that layer alone stores int4
//! weights. Layers then move to int4 in order of sensitivity per byte
//! saved — the cheapest accuracy first — until the Conv/FC weights fit
//! the flash budget.

use super::search::Yardstick;
use crate::ir::{Graph, Op};
use crate::quantize::calibrate::progress;
use crate::quantize::WeightBits;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// One Conv/FC layer's stored width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerBits {
    /// ONNX node name.
    pub node: String,
    /// 4 or 8.
    pub bits: u32,
    /// Weight bytes at int8.
    pub int8_bytes: usize,
    /// Rise of the balanced output error with this layer alone at int4
    /// (`None` when not measured: uniform widths).
    pub sensitivity: Option<f64>,
}

/// Weight elements of each Conv/FC node (`None` for other nodes).
fn weight_elements(graph: &Graph) -> Vec<Option<usize>> {
    graph
        .nodes
        .iter()
        .map(|n| match &n.op {
            Op::Conv(c) => Some(c.weights.len()),
            Op::FullyConnected(f) => Some(f.weights.len()),
            _ => None,
        })
        .collect()
}

fn bytes(elements: usize, bits: WeightBits) -> usize {
    match bits {
        WeightBits::Int8 => elements,
        WeightBits::Int4 => elements.div_ceil(2),
    }
}

/// The record of a uniform width.
pub fn uniform(graph: &Graph, bits: WeightBits) -> Vec<LayerBits> {
    graph
        .nodes
        .iter()
        .zip(weight_elements(graph))
        .filter_map(|(n, e)| {
            e.map(|e| LayerBits {
                node: n.name.clone(),
                bits: bits.bits(),
                int8_bytes: e,
                sensitivity: None,
            })
        })
        .collect()
}

/// Chooses a width per node so the Conv/FC weights take at most `budget`
/// bytes (default: ¾ of their int8 size), measuring on `yard` with
/// activation `ranges`.
pub fn allocate(
    yard: &Yardstick,
    ranges: &[(f32, f32)],
    budget: Option<usize>,
) -> Result<(Vec<WeightBits>, Vec<LayerBits>)> {
    let graph = yard.graph;
    let elements = weight_elements(graph);
    let layers: Vec<usize> = (0..graph.nodes.len())
        .filter(|&i| elements[i].is_some())
        .collect();
    let int8_total: usize = elements.iter().flatten().sum();
    let budget = budget.unwrap_or(int8_total * 3 / 4);
    let int4_total: usize = elements
        .iter()
        .flatten()
        .map(|&e| bytes(e, WeightBits::Int4))
        .sum();
    if budget < int4_total {
        bail!("--flash-budget {budget} B is below the Conv/FC weights at int4 ({int4_total} B; int8: {int8_total} B)");
    }
    let all8 = WeightBits::Int8.uniform(graph);
    let bar = progress(layers.len() + 1, "bit widths", "trials");
    let base = yard.loss_with(ranges, &all8)?;
    bar.inc(1);
    let mut sensitivity = vec![None; graph.nodes.len()];
    for &l in &layers {
        let mut trial = all8.clone();
        trial[l] = WeightBits::Int4;
        sensitivity[l] = Some(yard.loss_with(ranges, &trial)? - base);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let saved = |l: usize| {
        elements[l]
            .map_or(0, |e| e - bytes(e, WeightBits::Int4))
            .max(1) as f64
    };
    let mut order = layers.clone();
    order.sort_by(|&a, &b| {
        let cost = |l: usize| sensitivity[l].unwrap_or(0.0) / saved(l);
        cost(a).total_cmp(&cost(b))
    });
    let mut bits = all8;
    let mut total = int8_total;
    for l in order {
        if total <= budget {
            break;
        }
        bits[l] = WeightBits::Int4;
        total -= saved(l) as usize;
    }
    let records = layers
        .iter()
        .map(|&l| LayerBits {
            node: graph.nodes[l].name.clone(),
            bits: bits[l].bits(),
            int8_bytes: elements[l].unwrap_or(0),
            sensitivity: sensitivity[l],
        })
        .collect();
    Ok((bits, records))
}
