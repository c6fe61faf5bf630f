//! Activation guard ranges (the GUARDS section): for every op, the int8
//! codes its output took over the calibration set, run through the very
//! integer runtime the board executes — trimmed by [`TAIL`] at each end,
//! since with min/max scales the one most extreme calibration value sits
//! on the int8 rail and a plain min/max guard would guard nothing — then
//! widened by a margin of 1/8 of that range on each side. `Model::invoke_guarded` clamps outputs into them and
//! re-verifies and re-runs an op whose out-of-range count crosses its
//! threshold (1% of its outputs).

use crate::fsutil::AlignedBytes;
use crate::quantize::scales::quantize_value;
use anyhow::{anyhow, Result};
use sturdy_runtime::format::{GuardRecord, GUARD_ON};
use sturdy_runtime::Model;

/// Margin added on each side of the observed code range, as a fraction of it.
pub const MARGIN_DIVISOR: i32 = 8;
/// Fraction of each op's calibration outputs left outside the observed
/// range at each end before the margin is added.
pub const TAIL: f64 = 1e-4;
/// Out-of-range values an op tolerates, as a fraction of its outputs (1/100).
pub const THRESHOLD_DIVISOR: u32 = 100;

/// The guard of an op whose outputs spanned `[lo, hi]` on calibration,
/// over `outputs` values per run. A range that widens to all of int8
/// guards nothing and is left off.
pub fn guard_of(lo: i8, hi: i8, outputs: usize) -> GuardRecord {
    let (lo, hi) = (lo as i32, hi as i32);
    let margin = ((hi - lo) / MARGIN_DIVISOR).max(1);
    let min = (lo - margin).max(-128);
    let max = (hi + margin).min(127);
    let on = min > -128 || max < 127;
    GuardRecord {
        min: min as i8,
        max: max as i8,
        flags: if on { GUARD_ON } else { 0 },
        reserved: 0,
        threshold: (outputs as u32) / THRESHOLD_DIVISOR,
    }
}

/// Runs `artifact` over `samples` (storage layout, float) op by op and
/// returns one guard per op from the output codes observed.
pub fn measure(artifact: &[u8], samples: &[Vec<f32>]) -> Result<Vec<GuardRecord>> {
    let aligned = AlignedBytes::new(artifact);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let a = model.artifact();
    let input_record = a.tensors()[a.graph().input as usize];
    let input_q = crate::artifact_writer::QParams {
        scale: f32::from_bits(input_record.scale_bits),
        zero_point: input_record.zero_point,
    };
    let ops = model.op_count();
    let mut histograms = vec![[0u64; 256]; ops];
    let mut arena = vec![0u8; model.arena_size()];
    let err = |e: sturdy_runtime::Error| anyhow!("calibration run failed: {e}");
    for sample in samples {
        let input = model.input_mut(&mut arena).map_err(err)?;
        for (x, &v) in input.iter_mut().zip(sample) {
            *x = quantize_value(v, input_q);
        }
        for (i, histogram) in histograms.iter_mut().enumerate() {
            model.invoke_op(i, &mut arena).map_err(err)?;
            let t = a.tensors()[a.ops()[i].output as usize];
            for &b in &arena[t.offset as usize..(t.offset + t.len) as usize] {
                histogram[(b as i8 as i32 + 128) as usize] += 1;
            }
        }
    }
    Ok(histograms
        .iter()
        .enumerate()
        .map(|(i, histogram)| {
            let t = a.tensors()[a.ops()[i].output as usize];
            match trimmed_range(histogram, TAIL) {
                Some((lo, hi)) => guard_of(lo, hi, t.len as usize),
                None => guard_of(-128, 127, t.len as usize),
            }
        })
        .collect())
}

/// The code range of `histogram` (bin `c + 128` counts code `c`) with at
/// most `tail` of the counts left out at each end; `None` when empty.
pub fn trimmed_range(histogram: &[u64; 256], tail: f64) -> Option<(i8, i8)> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let allowed = (tail * total as f64).floor() as u64;
    let cut = |bins: &mut dyn Iterator<Item = (usize, &u64)>| {
        let mut dropped = 0;
        for (c, &n) in bins {
            if dropped + n > allowed {
                return c;
            }
            dropped += n;
        }
        0
    };
    let lo = cut(&mut histogram.iter().enumerate());
    let hi = cut(&mut histogram.iter().enumerate().rev());
    Some(((lo as i32 - 128) as i8, (hi as i32 - 128) as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margins_hand_computed() {
        // [-100, 60]: range 160, margin 20 → [-120, 80]; 1% of 1000 = 10.
        let g = guard_of(-100, 60, 1000);
        assert_eq!(
            (g.min, g.max, g.flags, g.threshold),
            (-120, 80, GUARD_ON, 10)
        );
        // A full range guards nothing.
        assert_eq!(guard_of(-128, 120, 10).flags, 0);
        // A constant output still gets one code of margin.
        let g = guard_of(5, 5, 50);
        assert_eq!((g.min, g.max, g.threshold), (4, 6, 0));
    }

    #[test]
    fn trimmed_ranges_hand_computed() {
        let mut h = [0u64; 256];
        h[128 - 128] = 1; // code -128, once
        h[128 - 5] = 5000;
        h[128 + 40] = 4998;
        h[128 + 127] = 1; // code 127, once
                          // 10000 counts, 1e-4 → 1 may go at each end.
        assert_eq!(trimmed_range(&h, 1e-4), Some((-5, 40)));
        assert_eq!(trimmed_range(&h, 0.0), Some((-128, 127)));
        assert_eq!(trimmed_range(&[0; 256], 1e-4), None);
    }
}
