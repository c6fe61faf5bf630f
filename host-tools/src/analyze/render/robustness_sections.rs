//! The sections about how the model breaks: random faults and attacks.

use super::format::{count, num, opt_pct, pct};
use super::svg::{bars, heatmap, LinePlot, Series};
use super::table::{figure, section, table};
use crate::analyze::report::{Attacks, Faults, SweepPoint};

/// One series per variant of `points`, `y` picked from each point (with its interval).
fn curves(
    points: &[SweepPoint],
    y: fn(&SweepPoint) -> crate::analyze::report::Estimate,
) -> Vec<Series> {
    let mut variants: Vec<&str> = Vec::new();
    for p in points {
        if !variants.contains(&p.variant.as_str()) {
            variants.push(&p.variant);
        }
    }
    variants
        .iter()
        .map(|v| {
            let mine: Vec<&SweepPoint> = points.iter().filter(|p| p.variant == *v).collect();
            Series {
                name: v.to_string(),
                points: mine.iter().map(|p| (p.x, y(p).mean)).collect(),
                band: mine.iter().map(|p| (p.x, y(p).lo, y(p).hi)).collect(),
                dashed: v.starts_with("protected"),
                markers_only: false,
            }
        })
        .collect()
}

fn sweep_rows(points: &[SweepPoint], x: &dyn Fn(f64) -> String) -> Vec<Vec<String>> {
    points
        .iter()
        .map(|p| {
            vec![
                p.variant.clone(),
                x(p.x),
                num(p.flips, 1),
                pct(p.accuracy.mean),
                if p.accuracy.lo.is_finite() {
                    format!("{} … {}", pct(p.accuracy.lo), pct(p.accuracy.hi))
                } else {
                    "every load refused".into()
                },
                pct(p.sdc_rate.mean),
                pct(p.correction_rate.mean),
                p.refused.to_string(),
            ]
        })
        .collect()
}

const SWEEP_HEAD: [&str; 8] = [
    "variant",
    "rate",
    "bits changed",
    "accuracy",
    "95 % interval",
    "SDC",
    "corrected",
    "refused",
];

/// The random faults section: BER sweep, layer × bit heatmap, stuck-at, upsets.
pub fn faults(f: &Faults) -> String {
    let mut body = format!(
        "<p>Clean int8 accuracy on these {} samples: <b>{}</b>. A refused load (a shift out of range, an uncorrectable codeword, a failed tag) is a detected fault: it counts under <i>refused</i>, not in accuracy or SDC.</p>",
        f.samples,
        pct(f.clean_accuracy)
    );
    let rate = |x: f64| format!("{x:.0e}");
    let plot = |title: &str, y_label: &str, series: Vec<Series>| {
        LinePlot {
            title: title.into(),
            x_label: "stored-bit error rate".into(),
            y_label: y_label.into(),
            x_log: true,
            y_range: Some((0.0, 1.0)),
            series,
            hlines: Vec::new(),
        }
        .svg()
    };
    body.push_str(&figure(
        &plot(
            "accuracy vs bit error rate",
            "accuracy",
            curves(&f.ber_sweep, |p| p.accuracy),
        ),
        "Accuracy under random stored-bit flips (mean over seeds, shaded: 95 % interval).",
    ));
    body.push_str(&figure(&plot("SDC vs bit error rate", "SDC rate", curves(&f.ber_sweep, |p| p.sdc_rate)), "Silent data corruption: of the samples the fault-free model gets right, the share whose answer changes."));
    body.push_str(&table(&SWEEP_HEAD, &sweep_rows(&f.ber_sweep, &rate), 1));
    if let Some(h) = &f.layer_bits {
        body.push_str(&figure(
            &heatmap("layer × bit sensitivity", &h.rows, &h.columns, &h.cells, None, &|v| format!("{:.0}", 100.0 * v)),
            &format!("{} (percent). Hatched: no such bit, or every damaged artifact was refused at load.", h.value),
        ));
    }
    if !f.stuck_at.is_empty() {
        body.push_str(&table(&SWEEP_HEAD, &sweep_rows(&f.stuck_at, &rate), 1));
    }
    if !f.activations.is_empty() {
        let items: Vec<(String, f64)> = f
            .activations
            .iter()
            .map(|a| (a.node.clone(), a.sdc_rate.mean))
            .collect();
        body.push_str(&figure(
            &bars("activation upsets", &items, &|v| pct(v)),
            "SDC rate when one random bit of the op's output flips in every inference.",
        ));
    }
    section(
        "faults",
        "Random faults",
        "Read the curves left to right: where a line leaves the top is the bit error rate the model stops tolerating; the heatmap's dark cells are the bits worth protecting first.",
        &body,
    )
}

/// The parameter attacks section: bit-flip attack, its transfer, noise, channel damage.
pub fn attacks(a: &Attacks) -> String {
    let mut body = String::new();
    if let Some(b) = &a.bfa {
        let mut series = vec![Series {
            name: "plain artifact".into(),
            points: b
                .plain_curve
                .iter()
                .enumerate()
                .map(|(i, &v)| (i as f64, v))
                .collect(),
            ..Series::default()
        }];
        let flips = b.flips.len() as f64;
        for t in &b.transfers {
            if let Some(acc) = t.accuracy {
                series.push(Series {
                    name: t.target.clone(),
                    points: vec![
                        (0.0, b.plain_curve.first().copied().unwrap_or(acc)),
                        (flips, acc),
                    ],
                    dashed: true,
                    ..Series::default()
                });
            }
        }
        body.push_str(&format!(
            "<p>Flips to 11 % accuracy: <b>{}</b>; to chance ({}): <b>{}</b> (attack batch {} samples, accuracy on {} others, budget {}).</p>",
            b.flips_to_11.map_or("not reached".into(), |n| n.to_string()),
            pct(b.chance),
            b.flips_to_chance.map_or("not reached".into(), |n| n.to_string()),
            b.attack_samples,
            b.eval_samples,
            b.max_flips
        ));
        body.push_str(&figure(
            &LinePlot {
                title: "bit-flip attack".into(),
                x_label: "bit flips".into(),
                y_label: "accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series,
                hlines: vec![(0.11, "11 %".into()), (b.chance, "chance".into())],
                ..LinePlot::default()
            }
            .svg(),
            "Accuracy of the public plain artifact after each committed flip; dashed: the same flips carried to the protected forms.",
        ));
        let rows: Vec<Vec<String>> = b
            .transfers
            .iter()
            .map(|t| {
                vec![
                    t.target.clone(),
                    opt_pct(t.accuracy),
                    if t.outputs_identical { "yes" } else { "no" }.into(),
                    t.note.clone(),
                ]
            })
            .collect();
        body.push_str(&table(
            &["the same flips on", "accuracy", "outputs identical", "load"],
            &rows,
            1,
        ));
        let rows: Vec<Vec<String>> = b
            .flips
            .iter()
            .enumerate()
            .map(|(i, f)| {
                vec![
                    (i + 1).to_string(),
                    f.node.clone(),
                    count(f.byte),
                    f.bit.to_string(),
                    num(f.loss, 3),
                ]
            })
            .collect();
        body.push_str(&format!(
            "<details><summary>The {} committed flips</summary>{}</details>",
            b.flips.len(),
            table(&["#", "layer", "byte", "bit", "attack loss"], &rows, 2)
        ));
    }
    if !a.noise.is_empty() {
        body.push_str(&figure(
            &LinePlot {
                title: "weight noise".into(),
                x_label: "noise σ / layer std".into(),
                y_label: "accuracy".into(),
                y_range: Some((0.0, 1.0)),
                series: curves(&a.noise, |p| p.accuracy),
                ..LinePlot::default()
            }
            .svg(),
            "Gaussian noise on every weight code; a protected point missing from the plot was refused at load (the noise changes more bits than the code repairs).",
        ));
    }
    if !a.structured.is_empty() {
        let rows: Vec<Vec<String>> = a
            .structured
            .iter()
            .map(|s| {
                vec![
                    s.variant.clone(),
                    s.mode.clone(),
                    s.node.clone(),
                    s.channels.to_string(),
                    s.accuracy.map_or("refused at load".into(), pct),
                ]
            })
            .collect();
        body.push_str(&table(
            &["artifact", "damage", "layer", "channels", "accuracy"],
            &rows,
            3,
        ));
    }
    section(
        "attacks",
        "Parameter attacks",
        "The steeper the solid line falls, the fewer flips an attacker who reads the public model needs; dashed lines that stay at the top mean protection held.",
        &body,
    )
}
