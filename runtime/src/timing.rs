//! Transient timing faults and the guard policy that answers them.
//!
//! Aging logic slows down; at a fixed clock its late paths latch wrong
//! bits. [`TimingFaults`] emulates that at the level the runtime sees it:
//! after an op computes, each byte of its output is struck with
//! probability `8·rate` and, when struck, one of its 8 bits (uniform) is
//! flipped — a per-bit rate of `rate` for rates well below 1/8. The flips
//! are transient: they come from a seeded generator, not from the data, so
//! an op re-run draws fresh ones and almost always computes correctly. The
//! generator is a 32-bit xorshift (Marsaglia 2003) stepped once per output
//! byte, so host and board that run the same ops with the same seed flip
//! the same bits, and hardware-in-loop stays bit-exact under faults.
//!
//! [`GuardPolicy`] says what the activation guards do about it: nothing,
//! clamp only, the artifact's own re-run threshold, a re-run on any value
//! out of range, or time redundancy (every op run twice and compared).

use crate::model::GuardReport;
use crate::{Error, Model};

/// What the activation guards do after each op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GuardPolicy {
    /// No check: outputs are kept as computed.
    Off,
    /// Clamp out-of-range values into the guard range and count them,
    /// never re-run.
    Clamp,
    /// Clamp, and re-verify and re-run an op whose count exceeds the
    /// threshold the artifact stores (1 % of its outputs): the default,
    /// aimed at weight faults, which corrupt many outputs at once.
    #[default]
    Stored,
    /// Clamp, and re-verify and re-run an op on any out-of-range value:
    /// aimed at transient faults, which corrupt few values — but blind to
    /// flips that stay in range (most of a ReLU output's).
    Strict,
    /// Time redundancy: run every op until two runs give the same output
    /// checksum — twice when nothing flips, at most [`MAX_RUNS`] times (a
    /// mismatch counts as a trip, running out as still over) — then guard
    /// like `Stored`. Catches every single-bit flip, in range or not, for
    /// twice the instructions and no extra RAM.
    Redundant,
}

/// What corrupts op outputs after they are computed: [`TimingFaults`],
/// or [`NoFaults`] — a type, not a value, so a product's guarded run
/// carries no fault-injection code at all.
pub trait OutputFaults {
    /// Whether [`OutputFaults::strike`] can change anything.
    const ACTIVE: bool;
    /// Corrupts one op's freshly computed `output`.
    fn strike(&mut self, output: &mut [u8]);
}

/// No faults: what real inference runs with.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoFaults;

impl OutputFaults for NoFaults {
    const ACTIVE: bool = false;
    fn strike(&mut self, _: &mut [u8]) {}
}

impl OutputFaults for TimingFaults {
    const ACTIVE: bool = true;
    fn strike(&mut self, output: &mut [u8]) {
        TimingFaults::strike(self, output);
    }
}

/// Most runs of one op under [`GuardPolicy::Redundant`].
pub const MAX_RUNS: usize = 5;

/// A seeded source of transient output-bit flips (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingFaults {
    /// A byte is struck when the generator's next value is below this.
    threshold: u32,
    state: u32,
    flipped: u32,
}

impl TimingFaults {
    /// Faults at `rate_ppb` wrong bits per 10⁹ output bits (1e-4 is
    /// 100 000; at most 1/8 = 125 000 000), drawn from `seed`.
    pub fn new(rate_ppb: u32, seed: u32) -> Self {
        let per_byte = (rate_ppb.min(125_000_000) as u64) * 8;
        let threshold = (per_byte << 32) / 1_000_000_000;
        TimingFaults {
            threshold: threshold.min(u32::MAX as u64) as u32,
            // Xorshift's one forbidden state is 0; any other seed is kept.
            state: if seed == 0 { 0x9E37_79B9 } else { seed },
            flipped: 0,
        }
    }

    /// Rate 0: strikes nothing (a policy's runs without faults).
    pub const NONE: TimingFaults = TimingFaults {
        threshold: 0,
        state: 1,
        flipped: 0,
    };

    fn next(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// Strikes one op's freshly computed `output`.
    pub fn strike(&mut self, output: &mut [u8]) {
        if self.threshold == 0 {
            return;
        }
        for byte in output {
            let draw = self.next();
            if draw < self.threshold {
                // The draw is uniform below the threshold: its low bits
                // would favour some bits, so the bit takes the next draw.
                *byte ^= 1 << (self.next() >> 29);
                self.flipped = self.flipped.saturating_add(1);
            }
        }
    }

    /// Bits flipped so far.
    pub fn flipped(&self) -> u32 {
        self.flipped
    }
}

impl<const K: u32> Model<'_, K> {
    /// Op `index` (its inputs already computed) under timing faults and a
    /// guard policy: run, strike the output with `faults`, then guard it as
    /// `policy` says — clamping and counting into `report`, and on a trip
    /// re-verifying through `reverify` and re-running once (the re-run is
    /// struck afresh). With [`NoFaults`] and [`GuardPolicy::Stored`] this
    /// is exactly [`Model::invoke_op_guarded`].
    pub fn invoke_op_with<F, S>(
        &self,
        index: usize,
        arena: &mut [u8],
        policy: GuardPolicy,
        faults: &mut S,
        mut reverify: F,
        report: &mut GuardReport,
    ) -> Result<(), Error>
    where
        F: FnMut(usize) -> Result<(), Error>,
        S: OutputFaults,
    {
        if policy == GuardPolicy::Redundant {
            self.invoke_op_twice(index, arena, faults, report)?;
        } else {
            self.invoke_op(index, arena)?;
            self.strike_output(index, arena, faults)?;
        }
        let guard = self.artifact().guards().and_then(|g| g.get(index));
        let Some(guard) = guard.filter(|g| g.flags & crate::format::GUARD_ON != 0) else {
            return Ok(());
        };
        let threshold = match policy {
            GuardPolicy::Off => return Ok(()),
            GuardPolicy::Clamp => u32::MAX,
            GuardPolicy::Stored | GuardPolicy::Redundant => guard.threshold,
            GuardPolicy::Strict => 0,
        };
        report.ops_checked = report.ops_checked.saturating_add(1);
        let mut count = self.guard_op(index, arena)?;
        if count > threshold {
            report.trips = report.trips.saturating_add(1);
            report.first_tripped_op.get_or_insert(index as u32);
            reverify(index)?;
            self.invoke_op(index, arena)?;
            self.strike_output(index, arena, faults)?;
            report.ops_checked = report.ops_checked.saturating_add(1);
            count = self.guard_op(index, arena)?;
            if count > threshold {
                report.trips_after_rerun = report.trips_after_rerun.saturating_add(1);
            }
        }
        report.values_clamped = report.values_clamped.saturating_add(count);
        Ok(())
    }

    /// [`GuardPolicy::Redundant`]'s runs: until one repeats an earlier
    /// run's checksum (two at least, [`MAX_RUNS`] at most); the output
    /// left in the arena is the repeating one.
    fn invoke_op_twice<S: OutputFaults>(
        &self,
        index: usize,
        arena: &mut [u8],
        faults: &mut S,
        report: &mut GuardReport,
    ) -> Result<(), Error> {
        let mut seen = [0u32; MAX_RUNS];
        for runs in 0..MAX_RUNS {
            self.invoke_op(index, arena)?;
            self.strike_output(index, arena, faults)?;
            let out = self.op_output_range(index)?;
            let sum = arena.get(out).map_or(0, checksum);
            report.ops_checked = report.ops_checked.saturating_add(1);
            if seen[..runs].contains(&sum) {
                return Ok(());
            }
            if runs == 1 {
                report.trips = report.trips.saturating_add(1);
                report.first_tripped_op.get_or_insert(index as u32);
            }
            seen[runs] = sum;
        }
        report.trips_after_rerun = report.trips_after_rerun.saturating_add(1);
        Ok(())
    }

    fn strike_output<S: OutputFaults>(
        &self,
        index: usize,
        arena: &mut [u8],
        faults: &mut S,
    ) -> Result<(), Error> {
        if !S::ACTIVE {
            return Ok(());
        }
        let out = self.op_output_range(index)?;
        let (needed, got) = (self.arena_size(), arena.len());
        let bytes = arena
            .get_mut(out)
            .ok_or(Error::ArenaTooSmall { needed, got })?;
        faults.strike(bytes);
        Ok(())
    }
}

/// A Fletcher-style checksum of `bytes`: the running sum changes with any
/// single flipped bit, and the sum of sums with the position of a change.
fn checksum(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (0u32, 0u32);
    for &x in bytes {
        a = a.wrapping_add(x as u32);
        b = b.wrapping_add(a);
    }
    a ^ b.rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flip_rate_is_the_rate_asked_for() {
        // 1e-3 per bit over 8 Mbit: 8000 flips expected, σ ≈ 89.
        let mut faults = TimingFaults::new(1_000_000, 7);
        let mut data = [0u8; 1 << 20];
        faults.strike(&mut data);
        let flipped: u32 = data.iter().map(|b| b.count_ones()).sum();
        assert_eq!(flipped, faults.flipped());
        assert!((7600..8400).contains(&flipped), "{flipped} flips");
        // Every bit position is hit (about 1000 each).
        for bit in 0..8 {
            let hits = data.iter().filter(|&&b| b >> bit & 1 == 1).count();
            assert!((800..1200).contains(&hits), "bit {bit}: {hits}");
        }
    }

    #[test]
    fn every_single_bit_flip_changes_the_checksum() {
        let data: [u8; 64] = core::array::from_fn(|i| (i * 37) as u8);
        let clean = checksum(&data);
        for bit in 0..64 * 8 {
            let mut hit = data;
            hit[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(checksum(&hit), clean, "bit {bit}");
        }
    }

    #[test]
    fn no_rate_strikes_nothing_and_a_seed_replays() {
        let mut data = [0x5Au8; 4096];
        let mut none = TimingFaults::NONE;
        none.strike(&mut data);
        TimingFaults::new(0, 3).strike(&mut data);
        assert!(data.iter().all(|&b| b == 0x5A));
        let (mut a, mut b) = ([0u8; 4096], [0u8; 4096]);
        TimingFaults::new(100_000_000, 9).strike(&mut a);
        TimingFaults::new(100_000_000, 9).strike(&mut b);
        assert_eq!(a, b);
        assert!(a.iter().any(|&x| x != 0));
    }
}
