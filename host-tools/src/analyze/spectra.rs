//! The spectra section: every dense Conv/FC layer's eigenvalue spectrum
//! against its Marchenko–Pastur fit, the rank its spikes advise, and that
//! advice applied — the layer factorized at the advised rank in the float
//! graph, re-quantized through the normal path, measured.

use super::report::{LayerSpectrum, Spectra};
use crate::host_model::HostModel;
use crate::ir::Graph;
use crate::npy::Samples;
use crate::quantize::{quantize, RangeMethod};
use crate::spectral::factor::{factorize, layers, predicted_saving};
use crate::spectral::mp::decompose;
use crate::verify::bounds::argmax;
use anyhow::{Context, Result};
use rayon::prelude::*;

/// Runs the section: `graph` is the float model, `calib` its calibration
/// samples in storage layout (the artifact's own), `set`/`labels` the
/// evaluation samples (the first `samples` are scored).
pub fn run(
    graph: &Graph,
    calib: &[Vec<f32>],
    set: &Samples,
    labels: Option<&[i64]>,
    samples: usize,
) -> Result<Spectra> {
    let n = samples.min(set.samples.len());
    let build = |g: &Graph| quantize(g, calib, RangeMethod::MinMax, "spectra");
    let base = build(graph).context("quantizing the unchanged model")?;
    let base_labels = predict(&base, set, n)?;
    let accuracy = |p: &[usize]| {
        labels.map(|l| {
            p.iter().zip(l).filter(|(&a, &b)| a as i64 == b).count() as f64 / n.max(1) as f64
        })
    };
    let matrices = layers(graph);
    let bar = super::progress::bar(matrices.len() as u64, "spectra");
    let mut out = Vec::new();
    for layer in matrices {
        let d = decompose(&layer.weights, layer.out, layer.inner);
        let s = &d.spectrum;
        // The spikes are the signal rank; a spectrum all inside the bulk
        // (no spikes) separates no signal from noise: keep the layer whole.
        let rank = if s.spikes == 0 { s.m } else { s.spikes };
        let saving = predicted_saving(layer.out, layer.inner, rank);
        let mut row = LayerSpectrum {
            node: layer.name.clone(),
            kind: layer.kind.into(),
            m: s.m,
            n: s.n,
            sigma2: s.sigma2,
            edge: s.edge,
            spikes: s.spikes,
            stable_rank: s.stable_rank,
            alpha: s.alpha,
            advised_rank: rank,
            predicted_saving: saving,
            eigenvalues: s.eigenvalues.clone(),
            ..LayerSpectrum::default()
        };
        if saving > 0 {
            let g = factorize(graph, &layer, &d, rank)?;
            let bytes =
                build(&g).with_context(|| format!("quantizing {} at rank {rank}", layer.name))?;
            let p = predict(&bytes, set, n)?;
            row.flash_bytes = Some(bytes.len() as u64);
            row.accuracy = accuracy(&p);
            row.agreement = Some(
                p.iter().zip(&base_labels).filter(|(a, b)| a == b).count() as f64 / n.max(1) as f64,
            );
        }
        out.push(row);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(Spectra {
        samples: n,
        flash_bytes: base.len() as u64,
        accuracy: accuracy(&base_labels),
        layers: out,
    })
}

/// The runtime's label of each of the first `n` samples under artifact `bytes`.
pub fn predict(bytes: &[u8], set: &Samples, n: usize) -> Result<Vec<usize>> {
    let host = HostModel::from_bytes(bytes)?;
    set.samples[..n]
        .par_iter()
        .map(|s| Ok(argmax(&host.infer_quantized(&host.quantize_input(s))?)))
        .collect()
}
