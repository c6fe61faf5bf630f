//! A small SVG writer for the report's plots: line plots (linear or
//! decade axes, shaded intervals, reference lines), horizontal bars, a
//! heatmap and the arena timeline. Plain strings, no JavaScript; every
//! label is escaped and non-finite values are skipped, never drawn.

use std::fmt::Write;

/// Colours of successive series (colour-blind safe, Okabe–Ito).
pub const PALETTE: [&str; 6] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9",
];

/// Escapes text for HTML/SVG content and attribute values.
pub fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

/// About `n` round tick values covering `[lo, hi]` (steps of 1, 2 or 5 × 10^k).
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// The decades `10^k` within `[lo, hi]`.
pub fn decade_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(lo > 0.0 && hi >= lo && hi.is_finite()) {
        return Vec::new();
    }
    let (a, b) = (lo.log10().ceil() as i32, (hi.log10() + 1e-9).floor() as i32);
    (a..=b).map(|k| 10f64.powi(k)).collect()
}

/// A tick label: `1e-4` for decades, a short decimal otherwise.
fn tick_label(v: f64, log: bool) -> String {
    if log {
        return format!("1e{}", v.log10().round() as i32);
    }
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// One line of a [`LinePlot`].
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points, drawn in x order.
    pub points: Vec<(f64, f64)>,
    /// `(x, lo, hi)`: the shaded interval.
    pub band: Vec<(f64, f64, f64)>,
    /// Dashed line.
    pub dashed: bool,
    /// Points only, no line: a scatter.
    pub markers_only: bool,
}

/// A line plot.
#[derive(Debug, Clone, Default)]
pub struct LinePlot {
    /// Accessible title.
    pub title: String,
    /// X axis label.
    pub x_label: String,
    /// Y axis label.
    pub y_label: String,
    /// Decade x axis.
    pub x_log: bool,
    /// Fixed y range (default: from the data).
    pub y_range: Option<(f64, f64)>,
    /// The lines.
    pub series: Vec<Series>,
    /// Horizontal reference lines `(y, label)`.
    pub hlines: Vec<(f64, String)>,
}

const W: f64 = 760.0;
const H: f64 = 300.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 16.0;
const BOTTOM: f64 = 44.0;

fn open(title: &str, w: f64, h: f64) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" role=\"img\" class=\"plot\"><title>{}</title>",
        escape(title)
    )
}

impl LinePlot {
    /// The plot as an `<svg>` element.
    pub fn svg(&self) -> String {
        let finite = |v: f64| v.is_finite() && (!self.x_log || v > 0.0);
        let xs: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
            .filter(|&x| finite(x))
            .collect();
        let ys: Vec<f64> = self
            .series
            .iter()
            .flat_map(|s| {
                s.points
                    .iter()
                    .map(|p| p.1)
                    .chain(s.band.iter().flat_map(|b| [b.1, b.2]))
            })
            .chain(self.hlines.iter().map(|h| h.0))
            .filter(|y| y.is_finite())
            .collect();
        let mut out = open(&self.title, W, H);
        if xs.is_empty() {
            out.push_str("<text x=\"20\" y=\"40\" class=\"muted\">no data</text></svg>");
            return out;
        }
        let (mut x0, mut x1) = min_max(&xs);
        if self.x_log {
            x0 = 10f64.powf(x0.log10().floor());
            x1 = 10f64.powf(x1.log10().ceil());
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let (mut y0, mut y1) = self.y_range.unwrap_or_else(|| min_max(&ys));
        if y1 <= y0 {
            y0 -= 0.5;
            y1 += 0.5;
        }
        let tx = |x: f64| {
            let f = if self.x_log {
                (x.log10() - x0.log10()) / (x1.log10() - x0.log10())
            } else {
                (x - x0) / (x1 - x0)
            };
            LEFT + f * (W - LEFT - RIGHT)
        };
        let ty = |y: f64| TOP + (1.0 - (y.clamp(y0, y1) - y0) / (y1 - y0)) * (H - TOP - BOTTOM);
        let xticks = if self.x_log {
            decade_ticks(x0, x1)
        } else {
            nice_ticks(x0, x1, 6)
        };
        axes(
            &mut out,
            &xticks,
            &nice_ticks(y0, y1, 5),
            self.x_log,
            &tx,
            &ty,
            (&self.x_label, &self.y_label),
        );
        for (k, (y, label)) in self.hlines.iter().enumerate() {
            // Alternate labels above and below their lines so close ones do not collide.
            let dy = if k % 2 == 0 { -4.0 } else { 12.0 };
            if y.is_finite() {
                let _ = write!(
                    out,
                    "<line x1=\"{LEFT}\" x2=\"{right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"ref\"/><text x=\"{lx:.1}\" y=\"{ly:.1}\" class=\"reflabel\">{label}</text>",
                    right = W - RIGHT,
                    y = ty(*y),
                    lx = W - RIGHT - 4.0,
                    ly = ty(*y) + dy,
                    label = escape(label)
                );
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let colour = PALETTE[i % PALETTE.len()];
            let band: Vec<&(f64, f64, f64)> = s
                .band
                .iter()
                .filter(|b| finite(b.0) && b.1.is_finite() && b.2.is_finite())
                .collect();
            if band.len() > 1 {
                let upper: Vec<String> = band
                    .iter()
                    .map(|b| format!("{:.1},{:.1}", tx(b.0), ty(b.2)))
                    .collect();
                let lower: Vec<String> = band
                    .iter()
                    .rev()
                    .map(|b| format!("{:.1},{:.1}", tx(b.0), ty(b.1)))
                    .collect();
                let _ = write!(
                    out,
                    "<polygon points=\"{} {}\" fill=\"{colour}\" fill-opacity=\"0.15\" stroke=\"none\"/>",
                    upper.join(" "),
                    lower.join(" ")
                );
            }
            let pts: Vec<String> = s
                .points
                .iter()
                .filter(|p| finite(p.0) && p.1.is_finite())
                .map(|p| format!("{:.1},{:.1}", tx(p.0), ty(p.1)))
                .collect();
            let dash = if s.dashed {
                " stroke-dasharray=\"5 4\""
            } else {
                ""
            };
            if !s.markers_only {
                let _ = write!(
                    out,
                    "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
                    pts.join(" ")
                );
            }
            for p in &pts {
                let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(
                    out,
                    "<circle cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{colour}\"/>"
                );
            }
            let ly = TOP + 14.0 + 18.0 * i as f64;
            let _ = write!(
                out,
                "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{colour}\" stroke-width=\"3\"{dash}/><text x=\"{:.1}\" y=\"{:.1}\" class=\"legend\">{}</text>",
                W - RIGHT + 12.0,
                W - RIGHT + 30.0,
                W - RIGHT + 35.0,
                ly + 4.0,
                escape(&s.name)
            );
        }
        out.push_str("</svg>");
        out
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        })
}

/// Grid, ticks and axis labels of a plot area.
fn axes(
    out: &mut String,
    xticks: &[f64],
    yticks: &[f64],
    x_log: bool,
    tx: &dyn Fn(f64) -> f64,
    ty: &dyn Fn(f64) -> f64,
    (x_label, y_label): (&str, &str),
) {
    let (bottom, right) = (H - BOTTOM, W - RIGHT);
    for &x in xticks {
        let _ = write!(
            out,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{TOP}\" y2=\"{bottom}\" class=\"grid\"/><text x=\"{0:.1}\" y=\"{1:.1}\" class=\"tick\" text-anchor=\"middle\">{2}</text>",
            tx(x),
            bottom + 16.0,
            tick_label(x, x_log)
        );
    }
    for &y in yticks {
        let _ = write!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{right}\" y1=\"{0:.1}\" y2=\"{0:.1}\" class=\"grid\"/><text x=\"{1:.1}\" y=\"{2:.1}\" class=\"tick\" text-anchor=\"end\">{3}</text>",
            ty(y),
            LEFT - 6.0,
            ty(y) + 4.0,
            tick_label(y, false)
        );
    }
    let _ = write!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" class=\"frame\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"middle\">{}</text><text transform=\"translate(14 {:.1}) rotate(-90)\" class=\"axis\" text-anchor=\"middle\">{}</text>",
        right - LEFT,
        bottom - TOP,
        (LEFT + right) / 2.0,
        H - 8.0,
        escape(x_label),
        (TOP + bottom) / 2.0,
        escape(y_label)
    );
}

/// Horizontal bars, one per `(label, value)`, each with its value text.
pub fn bars(title: &str, items: &[(String, f64)], format: &dyn Fn(f64) -> String) -> String {
    let row = 20.0;
    let label_w = 250.0;
    let h = 10.0 + row * items.len().max(1) as f64;
    let mut out = open(title, W, h);
    let max = items
        .iter()
        .map(|i| i.1)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    for (i, (label, v)) in items.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let len = if max > 0.0 && v.is_finite() {
            (v / max).max(0.0) * (W - label_w - 90.0)
        } else {
            0.0
        };
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"{:.1}\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
            label_w - 6.0,
            y + 13.0,
            escape(&shorten(label, 40)),
            row - 6.0,
            PALETTE[0],
            label_w + len + 5.0,
            y + 13.0,
            escape(&if v.is_finite() { format(*v) } else { "—".into() })
        );
    }
    out.push_str("</svg>");
    out
}

/// `s` cut to `n` characters with an ellipsis.
pub fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s
            .chars()
            .rev()
            .take(n - 1)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    }
}

/// A heatmap: one cell per `(row, column)`, colour from 0 to the largest
/// value (or to `max` when given), the value printed in each cell;
/// `None` cells are hatched grey.
pub fn heatmap(
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<Option<f64>>],
    max: Option<f64>,
    format: &dyn Fn(f64) -> String,
) -> String {
    let (label_w, head_h, cw, ch) = (220.0, 90.0, 46.0, 24.0);
    let w = label_w + cw * columns.len().max(1) as f64 + 10.0;
    let h = head_h + ch * rows.len().max(1) as f64 + 10.0;
    let mut out = open(title, w, h);
    out.push_str("<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#eee\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#ccc\" stroke-width=\"2\"/></pattern></defs>");
    let top = max.filter(|m| *m > 0.0).unwrap_or_else(|| {
        cells
            .iter()
            .flatten()
            .flatten()
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    });
    for (j, c) in columns.iter().enumerate() {
        let x = label_w + cw * (j as f64 + 0.5);
        let _ = write!(
            out,
            "<text transform=\"translate({x:.1} {:.1}) rotate(-55)\" class=\"tick\">{}</text>",
            head_h - 6.0,
            escape(c)
        );
    }
    for (i, r) in rows.iter().enumerate() {
        let y = head_h + ch * i as f64;
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + ch / 2.0 + 4.0,
            escape(&shorten(r, 34))
        );
        for (j, v) in cells
            .get(i)
            .map(Vec::as_slice)
            .unwrap_or(&[])
            .iter()
            .enumerate()
            .take(columns.len())
        {
            let x = label_w + cw * j as f64;
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let f = if top > 0.0 {
                        (v / top).clamp(0.0, 1.0)
                    } else {
                        0.0
                    };
                    let text = if f > 0.55 { "#fff" } else { "#222" };
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"{}\" stroke=\"#fff\"><title>{} · {}: {}</title></rect><text x=\"{:.1}\" y=\"{:.1}\" class=\"cell\" fill=\"{text}\" text-anchor=\"middle\">{}</text>",
                        ramp(f),
                        escape(r),
                        escape(&columns[j]),
                        escape(&format(v)),
                        x + cw / 2.0,
                        y + ch / 2.0 + 4.0,
                        escape(&format(v))
                    );
                }
                None => {
                    let _ = write!(
                        out,
                        "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{cw}\" height=\"{ch}\" fill=\"url(#hatch)\" stroke=\"#fff\"/>"
                    );
                }
            }
        }
    }
    out.push_str("</svg>");
    out
}

/// White → deep blue for `f` in [0, 1].
fn ramp(f: f64) -> String {
    let lerp = |a: f64, b: f64| (a + (b - a) * f).round() as u8;
    format!(
        "#{:02x}{:02x}{:02x}",
        lerp(247.0, 8.0),
        lerp(251.0, 48.0),
        lerp(255.0, 107.0)
    )
}

/// One rectangle of the arena timeline.
#[derive(Debug, Clone)]
pub struct Span {
    /// Hover text.
    pub label: String,
    /// First and last op index it is live over (−1: before op 0).
    pub ops: (i64, i64),
    /// Arena byte range.
    pub bytes: (u64, u64),
}

/// The arena over time: x = op index, y = byte offset, one box per buffer.
pub fn timeline(title: &str, spans: &[Span], arena: u64, ops: usize) -> String {
    let mut out = open(title, W, H);
    // One column per op, plus column −1 for the model input (live before op 0).
    let (x0, x1) = (-1.5, ops as f64 - 0.5);
    let tx = |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let top = arena.max(1) as f64;
    let ty = |y: f64| TOP + (1.0 - y / top) * (H - TOP - BOTTOM);
    let xt: Vec<f64> = nice_ticks(0.0, ops.saturating_sub(1) as f64, 8)
        .into_iter()
        .filter(|v| v.fract() == 0.0)
        .collect();
    axes(
        &mut out,
        &xt,
        &nice_ticks(0.0, top, 5),
        false,
        &tx,
        &ty,
        ("op index", "arena offset (bytes)"),
    );
    for (i, s) in spans.iter().enumerate() {
        let (a, b) = (tx(s.ops.0 as f64 - 0.4), tx(s.ops.1 as f64 + 0.4));
        let (y_hi, y_lo) = (ty(s.bytes.1 as f64), ty(s.bytes.0 as f64));
        let _ = write!(
            out,
            "<rect x=\"{a:.1}\" y=\"{y_hi:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.75\" stroke=\"#fff\"><title>{}</title></rect>",
            (b - a).max(1.0),
            (y_lo - y_hi).max(1.0),
            PALETTE[i % PALETTE.len()],
            escape(&s.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_by_hand() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(decade_ticks(1e-6, 1e-2).len(), 5);
        assert_eq!(tick_label(1e-4, true), "1e-4");
        assert_eq!(tick_label(0.25, false), "0.25");
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
    }

    #[test]
    fn plots_survive_empty_and_non_finite_data() {
        let empty = LinePlot::default().svg();
        assert!(empty.contains("no data"));
        let plot = LinePlot {
            title: "t<".into(),
            x_log: true,
            series: vec![Series {
                name: "a&b".into(),
                points: vec![(1e-6, 0.5), (1e-3, f64::NAN), (0.0, 1.0), (1e-2, 0.9)],
                band: vec![(1e-6, 0.4, 0.6), (1e-2, f64::INFINITY, 1.0)],
                dashed: true,
                markers_only: false,
            }],
            ..LinePlot::default()
        }
        .svg();
        assert!(!plot.contains("NaN") && !plot.contains("inf"));
        assert!(plot.contains("t&lt;") && plot.contains("a&amp;b"));
        let h = heatmap(
            "h",
            &["r".into()],
            &["c".into(), "d".into()],
            &[vec![Some(f64::NAN), Some(1.0)]],
            None,
            &|v| format!("{v}"),
        );
        assert!(h.contains("url(#hatch)") && !h.contains("NaN"));
        assert!(bars("b", &[], &|v| format!("{v}")).starts_with("<svg"));
    }
}
