//! Drift monitoring on the host: fitting the device monitor's settings at
//! quantization time ([`attach`]) and playing a sample stream through the
//! very monitor the device runs ([`stream`]).

pub mod stream;

use crate::artifact_writer::{input_align_body, with_section};
use crate::host_model::HostModel;
use crate::quantize::emaq::align::{histogram, identity, stored_cdf};
use anyhow::{ensure, Context, Result};
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use sturdy_runtime::format::{
    DriftSettings, DRIFT_VERSION, MAX_DRIFT_MEMORY, SECTION_DRIFT, SECTION_INPUT_ALIGN,
};

/// Samples the monitor's histogram remembers (its half-life is about half this).
pub const HISTORY_SAMPLES: usize = 64;
/// Stationary replays of the calibration set the allowance is fitted on.
const REPLAYS: u64 = 16;
/// Samples in one replay.
const REPLAY_LEN: usize = 1000;
/// The allowance is this many times the largest statistic a replay shows.
const ALLOWANCE_FACTOR: f64 = 1.5;
/// The CUSUM threshold, in allowances.
const THRESHOLD_ALLOWANCES: u32 = 2;
/// Default bound on a re-fitted table's departure from the identity, in
/// codes: most of the int8 range (a sensor whose offset moved half its span
/// still maps back), never a wholesale remap.
pub const DEFAULT_MAX_SHIFT: u32 = 160;
/// Samples after a re-fit over which confidence is judged.
const WINDOW: u32 = 32;

/// The calibration inputs as the model sees them: quantized, and mapped
/// through their domain's alignment table when `domains` are given.
fn calibration_codes(
    model: &HostModel,
    samples: &[Vec<f32>],
    domains: Option<&[u32]>,
) -> Result<Vec<Vec<i8>>> {
    if let Some(d) = domains {
        ensure!(
            d.len() == samples.len(),
            "{} domain ids for {} calibration samples",
            d.len(),
            samples.len()
        );
    }
    let runtime = model.model()?;
    let align = runtime.artifact().input_align();
    (samples.iter().enumerate())
        .map(|(i, s)| {
            let mut c = model.quantize_input(s);
            if let (Some(a), Some(d)) = (align, domains) {
                a.apply(d[i], &mut c)
                    .map_err(|e| anyhow::anyhow!("calibration sample {i}: {e}"))?;
            }
            Ok(c)
        })
        .collect()
}

/// Settings of the monitor for a model whose inputs have `input_len` codes,
/// with the allowance left open (fitted by [`attach`]).
fn base_settings(input_len: usize, max_shift: u32) -> DriftSettings {
    let memory = (HISTORY_SAMPLES * input_len).min(MAX_DRIFT_MEMORY as usize);
    let stride = (HISTORY_SAMPLES * input_len).div_ceil(memory).max(1);
    DriftSettings {
        version: DRIFT_VERSION,
        memory: memory as u32,
        stride: stride as u32,
        warmup: HISTORY_SAMPLES as u32,
        allowance: u32::MAX,
        threshold: u32::MAX,
        max_shift,
        window: WINDOW,
        confidence_drop: 0,
        holdoff: 4 * HISTORY_SAMPLES as u32,
        reference_confidence: 0,
        reserved: 0,
    }
}

/// The artifact `bytes` with a DRIFT section, and an INPUT_ALIGN section
/// (one identity table, the reference CDF of the calibration inputs) when
/// it has none.
///
/// `samples` are the float calibration inputs; with `domains` (an EmaQ-LT
/// artifact with alignment tables) each is mapped through its domain's
/// table, so the monitor's reference is the reference domain. The allowance `k` is
/// `ALLOWANCE_FACTOR` × the largest KS statistic seen when the
/// calibration set is replayed as `REPLAYS` stationary streams (seeded
/// draws with replacement), so that a stream like the calibration data
/// keeps `S` at 0; the threshold is `THRESHOLD_ALLOWANCES` × `k`. A
/// re-fit is rolled back when the mean output margin falls by more than
/// half its level on the calibration set below both its level before the
/// re-fit and that calibration level (half, not less: chosen on four
/// long-tailed models of other architectures, where a quarter rolled back
/// good re-fits on a residual and a DS-CNN).
pub fn attach(
    bytes: &[u8],
    samples: &[Vec<f32>],
    domains: Option<&[u32]>,
    max_shift: u32,
) -> Result<Vec<u8>> {
    ensure!(
        !samples.is_empty(),
        "drift monitor: the calibration set is empty"
    );
    ensure!(
        max_shift <= 255,
        "the drift monitor's max shift must lie in 0..=255, got {max_shift}"
    );
    let mut bytes = bytes.to_vec();
    let model = HostModel::from_bytes(&bytes)?;
    let codes = calibration_codes(&model, samples, domains)?;
    if model.model()?.artifact().input_align().is_none() {
        let cdf = stored_cdf(&histogram(codes.iter().flatten()));
        let body = input_align_body(&[identity()], 0, &cdf)?;
        bytes = with_section(&bytes, SECTION_INPUT_ALIGN, &body)?;
    }
    let input_len = codes[0].len();
    let mut settings = base_settings(input_len, max_shift);
    let with = |s: &DriftSettings| with_section(&bytes, SECTION_DRIFT, bytemuck::bytes_of(s));
    let probe = HostModel::from_bytes(&with(&settings)?)?;
    let margins: Vec<i64> = codes
        .iter()
        .map(|c| {
            let out = probe.infer_quantized(c)?;
            Ok(sturdy_runtime::kernels::top_margin(&out).unwrap_or(0) as i64)
        })
        .collect::<Result<_>>()?;
    let mut worst = 0u32;
    for seed in 0..REPLAYS {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let replay: Vec<Vec<i8>> = (0..REPLAY_LEN)
            .map(|_| codes[(rng.next_u64() % codes.len() as u64) as usize].clone())
            .collect();
        let trace =
            stream::play_codes(&probe, &replay, false).context("replaying the calibration set")?;
        worst = trace
            .records
            .iter()
            .skip(settings.warmup as usize)
            .map(|r| r.statistic)
            .fold(worst, u32::max);
    }
    settings.allowance = ((worst.max(1) as f64) * ALLOWANCE_FACTOR).ceil() as u32;
    settings.threshold = THRESHOLD_ALLOWANCES * settings.allowance;
    let mean_margin = margins.iter().sum::<i64>() / margins.len() as i64;
    settings.confidence_drop = (mean_margin / 2).max(1) as u32;
    settings.reference_confidence = mean_margin.max(0) as u32;
    with(&settings)
}
