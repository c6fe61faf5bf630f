//! The lifetime plan: for each code (802.11n length × rate) and scrub interval T, the
//! probability that any codeword becomes uncorrectable during the mission, and the cheapest
//! combination that meets the profile's target.
//!
//! Model (Saleh, Serrano & Patel, "Reliability of scrubbing recovery-techniques for memory
//! systems", IEEE Trans. Reliability 39(1), 1990): every scrub interval starts from a clean
//! copy, so errors only accumulate for T hours; one interval fails a codeword with the
//! decoder's frame error rate at the raw BER reached after T, FER(BER(T)); a union bound over
//! the W codewords and the ⌈L/T⌉ intervals of the lifetime L gives
//! P ≈ min(1, W · ⌈L/T⌉ · FER(BER(T))) (the last, partial interval counted as a full one).
//! FER comes from the decoder's own measured curve ([`FerCurve`]), not a binomial tail.
//!
//! Assumption: a scrub restores *every* copy the placement stores — the RAM working copy
//! (what `sturdy_runtime::protect::Scrubber` repairs on the device) and, for placements with
//! flash, the flash image itself (a page rewrite, counted in `refresh_cycles`). The firmware
//! as built repairs the RAM copy only: its flash image keeps aging from the day it was
//! programmed, so a reload late in life reads it at the full retention BER of its age. Until
//! flash refresh is built, the rows are what a device that refreshes its flash gets; for the
//! firmware as it is, the RAM share of each row holds and the flash image must survive the
//! no-scrubbing row's retention BER.

use anyhow::{bail, Result};
use serde::Serialize;

use super::ber::ber;
use super::profile::{MissionProfile, HOURS_PER_YEAR};

/// Scrub intervals `sturdy aging plan` tries by default, in hours: 1 h, 1 day, 1 week,
/// 30 days, 1 year. [`plan`] always adds the lifetime itself ("no scrubbing").
pub const DEFAULT_INTERVALS_HOURS: &[f64] = &[1.0, 24.0, 168.0, 720.0, HOURS_PER_YEAR];

/// One measured point of a code's FER curve: `frames` decoded at raw bit-error rate `ber`,
/// `frame_errors` of them not recovered.
///
/// Exists so the plan uses the runtime's real decoder (measured by the caller), not a model.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FerPoint {
    /// Raw channel bit-error rate of the simulation, in (0, 1].
    pub ber: f64,
    /// Frames (codewords) decoded, ≥ 1.
    pub frames: u64,
    /// Frames decoded wrongly or flagged uncorrectable, ≤ `frames`.
    pub frame_errors: u64,
}

/// A code's FER as a function of raw BER, from measured points.
///
/// Exists because the plan needs FER at BERs far below what simulation can reach. Within the
/// measured range (points with ≥ 1 frame error) FER is interpolated linearly in log10(FER)
/// vs log10(BER); outside it, it is EXTRAPOLATED from the nearest measured point along the
/// least-squares slope of log10(FER) vs log10(BER) over all points with errors. The slope of
/// a t-error-correcting code tends to ≥ t + 1 at low BER, but LDPC codes have an error floor
/// (trapping sets) that a slope fitted above the floor misses, so extrapolated FERs can be
/// UNDERESTIMATES; rows that rely on them are flagged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FerCurve {
    /// Least-squares slope of log10(FER) per decade of BER (> 0).
    slope: f64,
    /// The measured points, pooled by equal BER, by ascending BER.
    points: Vec<FerPoint>,
    /// (log10 BER, log10 FER) of the points with ≥ 1 frame error, ascending; ≥ 2 entries.
    #[serde(skip)]
    log_points: Vec<(f64, f64)>,
}

impl FerCurve {
    /// Fits the curve of code `label` to `points`; errors name the code when a point is
    /// invalid, fewer than 2 BERs have frame errors, or FER does not fall with BER.
    pub fn fit(label: &str, points: &[FerPoint]) -> Result<FerCurve> {
        for (i, p) in points.iter().enumerate() {
            let ok = p.ber > 0.0 && p.ber <= 1.0 && p.frames > 0 && p.frame_errors <= p.frames;
            if !ok {
                bail!(
                    "{label}: FER point {i} ({p:?}): needs BER in (0, 1], frames ≥ 1, \
                     errors ≤ frames"
                );
            }
        }
        let mut sorted = points.to_vec();
        sorted.sort_by(|a, b| a.ber.total_cmp(&b.ber));
        let mut pooled: Vec<FerPoint> = Vec::with_capacity(sorted.len());
        for p in sorted {
            match pooled.last_mut() {
                Some(last) if last.ber == p.ber => {
                    last.frames = last.frames.saturating_add(p.frames);
                    last.frame_errors = last.frame_errors.saturating_add(p.frame_errors);
                }
                _ => pooled.push(p),
            }
        }
        let log_points: Vec<(f64, f64)> = pooled
            .iter()
            .filter(|p| p.frame_errors > 0)
            .map(|p| {
                (
                    p.ber.log10(),
                    (p.frame_errors as f64 / p.frames as f64).log10(),
                )
            })
            .collect();
        if log_points.len() < 2 {
            bail!(
                "{label}: FER curve needs ≥ 2 BERs with ≥ 1 frame error, got {}; \
                 simulate more frames or higher BERs",
                log_points.len()
            );
        }
        let n = log_points.len() as f64;
        let mx = log_points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = log_points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxx: f64 = log_points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = log_points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let slope = sxy / sxx;
        if slope.is_nan() || slope <= 0.0 {
            bail!(
                "{label}: measured FER does not fall with BER (fitted slope {slope:.3}); \
                 measure more frames"
            );
        }
        Ok(FerCurve {
            slope,
            points: pooled,
            log_points,
        })
    }

    /// Decades of FER per decade of BER, as fitted (what the extrapolation assumes).
    pub fn slope(&self) -> f64 {
        self.slope
    }

    /// The measured points the curve was fitted to, pooled by BER, ascending.
    pub fn points(&self) -> &[FerPoint] {
        &self.points
    }

    /// FER at raw bit-error rate `ber`, clamped to [0, 1], and whether it was extrapolated
    /// outside the measured range. BER ≤ 0 gives FER 0.
    pub fn fer_at(&self, ber: f64) -> (f64, bool) {
        if ber <= 0.0 {
            return (0.0, false);
        }
        let x = ber.log10();
        let pts = &self.log_points;
        if let Some(w) = pts.windows(2).find(|w| (w[0].0..=w[1].0).contains(&x)) {
            let y = w[0].1 + (w[1].1 - w[0].1) * (x - w[0].0) / (w[1].0 - w[0].0);
            return (10f64.powf(y).clamp(0.0, 1.0), false);
        }
        let end = pts.first().filter(|p| x < p.0).or(pts.last());
        // Without measured points (impossible after `fit`), assume the worst: FER 1.
        let y = end.map_or(0.0, |&(x0, y0)| y0 + self.slope * (x - x0));
        (10f64.powf(y).clamp(0.0, 1.0), true)
    }
}

/// One code the plan may choose, with the sizes the real encoder gives for the model.
///
/// Exists so the plan compares codes by what they cost in flash (`stored_bytes`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Candidate {
    /// Human-readable code name, e.g. "n=1944 r=5/6".
    pub label: String,
    /// Codeword length n in bits (648, 1296 or 1944).
    pub codeword_bits: usize,
    /// Message bits k per codeword.
    pub message_bits: usize,
    /// Codewords W protecting the model.
    pub codewords: usize,
    /// Bytes the protected model occupies.
    pub stored_bytes: usize,
    /// The decoder's measured FER curve for this code.
    pub fer: FerCurve,
}

/// One code × scrub interval of the plan, with every figure behind its verdict.
///
/// Exists for the table of alternatives `sturdy aging plan` prints (and `--json`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanRow {
    /// The candidate's label.
    pub label: String,
    /// Scrub interval T in hours (the lifetime when not scrubbing).
    pub interval_hours: f64,
    /// False for the "no scrubbing" row (T = lifetime).
    pub scrubbed: bool,
    /// Raw BER reached after T ([`ber`] total).
    pub ber_at_interval: f64,
    /// FER at that BER.
    pub fer: f64,
    /// Whether `fer` was extrapolated below (or above) the measured range.
    pub extrapolated: bool,
    /// P(any uncorrectable codeword over the lifetime) ≈ min(1, W · ⌈L/T⌉ · FER).
    pub lifetime_failure: f64,
    /// Flash erase/program cycles per page over the lifetime, ⌈L/T⌉ including the first
    /// programming (0 when the placement has no flash). For `flash+ram-copy` this is the
    /// WORST case: a scrub repairs the RAM copy and rewrites a flash page only when one of
    /// its flash words needed correction.
    pub refresh_cycles: u64,
    /// `refresh_cycles` ≤ the profile's `flash.endurance_cycles`.
    pub endurance_ok: bool,
    /// `lifetime_failure` ≤ `target_failure` and `endurance_ok`.
    pub meets: bool,
    /// The candidate's stored bytes.
    pub stored_bytes: usize,
    /// The candidate's codewords W.
    pub codewords: usize,
}

/// Every candidate × interval, and the row chosen.
///
/// Exists so the CLI prints the alternatives and `protect --profile` applies the choice.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Plan {
    /// Rows by candidate (in the given order), then by ascending interval.
    pub rows: Vec<PlanRow>,
    /// Index in `rows` of the choice: the smallest `stored_bytes` that meets the target,
    /// then the longest interval (fewest scrub passes), then the lower failure probability.
    /// `None` when no row meets the target.
    pub choice: Option<usize>,
}

impl Plan {
    /// The chosen row, if any.
    pub fn chosen(&self) -> Option<&PlanRow> {
        self.choice.and_then(|i| self.rows.get(i))
    }
}

/// What `sturdy protect --profile` records in the artifact's metadata: the
/// chosen row and the profile it was chosen for, so `inspect` shows why
/// the code and scrub interval are what they are.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AppliedPlan {
    /// The profile file the plan was made for.
    pub profile: String,
    /// Mission lifetime in years.
    pub lifetime_years: f64,
    /// The target it meets.
    pub target_failure: f64,
    /// The chosen code, e.g. "n=1944 r=5/6".
    pub code: String,
    /// Scrub interval in hours (the lifetime: no scrubbing needed).
    pub scrub_interval_hours: f64,
    /// Predicted probability of any uncorrectable codeword over the lifetime.
    pub lifetime_failure: f64,
    /// Raw BER per stored bit reached after one interval.
    pub ber_at_interval: f64,
    /// Whether the FER behind the figure was extrapolated below the
    /// measured range.
    pub extrapolated: bool,
}

/// Evaluates every candidate at every interval of `intervals_hours` shorter than the
/// lifetime, plus the lifetime itself (no scrubbing), and chooses. Intervals not shorter than
/// the lifetime are the no-scrubbing row; a non-positive or non-finite one is an error.
pub fn plan(
    profile: &MissionProfile,
    candidates: &[Candidate],
    intervals_hours: &[f64],
) -> Result<Plan> {
    let life = profile.lifetime_hours();
    let mut intervals = Vec::with_capacity(intervals_hours.len() + 1);
    for &t in intervals_hours {
        if !t.is_finite() || t <= 0.0 {
            bail!("scrub interval {t} h: must be a positive number of hours");
        }
        if t < life {
            intervals.push(t);
        }
    }
    intervals.sort_by(f64::total_cmp);
    intervals.dedup();
    intervals.push(life);
    let rows: Vec<PlanRow> = candidates
        .iter()
        .flat_map(|c| intervals.iter().map(move |&t| row(profile, c, t)))
        .collect();
    let choice = rows
        .iter()
        .enumerate()
        .filter(|(_, r)| r.meets)
        .min_by(|(_, a), (_, b)| {
            a.stored_bytes
                .cmp(&b.stored_bytes)
                .then(b.interval_hours.total_cmp(&a.interval_hours))
                .then(a.lifetime_failure.total_cmp(&b.lifetime_failure))
        })
        .map(|(i, _)| i);
    Ok(Plan { rows, choice })
}

/// One row: candidate `c` scrubbed every `t` hours (t ≤ lifetime).
fn row(profile: &MissionProfile, c: &Candidate, t: f64) -> PlanRow {
    let life = profile.lifetime_hours();
    // ⌈L/T⌉, tolerant of rounding when T divides L.
    let intervals = (life / t - 1e-9).ceil().max(1.0);
    let ber_at_interval = ber(profile, t).total;
    let (fer, extrapolated) = c.fer.fer_at(ber_at_interval);
    let lifetime_failure = (c.codewords as f64 * intervals * fer).min(1.0);
    let refresh_cycles = if profile.placement.has_flash() {
        intervals as u64
    } else {
        0
    };
    let endurance_ok = refresh_cycles <= profile.flash.endurance_cycles;
    PlanRow {
        label: c.label.clone(),
        interval_hours: t,
        scrubbed: t < life,
        ber_at_interval,
        fer,
        extrapolated,
        lifetime_failure,
        refresh_cycles,
        endurance_ok,
        meets: lifetime_failure <= profile.target_failure && endurance_ok,
        stored_bytes: c.stored_bytes,
        codewords: c.codewords,
    }
}

#[cfg(test)]
mod tests {
    use super::super::profile::Placement;
    use super::*;

    fn pt(ber: f64, frames: u64, frame_errors: u64) -> FerPoint {
        FerPoint {
            ber,
            frames,
            frame_errors,
        }
    }

    /// A candidate whose FER curve passes exactly through `points`.
    fn cand(label: &str, bytes: usize, codewords: usize, points: &[FerPoint]) -> Candidate {
        let fer = FerCurve::fit(label, points).expect("fit");
        let (codeword_bits, message_bits) = (648, 540);
        Candidate {
            label: label.into(),
            codeword_bits,
            message_bits,
            codewords,
            stored_bytes: bytes,
            fer,
        }
    }

    /// 10 years in RAM, 1000 FIT/Mbit, no bursts: BER(T) = 1 − exp(−λT), λ = 1e-6 / 2^20.
    fn ram_profile() -> MissionProfile {
        let mut p = MissionProfile::harsh();
        p.placement = Placement::Ram;
        p.ram.burst_share = 0.0;
        p
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn fit_recovers_power_law_slope() {
        // FER = 1e3 · BER^4 at 1e8 frames: 1e-2 → 1e-5 (1000 errors), 3e-2 → 8.1e-4 (81000),
        // 5e-2 → 6.25e-3 (625000), 1e-1 → 0.1 (1e7); 1e-3 has no errors and is not fitted.
        let points = [
            pt(1e-1, 100_000_000, 10_000_000),
            pt(3e-2, 100_000_000, 81_000),
        ]
        .into_iter()
        .chain([pt(5e-2, 100_000_000, 625_000), pt(1e-2, 100_000_000, 1000)])
        .chain([pt(1e-3, 1_000_000, 0)])
        .collect::<Vec<_>>();
        let c = FerCurve::fit("r=1/2", &points).expect("fit");
        assert!((c.slope() - 4.0).abs() < 1e-9, "{}", c.slope());
        // Inside: 2e-2 → 1e3 · 1.6e-7 = 1.6e-4. Below: 1e-3 → 1e3 · 1e-12 = 1e-9.
        let (fer, ex) = c.fer_at(2e-2);
        assert!(close(fer, 1.6e-4, 1e-9) && !ex);
        let (fer, ex) = c.fer_at(1e-3);
        assert!(close(fer, 1e-9, 1e-9) && ex);
        assert_eq!(c.fer_at(0.0), (0.0, false));
        assert_eq!(c.fer_at(0.9), (1.0, true)); // 1e3 · 0.9^4 = 656 → clamped
    }

    #[test]
    fn fit_errors_name_the_code() {
        let few = [pt(1e-2, 1000, 5), pt(1e-3, 1000, 0)];
        let e = FerCurve::fit("n=648 r=5/6", &few)
            .expect_err("one point")
            .to_string();
        assert!(e.contains("n=648 r=5/6") && e.contains("got 1"), "{e}");
        // Two runs at the same BER pool into one point: still only one BER.
        let same = [pt(1e-2, 1000, 5), pt(1e-2, 1000, 7)];
        assert!(FerCurve::fit("x", &same).is_err());
        assert!(FerCurve::fit("x", &[pt(1e-2, 10, 11), pt(1e-1, 10, 1)]).is_err());
        assert!(FerCurve::fit("x", &[pt(1e-2, 10, 5), pt(1e-1, 10, 1)]).is_err());
        // rising
    }

    #[test]
    fn union_bound_by_hand() {
        // FER = BER² (points (1e-1, 1e-2), (1e-2, 1e-4)), W = 10 codewords, L = 87660 h.
        // T = 1 y: λT = 8.3599090576e-9, BER = 8.3599090227e-9, FER = 6.98880789e-17,
        //   P = 10 · (87660 / 8766 = 10) · 6.98880789e-17 = 6.98880789e-15.
        // No scrubbing: λL = 8.3599090576e-8, BER = λL − (λL)²/2 = 8.3599087081e-8,
        //   FER = 6.98880731e-15, P = 10 · 1 · FER = 6.98880731e-14.
        let c = cand("sq", 100, 10, &[pt(1e-1, 100, 1), pt(1e-2, 10_000, 1)]);
        let plan = plan(&ram_profile(), &[c], &[HOURS_PER_YEAR]).expect("plan");
        assert_eq!(plan.rows.len(), 2);
        let (y, none) = (&plan.rows[0], &plan.rows[1]);
        assert!(close(y.ber_at_interval, 8.3599090227e-9, 1e-9));
        assert!(close(y.lifetime_failure, 6.98880789e-15, 1e-8) && y.extrapolated);
        assert!(!none.scrubbed && close(none.interval_hours, 87660.0, 1e-12));
        assert!(close(none.lifetime_failure, 6.98880731e-14, 1e-8));
        assert_eq!((y.refresh_cycles, none.refresh_cycles), (0, 0)); // RAM only: no flash
        assert_eq!(plan.choice, Some(1)); // both meet 1e-6: the longest interval wins
    }

    #[test]
    fn plan_serializes_for_json() {
        let c = cand(
            "n=648 r=5/6",
            100,
            10,
            &[pt(1e-1, 100, 1), pt(1e-2, 10_000, 1)],
        );
        let plan = plan(&ram_profile(), std::slice::from_ref(&c), &[24.0]).expect("plan");
        let v = serde_json::to_value(&plan).expect("json");
        assert_eq!(v["choice"], 1);
        assert_eq!(v["rows"][0]["label"], "n=648 r=5/6");
        assert_eq!(v["rows"][0]["interval_hours"], 24.0);
        let v = serde_json::to_value(&c).expect("json");
        assert_eq!(v["fer"]["points"][0]["frame_errors"], 1);
        assert!((v["fer"]["slope"].as_f64().expect("slope") - 2.0).abs() < 1e-12);
        assert!(v["fer"].get("log_points").is_none());
    }

    #[test]
    fn choice_smallest_storage_then_longest_interval() {
        // "small": FER = 3e7 · BER², W = 1000: P ≈ W · ⌈L/T⌉ · 3e7 · (λT)², with λ = 9.537e-13:
        //   T = 1 week: 1000 · 522 · 3e7 · (1.6022e-10)² = 4.02e-7 ≤ 1e-6, meets;
        //   T = 30 d: 1000 · 122 · 3e7 · (6.8665e-10)² = 1.73e-6 > 1e-6, fails.
        // "big": FER = BER, W = 10: P = 10 · λL = 8.36e-7 at every T, meets.
        let small = [pt(1e-4, 10, 3), pt(1e-5, 1000, 3)];
        let linear = [pt(1e-1, 10, 1), pt(1e-2, 100, 1)];
        let cands = [
            cand("big", 200, 10, &linear),
            cand("small", 100, 1000, &small),
        ];
        let p = plan(&ram_profile(), &cands, DEFAULT_INTERVALS_HOURS).expect("plan");
        let chosen = p.chosen().expect("a choice");
        assert_eq!(
            (chosen.label.as_str(), chosen.interval_hours),
            ("small", 168.0)
        );
        assert!(!p
            .rows
            .iter()
            .any(|r| r.label == "small" && r.interval_hours == 720.0 && r.meets));
        // Same storage: the longest interval wins, i.e. "big" without scrubbing.
        let cands = [
            cand("big", 100, 10, &linear),
            cand("small", 100, 1000, &small),
        ];
        let p = plan(&ram_profile(), &cands, DEFAULT_INTERVALS_HOURS).expect("plan");
        let chosen = p.chosen().expect("a choice");
        assert_eq!(chosen.label, "big");
        assert!(!chosen.scrubbed);
    }

    #[test]
    fn endurance_limits_flash_refresh() {
        // Flash, hourly scrub over 10 years: 87660 cycles > 10000; daily: 3653 cycles.
        let mut prof = MissionProfile::harsh();
        prof.placement = Placement::Flash;
        let c = cand("c", 100, 10, &[pt(1e-1, 1000, 1), pt(1e-2, 1_000_000, 1)]);
        let p = plan(&prof, &[c], &[1.0, 24.0]).expect("plan");
        assert_eq!(p.rows[0].refresh_cycles, 87660);
        assert!(!p.rows[0].endurance_ok && !p.rows[0].meets);
        assert_eq!(p.rows[1].refresh_cycles, 3653);
        assert!(p.rows[1].endurance_ok);
        assert_eq!(p.rows[2].refresh_cycles, 1); // no scrubbing: the first programming
    }

    #[test]
    fn impossible_target_has_no_choice() {
        let mut prof = ram_profile();
        prof.target_failure = 1e-30;
        let c = cand("c", 100, 10, &[pt(1e-1, 10, 1), pt(1e-2, 100, 1)]);
        let p = plan(&prof, &[c], DEFAULT_INTERVALS_HOURS).expect("plan");
        assert_eq!(p.rows.len(), 6);
        assert_eq!(p.choice, None);
        assert!(p.chosen().is_none());
    }

    #[test]
    fn intervals_are_checked_and_capped() {
        let prof = ram_profile();
        let c = cand("c", 100, 10, &[pt(1e-1, 10, 1), pt(1e-2, 100, 1)]);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                plan(&prof, std::slice::from_ref(&c), &[bad]).is_err(),
                "{bad}"
            );
        }
        // Longer than the lifetime and duplicates collapse: 24 h and no scrubbing.
        let p = plan(&prof, &[c], &[24.0, 24.0, 1e9, prof.lifetime_hours()]).expect("plan");
        let t: Vec<f64> = p.rows.iter().map(|r| r.interval_hours).collect();
        assert_eq!(t, vec![24.0, prof.lifetime_hours()]);
    }
}
