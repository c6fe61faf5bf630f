//! Scrubbing the protected working copy in bounded steps — on request
//! (`Request::Scrub`) and in idle time (`Request::ScrubEvery`) — and the
//! aging indicator the completed passes feed.
//!
//! A step checks a fixed number of codewords, so its worst case is known
//! before it runs; the counter around it records what it cost. The state
//! is fixed-size: the scrubber (position, keyed interleaver) and the
//! indicator's history ring, no heap.

use crate::board::Target;
use crate::faults::protect_fault;
use crate::linked::{self, ProtectRam, ARTIFACT_LEN};
use sturdy_protocol::{AgingStats, ErrorCode, ScrubStats};
use sturdy_runtime::aging::{AgingIndicator, SAFE_BER_PPM};
use sturdy_runtime::protect::{ScrubCounts, Scrubber};

/// Scrub passes assumed ahead until the host says otherwise: ten years of
/// daily passes.
const DEFAULT_PASSES_TO_END_OF_LIFE: u32 = 3650;

/// The scrubber, its schedule and what it has seen.
pub struct ScrubState {
    scrubber: Option<Scrubber>,
    indicator: AgingIndicator,
    totals: ScrubCounts,
    stats: ScrubStats,
    period: u64,
    slice: u32,
    last_slice: u64,
}

impl ScrubState {
    /// Keys a scrubber for the working copy (none for an uncoded image or
    /// a plain build).
    pub fn new(ram: &ProtectRam) -> Self {
        let working: &[u8] = bytemuck::cast_slice(&*ram.working);
        let scrubber = if linked::PROTECTED {
            working
                .get(..ARTIFACT_LEN)
                .and_then(|bytes| Scrubber::new(bytes, &linked::DEVICE_KEY).ok())
        } else {
            None
        };
        ScrubState {
            scrubber,
            ..Self::unkeyed()
        }
    }

    /// No scrubber yet (before the working copy holds the image): every
    /// request is `NotProtected`, no BLAKE2s key derivation spent.
    pub fn unkeyed() -> Self {
        ScrubState {
            scrubber: None,
            indicator: indicator(DEFAULT_PASSES_TO_END_OF_LIFE),
            totals: ScrubCounts::default(),
            stats: ScrubStats::default(),
            period: 0,
            slice: 0,
            last_slice: 0,
        }
    }

    /// One bounded step over the next `codewords` codewords.
    pub fn step<T: Target>(
        &mut self,
        ram: &mut ProtectRam,
        codewords: u32,
        target: &mut T,
    ) -> Result<ScrubStats, ErrorCode> {
        let scrubber = self.scrubber.as_mut().ok_or(ErrorCode::NotProtected)?;
        let ProtectRam {
            working,
            decoded,
            scratch,
        } = ram;
        let decoded: &mut [u32] = if linked::IN_PLACE { &mut [] } else { decoded };
        let start = target.now();
        let step = scrubber
            .step(working, decoded, codewords, scratch)
            .map_err(|e| ErrorCode::Protect(protect_fault(&e)))?;
        let cost = target.now().saturating_sub(start);
        let c = step.counts;
        self.totals.add(&c);
        let s = &mut self.stats;
        s.steps = s.steps.saturating_add(1);
        s.checked = self.totals.checked;
        s.corrected_words = self.totals.corrected_words;
        s.corrected_bits = self.totals.corrected_bits;
        s.uncorrectable_words = self.totals.uncorrectable_words;
        s.decoded_bits_repaired = self.totals.decoded_bits_repaired;
        s.last_cost = cost;
        s.last_checked = c.checked;
        if cost > s.worst_cost {
            s.worst_cost = cost;
            s.worst_checked = c.checked;
        }
        if let Some(pass) = step.completed_pass {
            self.indicator
                .record(pass.corrected_bits, pass.uncorrectable_words);
            let r = self.indicator.report();
            if r.alarm {
                defmt::warn!(
                    "aging alarm: {=u32} corrected bits last pass, projected {=u32} of a safe {=u32}",
                    r.last_bits,
                    r.projected_bits,
                    r.limit_bits
                );
            }
        }
        s.passes = scrubber.passes();
        s.position = scrubber.position();
        Ok(self.stats())
    }

    /// Scrubs `codewords` per slice every `period` counter units of idle
    /// time (0, or 0 codewords: off); `passes` remain until the end of life
    /// (the indicator keeps its history).
    pub fn schedule(&mut self, period: u64, codewords: u32, passes: u32) {
        self.period = period;
        // An empty slice would run forever doing nothing: scheduling off.
        if codewords == 0 {
            self.period = 0;
        }
        self.slice = codewords;
        self.indicator.set_passes_to_end_of_life(passes);
    }

    /// Runs a slice when one is due, else naps toward it through the
    /// board's `DelayNs` (called while no frame is arriving; bytes that
    /// arrive during the nap wait in the receive queue).
    pub fn idle<T: Target>(&mut self, ram: &mut ProtectRam, target: &mut T) {
        if self.period == 0 || self.scrubber.is_none() {
            return;
        }
        let now = target.now();
        let since = now.saturating_sub(self.last_slice);
        if since < self.period {
            target.nap(self.period - since);
            return;
        }
        self.last_slice = now;
        let _ = self.step(ram, self.slice, target);
    }

    /// The counters and the indicator's verdict.
    pub fn stats(&self) -> ScrubStats {
        let r = self.indicator.report();
        ScrubStats {
            aging: AgingStats {
                passes: r.passes,
                last_bits: r.last_bits,
                trend_milli: r.trend_milli,
                trend_lower_milli: r.trend_lower_milli,
                projected_bits: r.projected_bits,
                limit_bits: r.limit_bits,
                uncorrectable_seen: r.uncorrectable_seen,
                alarm: r.alarm,
                ram_bytes: AgingIndicator::RAM_BYTES as u32,
            },
            ..self.stats
        }
    }

    /// Whether there is a coded image to scrub.
    pub fn active(&self) -> bool {
        self.scrubber.is_some()
    }
}

fn indicator(passes: u32) -> AgingIndicator {
    AgingIndicator::new(linked::STORED_BITS, SAFE_BER_PPM, passes)
}
