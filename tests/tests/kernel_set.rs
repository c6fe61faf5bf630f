//! A firmware links only the kernels its artifact runs
//! (`sturdy_runtime::kernel_set`): the set derived from an artifact is the
//! one its ops name, a build without one of them refuses the model at the
//! op that needs it, a model runs the same bits with only its kernels, and
//! the firmware image really leaves the others out.
//!
//! The firmware test needs the `thumbv7em-none-eabihf` target (`cargo xtask
//! test` installs it).

use object::{Object, ObjectSymbol};
use sturdy_runtime::kernel_set::{self, *};
use sturdy_runtime::{Error, Model};
use sturdy_tests::host_model;

/// digits_dscnn's ops, as `sturdy inspect` lists them: a 3×3 stem conv on
/// one channel and two 1×1 convs (dense), two 3×3 depthwise convs, a
/// residual Add, a global average pool, the classifier and its softmax.
const DIGITS_DSCNN: u32 =
    DENSE_I8 | DEPTHWISE_I8 | ADD | AVERAGE_POOL | FULLY_CONNECTED_I8 | SOFTMAX;

#[test]
fn the_required_set_is_the_kernels_the_ops_name() {
    let host = host_model("digits_dscnn");
    let model = host.model().unwrap();
    assert_eq!(kernel_set::required(&model).unwrap(), DIGITS_DSCNN);
}

#[test]
fn a_build_without_a_kernel_refuses_the_model_at_the_first_op_needing_it() {
    let host = host_model("digits_dscnn");
    let model = host.model().unwrap();
    let bytes = model.artifact().bytes();
    let refused = |result: Result<(), Error>| match result {
        Err(Error::KernelNotLinked { op }) => op,
        other => panic!("expected KernelNotLinked, got {other:?}"),
    };
    // Op numbers from `sturdy inspect`: 0 stem conv, 1 first depthwise,
    // 3 Add, 6 pool, 7 classifier, 8 softmax.
    let without_dense = Model::<{ ALL & !DENSE_I8 }>::parse_linking(bytes).map(|_| ());
    assert_eq!(refused(without_dense), 0);
    let without_depthwise = Model::<{ ALL & !DEPTHWISE_I8 }>::parse_linking(bytes).map(|_| ());
    assert_eq!(refused(without_depthwise), 1);
    assert_eq!(
        refused(Model::<{ ALL & !ADD }>::parse_linking(bytes).map(|_| ())),
        3
    );
    let without_pool = Model::<{ ALL & !AVERAGE_POOL }>::parse_linking(bytes).map(|_| ());
    assert_eq!(refused(without_pool), 6);
    let without_fc = Model::<{ ALL & !FULLY_CONNECTED_I8 }>::parse_linking(bytes).map(|_| ());
    assert_eq!(refused(without_fc), 7);
    assert_eq!(
        refused(Model::<{ ALL & !SOFTMAX }>::parse_linking(bytes).map(|_| ())),
        8
    );
    // Kernels the model does not use may be missing.
    const UNUSED: u32 = MUL | CONCAT | DENSE_I4 | FULLY_CONNECTED_I4 | GENERAL_CONV_I8;
    assert!(Model::<{ ALL & !UNUSED }>::parse_linking(bytes).is_ok());
}

#[test]
fn a_model_runs_the_same_bits_with_only_its_kernels() {
    let host = host_model("digits_dscnn");
    let all = host.model().unwrap();
    let only = Model::<DIGITS_DSCNN>::parse_linking(all.artifact().bytes()).unwrap();
    for seed in 0..8i32 {
        let input: Vec<i8> = (0..all.input_len() as i32)
            .map(|i| ((i * 37 + seed * 101) % 256 - 128) as i8)
            .collect();
        let mut a = vec![0u8; all.arena_size()];
        let mut b = vec![0u8; only.arena_size()];
        all.input_mut(&mut a).unwrap().copy_from_slice(&input);
        only.input_mut(&mut b).unwrap().copy_from_slice(&input);
        all.invoke(&mut a).unwrap();
        only.invoke(&mut b).unwrap();
        assert_eq!(all.output(&a).unwrap(), only.output(&b).unwrap());
    }
}

#[test]
fn the_firmware_for_an_artifact_leaves_other_kernels_out() {
    let elf = sturdy_tests::hil::plain_firmware("digits_dscnn");
    let bytes = std::fs::read(&elf).unwrap();
    let image = object::File::parse(&*bytes).unwrap();
    let names: Vec<String> = image
        .symbols()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    let has = |part: &str| names.iter().any(|n| n.contains(part));
    // Mangled names: `<len><segment>` per path segment.
    assert!(has("14conv_depthwise"), "the depthwise kernel is linked");
    assert!(has("10conv_dense"), "the dense kernel is linked");
    for absent in [
        "4conv7general",
        "11elementwise3mul",
        "6concat6concat",
        "9transpose9transpose",
        "8max_pool",
        "11log_softmax",
        "PackedI4",
        "8Scrubber",
        "15AgingIndicator",
    ] {
        assert!(
            !has(absent),
            "{absent} is not linked into a plain int8 build"
        );
    }
}
