//! Targeted flips (issue 4): the most damaging bits found on the public
//! artifact wreck it, and change nothing in the protected one — at the same
//! offsets of the stored image, and even at the exact stored bits that
//! carry those weights (an attacker who knows the interleaver key).

use std::sync::OnceLock;
use sturdy_runtime::ldpc::{Code, Length, Rate};
use sturdy_tests::{clean_run, CleanRun};
use sturdy_tools::host_model::HostModel;
use sturdy_tools::protect::attack::{
    bias_bit, flip, oracle_positions, same_offsets, targeted_bits,
};
use sturdy_tools::protect::{self, load_host, Options};

const KEY: [u8; 32] = [0x77; 32];
const SAMPLES: usize = 300;

fn fixture() -> &'static CleanRun {
    static F: OnceLock<CleanRun> = OnceLock::new();
    F.get_or_init(|| clean_run("mnist_cnn", SAMPLES))
}

/// Samples whose outputs are bit-identical to the clean public model's.
fn identical(host: &HostModel) -> usize {
    let f = fixture();
    f.inputs
        .iter()
        .zip(&f.clean)
        .filter(|(x, c)| host.infer_quantized(x).ok().as_ref() == Some(c))
        .count()
}

fn attacks() -> Vec<(&'static str, Vec<usize>)> {
    let plain = &fixture().plain;
    vec![
        (
            "top-32 |w| sign+bit 6",
            targeted_bits(plain, 2, 32).unwrap(),
        ),
        ("last-layer bias", vec![bias_bit(plain, 0).unwrap()]),
    ]
}

#[test]
fn targeted_flips_hurt_the_public_model() {
    let f = fixture();
    for (name, bits) in attacks() {
        let mut hit = f.plain.clone();
        flip(&mut hit, &bits);
        let same = identical(&HostModel::from_bytes(&hit).unwrap());
        assert!(same < SAMPLES, "{name}: the flips changed nothing");
    }
    // One bias flip makes one class win almost everywhere.
    let mut hit = f.plain.clone();
    flip(&mut hit, &[bias_bit(&f.plain, 0).unwrap()]);
    let host = HostModel::from_bytes(&hit).unwrap();
    let zero = f
        .inputs
        .iter()
        .filter(|x| {
            let out = host.infer_quantized(x).unwrap();
            let best = out
                .iter()
                .enumerate()
                .max_by_key(|&(i, &v)| (v, std::cmp::Reverse(i)))
                .unwrap()
                .0;
            best == 0
        })
        .count();
    assert!(4 * zero > 3 * SAMPLES, "class 0 wins {zero}/{SAMPLES}");
}

#[test]
fn targeted_flips_change_nothing_in_the_protected_model() {
    let f = fixture();
    for rate in [Rate::R1_2, Rate::R5_6] {
        for reparam in [false, true] {
            let options = Options {
                reparam,
                code: Some(Code::new(Length::N1944, rate)),
                ..Options::default()
            };
            let bytes = protect::protect(&f.plain, &KEY, [3; 16], options).unwrap();
            for (name, bits) in attacks() {
                for positions in [
                    same_offsets(&f.plain, &bits, &bytes).unwrap(),
                    oracle_positions(&f.plain, &bits, &bytes, &KEY).unwrap(),
                ] {
                    assert_eq!(positions.len(), bits.len());
                    let mut hit = bytes.clone();
                    flip(&mut hit, &positions);
                    let (host, health) = load_host(&hit, &KEY).unwrap();
                    assert_eq!(health.corrected_bits as usize, positions.len(), "{name}");
                    assert_eq!(
                        identical(&host),
                        SAMPLES,
                        "{name}, rate {rate:?}, reparam {reparam}"
                    );
                }
            }
        }
    }
}

#[test]
fn reparam_alone_moves_the_targeted_weights() {
    // Same addresses in the reparameterized plain artifact: the flipped
    // bytes now belong to other weights (the model still runs; how much it
    // suffers is in protect_figures, not asserted here).
    let f = fixture();
    let only = Options {
        code: None,
        mac: false,
        ..Options::default()
    };
    let re = protect::protect(&f.plain, &KEY, [3; 16], only).unwrap();
    let bits = targeted_bits(&f.plain, 2, 32).unwrap();
    let moved = same_offsets(&f.plain, &bits, &re).unwrap();
    assert_eq!(moved, bits, "same layout, same addresses");
    let changed = bits
        .iter()
        .map(|b| b / 8)
        .filter(|&at| f.plain[at] != re[at])
        .count();
    assert!(
        2 * changed > bits.len(),
        "most targeted bytes hold other weights now"
    );
    let mut hit = re.clone();
    flip(&mut hit, &moved);
    assert!(HostModel::from_bytes(&hit).is_ok());
}
