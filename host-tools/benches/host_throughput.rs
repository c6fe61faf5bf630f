//! Host inferences per second: sturdy's int8 runtime against tract's
//! optimized float plan, on the same test inputs, in the same process.
//!
//! The machine is shared and noisy, so the two engines alternate in short
//! rounds and the report gives each engine's median rate and their ratio
//! (computed per round, then the median), which noise affects far less than
//! either absolute figure. Run with `cargo xtask bench`.

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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models");
    let manifest = Manifest::load(&dir)?;
    println!("host inferences per second, median of {ROUNDS} alternating rounds of {ROUND_TIME:?}");
    println!(
        "{:<18} {:>14} {:>14} {:>12}",
        "model", "sturdy int8/s", "tract f32/s", "int8 / f32"
    );
    for m in &manifest.models {
        let bytes = quantize_onnx(
            &manifest.path(&m.onnx),
            &manifest.path(&m.calib),
            RangeMethod::MinMax,
        )?;
        let host = HostModel::from_bytes(&bytes)?;
        let tract = TractReference::load(&manifest.path(&m.onnx))?;
        let test = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape)?;
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
        for _ in 0..ROUNDS {
            let r_int8 = rate(|i| {
                let input = &inputs[i % inputs.len()];
                model
                    .infer(&mut arena, input, &mut output)
                    .expect("inference");
                std::hint::black_box(&output);
            });
            let r_float = rate(|i| {
                std::hint::black_box(tract.run(&floats[i % floats.len()]).expect("tract"));
            });
            int8_rates.push(r_int8);
            float_rates.push(r_float);
            ratios.push(r_int8 / r_float);
        }
        println!(
            "{:<18} {:>14.0} {:>14.0} {:>11.2}x",
            m.name,
            median(int8_rates),
            median(float_rates),
            median(ratios)
        );
    }
    Ok(())
}
