//! The page for a fully populated report and for an empty one.

use super::html;
use crate::analyze::report::*;
use crate::verify::campaign::Tally;

fn estimate(mean: f64) -> Estimate {
    Estimate {
        mean,
        lo: mean - 0.01,
        hi: mean + 0.01,
    }
}

fn point(variant: &str, x: f64, acc: f64) -> SweepPoint {
    SweepPoint {
        variant: variant.into(),
        x,
        accuracy: estimate(acc),
        sdc_rate: estimate(1.0 - acc),
        ..SweepPoint::default()
    }
}

/// Every section present; a node name full of markup.
fn sample() -> Report {
    let node = "conv<1>&\"x\"".to_string();
    Report {
        settings: Settings {
            artifact: "m.sturdy".into(),
            sections: vec!["fit".into()],
            seeds: 2,
            ..Settings::default()
        },
        summary: Summary {
            fits: Some(false),
            flash_bytes: Some(30_000),
            int8_accuracy: Some(0.97),
            bfa_flips_plain: Some(19),
            bfa_protected_accuracy: Some(0.97),
            worst_layer: Some(node.clone()),
            ..Summary::default()
        },
        fit: Some(Fit {
            flash_bytes: 30_000,
            flash_budget: Some(20_000),
            arena_bytes: 7840,
            layers: vec![Layer {
                node: node.clone(),
                kind: "Conv2d".into(),
                macs: 307_648,
                ..Layer::default()
            }],
            buffers: vec![Buffer {
                tensor: node.clone(),
                offset: 0,
                bytes: 784,
                first_op: -1,
                last_op: 0,
            }],
            sections: vec![NamedBytes {
                name: "weights".into(),
                bytes: 29_000,
            }],
            board: Some(BoardCost {
                board: "qemu".into(),
                unit: "instructions".into(),
                instructions_per_op: vec![1000],
                instructions_total: 1000,
                macs: 500,
                load: None,
            }),
            ..Fit::default()
        }),
        fidelity: Some(Fidelity {
            task: "classification".into(),
            float: Some(Scores {
                accuracy: Some(0.98),
                ..Scores::default()
            }),
            int8: Scores {
                accuracy: Some(0.97),
                ..Scores::default()
            },
            classes: vec![0, 1],
            confusion: vec![vec![5, 1], vec![0, 4]],
            per_class: vec![ClassScore {
                class: 0,
                count: 6,
                precision: 1.0,
                recall: 0.83,
            }],
            per_domain: vec![DomainScore {
                domain: 1,
                samples: 3,
                float_accuracy: None,
                int8_accuracy: 0.5,
            }],
            output_error: Some(ErrorMetrics {
                sqnr_db: 30.0,
                ..ErrorMetrics::default()
            }),
            layers: vec![LayerError {
                node: node.clone(),
                error: ErrorMetrics {
                    sqnr_db: f64::NAN,
                    ..ErrorMetrics::default()
                },
                ..LayerError::default()
            }],
            ..Fidelity::default()
        }),
        faults: Some(Faults {
            ber_sweep: vec![
                point("plain", 1e-6, 0.97),
                point("plain", 1e-2, f64::NAN),
                point("protected", 1e-6, 0.97),
            ],
            layer_bits: Some(Heatmap {
                value: "SDC".into(),
                rows: vec![node.clone()],
                columns: vec!["w bit 7".into()],
                cells: vec![vec![None]],
            }),
            stuck_at: vec![point("stuck-at-1", 1e-3, 0.8)],
            activations: vec![OpFault {
                node: node.clone(),
                flips: 1,
                sdc_rate: estimate(0.1),
                ..OpFault::default()
            }],
            ..Faults::default()
        }),
        attacks: Some(Attacks {
            bfa: Some(Bfa {
                plain_curve: vec![0.97, 0.5, 0.1],
                chance: 0.1,
                flips_to_11: Some(2),
                flips: vec![
                    BitFlip {
                        node: node.clone(),
                        byte: 100,
                        bit: 7,
                        ..BitFlip::default()
                    };
                    2
                ],
                transfers: vec![Transfer {
                    target: "protected".into(),
                    accuracy: Some(0.97),
                    outputs_identical: true,
                    note: "ok".into(),
                }],
                ..Bfa::default()
            }),
            noise: vec![point("plain", 0.0, 0.97), point("plain", 1.0, 0.3)],
            structured: vec![StructuredDamage {
                variant: "plain".into(),
                mode: "zero".into(),
                node,
                channels: 1,
                accuracy: None,
            }],
        }),
        aging: Some(Aging {
            profile: "harsh.toml".into(),
            lifetime_years: 10.0,
            lifetimes: 4,
            samples: 100,
            plan: "1944 × 5/6, scrub every 168 h".into(),
            clean_accuracy: 0.97,
            curves: vec![AgingCurve {
                name: "unprotected".into(),
                years: vec![5.0, 10.0],
                raw_ber: vec![1e-6, 2e-6],
                accuracy: vec![0.9, 0.5],
                worst_accuracy: vec![0.8, 0.1],
                failed_fraction: vec![0.5, 1.0],
                uncorrectable_words: None,
                lifetime_failure_estimate: None,
            }],
        }),
        fisher: Some(Fisher {
            samples: 3,
            lambda_max: vec![0.5, 2.0, 8.0],
            flip_radius: vec![Some(8), Some(3), None],
            spearman: Some(-0.5),
            layers: vec![LayerFisher {
                node: "fc".into(),
                fisher: 1e-4,
                fault_sensitivity: Some(0.2),
            }],
            layer_spearman: None,
            int4: vec![Int4Trial {
                ranking: "Fisher: least half".into(),
                layers: vec!["fc".into()],
                flash_bytes: 20_000,
                accuracy: Some(0.9),
            }],
        }),
        spectra: Some(Spectra {
            samples: 10,
            flash_bytes: 30_000,
            accuracy: Some(0.9),
            layers: vec![LayerSpectrum {
                node: "fc".into(),
                kind: "FC".into(),
                m: 4,
                n: 16,
                sigma2: 1.0,
                edge: 2.25,
                spikes: 1,
                advised_rank: 1,
                predicted_saving: 32,
                flash_bytes: Some(29_970),
                eigenvalues: vec![0.3, 0.9, 1.4, 6.0],
                ..LayerSpectrum::default()
            }],
        }),
        verification: Some(Verification {
            samples: 10,
            regions: 64,
            skipped: None,
            rows: vec![Tally {
                property: "±1 <codes>".into(),
                samples: 10,
                proved: 7,
                falsified: 1,
                unknown: 2,
                certified_fraction: 0.7,
                accuracy: Some(0.9),
                certified_accuracy: Some(0.7),
                seconds_per_sample: 0.012,
            }],
        }),
        cost: Some(Cost {
            plain_bytes: 30_000,
            codes: vec![CodeCost {
                code: "1944 × 1/2".into(),
                flash_bytes: 60_000,
                ..CodeCost::default()
            }],
            board: Some(BoardCost {
                board: "qemu".into(),
                unit: "instructions".into(),
                instructions_total: 1000,
                load: Some(20_000),
                ..BoardCost::default()
            }),
        }),
    }
}

#[test]
fn every_section_renders_escaped_with_its_plots_and_nothing_external() {
    let page = html(&sample());
    for heading in [
        "<h2>Fit</h2>",
        "<h2>Fidelity</h2>",
        "<h2>Random faults</h2>",
        "<h2>Parameter attacks</h2>",
        "<h2>Layer spectra and rank advice</h2>",
        "<h2>Fisher information</h2>",
        "<h2>Verification of the integer model</h2>",
        "<h2>Aging over the mission</h2>",
        "<h2>Protection cost</h2>",
        "Settings",
    ] {
        assert!(page.contains(heading), "missing {heading}");
    }
    // timeline, flash bars, board bars, confusion, SQNR, 2 BER plots,
    // heatmap, activations, BFA, noise, spectrum, Fisher sample and layer
    // scatters, verification, aging, cost bars.
    assert_eq!(page.matches("<svg").count(), 17);
    assert!(page.contains("ρ = −0.50") && page.contains("Fisher: least half"));
    assert!(page.contains("±1 &lt;codes&gt;") && page.contains("<td class=\"n\">12.0 ms</td>"));
    // 1000 instructions over 500 MACs; a load of 20 inferences.
    assert!(
        page.contains("<td>2.00</td>") || page.contains(">2.00<"),
        "per MAC"
    );
    assert!(page.contains("20.0 inferences' worth"));
    assert!(page.contains("conv&lt;1&gt;&amp;&quot;x&quot;"));
    assert!(!page.contains("conv<1>"));
    assert!(!page.contains("NaN") && !page.contains("inf\""));
    let without_xmlns = page.replace("http://www.w3.org/2000/svg", "");
    assert!(!without_xmlns.contains("http://") && !without_xmlns.contains("https://"));
    assert!(!page.contains("<script"));
    assert!(page.contains("19 flips"));
    assert!(page.contains("refused at load"));
}

#[test]
fn an_empty_report_renders() {
    let page = html(&Report::default());
    assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>"));
    assert!(page.contains("the fit section did not run"));
}
