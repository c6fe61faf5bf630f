//! The host twin of the device's adaptive input stage: a stream of inputs
//! played in order through [`sturdy_runtime::DriftMonitor`] and the model,
//! exactly as the firmware does it, so both report the same outputs,
//! statistics and re-fits.

use crate::analyze::batch::argmax_i8;
use crate::host_model::HostModel;
use anyhow::{anyhow, Context, Result};
use sturdy_runtime::{DriftEvent, DriftMonitor, DriftStatus};

/// What the monitor said after one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriftRecord {
    /// The KS statistic × 65535.
    pub statistic: u32,
    /// The CUSUM sum after this sample.
    pub cusum: u32,
    /// Re-fit, rollback or nothing.
    pub event: DriftEvent,
}

/// A played stream: every output in order, the monitor's record per sample
/// and its final counters.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Output codes, one row per sample.
    pub outputs: Vec<Vec<i8>>,
    /// One record per sample.
    pub records: Vec<DriftRecord>,
    /// Counters after the last sample.
    pub status: DriftStatus,
}

/// Plays input `codes` (raw, as the sensor gives them) in order: each is
/// observed and mapped by the monitor, run (guarded if the model is set
/// so), and its output fed back. A stream is sequential by nature (each
/// sample sees the table the previous ones left), so it runs on one core;
/// `progress` shows a bar.
pub fn play_codes(model: &HostModel, codes: &[Vec<i8>], progress: bool) -> Result<Trace> {
    let bar = if progress {
        crate::analyze::progress::bar(codes.len() as u64, "adaptive stream")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let runtime = model.model()?;
    let input_len = runtime.input_len();
    let mut monitor = DriftMonitor::new(runtime.artifact(), input_len)
        .map_err(|e| anyhow!("drift monitor: {e}"))?;
    let mut trace = Trace {
        outputs: Vec::with_capacity(codes.len()),
        records: Vec::with_capacity(codes.len()),
        status: DriftStatus::default(),
    };
    for (i, input) in codes.iter().enumerate() {
        let mut input = input.clone();
        monitor.observe_input(&mut input);
        let output = model
            .infer_quantized(&input)
            .with_context(|| format!("stream sample {i}"))?;
        bar.inc(1);
        let event = monitor
            .observe_output(runtime.artifact(), &output)
            .map_err(|e| anyhow!("drift monitor: {e}"))?;
        let status = monitor.status();
        trace.records.push(DriftRecord {
            statistic: status.statistic,
            cusum: status.cusum,
            event,
        });
        trace.outputs.push(output);
    }
    bar.finish_and_clear();
    trace.status = monitor.status();
    Ok(trace)
}

/// The samples at which `event` happened.
pub fn events(trace: &Trace, event: DriftEvent) -> Vec<usize> {
    (trace.records.iter().enumerate())
        .filter(|(_, r)| r.event == event)
        .map(|(i, _)| i)
        .collect()
}

/// The accuracy of each third of a stream's `outputs` (top-1 of the
/// output codes against `labels`).
pub fn accuracy_by_third(outputs: &[Vec<i8>], labels: &[i64]) -> [f64; 3] {
    let n = outputs.len().min(labels.len());
    core::array::from_fn(|t| {
        let range = t * n / 3..(t + 1) * n / 3;
        let hits = range
            .clone()
            .filter(|&i| argmax_i8(&outputs[i]) == labels[i] as usize)
            .count();
        hits as f64 / range.len().max(1) as f64
    })
}

/// The trace as the run report's `drift` object: counters, the samples of
/// every re-fit and rollback, the statistic per sample (× 1/65535) and,
/// with labels, the accuracy of each third.
pub fn trace_json(trace: &Trace, labels: Option<&[i64]>) -> serde_json::Value {
    let unit = |x: u32| x as f64 / 65535.0;
    serde_json::json!({
        "samples": trace.status.samples,
        "refits": trace.status.refits,
        "rollbacks": trace.status.rollbacks,
        "first_alarm": trace.status.first_alarm,
        "last_statistic": unit(trace.status.statistic),
        "refit_at": events(trace, DriftEvent::Refit),
        "rollback_at": events(trace, DriftEvent::Rollback),
        "statistic": trace.records.iter().map(|r| unit(r.statistic)).collect::<Vec<_>>(),
        "accuracy_by_third": labels.map(|l| accuracy_by_third(&trace.outputs, l).to_vec()),
    })
}
