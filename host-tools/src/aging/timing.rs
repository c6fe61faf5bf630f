//! Aging of the logic: how NBTI slows transistors over a mission, when a
//! fixed clock's margin runs out, and how many output bits come out wrong
//! after that — the rate `sturdy run --timing-faults` injects.
//!
//! - **NBTI** (reaction–diffusion power law with Arrhenius acceleration):
//!   `ΔVth(t) = A·exp(−Ea/kT)·tⁿ`, `n = 1/6` (H₂ diffusion), `Ea = 0.49 eV`
//!   (Bhardwaj, Wang, Vattikonda, Cao, Vrudhula, "Predictive modeling of the
//!   NBTI effect for reliable design", CICC 2006). `A` is anchored, not
//!   derived: [`LogicAging::dvth_ref_mv`] after [`LogicAging::ref_years`]
//!   of stress at [`LogicAging::ref_celsius`] (default 50 mV after 10 years
//!   at 125 °C, the order of magnitude reported for 65 nm pMOS under DC
//!   stress; set it from your process). A mix of temperatures ages by the
//!   time-weighted Arrhenius factor, `ΔVth = A'·(Σ shareᵢ·AF(Tᵢ))·tⁿ`.
//! - **Delay** by the alpha-power law (Sakurai–Newton 1990, α = 1.3 as in
//!   OldSpot, ICCD 2018): `d ∝ Vdd / (Vdd − Vth)^α`, so a path slows by
//!   `((Vdd − Vt0) / (Vdd − Vt0 − ΔVth))^α`; with Vdd 1.2 V and Vt0 0.5 V
//!   (OldSpot's 65 nm defaults).
//! - **Late paths**: the clock period is `(1 + guardband)` times the fresh
//!   critical path, so errors start at the age where the delay factor
//!   reaches `1 + guardband` ([`LogicAging::onset_years`]). Past it, the
//!   share of output bits latched late is *assumed* to rise a decade per
//!   [`LogicAging::decade_delay`] of extra delay from
//!   [`LogicAging::onset_rate`] (the exponential error-rate wall Razor
//!   measured on silicon as voltage scaled past the first failing path:
//!   Ernst et al., MICRO 2003), capped at 1/8. This last step is the
//!   weakest link: it depends on the design's path-slack distribution, so
//!   every constant is a flag.

use serde::Serialize;

/// Boltzmann's constant in eV/K.
const BOLTZMANN_EV: f64 = 8.617_333e-5;
/// Highest wrong-bit rate the fault emulation takes (one flip per byte).
pub const MAX_RATE: f64 = 0.125;

/// The logic-aging model's constants (module docs give their sources).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogicAging {
    /// Supply voltage, V.
    pub vdd: f64,
    /// Fresh threshold voltage, V.
    pub vt0: f64,
    /// Alpha-power-law exponent.
    pub alpha: f64,
    /// NBTI time exponent n.
    pub n: f64,
    /// NBTI activation energy, eV.
    pub ea_ev: f64,
    /// Anchor: ΔVth in mV after `ref_years` at `ref_celsius`.
    pub dvth_ref_mv: f64,
    /// Anchor age, years.
    pub ref_years: f64,
    /// Anchor temperature, °C.
    pub ref_celsius: f64,
    /// Clock margin over the fresh critical path (0.02: 2 %).
    pub guardband: f64,
    /// Wrong output bits per bit at the onset of late paths.
    pub onset_rate: f64,
    /// Extra delay (fraction) that raises the rate tenfold.
    pub decade_delay: f64,
}

impl Default for LogicAging {
    fn default() -> Self {
        LogicAging {
            vdd: 1.2,
            vt0: 0.5,
            alpha: 1.3,
            n: 1.0 / 6.0,
            ea_ev: 0.49,
            dvth_ref_mv: 50.0,
            ref_years: 10.0,
            ref_celsius: 125.0,
            guardband: 0.02,
            onset_rate: 1e-9,
            decade_delay: 0.01,
        }
    }
}

/// One point of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TimingPoint {
    /// Age, years.
    pub years: f64,
    /// Threshold shift, mV.
    pub dvth_mv: f64,
    /// Critical-path delay relative to fresh (1.0: fresh).
    pub delay_factor: f64,
    /// Wrong output bits per bit.
    pub bit_rate: f64,
}

impl LogicAging {
    /// Arrhenius acceleration of NBTI at `celsius` relative to the anchor.
    pub fn acceleration(&self, celsius: f64) -> f64 {
        let kelvin = |c: f64| c + 273.15;
        (-self.ea_ev / BOLTZMANN_EV * (1.0 / kelvin(celsius) - 1.0 / kelvin(self.ref_celsius)))
            .exp()
    }

    /// Time-weighted acceleration of a temperature mix `(celsius, share)`.
    pub fn mix_acceleration(&self, mix: &[(f64, f64)]) -> f64 {
        mix.iter().map(|&(c, s)| s * self.acceleration(c)).sum()
    }

    /// ΔVth in volts after `years` at acceleration `af`.
    pub fn dvth(&self, years: f64, af: f64) -> f64 {
        self.dvth_ref_mv * 1e-3 * af * (years.max(0.0) / self.ref_years).powf(self.n)
    }

    /// Path delay relative to fresh at threshold shift `dvth` (infinite
    /// once the overdrive is gone).
    pub fn delay_factor(&self, dvth: f64) -> f64 {
        let overdrive = self.vdd - self.vt0;
        if dvth >= overdrive {
            return f64::INFINITY;
        }
        (overdrive / (overdrive - dvth)).powf(self.alpha)
    }

    /// The age at which the critical path outgrows the clock margin, at
    /// acceleration `af` (OldSpot's inversion of the alpha-power law).
    pub fn onset_years(&self, af: f64) -> f64 {
        let overdrive = self.vdd - self.vt0;
        let dvth = overdrive * (1.0 - (1.0 + self.guardband).powf(-1.0 / self.alpha));
        let scale = self.dvth_ref_mv * 1e-3 * af;
        if scale <= 0.0 {
            return f64::INFINITY;
        }
        self.ref_years * (dvth / scale).powf(1.0 / self.n)
    }

    /// Wrong output bits per bit at delay factor `delay`.
    pub fn bit_rate(&self, delay: f64) -> f64 {
        let over = delay / (1.0 + self.guardband) - 1.0;
        if over < 0.0 {
            return 0.0;
        }
        (self.onset_rate * 10f64.powf(over / self.decade_delay.max(1e-9))).min(MAX_RATE)
    }

    /// The state after `years` at acceleration `af`.
    pub fn at(&self, years: f64, af: f64) -> TimingPoint {
        let dvth = self.dvth(years, af);
        let delay_factor = self.delay_factor(dvth);
        TimingPoint {
            years,
            dvth_mv: dvth * 1e3,
            delay_factor,
            bit_rate: self.bit_rate(delay_factor),
        }
    }

    /// `points` ages log-spaced from a day to `lifetime_years`.
    pub fn timeline(&self, lifetime_years: f64, af: f64, points: usize) -> Vec<TimingPoint> {
        let first = 1.0 / 365.25;
        let points = points.max(2);
        (0..points)
            .map(|i| {
                let f = i as f64 / (points - 1) as f64;
                self.at(first * (lifetime_years / first).powf(f), af)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchor_and_the_alpha_power_law_by_hand() {
        let m = LogicAging::default();
        // At the anchor: exactly the anchored shift.
        assert!((m.dvth(10.0, m.acceleration(125.0)) - 0.050).abs() < 1e-12);
        // 64× the time → 64^(1/6) = 2× the shift.
        assert!((m.dvth(640.0, 1.0) - 0.100).abs() < 1e-12);
        // (0.7 / 0.65)^1.3 = 1.10111…
        assert!((m.delay_factor(0.050) - (0.7f64 / 0.65).powf(1.3)).abs() < 1e-12);
        // 85 °C vs 125 °C at 0.49 eV: exp(−0.49/k·(1/358.15 − 1/398.15)) ≈ 0.2027.
        assert!((m.acceleration(85.0) - 0.2027).abs() < 5e-4);
    }

    #[test]
    fn errors_start_where_the_delay_eats_the_margin() {
        let m = LogicAging::default();
        let af = m.acceleration(85.0);
        let onset = m.onset_years(af);
        let at = m.at(onset, af);
        assert!((at.delay_factor - 1.02).abs() < 1e-9, "{at:?}");
        assert!((at.bit_rate - m.onset_rate).abs() < 1e-15);
        assert_eq!(m.at(onset * 0.99, af).bit_rate, 0.0);
        // 1 % more delay past the onset: ten times the rate.
        let later = m.bit_rate(1.02 * 1.01);
        assert!((later / m.onset_rate - 10.0).abs() < 1e-6);
        assert_eq!(m.bit_rate(10.0), MAX_RATE);
    }
}
