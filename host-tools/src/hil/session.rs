//! A hardware-in-loop run: every sample through the board and through the
//! host runtime, every output byte compared, costs and memory collected.

use super::client::Client;
use super::cost::{macs, op_macs, op_name};
use super::drift_check::DriftCheck;
use super::firmware::{build_firmware_with, BoardKind};
use super::link::open_serial;
use super::qemu::{require_qemu, QemuBoard};
use crate::host_model::{add_report, guards_json};
use crate::host_model::{HostModel, TimingSetting};
use crate::npy;
use anyhow::{bail, ensure, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use sturdy_protocol::{
    Board, CounterUnit, GuardMode, Health, Info, Memory, ScrubStats, PROTOCOL_VERSION,
};
use sturdy_runtime::{GuardPolicy, GuardReport};

/// How long one reply may take (an inference on a slow emulator included).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Mismatches listed individually in a report.
const LISTED_MISMATCHES: usize = 20;

/// Which board to run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoardSpec {
    /// Build the firmware and boot it in QEMU.
    Qemu,
    /// A real board, already flashed with the same artifact, on a serial port.
    Serial(PathBuf),
}

impl FromStr for BoardSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "qemu" => Ok(BoardSpec::Qemu),
            _ => match s.strip_prefix("serial:") {
                Some(path) if !path.is_empty() => Ok(BoardSpec::Serial(PathBuf::from(path))),
                _ => Err(format!("unknown board {s:?}: use qemu or serial:PATH")),
            },
        }
    }
}

/// What to run where.
#[derive(Debug, Clone)]
pub struct HilOptions {
    /// The artifact (the host runs it; the board must run the same bytes).
    pub artifact: PathBuf,
    /// Float32 `.npy` samples in the model's input layout.
    pub input: PathBuf,
    /// The board.
    pub board: BoardSpec,
    /// A prebuilt firmware ELF for QEMU (skips the build; its artifact CRC is
    /// still checked).
    pub elf: Option<PathBuf>,
    /// Firmware sources, for the build.
    pub firmware_dir: PathBuf,
    /// Run only the first N samples.
    pub limit: Option<usize>,
    /// Show cargo's output while building.
    pub verbose: bool,
    /// Draw a progress bar.
    pub progress: bool,
    /// Device key of a protected artifact: compiled into the QEMU firmware,
    /// and used by the host to decode its own reference copy.
    pub key: Option<PathBuf>,
    /// Domain id of each sample (`.npy`): sent with every inference, and
    /// the host reference aligns its input the same way.
    pub domains: Option<PathBuf>,
    /// Play the samples as one stream through the board's drift monitor
    /// and compare it with the host's, sample by sample.
    pub adapt: bool,
    /// Transient timing faults on both sides (each sample's seed is sent
    /// to the board, so both flip the same bits).
    pub timing: Option<TimingSetting>,
}

impl HilOptions {
    /// `artifact` over the samples in `input` on QEMU, with the firmware
    /// built from the repository's sources: everything else off.
    pub fn qemu(artifact: PathBuf, input: PathBuf) -> Self {
        HilOptions {
            artifact,
            input,
            board: BoardSpec::Qemu,
            elf: None,
            firmware_dir: super::firmware::default_firmware_dir(),
            limit: None,
            verbose: false,
            progress: false,
            key: None,
            domains: None,
            adapt: false,
            timing: None,
        }
    }
}

/// One output byte that differs between host and board.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// Sample index.
    pub sample: usize,
    /// Byte index in the int8 output.
    pub index: usize,
    /// What the host runtime computed.
    pub host: i8,
    /// What the board computed.
    pub board: i8,
}

/// Cost of one op in the last inference.
#[derive(Debug, Clone, Serialize)]
pub struct OpCost {
    /// Op index.
    pub op: u16,
    /// Op kind.
    pub kind: &'static str,
    /// Instructions or cycles.
    pub count: u64,
    /// The op's multiply-accumulates (0 for ops without a weight product),
    /// so a slow layer shows as many instructions per MAC.
    pub macs: u64,
}

/// The outcome of a run.
#[derive(Debug, Clone)]
pub struct HilReport {
    /// The artifact run.
    pub artifact: PathBuf,
    /// The board's self-description.
    pub info: Info,
    /// Samples run.
    pub samples: usize,
    /// Output bytes that differed, over all samples.
    pub mismatches: usize,
    /// Samples with at least one differing byte.
    pub mismatched_samples: usize,
    /// The first few differing bytes.
    pub first_mismatches: Vec<Mismatch>,
    /// Instructions or cycles of each inference.
    pub costs: Vec<u64>,
    /// Per-op costs of the last inference.
    pub per_op: Vec<OpCost>,
    /// Multiply-accumulates per inference (from the artifact).
    pub macs: u64,
    /// Deepest stack use the board measured.
    pub stack_peak: u32,
    /// Frames the board refused during the run (should be 0).
    pub bad_frames: u32,
    /// The firmware ELF (QEMU).
    pub elf: Option<PathBuf>,
    /// The raw defmt log (QEMU).
    pub log: Vec<u8>,
    /// The board's health record of its protected load (`None`: plain).
    pub health: Option<Health>,
    /// The board's activation-guard counts, summed over every sample (the
    /// board does not say which op tripped first).
    pub guards: GuardReport,
    /// The board's scrubber and aging indicator (`None`: nothing to scrub).
    pub scrub: Option<ScrubStats>,
    /// The drift monitor against its host twin (`--adapt`).
    pub drift: Option<DriftCheck>,
    /// Bits timing faults flipped: (host, board), over every sample.
    pub timing_flips: (u64, u64),
}

impl HilReport {
    /// Every output byte matched — and, with `--adapt`, every drift
    /// statistic and event; with timing faults, every flip count.
    pub fn bit_exact(&self) -> bool {
        self.mismatches == 0
            && self.samples > 0
            && self.drift.as_ref().is_none_or(DriftCheck::agrees)
            && self.timing_flips.0 == self.timing_flips.1
    }

    /// Mean cost per inference, rounded.
    pub fn mean_cost(&self) -> u64 {
        let n = self.costs.len().max(1) as u128;
        (self.costs.iter().map(|&c| c as u128).sum::<u128>() / n) as u64
    }

    /// `"instructions"` or `"cycles"`.
    pub fn unit(&self) -> &'static str {
        match self.info.counter {
            CounterUnit::Instructions => "instructions",
            CounterUnit::Cycles => "cycles",
        }
    }

    /// The board, for people.
    pub fn board_name(&self) -> &'static str {
        board_name(self.info.board)
    }

    /// The machine-readable report (`sturdy hil --json`).
    pub fn to_json(&self) -> Value {
        let mean = self.mean_cost();
        let per_unit = if mean > 0 {
            self.macs as f64 / mean as f64
        } else {
            0.0
        };
        let mut report = json!({
            "artifact": self.artifact.display().to_string(),
            "board": self.board_name(),
            "samples": self.samples,
            "bit_exact": self.bit_exact(),
            "mismatches": self.mismatches,
            "mismatched_samples": self.mismatched_samples,
            "first_mismatches": self.first_mismatches,
            "counter": self.unit(),
            "counter_resolution": self.info.counter_resolution,
            "min_per_inference": self.costs.iter().min().copied().unwrap_or(0),
            "max_per_inference": self.costs.iter().max().copied().unwrap_or(0),
            "macs_per_inference": self.macs,
            "per_op": self.per_op,
            "memory": memory_json(&self.info.memory),
            "stack_peak_bytes": self.stack_peak,
            "bad_frames": self.bad_frames,
            "firmware_version": format!(
                "{}.{}.{}",
                self.info.firmware.major, self.info.firmware.minor, self.info.firmware.patch
            ),
        });
        report[format!("{}_per_inference", self.unit())] = json!(mean);
        report[format!("macs_per_{}", self.unit().trim_end_matches('s'))] = json!(per_unit);
        if let Some(elf) = &self.elf {
            report["elf"] = json!(elf.display().to_string());
        }
        if let Some(h) = &self.health {
            report["health"] = health_json(h);
        }
        report["guards"] = guards_json(&self.guards);
        if let Some(s) = &self.scrub {
            report["scrub"] = scrub_json(s);
        }
        if let Some(d) = &self.drift {
            report["drift"] = d.to_json();
        }
        report["timing_flips"] = json!({"host": self.timing_flips.0, "board": self.timing_flips.1});
        report
    }
}

/// The board's scrub counters and aging indicator as JSON (`sturdy hil
/// --json` → `scrub`, its `aging` the indicator).
pub fn scrub_json(s: &ScrubStats) -> Value {
    let a = &s.aging;
    json!({
        "steps": s.steps, "passes": s.passes, "position": s.position, "checked": s.checked,
        "corrected_words": s.corrected_words, "corrected_bits": s.corrected_bits,
        "uncorrectable_words": s.uncorrectable_words,
        "decoded_bits_repaired": s.decoded_bits_repaired,
        "last_cost": s.last_cost, "last_checked": s.last_checked,
        "worst_cost": s.worst_cost, "worst_checked": s.worst_checked,
        "aging": {
            "passes": a.passes, "last_bits": a.last_bits,
            "trend_bits_per_pass": a.trend_milli as f64 / 1000.0,
            "trend_lower_bits_per_pass": (a.trend_lower_milli > i64::MIN)
                .then(|| a.trend_lower_milli as f64 / 1000.0),
            "projected_bits": a.projected_bits, "limit_bits": a.limit_bits,
            "uncorrectable_seen": a.uncorrectable_seen,
            "alarm": a.alarm, "ram_bytes": a.ram_bytes,
        },
    })
}

/// The board's health record as JSON (`sturdy hil --json` → `health`; the
/// fields of `sturdy run --json`'s, plus the board's load counters).
pub fn health_json(h: &Health) -> Value {
    json!({
        "codewords_checked": h.codewords_checked,
        "corrected_words": h.corrected_words,
        "corrected_bits": h.corrected_bits,
        "uncorrectable_words": h.uncorrectable_words,
        "blocks_checked": h.blocks_checked,
        "mac_failures": h.mac_failures,
        "loads": h.loads,
        "load_cost": h.load_cost,
        "injected_bits": h.injected_bits,
    })
}

fn memory_json(m: &Memory) -> Value {
    json!({
        "flash_total": m.flash_total,
        "flash_used": m.flash_used,
        "code": m.code,
        "artifact": m.artifact,
        "ram_total": m.ram_total,
        "ram_static": m.ram_static,
        "arena": m.arena,
        "stack_reserved": m.stack_reserved,
    })
}

/// A board's name, for people.
pub fn board_name(board: Board) -> &'static str {
    match board {
        Board::QemuMps2An386 => "QEMU mps2-an386 (Cortex-M4)",
        Board::NucleoF401re => "Nucleo-F401RE (Cortex-M4F)",
    }
}

/// Checks the board runs the artifact the host compares against.
fn check_info(info: &Info, artifact: &[u8]) -> Result<()> {
    ensure!(
        info.protocol == PROTOCOL_VERSION,
        "the board speaks protocol {}, this host {PROTOCOL_VERSION}: rebuild the firmware",
        info.protocol
    );
    if let Some(fault) = info.model_fault {
        bail!("the board's linked artifact does not parse: {fault:?}");
    }
    let crc = sturdy_runtime::crc32(artifact);
    ensure!(
        info.artifact_crc == crc && info.artifact_len as usize == artifact.len(),
        "the board runs another artifact ({} B, CRC {:08x}) than the host ({} B, CRC {crc:08x}): flash it with `sturdy flash`",
        info.artifact_len,
        info.artifact_crc,
        artifact.len()
    );
    Ok(())
}

fn progress_bar(len: usize, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>14} [{bar:32}] {pos}/{len} samples ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("board");
    bar
}

/// An open connection to a board, and the emulator behind it if any.
struct Connection {
    client: Client,
    qemu: Option<QemuBoard>,
    elf: Option<PathBuf>,
}

fn connect(opts: &HilOptions) -> Result<Connection> {
    match &opts.board {
        BoardSpec::Qemu => {
            require_qemu()?;
            let elf = match &opts.elf {
                Some(elf) => elf.clone(),
                // Fault emulation is a test harness, left out of products.
                None => build_firmware_with(
                    &opts.artifact,
                    opts.key.as_deref(),
                    BoardKind::Qemu,
                    if opts.timing.is_some() {
                        &["timing-faults"]
                    } else {
                        &[]
                    },
                    &opts.firmware_dir,
                    opts.verbose,
                )?,
            };
            let (qemu, link) = QemuBoard::launch(&elf)?;
            Ok(Connection {
                client: Client::new(Box::new(link), REPLY_TIMEOUT),
                qemu: Some(qemu),
                elf: Some(elf),
            })
        }
        BoardSpec::Serial(path) => Ok(Connection {
            client: Client::new(Box::new(open_serial(path)?), REPLY_TIMEOUT),
            qemu: None,
            elf: None,
        }),
    }
}

/// Boots or opens the board for `opts` and returns a client that has checked
/// the board runs `opts.artifact`, with the emulator handle (if any).
pub fn open_board(opts: &HilOptions) -> Result<(Client, Option<QemuBoard>, Option<PathBuf>)> {
    let artifact = std::fs::read(&opts.artifact)
        .with_context(|| format!("reading {}", opts.artifact.display()))?;
    let mut conn = connect(opts)?;
    let info = conn
        .client
        .info()
        .context("asking the board for its info")?;
    check_info(&info, &artifact)?;
    Ok((conn.client, conn.qemu, conn.elf))
}

/// Runs every sample of `opts.input` on the board and on the host and
/// compares the int8 outputs byte for byte.
pub fn run_hil(opts: &HilOptions) -> Result<HilReport> {
    // The board runs guarded whenever the artifact has guards: so does the
    // host reference.
    let mut host = host_model(opts)?;
    host.set_guarded(true);
    host.set_timing_faults(opts.timing);
    let set = npy::read_samples(&opts.input, &host.meta.input.onnx_shape)?;
    let count = opts.limit.unwrap_or(usize::MAX).min(set.samples.len());
    let domains = opts.domains.as_deref().map(npy::read_domains).transpose()?;
    if let Some(d) = &domains {
        anyhow::ensure!(
            d.len() >= count,
            "{} domain ids for {count} samples",
            d.len()
        );
    }
    ensure!(
        !(opts.adapt && domains.is_some()),
        "--adapt finds the sensor's alignment itself: drop --domains"
    );
    ensure!(
        !(opts.adapt && opts.timing.is_some()),
        "--adapt and --timing-faults are separate experiments: give one"
    );
    let codes: Vec<Vec<i8>> = (set.samples.iter().take(count))
        .map(|s| host.quantize_input(s))
        .collect();
    // The host twin plays the whole stream first; the board must match it
    // sample by sample.
    let trace = opts
        .adapt
        .then(|| crate::drift::stream::play_codes(&host, &codes, false))
        .transpose()
        .context("--adapt on the host")?;
    let (mut client, qemu, elf) = open_board(opts)?;
    let info = client.info()?;
    let model = host.model()?;
    if opts.adapt {
        client
            .adapt(true)
            .context("starting the board's drift monitor")?;
    }
    let mut report = HilReport {
        artifact: opts.artifact.clone(),
        info,
        samples: 0,
        mismatches: 0,
        mismatched_samples: 0,
        first_mismatches: Vec::new(),
        costs: Vec::with_capacity(count),
        per_op: Vec::new(),
        macs: macs(&model),
        stack_peak: 0,
        bad_frames: 0,
        elf,
        log: Vec::new(),
        health: None,
        scrub: None,
        guards: GuardReport::default(),
        drift: trace.as_ref().map(|_| DriftCheck::default()),
        timing_flips: (0, 0),
    };
    let bar = progress_bar(count, opts.progress);
    for (i, input) in codes.iter().enumerate() {
        let domain = domains.as_ref().map(|d| d[i]);
        let expected = match &trace {
            Some(t) => t.outputs[i].clone(),
            None => host.infer_in_domain(input, domain)?,
        };
        if let Some(t) = &opts.timing {
            (client.timing_faults(t.rate_ppb, t.seed_for(input), guard_mode(t.policy)))
                .with_context(|| format!("sample {i}: setting timing faults"))?;
        }
        client
            .load_input(input)
            .with_context(|| format!("sample {i}: loading the input"))?;
        client
            .infer(domain)
            .with_context(|| format!("sample {i}: inference on the board"))?;
        let got = client
            .read_output(info.output_len as usize)
            .with_context(|| format!("sample {i}: reading the output"))?;
        let stats = client.stats()?;
        report.costs.push(stats.last);
        report.timing_flips.1 += u64::from(stats.timing_flips);
        if let (Some(check), Some(t)) = (&mut report.drift, &trace) {
            let board = client
                .drift()
                .with_context(|| format!("sample {i}: drift"))?;
            check.record(i, board, t);
        }
        let g = stats.guards;
        let board = GuardReport {
            ops_checked: g.ops_checked,
            values_clamped: g.values_clamped,
            trips: g.trips,
            trips_after_rerun: g.trips_after_rerun,
            first_tripped_op: None,
        };
        add_report(&mut report.guards, &board);
        compare(&mut report, i, &expected, &got);
        report.samples += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    if report.samples > 0 {
        for op in 0..info.op_count {
            let (kind, count) = client.op_stats(op)?;
            report.per_op.push(OpCost {
                op,
                kind: op_name(kind),
                count,
                macs: model.op(op.into()).map_or(0, |o| op_macs(&o.kind)),
            });
        }
    }
    report.timing_flips.0 = host.timing_flips();
    let stats = client.stats()?;
    report.stack_peak = stats.stack_peak;
    report.bad_frames = stats.bad_frames;
    report.health = stats.health;
    report.scrub = stats.scrub;
    if let Some(qemu) = qemu {
        client.shutdown(0)?;
        let (status, log) = qemu.finish(Duration::from_secs(10))?;
        report.log = log;
        ensure!(status.success(), "QEMU exited with {status}");
    }
    Ok(report)
}

/// The protocol's name for a guard policy.
pub fn guard_mode(policy: GuardPolicy) -> GuardMode {
    match policy {
        GuardPolicy::Off => GuardMode::Off,
        GuardPolicy::Clamp => GuardMode::Clamp,
        GuardPolicy::Stored => GuardMode::Stored,
        GuardPolicy::Strict => GuardMode::Strict,
        GuardPolicy::Redundant => GuardMode::Redundant,
    }
}

/// The host's reference model: the plain artifact, or the protected one
/// decoded with the key by the runtime's own loader.
pub fn host_model(opts: &HilOptions) -> Result<HostModel> {
    let Some(key) = &opts.key else {
        return HostModel::load(&opts.artifact);
    };
    let key = crate::protect::key::read(key)?;
    let bytes = std::fs::read(&opts.artifact)
        .with_context(|| format!("reading {}", opts.artifact.display()))?;
    let (model, _) = crate::protect::load_host(&bytes, &key)
        .with_context(|| format!("loading {}", opts.artifact.display()))?;
    Ok(model)
}

fn compare(report: &mut HilReport, sample: usize, host: &[i8], board: &[i8]) {
    let mut differs = host.len() != board.len();
    for (index, (&h, &b)) in host.iter().zip(board).enumerate() {
        if h != b {
            differs = true;
            report.mismatches += 1;
            if report.first_mismatches.len() < LISTED_MISMATCHES {
                report.first_mismatches.push(Mismatch {
                    sample,
                    index,
                    host: h,
                    board: b,
                });
            }
        }
    }
    report.mismatches += host.len().abs_diff(board.len());
    if differs {
        report.mismatched_samples += 1;
    }
}

/// Decodes a raw defmt log with `defmt-print -e ELF` (installed with
/// `cargo install defmt-print`).
pub fn decode_defmt(elf: &Path, log: &[u8]) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("defmt-print")
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running defmt-print (install it with `cargo install defmt-print`)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(log)?;
    }
    let out = child.wait_with_output()?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
