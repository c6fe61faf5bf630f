//! `report.html`: one self-contained page (inline CSS and SVG, no script,
//! no network) that opens with a one-screen summary, then one section per
//! campaign, each saying in one sentence how to read its plot.

mod aging_section;
mod fisher_section;
mod format;
mod model_sections;
mod robustness_sections;
mod spectra_section;
pub mod svg;
mod table;
mod verification_section;

use super::report::Report;
use format::{bytes, opt_pct};
use svg::escape;
use table::table;

const STYLE: &str = "
:root{--ink:#1d2330;--muted:#5b6474;--rule:#e3e6eb;--bg:#fbfbfc;--good:#137a3e;--bad:#b3261e}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:15px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}
main{max-width:1100px;margin:0 auto;padding:28px 24px 60px}
h1{font-size:26px;margin:0 0 4px}h2{font-size:20px;margin:40px 0 6px;padding-top:16px;border-top:1px solid var(--rule)}main{counter-reset:sec}section>h2::before{counter-increment:sec;content:counter(sec) \" · \"}
.sub{color:var(--muted);margin:0 0 20px}.read{color:var(--muted);margin:0 0 14px;font-style:italic}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(230px,1fr));gap:14px;margin:18px 0}
.card{background:#fff;border:1px solid var(--rule);border-radius:10px;padding:14px 16px}
.card h3{margin:0 0 6px;font-size:13px;text-transform:uppercase;letter-spacing:.06em;color:var(--muted)}
.card .big{font-size:26px;font-weight:650;overflow-wrap:anywhere}.card .big.long{font-size:17px}.card p{margin:4px 0 0;color:var(--muted);font-size:13px}
.good{color:var(--good)}.bad{color:var(--bad)}
table{border-collapse:collapse;margin:10px 0 18px;font-size:13.5px;background:#fff}
th,td{padding:5px 10px;border-bottom:1px solid var(--rule);text-align:left;white-space:nowrap}
th{font-weight:600;color:var(--muted)}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.scroll{overflow-x:auto}figure{margin:12px 0 22px}figcaption{color:var(--muted);font-size:13px}
svg.plot{width:100%;max-width:900px;height:auto;background:#fff;border:1px solid var(--rule);border-radius:8px}
svg text{font-family:system-ui,sans-serif}.tick{font-size:11px;fill:#444}.axis{font-size:12px;fill:#333}
.legend{font-size:11.5px;fill:#333}.cell{font-size:10.5px}.muted{fill:#888}
.grid{stroke:#eef0f3}.frame{fill:none;stroke:#c9ced6}.ref{stroke:#999;stroke-dasharray:3 3}.reflabel{font-size:10.5px;fill:#777;text-anchor:end}
details{margin:8px 0 18px}summary{cursor:pointer;color:var(--muted)}
footer{margin-top:40px;color:var(--muted);font-size:13px}
";

/// A summary card: title, headline, one line of context.
fn card(title: &str, big: &str, class: &str, note: &str) -> String {
    format!(
        "<div class=\"card\"><h3>{}</h3><div class=\"big {class}\">{}</div><p>{}</p></div>",
        escape(title),
        escape(big),
        escape(note)
    )
}

fn summary(r: &Report) -> String {
    let s = &r.summary;
    let fits = match (s.fits, s.flash_bytes, s.ram_bytes) {
        (Some(true), ..) => card("fits?", "yes", "good", &budget_note(r)),
        (Some(false), ..) => card("fits?", "no", "bad", &budget_note(r)),
        (None, Some(_), _) => card("fits?", "no budget given", "", &budget_note(r)),
        _ => card("fits?", "—", "", "the fit section did not run"),
    };
    let fidelity = card(
        "fidelity",
        &format!(
            "{} → {}",
            opt_pct(s.float_accuracy),
            opt_pct(s.int8_accuracy)
        ),
        "",
        &format!(
            "float → int8 accuracy; top-1 agreement {}",
            opt_pct(s.top1_agreement)
        ),
    );
    let attack = match (s.bfa_flips_plain, r.attacks.as_ref().and_then(|a| a.bfa.as_ref())) {
        (Some(n), _) => card(
            "flips to break",
            &format!("{n} flips"),
            "bad",
            &match s.bfa_protected_accuracy {
                Some(a) => format!("break the plain artifact (≤ 11 %); the protected one keeps {} under the same flips", format::pct(a)),
                None => "break the plain artifact (≤ 11 %); analyse with --key to test the protected one".into(),
            },
        ),
        (None, Some(b)) => card("flips to break", "not broken", "good", &format!("within {} flips", b.max_flips)),
        _ => card("flips to break", "—", "", "the attack needs labels and the attacks section"),
    };
    let worst = card(
        "worst layer",
        s.worst_layer.as_deref().unwrap_or("—"),
        "long",
        "lowest SQNR of an op's output against the float graph",
    );
    format!("<div class=\"cards\">{fits}{fidelity}{attack}{worst}</div>")
}

fn budget_note(r: &Report) -> String {
    let s = &r.summary;
    let f = r.fit.as_ref();
    let part = |what: &str, used: Option<u64>, budget: Option<u64>| match (used, budget) {
        (Some(u), Some(b)) => format!("{what} {} of {}", bytes(u), bytes(b)),
        (Some(u), None) => format!("{what} {}", bytes(u)),
        _ => String::new(),
    };
    format!(
        "{}; {}",
        part("flash", s.flash_bytes, f.and_then(|f| f.flash_budget)),
        part("RAM", s.ram_bytes, f.and_then(|f| f.ram_budget))
    )
}

fn settings(r: &Report) -> String {
    let s = &r.settings;
    let or_dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "—".into());
    table(
        &["setting", "value"],
        &[
            vec!["sturdy".into(), s.sturdy_version.clone()],
            vec!["ONNX model".into(), or_dash(&s.onnx)],
            vec!["artifact".into(), s.artifact.clone()],
            vec!["protected".into(), or_dash(&s.protected)],
            vec![
                "input".into(),
                format!("{} ({} samples)", s.input, s.samples),
            ],
            vec!["labels".into(), or_dash(&s.labels)],
            vec!["domains".into(), or_dash(&s.domains)],
            vec!["sections".into(), s.sections.join(", ")],
            vec![
                "seeds".into(),
                format!("{} per point, base seed {}", s.seeds, s.base_seed),
            ],
        ],
        usize::MAX,
    )
}

/// The whole page for `report`.
pub fn html(report: &Report) -> String {
    let title = report
        .settings
        .onnx
        .clone()
        .unwrap_or_else(|| report.settings.artifact.clone());
    let mut body = String::new();
    if let Some(f) = &report.fit {
        body.push_str(&model_sections::fit(f));
    }
    if let Some(f) = &report.fidelity {
        body.push_str(&model_sections::fidelity(f));
    }
    if let Some(f) = &report.faults {
        body.push_str(&robustness_sections::faults(f));
    }
    if let Some(a) = &report.attacks {
        body.push_str(&robustness_sections::attacks(a));
    }
    if let Some(sp) = &report.spectra {
        body.push_str(&spectra_section::spectra(sp));
    }
    if let Some(f) = &report.fisher {
        body.push_str(&fisher_section::fisher(f));
    }
    if let Some(v) = &report.verification {
        body.push_str(&verification_section::verification(v));
    }
    if let Some(a) = &report.aging {
        body.push_str(&aging_section::aging(a));
    }
    if let Some(c) = &report.cost {
        body.push_str(&model_sections::cost(c));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>sturdy analysis · {t}</title><style>{STYLE}</style></head><body><main><h1>sturdy analysis</h1><p class=\"sub\">{t} · {n} samples · sections: {sections}</p>{summary}{body}<footer><h2>Settings</h2>{settings}<p>Every number on this page is in report.json next to it, with these settings.</p></footer></main></body></html>",
        t = escape(&title),
        n = report.settings.samples,
        sections = escape(&report.settings.sections.join(", ")),
        summary = summary(report),
        settings = settings(report),
    )
}

#[cfg(test)]
mod tests;
