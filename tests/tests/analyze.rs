//! The analysis campaigns measure what they say: the bit-flip attack breaks
//! the plain MNIST CNN and not the protected one, its gradients predict
//! the loss changes the runtime really shows, a campaign aimed at one
//! layer touches only that layer's bytes, SDC counts agree with a recount
//! through the ordinary host path, and seeds (not threads) fix the numbers.

use chacha20::rand_core::SeedableRng;
use chacha20::ChaCha20Rng;
use sturdy_tests::{bundled, quantize_bundled};
use sturdy_tools::analyze::batch::{outcome, Batch};
use sturdy_tools::analyze::bfa;
use sturdy_tools::analyze::faults::{self, cell_bits, COLUMNS};
use sturdy_tools::analyze::knobs::Knobs;
use sturdy_tools::analyze::subject::{Protected, Subject};
use sturdy_tools::analyze::transfer::transfers;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::protect::{self, inject, Options};
use sturdy_tools::quantize::RangeMethod;

const KEY: [u8; 32] = [7; 32];

/// Bundled `name`'s min/max artifact with its first `n` labelled test
/// samples, optionally with the protected variants.
fn subject(name: &str, n: usize, protected: bool) -> Subject {
    let (manifest, m) = bundled(name);
    let plain = quantize_bundled(&manifest, &m, RangeMethod::MinMax).unwrap();
    let host = HostModel::from_bytes(&plain).unwrap();
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
    let labels = npy::read_labels(&manifest.path(&m.test_y)).unwrap();
    let batch = Batch {
        inputs: set
            .samples
            .iter()
            .take(n)
            .map(|x| host.quantize_input(x))
            .collect(),
        labels: Some(labels[..n].to_vec()),
        domains: None,
    };
    let protected = protected.then(|| {
        let nonce = [3u8; 16];
        Protected {
            bytes: protect::protect(&plain, &KEY, nonce, Options::default()).unwrap(),
            key: KEY,
            reparam_only: protect::protect(
                &plain,
                &KEY,
                nonce,
                Options {
                    code: None,
                    mac: false,
                    ..Options::default()
                },
            )
            .unwrap(),
        }
    });
    Subject::new(plain, host.meta.clone(), protected, batch).unwrap()
}

#[test]
fn bit_flip_attack_breaks_the_plain_cnn_within_30_flips_and_not_the_protected_one() {
    let s = subject("mnist_cnn", 456, true);
    // The defaults of `sturdy analyze`: 256 attack samples, then the
    // accuracy on the next ones.
    let attack_batch = s.batch.head(256);
    let eval = s.batch.slice(256, 200);
    let found = bfa::attack(
        &s.plain,
        &s.layers,
        &attack_batch,
        &eval,
        30,
        0.11,
        &indicatif::ProgressBar::hidden(),
    )
    .unwrap();
    let clean = found.curve[0];
    let broken = *found.curve.last().unwrap();
    assert!(clean > 0.9, "clean accuracy {clean}");
    assert!(
        broken <= 0.11,
        "30 flips left accuracy at {broken} (curve {:?})",
        found.curve
    );
    assert_eq!(found.flips.len() + 1, found.curve.len());
    // Every committed flip changed exactly one bit of the plain artifact.
    let changed: u32 = s
        .plain
        .iter()
        .zip(&found.bytes)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert_eq!(changed as usize, found.flips.len());
    // Replayed independently through the host path, the flipped artifact
    // scores what the attack recorded.
    let host = HostModel::from_bytes(&found.bytes).unwrap();
    let labels = eval.labels.as_ref().unwrap();
    let correct = eval
        .inputs
        .iter()
        .zip(labels)
        .filter(|(x, &l)| {
            let y = host.infer_quantized(x).unwrap();
            sturdy_tools::analyze::batch::argmax_i8(&y) as i64 == l
        })
        .count();
    assert_eq!(correct as f64 / eval.len() as f64, broken);

    let bits = sturdy_tools::analyze::transfer::changed_bits(&s.plain, &found.bytes).unwrap();
    for t in transfers(&s, &bits, &eval).unwrap() {
        if t.target.starts_with("protected") {
            assert!(t.outputs_identical, "{}: {}", t.target, t.note);
            assert_eq!(t.accuracy, Some(clean), "{}", t.target);
        }
    }
}

#[test]
fn gradients_predict_the_loss_change_the_runtime_shows() {
    let s = subject("mnist_cnn", 32, false);
    let grads = bfa::gradients(&s.plain, &s.batch).unwrap();
    let base = bfa::loss(&s.plain, &s.batch).unwrap();
    for layer in [s.layers.first().unwrap(), s.layers.last().unwrap()] {
        let g = grads.weights[layer.op].as_ref().unwrap();
        let codes = layer.codes(&s.plain);
        // The 12 weights with the largest |g|, each moved by 8 codes
        // towards a higher loss and back the other way.
        let mut order: Vec<usize> = (0..codes.len()).collect();
        order.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        let (mut predicted, mut measured) = (Vec::new(), Vec::new());
        for &i in order.iter().take(12) {
            for step in [8i8, -8] {
                let mut moved = codes.clone();
                moved[i] = codes[i].saturating_add(step);
                let delta = f64::from(moved[i]) - f64::from(codes[i]);
                let mut bytes = s.plain.clone();
                layer.set_codes(&mut bytes, &moved);
                predicted.push(f64::from(g[i]) * delta);
                measured.push(bfa::loss(&bytes, &s.batch).unwrap() - base);
            }
        }
        let agree = predicted
            .iter()
            .zip(&measured)
            .filter(|(p, m)| p.signum() == m.signum())
            .count();
        assert!(
            agree >= 20,
            "layer {}: sign agreement {agree}/24 (predicted {predicted:?}, measured {measured:?})",
            layer.node
        );
        let corr = pearson(&predicted, &measured);
        assert!(corr > 0.8, "layer {}: correlation {corr}", layer.node);
    }
}

fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

#[test]
fn a_heatmap_cell_flips_bits_of_its_own_layer_and_field_only() {
    let s = subject("digits_dscnn", 8, false);
    for layer in &s.layers {
        for column in 0..COLUMNS.len() {
            let mut rng = ChaCha20Rng::seed_from_u64(column as u64);
            let Some(bits) = cell_bits(layer, column, 10, &mut rng) else {
                assert!(column >= 4 && layer.int4, "only int4 lacks bits 4–7");
                continue;
            };
            assert!(!bits.is_empty());
            let field = match column {
                0..=7 => &layer.weights,
                8..=11 => &layer.bias,
                12 => &layer.multipliers,
                _ => &layer.shifts,
            };
            let mut unique = bits.clone();
            unique.dedup();
            assert_eq!(unique.len(), bits.len(), "distinct targets");
            for &b in &bits {
                assert!(
                    field.contains(&(b / 8)),
                    "{} column {column}: bit {b}",
                    layer.node
                );
                match column {
                    0..=7 => assert_eq!(b % 8, column),
                    8..=11 => assert_eq!(((b / 8 - field.start) % 4), column - 8),
                    _ => {}
                }
            }
        }
    }
}

#[test]
fn sdc_counts_agree_with_a_recount_and_seeds_not_threads_fix_them() {
    let s = subject("digits_dscnn", 120, true);
    let knobs = Knobs {
        seeds: 2,
        samples: 120,
        heat_samples: 40,
        heat_flips: 4,
        ..Knobs::default()
    };
    let bar = indicatif::ProgressBar::hidden();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| faults::run(&s, &knobs, &bar).unwrap());
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap()
        .install(|| faults::run(&s, &knobs, &bar).unwrap());
    assert_eq!(
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string(&two).unwrap()
    );

    // Recount the plain 1e-3 point by hand: same seeds, flips made by
    // the injector, inference through HostModel.
    let point = one
        .ber_sweep
        .iter()
        .find(|p| p.variant == "plain" && p.x == 1e-3)
        .unwrap();
    let host = HostModel::from_bytes(&s.plain).unwrap();
    let predict = |h: &HostModel| -> Vec<usize> {
        s.batch
            .inputs
            .iter()
            .map(|x| sturdy_tools::analyze::batch::argmax_i8(&h.infer_quantized(x).unwrap()))
            .collect()
    };
    let clean = predict(&host);
    let range = inject::region_range(&s.plain, inject::Region::Weights).unwrap();
    let ber_index = faults::BERS.iter().position(|&b| b == 1e-3).unwrap();
    let mut sdc = Vec::new();
    let mut flips = 0;
    for seed in 0..knobs.seeds {
        let mut bytes = s.plain.clone();
        let task =
            sturdy_tools::analyze::stats::task_seed(knobs.base_seed, "plain", ber_index, seed);
        flips += inject::flip_bits(&mut bytes, range.clone(), 1e-3, task)
            .unwrap()
            .len();
        if let Ok(h) = HostModel::from_bytes(&bytes) {
            if let Ok(o) = std::panic::catch_unwind(|| predict(&h)) {
                sdc.push(outcome(&o, &clean, s.batch.labels.as_deref()).sdc_rate);
            }
        }
    }
    assert_eq!(point.flips, flips as f64 / f64::from(knobs.seeds));
    assert_eq!(point.refused as usize, knobs.seeds as usize - sdc.len());
    if !sdc.is_empty() {
        let mean = sdc.iter().sum::<f64>() / sdc.len() as f64;
        assert!(
            (point.sdc_rate.mean - mean).abs() < 1e-12,
            "{} vs {mean}",
            point.sdc_rate.mean
        );
    }
    // The protected artifact repairs every 1e-4 point: no SDC, nothing refused.
    let protected = one
        .ber_sweep
        .iter()
        .find(|p| p.variant == "protected" && p.x == 1e-4)
        .unwrap();
    assert!(protected.flips > 0.0);
    assert_eq!(protected.sdc_rate.mean, 0.0);
    assert_eq!(protected.refused, 0);
}

/// x[2] → FC identity, scale 1, zero points 0: logits equal the input codes.
fn identity_pair() -> Vec<u8> {
    use sturdy_runtime::format::OP_FULLY_CONNECTED;
    use sturdy_tools::artifact_writer::{ArtifactBuilder, QParams};
    let q = QParams {
        scale: 1.0,
        zero_point: 0,
    };
    let mut b = ArtifactBuilder::new();
    let x = b.add_activation(&[1, 2], q).unwrap();
    let y = b.add_activation(&[1, 2], q).unwrap();
    let w = b.add_i8(&[2, 2], &[1, 0, 0, 1], q).unwrap();
    let bias = b.add_i32(&[2], &[0, 0]).unwrap();
    // 2^30 · 2^(1 − 31) = 1.
    let m = b.add_i32(&[2], &[1 << 30; 2]).unwrap();
    let s = b.add_i32(&[2], &[1; 2]).unwrap();
    b.set_arena_offset(x, 0).unwrap();
    b.set_arena_offset(y, 4).unwrap();
    b.add_op(OP_FULLY_CONNECTED, &[x, w, bias, m, s], y, &[-128, 127])
        .unwrap();
    b.finish(x, y, 8, b"{}").unwrap()
}

#[test]
fn fisher_of_a_two_class_identity_is_the_hand_computed_one() {
    use sturdy_tools::analyze::fisher::fisher_at;
    let bytes = sturdy_tools::fsutil::AlignedBytes::new(&identity_pair());
    let model = sturdy_runtime::Model::parse(bytes.as_bytes()).unwrap();
    // Logits (1, 0): p = (a, 1 − a), a = e / (e + 1). ∇ₓ log p_y = e_y − p,
    // so F = diag(p) − p pᵀ = a(1 − a)·[[1, −1], [−1, 1]], λ_max = 2a(1 − a).
    // ∂ log p_y/∂w_j0 = (δ_yj − p_j)·x_0 and x_1 = 0, so the weight sum is
    // Σ_y p_y Σ_j (δ_yj − p_j)² = 2a(1 − a) as well.
    let a = std::f64::consts::E / (std::f64::consts::E + 1.0);
    let (lambda, layers) = fisher_at(&model, &[1, 0], &[0]).unwrap();
    assert!((lambda - 2.0 * a * (1.0 - a)).abs() < 1e-6, "{lambda}");
    assert!(
        (layers[0] - 2.0 * a * (1.0 - a)).abs() < 1e-6,
        "{}",
        layers[0]
    );
    // At equal logits p = (½, ½): λ_max = ½.
    let (lambda, _) = fisher_at(&model, &[3, 3], &[0]).unwrap();
    assert!((lambda - 0.5).abs() < 1e-6, "{lambda}");
}

#[test]
fn a_large_fisher_goes_with_a_small_flip_radius() {
    let s = subject("digits_nhwc", 30, false);
    let f = sturdy_tools::analyze::fisher::run(&s, 30, 1, None).unwrap();
    assert_eq!((f.lambda_max.len(), f.flip_radius.len()), (30, 30));
    let rho = f.spearman.unwrap();
    assert!(rho < -0.3, "Spearman {rho}");
    assert_eq!(f.layers.len(), 4);
    assert!(f
        .layers
        .iter()
        .all(|l| l.fisher > 0.0 && l.fault_sensitivity.is_none()));
}
