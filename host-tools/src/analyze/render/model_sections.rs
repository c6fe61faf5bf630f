//! The sections about the model itself: fit, fidelity, protection cost.

use super::format::{bytes, count, num, opt_pct, pct, shape};
use super::svg::{bars, escape, heatmap, timeline, Span};
use super::table::{figure, section, table};
use crate::analyze::report::{BoardCost, Cost, Fidelity, Fit};

/// The fit section: per-op costs, arena timeline, flash per section, budgets.
pub fn fit(f: &Fit) -> String {
    let mut body = String::new();
    let flash = f.protected_flash_bytes.unwrap_or(f.flash_bytes);
    let verdict = |used: u64, budget: Option<u64>| match budget {
        Some(b) if used <= b => format!("{} of {} ✓", bytes(used), bytes(b)),
        Some(b) => format!(
            "{} of {} ✗ over by {}",
            bytes(used),
            bytes(b),
            bytes(used - b)
        ),
        None => format!("{} (no budget given)", bytes(used)),
    };
    body.push_str(&table(
        &["resource", "use"],
        &[
            vec!["flash (artifact)".into(), verdict(flash, f.flash_budget)],
            vec!["RAM (arena)".into(), verdict(f.arena_bytes, f.ram_budget)],
            vec![
                "arena lower bound (no plan needs less)".into(),
                bytes(f.arena_lower_bound),
            ],
        ],
        1,
    ));
    let rows: Vec<Vec<String>> = f
        .layers
        .iter()
        .map(|l| {
            vec![
                l.index.to_string(),
                l.node.clone(),
                l.kind.clone(),
                shape(&l.input_shape),
                shape(&l.output_shape),
                count(l.macs),
                format!("{} {}", bytes(l.weight_bytes), l.weight_dtype),
                bytes(l.output_bytes),
            ]
        })
        .collect();
    body.push_str(&table(
        &[
            "op", "node", "kind", "input", "output", "MACs", "weights", "output",
        ],
        &rows,
        5,
    ));
    let spans: Vec<Span> = f
        .buffers
        .iter()
        .map(|b| Span {
            label: format!(
                "{}: {} at offset {}, ops {}…{}",
                b.tensor,
                bytes(b.bytes),
                b.offset,
                b.first_op,
                b.last_op
            ),
            ops: (b.first_op, b.last_op),
            bytes: (b.offset, b.offset + b.bytes),
        })
        .collect();
    body.push_str(&figure(
        &timeline("arena timeline", &spans, f.arena_bytes, f.layers.len()),
        "Arena buffers: each box is one tensor, from the op that writes it to the last op that reads it; the column left of op 0 is the model input.",
    ));
    let items: Vec<(String, f64)> = f
        .sections
        .iter()
        .map(|s| (s.name.clone(), s.bytes as f64))
        .collect();
    body.push_str(&figure(
        &bars("flash per section", &items, &|v| bytes(v as u64)),
        "Flash per artifact section.",
    ));
    if let Some(b) = &f.board {
        body.push_str(&board_costs(f, b));
    }
    section(
        "fit",
        "Fit",
        "The table says what each op costs; in the timeline, boxes stacked higher mean more RAM live at once, and the top of the tallest column is the arena the board must reserve.",
        &body,
    )
}

/// Measured per-op costs on the board: bars and a table with the count
/// per MAC (the figure that compares kernels across models).
fn board_costs(f: &Fit, b: &BoardCost) -> String {
    let name = |i: usize| {
        f.layers
            .get(i)
            .map_or_else(|| format!("op {i}"), |l| l.node.clone())
    };
    let items: Vec<(String, f64)> = b
        .instructions_per_op
        .iter()
        .enumerate()
        .map(|(i, &n)| (name(i), n as f64))
        .collect();
    let per_mac = |n: u64, macs: u64| match macs {
        0 => "—".to_string(),
        m => num(n as f64 / m as f64, 2),
    };
    let mut rows: Vec<Vec<String>> = b
        .instructions_per_op
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let macs = f.layers.get(i).map_or(0, |l| l.macs);
            vec![
                i.to_string(),
                name(i),
                count(macs),
                count(n),
                per_mac(n, macs),
            ]
        })
        .collect();
    rows.push(vec![
        String::new(),
        "whole inference".into(),
        count(b.macs),
        count(b.instructions_total),
        per_mac(b.instructions_total, b.macs),
    ]);
    let unit = &b.unit;
    let per = format!("{unit} / MAC");
    format!(
        "{}{}",
        figure(
            &bars(&format!("{unit} per op"), &items, &|v| count(v as u64)),
            &format!(
                "Measured on {}: {unit} per op of one inference{}.",
                b.board,
                if unit == "instructions" {
                    " (QEMU counts instructions, not cycles)"
                } else {
                    ""
                }
            ),
        ),
        table(&["op", "node", "MACs", unit, &per], &rows, 2)
    )
}

/// The fidelity section: int8 against float, overall, per class, per op.
pub fn fidelity(f: &Fidelity) -> String {
    let mut body = String::new();
    let float = f.float.as_ref();
    let rows = vec![
        vec![
            "accuracy".into(),
            opt_pct(float.and_then(|s| s.accuracy)),
            opt_pct(f.int8.accuracy),
        ],
        vec![
            "balanced accuracy".into(),
            opt_pct(float.and_then(|s| s.balanced_accuracy)),
            opt_pct(f.int8.balanced_accuracy),
        ],
        vec![
            "mean squared error".into(),
            float
                .and_then(|s| s.mean_mse)
                .map_or("—".into(), |v| num(v, 5)),
            f.int8.mean_mse.map_or("—".into(), |v| num(v, 5)),
        ],
        vec![
            "top-1 agreement".into(),
            String::new(),
            opt_pct(f.top1_agreement),
        ],
    ];
    body.push_str(&table(&["", "float (tract)", "int8 (sturdy)"], &rows, 1));
    if let Some(e) = &f.output_error {
        body.push_str(&table(
            &["output vs float", "RMSE", "MAE", "L2R", "COS", "SQNR"],
            &[vec![
                "int8 output".into(),
                num(e.rmse, 4),
                num(e.mae, 4),
                num(e.l2_relative, 4),
                num(e.cosine, 5),
                format!("{} dB", num(e.sqnr_db, 1)),
            ]],
            1,
        ));
    }
    if !f.confusion.is_empty() {
        let names: Vec<String> = f.classes.iter().map(|c| c.to_string()).collect();
        // Row-normalised colour, counts printed.
        let normalised: Vec<Vec<Option<f64>>> = f
            .confusion
            .iter()
            .map(|row| {
                let total: u64 = row.iter().sum();
                row.iter()
                    .map(|&c| {
                        Some(if total == 0 {
                            0.0
                        } else {
                            c as f64 / total as f64
                        })
                    })
                    .collect()
            })
            .collect();
        let label = |v: f64| format!("{:.0}%", 100.0 * v);
        body.push_str(&figure(
            &heatmap("confusion matrix", &names, &names, &normalised, Some(1.0), &label),
            "Confusion of the int8 model: rows are true classes, columns predictions, each cell the share of its row.",
        ));
        let rows: Vec<Vec<String>> = f
            .per_class
            .iter()
            .map(|c| {
                vec![
                    c.class.to_string(),
                    count(c.count),
                    pct(c.precision),
                    pct(c.recall),
                ]
            })
            .collect();
        body.push_str(&table(
            &["class", "samples", "precision", "recall"],
            &rows,
            1,
        ));
    }
    if !f.per_domain.is_empty() {
        let rows: Vec<Vec<String>> = f
            .per_domain
            .iter()
            .map(|d| {
                vec![
                    d.domain.to_string(),
                    count(d.samples),
                    opt_pct(d.float_accuracy),
                    pct(d.int8_accuracy),
                ]
            })
            .collect();
        body.push_str(&table(&["domain", "samples", "float", "int8"], &rows, 1));
    }
    if !f.layers.is_empty() {
        let items: Vec<(String, f64)> = f
            .layers
            .iter()
            .map(|l| (l.node.clone(), l.error.sqnr_db))
            .collect();
        body.push_str(&figure(
            &bars("SQNR per op", &items, &|v| format!("{v:.1} dB")),
            "Signal-to-quantization-noise ratio of each op's output against the float graph (higher is better; every 6 dB is one bit).",
        ));
        let rows: Vec<Vec<String>> = f
            .layers
            .iter()
            .map(|l| {
                vec![
                    l.index.to_string(),
                    l.node.clone(),
                    l.kind.clone(),
                    num(l.error.cosine, 5),
                    num(l.error.l2_relative, 4),
                    format!("{} dB", num(l.error.sqnr_db, 1)),
                ]
            })
            .collect();
        body.push_str(&table(
            &["op", "node", "kind", "cosine", "L2 rel.", "SQNR"],
            &rows,
            3,
        ));
    }
    section(
        "fidelity",
        "Fidelity",
        "Compare the two accuracy columns first; then the SQNR bars show where along the network the integer model drifts from the float one (the shortest bar is the layer to look at).",
        &body,
    )
}

/// The protection cost section: flash and host load time per code.
pub fn cost(c: &Cost) -> String {
    let mut items = vec![("plain".to_string(), c.plain_bytes as f64)];
    items.extend(
        c.codes
            .iter()
            .map(|k| (k.code.clone(), k.flash_bytes as f64)),
    );
    let rows: Vec<Vec<String>> = c
        .codes
        .iter()
        .map(|k| {
            vec![
                k.code.clone(),
                bytes(k.flash_bytes),
                bytes(k.parity_bytes),
                bytes(k.tag_bytes),
                format!("{:.2}×", k.overhead),
                format!("{:.1} MB/s", k.host_load_mb_per_s),
            ]
        })
        .collect();
    let board = c.board.as_ref().map_or(String::new(), |b| {
        format!(
            "<p>On {}: the protected artifact loads (syndrome check, repair, tags) in <b>{} {}</b>{}; an inference then takes {} {}.</p>",
            escape(&b.board),
            b.load.map_or("—".into(), count),
            escape(&b.unit),
            b.load.map_or(String::new(), |l| format!(
                " ({} inferences' worth)",
                num(l as f64 / b.instructions_total.max(1) as f64, 1)
            )),
            count(b.instructions_total),
            escape(&b.unit)
        )
    });
    let body = format!(
        "{}{board}{}",
        table(
            &["code", "flash", "parity", "tags", "vs plain", "host load"],
            &rows,
            1
        ),
        figure(
            &bars("flash per code", &items, &|v| bytes(v as u64)),
            "Flash of the plain artifact and of each protected form."
        )
    );
    section(
        "cost",
        "Protection cost",
        "Each row is one QC-LDPC code: lower rates repair more flips and cost more flash; host load is the runtime's own check-and-repair over the whole artifact.",
        &body,
    )
}
