//! Host inferences per second: sturdy's int8 runtime against tract's
//! optimized float plan, on the same test inputs, in the same process.
//!
//! The machine is shared and noisy, so the two engines alternate in short
//! rounds and the report gives each engine's median rate and their ratio
//! (computed per round, then the median), which noise affects far less than
//! either absolute figure. Run with `cargo xtask bench`.
//!
//! tract runs its rounds on a thread of its own. On CPUs with
//! AVX-512, tract's kernels leave the upper halves of `zmm16`–`zmm31`
//! dirty, which `vzeroupper` does not clear, and every legacy-SSE
//! instruction the same thread runs afterwards pays for it — sturdy's
//! portable build is plain SSE2, and ran up to 2× slower after a tract
//! round on the same thread. Register state is per thread, so the split
//! measures each engine as it runs alone.
//!
//! The last column is sturdy's batch throughput on every core (one
//! inference per rayon task, an arena per thread), as `sturdy run`
//! evaluates a test split; `RAYON_NUM_THREADS` limits the cores.

use rayon::prelude::*;
use std::path::Path;
use std::time::{Duration, Instant};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::manifest::Manifest;
use sturdy_tools::npy;
use sturdy_tools::quantize::{quantize_onnx, RangeMethod};
use sturdy_tools::reference::TractReference;

const ROUNDS: usize = 15;
const ROUND_TIME: Duration = Duration::from_millis(200);

/// Runs `f` over the inputs, cycling, for about `ROUND_TIME`; returns inferences per second.
fn rate(mut f: impl FnMut(usize)) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < ROUND_TIME {
        f(n);
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Inferences per second over every core for about `ROUND_TIME`: batches
/// of the inputs, one inference per rayon task, an arena per thread.
fn batch_rate(model: &sturdy_runtime::Model<'_>, inputs: &[Vec<i8>]) -> f64 {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < ROUND_TIME {
        inputs.par_iter().for_each_init(
            || (vec![0u8; model.arena_size()], vec![0i8; model.output_len()]),
            |(arena, output), input| {
                model.infer(arena, input, output).expect("inference");
                std::hint::black_box(&output);
            },
        );
        n += inputs.len();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Models no kernel was tuned on, measured the same way: the long-tailed
/// bundled models and the fixtures other frameworks exported
/// (`models/fixtures/`, calibrated and run on their 32 samples).
const UNSEEN: [(&str, &str, &str); 9] = [
    ("lt_mnist", "lt_mnist_calib_x.npy", "lt_mnist_test_x.npy"),
    ("lt_digits", "lt_digits_calib_x.npy", "lt_digits_test_x.npy"),
    ("lt_dscnn", "lt_dscnn_calib_x.npy", "lt_dscnn_test_x.npy"),
    ("lt_mlp", "lt_mlp_calib_x.npy", "lt_mlp_test_x.npy"),
    ("lt_resnet", "lt_resnet_calib_x.npy", "lt_resnet_test_x.npy"),
    (
        "fixtures/tf_resnet8",
        "fixtures/tf_resnet8_x.npy",
        "fixtures/tf_resnet8_x.npy",
    ),
    (
        "fixtures/tf_kws_dscnn",
        "fixtures/tf_kws_dscnn_x.npy",
        "fixtures/tf_kws_dscnn_x.npy",
    ),
    (
        "fixtures/pt_mnist_cnn",
        "fixtures/pt_mnist_cnn_x.npy",
        "fixtures/pt_mnist_cnn_x.npy",
    ),
    (
        "fixtures/pt_mobilenet_v2",
        "fixtures/pt_mobilenet_v2_x.npy",
        "fixtures/pt_mobilenet_v2_x.npy",
    ),
];

fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let manifest = Manifest::load(&dir)?;
    println!("host inferences per second, median of {ROUNDS} alternating rounds of {ROUND_TIME:?}");
    let header = || {
        println!(
            "{:<18} {:>14} {:>14} {:>12} {:>18}",
            "model",
            "sturdy int8/s",
            "tract f32/s",
            "int8 / f32",
            format!("int8 {} cores/s", rayon::current_num_threads())
        )
    };
    header();
    for m in &manifest.models {
        let paths = [&m.onnx, &m.calib, &m.test_x].map(|p| manifest.path(p));
        measure(&m.name, &paths[0], &paths[1], &paths[2])?;
    }
    println!("\nmodels the kernels were not tuned on");
    header();
    for (name, calib, test) in UNSEEN {
        let onnx = dir.join(format!("{name}.onnx"));
        let short = name.trim_start_matches("fixtures/");
        measure(short, &onnx, &dir.join(calib), &dir.join(test))?;
    }
    Ok(())
}

/// Prints one model's row: single-thread rates and their ratio, and the
/// all-core rate.
fn measure(name: &str, onnx: &Path, calib: &Path, test_x: &Path) -> anyhow::Result<()> {
    let bytes = quantize_onnx(onnx, calib, RangeMethod::MinMax)?;
    let host = HostModel::from_bytes(&bytes)?;
    let tract = TractReference::load(onnx)?;
    let test = npy::read_samples(test_x, &host.meta.input.onnx_shape)?;
    let inputs: Vec<Vec<i8>> = test
        .samples
        .iter()
        .take(64)
        .map(|s| host.quantize_input(s))
        .collect();
    let floats = &test.samples[..inputs.len()];

    let model = host.model()?;
    let mut arena = vec![0u8; model.arena_size()];
    let mut output = vec![0i8; model.output_len()];
    let (mut int8_rates, mut float_rates, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut batch_rates = Vec::new();
    // tract's rounds run on a thread of their own (see the module
    // docs), kept for every round so its per-thread state stays warm.
    std::thread::scope(|s| {
        let (go, rounds) = std::sync::mpsc::channel::<()>();
        let (done, rates) = std::sync::mpsc::channel::<f64>();
        s.spawn(move || {
            for () in rounds {
                let r = rate(|i| {
                    std::hint::black_box(tract.run(&floats[i % floats.len()]).expect("tract"));
                });
                if done.send(r).is_err() {
                    break;
                }
            }
        });
        for _ in 0..ROUNDS {
            let r_int8 = rate(|i| {
                let input = &inputs[i % inputs.len()];
                model
                    .infer(&mut arena, input, &mut output)
                    .expect("inference");
                std::hint::black_box(&output);
            });
            go.send(()).expect("tract thread");
            let r_float = rates.recv().expect("tract thread");
            batch_rates.push(batch_rate(&model, &inputs));
            int8_rates.push(r_int8);
            float_rates.push(r_float);
            ratios.push(r_int8 / r_float);
        }
    });
    println!(
        "{:<18} {:>14.0} {:>14.0} {:>11.2}x {:>18.0}",
        name,
        median(int8_rates),
        median(float_rates),
        median(ratios),
        median(batch_rates)
    );
    Ok(())
}
