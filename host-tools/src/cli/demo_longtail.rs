//! The second part of `sturdy demo`: the long-tailed, domain-shifted
//! benchmark (`models/lt_mnist*`) at W4A8, plain min/max against EmaQ-LT.

use crate::eval::Engine;
use crate::host_model::HostModel;
use crate::longtail::{LongTail, LongTailScore};
use crate::quantize::bits::BitsChoice;
use crate::quantize::{quantize_onnx_bits, quantize_onnx_emaq, RangeMethod, WeightBits};
use crate::reference::TractReference;
use anyhow::Result;
use std::path::Path;

/// Quantizes the benchmark both ways and prints balanced, tail and
/// per-domain accuracy next to the float model's.
pub fn run(models: &Path) -> Result<()> {
    let bench = LongTail::new(models);
    let (onnx, calib) = (bench.file(".onnx"), bench.file("_calib_x.npy"));
    eprintln!("lt_mnist: CNN trained on long-tailed MNIST (imbalance 100), tested under four sensor domains");
    let int = |bytes: Vec<u8>| -> Result<Engine> {
        Ok(Engine::Int8(Box::new(HostModel::from_bytes(&bytes)?)))
    };
    let four = BitsChoice::Uniform(WeightBits::Int4);
    let rows: [(&str, Engine); 3] = [
        ("float32", Engine::Float(TractReference::load(&onnx)?)),
        (
            "minmax W4A8",
            int(quantize_onnx_bits(
                &onnx,
                &calib,
                RangeMethod::MinMax,
                WeightBits::Int4,
            )?)?,
        ),
        (
            "emaq-lt W4A8",
            int(quantize_onnx_emaq(
                &onnx,
                &calib,
                &bench.emaq_inputs(four)?,
            )?)?,
        ),
    ];
    println!();
    println!(
        "{:<14} {:>9} {:>7}   {:>7} {:>12} {:>9} {:>7}",
        "lt_mnist", "balanced", "tail", "clean", "gain/offset", "contrast", "noise"
    );
    for (name, engine) in &rows {
        let LongTailScore {
            balanced,
            tail,
            per_domain,
        } = bench.score(engine)?;
        let d = |i: usize| 100.0 * per_domain.get(i).copied().unwrap_or(f64::NAN);
        println!(
            "{name:<14} {:>9.2} {:>7.2}   {:>7.2} {:>12.2} {:>9.2} {:>7.2}",
            100.0 * balanced,
            100.0 * tail,
            d(0),
            d(1),
            d(2),
            d(3)
        );
    }
    println!("\nbalanced and tail (3 rarest training classes) on the clean balanced test set; the");
    println!("other columns are accuracy per sensor domain. EmaQ-LT aligns each domain's inputs");
    println!("and adjusts unsure logits for the training prior, in integer code on the device.");
    Ok(())
}
