//! The EmaQ-LT comparison table in the README: the bundled long-tailed,
//! domain-shifted model (`models/lt_mnist*`) quantized every way sturdy
//! can, scored on the balanced test set under each domain.
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
use sturdy_tools::longtail::{LongTail, LongTailScore};
use sturdy_tools::quantize::bits::BitsChoice;
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
    let text = table(&rows, ort_note);
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
