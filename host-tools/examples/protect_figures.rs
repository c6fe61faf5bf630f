//! Figures for the README's protection table: flash overhead per rate,
//! host load/decode throughput at BER 1e-3, and accuracy against stored-bit
//! error rate for a protected and an unprotected artifact, and targeted
//! flips of the most damaging bits of the public model.
//!
//!   cargo run --release -p sturdy-tools --example protect_figures [MODEL] [SEEDS]
//!
//! MODEL is a bundled model name (default mnist_cnn), SEEDS the injections
//! per error rate (default 5).

use anyhow::Result;
use std::path::Path;
use std::time::Instant;
use sturdy_runtime::ldpc::{Code, Length, Rate};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::manifest::Manifest;
use sturdy_tools::npy;
use sturdy_tools::protect::attack::{
    bias_bit, flip, oracle_positions, same_offsets, targeted_bits,
};
use sturdy_tools::protect::inject::{flip_bits, region_range, Region};
use sturdy_tools::protect::{self, load_host, recover, Options};
use sturdy_tools::quantize::{quantize_onnx, RangeMethod};

const KEY: [u8; 32] = [0x42; 32];

fn rate_name(r: Rate) -> &'static str {
    match r {
        Rate::R1_2 => "1/2",
        Rate::R2_3 => "2/3",
        Rate::R3_4 => "3/4",
        Rate::R5_6 => "5/6",
    }
}

fn accuracy(host: &HostModel, inputs: &[Vec<i8>], labels: &[i64]) -> f64 {
    let correct = inputs
        .iter()
        .zip(labels)
        .filter(|(x, &y)| {
            host.infer_quantized(x).is_ok_and(|out| {
                let best = out
                    .iter()
                    .enumerate()
                    .max_by_key(|&(i, &v)| (v, std::cmp::Reverse(i)))
                    .map(|(i, _)| i as i64);
                best == Some(y)
            })
        })
        .count();
    correct as f64 / inputs.len() as f64
}

fn predictions(host: &HostModel, inputs: &[Vec<i8>]) -> Vec<Option<Vec<i8>>> {
    inputs
        .iter()
        .map(|x| host.infer_quantized(x).ok())
        .collect()
}

/// One row of the targeted-flip table: accuracy, outputs bit-identical to
/// the clean model's, or the typed refusal.
fn targeted_row(
    what: &str,
    loaded: Result<HostModel>,
    inputs: &[Vec<i8>],
    labels: &[i64],
    clean: &[Option<Vec<i8>>],
    flips: usize,
) {
    match loaded {
        Ok(h) => {
            let same = predictions(&h, inputs)
                .iter()
                .zip(clean)
                .filter(|(a, b)| a == b)
                .count();
            println!(
                "{what:<58} {flips:>5} {:>9.2} {:>10}",
                100.0 * accuracy(&h, inputs, labels),
                format!("{same}/{}", inputs.len())
            );
        }
        Err(e) => println!(
            "{what:<58} {flips:>5} {:>9} {:>10}   ({})",
            "refused",
            "-",
            format!("{e:#}").chars().take(60).collect::<String>()
        ),
    }
}

fn targeted(
    plain: &[u8],
    inputs: &[Vec<i8>],
    labels: &[i64],
    title: &str,
    bits: &[usize],
) -> Result<()> {
    let host = HostModel::from_bytes(plain)?;
    let clean = predictions(&host, inputs);
    println!("\ntargeted flips, found on the public artifact: {title}");
    println!(
        "{:<58} {:>5} {:>9} {:>10}",
        "artifact (addresses)", "flips", "acc %", "identical"
    );
    println!(
        "{:<58} {:>5} {:>9.2} {:>10}",
        "public, clean",
        0,
        100.0 * accuracy(&host, inputs, labels),
        format!("{}/{}", inputs.len(), inputs.len())
    );
    let mut hit = plain.to_vec();
    flip(&mut hit, bits);
    targeted_row(
        "public (found addresses)",
        HostModel::from_bytes(&hit),
        inputs,
        labels,
        &clean,
        bits.len(),
    );
    let nonce = [9; 16];
    let only = Options {
        code: None,
        mac: false,
        ..Options::default()
    };
    let re = protect::protect(plain, &KEY, nonce, only)?;
    let mut hit = re.clone();
    let moved = same_offsets(plain, bits, &re)?;
    flip(&mut hit, &moved);
    targeted_row(
        "reparam only (same addresses)",
        HostModel::from_bytes(&hit),
        inputs,
        labels,
        &clean,
        moved.len(),
    );
    for rate in [Rate::R1_2, Rate::R5_6] {
        for reparam in [false, true] {
            let options = Options {
                reparam,
                code: Some(Code::new(Length::N1944, rate)),
                ..Options::default()
            };
            let bytes = protect::protect(plain, &KEY, nonce, options)?;
            let name = format!(
                "LDPC {} + MAC{}",
                rate_name(rate),
                if reparam { " + reparam" } else { "" }
            );
            for (how, positions) in [
                ("same offsets", same_offsets(plain, bits, &bytes)?),
                (
                    "key known: exact stored bits",
                    oracle_positions(plain, bits, &bytes, &KEY)?,
                ),
            ] {
                let mut hit = bytes.clone();
                flip(&mut hit, &positions);
                targeted_row(
                    &format!("{name} ({how})"),
                    load_host(&hit, &KEY).map(|(h, _)| h),
                    inputs,
                    labels,
                    &clean,
                    positions.len(),
                );
            }
        }
    }
    Ok(())
}

/// Seconds per load of `bytes` hit at `ber` through the runtime's loader
/// (gather, syndrome check, decode of failing words — and, for an in-place
/// artifact, the patch — and tags).
fn time_load(bytes: &[u8], ber: f64) -> Result<f64> {
    let mut hit = bytes.to_vec();
    let range = region_range(&hit, Region::Weights)?;
    flip_bits(&mut hit, range, ber, 1)?;
    let rounds = 10;
    let start = Instant::now();
    for _ in 0..rounds {
        let (inner, _) = recover(&hit, &KEY);
        assert!(inner.is_ok());
    }
    Ok(start.elapsed().as_secs_f64() / rounds as f64)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("mnist_cnn", String::as_str);
    let seeds: u64 = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let manifest = Manifest::load(&dir)?;
    let m = manifest
        .models
        .iter()
        .find(|m| m.name == name)
        .expect("bundled model");
    let plain = quantize_onnx(
        &manifest.path(&m.onnx),
        &manifest.path(&m.calib),
        RangeMethod::MinMax,
    )?;
    let host = HostModel::from_bytes(&plain)?;
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape)?;
    let labels = npy::read_labels(&manifest.path(&m.test_y))?;
    let inputs: Vec<Vec<i8>> = set.samples.iter().map(|s| host.quantize_input(s)).collect();
    let (inner, _) = protect::split_inner(&plain)?;
    println!(
        "model {name}: plain artifact {} B, protected payload (graph + weights) {} B",
        plain.len(),
        inner.len()
    );

    println!("\nflash per rate (n = 1944, BLAKE2s tags per 1024 B)");
    println!(
        "{:>6} {:>10} {:>10} {:>8} {:>10}   {:>10} {:>10}   {:>18}",
        "rate",
        "file B",
        "parity B",
        "tags B",
        "vs plain",
        "Mb/s clean",
        "Mb/s 1e-3",
        "in place Mb/s"
    );
    let mut protected = Vec::new();
    for rate in Rate::ALL {
        let options = Options {
            code: Some(Code::new(Length::N1944, rate)),
            ..Options::default()
        };
        let bytes = protect::protect(&plain, &KEY, [9; 16], options)?;
        let in_place = Options {
            in_place: true,
            ..options
        };
        let in_place = protect::protect(&plain, &KEY, [9; 16], in_place)?;
        let r = protect::report(&bytes)?;
        let stored_bits = region_range(&bytes, Region::Weights)?.len() as f64 * 8.0;
        let (clean, faulty) = (time_load(&bytes, 0.0)?, time_load(&bytes, 1e-3)?);
        let (ip_clean, ip_faulty) = (time_load(&in_place, 0.0)?, time_load(&in_place, 1e-3)?);
        println!(
            "{:>6} {:>10} {:>10.0} {:>8} {:>+9.1}%   {:>10.1} {:>10.1}   {:>8.1} / {:>7.1}",
            rate_name(rate),
            bytes.len(),
            r["parity_bytes"].as_f64().unwrap_or(0.0),
            r["tag_bytes"].as_u64().unwrap_or(0),
            100.0 * (bytes.len() as f64 / plain.len() as f64 - 1.0),
            stored_bits / clean / 1e6,
            stored_bits / faulty / 1e6,
            stored_bits / ip_clean / 1e6,
            stored_bits / ip_faulty / 1e6,
        );
        protected.push((rate, bytes));
    }

    for count in [32, 128] {
        let title =
            format!("sign and bit 6 of the {count} largest |w| of the last two Conv/FC layers");
        targeted(
            &plain,
            &inputs,
            &labels,
            &title,
            &targeted_bits(&plain, 2, count)?,
        )?;
    }
    let title =
        "one high bit of the last layer's bias of class 0 (bit 30, or the sign if negative)";
    targeted(&plain, &inputs, &labels, title, &[bias_bit(&plain, 0)?])?;

    let clean = accuracy(&host, &inputs, &labels);
    println!("\naccuracy (%) vs stored-bit error rate in the weights region, {} samples, {seeds} seeds each (mean; refused = loads refused with a typed error)", inputs.len());
    print!("{:>8} {:>14}", "BER", "unprotected");
    for rate in [Rate::R5_6, Rate::R1_2] {
        print!(" {:>22}", format!("rate {} (refused)", rate_name(rate)));
    }
    println!();
    println!(
        "{:>8} {:>14.2} {:>22.2} {:>22.2}",
        "0",
        100.0 * clean,
        100.0 * clean,
        100.0 * clean
    );
    for ber in [1e-4, 3e-4, 1e-3, 3e-3, 1e-2] {
        let mut row = format!("{ber:>8.0e}");
        let mut sum = 0.0;
        for seed in 0..seeds {
            let mut hit = plain.clone();
            let range = region_range(&hit, Region::Weights)?;
            flip_bits(&mut hit, range, ber, seed)?;
            sum += HostModel::from_bytes(&hit).map_or(0.0, |h| accuracy(&h, &inputs, &labels));
        }
        row += &format!(" {:>14.2}", 100.0 * sum / seeds as f64);
        for rate in [Rate::R5_6, Rate::R1_2] {
            let bytes = &protected.iter().find(|(r, _)| *r == rate).expect("rate").1;
            let (mut sum, mut loaded, mut refused) = (0.0, 0, 0);
            for seed in 0..seeds {
                let mut hit = bytes.clone();
                let range = region_range(&hit, Region::Weights)?;
                flip_bits(&mut hit, range, ber, seed)?;
                match load_host(&hit, &KEY) {
                    Ok((h, _)) => {
                        sum += accuracy(&h, &inputs, &labels);
                        loaded += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
            let acc = if loaded > 0 {
                format!("{:.2}", 100.0 * sum / loaded as f64)
            } else {
                "-".into()
            };
            row += &format!(" {:>22}", format!("{acc} ({refused}/{seeds})"));
        }
        println!("{row}");
    }
    Ok(())
}
