//! The Fisher section: λ_max against the flip radius per sample, and the
//! per-layer parameter Fisher against the measured fault sensitivity.

use super::format::{bytes, opt_pct, signed};
use super::svg::{LinePlot, Series};
use super::table::{figure, section, table};
use crate::analyze::fisher::RADII;
use crate::analyze::report::Fisher;

/// The section: a scatter, its rank correlation, and the layer table.
pub fn fisher(f: &Fisher) -> String {
    let rho = |r: Option<f64>| {
        r.map_or("—".into(), |v| {
            format!("ρ = {}", signed(v, |a| format!("{a:.2}")))
        })
    };
    let beyond = f64::from(RADII[RADII.len() - 1]) + 1.0;
    let points: Vec<(f64, f64)> = f
        .lambda_max
        .iter()
        .zip(&f.flip_radius)
        .filter(|(l, _)| **l > 0.0)
        .map(|(&l, r)| (l, r.map_or(beyond, f64::from)))
        .collect();
    let flipped = f.flip_radius.iter().filter(|r| r.is_some()).count();
    let mut body = format!(
        "<p>{} samples: the spectral norm λ<sub>max</sub> of the input-space Fisher F(x) = Σ<sub>y</sub> p(y|x) ∇log p ∇log pᵀ (in 1/code², from the integer model's straight-through gradients) against the flip radius, the smallest ±ε box in which the counterexample search of <code>sturdy verify</code> finds a relabelled input ({} of them flipped within ±{} codes; the others are drawn at {}). Spearman {} — negative when the Fisher predicts fragility.</p>",
        f.samples,
        flipped,
        RADII[RADII.len() - 1],
        beyond,
        rho(f.spearman)
    );
    body.push_str(&figure(
        &LinePlot {
            title: "λ_max against flip radius".into(),
            x_label: "λ_max of the input-space Fisher (1/code², log)".into(),
            y_label: "flip radius (codes)".into(),
            x_log: true,
            series: vec![Series {
                name: "sample".into(),
                points,
                markers_only: true,
                ..Series::default()
            }],
            ..LinePlot::default()
        }
        .svg(),
        "One point per sample; points at the top were not flipped within the searched radii.",
    ));
    let rows: Vec<Vec<String>> = f
        .layers
        .iter()
        .map(|l| {
            vec![
                l.node.clone(),
                format!("{:.3e}", l.fisher),
                opt_pct(l.fault_sensitivity),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "layer",
            "diagonal Fisher (mean per weight)",
            "fault SDC (heatmap mean)",
        ],
        &rows,
        1,
    ));
    let layer_points: Vec<(f64, f64)> = f
        .layers
        .iter()
        .filter_map(|l| Some((l.fisher, l.fault_sensitivity?)))
        .filter(|(x, _)| *x > 0.0)
        .collect();
    if !layer_points.is_empty() {
        body.push_str(&figure(
            &LinePlot {
                title: "layer Fisher against fault sensitivity".into(),
                x_label: "diagonal Fisher, mean per weight (log)".into(),
                y_label: "fault SDC rate".into(),
                x_log: true,
                series: vec![Series {
                    name: "layer".into(),
                    points: layer_points,
                    markers_only: true,
                    ..Series::default()
                }],
                ..LinePlot::default()
            }
            .svg(),
            "One point per Conv/FC layer: the Fisher from gradients, the SDC rate measured by flipping its weight bits.",
        ));
    }
    if !f.int4.is_empty() {
        let rows: Vec<Vec<String>> = f
            .int4
            .iter()
            .map(|t| {
                vec![
                    t.ranking.clone(),
                    if t.layers.is_empty() {
                        "—".into()
                    } else {
                        t.layers.join(", ")
                    },
                    bytes(t.flash_bytes),
                    opt_pct(t.accuracy),
                ]
            })
            .collect();
        body.push_str("<p>Which ranking should pick the int4 layers: half of them (the least sensitive half by each ranking, or the largest) stored in int4, re-quantized and measured.</p>");
        body.push_str(&table(
            &["int4 layers chosen by", "layers", "flash", "accuracy"],
            &rows,
            2,
        ));
    }
    body.push_str(&format!(
        "<p class=\"note\">The diagonal parameter Fisher E(∂ log p/∂w)² is sturdy's adaptation (the paper's Fisher is over inputs); its rank correlation with the measured per-layer fault sensitivity over these layers: {}.</p>",
        rho(f.layer_spearman)
    ));
    section(
        "fisher",
        "Fisher information",
        "Points falling to the right and down mean the Fisher spots the samples a small input change flips.",
        &body,
    )
}
