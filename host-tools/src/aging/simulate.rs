//! `sturdy aging simulate`: whole lifetimes played through the real decoder
//! and runtime.
//!
//! For each of N simulated lifetimes and K checkpoints evenly spaced over
//! the mission, bits of the stored image flip with the profile's BER(t)
//! ([`super::ber`]), and the image is loaded as the device loads it
//! (syndrome check, decode, tags: [`crate::protect::recover`]); the model
//! that comes out is scored on the test samples (only when its bytes differ
//! from the clean model's, which at realistic BERs is rare). Three
//! scenarios:
//! - **unprotected**: the plain artifact's bytes decay from the start of
//!   the mission; a flipped bit stays flipped (no code, nothing repairs it);
//! - **protected, no scrubbing**: the coded image decays the same way;
//! - **protected, scrubbed every T**: a scrub repairs every correctable
//!   word, so each checkpoint sees one interval's flips — the state just
//!   before a scrub, the worst moment. The simulated intervals also give
//!   the per-interval word-failure frequency, and over the ⌈L/T⌉
//!   intervals of the lifetime the failure probability
//!   `1 − (1 − p_interval)^⌈L/T⌉` (an estimate from the sampled intervals,
//!   not a count over every interval).
//!
//! A model the loader refuses (uncorrectable word, tag mismatch) scores 0:
//! the device would not run it. Seeded: the same seed, the same figures.

use super::ber::ber;
use super::profile::{MissionProfile, HOURS_PER_YEAR};
use crate::eval::{evaluate, Engine, Task};
use crate::fsutil::AlignedBytes;
use crate::host_model::HostModel;
use crate::npy;
use crate::protect::inject::flip_positions;
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::PathBuf;
use sturdy_runtime::protect::{Health, ProtectedArtifact};

/// Options of `sturdy aging simulate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A protected artifact (from `sturdy protect`, with `--key`); its
    /// plain model is recovered for the unprotected scenario.
    pub artifact: PathBuf,
    /// Device key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The mission profile (TOML).
    #[arg(long)]
    pub profile: PathBuf,
    /// Test inputs (.npy, float32, stacked on axis 0).
    #[arg(long)]
    pub input: PathBuf,
    /// Test labels (.npy, int64 or int32).
    #[arg(long)]
    pub labels: PathBuf,
    /// Test samples scored per checkpoint (the first N).
    #[arg(long, default_value_t = 200)]
    pub limit: usize,
    /// Simulated lifetimes.
    #[arg(long, default_value_t = 1000)]
    pub lifetimes: usize,
    /// Checkpoints per lifetime, evenly spaced, the last at the end of life.
    #[arg(long, default_value_t = 10)]
    pub checkpoints: usize,
    /// Scrub interval in hours (default: the plan recorded by `protect --profile`).
    #[arg(long)]
    pub scrub_hours: Option<f64>,
    /// Seed of the simulated flips.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Machine-readable output (what the analysis report's aging timeline plots).
    #[arg(long)]
    pub json: bool,
}

/// One checkpoint of one scenario, over every lifetime.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Checkpoint {
    /// Mission time in years.
    pub years: f64,
    /// Raw BER per stored bit the flips were drawn with.
    pub raw_ber: f64,
    /// Mean bits flipped per lifetime at this checkpoint.
    pub mean_flipped_bits: f64,
    /// Mean test accuracy over lifetimes.
    pub mean_accuracy: f64,
    /// The worst lifetime's accuracy.
    pub min_accuracy: f64,
    /// Corrected codewords, summed over lifetimes.
    pub corrected_words: u64,
    /// Uncorrectable codewords, summed over lifetimes.
    pub uncorrectable_words: u64,
    /// Lifetimes whose model was refused or scored below clean accuracy.
    pub failed_lifetimes: usize,
}

/// One scenario's timeline.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// "unprotected", "protected, no scrubbing", "protected, scrubbed every T h".
    pub name: String,
    /// Whether the image is coded (protected): only then can words be
    /// uncorrectable.
    pub coded: bool,
    /// Its checkpoints, in time order.
    pub checkpoints: Vec<Checkpoint>,
    /// Uncorrectable words over every simulated checkpoint.
    pub uncorrectable_words: u64,
    /// Lifetimes with any failure at any checkpoint.
    pub failed_lifetimes: usize,
    /// For the scrubbed scenario: the lifetime failure estimate from the
    /// per-interval failure frequency (`None` otherwise).
    pub lifetime_failure_estimate: Option<f64>,
}

/// How many lifetimes, checkpoints and samples a simulation plays, and its seed.
#[derive(Debug, Clone, Copy)]
pub struct Knobs {
    /// Simulated lifetimes.
    pub lifetimes: usize,
    /// Checkpoints per lifetime, evenly spaced, the last at the end of life.
    pub checkpoints: usize,
    /// Test samples scored per checkpoint (the first N).
    pub limit: usize,
    /// Seed of the simulated flips.
    pub seed: u64,
}

/// Runs `sturdy aging simulate`.
pub fn main(args: Args) -> Result<()> {
    let profile = MissionProfile::load(&args.profile)?;
    let key = crate::protect::key::read(&args.key)?;
    let bytes = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    let (clean, _) = crate::protect::load_host(&bytes, &key)
        .with_context(|| format!("loading {}", args.artifact.display()))?;
    let set = npy::read_samples(&args.input, &clean.meta.input.onnx_shape)?;
    let labels = npy::read_labels(&args.labels)?;
    anyhow::ensure!(
        labels.len() == set.samples.len(),
        "{}: {} labels for {} samples in {}",
        args.labels.display(),
        labels.len(),
        set.samples.len(),
        args.input.display()
    );
    let classes = clean.meta.output.onnx_shape.iter().product();
    npy::check_label_range(&args.labels, &labels, classes)?;
    let knobs = Knobs {
        lifetimes: args.lifetimes,
        checkpoints: args.checkpoints,
        limit: args.limit,
        seed: args.seed,
    };
    let name = args.artifact.display().to_string();
    let report = simulate(
        &name,
        bytes,
        key,
        &profile,
        &set,
        &labels,
        knobs,
        args.scrub_hours,
    )?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Simulates `knobs.lifetimes` lifetimes of the protected artifact
/// `protected` (named `name` in errors) under `profile`, scoring `set`
/// against `labels`; the scrub interval is `scrub_hours` or else the plan
/// recorded in the artifact.
#[allow(clippy::too_many_arguments)]
pub fn simulate(
    name: &str,
    protected: Vec<u8>,
    key: sturdy_runtime::protect::Key,
    profile: &MissionProfile,
    set: &npy::Samples,
    labels: &[i64],
    knobs: Knobs,
    scrub_hours: Option<f64>,
) -> Result<Report> {
    let (clean, _) =
        crate::protect::load_host(&protected, &key).with_context(|| format!("loading {name}"))?;
    let scrub_hours = match (scrub_hours, &clean.meta.aging) {
        (Some(h), _) => h,
        (None, Some(plan)) => plan.scrub_interval_hours,
        (None, None) => bail!(
            "{name}: no lifetime plan recorded (protect it with --profile) and no scrub interval given"
        ),
    };
    anyhow::ensure!(
        scrub_hours.is_finite() && scrub_hours > 0.0,
        "the scrub interval must be a positive number of hours"
    );
    anyhow::ensure!(
        knobs.lifetimes > 0 && knobs.checkpoints > 0,
        "lifetimes and checkpoints must be ≥ 1"
    );
    anyhow::ensure!(
        labels.len() == set.samples.len(),
        "{} labels for {} samples",
        labels.len(),
        set.samples.len()
    );
    let n = knobs.limit.min(labels.len());
    let coded =
        crate::protect::inject::region_range(&protected, crate::protect::inject::Region::Weights)?;
    let coded_bits = {
        let aligned = AlignedBytes::new(&protected);
        let p = ProtectedArtifact::parse(aligned.as_bytes())
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        p.header().codewords as usize * p.code().map_or(32, |c| c.n())
    };
    let sim = Simulation {
        profile,
        key,
        protected,
        coded,
        coded_bits,
        plain: clean.bytes().to_vec(),
        meta: serde_json::to_vec(&clean.meta)?,
        samples: npy::Samples {
            sample_shape: set.sample_shape.clone(),
            samples: set.samples[..n].to_vec(),
        },
        labels: labels[..n].to_vec(),
        knobs,
    };
    sim.run(scrub_hours)
}

/// Every scenario and the settings that produced them.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The profile simulated.
    pub profile: MissionProfile,
    /// Lifetimes, checkpoints, samples, seed, scrub interval.
    pub settings: serde_json::Value,
    /// Test accuracy of the fault-free model.
    pub clean_accuracy: f64,
    /// The three timelines.
    pub scenarios: Vec<Scenario>,
}

struct Simulation<'a> {
    profile: &'a MissionProfile,
    key: sturdy_runtime::protect::Key,
    protected: Vec<u8>,
    /// Byte range of the coded image in `protected`.
    coded: std::ops::Range<usize>,
    /// Bits of it the codewords cover (the last word may carry padding).
    coded_bits: usize,
    plain: Vec<u8>,
    meta: Vec<u8>,
    samples: npy::Samples,
    labels: Vec<i64>,
    knobs: Knobs,
}

/// One lifetime: per checkpoint, the bits flipped and what loading gave.
type Lifetime = Vec<(usize, Outcome)>;

/// What a load of one decayed image gave.
struct Outcome {
    accuracy: f64,
    health: Health,
}

impl Simulation<'_> {
    fn accuracy(&self, inner: &[u8]) -> Result<f64> {
        let model = match HostModel::from_parts(inner, &self.meta) {
            Ok(m) => m,
            Err(_) => return Ok(0.0),
        };
        let eval = evaluate(
            &Engine::Int8(Box::new(model)),
            &self.samples,
            Some(&self.labels),
            None,
            Some(Task::Classification),
        );
        // A decayed graph may fail mid-run with a typed error: refused.
        Ok(eval.map_or(0.0, |e| e.report["accuracy"].as_f64().unwrap_or(0.0)))
    }

    /// Loads `image` (protected or plain) after flipping `flips` in `range`.
    fn outcome(&self, protected: bool, flips: &BTreeSet<usize>, clean: f64) -> Result<Outcome> {
        if flips.is_empty() {
            return Ok(Outcome {
                accuracy: clean,
                health: Health::default(),
            });
        }
        let (mut image, range) = if protected {
            (self.protected.clone(), self.coded.clone())
        } else {
            (self.plain.clone(), 0..self.plain.len())
        };
        for &bit in flips {
            image[range.start + bit / 8] ^= 1 << (bit % 8);
        }
        if !protected {
            return Ok(Outcome {
                accuracy: self.accuracy(&image)?,
                health: Health::default(),
            });
        }
        let (inner, health) = crate::protect::recover(&image, &self.key);
        let accuracy = match inner {
            Ok(inner) if inner == self.plain => clean,
            Ok(inner) => self.accuracy(&inner)?,
            Err(_) => 0.0,
        };
        Ok(Outcome { accuracy, health })
    }

    fn bits(&self, protected: bool) -> usize {
        if protected {
            self.coded_bits
        } else {
            self.plain.len() * 8
        }
    }

    /// Every lifetime of scenario `scenario`: per checkpoint, the bits
    /// flipped and what loading the image gave. Lifetimes run on every
    /// core; each draws from its own seed, so the figures do not depend on
    /// the thread count.
    #[allow(clippy::too_many_arguments)]
    fn lifetimes(
        &self,
        scenario: usize,
        protected: bool,
        scrubbed: bool,
        bers: &[f64],
        bits: usize,
        clean: f64,
        bar: &ProgressBar,
    ) -> Result<Vec<Lifetime>> {
        let one = |life: usize| -> Result<Lifetime> {
            let mut flips = BTreeSet::new();
            let mut before = 0.0;
            let mut out = Vec::with_capacity(bers.len());
            for (c, &ber) in bers.iter().enumerate() {
                let seed =
                    self.knobs.seed ^ ((scenario as u64) << 56) ^ ((life as u64) << 20) ^ c as u64;
                let p = if scrubbed {
                    // A scrub left a clean copy: one interval's flips.
                    flips.clear();
                    ber
                } else {
                    // Cumulative: new flips among the bits not yet flipped.
                    (ber - before) / (1.0 - before)
                };
                before = ber;
                flips.extend(flip_positions(bits, p.clamp(0.0, 1.0), seed)?);
                out.push((flips.len(), self.outcome(protected, &flips, clean)?));
            }
            bar.inc(1);
            Ok(out)
        };
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let n = self.knobs.lifetimes;
        let mut results: Vec<Option<Result<Lifetime>>> = (0..n).map(|_| None).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let one = &one;
                    scope.spawn(move || {
                        (w..n)
                            .step_by(workers)
                            .map(|life| (life, one(life)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for handle in handles {
                if let Ok(done) = handle.join() {
                    for (life, result) in done {
                        results[life] = Some(result);
                    }
                }
            }
        });
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow::anyhow!("a simulation thread panicked"))))
            .collect()
    }

    fn run(&self, scrub_hours: f64) -> Result<Report> {
        let clean = self.accuracy(&self.plain)?;
        let life = self.profile.lifetime_hours();
        let k = self.knobs.checkpoints;
        let times: Vec<f64> = (1..=k).map(|c| life * c as f64 / k as f64).collect();
        let scrub = scrub_hours.min(life);
        let scenarios = [
            ("unprotected".to_string(), false, None),
            ("protected, no scrubbing".to_string(), true, None),
            (
                if scrub_hours >= life {
                    "protected, as planned: no scrubbing needed".to_string()
                } else {
                    format!("protected, scrubbed every {scrub_hours} h")
                },
                true,
                Some(scrub),
            ),
        ];
        let bar = ProgressBar::new((scenarios.len() * self.knobs.lifetimes) as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>16} [{bar:32}] {pos}/{len} lifetimes ({eta})")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("simulating");
        let mut out = Vec::new();
        for (s, (name, protected, interval)) in scenarios.into_iter().enumerate() {
            let bits = self.bits(protected);
            let mut checkpoints: Vec<Checkpoint> = times
                .iter()
                .map(|&t| Checkpoint {
                    years: t / HOURS_PER_YEAR,
                    raw_ber: ber(self.profile, interval.unwrap_or(t)).total,
                    min_accuracy: f64::INFINITY,
                    ..Checkpoint::default()
                })
                .collect();
            let bers: Vec<f64> = checkpoints.iter().map(|c| c.raw_ber).collect();
            let lifetimes =
                self.lifetimes(s, protected, interval.is_some(), &bers, bits, clean, &bar)?;
            let mut failed = 0;
            for outcomes in &lifetimes {
                let mut any_failure = false;
                for (cp, (flipped, o)) in checkpoints.iter_mut().zip(outcomes) {
                    cp.mean_flipped_bits += *flipped as f64;
                    cp.mean_accuracy += o.accuracy;
                    cp.min_accuracy = cp.min_accuracy.min(o.accuracy);
                    cp.corrected_words += u64::from(o.health.corrected_words);
                    cp.uncorrectable_words += u64::from(o.health.uncorrectable_words);
                    let failure = o.accuracy < clean || o.health.uncorrectable_words > 0;
                    cp.failed_lifetimes += usize::from(failure);
                    any_failure |= failure;
                }
                failed += usize::from(any_failure);
            }
            let n = self.knobs.lifetimes as f64;
            for cp in &mut checkpoints {
                cp.mean_flipped_bits /= n;
                cp.mean_accuracy /= n;
            }
            let failed_intervals: usize = checkpoints.iter().map(|c| c.failed_lifetimes).sum();
            let lifetime_failure_estimate = interval.map(|t| {
                let p = failed_intervals as f64 / (n * k as f64);
                let intervals = (life / t - 1e-9).ceil().max(1.0);
                -(intervals * (-p).ln_1p()).exp_m1()
            });
            out.push(Scenario {
                name,
                coded: protected,
                uncorrectable_words: checkpoints.iter().map(|c| c.uncorrectable_words).sum(),
                checkpoints,
                failed_lifetimes: failed,
                lifetime_failure_estimate,
            });
        }
        bar.finish_and_clear();
        Ok(Report {
            profile: self.profile.clone(),
            settings: serde_json::json!({
                "lifetimes": self.knobs.lifetimes, "checkpoints": k, "samples": self.labels.len(),
                "seed": self.knobs.seed, "scrub_interval_hours": scrub_hours,
            }),
            clean_accuracy: clean,
            scenarios: out,
        })
    }
}

fn print_report(r: &Report) {
    println!(
        "clean accuracy {:.2} % on {} samples; {} lifetimes of {} years",
        100.0 * r.clean_accuracy,
        r.settings["samples"],
        r.settings["lifetimes"],
        r.profile.lifetime_years
    );
    for s in &r.scenarios {
        println!(
            "\n{}: {} uncorrectable words, {} of {} lifetimes failed{}",
            s.name,
            s.uncorrectable_words,
            s.failed_lifetimes,
            r.settings["lifetimes"],
            s.lifetime_failure_estimate
                .map_or(String::new(), |p| format!(
                    " (lifetime failure estimate {p:.1e})"
                ))
        );
        println!(
            "  {:>6} {:>10} {:>10} {:>9} {:>9} {:>10} {:>14} {:>7}",
            "years",
            "raw BER",
            "flips",
            "mean acc",
            "min acc",
            "corrected",
            "uncorrectable",
            "failed"
        );
        for c in &s.checkpoints {
            println!(
                "  {:>6.2} {:>10.2e} {:>10.3} {:>8.2}% {:>8.2}% {:>10} {:>14} {:>7}",
                c.years,
                c.raw_ber,
                c.mean_flipped_bits,
                100.0 * c.mean_accuracy,
                100.0 * c.min_accuracy,
                c.corrected_words,
                c.uncorrectable_words,
                c.failed_lifetimes
            );
        }
    }
}
