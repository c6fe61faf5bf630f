//! The spectral advice is tested, not asserted: on the bundled MNIST CNN
//! the advised factorizations are built, re-quantized and measured, the
//! predicted saving matches the bytes really saved, and the wide hidden FC
//! layer's advice saves flash at under a point of accuracy.

use sturdy_tests::bundled;
use sturdy_tools::analyze::spectra;
use sturdy_tools::npy;
use sturdy_tools::quantize::load_calibration;

#[test]
fn the_advice_applied_saves_what_it_predicts_and_the_wide_fc_keeps_its_accuracy() {
    let (manifest, m) = bundled("mnist_cnn");
    let (graph, calib, _) =
        load_calibration(&manifest.path(&m.onnx), &manifest.path(&m.calib)).unwrap();
    let set = npy::read_samples(&manifest.path(&m.test_x), &graph.onnx_input_shape).unwrap();
    let labels = npy::read_labels(&manifest.path(&m.test_y)).unwrap();
    let s = spectra::run(&graph, &calib, &set, Some(&labels), 300).unwrap();
    assert_eq!(s.layers.len(), 4, "two dense convs and two FCs");
    let base = s.accuracy.unwrap();
    let mut kept = false;
    for l in &s.layers {
        // The fit's edge is the MP formula of its σ² and shape.
        let q = l.m as f64 / l.n as f64;
        assert!((l.edge - l.sigma2 * (1.0 + q.sqrt()).powi(2)).abs() < 1e-12 * l.edge.max(1.0));
        assert_eq!(
            l.spikes,
            l.eigenvalues.iter().filter(|&&v| v > l.edge).count()
        );
        match l.flash_bytes {
            Some(flash) => {
                assert!(l.predicted_saving > 0);
                let measured = s.flash_bytes as i64 - flash as i64;
                // Only the new op's metadata line is not predicted.
                let gap = l.predicted_saving - measured;
                assert!(
                    (0..200).contains(&gap),
                    "{}: predicted {} measured {measured}",
                    l.node,
                    l.predicted_saving
                );
                if measured > 10_000 && base - l.accuracy.unwrap() < 0.01 {
                    kept = true;
                }
            }
            None => assert!(
                l.predicted_saving <= 0,
                "{}: a saving left untested",
                l.node
            ),
        }
    }
    assert!(
        kept,
        "no layer saved 10 kB within a point: {:?}",
        s.layers
            .iter()
            .map(|l| (&l.node, l.flash_bytes, l.accuracy))
            .collect::<Vec<_>>()
    );
}
