//! The verification section: proved, falsified and unknown neighbourhoods
//! per property.

use super::format::{opt_pct, pct};
use super::svg::{bars, escape};
use super::table::{figure, section, table};
use crate::analyze::report::Verification;

/// The verification section: a bar of the certified share per property
/// and the table of outcomes.
pub fn verification(v: &Verification) -> String {
    let mut body = format!(
        "<p>Each of the first {} samples, per property: <b>proved</b> for every int8 input of the region (interval bounds in the runtime's own integer arithmetic, the region split up to {} times), <b>falsified</b> by an input of the region the runtime really labels differently, or <b>unknown</b>.</p>",
        v.samples, v.regions
    );
    if let Some(why) = &v.skipped {
        body.push_str(&format!(
            "<p class=\"note\">Not verified: {}.</p>",
            escape(why)
        ));
    } else {
        let items: Vec<(String, f64)> = v
            .rows
            .iter()
            .map(|r| (r.property.clone(), r.certified_fraction))
            .collect();
        body.push_str(&figure(
            &bars("certified share of the samples", &items, &|x| pct(x)),
            "Share of samples whose whole region is proved to keep the runtime's label (bars scaled to the largest).",
        ));
        let rows: Vec<Vec<String>> = v
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.property.clone(),
                    r.proved.to_string(),
                    r.falsified.to_string(),
                    r.unknown.to_string(),
                    opt_pct(r.certified_accuracy),
                    format!("{:.1} ms", 1e3 * r.seconds_per_sample),
                ]
            })
            .collect();
        body.push_str(&table(
            &[
                "property",
                "proved",
                "falsified",
                "unknown",
                "certified acc.",
                "time / sample",
            ],
            &rows,
            1,
        ));
        body.push_str("<p class=\"note\">±k codes: every input within k int8 codes of the sample, element by element. Blur σ: every input on the straight path from the sample to its Gaussian blur. Certified accuracy: labelled right and proved. Interval bounds are loose on deep or residual models, so unknown is common there; a proof is never approximate.</p>");
    }
    section(
        "verify",
        "Verification of the integer model",
        "Proved is a guarantee about the bits the board computes; falsified comes with the input that breaks it; the gap between the two is what the bounds cannot yet decide.",
        &body,
    )
}
