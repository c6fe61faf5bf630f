//! Scrubbing: a bounded slice of codewords per call, so an application
//! repairs its RAM working copy in idle time at a known worst-case cost.
//!
//! Errors accumulate: a working copy that is only checked at boot keeps
//! every soft error until some codeword holds more than the code corrects.
//! A [`Scrubber`] walks the stored image `budget` codewords per
//! [`Scrubber::step`], wrapping around. It walks them in the interleaver's
//! *row* order (row `a·i mod C` for codeword `i`), because 32 consecutive
//! rows keep each of their bits in 32 consecutive stored bits: a step
//! checks up to 32 codewords at once with the bit-sliced syndrome of
//! [`super::sliced`], then gathers, decodes and writes back only those that
//! fail, where they lie (the same path as [`super::verify_in_place`]'s
//! patch). For the sequential layout, whose model runs from a separate
//! decoded copy, the step also rewrites that copy's message bits from the
//! checked codewords, so soft errors in the running model are repaired
//! too; for the in-place layout the image *is* the running model.
//!
//! A step needs the image mutably, so it runs between inferences (the
//! firmware re-parses its model per inference). It does not re-check the
//! integrity tags: a miscorrection — rare, see the FER table in
//! [`crate::ldpc::fer`] — is caught by the tags at the next full load. A
//! step's cost is linear in `budget`: one sliced check per 32 codewords
//! (3.2 instructions per stored bit on a Cortex-M4 for a full group, 5.2
//! with the decoded copy compared; more for smaller budgets, whose groups
//! are narrower), plus a gather and a decode for the rare failing word.

use super::sliced::{Messages, Offsets, Rows, GROUP};
use super::{scatter, unlock, Health, Interleaver, Key, Layout, ProtectError};
use crate::ldpc::{Code, DecoderScratch, MAX_CODEWORD_WORDS};

/// What one [`Scrubber::step`] or one whole pass found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubCounts {
    /// Codewords checked.
    pub checked: u32,
    /// Codewords that failed the syndrome check and were repaired.
    pub corrected_words: u32,
    /// Stored bits the decoder changed.
    pub corrected_bits: u32,
    /// Codewords the decoder could not repair (left as they are).
    pub uncorrectable_words: u32,
    /// Bits of the decoded copy (sequential layout) that differed from the
    /// checked codewords' messages and were rewritten.
    pub decoded_bits_repaired: u32,
}

impl ScrubCounts {
    /// Adds `other`'s counts (saturating): totals over steps and passes.
    pub fn add(&mut self, other: &ScrubCounts) {
        self.checked = self.checked.saturating_add(other.checked);
        self.corrected_words = self.corrected_words.saturating_add(other.corrected_words);
        self.corrected_bits = self.corrected_bits.saturating_add(other.corrected_bits);
        self.uncorrectable_words = self
            .uncorrectable_words
            .saturating_add(other.uncorrectable_words);
        self.decoded_bits_repaired = self
            .decoded_bits_repaired
            .saturating_add(other.decoded_bits_repaired);
    }
}

/// The outcome of one [`Scrubber::step`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubStep {
    /// This call's counts.
    pub counts: ScrubCounts,
    /// The counts of the pass this call completed (the walk wrapped to
    /// codeword 0), if it did: one entry of an aging indicator's history.
    pub completed_pass: Option<ScrubCounts>,
}

/// Where a scrub walk stands over one protected image.
#[derive(Debug, Clone)]
pub struct Scrubber {
    code: Code,
    interleaver: Interleaver,
    layout: Layout,
    codewords: u32,
    stored_at: usize,
    stored_words: usize,
    inner_len: usize,
    next: u32,
    pass: ScrubCounts,
    passes: u32,
}

impl Scrubber {
    /// Keys a scrubber for the protected artifact `artifact` (checks the
    /// key and derives the interleaver once: the BLAKE2s cost is paid here,
    /// not per step). Errors: not a protected artifact, wrong key, or
    /// stored uncoded ([`ProtectError::BadProtection`]: nothing to scrub).
    pub fn new(artifact: &[u8], key: &Key) -> Result<Scrubber, ProtectError> {
        let (p, keys) = unlock(artifact, key)?;
        let code = p.code.ok_or(ProtectError::BadProtection)?;
        let codewords = p.header.codewords;
        Ok(Scrubber {
            code,
            interleaver: keys.interleaver(codewords as usize),
            layout: p.layout(),
            codewords,
            stored_at: p.stored_at,
            stored_words: p.stored.len(),
            inner_len: p.inner_len(),
            next: 0,
            pass: ScrubCounts::default(),
            passes: 0,
        })
    }

    /// Codewords in the image (one pass checks them all).
    pub fn codewords(&self) -> u32 {
        self.codewords
    }

    /// The interleaver row the next step starts at (a pass walks the rows
    /// `0 .. C` in order; see the module docs).
    pub fn position(&self) -> u32 {
        self.next
    }

    /// Passes completed since the scrubber was made.
    pub fn passes(&self) -> u32 {
        self.passes
    }

    /// Checks the next `budget` codewords (a step stops where a pass ends:
    /// wrapping to codeword 0 completes the pass), repairs correctable ones in `artifact` —
    /// the same protected image, as `u32` words — and, for the sequential
    /// layout, rewrites their messages into `decoded` (the running inner
    /// copy; pass `&mut []` for the in-place layout). `scratch` must fit
    /// the code. Errors: `artifact` is not the image the scrubber was made
    /// for (too short), the decoded copy is too short, or the scratch is
    /// too small for the code (`RamTooSmall` in decoder entries, n + m).
    pub fn step<const N: usize, const M: usize>(
        &mut self,
        artifact: &mut [u32],
        decoded: &mut [u32],
        budget: u32,
        scratch: &mut DecoderScratch<N, M>,
    ) -> Result<ScrubStep, ProtectError> {
        let stored = artifact
            .get_mut(self.stored_at / 4..self.stored_at / 4 + self.stored_words)
            .ok_or(ProtectError::BadProtection)?;
        if N < self.code.n() || M < self.code.m() {
            // Else every decode would fail and count as damage.
            return Err(ProtectError::RamTooSmall {
                needed: self.code.n() + self.code.m(),
                got: N + M,
            });
        }
        let sequential = self.layout == Layout::Sequential;
        if sequential && decoded.len() * 4 < self.inner_len {
            return Err(ProtectError::RamTooSmall {
                needed: self.inner_len,
                got: decoded.len() * 4,
            });
        }
        let mut cw = [0u32; MAX_CODEWORD_WORDS];
        let cw = &mut cw[..self.code.words()];
        let mut health = Health::default();
        let mut decoded_bits_repaired = 0u32;
        let mut left = budget.min(self.codewords);
        let mut wrapped = false;
        let (il, code) = (&self.interleaver, &self.code);
        while left > 0 && !wrapped {
            let width = (left.min(self.codewords - self.next) as usize).min(GROUP);
            let first = u64::from(self.next);
            let mut messages = if sequential {
                Messages::Compare(decoded, self.inner_len * 8)
            } else {
                Messages::Ignore
            };
            let mut rows = Rows::check(
                code,
                stored,
                (il, Offsets::Hashed),
                (first, width),
                &mut messages,
                &mut health,
            );
            // Failing rows are decoded; stale ones (a soft error in the
            // decoded copy, rare) are gathered to rewrite their message.
            while let Some(r) = rows.next_row(code, stored, il, cw, scratch, &mut health) {
                if let Some(changed) = r.changed {
                    if changed > 0 {
                        scatter(cw, il, r.row, 0..code.n(), stored);
                    }
                    if sequential {
                        let repaired = self.repair_decoded(il.index_of_row(r.row), cw, decoded);
                        decoded_bits_repaired = decoded_bits_repaired.saturating_add(repaired);
                    }
                }
            }
            self.next += width as u32;
            left -= width as u32;
            if self.next == self.codewords {
                self.next = 0;
                wrapped = true;
            }
        }
        let counts = ScrubCounts {
            checked: health.codewords_checked,
            corrected_words: health.corrected_words,
            corrected_bits: health.corrected_bits,
            uncorrectable_words: health.uncorrectable_words,
            decoded_bits_repaired,
        };
        self.pass.add(&counts);
        let completed_pass = wrapped.then(|| {
            self.passes = self.passes.saturating_add(1);
            core::mem::take(&mut self.pass)
        });
        Ok(ScrubStep {
            counts,
            completed_pass,
        })
    }

    /// Rewrites codeword `i`'s message into the decoded copy and returns
    /// how many of its bits differed.
    fn repair_decoded(&self, i: usize, cw: &[u32], decoded: &mut [u32]) -> u32 {
        let k = self.code.k();
        let start = i * k;
        let len = k.min((self.inner_len * 8).saturating_sub(start));
        let mut differing = 0;
        let mut done = 0;
        while done < len {
            let chunk = (len - done).min(32);
            let want = super::get_bits(cw, done, chunk);
            let have = super::get_bits(decoded, start + done, chunk);
            differing += (want ^ have).count_ones();
            if want != have {
                super::set_bits(decoded, start + done, chunk, want);
            }
            done += chunk;
        }
        differing
    }
}
