//! `sturdy analyze`: one command from a model to `report.html` and
//! `report.json`.

use crate::analyze::batch::Batch;
use crate::analyze::fidelity::FloatModel;
use crate::analyze::knobs::Knobs;
use crate::analyze::report::Settings;
use crate::analyze::run::{analyze, BoardRun, Inputs, Section};
use crate::analyze::subject::{Protected, Subject};
use crate::fsutil::{temp_path_beside, AlignedBytes};
use crate::host_model::HostModel;
use crate::npy;
use crate::protect::{self, Options};
use crate::quantize::RangeMethod;
use crate::reference::TractReference;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use sturdy_runtime::protect::{is_protected, ProtectedArtifact};

/// Analyse a model before flashing it: does it fit, how faithful is the
/// integer model, how does it break under random faults and attacks, and
/// what protection costs.
///
/// MODEL is an ONNX file (quantized first, with min/max ranges from
/// --calib, default the --input samples; or give the artifact with
/// --artifact), a plain artifact (give the ONNX with --onnx for the float
/// comparisons), or a protected artifact (with --key; its recovered model
/// is the plain one unless --artifact names the public plain artifact it
/// was made from). With --key and no protected artifact, one is made with
/// the default protection (1944 × 1/2, tags, reparameterization) and a
/// nonce derived from --seed, so the report reproduces; with --profile
/// too, the code is the one the lifetime plan chooses (as `sturdy protect
/// --profile` does) and the plan is recorded in it.
///
/// Sections (--sections, comma-separated, default all):
///   fit       per-op table, arena timeline, flash per section, budgets
///   fidelity  int8 vs float: accuracy, confusion, per-class/domain, per-op SQNR
///   faults    bit error rate sweep, layer × bit heatmap, stuck-at, activation upsets
///   attacks   bit-flip attack (gradient-guided), weight noise, channel damage
///   spectra   each Conv/FC layer's eigenvalue spectrum against its
///             Marchenko–Pastur fit, the rank its spikes advise, and that
///             advice applied: the layer factorized at that rank, re-quantized
///             (on --calib, default --input) and measured
///   fisher    per sample the input-space Fisher's λ_max against the smallest
///             flipping perturbation found; per layer the diagonal parameter
///             Fisher against the faults section's measured sensitivity
///   verify    local robustness (±1, 2, 4 codes) and blur tolerance proved for
///             the integer model on the first --verify-samples (`sturdy verify`)
///   aging     Monte-Carlo lifetimes under --profile: unprotected, protected,
///             protected with the planned scrubbing (needs --key, --labels)
///   cost      flash and host load time per LDPC code
///
/// With --board qemu, fit gains measured instructions per op and per MAC
/// and cost the protected artifact's load on the board.
///
/// `all` runs aging only when --profile is given, spectra only with the
/// float model.
///
/// Random campaigns repeat --seeds times with seeds derived from --seed and
/// the campaign point alone: the numbers do not depend on --jobs.
/// Nothing is written until every section has run; then report.json and
/// report.html replace any earlier ones in DIR.
///
///   sturdy analyze models/mnist_cnn.onnx --input models/mnist_test_x.npy \
///       --labels models/mnist_test_y.npy -o report
///   sturdy analyze mnist.prot --key device.key --artifact mnist.sturdy \
///       --onnx models/mnist_cnn.onnx --input … --labels … -o report
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// ONNX model, plain artifact or protected artifact.
    model: PathBuf,
    /// The plain artifact to analyse (instead of quantizing the ONNX model,
    /// or the public artifact a protected MODEL was made from).
    #[arg(long)]
    artifact: Option<PathBuf>,
    /// The float ONNX model, when MODEL is an artifact.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Calibration samples for quantizing an ONNX MODEL (default: --input).
    #[arg(long)]
    calib: Option<PathBuf>,
    /// Device key: adds the protected and reparameterized-only variants.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Mission profile (TOML, see `sturdy aging --help`) for the aging section.
    #[arg(long)]
    profile: Option<PathBuf>,
    /// Input samples (.npy, float32 or float16, stacked on axis 0).
    #[arg(long)]
    input: PathBuf,
    /// Class labels (.npy): accuracy, confusion, attacks.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// Domain ids (.npy): per-domain accuracy, inputs mapped through their
    /// domain's alignment table.
    #[arg(long)]
    domains: Option<PathBuf>,
    /// Sections to run, comma-separated, or `all`.
    #[arg(long, default_value = "all")]
    sections: String,
    /// Repetitions of every random campaign point (mean and 95 % interval).
    #[arg(long, default_value_t = Knobs::default().seeds)]
    seeds: u32,
    /// Base seed of every random choice.
    #[arg(long, default_value_t = Knobs::default().base_seed)]
    seed: u64,
    /// Samples per fault and noise campaign (the first ones of --input).
    #[arg(long, default_value_t = Knobs::default().samples)]
    samples: usize,
    /// Flip budget of the bit-flip attack.
    #[arg(long, default_value_t = Knobs::default().max_flips)]
    max_flips: usize,
    /// Samples the bit-flip attacker computes gradients on (the first ones
    /// of --input; accuracy is measured on the next --samples).
    #[arg(long, default_value_t = Knobs::default().attack_samples)]
    attack_samples: usize,
    /// Samples the fisher and verify sections measure.
    #[arg(long, default_value_t = Knobs::default().verify_samples)]
    verify_samples: usize,
    /// Threads (default: every core). Results do not depend on it.
    #[arg(long)]
    jobs: Option<usize>,
    /// Flash budget in bytes for the fit verdict.
    #[arg(long)]
    flash: Option<u64>,
    /// RAM budget in bytes (arena) for the fit verdict.
    #[arg(long)]
    ram: Option<u64>,
    /// Measure on a board too: `qemu` (builds the firmware, boots the
    /// emulated Cortex-M4) or `serial:/dev/ttyACM0` (a board flashed with
    /// the same artifact). Adds instructions per op and per MAC to fit and
    /// the protected load to cost; every board output is checked against
    /// the host's.
    #[arg(long)]
    board: Option<crate::hil::session::BoardSpec>,
    /// Output directory (created if missing).
    #[arg(short, long)]
    output: PathBuf,
}

/// The models an analysis compares.
struct Models {
    host: HostModel,
    onnx: Option<PathBuf>,
    protected: Option<Protected>,
    /// Whether MODEL itself was the protected artifact.
    protected_given: bool,
    artifact_name: String,
}

fn nonce_from_seed(seed: u64) -> [u8; 16] {
    let mut nonce = [0u8; 16];
    nonce[..8].copy_from_slice(b"analyze:");
    nonce[8..].copy_from_slice(&seed.to_le_bytes());
    nonce
}

fn load_models(args: &Args) -> Result<Models> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let key = args.key.as_deref().map(protect::key::read).transpose()?;
    let is_artifact = bytes.starts_with(&sturdy_runtime::format::MAGIC);
    let protected_input = is_artifact && is_protected(AlignedBytes::new(&bytes).as_bytes());
    let onnx = if is_artifact {
        args.onnx.clone()
    } else {
        Some(args.model.clone())
    };
    let (mut host, artifact_name) = match (&args.artifact, protected_input, is_artifact) {
        (Some(a), _, _) => (HostModel::load(a)?, a.display().to_string()),
        (None, true, _) => {
            let Some(key) = &key else {
                bail!(
                    "{} is a protected artifact: give its key with --key",
                    args.model.display()
                );
            };
            let (host, _) = protect::load_host(&bytes, key)
                .with_context(|| format!("loading {}", args.model.display()))?;
            (host, format!("{} (recovered)", args.model.display()))
        }
        (None, false, true) => (
            HostModel::load(&args.model)?,
            args.model.display().to_string(),
        ),
        (None, false, false) => {
            let calib = args.calib.as_ref().unwrap_or(&args.input);
            let q = crate::quantize::quantize_onnx(&args.model, calib, RangeMethod::MinMax)?;
            let host = HostModel::from_bytes(&q)
                .with_context(|| format!("quantizing {}", args.model.display()))?;
            (
                host,
                format!(
                    "{} (quantized with min/max ranges from {})",
                    args.model.display(),
                    calib.display()
                ),
            )
        }
    };
    let protected = match key {
        None => None,
        Some(key) => {
            let (bytes, nonce) = if protected_input {
                let aligned = AlignedBytes::new(&bytes);
                let nonce = ProtectedArtifact::parse(aligned.as_bytes())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", args.model.display()))?
                    .header()
                    .nonce;
                (bytes, nonce)
            } else {
                let nonce = nonce_from_seed(args.seed);
                let mut options = Options::default();
                if let Some(profile) = &args.profile {
                    let (planned, code) =
                        crate::aging::apply::apply_plan(&artifact_name, profile, host.bytes())?;
                    host = HostModel::from_bytes(&planned)?;
                    options.code = Some(code);
                }
                (protect::protect(host.bytes(), &key, nonce, options)?, nonce)
            };
            let reparam_only = protect::protect(
                host.bytes(),
                &key,
                nonce,
                Options {
                    code: None,
                    mac: false,
                    ..Options::default()
                },
            )?;
            Some(Protected {
                bytes,
                key,
                reparam_only,
            })
        }
    };
    Ok(Models {
        host,
        onnx,
        protected,
        protected_given: protected_input,
        artifact_name,
    })
}

fn file(p: &Path) -> String {
    p.display().to_string()
}

/// Runs `sturdy analyze`.
pub fn main(args: Args) -> Result<()> {
    let mut sections = Section::parse_list(&args.sections)?;
    if args.sections.trim() == "all" && args.profile.is_none() {
        sections.retain(|s| *s != Section::Aging);
    }
    if sections.contains(&Section::Aging)
        && (args.profile.is_none() || args.key.is_none() || args.labels.is_none())
    {
        bail!("the aging section needs --profile, --key and --labels");
    }
    anyhow::ensure!(args.seeds >= 1, "--seeds must be at least 1");
    anyhow::ensure!(args.samples >= 1, "--samples must be at least 1");
    let models = load_models(&args)?;
    if args.sections.trim() == "all" && models.onnx.is_none() {
        sections.retain(|s| *s != Section::Spectra);
    }
    let host = &models.host;
    let set = npy::read_samples(&args.input, &host.meta.input.onnx_shape)?;
    let labels = args.labels.as_deref().map(npy::read_labels).transpose()?;
    let domains = args.domains.as_deref().map(npy::read_domains).transpose()?;
    for (path, len) in [
        (&args.labels, labels.as_ref().map(Vec::len)),
        (&args.domains, domains.as_ref().map(Vec::len)),
    ] {
        if let (Some(path), Some(len)) = (path, len) {
            anyhow::ensure!(
                len == set.samples.len(),
                "{} holds {len} entries but {} holds {} samples: they must pair one to one",
                path.display(),
                args.input.display(),
                set.samples.len()
            );
        }
    }
    let classes: usize = host.meta.output.onnx_shape.iter().product();
    if let (Some(path), Some(l)) = (&args.labels, &labels) {
        if classes > 1 && host.meta.output.onnx_shape != host.meta.input.onnx_shape {
            npy::check_label_range(path, l, classes)?;
        }
    }
    let batch = Batch {
        inputs: set.samples.iter().map(|x| host.quantize_input(x)).collect(),
        labels: labels.clone(),
        domains: domains.clone(),
    };
    let subject = Subject::new(
        host.bytes().to_vec(),
        host.meta.clone(),
        models.protected.clone(),
        batch,
    )?;
    let float_parts = match &models.onnx {
        Some(path) => Some((TractReference::load(path)?, crate::onnx::import(path)?)),
        None => None,
    };
    let knobs = Knobs {
        seeds: args.seeds,
        base_seed: args.seed,
        samples: args.samples,
        max_flips: args.max_flips,
        attack_samples: args.attack_samples,
        verify_samples: args.verify_samples,
        ..Knobs::default()
    };
    let cost_key = match &models.protected {
        Some(p) => (p.key, nonce_from_seed(args.seed)),
        // Sizes and load time do not depend on the key.
        None => ([0x5a; 32], nonce_from_seed(args.seed)),
    };
    let inputs = Inputs {
        host,
        subject: &subject,
        float: float_parts
            .as_ref()
            .map(|(tract, graph)| FloatModel { tract, graph }),
        set: &set,
        profile: args.profile.as_deref(),
        board: args.board.as_ref().map(|spec| BoardRun {
            spec,
            input: &args.input,
            key: args.key.as_deref(),
        }),
        budgets: (args.flash, args.ram),
        cost_key,
        calib: args.calib.as_deref().unwrap_or(&args.input),
    };
    let settings = Settings {
        sturdy_version: env!("CARGO_PKG_VERSION").into(),
        onnx: models.onnx.as_deref().map(file),
        artifact: models.artifact_name.clone(),
        protected: models
            .protected
            .as_ref()
            .map(|_| match models.protected_given {
                true => file(&args.model),
                false => format!(
                    "made from the artifact with {} (nonce from --seed)",
                    file(args.key.as_deref().unwrap_or(Path::new("")))
                ),
            }),
        input: file(&args.input),
        samples: set.samples.len(),
        labels: args.labels.as_deref().map(file),
        domains: args.domains.as_deref().map(file),
        sections: sections.iter().map(|s| s.name().to_string()).collect(),
        seeds: args.seeds,
        base_seed: args.seed,
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(jobs) = args.jobs {
        anyhow::ensure!(jobs >= 1, "--jobs must be at least 1");
        pool = pool.num_threads(jobs);
    }
    let pool = pool.build().context("starting the worker threads")?;
    let report = pool.install(|| analyze(&inputs, &sections, &knobs, settings))?;
    write_report(&args.output, &report)?;
    eprintln!(
        "wrote {} and {}",
        args.output.join("report.html").display(),
        args.output.join("report.json").display()
    );
    Ok(())
}

/// Writes both files to temporaries first, then renames them into place:
/// a failure leaves the directory as it was.
fn write_report(dir: &Path, report: &crate::analyze::report::Report) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let files = [
        (dir.join("report.json"), serde_json::to_vec_pretty(report)?),
        (
            dir.join("report.html"),
            crate::analyze::render::html(report).into_bytes(),
        ),
    ];
    let mut temps = Vec::new();
    for (path, bytes) in &files {
        let tmp = temp_path_beside(path)?;
        if let Err(e) = std::fs::write(&tmp, bytes) {
            for t in temps.iter().chain([&tmp]) {
                let _ = std::fs::remove_file(t);
            }
            return Err(e).with_context(|| format!("writing {}", tmp.display()));
        }
        temps.push(tmp);
    }
    for ((path, _), tmp) in files.iter().zip(&temps) {
        std::fs::rename(tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    }
    Ok(())
}
