//! `sturdy hil`: run an artifact on a board and prove it computes what the
//! host computes.

use super::timing_args::TimingArgs;
use crate::hil::firmware::default_firmware_dir;
use crate::hil::session::decode_defmt;
use crate::hil::{run_hil, BoardSpec, HilOptions, HilReport};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::PathBuf;

/// Run every sample on a board and compare each output byte with the host.
///
/// With --board qemu (the default) the firmware is built with ARTIFACT linked
/// into its flash and booted on QEMU's mps2-an386 (Cortex-M4) with
/// `-icount shift=0`, so the reported instruction counts are deterministic.
/// With --board serial:PATH the board on that serial port must already run
/// ARTIFACT (`sturdy flash`); its cycle counter is reported.
///
///   sturdy hil mnist.sturdy --input models/mnist_test_x.npy
///   sturdy hil mnist.sturdy --input models/mnist_test_x.npy --board serial:/dev/ttyACM0 --json
///   sturdy hil mnist.prot --key device.key --input models/mnist_test_x.npy --json
///   sturdy hil drift.sturdy --input models/drift/lt_mnist_gain_offset_x.npy --adapt
///   sturdy hil mnist.sturdy --input models/mnist_test_x.npy --timing-faults 1e-4 --guard-policy strict
///
/// With --key the artifact is a protected one (`sturdy protect`): the key is
/// compiled into the QEMU firmware, which decodes the artifact into RAM at
/// boot; the host decodes its own copy with the same key, and the board's
/// health record (codewords checked, corrected bits, uncorrectable words,
/// tag failures, load cost) is reported (`health` in --json).
///
/// Exits with an error when any output byte differs.
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct Args {
    /// A sturdy artifact.
    artifact: PathBuf,
    /// Inputs: float32 .npy, samples stacked on axis 0, in the model's input units.
    #[arg(long)]
    input: PathBuf,
    /// qemu, or serial:PATH for a flashed real board.
    #[arg(long, default_value = "qemu")]
    board: BoardSpec,
    /// Run only the first N samples.
    #[arg(long)]
    limit: Option<usize>,
    /// Use this firmware ELF instead of building one (QEMU).
    #[arg(long)]
    elf: Option<PathBuf>,
    /// The firmware sources (default: the repository's firmware/).
    #[arg(long)]
    firmware_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Show the firmware build and the board's decoded defmt log.
    #[arg(long)]
    verbose: bool,
    /// Device key of a protected artifact (from `sturdy keygen`).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Domain id of each sample (.npy, int64/int32), sent with every
    /// inference: the board maps the input through that domain's
    /// alignment table (artifacts quantized with `--method emaq-lt --domains`).
    #[arg(long)]
    domains: Option<PathBuf>,
    /// Play the samples in file order as one sensor stream through the
    /// board's drift monitor (an artifact quantized with --drift-monitor)
    /// and through its host twin (`sturdy run --adapt`): every output,
    /// drift statistic, CUSUM sum, re-fit and rollback must agree. Reports
    /// the monitor's RAM and its cost per input and per re-fit (`drift`).
    #[arg(long)]
    adapt: bool,
    #[command(flatten)]
    timing: TimingArgs,
}

/// Runs `sturdy hil`.
pub fn main(args: Args) -> Result<()> {
    let opts = HilOptions {
        artifact: args.artifact,
        input: args.input,
        board: args.board,
        elf: args.elf,
        firmware_dir: args.firmware_dir.unwrap_or_else(default_firmware_dir),
        limit: args.limit,
        verbose: args.verbose,
        progress: !args.json && std::io::stderr().is_terminal(),
        key: args.key,
        domains: args.domains,
        adapt: args.adapt,
        timing: args.timing.setting()?,
    };
    let report = run_hil(&opts)?;
    if args.verbose {
        print_log(&report);
    }
    if args.json {
        println!("{}", report.to_json());
    } else {
        print_text(&report);
    }
    if !report.bit_exact() {
        bail!(
            "{} of {} samples differ between host and board",
            report.mismatched_samples,
            report.samples
        );
    }
    Ok(())
}

fn print_log(report: &HilReport) {
    let Some(elf) = &report.elf else {
        eprintln!("(the board's log is not on the protocol link: read it with `probe-rs attach`)");
        return;
    };
    match decode_defmt(elf, &report.log) {
        Ok(text) => eprintln!("board log:\n{}", text.trim_end()),
        Err(e) => eprintln!("board log: {} raw bytes ({e:#})", report.log.len()),
    }
}

fn kib(bytes: u32) -> String {
    format!("{:.1} KiB", f64::from(bytes) / 1024.0)
}

fn print_text(r: &HilReport) {
    let m = &r.info.memory;
    println!(
        "{} on {}: {} samples",
        r.artifact.display(),
        r.board_name(),
        r.samples
    );
    if r.bit_exact() {
        println!("  bit-exact          yes: every output byte equals the host's");
    } else {
        println!(
            "  bit-exact          NO: {} bytes differ in {} samples",
            r.mismatches, r.mismatched_samples
        );
        for x in &r.first_mismatches {
            println!(
                "    sample {} byte {}: host {} board {}",
                x.sample, x.index, x.host, x.board
            );
        }
    }
    let mean = r.mean_cost();
    println!(
        "  {:<18} {} per inference (min {}, max {}; resolution {})",
        r.unit(),
        mean,
        r.costs.iter().min().copied().unwrap_or(0),
        r.costs.iter().max().copied().unwrap_or(0),
        r.info.counter_resolution
    );
    if mean > 0 {
        println!(
            "  MACs               {} per inference, {:.3} per {}",
            r.macs,
            r.macs as f64 / mean as f64,
            r.unit().trim_end_matches('s')
        );
    }
    println!(
        "  flash              {} of {} (code {}, artifact {})",
        kib(m.flash_used),
        kib(m.flash_total),
        kib(m.code),
        kib(m.artifact)
    );
    println!(
        "  RAM                {} static of {} (arena {}); stack peak {} B of {} reserved",
        kib(m.ram_static),
        kib(m.ram_total),
        kib(m.arena),
        r.stack_peak,
        m.stack_reserved
    );
    if let Some(d) = &r.drift {
        let l = &d.last;
        println!(
            "  drift monitor      {} re-fits ({} rolled back), first alarm {}; {} of {} samples disagree with the host",
            l.refits,
            l.rollbacks,
            l.first_alarm.map_or("none".into(), |a| format!("at sample {a}")),
            d.mismatched_samples,
            r.samples
        );
        println!(
            "  drift cost         {} B RAM; input {} {} max ({:.1} per counted value, {} counted); judgement {} mean; re-fit {} max",
            l.ram_bytes,
            d.input_cost_max,
            r.unit(),
            d.input_cost_max as f64 / f64::from(l.values_observed.max(1)),
            l.values_observed,
            d.output_cost_sum / r.samples.max(1) as u64,
            d.refit_cost_max
        );
    }
    if r.timing_flips != (0, 0) {
        println!(
            "  timing faults      {} bits flipped on the board, {} on the host",
            r.timing_flips.1, r.timing_flips.0
        );
    }
    if let Some(h) = &r.health {
        println!(
            "  health             {} codewords checked, {} corrected ({} bits), {} uncorrectable; {} blocks, {} tag failures; load {} {}",
            h.codewords_checked,
            h.corrected_words,
            h.corrected_bits,
            h.uncorrectable_words,
            h.blocks_checked,
            h.mac_failures,
            h.load_cost,
            r.unit()
        );
    }
    if !r.per_op.is_empty() {
        println!("  per op (last inference):");
        println!(
            "    {:>4}  {:<16} {:>14} {:>12} {:>9}",
            "op",
            "kind",
            r.unit(),
            "MACs",
            "per MAC"
        );
        for o in &r.per_op {
            let per_mac = if o.macs > 0 {
                format!("{:.2}", o.count as f64 / o.macs as f64)
            } else {
                "–".into()
            };
            println!(
                "    {:>4}  {:<16} {:>14} {:>12} {:>9}",
                o.op, o.kind, o.count, o.macs, per_mac
            );
        }
    }
}
