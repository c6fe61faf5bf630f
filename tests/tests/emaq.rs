//! EmaQ-LT on the bundled long-tailed, domain-shifted model (`lt_mnist`,
//! see models/README.md): domain alignment and logit adjustment measured
//! against onnxruntime's float figures and the min/max baseline, run
//! bit-exactly on the emulated board, carried through protection, and
//! refused when their sections are malformed.

use serde_json::Value;
use std::path::PathBuf;
use sturdy_runtime::format::*;
use sturdy_runtime::{Error, Model};
use sturdy_tests::hil::{qemu_options_for, qemu_or_fail, temp_artifact};
use sturdy_tests::models_dir;
use sturdy_tools::artifact_writer::with_section;
use sturdy_tools::eval::{evaluate, Engine, Task};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::hil::run_hil;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::longtail::LongTail;
use sturdy_tools::npy;
use sturdy_tools::quantize::bits::BitsChoice;
use sturdy_tools::quantize::emaq::EmaqInputs;
use sturdy_tools::quantize::{
    quantize_onnx, quantize_onnx_bits, quantize_onnx_emaq, RangeMethod, WeightBits,
};

fn file(name: &str) -> PathBuf {
    models_dir().join(name)
}

fn emaq_inputs() -> EmaqInputs {
    LongTail::new(&models_dir())
        .emaq_inputs(BitsChoice::default())
        .unwrap()
}

fn emaq_artifact() -> Vec<u8> {
    emaq_artifact_at(BitsChoice::Uniform(WeightBits::Int8))
}

fn emaq_artifact_at(bits: BitsChoice) -> Vec<u8> {
    let inputs = EmaqInputs {
        bits,
        ..emaq_inputs()
    };
    quantize_onnx_emaq(
        &file("lt_mnist.onnx"),
        &file("lt_mnist_calib_x.npy"),
        &inputs,
    )
    .unwrap()
}

/// Report of `bytes` on the whole test set, each sample tagged with its
/// domain (an artifact without alignment tables runs every domain as given).
fn report(bytes: &[u8]) -> Value {
    let host = HostModel::from_bytes(bytes).unwrap();
    let set = npy::read_samples(&file("lt_mnist_test_x.npy"), &host.meta.input.onnx_shape).unwrap();
    let labels = npy::read_labels(&file("lt_mnist_test_y.npy")).unwrap();
    let domains = npy::read_domains(&file("lt_mnist_test_d.npy")).unwrap();
    let engine = Engine::Int8(Box::new(host));
    evaluate(
        &engine,
        &set,
        Some(&labels),
        Some(&domains),
        Some(Task::Classification),
    )
    .unwrap()
    .report
}

fn domain(r: &Value, id: u32) -> f64 {
    r["per_domain_accuracy"][id.to_string()].as_f64().unwrap()
}

fn expected_float() -> Value {
    let text = std::fs::read_to_string(file("expected_float.json")).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["lt_mnist"].clone()
}

#[test]
fn aligned_domains_stay_within_3_points_of_clean_and_beat_float_balanced() {
    let emaq = report(&emaq_artifact());
    let minmax_bytes = quantize_onnx(
        &file("lt_mnist.onnx"),
        &file("lt_mnist_calib_x.npy"),
        RangeMethod::MinMax,
    )
    .unwrap();
    let minmax = report(&minmax_bytes);
    let float = expected_float();
    let float_clean = float["balanced_accuracy"].as_f64().unwrap();
    eprintln!(
        "lt_mnist per-domain accuracy: emaq-lt {:?}, min/max unaligned {:?}; float clean balanced {float_clean}",
        emaq["per_domain_accuracy"], minmax["per_domain_accuracy"]
    );
    for shifted in [1, 2] {
        // The unaligned model breaks on gain/offset and contrast …
        assert!(domain(&minmax, shifted) < 0.5, "min/max domain {shifted}");
        // … and the aligned one stays within 3 points of its clean domain.
        assert!(
            (domain(&emaq, 0) - domain(&emaq, shifted)).abs() <= 0.03,
            "emaq-lt domain {shifted}: {} vs clean {}",
            domain(&emaq, shifted),
            domain(&emaq, 0)
        );
    }
    // The clean domain is the balanced test set (60 per class): the
    // logit adjustment lifts it above the float model's own (onnxruntime).
    assert!(
        domain(&emaq, 0) > float_clean,
        "{} vs float {float_clean}",
        domain(&emaq, 0)
    );
}

#[test]
fn w4a8_emaq_lt_beats_float_and_minmax_and_percentile_w4a8_by_8_points() {
    let baseline = |method| {
        let bytes = quantize_onnx_bits(
            &file("lt_mnist.onnx"),
            &file("lt_mnist_calib_x.npy"),
            method,
            WeightBits::Int4,
        )
        .unwrap();
        domain(&report(&bytes), 0)
    };
    let minmax = baseline(RangeMethod::MinMax);
    let percentile = baseline(RangeMethod::Percentile(99.99));
    let emaq = report(&emaq_artifact_at(BitsChoice::Uniform(WeightBits::Int4)));
    let float_clean = expected_float()["balanced_accuracy"].as_f64().unwrap();
    let clean = domain(&emaq, 0);
    eprintln!(
        "W4A8 balanced accuracy (clean, 60 per class): emaq-lt {clean}, minmax {minmax}, percentile {percentile}, float {float_clean}; tail recall {:?}",
        emaq["per_class_accuracy"]
    );
    assert!(clean > float_clean, "{clean} vs float {float_clean}");
    assert!(clean >= minmax + 0.08, "{clean} vs minmax {minmax}");
    assert!(
        clean >= percentile + 0.08,
        "{clean} vs percentile {percentile}"
    );
    for shifted in [1, 2] {
        assert!(
            (clean - domain(&emaq, shifted)).abs() <= 0.03,
            "domain {shifted}"
        );
    }
}

#[test]
fn mixed_bits_fit_the_flash_budget_by_sensitivity() {
    // Conv/FC weights of lt_mnist: 6,152 B at int8, 3,076 B at int4.
    let bytes = emaq_artifact_at(BitsChoice::Mixed {
        flash_budget: Some(4_000),
    });
    let host = HostModel::from_bytes(&bytes).unwrap();
    let layers = host.meta.calibration.emaq.unwrap().layers;
    let stored: usize = layers
        .iter()
        .map(|l| {
            if l.bits == 4 {
                l.int8_bytes.div_ceil(2)
            } else {
                l.int8_bytes
            }
        })
        .sum();
    assert!(stored <= 4_000, "{stored} B over budget: {layers:?}");
    assert!(
        layers.iter().any(|l| l.bits == 8),
        "budget leaves room for int8"
    );
    assert!(layers.iter().all(|l| l.sensitivity.is_some()));
    // Below the all-int4 size there is no allocation: a clear error.
    let inputs = EmaqInputs {
        bits: BitsChoice::Mixed {
            flash_budget: Some(1_000),
        },
        ..emaq_inputs()
    };
    let err = quantize_onnx_emaq(
        &file("lt_mnist.onnx"),
        &file("lt_mnist_calib_x.npy"),
        &inputs,
    )
    .unwrap_err();
    assert!(
        format!("{err:#}").contains("below the Conv/FC weights at int4"),
        "{err:#}"
    );
}

#[test]
fn emaq_artifact_carries_its_choices_and_sections() {
    let bytes = emaq_artifact();
    let aligned = AlignedBytes::new(&bytes);
    let model = Model::parse(aligned.as_bytes()).unwrap();
    assert_eq!(model.domain_count(), 4);
    let adjust = model
        .artifact()
        .logit_adjust()
        .expect("logit adjustment fitted");
    assert_eq!(adjust.offsets().len(), 10);
    // Head class 0 is pushed down, tail class 9 up.
    assert!(adjust.offsets()[0] > 0 && adjust.offsets()[9] < 0);
    let host = HostModel::from_bytes(&bytes).unwrap();
    let summary = host.meta.calibration.emaq.expect("summary in the metadata");
    assert_eq!(host.meta.calibration.method, "emaq-lt");
    assert_eq!(summary.domains.len(), 4);
    assert_eq!(summary.domains[0].mean_code_shift, 0.0);
    assert!(summary.domains[1].mean_code_shift > 10.0);
    assert_eq!(summary.class_counts.values().sum::<usize>(), 326);
    // A domain without a table is a typed error, not a silent identity.
    let mut arena = vec![0u8; model.arena_size()];
    assert_eq!(
        model.align_input(&mut arena, 4),
        Err(Error::UnknownDomain {
            domain: 4,
            domains: 4
        })
    );
}

#[test]
fn emaq_lt_is_bit_exact_on_qemu_with_domain_ids() {
    qemu_or_fail();
    let artifact = temp_artifact("lt_mnist_emaq", &emaq_artifact());
    let mut opts = qemu_options_for(artifact.clone(), file("lt_mnist_test_x.npy"));
    opts.domains = Some(file("lt_mnist_test_d.npy"));
    let report = run_hil(&opts).unwrap();
    let _ = std::fs::remove_file(&artifact);
    assert_eq!(report.samples, 2400, "every domain's test samples");
    assert!(
        report.bit_exact(),
        "{} bytes differ in {} samples, first {:?}",
        report.mismatches,
        report.mismatched_samples,
        report.first_mismatches
    );
}

fn with_raw_section(bytes: &[u8], kind: u32, body: &[u8]) -> Vec<u8> {
    with_section(bytes, kind, body).unwrap()
}

fn section(bytes: &[u8], kind: u32) -> Vec<u8> {
    let aligned = AlignedBytes::new(bytes);
    let a = Model::parse(aligned.as_bytes()).unwrap();
    let s = a
        .artifact()
        .sections()
        .iter()
        .find(|s| s.kind == kind)
        .unwrap();
    aligned.as_bytes()[s.offset as usize..(s.offset + s.len) as usize].to_vec()
}

fn parse(bytes: &[u8]) -> Result<(), Error> {
    Model::parse(AlignedBytes::new(bytes).as_bytes()).map(|_| ())
}

#[test]
fn malformed_calibration_sections_are_typed_errors() {
    let bytes = emaq_artifact();
    let align = section(&bytes, SECTION_INPUT_ALIGN);
    let logit = section(&bytes, SECTION_LOGIT_ADJUST);
    // A table that is not monotone (domain 1, codes 0 and 1 swapped).
    let mut bad = align.clone();
    let at = INPUT_ALIGN_HEADER_SIZE + ALIGN_TABLE_LEN + 128;
    bad[at] = 127;
    bad[at + 1] = 0x80;
    assert_eq!(
        parse(&with_raw_section(&bytes, SECTION_INPUT_ALIGN, &bad)),
        Err(Error::BadInputAlign)
    );
    // Truncated tables; a reference domain that does not exist.
    let short = &align[..align.len() - 4];
    assert_eq!(
        parse(&with_raw_section(&bytes, SECTION_INPUT_ALIGN, short)),
        Err(Error::BadInputAlign)
    );
    let mut bad = align.clone();
    bad[8..12].copy_from_slice(&9u32.to_le_bytes());
    assert_eq!(
        parse(&with_raw_section(&bytes, SECTION_INPUT_ALIGN, &bad)),
        Err(Error::BadInputAlign)
    );
    // An offset beyond ±255; a tensor no op writes (the input, 0 … its index).
    let mut bad = logit.clone();
    bad[LOGIT_ADJUST_HEADER_SIZE..LOGIT_ADJUST_HEADER_SIZE + 4]
        .copy_from_slice(&300i32.to_le_bytes());
    assert_eq!(
        parse(&with_raw_section(&bytes, SECTION_LOGIT_ADJUST, &bad)),
        Err(Error::BadLogitAdjust)
    );
    let aligned = AlignedBytes::new(&bytes);
    let input = Model::parse(aligned.as_bytes())
        .unwrap()
        .artifact()
        .graph()
        .input;
    let mut bad = logit.clone();
    bad[4..8].copy_from_slice(&input.to_le_bytes());
    assert_eq!(
        parse(&with_raw_section(&bytes, SECTION_LOGIT_ADJUST, &bad)),
        Err(Error::BadLogitAdjust)
    );
    // Random bodies never panic.
    for seed in 0..200u32 {
        let body: Vec<u8> = (0..align.len() as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97) >> 13) as u8)
            .collect();
        let _ = parse(&with_raw_section(&bytes, SECTION_INPUT_ALIGN, &body));
        let _ = parse(&with_raw_section(
            &bytes,
            SECTION_LOGIT_ADJUST,
            &body[..logit.len()],
        ));
    }
}
