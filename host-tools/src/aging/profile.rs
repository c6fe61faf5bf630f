//! The mission profile: the TOML file (`--profile FILE`) that says how long the device must
//! live, how hot it runs, what the datasheet promises for flash, how often RAM takes soft
//! errors, and what failure probability is acceptable.
//!
//! Every constant the aging model uses is a field here, with its unit and source; defaults
//! are documented on the field. Errors name the file and the field
//! (`harsh.toml: temperature[1].share: must be in (0, 1], got 1.5`); array indices are
//! 0-based. Unknown keys are errors too (`deny_unknown_fields`), so a typo is never ignored.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Hours in a (Julian) year, 365.25 days × 24 h: converts the profile's years to hours.
pub const HOURS_PER_YEAR: f64 = 8766.0;

/// Where the protected model is stored while the device runs.
///
/// Exists because it decides which decay mechanisms apply: flash loses charge (retention),
/// SRAM takes particle strikes (soft errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Placement {
    /// Executed in place from flash: retention loss only.
    #[serde(rename = "flash")]
    Flash,
    /// Held only in RAM: soft errors only.
    #[serde(rename = "ram")]
    Ram,
    /// Stored in flash, run from a RAM working copy (what the firmware does; the default):
    /// both mechanisms.
    #[default]
    #[serde(rename = "flash+ram-copy")]
    FlashRamCopy,
}

impl Placement {
    /// Whether flash retention loss applies (and scrubbing may cost flash erase cycles).
    pub fn has_flash(self) -> bool {
        matches!(self, Placement::Flash | Placement::FlashRamCopy)
    }

    /// Whether RAM soft errors apply.
    pub fn has_ram(self) -> bool {
        matches!(self, Placement::Ram | Placement::FlashRamCopy)
    }
}

/// One entry of the temperature profile: the device spends `share` of its life at `celsius`.
///
/// Exists because aging is driven by the time spent at each temperature, not the average.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Temperature {
    /// Junction temperature in °C, in −55..=200 (the widest automotive/industrial range).
    pub celsius: f64,
    /// Fraction of the lifetime at this temperature, in (0, 1]; shares sum to 1 (± 1e-6).
    pub share: f64,
}

/// Flash retention and endurance, from the microcontroller's datasheet.
///
/// Exists because datasheets give one retention figure (years at a temperature), which the
/// BER model accelerates to the mission's temperatures and anchors a BER curve on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlashParams {
    /// Datasheet data retention in years (required), e.g. 10 (STM32, Nordic) or 30 (STM8L).
    pub retention_years: f64,
    /// Temperature in °C at which the datasheet retention holds (required), e.g. 85.
    pub retention_celsius: f64,
    /// Arrhenius activation energy in eV (default 1.1, as JEDEC JESD22-A117 and ST AN5866
    /// use for charge loss). Contested: NAND measurements fit ~0.6 eV "effective" and are not
    /// Arrhenius; a lower value makes cool missions age faster relative to the datasheet.
    pub activation_ev: f64,
    /// Raw bit-error rate assumed reached when the datasheet retention is used up (default
    /// 1e-6). An ASSUMPTION: datasheets give a lifetime, not a BER(t) curve, so the curve is
    /// anchored at this point.
    pub ber_at_retention: f64,
    /// Weibull shape β of the per-cell time-to-fail (default 1.0: exponential, constant
    /// hazard; > 1 models wear-out, so errors stay rarer early and rise late).
    pub weibull_shape: f64,
    /// Erase/program cycles a flash page survives (default 10 000, typical for MCU flash).
    pub endurance_cycles: u64,
}

impl FlashParams {
    /// The datasheet retention in hours (at `retention_celsius`).
    pub fn retention_hours(&self) -> f64 {
        self.retention_years * HOURS_PER_YEAR
    }
}

/// RAM soft-error rate and burst shape.
///
/// Exists because a RAM working copy takes particle-induced upsets at a rate quoted in FIT.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RamParams {
    /// Upset events per 1e9 device-hours per Mbit (2^20 bits) (default 1000; IEC 61508 quotes
    /// 700–1200 FIT/Mbit for embedded memories). 1000 FIT/Mbit ≈ 9.54e-13 events per bit-hour.
    pub fit_per_mbit: f64,
    /// Share of upset events that are multi-bit, in [0, 1] (default 0.1; grows below 65 nm).
    pub burst_share: f64,
    /// Bits flipped by one multi-bit event, ≥ 1 (default 2).
    pub burst_bits: u32,
}

/// The whole mission profile, validated.
///
/// Exists so the BER model and the plan take one checked value instead of loose numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissionProfile {
    /// Service life in years (required, > 0).
    pub lifetime_years: f64,
    /// Acceptable probability of any uncorrectable codeword over the lifetime, in (0, 1)
    /// (default 1e-6).
    pub target_failure: f64,
    /// Where the model is stored (default `flash+ram-copy`).
    pub placement: Placement,
    /// Temperature profile (required, ≥ 1 entry).
    pub temperature: Vec<Temperature>,
    /// Flash datasheet figures (`[flash]`, required).
    pub flash: FlashParams,
    /// RAM soft-error figures (`[ram]`, optional: all fields have defaults).
    pub ram: RamParams,
}

/// TOML of [`MissionProfile::harsh`], every field spelled out: an example file to start from.
pub const HARSH_TOML: &str = r#"# Harsh mission: 10 years, 20 % of the time at 85 °C.
lifetime_years = 10.0
target_failure = 1e-6        # P(any uncorrectable codeword over the lifetime)
placement = "flash+ram-copy" # "flash" | "ram" | "flash+ram-copy"

[[temperature]]
celsius = 40.0
share = 0.8

[[temperature]]
celsius = 85.0
share = 0.2

[flash]
retention_years = 10.0       # datasheet retention ...
retention_celsius = 85.0     # ... at this temperature
activation_ev = 1.0          # Arrhenius Ea (contested: NAND fits ~0.6 eV)
ber_at_retention = 1e-6      # assumed raw BER when the retention is used up
weibull_shape = 1.0          # 1 = exponential time-to-fail per cell
endurance_cycles = 10000     # erase/program cycles per page

[ram]
fit_per_mbit = 1000.0        # IEC 61508: 700-1200 FIT/Mbit
burst_share = 0.1            # share of multi-bit upset events
burst_bits = 2               # bits flipped by one multi-bit event
"#;

/// TOML of [`MissionProfile::mild`]: only what differs from the defaults.
pub const MILD_TOML: &str = r#"# Mild mission: 10 years at a constant 25 °C.
lifetime_years = 10

[[temperature]]
celsius = 25
share = 1

[flash]
retention_years = 20
retention_celsius = 85

[ram]
fit_per_mbit = 700
"#;

impl MissionProfile {
    /// The harsh example (see [`HARSH_TOML`]): 10 years, 80 % at 40 °C and 20 % at 85 °C,
    /// 10-year retention at 85 °C, 1.0 eV, 1000 FIT/Mbit.
    pub fn harsh() -> Self {
        MissionProfile {
            lifetime_years: 10.0,
            target_failure: DEFAULT_TARGET_FAILURE,
            placement: Placement::FlashRamCopy,
            temperature: vec![
                Temperature {
                    celsius: 40.0,
                    share: 0.8,
                },
                Temperature {
                    celsius: 85.0,
                    share: 0.2,
                },
            ],
            flash: FlashParams {
                activation_ev: 1.0,
                ..flash_defaults(10.0, 85.0)
            },
            ram: RamParams {
                fit_per_mbit: 1000.0,
                ..RAM_DEFAULTS
            },
        }
    }

    /// The mild example (see [`MILD_TOML`]): 10 years at a constant 25 °C, 20-year retention
    /// at 85 °C, 1.1 eV, 700 FIT/Mbit.
    pub fn mild() -> Self {
        MissionProfile {
            lifetime_years: 10.0,
            target_failure: DEFAULT_TARGET_FAILURE,
            placement: Placement::FlashRamCopy,
            temperature: vec![Temperature {
                celsius: 25.0,
                share: 1.0,
            }],
            flash: flash_defaults(20.0, 85.0),
            ram: RamParams {
                fit_per_mbit: 700.0,
                ..RAM_DEFAULTS
            },
        }
    }

    /// The mission lifetime in hours.
    pub fn lifetime_hours(&self) -> f64 {
        self.lifetime_years * HOURS_PER_YEAR
    }

    /// Reads and validates the profile at `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read mission profile {}", path.display()))?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses and validates profile `text`; `source` (usually the file name) prefixes errors.
    pub fn from_toml(text: &str, source: &str) -> Result<Self> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| anyhow!("{source}: {e}"))?;
        let lifetime_years = need(source, "lifetime_years", raw.lifetime_years)?;
        check(
            source,
            "lifetime_years",
            lifetime_years,
            lifetime_years > 0.0,
            "> 0",
        )?;
        let target_failure = raw.target_failure.unwrap_or(DEFAULT_TARGET_FAILURE);
        let ok = target_failure > 0.0 && target_failure < 1.0;
        check(source, "target_failure", target_failure, ok, "in (0, 1)")?;
        Ok(MissionProfile {
            lifetime_years,
            target_failure,
            placement: raw.placement.unwrap_or_default(),
            temperature: temperatures(source, need(source, "temperature", raw.temperature)?)?,
            flash: flash(source, need(source, "flash", raw.flash)?)?,
            ram: ram(source, raw.ram.unwrap_or_default())?,
        })
    }
}

/// Default of [`MissionProfile::target_failure`].
const DEFAULT_TARGET_FAILURE: f64 = 1e-6;

/// Defaults of [`RamParams`] (see its field docs).
const RAM_DEFAULTS: RamParams = RamParams {
    fit_per_mbit: 1000.0,
    burst_share: 0.1,
    burst_bits: 2,
};

/// [`FlashParams`] with the two required figures and every other field at its default.
fn flash_defaults(retention_years: f64, retention_celsius: f64) -> FlashParams {
    FlashParams {
        retention_years,
        retention_celsius,
        activation_ev: 1.1,
        ber_at_retention: 1e-6,
        weibull_shape: 1.0,
        endurance_cycles: 10_000,
    }
}

/// Validates the `[[temperature]]` entries: each in range, shares summing to 1.
fn temperatures(src: &str, raw: Vec<RawTemperature>) -> Result<Vec<Temperature>> {
    if raw.is_empty() {
        bail!("{src}: temperature: needs at least one [[temperature]] entry");
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, t) in raw.into_iter().enumerate() {
        let celsius = need(src, &format!("temperature[{i}].celsius"), t.celsius)?;
        check_celsius(src, &format!("temperature[{i}].celsius"), celsius)?;
        let share = need(src, &format!("temperature[{i}].share"), t.share)?;
        let ok = share > 0.0 && share <= 1.0;
        check(
            src,
            &format!("temperature[{i}].share"),
            share,
            ok,
            "in (0, 1]",
        )?;
        out.push(Temperature { celsius, share });
    }
    let sum: f64 = out.iter().map(|t| t.share).sum();
    if (sum - 1.0).abs() > 1e-6 {
        bail!("{src}: temperature: shares must sum to 1 (± 1e-6), got {sum}");
    }
    Ok(out)
}

/// Validates `[flash]`, filling defaults.
fn flash(src: &str, f: RawFlash) -> Result<FlashParams> {
    let years = need(src, "flash.retention_years", f.retention_years)?;
    check(src, "flash.retention_years", years, years > 0.0, "> 0")?;
    let celsius = need(src, "flash.retention_celsius", f.retention_celsius)?;
    check_celsius(src, "flash.retention_celsius", celsius)?;
    let d = flash_defaults(years, celsius);
    let out = FlashParams {
        activation_ev: f.activation_ev.unwrap_or(d.activation_ev),
        ber_at_retention: f.ber_at_retention.unwrap_or(d.ber_at_retention),
        weibull_shape: f.weibull_shape.unwrap_or(d.weibull_shape),
        endurance_cycles: f.endurance_cycles.unwrap_or(d.endurance_cycles),
        ..d
    };
    let ea = out.activation_ev;
    check(
        src,
        "flash.activation_ev",
        ea,
        ea > 0.0 && ea <= 5.0,
        "in (0, 5] eV",
    )?;
    let b = out.ber_at_retention;
    check(
        src,
        "flash.ber_at_retention",
        b,
        b > 0.0 && b < 1.0,
        "in (0, 1)",
    )?;
    let beta = out.weibull_shape;
    check(
        src,
        "flash.weibull_shape",
        beta,
        beta > 0.0 && beta <= 20.0,
        "in (0, 20]",
    )?;
    if out.endurance_cycles == 0 {
        bail!("{src}: flash.endurance_cycles: must be ≥ 1");
    }
    Ok(out)
}

/// Validates `[ram]`, filling defaults.
fn ram(src: &str, r: RawRam) -> Result<RamParams> {
    let out = RamParams {
        fit_per_mbit: r.fit_per_mbit.unwrap_or(RAM_DEFAULTS.fit_per_mbit),
        burst_share: r.burst_share.unwrap_or(RAM_DEFAULTS.burst_share),
        burst_bits: r.burst_bits.unwrap_or(RAM_DEFAULTS.burst_bits),
    };
    check(
        src,
        "ram.fit_per_mbit",
        out.fit_per_mbit,
        out.fit_per_mbit >= 0.0,
        "≥ 0",
    )?;
    let s = out.burst_share;
    check(
        src,
        "ram.burst_share",
        s,
        (0.0..=1.0).contains(&s),
        "in [0, 1]",
    )?;
    if out.burst_bits == 0 {
        bail!("{src}: ram.burst_bits: must be ≥ 1");
    }
    Ok(out)
}

/// A required field, or `source: path: missing`.
fn need<T>(source: &str, path: &str, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| anyhow!("{source}: {path}: missing"))
}

/// Ok if `value` is finite and `ok`, else `source: path: must be {rule}, got {value}`.
fn check(source: &str, path: &str, value: f64, ok: bool, rule: &str) -> Result<()> {
    if value.is_finite() && ok {
        Ok(())
    } else {
        bail!("{source}: {path}: must be {rule}, got {value}")
    }
}

/// A temperature in the supported −55..=200 °C range.
fn check_celsius(source: &str, path: &str, celsius: f64) -> Result<()> {
    let ok = (-55.0..=200.0).contains(&celsius);
    check(source, path, celsius, ok, "in -55..=200 °C")
}

/// The file as written: optional fields, so a missing one is reported with its path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    lifetime_years: Option<f64>,
    target_failure: Option<f64>,
    placement: Option<Placement>,
    temperature: Option<Vec<RawTemperature>>,
    flash: Option<RawFlash>,
    ram: Option<RawRam>,
}

/// One `[[temperature]]` entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemperature {
    celsius: Option<f64>,
    share: Option<f64>,
}

/// `[flash]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlash {
    retention_years: Option<f64>,
    retention_celsius: Option<f64>,
    activation_ev: Option<f64>,
    ber_at_retention: Option<f64>,
    weibull_shape: Option<f64>,
    endurance_cycles: Option<u64>,
}

/// `[ram]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRam {
    fit_per_mbit: Option<f64>,
    burst_share: Option<f64>,
    burst_bits: Option<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        MissionProfile::from_toml(text, "p.toml")
            .expect_err("must fail")
            .to_string()
    }

    const MINIMAL: &str = "lifetime_years = 5\n[[temperature]]\ncelsius = 50\nshare = 1\n\
                           [flash]\nretention_years = 10\nretention_celsius = 85\n";

    #[test]
    fn example_texts_parse_to_the_constructors() {
        assert_eq!(
            MissionProfile::from_toml(HARSH_TOML, "harsh").expect("harsh"),
            MissionProfile::harsh()
        );
        assert_eq!(
            MissionProfile::from_toml(MILD_TOML, "mild").expect("mild"),
            MissionProfile::mild()
        );
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let p = MissionProfile::from_toml(MINIMAL, "p.toml").expect("minimal");
        assert_eq!(p.target_failure, 1e-6);
        assert_eq!(p.placement, Placement::FlashRamCopy);
        assert_eq!(p.flash, flash_defaults(10.0, 85.0));
        assert_eq!(p.ram, RAM_DEFAULTS);
        assert_eq!(p.lifetime_hours(), 5.0 * 8766.0);
        let p = MissionProfile::from_toml(&format!("placement = \"ram\"\n{MINIMAL}"), "p")
            .expect("ram");
        assert!(p.placement.has_ram() && !p.placement.has_flash());
        let v = serde_json::to_value(MissionProfile::harsh()).expect("json");
        assert_eq!(v["placement"], "flash+ram-copy");
        assert_eq!(v["temperature"][1]["celsius"], 85.0);
    }

    #[test]
    fn errors_name_file_and_field() {
        let e = err(&MINIMAL.replace("retention_years = 10\n", ""));
        assert_eq!(e, "p.toml: flash.retention_years: missing");
        assert_eq!(err("[flash]\n"), "p.toml: lifetime_years: missing");
        let e = err(&MINIMAL.replace("share = 1", "share = 1.5"));
        assert_eq!(
            e,
            "p.toml: temperature[0].share: must be in (0, 1], got 1.5"
        );
        let two = MINIMAL.replace(
            "share = 1",
            "share = 0.5\n[[temperature]]\ncelsius = 20\nshare = 0.4",
        );
        assert!(err(&two).starts_with("p.toml: temperature: shares must sum to 1"));
        let e = err(&MINIMAL.replace("celsius = 50", "celsius = 250"));
        assert!(
            e.starts_with("p.toml: temperature[0].celsius: must be in -55..=200"),
            "{e}"
        );
        let e = err(&MINIMAL.replace("celsius = 50\n", ""));
        assert_eq!(e, "p.toml: temperature[0].celsius: missing");
        let e = err(&format!("{MINIMAL}activation_ev = 0\n"));
        assert!(
            e.starts_with("p.toml: flash.activation_ev: must be in (0, 5]"),
            "{e}"
        );
        let e = err(&format!("{MINIMAL}[ram]\nburst_share = -0.1\n"));
        assert!(e.starts_with("p.toml: ram.burst_share:"), "{e}");
        assert!(err(&format!("target_failure = 1\n{MINIMAL}")).contains("target_failure"));
    }

    #[test]
    fn typos_and_bad_values_are_errors() {
        let e = err(&MINIMAL.replace("retention_years", "retension_years"));
        assert!(
            e.starts_with("p.toml:") && e.contains("retension_years"),
            "{e}"
        );
        let e = err(&format!("placement = \"rom\"\n{MINIMAL}"));
        assert!(e.contains("rom") && e.contains("flash+ram-copy"), "{e}");
        let e = err(&MINIMAL.replace("lifetime_years = 5", "lifetime_years = \"5\""));
        assert!(
            e.starts_with("p.toml:") && e.contains("lifetime_years"),
            "{e}"
        );
        assert!(err("lifetime_years = ").starts_with("p.toml:"));
    }

    #[test]
    fn load_names_the_file() {
        let missing = Path::new("/nonexistent/sturdy-profile.toml");
        let e = format!(
            "{:#}",
            MissionProfile::load(missing).expect_err("missing file")
        );
        assert!(e.contains("/nonexistent/sturdy-profile.toml"), "{e}");
    }
}
