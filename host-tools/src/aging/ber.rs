//! BER(t): the probability that one stored bit has flipped `t` hours after the last refresh
//! (flash) or scrub (RAM), for a [`MissionProfile`].
//!
//! Two mechanisms, each with its formula and source on the function:
//! - flash retention loss, accelerated by temperature (Arrhenius, time-at-temperature budget
//!   of ST AN5866) and turned into a BER by a per-cell Weibull time-to-fail ANCHORED at the
//!   datasheet retention ([`retention_ber`]);
//! - RAM soft errors, a Poisson process at the profile's FIT rate, multi-bit events counted
//!   by the bits they flip ([`soft_error_ber`]).
//!
//! Bits are modelled as independent. For soft-error bursts that is the model of what one
//! codeword sees, not of the memory: the keyed interleaver spreads a burst's adjacent bits
//! over different codewords, so each codeword sees at most one of them (as long as the burst
//! is shorter than the interleaving depth).

use serde::Serialize;

use super::profile::MissionProfile;

/// Boltzmann constant in eV/K (CODATA 2018, exact by the 2019 SI definition).
pub const BOLTZMANN_EV_PER_K: f64 = 8.617333262e-5;

/// 0 °C in kelvin: converts the profile's °C to the absolute temperature Arrhenius needs.
pub const ZERO_CELSIUS_K: f64 = 273.15;

/// Bits in one Mbit as FIT/Mbit figures use it (2^20).
pub const BITS_PER_MBIT: f64 = 1_048_576.0;

/// Device-hours per FIT unit: 1 FIT = 1 failure per 1e9 device-hours.
pub const HOURS_PER_FIT: f64 = 1e9;

/// Arrhenius acceleration of aging at `use_celsius` relative to `ref_celsius`:
/// AF = exp[(Ea/k)·(1/T_ref − 1/T_use)], T in kelvin (JEDEC JESD22-A117, ST AN5866).
///
/// Exists to move the datasheet's retention (given at `ref_celsius`) to the mission's
/// temperatures; > 1 when `use_celsius` is hotter (faster aging), 1 at equal temperatures.
pub fn arrhenius_factor(activation_ev: f64, use_celsius: f64, ref_celsius: f64) -> f64 {
    let t_use = use_celsius + ZERO_CELSIUS_K;
    let t_ref = ref_celsius + ZERO_CELSIUS_K;
    ((activation_ev / BOLTZMANN_EV_PER_K) * (1.0 / t_ref - 1.0 / t_use)).exp()
}

/// Hours at the datasheet retention temperature that `hours` of the mission's temperature mix
/// are worth: Σ_i share_i · hours · AF(T_i vs retention_celsius), the time-at-temperature
/// budget of ST AN5866 (each temperature consumes retention at its own Arrhenius rate).
///
/// Exists because retention is given at one temperature and the mission spends its time at
/// several. Assumes the shares are spread evenly over any interval (the mix, not its order).
pub fn equivalent_hours(profile: &MissionProfile, hours: f64) -> f64 {
    let f = &profile.flash;
    let rate: f64 = profile
        .temperature
        .iter()
        .map(|t| t.share * arrhenius_factor(f.activation_ev, t.celsius, f.retention_celsius))
        .sum();
    rate * hours.max(0.0)
}

/// Fraction of the datasheet retention used by `hours` of the mission:
/// equivalent_hours / (retention_years · 8766 h); 1 means the datasheet lifetime is spent.
///
/// Exists for the report: the AN5866 budget Σ tᵢ/t_ret(Tᵢ) ≤ 1 in one number.
pub fn retention_budget_used(profile: &MissionProfile, hours: f64) -> f64 {
    equivalent_hours(profile, hours) / profile.flash.retention_hours()
}

/// Flash retention BER after `hours` since the last program: per-cell Weibull time-to-fail,
/// BER = 1 − exp(−(t_eq/η)^β), with η = t_ret / (−ln(1 − ber_at_retention))^(1/β) so that
/// BER(t_eq = t_ret) = ber_at_retention exactly.
///
/// Exists because datasheets give a lifetime, not a BER(t) curve: the curve's shape (β) and
/// its anchor (ber_at_retention) are ASSUMPTIONS of the profile, documented there. Computed
/// as (t_eq/η)^β = u^β · (−ln(1 − b)) with u = [`retention_budget_used`], using ln_1p and
/// exp_m1 so BERs far below f64's epsilon keep their precision.
pub fn retention_ber(profile: &MissionProfile, hours: f64) -> f64 {
    let f = &profile.flash;
    let u = retention_budget_used(profile, hours);
    let x = u.powf(f.weibull_shape) * -(-f.ber_at_retention).ln_1p();
    -(-x).exp_m1()
}

/// Bits flipped per bit of RAM per hour: λ_event · [(1 − burst_share) + burst_share ·
/// burst_bits], with λ_event = fit_per_mbit · 1e-9 / 2^20 upset events per bit-hour
/// (1 FIT = 1 event per 1e9 device-hours; IEC 61508 quotes FIT per Mbit of 2^20 bits).
///
/// Exists because a multi-bit event flips several bits: the rate counts flipped bits, each
/// landing in a different codeword (see the module docs on the interleaver).
pub fn soft_error_rate_per_bit_hour(profile: &MissionProfile) -> f64 {
    let r = &profile.ram;
    let events = r.fit_per_mbit / HOURS_PER_FIT / BITS_PER_MBIT;
    let bits_per_event = (1.0 - r.burst_share) + r.burst_share * f64::from(r.burst_bits);
    events * bits_per_event
}

/// RAM soft-error BER after `hours` since the last scrub: 1 − exp(−rate · hours), the Poisson
/// probability of at least one upset of a bit (rate from [`soft_error_rate_per_bit_hour`]).
///
/// Exists because upsets accumulate in the RAM copy until a scrub repairs them.
pub fn soft_error_ber(profile: &MissionProfile, hours: f64) -> f64 {
    -(-soft_error_rate_per_bit_hour(profile) * hours.max(0.0)).exp_m1()
}

/// BER of one stored bit at one time, by mechanism.
///
/// Exists so `sturdy aging curve` shows which mechanism dominates, next to the total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BerBreakdown {
    /// Flash retention BER (0 when the placement has no flash).
    pub retention: f64,
    /// RAM soft-error BER (0 when the placement has no RAM copy).
    pub soft: f64,
    /// Probability that either flipped the bit: 1 − (1 − retention)(1 − soft).
    pub total: f64,
}

/// BER after `hours` since the last refresh/scrub, by the profile's placement: `flash` →
/// retention only; `ram` → soft errors only; `flash+ram-copy` → both, independent.
///
/// Exists as the one BER(t) the plan and the lifetime simulation use.
pub fn ber(profile: &MissionProfile, hours: f64) -> BerBreakdown {
    let p = profile.placement;
    let retention = if p.has_flash() {
        retention_ber(profile, hours)
    } else {
        0.0
    };
    let soft = if p.has_ram() {
        soft_error_ber(profile, hours)
    } else {
        0.0
    };
    BerBreakdown {
        retention,
        soft,
        total: retention + soft - retention * soft,
    }
}

/// `points` samples of [`ber`] at log-spaced hours from 1 h to the lifetime (both included;
/// one point is the lifetime alone), as `(hours, breakdown)`.
///
/// Exists for `sturdy aging curve`: BER over decades of time on one axis.
pub fn curve(profile: &MissionProfile, points: usize) -> Vec<(f64, BerBreakdown)> {
    let ln_end = profile.lifetime_hours().ln();
    (0..points)
        .map(|i| {
            let frac = if points == 1 {
                1.0
            } else {
                i as f64 / (points - 1) as f64
            };
            let hours = (frac * ln_end).exp();
            (hours, ber(profile, hours))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::profile::{Placement, Temperature, HOURS_PER_YEAR};
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn arrhenius_85_vs_25_at_1_1_ev() {
        // Ea/k = 1.1 / 8.617333262e-5 = 12764.9699 K.
        // 1/298.15 − 1/358.15 = 60 / (298.15 · 358.15) = 60 / 106782.4225 = 5.6189023e-4 /K.
        // exponent = 12764.9699 · 5.6189023e-4 = 7.172509; exp(7.172509) = 1303.11.
        let af = arrhenius_factor(1.1, 85.0, 25.0);
        assert!(close(af, 1303.11, 1e-5), "{af}");
        assert!(close(
            arrhenius_factor(1.1, 25.0, 85.0),
            1.0 / 1303.11,
            1e-5
        ));
        assert_eq!(arrhenius_factor(1.1, 60.0, 60.0), 1.0);
    }

    #[test]
    fn time_at_temperature_two_temperatures() {
        // Harsh: 80 % at 40 °C, 20 % at 85 °C, reference 85 °C, 1.0 eV.
        // AF(40 vs 85) = exp[(1.0 / 8.617333262e-5) · (1/358.15 − 1/313.15)]
        //   = exp[11604.518 · (−45 / 112154.6725)] = exp(−4.656080) = 0.00950346.
        // Per mission hour: 0.8 · 0.00950346 + 0.2 · 1 = 0.20760277 hours at 85 °C.
        // 1000 h → 207.60277 h; retention 10 y = 87660 h → budget 207.60277 / 87660.
        let p = MissionProfile::harsh();
        assert!(close(equivalent_hours(&p, 1000.0), 207.60277, 1e-6));
        assert!(close(
            retention_budget_used(&p, 1000.0),
            207.60277 / 87660.0,
            1e-6
        ));
    }

    #[test]
    fn poisson_1000_fit_per_mbit_over_one_year() {
        // λ = 1000 · 1e-9 / 2^20 = 1e-6 / 1048576 = 9.5367431640625e-13 per bit-hour.
        // No bursts: 1 bit per event. 1 year = 8766 h → λt = 8.3599090576e-9.
        // BER = 1 − exp(−λt) = λt − (λt)²/2 = 8.3599090576e-9 − 3.494e-17 = 8.3599090227e-9.
        let mut p = MissionProfile::harsh();
        p.ram.burst_share = 0.0;
        assert_eq!(soft_error_rate_per_bit_hour(&p), 9.5367431640625e-13);
        assert!(close(
            soft_error_ber(&p, HOURS_PER_YEAR),
            8.3599090227e-9,
            1e-9
        ));
        // Bursts: 10 % of events flip 2 bits → 0.9 + 0.2 = 1.1 bits per event.
        p.ram.burst_share = 0.1;
        assert!(close(
            soft_error_rate_per_bit_hour(&p),
            1.1 * 9.5367431640625e-13,
            1e-12
        ));
    }

    #[test]
    fn anchor_at_datasheet_retention() {
        // One temperature equal to the retention temperature: AF = 1, t_eq = t, so at
        // t = retention the BER is ber_at_retention, for any Weibull shape.
        let mut p = MissionProfile::harsh();
        p.temperature = vec![Temperature {
            celsius: 85.0,
            share: 1.0,
        }];
        let t_ret = p.flash.retention_hours();
        for beta in [0.5, 1.0, 3.0] {
            p.flash.weibull_shape = beta;
            assert!(close(retention_ber(&p, t_ret), 1e-6, 1e-9), "β = {beta}");
        }
        // β = 1 and tiny BERs: BER ≈ b · t/t_ret, linear (1e-6 · 1e-3 = 1e-9 at t_ret/1000).
        p.flash.weibull_shape = 1.0;
        assert!(close(retention_ber(&p, t_ret / 1000.0), 1e-9, 1e-6));
    }

    #[test]
    fn monotone_in_time_and_temperature() {
        let p = MissionProfile::harsh();
        let c = curve(&p, 20);
        assert_eq!(c.len(), 20);
        assert!(close(c[0].0, 1.0, 1e-12) && close(c[19].0, p.lifetime_hours(), 1e-12));
        for w in c.windows(2) {
            assert!(w[1].0 > w[0].0 && w[1].1.total > w[0].1.total);
            assert!(w[1].1.retention > w[0].1.retention && w[1].1.soft > w[0].1.soft);
        }
        let mut hot = p.clone();
        hot.temperature[1].celsius = 105.0;
        assert!(retention_ber(&hot, 1000.0) > retention_ber(&p, 1000.0));
    }

    #[test]
    fn placement_selects_mechanisms() {
        let mut p = MissionProfile::harsh();
        let both = ber(&p, 1000.0);
        assert!(close(both.total, both.retention + both.soft, 1e-9));
        p.placement = Placement::Flash;
        assert_eq!(ber(&p, 1000.0).soft, 0.0);
        assert_eq!(ber(&p, 1000.0).total, both.retention);
        p.placement = Placement::Ram;
        assert_eq!(ber(&p, 1000.0).retention, 0.0);
        assert_eq!(ber(&p, 1000.0).total, both.soft);
        assert_eq!(ber(&p, 0.0).total, 0.0);
    }
}
