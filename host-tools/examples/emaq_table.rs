//! The EmaQ-LT comparison tables in the README: the bundled long-tailed,
//! domain-shifted model (`models/lt_mnist*`) quantized every way sturdy
//! can, scored on the balanced test set under each domain; then the
//! long-tailed models EmaQ-LT was not tuned on (`longtail::UNSEEN`) at
//! W4A8 against the float model with plain logit adjustment (τ = 1), with
//! the logit-adjustment fit before (best calibration score) and after (the
//! evidence bound) the change that made it hold on thin tails.
//!
//!   cargo xtask emaq-table            (writes it into README.md)
//!   cargo run --release -p sturdy-tools --example emaq_table [-- --readme README.md]
//!
//! Columns: balanced accuracy on the clean (reference) domain, tail
//! accuracy (mean recall of the 3 classes rarest in the training prior,
//! clean domain), accuracy per domain (0 clean, 1 gain/offset, 2 contrast,
//! 3 noise; every artifact gets each sample's domain id, which only an
//! EmaQ-LT artifact with alignment tables uses), and the bytes of the
//! Conv/FC weights. The float row is tract on the ONNX model. When
//! onnxruntime is importable by `python3`, its static quantization of the
//! same model (`models/ort_quantize.py`) is a row too.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use sturdy_runtime::format::{LOC_WEIGHTS, OP_CONV2D, OP_FULLY_CONNECTED};
use sturdy_tools::eval::Engine;
use sturdy_tools::fsutil::{write_atomic, AlignedBytes};
use sturdy_tools::longtail::{LongTail, LongTailScore, UNSEEN};
use sturdy_tools::quantize::bits::BitsChoice;
use sturdy_tools::quantize::emaq::EmaqSummary;
use sturdy_tools::quantize::{
    quantize_onnx, quantize_onnx_bits, quantize_onnx_emaq, RangeMethod, WeightBits,
};
use sturdy_tools::reference::TractReference;

const BEGIN: &str = "<!-- emaq-table:begin (cargo xtask emaq-table) -->";
const END: &str = "<!-- emaq-table:end -->";

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn file(name: &str) -> PathBuf {
    models().join(name)
}

/// One row's figures.
struct Row {
    name: String,
    score: LongTailScore,
    weight_bytes: usize,
}

/// Bytes of the Conv/FC weight tensors of an artifact.
fn weight_bytes(bytes: &[u8]) -> Result<usize> {
    let aligned = AlignedBytes::new(bytes);
    let model =
        sturdy_runtime::Model::parse(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let a = model.artifact();
    let mut total = 0;
    for op in a.ops() {
        if op.kind == OP_CONV2D || op.kind == OP_FULLY_CONNECTED {
            let t = a
                .tensor(op.inputs[1] as usize)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            if t.location == LOC_WEIGHTS {
                total += t.len as usize;
            }
        }
    }
    Ok(total)
}

fn artifact_row(bench: &LongTail, name: &str, bytes: &[u8]) -> Result<Row> {
    let host = sturdy_tools::host_model::HostModel::from_bytes(bytes)?;
    Ok(Row {
        name: name.into(),
        score: bench.score(&Engine::Int8(Box::new(host)))?,
        weight_bytes: weight_bytes(bytes)?,
    })
}

/// onnxruntime's static quantization, if `python3` can import it (its
/// tail classes come from the same prior file).
fn ort_row(weight_type: &str) -> Result<Option<Row>> {
    let probe = Command::new("python3")
        .args(["-c", "import onnxruntime"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        return Ok(None);
    }
    let out = Command::new("python3")
        .arg(file("ort_quantize.py"))
        .arg(file("lt_mnist.onnx"))
        .args(["--calib".as_ref(), file("lt_mnist_calib_x.npy").as_os_str()])
        .args(["--test-x".as_ref(), file("lt_mnist_test_x.npy").as_os_str()])
        .args(["--test-y".as_ref(), file("lt_mnist_test_y.npy").as_os_str()])
        .args(["--test-d".as_ref(), file("lt_mnist_test_d.npy").as_os_str()])
        .args([
            "--prior".as_ref(),
            file("lt_mnist_train_prior.npy").as_os_str(),
        ])
        .args(["--per-channel", "--weight-type", weight_type])
        .output()
        .context("running models/ort_quantize.py")?;
    if !out.status.success() {
        bail!(
            "ort_quantize.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let pd = |d: usize| {
        v["per_domain_accuracy"][d.to_string()]
            .as_f64()
            .unwrap_or(f64::NAN)
    };
    Ok(Some(Row {
        name: format!(
            "onnxruntime {} static, {weight_type} weights per channel",
            v["ort_version"].as_str().unwrap_or("?")
        ),
        score: LongTailScore {
            balanced: v["balanced_accuracy"].as_f64().unwrap_or(f64::NAN),
            tail: v["tail_accuracy"].as_f64().unwrap_or(f64::NAN),
            per_domain: (0..4).map(pd).collect(),
        },
        weight_bytes: v["weight_bytes"].as_u64().unwrap_or(0) as usize,
    }))
}

fn table(rows: &[Row], ort_note: &str) -> String {
    let mut s = String::from(
        "| lt_mnist | balanced (clean) | tail (classes 7–9) | domain 0 clean | 1 gain/offset | 2 contrast | 3 noise | Conv/FC weight B |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let pct = |x: f64| format!("{:.2}", 100.0 * x);
    for r in rows {
        let d = |i: usize| pct(r.score.per_domain.get(i).copied().unwrap_or(f64::NAN));
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.name,
            pct(r.score.balanced),
            pct(r.score.tail),
            d(0),
            d(1),
            d(2),
            d(3),
            r.weight_bytes
        );
    }
    s + ort_note
}

/// The fitted `τ` and margin of an EmaQ-LT artifact, for the table.
fn fitted(bytes: &[u8]) -> Result<String> {
    let meta = sturdy_tools::host_model::HostModel::from_bytes(bytes)?.meta;
    let summary: Option<EmaqSummary> = meta.calibration.emaq;
    Ok(match summary.and_then(|s| s.logit_adjustment) {
        Some(f) if f.margin >= 256 => format!("τ {} every row", f.tau),
        Some(f) => format!("τ {} margin < {}", f.tau, f.margin),
        None => "none".into(),
    })
}

/// W4A8 on one long-tailed model: float, float + τ = 1, minmax, EmaQ-LT
/// with the greedy fit (evidence 0) and with the default evidence bound.
fn unseen_row(bench: &LongTail) -> Result<String> {
    eprintln!("scoring {} (W4A8)", bench.name());
    let onnx = bench.file(".onnx");
    let calib = bench.file("_calib_x.npy");
    let float = Engine::Float(TractReference::load(&onnx)?);
    let plain = bench.score(&float)?.balanced;
    let adjusted = bench.score_adjusted(&float, 1.0)?.balanced;
    let int4 = BitsChoice::Uniform(WeightBits::Int4);
    let score = |bytes: &[u8]| -> Result<f64> {
        let host = sturdy_tools::host_model::HostModel::from_bytes(bytes)?;
        Ok(bench.score(&Engine::Int8(Box::new(host)))?.balanced)
    };
    let minmax = score(&quantize_onnx_bits(
        &onnx,
        &calib,
        RangeMethod::MinMax,
        WeightBits::Int4,
    )?)?;
    let greedy_inputs = sturdy_tools::quantize::emaq::EmaqInputs {
        logit_evidence: 0.0,
        ..bench.emaq_inputs(int4)?
    };
    let greedy = quantize_onnx_emaq(&onnx, &calib, &greedy_inputs)?;
    let evidence = quantize_onnx_emaq(&onnx, &calib, &bench.emaq_inputs(int4)?)?;
    let after = score(&evidence)?;
    let counts = sturdy_tools::npy::read_labels(&bench.file("_calib_y.npy"))?;
    let rarest = (0..=counts.iter().copied().max().unwrap_or(0))
        .map(|c| counts.iter().filter(|&&l| l == c).count())
        .min()
        .unwrap_or(0);
    let pct = |x: f64| format!("{:.2}", 100.0 * x);
    Ok(format!(
        "| {} | {} | {} | {} | {} | {} | {} ({}) | {} ({}) | {:+.2} |\n",
        bench.name(),
        counts.len(),
        rarest,
        pct(plain),
        pct(adjusted),
        pct(minmax),
        pct(score(&greedy)?),
        fitted(&greedy)?,
        pct(after),
        fitted(&evidence)?,
        100.0 * (after - adjusted)
    ))
}

fn unseen_table() -> Result<String> {
    let mut s = String::from(
        "| W4A8, balanced accuracy | calib samples | rarest class | float32 | float32 + τ = 1 | minmax | emaq-lt, best calibration score (before) | emaq-lt, evidence bound (after) | after − (float + τ = 1) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    s += &unseen_row(&LongTail::new(&models()))?;
    for name in UNSEEN {
        s += &unseen_row(&LongTail::named(&models(), name))?;
    }
    Ok(s)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let readme = match args.as_slice() {
        [] => None,
        [flag, path] if flag == "--readme" => Some(PathBuf::from(path)),
        _ => bail!("usage: emaq_table [--readme README.md]"),
    };
    let bench = LongTail::new(&models());
    let onnx = bench.file(".onnx");
    let calib = bench.file("_calib_x.npy");
    let float = Engine::Float(TractReference::load(&onnx)?);
    let params = 4 * weight_bytes(&quantize_onnx(&onnx, &calib, RangeMethod::MinMax)?)?;
    let mut rows = vec![Row {
        name: "float32 (tract)".into(),
        score: bench.score(&float)?,
        weight_bytes: params,
    }];
    let emaq_at = |bits| quantize_onnx_emaq(&onnx, &calib, &bench.emaq_inputs(bits)?);
    let percentile = RangeMethod::Percentile(99.99);
    for (bits, label) in [(WeightBits::Int8, "W8A8"), (WeightBits::Int4, "W4A8")] {
        for (name, bytes) in [
            (
                "minmax",
                quantize_onnx_bits(&onnx, &calib, RangeMethod::MinMax, bits)?,
            ),
            (
                "percentile",
                quantize_onnx_bits(&onnx, &calib, percentile, bits)?,
            ),
            ("emaq-lt", emaq_at(BitsChoice::Uniform(bits))?),
        ] {
            let name = format!("{name} {label}");
            eprintln!("scoring {name}");
            rows.push(artifact_row(&bench, &name, &bytes)?);
        }
    }
    let mixed = emaq_at(BitsChoice::Mixed { flash_budget: None })?;
    rows.push(artifact_row(
        &bench,
        "emaq-lt mixed (budget ¾ of int8)",
        &mixed,
    )?);
    let mut ort_note = "";
    for weight_type in ["int8", "int4"] {
        match ort_row(weight_type)? {
            Some(row) => rows.push(row),
            None => {
                ort_note = "\nonnxruntime static quantization: not run (python3 cannot import onnxruntime; `pip install onnxruntime`).\n";
                break;
            }
        }
    }
    let text = format!("{}\n{}", table(&rows, ort_note), unseen_table()?);
    print!("{text}");
    if let Some(path) = readme {
        let old = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let (Some(a), Some(b)) = (old.find(BEGIN), old.find(END)) else {
            bail!("{} has no `{BEGIN}` … `{END}` block", path.display());
        };
        let new = format!("{}{BEGIN}\n\n{text}\n{}", &old[..a], &old[b..]);
        write_atomic(&path, new.as_bytes())?;
        eprintln!("updated {}", path.display());
    }
    Ok(())
}
