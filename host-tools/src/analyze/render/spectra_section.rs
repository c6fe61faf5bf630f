//! The spectra section: eigenvalue densities against their MP fits, and
//! the rank advice with what applying it really gave.

use super::format::{bytes, opt_pct, signed};
use super::svg::{LinePlot, Series};
use super::table::{figure, section, table};
use crate::analyze::report::{LayerSpectrum, Spectra};
use crate::spectral::mp::density;

/// Histogram bins of the empirical density.
const BINS: usize = 24;

/// The section: one density plot per layer, then the advice table.
pub fn spectra(s: &Spectra) -> String {
    let mut body = format!(
        "<p>Each dense Conv/FC layer as its matrix (M ≤ N its sides): the eigenvalues of W Wᵀ/N against the Marchenko–Pastur bulk fitted to them; the spikes above the bulk's edge λ₊ are what training put there, their count the advised rank (no spikes: the layer stays whole). The advice is applied, one layer at a time: the layer becomes a rank-r pair (truncated SVD), the model is re-quantized the normal way and its flash and accuracy on {} samples measured (unchanged model: {}, {}).</p>",
        s.samples,
        bytes(s.flash_bytes),
        opt_pct(s.accuracy)
    );
    for l in &s.layers {
        body.push_str(&figure(
            &plot(l),
            &format!(
                "{}: {} eigenvalues, {} above λ₊ = {:.3e}.",
                l.node, l.m, l.spikes, l.edge
            ),
        ));
    }
    let rows: Vec<Vec<String>> = s
        .layers
        .iter()
        .map(|l| {
            vec![
                l.node.clone(),
                format!("{} {}×{}", l.kind, l.m, l.n),
                format!("{:.2e}", l.sigma2),
                l.spikes.to_string(),
                format!("{:.1}", l.stable_rank),
                l.alpha.map_or("—".into(), |a| format!("{a:.2}")),
                l.advised_rank.to_string(),
                signed(l.predicted_saving as f64, |b| bytes(b as u64)),
                l.flash_bytes.map_or("— (no saving)".into(), |b| {
                    signed(s.flash_bytes as f64 - b as f64, |d| bytes(d as u64))
                }),
                opt_pct(l.accuracy),
                opt_pct(l.agreement),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "layer",
            "matrix",
            "σ²",
            "spikes",
            "stable rank",
            "α",
            "rank",
            "saving (predicted)",
            "saving (measured)",
            "accuracy",
            "agreement",
        ],
        &rows,
        2,
    ));
    body.push_str("<p class=\"note\">α: power-law tail exponent (Hill estimator over the upper half), only for ≥ 50 eigenvalues. Predicted saving: the int8 weights dropped, less 12 B per new channel and 272 B of records for the second layer; measured: the re-quantized artifact's flash against the unchanged one's. Agreement: top-1 labels equal to the unchanged int8 model's.</p>");
    section(
        "spectra",
        "Layer spectra and rank advice",
        "A layer whose spectrum is mostly bulk with few spikes can be factorized; the measured columns say whether it really pays.",
        &body,
    )
}

/// The empirical density (histogram) and the fitted MP density.
fn plot(l: &LayerSpectrum) -> String {
    let top = l
        .eigenvalues
        .last()
        .copied()
        .unwrap_or(0.0)
        .max(l.edge * 1.05)
        .max(f64::MIN_POSITIVE);
    let width = top / BINS as f64;
    let total = l.eigenvalues.len().max(1) as f64;
    let hist: Vec<(f64, f64)> = (0..BINS)
        .map(|b| {
            let (lo, hi) = (b as f64 * width, (b + 1) as f64 * width);
            let c = l
                .eigenvalues
                .iter()
                .filter(|&&v| v >= lo && (v < hi || b + 1 == BINS))
                .count();
            (lo + width / 2.0, c as f64 / total / width)
        })
        .collect();
    let q = l.m as f64 / l.n.max(1) as f64;
    let mp: Vec<(f64, f64)> = (0..=200)
        .map(|i| {
            let x = top * i as f64 / 200.0;
            (x, density(x, l.sigma2, q))
        })
        .collect();
    LinePlot {
        title: format!("{} spectrum", l.node),
        x_label: "eigenvalue of W Wᵀ / N".into(),
        y_label: "density".into(),
        series: vec![
            Series {
                name: "layer".into(),
                points: hist,
                ..Series::default()
            },
            Series {
                name: "MP fit".into(),
                points: mp,
                dashed: true,
                ..Series::default()
            },
        ],
        ..LinePlot::default()
    }
    .svg()
}
