//! Sensor-drift monitor: the device notices that its inputs no longer look
//! like the calibration data and re-fits its input-alignment table, in
//! fixed memory (about 1.1 KiB: [`DriftMonitor::RAM_BYTES`]).
//!
//! Per sample, [`DriftMonitor::observe_input`] counts the raw input codes
//! into a 256-bin histogram with forgetting (every bin halves when the
//! histogram holds [`DriftSettings::memory`] values) and maps the input
//! through the active table; [`DriftMonitor::observe_output`] then takes
//! the model's output and
//! 1. measures the drift statistic `D`: the Kolmogorov–Smirnov distance
//!    between the histogram pushed through the active table and the
//!    reference CDF the artifact stores (units of 1/65535);
//! 2. runs a CUSUM detector `S ← max(0, S + D − k)`, alarming at `S > h`
//!    (`k`, `h` fitted by the host so that the calibration set played as a
//!    stationary stream never alarms);
//! 3. on an alarm starts the histogram afresh and, [`DriftSettings::window`]
//!    samples later, re-fits the table from it with [`project`],
//!    the same integer histogram-matching rule the host uses for EmaQ-LT,
//!    bounded to [`DriftSettings::max_shift`] codes from the identity; the
//!    model uses it from the next input on;
//! 4. judges each re-fit by the model's own confidence (mean top-1 − top-2
//!    output margin) over the next [`DriftSettings::window`] samples and
//!    rolls it back when confidence fell below both its level before the
//!    re-fit and its level on calibration data: a change in the class mix
//!    alone moves the input histogram too, and matching it away would hurt.

use crate::format::{DriftSettings, ALIGN_TABLE_LEN, DRIFT_VERSION, MAX_DRIFT_MEMORY};
use crate::kernels::top_margin;
use crate::{Artifact, Error};

/// A 256-entry code → code table (entry `c + 128` is what code `c` becomes).
pub type CodeTable = [i8; ALIGN_TABLE_LEN];

/// The table mapping the distribution with code counts `counts` (bin
/// `c + 128` counts code `c`) onto `reference_cdf` (entry `r + 128` is the
/// fraction × 65535 of reference codes `≤ r`): code `c`, at mid-rank
/// `u = (C(c − 1) + C(c)) / 2N` of its own distribution, becomes the
/// smallest `r` with `reference_cdf(r) / 65535 ≥ u`. Integer throughout,
/// so host and device compute the same table. `None` when `counts` is
/// empty or holds more than `u32::MAX` values.
pub fn project<C: Copy + Into<u64>>(
    counts: &[C; ALIGN_TABLE_LEN],
    reference_cdf: &[u16; ALIGN_TABLE_LEN],
) -> Option<CodeTable> {
    let total: u64 = counts.iter().map(|&n| n.into()).sum();
    if total == 0 || total > u32::MAX as u64 {
        return None;
    }
    let mut table = [0i8; ALIGN_TABLE_LEN];
    let (mut below, mut r) = (0u64, 0usize);
    for (out, &n) in table.iter_mut().zip(counts) {
        let upto = below + n.into();
        // u·65535·2N = (below + upto)·65535; find reference_cdf(r)·2N ≥ it.
        let twice_u = (below + upto) * 65535;
        while r < ALIGN_TABLE_LEN - 1 && reference_cdf[r] as u64 * 2 * total < twice_u {
            r += 1;
        }
        *out = (r as i32 - 128) as i8;
        below = upto;
    }
    Some(table)
}

/// The identity table (inputs run as given).
pub fn identity() -> CodeTable {
    core::array::from_fn(|c| (c as i32 - 128) as i8)
}

/// Kolmogorov–Smirnov distance, in units of 1/65535, between the
/// distribution with code counts `counts` mapped through the monotone
/// `table` and `reference_cdf` (0 for an empty histogram).
pub fn ks_distance(
    counts: &[u16; ALIGN_TABLE_LEN],
    table: &CodeTable,
    reference_cdf: &[u16; ALIGN_TABLE_LEN],
) -> u32 {
    let total: u64 = counts.iter().map(|&n| n as u64).sum();
    if total == 0 {
        return 0;
    }
    let (mut c, mut mapped) = (0usize, 0u64);
    let mut worst = 0u64;
    for (r, &reference) in reference_cdf.iter().enumerate() {
        // Mapped CDF at r: every code whose image is ≤ r (table monotone).
        while c < ALIGN_TABLE_LEN && (table[c] as i32 + 128) as usize <= r {
            mapped += counts[c] as u64;
            c += 1;
        }
        worst = worst.max((mapped * 65535).abs_diff(reference as u64 * total));
    }
    (worst / total) as u32
}

/// What one sample did to the monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriftEvent {
    /// Nothing changed.
    Quiet,
    /// The detector alarmed and the table was re-fitted (used from the
    /// next input on).
    Refit,
    /// The last re-fit lowered the model's confidence and was undone.
    Rollback,
}

/// The monitor's counters, for the health report and the protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DriftStatus {
    /// Samples observed.
    pub samples: u32,
    /// The last drift statistic `D` (KS distance × 65535).
    pub statistic: u32,
    /// The CUSUM sum `S`.
    pub cusum: u32,
    /// Re-fits so far.
    pub refits: u32,
    /// Re-fits rolled back so far.
    pub rollbacks: u32,
    /// Sample index (0-based) of the first alarm, if any.
    pub first_alarm: Option<u32>,
}

/// The drift monitor's state: fixed size, no heap.
///
/// It holds no reference to the artifact (whose reference CDF each
/// [`DriftMonitor::observe_output`] reads), so firmware can keep it beside
/// a model that is rebuilt in RAM, as a protected artifact's is.
#[derive(Debug, Clone)]
pub struct DriftMonitor {
    settings: DriftSettings,
    counts: [u16; ALIGN_TABLE_LEN],
    held: u32,
    table: CodeTable,
    accepted: CodeTable,
    status: DriftStatus,
    /// Mean output margin × 16 (exponential, 1/8 per sample).
    confidence: i32,
    confidence_at_refit: i32,
    judging: u32,
    quiet_until: u32,
    /// Samples still to count after an alarm before the re-fit.
    collecting: u32,
}

impl DriftMonitor {
    /// Bytes of RAM one monitor takes.
    pub const RAM_BYTES: usize = core::mem::size_of::<DriftMonitor>();

    /// A monitor for `artifact`'s inputs of `input_len` codes, from its
    /// DRIFT settings and the reference CDF of its INPUT_ALIGN section.
    pub fn new(artifact: &Artifact<'_>, input_len: usize) -> Result<Self, Error> {
        let settings = artifact.drift().ok_or(Error::NoDriftMonitor)?;
        artifact.input_align().ok_or(Error::NoDriftMonitor)?;
        let observed = input_len.div_ceil(settings.stride.max(1) as usize);
        if observed == 0 || observed > (settings.memory / 2) as usize {
            return Err(Error::BadDrift);
        }
        Ok(DriftMonitor {
            settings,
            counts: [0; ALIGN_TABLE_LEN],
            held: 0,
            table: identity(),
            accepted: identity(),
            status: DriftStatus::default(),
            confidence: 0,
            confidence_at_refit: 0,
            judging: 0,
            quiet_until: 0,
            collecting: 0,
        })
    }

    /// Values of an input of `input_len` codes the monitor counts (every
    /// `stride`-th, so its cost per sample is bounded by the settings).
    pub fn observed_per_input(&self, input_len: usize) -> usize {
        input_len.div_ceil(self.settings.stride.max(1) as usize)
    }

    /// Counts the raw codes of one input (every `stride`-th, rotating),
    /// then maps `input` in place through the active table.
    pub fn observe_input(&mut self, input: &mut [i8]) {
        let stride = self.settings.stride.max(1) as usize;
        let start = self.status.samples as usize % stride;
        let observed = input.len().saturating_sub(start).div_ceil(stride) as u32;
        if self.held + observed > self.settings.memory {
            self.held = 0;
            for n in &mut self.counts {
                *n >>= 1;
                self.held += *n as u32;
            }
        }
        for &x in input.iter().skip(start).step_by(stride) {
            let bin = &mut self.counts[(x as i32 + 128) as usize & 0xFF];
            *bin = bin.saturating_add(1);
        }
        self.held += observed;
        for x in input.iter_mut() {
            *x = self.table[(*x as i32 + 128) as usize & 0xFF];
        }
    }

    /// Takes the model's output for the input just observed: judges a
    /// pending re-fit, updates the statistic and the detector, and re-fits
    /// on an alarm. `artifact` is the one the monitor was made for (its
    /// reference CDF); one without INPUT_ALIGN is refused.
    pub fn observe_output(
        &mut self,
        artifact: &Artifact<'_>,
        output: &[i8],
    ) -> Result<DriftEvent, Error> {
        let reference_cdf = artifact
            .input_align()
            .ok_or(Error::NoDriftMonitor)?
            .reference_cdf();
        let s = self.settings;
        let sample = self.status.samples;
        self.status.samples = sample.saturating_add(1);
        let margin = top_margin(output).unwrap_or(0);
        self.confidence += ((margin << 4) - self.confidence) >> 3;
        let mut event = DriftEvent::Quiet;
        if self.judging > 0 {
            self.judging -= 1;
            if self.judging == 0 {
                // Worse than before the re-fit *and* than on calibration
                // data: a drifted sensor can make the model confidently
                // wrong, and undoing that must not count as a loss.
                let level = self
                    .confidence_at_refit
                    .min((s.reference_confidence.min(1 << 20) as i32) << 4);
                let floor = level - ((s.confidence_drop as i32) << 4);
                if self.confidence < floor {
                    self.table = self.accepted;
                    self.status.rollbacks += 1;
                    self.quiet_until = self.status.samples.saturating_add(s.holdoff);
                    event = DriftEvent::Rollback;
                } else {
                    self.accepted = self.table;
                }
            }
        }
        let d = ks_distance(&self.counts, &self.table, reference_cdf);
        self.status.statistic = d;
        if self.collecting > 0 {
            self.collecting -= 1;
            if self.collecting == 0 {
                self.refit(reference_cdf);
                event = DriftEvent::Refit;
            }
            return Ok(event);
        }
        self.status.cusum = (self.status.cusum + d).saturating_sub(s.allowance);
        let armed = self.status.samples > s.warmup
            && self.judging == 0
            && self.status.samples >= self.quiet_until;
        if armed && self.status.cusum > s.threshold {
            // The change happened about now: the re-fit must see only what
            // came after it, so the histogram starts afresh and the
            // re-fit waits `window` samples.
            self.status.first_alarm.get_or_insert(sample);
            self.counts = [0; ALIGN_TABLE_LEN];
            self.held = 0;
            self.status.cusum = 0;
            self.collecting = s.window.max(1);
        }
        Ok(event)
    }

    /// Re-fits the table from the histogram, bounded to `max_shift` codes
    /// from the identity (a clamp between two monotone bounds keeps the
    /// table monotone), and starts judging it.
    fn refit(&mut self, reference_cdf: &[u16; ALIGN_TABLE_LEN]) {
        let Some(fitted) = project(&self.counts, reference_cdf) else {
            return;
        };
        let shift = self.settings.max_shift.min(255) as i32;
        for (c, (out, &to)) in self.table.iter_mut().zip(&fitted).enumerate() {
            let c = c as i32 - 128;
            *out = (to as i32).clamp(c - shift, c + shift).clamp(-128, 127) as i8;
        }
        self.status.refits += 1;
        self.status.cusum = 0;
        self.confidence_at_refit = self.confidence;
        self.judging = self.settings.window.max(1);
    }

    /// The counters.
    pub fn status(&self) -> DriftStatus {
        self.status
    }

    /// The table inputs are mapped through now.
    pub fn table(&self) -> &CodeTable {
        &self.table
    }

    /// The running input histogram (bin `c + 128` counts code `c`).
    pub fn counts(&self) -> &[u16; ALIGN_TABLE_LEN] {
        &self.counts
    }
}

/// Checks a DRIFT section body.
pub(crate) fn parse_settings(bytes: &[u8]) -> Result<DriftSettings, Error> {
    let s: DriftSettings = bytemuck::try_pod_read_unaligned(bytes).map_err(|_| Error::BadDrift)?;
    let valid = s.version == DRIFT_VERSION
        && (2..=MAX_DRIFT_MEMORY).contains(&s.memory)
        && s.stride >= 1
        && s.window >= 1
        && s.reserved == 0;
    if valid {
        Ok(s)
    } else {
        Err(Error::BadDrift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(i8, u16)]) -> [u16; 256] {
        let mut h = [0; 256];
        for &(c, n) in pairs {
            h[(c as i32 + 128) as usize] = n;
        }
        h
    }

    fn cdf_of(h: &[u16; 256]) -> [u16; 256] {
        let total: u64 = h.iter().map(|&n| n as u64).sum();
        let mut acc = 0u64;
        core::array::from_fn(|i| {
            acc += h[i] as u64;
            ((acc * 65535 + total / 2) / total) as u16
        })
    }

    fn at(t: &CodeTable, c: i8) -> i8 {
        t[(c as i32 + 128) as usize]
    }

    #[test]
    fn a_shifted_and_squeezed_histogram_maps_back() {
        // Reference: codes 0, 10, 20 equally often. Observed: the same
        // levels after gain 1/2 and offset +50 → codes 50, 55, 60.
        let reference = cdf_of(&hist(&[(0, 4), (10, 4), (20, 4)]));
        let t = project(&hist(&[(50, 2), (55, 2), (60, 2)]), &reference).unwrap();
        // Mid-ranks 1/6, 1/2, 5/6 → reference quantiles 0, 10, 20.
        assert_eq!((at(&t, 50), at(&t, 55), at(&t, 60)), (0, 10, 20));
        assert_eq!(at(&t, -128), -128);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn ks_distance_by_hand() {
        // Reference: half at 0, half at 10. Observed: all at 0 → the CDFs
        // differ by 1/2 on [0, 10).
        let reference = cdf_of(&hist(&[(0, 1), (10, 1)]));
        assert_eq!(
            ks_distance(&hist(&[(0, 8)]), &identity(), &reference),
            32767
        );
        // Mapping codes 0..=10 onto 10 puts everything at 10: the mapped
        // CDF is 0 below 10, where the reference's is 32768.
        let mut table = identity();
        table[128..=138].fill(10);
        assert_eq!(ks_distance(&hist(&[(0, 4)]), &table, &reference), 32768);
        assert_eq!(
            ks_distance(&hist(&[(0, 3), (10, 3)]), &identity(), &reference),
            0
        );
    }
}
