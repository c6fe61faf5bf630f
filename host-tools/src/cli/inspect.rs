//! `sturdy inspect`: what an artifact contains and what it costs.

use crate::host_model::HostModel;
use anyhow::{Context, Result};
use serde_json::json;
use std::path::PathBuf;
use sturdy_runtime::format::{
    TensorRecord, DTYPE_I32, DTYPE_I4, DTYPE_I8, DTYPE_U32, GUARD_ON, HEADER_SIZE, LOC_WEIGHTS,
    OP_CONV2D, OP_FULLY_CONNECTED, SECTION_ENTRY_SIZE, SECTION_GRAPH, SECTION_GUARDS,
    SECTION_INPUT_ALIGN, SECTION_LOGIT_ADJUST, SECTION_META, SECTION_WEIGHTS,
};

/// Show an artifact's ops, tensor shapes, flash bytes per section and arena peak.
///
/// The arena peak is the static plan stored in the artifact, next to what
/// TensorFlow Lite Micro's greedy-by-size planner would need for the same
/// tensors and the lower bound no plan can beat.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A sturdy artifact.
    artifact: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The name `inspect` (and `analyze`) shows for a `SECTION_*` kind.
pub(crate) fn section_name(kind: u32) -> String {
    match kind {
        SECTION_GRAPH => "graph".into(),
        SECTION_WEIGHTS => "weights".into(),
        SECTION_META => "metadata".into(),
        SECTION_GUARDS => "guards".into(),
        SECTION_INPUT_ALIGN => "input alignment (per-domain tables + reference CDF)".into(),
        SECTION_LOGIT_ADJUST => "logit adjustment".into(),
        other => format!("section {other}"),
    }
}

/// The name `inspect` shows for a `DTYPE_*` tag.
fn dtype_name(dtype: u8) -> &'static str {
    match dtype {
        DTYPE_I8 => "i8",
        DTYPE_I4 => "i4",
        DTYPE_I32 => "i32",
        DTYPE_U32 => "u32",
        _ => "?",
    }
}

/// A constant's dtype, shape and stored bytes (int4: two per byte).
fn constant_json(t: &TensorRecord) -> serde_json::Value {
    json!({
        "dtype": dtype_name(t.dtype),
        "shape": &t.dims[..t.rank as usize],
        "bytes": t.len,
    })
}

/// Runs `sturdy inspect`.
pub fn main(args: Args) -> Result<()> {
    let bytes = std::fs::read(&args.artifact)
        .with_context(|| format!("reading {}", args.artifact.display()))?;
    if sturdy_runtime::protect::is_protected(crate::fsutil::AlignedBytes::new(&bytes).as_bytes()) {
        return inspect_protected(&args, &bytes);
    }
    let host = HostModel::load(&args.artifact)?;
    let model = host.model()?;
    let artifact = model.artifact();
    let mut sections = vec![json!({
        "name": "header",
        "bytes": HEADER_SIZE + artifact.sections().len() * SECTION_ENTRY_SIZE,
    })];
    sections.extend(
        artifact
            .sections()
            .iter()
            .map(|s| json!({"name": section_name(s.kind), "bytes": s.len})),
    );
    // Sections start aligned; the gaps between them are flash too.
    let listed: usize = artifact
        .sections()
        .iter()
        .map(|s| s.len as usize)
        .sum::<usize>()
        + HEADER_SIZE
        + artifact.sections().len() * SECTION_ENTRY_SIZE;
    let padding = artifact.bytes().len().saturating_sub(listed);
    if padding > 0 {
        sections.push(json!({"name": "alignment padding", "bytes": padding}));
    }
    let ops: Vec<_> = artifact
        .ops()
        .iter()
        .zip(&host.meta.ops)
        .enumerate()
        .map(|(i, (record, meta))| {
            let out = &artifact.tensors()[record.output as usize];
            let guard = artifact
                .guards()
                .and_then(|g| g.get(i))
                .filter(|g| g.flags & GUARD_ON != 0)
                .map(|g| json!({"min": g.min, "max": g.max, "threshold": g.threshold}));
            let weights = [OP_CONV2D, OP_FULLY_CONNECTED]
                .contains(&record.kind)
                .then(|| artifact.tensors().get(record.inputs[1] as usize))
                .flatten()
                .map(constant_json);
            json!({
                "kind": meta.kind,
                "node": meta.node,
                "output_shape": &out.dims[..out.rank as usize],
                "output_scale": f32::from_bits(out.scale_bits),
                "output_zero_point": out.zero_point,
                "guard": guard,
                "weights": weights,
            })
        })
        .collect();
    // Bytes of constants per dtype (int4 counted as stored, two per byte).
    let mut constant_bytes = serde_json::Map::new();
    for dtype in [DTYPE_I8, DTYPE_I4, DTYPE_I32, DTYPE_U32] {
        let bytes: u64 = artifact
            .tensors()
            .iter()
            .filter(|t| t.location == LOC_WEIGHTS && t.dtype == dtype)
            .map(|t| t.len as u64)
            .sum();
        constant_bytes.insert(dtype_name(dtype).into(), bytes.into());
    }
    // Activation guards: present or not, and how many ops they narrow.
    let guards_summary = artifact.guards().map(|g| {
        json!({
            "ops": g.len(),
            "guarded_ops": g.iter().filter(|g| g.flags & GUARD_ON != 0).count(),
        })
    });
    let report = json!({
        "artifact": args.artifact.display().to_string(),
        "source": host.meta.source,
        "producer": host.meta.producer,
        "flash_bytes": artifact.bytes().len(),
        "weights_bytes": artifact.weights().len(),
        "constant_bytes": constant_bytes,
        "arena_bytes": model.arena_size(),
        "greedy_by_size_arena_bytes": host.meta.plan.greedy_by_size_bytes,
        "arena_lower_bound_bytes": host.meta.plan.lower_bound_bytes,
        "sections": sections,
        "tensors": artifact.tensors().len(),
        "input": {"shape": host.meta.input.onnx_shape, "layout": host.meta.input.layout,
                  "scale": host.input_qparams().scale, "zero_point": host.input_qparams().zero_point},
        "output": {"shape": host.meta.output.onnx_shape, "layout": host.meta.output.layout,
                   "scale": host.output_qparams().scale, "zero_point": host.output_qparams().zero_point},
        "calibration": host.meta.calibration,
        "guards": guards_summary,
        "ops": ops,
    });
    if args.json {
        println!("{report}");
        return Ok(());
    }
    println!(
        "{} (from {}, {})",
        args.artifact.display(),
        host.meta.source,
        host.meta.producer
    );
    let by_dtype = |k: &str| report["constant_bytes"][k].as_u64().unwrap_or(0);
    println!(
        "  flash  {:>8} B   weights {} B (i8 {} B, i4 {} B, i32 {} B, u32 {} B)",
        artifact.bytes().len(),
        artifact.weights().len(),
        by_dtype("i8"),
        by_dtype("i4"),
        by_dtype("i32"),
        by_dtype("u32")
    );
    for s in report["sections"].as_array().into_iter().flatten() {
        println!(
            "         {:>8} B   {}",
            s["bytes"].as_u64().unwrap_or(0),
            s["name"].as_str().unwrap_or("")
        );
    }
    println!(
        "  arena  {:>8} B   (greedy-by-size plan: {} B, lower bound: {} B)",
        model.arena_size(),
        host.meta.plan.greedy_by_size_bytes,
        host.meta.plan.lower_bound_bytes
    );
    println!(
        "  calibration: {} on {} samples",
        host.meta.calibration.method, host.meta.calibration.samples
    );
    if let Some(summary) = &host.meta.calibration.emaq {
        super::inspect_emaq::print(summary, &model);
    }
    match &report["guards"] {
        serde_json::Value::Null => println!("  guards: none (runs unguarded)"),
        g => println!(
            "  guards: present, {} of {} ops narrower than int8 (clamp + re-run above 1% out of range)",
            g["guarded_ops"], g["ops"]
        ),
    }
    println!(
        "  {:>3}  {:<34} {:<20} {:<12} {:<14} node",
        "op", "kind", "output", "guard", "weights"
    );
    for (i, op) in ops.iter().enumerate() {
        let guard = match &op["guard"] {
            serde_json::Value::Null => "-".to_string(),
            g => format!("[{}, {}]", g["min"], g["max"]),
        };
        let weights = match &op["weights"] {
            serde_json::Value::Null => "-".to_string(),
            w => format!("{} {} B", w["dtype"].as_str().unwrap_or(""), w["bytes"]),
        };
        println!(
            "  {i:>3}  {:<34} {:<20} {:<12} {:<14} {}",
            op["kind"].as_str().unwrap_or(""),
            op["output_shape"].to_string(),
            guard,
            weights,
            op["node"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

/// A protected artifact: what protection costs (its graph is coded behind
/// the key; `sturdy run --key` decodes it).
fn inspect_protected(args: &Args, bytes: &[u8]) -> Result<()> {
    let p = crate::protect::report(bytes)?;
    if args.json {
        println!(
            "{}",
            json!({"artifact": args.artifact.display().to_string(), "flash_bytes": bytes.len(), "protection": p})
        );
        return Ok(());
    }
    let b = |k: &str| p[k].as_f64().unwrap_or(0.0);
    let inner = b("inner_bytes");
    println!("{} (protected)", args.artifact.display());
    println!(
        "  flash  {:>8} B   (+{:.1}% over the {} B it protects)",
        bytes.len(),
        100.0 * p["overhead_vs_inner"].as_f64().unwrap_or(0.0),
        inner
    );
    match p["code"].as_object() {
        Some(c) => println!(
            "  code   QC-LDPC n={} k={} rate {}, {} codewords, keyed interleaver",
            c["n"],
            c["k"],
            c["rate"].as_str().unwrap_or(""),
            c["codewords"]
        ),
        None => println!("  code   none (stored uncoded)"),
    }
    if let Some(a) = p["aging_plan"].as_object() {
        let hours = a["scrub_interval_hours"].as_f64().unwrap_or(0.0);
        let years = a["lifetime_years"].as_f64().unwrap_or(0.0);
        println!(
            "  aging  planned for {} ({years} years): {}, scrub {}; P(uncorrectable word over the lifetime) {:.1e} ≤ {:.0e}{}",
            a["profile"].as_str().unwrap_or("?"),
            a["code"].as_str().unwrap_or("?"),
            if hours < years * crate::aging::profile::HOURS_PER_YEAR {
                format!("every {hours} h")
            } else {
                "never needed".into()
            },
            a["lifetime_failure"].as_f64().unwrap_or(f64::NAN),
            a["target_failure"].as_f64().unwrap_or(f64::NAN),
            if a["extrapolated"].as_bool() == Some(true) { " (FER extrapolated)" } else { "" }
        );
    }
    println!("         {:>8} B   stored image", b("stored_bytes"));
    println!(
        "         {:>8.0} B   of it parity ({:.1}% of the protected bytes)",
        b("parity_bytes"),
        100.0 * b("parity_bytes") / inner
    );
    println!(
        "         {:>8.0} B   of it message padding",
        b("message_padding_bytes")
    );
    println!(
        "         {:>8} B   tags ({} blocks of {} B, BLAKE2s-128){}",
        b("tag_bytes"),
        p["tag_blocks"],
        p["block_len"],
        if p["mac"].as_bool() == Some(true) {
            ""
        } else {
            " — none: tampering undetected"
        }
    );
    println!(
        "         {:>8} B   protection header",
        b("protection_header_bytes")
    );
    println!("  mode   {}", p["mode"].as_str().unwrap_or(""));
    let ram = |k: &str| p["ram"][k].as_u64();
    println!(
        "  RAM    {:>8} B   decode into RAM, artifact in XIP flash (inner copy)",
        ram("decode_into_ram_from_flash").unwrap_or(0)
    );
    println!(
        "         {:>8} B   decode into RAM, artifact in RAM (artifact + inner copy)",
        ram("decode_into_ram_from_ram").unwrap_or(0)
    );
    match ram("verify_in_place") {
        Some(n) => println!("         {n:>8} B   verify in place (the artifact only)"),
        None => println!(
            "                        verify in place: not this layout (protect --in-place)"
        ),
    }
    Ok(())
}
