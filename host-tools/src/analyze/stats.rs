//! Seeds and intervals shared by the random campaigns: every task's seed is
//! derived from the campaign, the point and the seed index alone (never
//! from the thread that runs it), so results do not depend on `--jobs`.

use super::report::Estimate;

/// The seed of repetition `seed` of point `point` of `campaign`, from the
/// run's base seed (SplitMix64 over the four).
pub fn task_seed(base: u64, campaign: &str, point: usize, seed: u32) -> u64 {
    let mut h = base ^ 0x9e37_79b9_7f4a_7c15;
    for b in campaign.bytes() {
        h = mix(h ^ u64::from(b));
    }
    mix(mix(h ^ point as u64) ^ u64::from(seed))
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Two-sided 95 % Student t quantile for `dof` degrees of freedom.
fn t95(dof: usize) -> f64 {
    const TABLE: [f64; 10] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    ];
    match dof {
        0 => 0.0,
        d if d <= TABLE.len() => TABLE[d - 1],
        d if d <= 30 => 2.042 + (2.228 - 2.042) * (30 - d) as f64 / 20.0,
        _ => 1.96,
    }
}

/// Mean and 95 % t-interval of `values` (one per seed); a single value is
/// its own interval, no value gives NaN (rendered as "—").
pub fn estimate(values: &[f64]) -> Estimate {
    let n = values.len();
    if n == 0 {
        return Estimate {
            mean: f64::NAN,
            lo: f64::NAN,
            hi: f64::NAN,
        };
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let var = if n > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64
    } else {
        0.0
    };
    let half = t95(n - 1) * (var / n as f64).sqrt();
    Estimate {
        mean,
        lo: mean - half,
        hi: mean + half,
    }
}

/// [`estimate`] of a rate: the interval clipped to `[0, 1]` (with two or
/// three seeds the t-interval can run far past the possible values).
pub fn rate_estimate(values: &[f64]) -> Estimate {
    let e = estimate(values);
    if values.is_empty() {
        // No value: no interval either (clipping NaN would give [0, 1]).
        return e;
    }
    Estimate {
        lo: e.lo.max(0.0),
        hi: e.hi.min(1.0),
        ..e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interval_by_hand() {
        // mean 2, sample sd 1, n 3: half width 4.303 / √3.
        let e = estimate(&[1.0, 2.0, 3.0]);
        assert_eq!(e.mean, 2.0);
        assert!((e.hi - e.mean - 4.303 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(estimate(&[0.5]).lo, 0.5);
        assert!(estimate(&[]).mean.is_nan());
        let r = rate_estimate(&[0.0, 1.0]);
        assert_eq!((r.lo, r.mean, r.hi), (0.0, 0.5, 1.0));
        let none = rate_estimate(&[]);
        assert!(
            none.lo.is_nan() && none.hi.is_nan(),
            "no value, no interval"
        );
    }

    #[test]
    fn seeds_differ_per_task_and_repeat() {
        let a = task_seed(1, "ber", 0, 0);
        assert_eq!(a, task_seed(1, "ber", 0, 0));
        assert_ne!(a, task_seed(1, "ber", 0, 1));
        assert_ne!(a, task_seed(1, "ber", 1, 0));
        assert_ne!(a, task_seed(1, "stuck", 0, 0));
        assert_ne!(a, task_seed(2, "ber", 0, 0));
    }
}

/// Spearman's rank correlation of paired values (ties share their mean
/// rank); `None` for fewer than three pairs or a constant side.
pub fn spearman(a: &[f64], b: &[f64]) -> Option<f64> {
    let n = a.len().min(b.len());
    if n < 3 {
        return None;
    }
    let (ra, rb) = (ranks(&a[..n]), ranks(&b[..n]));
    let mean = (n as f64 - 1.0) / 2.0;
    let (mut num, mut da, mut db) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        num += (x - mean) * (y - mean);
        da += (x - mean) * (x - mean);
        db += (y - mean) * (y - mean);
    }
    (da > 0.0 && db > 0.0).then(|| num / (da * db).sqrt())
}

/// 0-based ranks, ties at their mean rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && v[order[j + 1]] == v[order[i]] {
            j += 1;
        }
        for &k in &order[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

#[cfg(test)]
mod spearman_tests {
    use super::spearman;

    #[test]
    fn hand_computed_rank_correlations() {
        assert_eq!(
            spearman(&[1.0, 2.0, 3.0, 4.0], &[10.0, 20.0, 35.0, 90.0]),
            Some(1.0)
        );
        assert_eq!(spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]), Some(-1.0));
        // Ranks (0, 1, 2, 3) against (1, 0, 3, 2): Σd² = 4, ρ = 1 − 6·4/(4·15) = 0.6.
        let r = spearman(&[1.0, 2.0, 3.0, 4.0], &[2.0, 1.0, 4.0, 3.0]).unwrap();
        assert!((r - 0.6).abs() < 1e-12);
        // Ties: (0.5, 0.5, 2) against (0, 1, 2) gives √3/2.
        let t = spearman(&[5.0, 5.0, 7.0], &[1.0, 2.0, 3.0]).unwrap();
        assert!((t - 3f64.sqrt() / 2.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
    }
}
