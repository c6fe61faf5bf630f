//! Runs the requested sections in order and assembles the [`Report`]
//! with its summary.

use super::fidelity::FloatModel;
use super::knobs::Knobs;
use super::report::{Report, Settings, Summary};
use super::subject::Subject;
use super::{
    aging, attacks, board, cost, faults, fidelity, fisher, fit, int4_choice, progress, spectra,
    verification,
};
use crate::host_model::HostModel;
use anyhow::{bail, Result};

/// A report section `--sections` may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Resources.
    Fit,
    /// Integer vs float.
    Fidelity,
    /// Random faults.
    Faults,
    /// Parameter attacks.
    Attacks,
    /// Layer spectra and rank advice.
    Spectra,
    /// Fisher information.
    Fisher,
    /// Proved neighbourhoods.
    Verify,
    /// Lifetimes under a mission profile.
    Aging,
    /// Protection cost.
    Cost,
}

impl Section {
    /// Every section, in report order.
    pub const ALL: [Section; 9] = [
        Section::Fit,
        Section::Fidelity,
        Section::Faults,
        Section::Attacks,
        Section::Spectra,
        Section::Fisher,
        Section::Verify,
        Section::Aging,
        Section::Cost,
    ];

    /// Its name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Section::Fit => "fit",
            Section::Fidelity => "fidelity",
            Section::Faults => "faults",
            Section::Attacks => "attacks",
            Section::Spectra => "spectra",
            Section::Fisher => "fisher",
            Section::Verify => "verify",
            Section::Aging => "aging",
            Section::Cost => "cost",
        }
    }

    /// Parses a comma-separated list (`all` for every section).
    pub fn parse_list(list: &str) -> Result<Vec<Section>> {
        if list.trim() == "all" {
            return Ok(Self::ALL.to_vec());
        }
        let mut out = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let Some(s) = Self::ALL.iter().find(|s| s.name() == word) else {
                bail!(
                    "unknown section '{word}' in --sections (known: {}, or all)",
                    Self::ALL.map(Section::name).join(", ")
                );
            };
            if !out.contains(s) {
                out.push(*s);
            }
        }
        if out.is_empty() {
            bail!("--sections names no section");
        }
        Ok(out)
    }
}

/// Everything one analysis reads.
pub struct Inputs<'a> {
    /// The plain artifact as loaded (metadata included).
    pub host: &'a HostModel,
    /// The campaigns' subject.
    pub subject: &'a Subject,
    /// The float model, when an ONNX file was given.
    pub float: Option<FloatModel<'a>>,
    /// The float samples (ONNX layout), same order as the subject's batch.
    pub set: &'a crate::npy::Samples,
    /// The mission profile of the aging section.
    pub profile: Option<&'a std::path::Path>,
    /// Flash and RAM budgets in bytes.
    pub budgets: (Option<u64>, Option<u64>),
    /// The key and nonce the cost section protects with.
    pub cost_key: (sturdy_runtime::protect::Key, [u8; 16]),
    /// The calibration samples the artifact was quantized with (the
    /// spectra section re-quantizes its variants with them).
    pub calib: &'a std::path::Path,
    /// Where the fit and cost sections measure on a board (`--board`).
    pub board: Option<BoardRun<'a>>,
}

/// A board to measure on, with the files its session reads.
pub struct BoardRun<'a> {
    /// QEMU or a serial port.
    pub spec: &'a crate::hil::session::BoardSpec,
    /// The `.npy` samples (the first few run on the board).
    pub input: &'a std::path::Path,
    /// The key file of the protected artifact.
    pub key: Option<&'a std::path::Path>,
}

/// Runs `sections` with `knobs`; `settings` is stored as given.
pub fn analyze(
    inputs: &Inputs<'_>,
    sections: &[Section],
    knobs: &Knobs,
    settings: Settings,
) -> Result<Report> {
    let s = inputs.subject;
    let mut report = Report {
        settings,
        ..Report::default()
    };
    let mut calib = None;
    for section in sections {
        match section {
            Section::Fit => {
                let protected = s.protected.as_ref().map(|p| p.bytes.len() as u64);
                let mut fit = fit::run(inputs.host, protected, inputs.budgets.0, inputs.budgets.1)?;
                if let Some(b) = &inputs.board {
                    eprintln!("fit: running the plain artifact on the board");
                    fit.board = Some(board::measure(b.spec, &s.plain, None, b.input)?);
                }
                report.fit = Some(fit);
            }
            Section::Fidelity => {
                let bar = progress::bar(3, "fidelity");
                report.fidelity = Some(fidelity::run(
                    inputs.host,
                    inputs.float.as_ref(),
                    &inputs.set.samples,
                    &s.batch,
                    knobs.heat_samples,
                    &bar,
                )?);
                bar.finish_and_clear();
            }
            Section::Faults => {
                let bar = progress::bar(faults::work(s, knobs), "random faults");
                report.faults = Some(faults::run(s, knobs, &bar)?);
                bar.finish_and_clear();
            }
            Section::Attacks => report.attacks = Some(attacks::run(s, knobs)?),
            Section::Spectra => {
                let Some(f) = &inputs.float else {
                    bail!("the spectra section needs the float model (an ONNX MODEL, or --onnx)");
                };
                report.spectra = Some(spectra::run(
                    f.graph,
                    calibration(&mut calib, inputs, f.graph)?,
                    inputs.set,
                    s.batch.labels.as_deref(),
                    knobs.samples,
                )?);
            }
            Section::Fisher => {
                let heatmap = report.faults.as_ref().and_then(|f| f.layer_bits.as_ref());
                let mut f = fisher::run(s, knobs.verify_samples, knobs.base_seed, heatmap)?;
                if let Some(float) = &inputs.float {
                    f.int4 = int4_choice::trials(
                        float.graph,
                        calibration(&mut calib, inputs, float.graph)?,
                        inputs.set,
                        s.batch.labels.as_deref(),
                        knobs.samples,
                        &f.layers,
                    )?;
                }
                report.fisher = Some(f);
            }
            Section::Verify => {
                report.verification =
                    Some(verification::run(s, knobs.verify_samples, knobs.base_seed)?);
            }
            Section::Aging => {
                let (Some(profile), Some(p), Some(labels)) =
                    (inputs.profile, &s.protected, &s.batch.labels)
                else {
                    bail!("the aging section needs --profile, --key and --labels");
                };
                report.aging = Some(aging::run(
                    &p.bytes,
                    p.key,
                    profile,
                    inputs.set,
                    labels,
                    (knobs.samples, knobs.base_seed),
                )?);
            }
            Section::Cost => {
                let (key, nonce) = inputs.cost_key;
                let mut cost = cost::run(&s.plain, &key, nonce)?;
                if let (Some(b), Some(p)) = (&inputs.board, &s.protected) {
                    eprintln!("cost: running the protected artifact on the board");
                    cost.board = Some(board::measure(b.spec, &p.bytes, b.key, b.input)?);
                }
                report.cost = Some(cost);
            }
        }
    }
    report.summary = summary(&report);
    Ok(report)
}

/// The calibration samples of `inputs`, in `graph`'s storage layout: what
/// the sections that re-quantize variants calibrate them on. Read once per
/// analysis into `cache`.
fn calibration<'c>(
    cache: &'c mut Option<Vec<Vec<f32>>>,
    inputs: &Inputs<'_>,
    graph: &crate::ir::Graph,
) -> Result<&'c [Vec<f32>]> {
    if cache.is_none() {
        let set = crate::npy::read_samples(inputs.calib, &graph.onnx_input_shape)?;
        *cache = Some(
            set.samples
                .iter()
                .map(|s| {
                    crate::float_exec::to_storage(graph.input_layout, &graph.onnx_input_shape, s)
                })
                .collect(),
        );
    }
    Ok(cache.as_deref().unwrap_or(&[]))
}

/// The headline figures, from whichever sections ran.
pub fn summary(r: &Report) -> Summary {
    let bfa = r.attacks.as_ref().and_then(|a| a.bfa.as_ref());
    Summary {
        fits: r.fit.as_ref().and_then(fit::verdict),
        flash_bytes: r
            .fit
            .as_ref()
            .map(|f| f.protected_flash_bytes.unwrap_or(f.flash_bytes)),
        ram_bytes: r.fit.as_ref().map(|f| f.arena_bytes),
        float_accuracy: r.fidelity.as_ref().and_then(|f| f.float.as_ref()?.accuracy),
        int8_accuracy: r.fidelity.as_ref().and_then(|f| f.int8.accuracy),
        top1_agreement: r.fidelity.as_ref().and_then(|f| f.top1_agreement),
        bfa_flips_plain: bfa.and_then(|b| b.flips_to_11),
        bfa_protected_accuracy: bfa.and_then(|b| {
            b.transfers
                .iter()
                .filter(|t| t.target.starts_with("protected"))
                .filter_map(|t| t.accuracy)
                .reduce(f64::min)
        }),
        worst_layer: r.fidelity.as_ref().and_then(|f| {
            f.layers
                .iter()
                .min_by(|a, b| a.error.sqnr_db.total_cmp(&b.error.sqnr_db))
                .map(|l| format!("{} ({:.1} dB)", l.node, l.error.sqnr_db))
        }),
    }
}
