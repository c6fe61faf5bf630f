//! The aging section: accuracy and failures over the mission's years.

use super::format::{count, pct};
use super::svg::{LinePlot, Series};
use super::table::{figure, section, table};
use crate::analyze::report::Aging;

/// The aging section: one accuracy curve per configuration over the
/// mission, and what each ends its life with.
pub fn aging(a: &Aging) -> String {
    let mut body = format!(
        "<p>{} lifetimes of {} years per configuration under <code>{}</code>, {} test samples scored at each checkpoint (clean accuracy {}). Plan of the protected artifact: {}.</p>",
        a.lifetimes,
        a.lifetime_years,
        super::svg::escape(&a.profile),
        a.samples,
        pct(a.clean_accuracy),
        super::svg::escape(&a.plan)
    );
    let series: Vec<Series> = a
        .curves
        .iter()
        .map(|c| Series {
            name: c.name.clone(),
            points: c
                .years
                .iter()
                .copied()
                .zip(c.accuracy.iter().copied())
                .collect(),
            band: c
                .years
                .iter()
                .zip(c.worst_accuracy.iter().zip(&c.accuracy))
                .map(|(&x, (&lo, &hi))| (x, lo, hi))
                .collect(),
            dashed: c.name.starts_with("protected"),
            markers_only: false,
        })
        .collect();
    body.push_str(&figure(
        &LinePlot {
            title: "accuracy over the mission".into(),
            x_label: "years in the field".into(),
            y_label: "accuracy".into(),
            y_range: Some((0.0, 1.0)),
            series,
            ..LinePlot::default()
        }
        .svg(),
        "Mean accuracy over simulated lifetimes at each checkpoint; shaded down to the worst lifetime. Scrubbed: the state just before a scrub, the worst moment of each interval.",
    ));
    let rows: Vec<Vec<String>> = a
        .curves
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.raw_ber.last().map_or("—".into(), |b| format!("{b:.1e}")),
                c.accuracy.last().copied().map_or("—".into(), pct),
                c.worst_accuracy.last().copied().map_or("—".into(), pct),
                c.failed_fraction.last().copied().map_or("—".into(), pct),
                c.uncorrectable_words.map_or("—".into(), count),
                c.lifetime_failure_estimate.map_or("—".into(), |p| match p {
                    0.0 => "0".into(),
                    p => format!("{p:.1e}"),
                }),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "at end of life",
            "raw BER",
            "mean acc.",
            "worst",
            "failed",
            "uncorr. words",
            "P(fail) est.",
        ],
        &rows,
        1,
    ));
    body.push_str("<p class=\"note\">Failed: the share of lifetimes whose model the loader refused or that scored below the clean accuracy. P(fail) est.: for the scrubbed configuration, 1 − (1 − p)<sup>⌈L/T⌉</sup> from the per-interval failure frequency p of the sampled intervals — an estimate, not a count over every interval; the plan's figure extrapolates the decoder's FER far below what 100 lifetimes can show.</p>");
    section(
        "aging",
        "Aging over the mission",
        "A solid line that sinks is a stored model decaying unrepaired; a dashed line that stays at the top is the code (and the scrub) keeping up with the decay.",
        &body,
    )
}
