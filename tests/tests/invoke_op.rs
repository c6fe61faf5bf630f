//! `Model::invoke_op` (the firmware times each op with it) run over every
//! op in order computes exactly what `Model::invoke` computes.

use sturdy_tests::{bundled, host_model};
use sturdy_tools::npy;

#[test]
fn op_by_op_equals_invoke_for_every_bundled_model() {
    for m in sturdy_tests::manifest().models {
        let host = host_model(&m.name);
        let (manifest, _) = bundled(&m.name);
        let set =
            npy::read_samples(&manifest.path(&m.test_x), &host.meta.input.onnx_shape).unwrap();
        let model = host.model().unwrap();
        for sample in set.samples.iter().take(5) {
            let input = host.quantize_input(sample);
            let expected = host.infer_quantized(&input).unwrap();
            let mut arena = vec![0u8; model.arena_size()];
            model.input_mut(&mut arena).unwrap().copy_from_slice(&input);
            for op in 0..model.op_count() {
                model.invoke_op(op, &mut arena).unwrap();
            }
            assert_eq!(model.output(&arena).unwrap(), &expected[..], "{}", m.name);
        }
        let mut small = vec![0u8; model.arena_size() - 1];
        assert!(
            model.invoke_op(0, &mut small).is_err(),
            "{}: arena too small",
            m.name
        );
        let mut arena = vec![0u8; model.arena_size()];
        assert!(
            model.invoke_op(model.op_count(), &mut arena).is_err(),
            "{}: no such op",
            m.name
        );
    }
}
