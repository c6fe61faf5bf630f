//! `sturdy inspect`'s account of an EmaQ-LT artifact: every choice the
//! quantizer made (from the calibration summary) and what the device will
//! execute (from the INPUT_ALIGN and LOGIT_ADJUST sections).

use crate::quantize::emaq::EmaqSummary;
use sturdy_runtime::Model;

/// Prints the summary under the calibration line.
pub fn print(s: &EmaqSummary, model: &Model) {
    let counts: Vec<String> = s
        .class_counts
        .iter()
        .map(|(c, n)| format!("{c}:{n}"))
        .collect();
    if !counts.is_empty() {
        println!("    classes (calibration samples): {}", counts.join(" "));
    }
    match (model.artifact().input_align(), s.reference_domain) {
        (Some(a), Some(reference)) => {
            println!(
                "    input alignment: {} domain tables, reference domain {reference}",
                a.domains()
            );
            for d in &s.domains {
                println!(
                    "      domain {}: {} samples, mean code shift {:.1}",
                    d.id, d.samples, d.mean_code_shift
                );
            }
        }
        _ => println!("    input alignment: none (inputs run as given)"),
    }
    println!(
        "    ranges: balanced at {} % of class/domain weight; balanced output error {:.3e} (min/max: {:.3e})",
        s.percentile, s.output_error_chosen, s.output_error_minmax
    );
    for r in &s.ranges {
        println!(
            "      {:<40} min/max [{:.3}, {:.3}]  balanced [{:.3}, {:.3}]  sensitivity {:+.2e}  → {}",
            r.tensor,
            r.minmax.0,
            r.minmax.1,
            r.balanced.0,
            r.balanced.1,
            r.sensitivity,
            if r.balanced_chosen { "balanced" } else { "min/max" }
        );
    }
    for l in &s.layers {
        let sensitivity = l
            .sensitivity
            .map_or(String::new(), |x| format!("  int4 sensitivity {x:+.2e}"));
        println!(
            "      weights {:<32} int{} ({} B at int8){sensitivity}",
            l.node, l.bits, l.int8_bytes
        );
    }
    match (&s.logit_adjustment, model.artifact().logit_adjust()) {
        (Some(f), Some(a)) => println!(
            "    logit adjustment: τ = {}, rows with top-1 margin < {} codes, offsets {:?} (tensor {}); calibration balanced accuracy {:.2} % → {:.2} %; {}",
            f.tau,
            a.margin(),
            a.offsets(),
            a.tensor(),
            100.0 * f.balanced_accuracy_before,
            100.0 * f.balanced_accuracy_after,
            if f.gain_lower_bound > 0.0 {
                format!(
                    "moved from τ = 1 on every row by evidence (gain ≥ {:.2} points at {} standard errors)",
                    100.0 * f.gain_lower_bound,
                    crate::quantize::emaq::logit::EVIDENCE_Z
                )
            } else {
                "the prior's own correction (τ = 1 on every row): no setting beat it beyond calibration noise".into()
            }
        ),
        _ => println!("    logit adjustment: none (no labels, or it did not raise calibration balanced accuracy)"),
    }
}
