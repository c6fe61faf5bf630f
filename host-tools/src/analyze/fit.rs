//! Section 1: does the model fit — per-op table, arena buffers with their
//! lifetimes, flash per section, verdict against the budgets.

use super::report::{Buffer, Fit, Layer, NamedBytes};
use crate::cli::inspect::section_name;
use crate::host_model::HostModel;
use anyhow::{anyhow, Result};
use std::collections::HashMap;
use sturdy_runtime::format::{DTYPE_I4, HEADER_SIZE, LOC_ARENA, LOC_WEIGHTS, SECTION_ENTRY_SIZE};
use sturdy_runtime::OpKind;

/// Measures the plain artifact `host` (and the protected size, if any).
pub fn run(
    host: &HostModel,
    protected_bytes: Option<u64>,
    flash_budget: Option<u64>,
    ram_budget: Option<u64>,
) -> Result<Fit> {
    let model = host.model()?;
    let a = model.artifact();
    let tensors = a.tensors();
    let mut layers = Vec::new();
    for i in 0..model.op_count() {
        let op = model.op(i).map_err(|e| anyhow!("op {i}: {e}"))?;
        let out = &tensors[op.record.output as usize];
        let input = op.inputs().first().map(|&t| &tensors[t as usize]);
        let dims = |r: &sturdy_runtime::format::TensorRecord| {
            r.dims[..r.rank as usize]
                .iter()
                .map(|&d| d as usize)
                .collect::<Vec<_>>()
        };
        let constants = op
            .inputs()
            .iter()
            .map(|&t| &tensors[t as usize])
            .filter(|r| r.location == LOC_WEIGHTS);
        let weight_bytes: u64 = constants.map(|r| u64::from(r.len)).sum();
        let macs = match op.kind {
            OpKind::Conv2d { params: p, .. } => {
                (p.out_h * p.out_w * p.out_c * p.kernel_h * p.kernel_w * (p.in_c / p.groups.max(1)))
                    as u64
            }
            OpKind::FullyConnected { params: p, .. } => {
                (p.rows * p.in_features * p.out_features) as u64
            }
            _ => 0,
        };
        let weight_dtype = match op.kind {
            OpKind::Conv2d { .. } | OpKind::FullyConnected { .. } => {
                let w = &tensors[op.record.inputs[1] as usize];
                if w.dtype == DTYPE_I4 { "i4" } else { "i8" }.to_string()
            }
            _ => String::new(),
        };
        let meta = host.meta.ops.get(i);
        layers.push(Layer {
            index: i,
            node: meta.map(|m| m.node.clone()).unwrap_or_default(),
            kind: meta.map(|m| m.kind.clone()).unwrap_or_default(),
            input_shape: input.map(dims).unwrap_or_default(),
            output_shape: dims(out),
            macs,
            weight_bytes,
            weight_dtype,
            output_bytes: u64::from(out.len),
        });
    }
    let mut sections = vec![NamedBytes {
        name: "header".into(),
        bytes: (HEADER_SIZE + a.sections().len() * SECTION_ENTRY_SIZE) as u64,
    }];
    sections.extend(a.sections().iter().map(|s| NamedBytes {
        name: section_name(s.kind),
        bytes: u64::from(s.len),
    }));
    let flash_bytes = a.bytes().len() as u64;
    let arena_bytes = model.arena_size() as u64;
    Ok(Fit {
        flash_budget,
        ram_budget,
        flash_bytes,
        protected_flash_bytes: protected_bytes,
        arena_bytes,
        arena_lower_bound: host.meta.plan.lower_bound_bytes as u64,
        layers,
        buffers: buffers(host)?,
        sections,
        board: None,
    })
}

/// Whether `fit` meets its budgets (`None`: no budget given). A protected
/// artifact's flash is what counts when there is one.
pub fn verdict(fit: &Fit) -> Option<bool> {
    let flash = fit.protected_flash_bytes.unwrap_or(fit.flash_bytes);
    let flash_ok = fit.flash_budget.map(|b| flash <= b);
    let ram_ok = fit.ram_budget.map(|b| fit.arena_bytes <= b);
    match (flash_ok, ram_ok) {
        (None, None) => None,
        (f, r) => Some(f.unwrap_or(true) && r.unwrap_or(true)),
    }
}

/// Every arena buffer, from the op (or model input) that writes it to the
/// last op that reads it (a reshape's second record counts as the same
/// buffer).
fn buffers(host: &HostModel) -> Result<Vec<Buffer>> {
    let model = host.model()?;
    let a = model.artifact();
    let tensors = a.tensors();
    let key = |t: usize| (tensors[t].offset, tensors[t].len);
    let mut out: Vec<Buffer> = Vec::new();
    let mut live: HashMap<(u32, u32), usize> = HashMap::new();
    let input = a.graph().input as usize;
    out.push(Buffer {
        tensor: host.meta.input.name.clone(),
        offset: u64::from(tensors[input].offset),
        bytes: u64::from(tensors[input].len),
        first_op: -1,
        last_op: -1,
    });
    live.insert(key(input), 0);
    for (i, record) in a.ops().iter().enumerate() {
        let n = (record.input_count as usize).min(record.inputs.len());
        for &t in &record.inputs[..n] {
            let t = t as usize;
            if tensors[t].location != LOC_ARENA {
                continue;
            }
            if let Some(&b) = live.get(&key(t)) {
                out[b].last_op = i as i64;
            }
        }
        let t = record.output as usize;
        live.insert(key(t), out.len());
        out.push(Buffer {
            tensor: host
                .meta
                .ops
                .get(i)
                .map(|m| m.node.clone())
                .unwrap_or_default(),
            offset: u64::from(tensors[t].offset),
            bytes: u64::from(tensors[t].len),
            first_op: i as i64,
            last_op: i as i64,
        });
    }
    // The model output stays live after the last op (the caller reads it).
    if let Some(last) = out.last_mut() {
        last.last_op = a.ops().len() as i64;
    }
    Ok(out)
}
