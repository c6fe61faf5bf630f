//! PARDEF layer 1: keyed channel reparameterization preserves every bundled
//! model's outputs bit for bit on every test sample, with int8 and with
//! packed int4 weights, while most stored weight bytes change.

use sturdy_runtime::format::*;
use sturdy_runtime::protect::Subkeys;
use sturdy_runtime::Artifact;
use sturdy_tests::{manifest, quantize_bundled, quantize_bundled_bits};
use sturdy_tools::fsutil::AlignedBytes;
use sturdy_tools::host_model::HostModel;
use sturdy_tools::npy;
use sturdy_tools::protect::reparam::{plan, reparameterize};
use sturdy_tools::protect::{self, load_host, Options};
use sturdy_tools::quantize::{RangeMethod, WeightBits};

const KEY: [u8; 32] = [0x3c; 32];

/// (moved, total) bytes of the weight tensors of Conv/FC ops.
fn moved_weight_bytes(a: &[u8], b: &[u8]) -> (usize, usize) {
    let aligned = AlignedBytes::new(a);
    let art = Artifact::parse(aligned.as_bytes()).unwrap();
    let base = art
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_WEIGHTS)
        .unwrap()
        .offset as usize;
    let (mut moved, mut total) = (0, 0);
    for op in art.ops() {
        if op.kind != OP_CONV2D && op.kind != OP_FULLY_CONNECTED {
            continue;
        }
        let t = &art.tensors()[op.inputs[1] as usize];
        let r = base + t.offset as usize..base + (t.offset + t.len) as usize;
        total += r.len();
        moved += a[r.clone()]
            .iter()
            .zip(&b[r])
            .filter(|(x, y)| x != y)
            .count();
    }
    (moved, total)
}

#[test]
fn every_bundled_model_keeps_its_outputs_bit_exactly() {
    check_every_bundled_model(WeightBits::Int8);
}

#[test]
fn every_bundled_int4_model_keeps_its_outputs_bit_exactly() {
    check_every_bundled_model(WeightBits::Int4);
}

fn check_every_bundled_model(bits: WeightBits) {
    let manifest = manifest();
    for model in &manifest.models {
        let plain = quantize_bundled_bits(&manifest, model, RangeMethod::MinMax, bits).unwrap();
        let p = plan(&plain).unwrap();
        let seed = Subkeys::reparam_seed(&KEY, &[1; 16]);
        let (re, applied) = reparameterize(&plain, &seed).unwrap();
        assert_eq!(applied.chains, p.chains);
        assert_eq!(re.len(), plain.len());
        let (moved, total) = moved_weight_bytes(&plain, &re);
        eprintln!(
            "{} int{}: {} chains {:?}, skipped {:?}; {moved}/{total} weight bytes moved",
            model.name,
            bits.bits(),
            p.chains.len(),
            p.chains,
            p.skipped
        );
        let original = HostModel::from_bytes(&plain).unwrap();
        let permuted = HostModel::from_bytes(&re).unwrap();
        let set = npy::read_samples(
            &manifest.path(&model.test_x),
            &original.meta.input.onnx_shape,
        )
        .unwrap();
        for (i, s) in set.samples.iter().enumerate() {
            let x = original.quantize_input(s);
            assert_eq!(
                original.infer_quantized(&x).unwrap(),
                permuted.infer_quantized(&x).unwrap(),
                "{} sample {i}",
                model.name
            );
        }
        assert!(!p.chains.is_empty(), "{}: nothing permuted", model.name);
        assert!(
            2 * moved > total,
            "{}: only {moved}/{total} weight bytes moved",
            model.name
        );
    }
}

#[test]
fn protect_applies_the_keyed_permutation_by_default() {
    let manifest = manifest();
    let model = manifest
        .models
        .iter()
        .find(|m| m.name == "mnist_cnn")
        .unwrap();
    let plain = quantize_bundled(&manifest, model, RangeMethod::MinMax).unwrap();
    let nonce = [9; 16];
    let only = Options {
        code: None,
        mac: false,
        ..Options::default()
    };
    // Reparameterization alone: a plain artifact, the key's permutation.
    let re = protect::protect(&plain, &KEY, nonce, only).unwrap();
    let seed = Subkeys::reparam_seed(&KEY, &nonce);
    assert_eq!(re, reparameterize(&plain, &seed).unwrap().0);
    assert!(HostModel::from_bytes(&re).is_ok());
    // Another key (or nonce) gives another permutation.
    let other = protect::protect(&plain, &[0x3d; 32], nonce, only).unwrap();
    assert_ne!(re, other);
    assert_ne!(re, protect::protect(&plain, &KEY, [8; 16], only).unwrap());
    // Protected: the recovered inner artifact is the permuted one and the
    // header says so.
    let bytes = protect::protect(&plain, &KEY, nonce, Options::default()).unwrap();
    let report = protect::report(&bytes).unwrap();
    assert_eq!(report["reparam"], true);
    let (inner, _) = protect::recover(&bytes, &KEY);
    assert_eq!(inner.unwrap(), protect::split_inner(&re).unwrap().0);
    assert!(load_host(&bytes, &KEY).is_ok());
    let off = Options {
        reparam: false,
        ..Options::default()
    };
    let bytes = protect::protect(&plain, &KEY, nonce, off).unwrap();
    assert_eq!(protect::report(&bytes).unwrap()["reparam"], false);
    let (inner, _) = protect::recover(&bytes, &KEY);
    assert_eq!(inner.unwrap(), protect::split_inner(&plain).unwrap().0);
}
