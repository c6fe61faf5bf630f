//! Activation guards (GUARDS section, `Model::invoke_guarded`): hand-computed
//! clamping, counting and re-runs; clean bundled models; a corrupted layer
//! in an unprotected artifact.

use sturdy_runtime::format::*;
use sturdy_runtime::{Error, GuardReport, Model};
use sturdy_tests::{bundled, quantize_bundled};
use sturdy_tools::artifact_writer::{with_guards, ArtifactBuilder, QParams};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::quantize::RangeMethod;

const Q: QParams = QParams {
    scale: 1.0,
    zero_point: 0,
};

fn guard(min: i8, max: i8, threshold: u32) -> GuardRecord {
    GuardRecord {
        min,
        max,
        flags: GUARD_ON,
        reserved: 0,
        threshold,
    }
}

/// x[4] → LUT (y = 3·x, saturated) → LUT (z = x + 1, saturated): two ops.
fn two_luts() -> Vec<u8> {
    let mut b = ArtifactBuilder::new();
    let x = b.add_activation(&[4], Q).unwrap();
    let y = b.add_activation(&[4], Q).unwrap();
    let z = b.add_activation(&[4], Q).unwrap();
    let t1: Vec<i8> = (-128..128)
        .map(|v: i32| (3 * v).clamp(-128, 127) as i8)
        .collect();
    let t2: Vec<i8> = (-128..128)
        .map(|v: i32| (v + 1).clamp(-128, 127) as i8)
        .collect();
    let t1 = b.add_i8(&[256], &t1, Q).unwrap();
    let t2 = b.add_i8(&[256], &t2, Q).unwrap();
    b.set_arena_offset(x, 0).unwrap();
    b.set_arena_offset(y, 4).unwrap();
    b.set_arena_offset(z, 8).unwrap();
    b.add_op(OP_LUT, &[x, t1], y, &[]).unwrap();
    b.add_op(OP_LUT, &[y, t2], z, &[]).unwrap();
    b.finish(x, z, 12, b"{}").unwrap()
}

fn run(
    bytes: &[u8],
    input: [i8; 4],
    calls: &mut Vec<usize>,
) -> (Result<[i8; 4], Error>, GuardReport) {
    let aligned = AlignedBytes::new(bytes);
    let model = Model::parse(aligned.as_bytes()).unwrap();
    let mut arena = [0u8; 12];
    model.input_mut(&mut arena).unwrap().copy_from_slice(&input);
    let mut report = GuardReport::default();
    let result = model
        .invoke_guarded(
            &mut arena,
            |op| {
                calls.push(op);
                Ok(())
            },
            &mut report,
        )
        .map(|()| model.output(&arena).unwrap().try_into().unwrap());
    (result, report)
}

#[test]
fn clamping_counting_and_reruns_hand_computed() {
    let plain = two_luts();
    let input = [-10, 0, 5, 20];
    // Unguarded: y = [-30, 0, 15, 60], z = y + 1.
    let mut calls = vec![];
    let (out, report) = run(&plain, input, &mut calls);
    assert_eq!(out, Ok([-29, 1, 16, 61]));
    assert_eq!(report, GuardReport::default());
    assert!(calls.is_empty());

    // Op 0 guarded to [-20, 20], 2 tolerated: -30 and 60 are out (2 ≤ 2), clamped
    // to -20 and 20 without a trip; op 1 guarded to [0, 100]: -19 is clamped to 0.
    let guarded = with_guards(&plain, &[guard(-20, 20, 2), guard(0, 100, 3)]).unwrap();
    let mut calls = vec![];
    let (out, report) = run(&guarded, input, &mut calls);
    assert_eq!(out, Ok([0, 1, 16, 21]));
    assert_eq!(
        report,
        GuardReport {
            ops_checked: 2,
            values_clamped: 3,
            trips: 0,
            trips_after_rerun: 0,
            first_tripped_op: None
        }
    );
    assert!(calls.is_empty());

    // Threshold 1 on op 0: 2 > 1 trips, the hook re-verifies op 0, op 0
    // re-runs (same weights: same 2 values out) and is clamped again.
    let tripping = with_guards(&plain, &[guard(-20, 20, 1), guard(-128, 127, 0)]).unwrap();
    let mut calls = vec![];
    let (out, report) = run(&tripping, input, &mut calls);
    assert_eq!(out, Ok([-19, 1, 16, 21]));
    assert_eq!(calls, vec![0]);
    assert_eq!(
        report,
        GuardReport {
            ops_checked: 3,
            values_clamped: 2,
            trips: 1,
            trips_after_rerun: 1,
            first_tripped_op: Some(0)
        }
    );

    // A failing re-verification aborts the inference with its typed error.
    let aligned = AlignedBytes::new(&tripping);
    let model = Model::parse(aligned.as_bytes()).unwrap();
    let mut arena = [0u8; 12];
    model.input_mut(&mut arena).unwrap().copy_from_slice(&input);
    let mut report = GuardReport::default();
    let failed = model.invoke_guarded(
        &mut arena,
        |op| Err(Error::GuardReverify { op }),
        &mut report,
    );
    assert_eq!(failed, Err(Error::GuardReverify { op: 0 }));

    // guard_op alone: clamps an output in place and counts.
    let mut arena = [0u8; 12];
    model.input_mut(&mut arena).unwrap().copy_from_slice(&input);
    model.invoke_op(0, &mut arena).unwrap();
    assert_eq!(model.guard_op(0, &mut arena), Ok(2));
    assert_eq!(&arena[4..8], &[(-20i8) as u8, 0, 15, 20]);
    assert_eq!(model.guard_op(0, &mut arena), Ok(0));
}

#[test]
fn malformed_guards_are_typed_errors() {
    let plain = two_luts();
    let ok = with_guards(&plain, &[guard(-20, 20, 1), guard(0, 1, 0)]).unwrap();
    assert!(Model::parse(AlignedBytes::new(&ok).as_bytes()).is_ok());
    let bad = with_guards(&plain, &[guard(-20, 20, 1), guard(5, 1, 0)]).unwrap();
    assert_eq!(
        Model::parse(AlignedBytes::new(&bad).as_bytes()).err(),
        Some(Error::BadGuards { op: Some(1) })
    );
    let mut flags = guard(0, 1, 0);
    flags.flags = 0x80;
    let bad = with_guards(&plain, &[guard(-20, 20, 1), flags]).unwrap();
    assert_eq!(
        Model::parse(AlignedBytes::new(&bad).as_bytes()).err(),
        Some(Error::BadGuards { op: Some(1) })
    );
    // Wrong record count for the graph.
    assert!(with_guards(&plain, &[guard(0, 1, 0)]).is_err());
    // Header claiming the wrong op count / version: rewrite the section bytes.
    let aligned = AlignedBytes::new(&ok);
    let a = sturdy_runtime::Artifact::parse(aligned.as_bytes()).unwrap();
    let s = *a
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_GUARDS)
        .unwrap();
    for (at, value) in [(0usize, 2u32), (4, 3), (8, 1)] {
        let mut bytes = ok.clone();
        let o = s.offset as usize + at;
        bytes[o..o + 4].copy_from_slice(&value.to_le_bytes());
        assert_eq!(
            Model::parse(AlignedBytes::new(&bytes).as_bytes()).err(),
            Some(Error::BadGuards { op: None }),
            "header field at {at}"
        );
    }
    // No GUARDS section: parses, runs unguarded.
    let aligned = AlignedBytes::new(&plain);
    let a = sturdy_runtime::Artifact::parse(aligned.as_bytes()).unwrap();
    assert!(a.guards().is_none());
}

struct Split {
    host: HostModel,
    inputs: Vec<Vec<i8>>,
    labels: Vec<i64>,
}

fn split(name: &str) -> (Vec<u8>, Split) {
    let (manifest, m) = bundled(name);
    let bytes = quantize_bundled(&manifest, &m, RangeMethod::MinMax).unwrap();
    let host = HostModel::from_bytes(&bytes).unwrap();
    let set = npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
    let labels = npy::read_labels(&manifest.path(&m.test_y)).unwrap();
    let inputs = set.samples.iter().map(|s| host.quantize_input(s)).collect();
    (
        bytes,
        Split {
            host,
            inputs,
            labels,
        },
    )
}

fn argmax(v: &[i8]) -> i64 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as i64
}

#[test]
fn clean_bundled_models_and_bit_identity() {
    for m in sturdy_tests::manifest().models {
        let (_, s) = split(&m.name);
        let model = s.host.model().unwrap();
        let guards = model.artifact().guards().expect("quantizer writes guards");
        let narrowed = guards.iter().filter(|g| g.flags & GUARD_ON != 0).count();
        let mut totals = GuardReport::default();
        let (mut clean_samples, mut identical, mut clamped_samples) = (0, 0, 0);
        let (mut agree, mut correct_plain, mut correct_guarded) = (0, 0, 0);
        for (input, &label) in s.inputs.iter().zip(&s.labels) {
            let (guarded, report) = s.host.infer_guarded(input).unwrap();
            let mut arena = vec![0u8; model.arena_size()];
            let mut plain = vec![0i8; model.output_len()];
            model.infer(&mut arena, input, &mut plain).unwrap();
            if report.values_clamped == 0 && report.trips == 0 {
                clean_samples += 1;
                assert_eq!(
                    guarded, plain,
                    "{}: nothing tripped, outputs must match",
                    m.name
                );
                identical += 1;
            } else {
                clamped_samples += 1;
            }
            sturdy_tools::host_model::add_report(&mut totals, &report);
            agree += (argmax(&guarded) == argmax(&plain)) as usize;
            correct_plain += (argmax(&plain) == label) as usize;
            correct_guarded += (argmax(&guarded) == label) as usize;
        }
        if m.task == sturdy_tools::eval::Task::Classification {
            eprintln!(
                "{}: accuracy unguarded {:.4}, guarded {:.4}; top-1 agreement {agree}/{}",
                m.name,
                correct_plain as f64 / s.inputs.len() as f64,
                correct_guarded as f64 / s.inputs.len() as f64,
                s.inputs.len()
            );
        }
        eprintln!(
            "{}: {narrowed}/{} ops guarded; {} test samples: {clean_samples} untouched \
             (bit-identical: {identical}), {clamped_samples} with clamped values; \
             {} values clamped, {} trips, {} still over after re-run",
            m.name,
            guards.len(),
            s.inputs.len(),
            totals.values_clamped,
            totals.trips,
            totals.trips_after_rerun
        );
        assert_eq!(
            agree,
            s.inputs.len(),
            "{}: guards changed a prediction",
            m.name
        );
        // Trips on clean data must stay rare: at most 1% of samples.
        assert!(
            totals.trips as usize * 100 <= s.inputs.len(),
            "{}: {} trips on clean data",
            m.name,
            totals.trips
        );
    }
}

/// Flips bit 7 (the sign bit) of every weight of one Conv/FC layer (in the plain,
/// unprotected artifact): large-magnitude weights, activations driven to
/// the rails.
fn corrupt_layer(bytes: &[u8], op: usize) -> Vec<u8> {
    let aligned = AlignedBytes::new(bytes);
    let a = sturdy_runtime::Artifact::parse(aligned.as_bytes()).unwrap();
    let w = a.tensors()[a.ops()[op].inputs[1] as usize];
    let weights_at = a
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_WEIGHTS)
        .unwrap()
        .offset as usize;
    let mut out = bytes.to_vec();
    for b in &mut out[weights_at + w.offset as usize..weights_at + (w.offset + w.len) as usize] {
        *b ^= 0x80;
    }
    out
}

#[test]
fn corrupted_layer_trips_guards() {
    for name in ["mnist_cnn", "digits_dscnn"] {
        let (bytes, clean) = split(name);
        let model = clean.host.model().unwrap();
        let layers: Vec<usize> = (0..model.op_count())
            .filter(|&i| {
                matches!(
                    model.artifact().ops()[i].kind,
                    OP_CONV2D | OP_FULLY_CONNECTED
                )
            })
            .collect();
        let accuracy = |host: &HostModel, guarded: bool| {
            let model = host.model().unwrap();
            let mut totals = GuardReport::default();
            let mut correct = 0;
            for (input, &label) in clean.inputs.iter().zip(&clean.labels) {
                let out = if guarded {
                    let (out, r) = host.infer_guarded(input).unwrap();
                    sturdy_tools::host_model::add_report(&mut totals, &r);
                    out
                } else {
                    let mut arena = vec![0u8; model.arena_size()];
                    let mut out = vec![0i8; model.output_len()];
                    model.infer(&mut arena, input, &mut out).unwrap();
                    out
                };
                correct += (argmax(&out) == label) as usize;
            }
            (correct as f64 / clean.inputs.len() as f64, totals)
        };
        let (clean_acc, _) = accuracy(&clean.host, false);
        let mut any_trips = false;
        for &layer in &layers {
            let bad = HostModel::from_bytes(&corrupt_layer(&bytes, layer)).unwrap();
            let (plain_acc, _) = accuracy(&bad, false);
            let (guarded_acc, r) = accuracy(&bad, true);
            eprintln!(
                "{name}: layer op {layer} bit 7 flipped: accuracy clean {clean_acc:.4}, \
                 corrupted unguarded {plain_acc:.4}, guarded {guarded_acc:.4}; \
                 {} values clamped, {} trips ({} still over after re-run), first op {:?}",
                r.values_clamped, r.trips, r.trips_after_rerun, r.first_tripped_op
            );
            any_trips |= r.trips > 0;
        }
        assert!(any_trips, "{name}: no corrupted layer tripped a guard");
    }
}

/// The protected-model hook: `Reverifier::check_op` re-checks an op's
/// constants in the decoded RAM against the tags and the stored codewords.
#[test]
fn protected_reverify_hook_finds_damaged_ram() {
    use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
    use sturdy_runtime::protect::{self, Health, ProtectedArtifact, Reverifier};
    use sturdy_tools::protect::{protect as protect_artifact, Options};

    let (bytes, _) = split("digits_dscnn");
    let key = [7u8; 32];
    for (name, options) in [
        ("ldpc+mac", Options::default()),
        (
            "ldpc only",
            Options {
                mac: false,
                code: Some(Code::new(Length::N648, Rate::R5_6)),
                ..Options::default()
            },
        ),
        (
            "mac only",
            Options {
                code: None,
                ..Options::default()
            },
        ),
        (
            "ldpc only, in place",
            Options {
                mac: false,
                code: Some(Code::new(Length::N648, Rate::R5_6)),
                in_place: true,
                ..Options::default()
            },
        ),
    ] {
        let stored = protect_artifact(&bytes, &key, [3; 16], options).unwrap();
        let stored = AlignedBytes::new(&stored);
        let p = ProtectedArtifact::parse(stored.as_bytes()).unwrap();
        let mut ram = vec![0u32; p.inner_len() / 4];
        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        let model =
            protect::load(stored.as_bytes(), &key, &mut ram, &mut scratch, &mut health).unwrap();
        let reverifier = Reverifier::new(stored.as_bytes(), &key, &model).unwrap();
        for op in 0..model.op_count() {
            assert_eq!(
                reverifier.check_op(&model, op, &mut scratch),
                Ok(()),
                "{name}"
            );
        }
        // The hook plugs into guarded inference as it is.
        let mut arena = vec![0u8; model.arena_size()];
        let mut report = GuardReport::default();
        model
            .invoke_guarded(
                &mut arena,
                |op| reverifier.check_op(&model, op, &mut scratch),
                &mut report,
            )
            .unwrap();
        // Damage one weight byte of the first Conv in a copy of the RAM.
        let mut damaged = model.artifact().bytes().to_vec();
        let a = model.artifact();
        let conv = (0..model.op_count())
            .find(|&i| a.ops()[i].kind == OP_CONV2D)
            .unwrap();
        let w = a.tensors()[a.ops()[conv].inputs[1] as usize];
        let at = a
            .sections()
            .iter()
            .find(|s| s.kind == SECTION_WEIGHTS)
            .unwrap()
            .offset as usize
            + w.offset as usize;
        damaged[at] ^= 0x80;
        let damaged = AlignedBytes::new(&damaged);
        let bad = Model::parse(damaged.as_bytes()).unwrap();
        let reverifier = Reverifier::new(stored.as_bytes(), &key, &bad).unwrap();
        assert_eq!(
            reverifier.check_op(&bad, conv, &mut scratch),
            Err(Error::GuardReverify { op: conv }),
            "{name}"
        );
    }
}
