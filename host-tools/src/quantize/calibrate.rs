//! Runs the float graph over the calibration set and measures every
//! activation's range with the chosen observer.

use super::observer::{Histogram, MinMax};
use crate::float_exec;
use crate::ir::Graph;
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};

/// How activation ranges are chosen from calibration data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RangeMethod {
    /// The full observed range: nothing is ever clipped.
    MinMax,
    /// Trim `100 − p` percent at each tail (e.g. 99.99).
    Percentile(f64),
}

/// A progress bar over `len` steps counted in `unit` (cleared when done).
pub(crate) fn progress(len: usize, message: &'static str, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(len as u64);
    let template = format!("{{msg:>12}} [{{bar:32}}] {{pos}}/{{len}} {unit} ({{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

/// Observed `(min, max)` of every tensor of `graph` (constants included,
/// unused) over `samples` (each in storage layout).
pub fn calibrate(
    graph: &Graph,
    samples: &[Vec<f32>],
    method: RangeMethod,
) -> Result<Vec<(f32, f32)>> {
    let mut minmax = vec![MinMax::default(); graph.tensors.len()];
    let bar = progress(samples.len(), "calibrating", "samples");
    for sample in samples {
        for (observer, values) in minmax.iter_mut().zip(float_exec::execute(graph, sample)?) {
            observer.observe(&values);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let ranges: Vec<(f32, f32)> = minmax.iter().map(MinMax::range).collect();
    let RangeMethod::Percentile(p) = method else {
        return Ok(ranges);
    };
    let mut histograms: Vec<Histogram> = ranges.iter().map(|&r| Histogram::new(r)).collect();
    let bar = progress(samples.len(), "percentiles", "samples");
    for sample in samples {
        for (histogram, values) in histograms
            .iter_mut()
            .zip(float_exec::execute(graph, sample)?)
        {
            histogram.observe(&values);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(histograms.iter().map(|h| h.percentile_range(p)).collect())
}
