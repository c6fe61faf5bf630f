//! One inference recorded op by op: the int8 code of every activation the
//! runtime computed, keyed by the tensor that produced it. The backward
//! pass ([`super::backward`]) reads these exact codes, so its gradients
//! are taken at the point the board really computes, not at a float
//! imitation of it.
//!
//! Reshapes are second records over the same arena bytes; an op's input is
//! resolved to the op output (or model input) that last wrote those bytes,
//! its *canonical* tensor.
//!
//! Memory, and why no `half::f16` here: a campaign's activations are held
//! as these int8 codes, one byte each, half of what an f16 copy would
//! take, and exact where f16 would round. Of each sample only its outputs
//! are kept (for scores and confusion); gradients are summed into one
//! per-weight buffer ([`super::backward::Gradients`]) and the float graph's
//! activations in the fidelity section are folded into running error sums
//! as each sample completes, so the intermediate activations held are one
//! inference's per worker thread, whatever `--samples` is. `half` serves
//! the inputs: f16 `.npy` files are read by [`crate::npy_f16`].

use anyhow::{anyhow, Result};
use std::collections::HashMap;
use sturdy_runtime::format::{TensorRecord, LOC_ARENA, OP_SOFTMAX};
use sturdy_runtime::Model;

/// Activation codes of one inference.
#[derive(Debug, Clone)]
pub struct Tape {
    /// Codes per canonical tensor index (`None`: constants, never written).
    pub values: Vec<Option<Vec<i8>>>,
    /// Per op, the canonical tensor of each input (`None`: a constant).
    pub inputs: Vec<Vec<Option<usize>>>,
}

impl Tape {
    /// Runs `input` (from `domain`) through `model` op by op and records
    /// every op's output.
    pub fn record(model: &Model<'_>, input: &[i8], domain: Option<u32>) -> Result<Tape> {
        let a = model.artifact();
        let tensors = a.tensors();
        let err = |e| anyhow!("inference failed: {e}");
        let mut arena = crate::host_model::load_input(model, input, domain)?;
        let mut values = vec![None; tensors.len()];
        let mut live: HashMap<(u32, u32), usize> = HashMap::new();
        let graph_input = a.graph().input as usize;
        values[graph_input] = Some(codes(&arena, &tensors[graph_input]));
        live.insert(key(&tensors[graph_input]), graph_input);
        let mut inputs = Vec::with_capacity(model.op_count());
        for i in 0..model.op_count() {
            let op = model.op(i).map_err(err)?;
            let canon = op
                .inputs()
                .iter()
                .map(|&t| {
                    let r = &tensors[t as usize];
                    if r.location != LOC_ARENA {
                        return Ok(None);
                    }
                    live.get(&key(r))
                        .copied()
                        .map(Some)
                        .ok_or_else(|| anyhow!("op {i} reads tensor {t}, which nothing wrote"))
                })
                .collect::<Result<Vec<_>>>()?;
            inputs.push(canon);
            model.invoke_op(i, &mut arena).map_err(err)?;
            let out = op.record.output as usize;
            values[out] = Some(codes(&arena, &tensors[out]));
            live.insert(key(&tensors[out]), out);
        }
        Ok(Tape { values, inputs })
    }

    /// Codes of canonical tensor `t` (empty for a constant).
    pub fn get(&self, t: usize) -> &[i8] {
        self.values.get(t).and_then(Option::as_deref).unwrap_or(&[])
    }
}

fn key(r: &TensorRecord) -> (u32, u32) {
    (r.offset, r.len)
}

/// The codes of activation `r` in `arena` (empty if it lies outside).
pub fn codes(arena: &[u8], r: &TensorRecord) -> Vec<i8> {
    let at = r.offset as usize;
    arena
        .get(at..at + r.len as usize)
        .map(|b| b.iter().map(|&x| x as i8).collect())
        .unwrap_or_default()
}

/// Where the loss is taken: the scores before a final Softmax (whose int8
/// probabilities saturate and would flatten the loss), else the output.
/// Returns the op index that writes them and their tensor.
pub fn logits_op(model: &Model<'_>) -> Result<(usize, usize)> {
    let a = model.artifact();
    let last = model
        .op_count()
        .checked_sub(1)
        .ok_or_else(|| anyhow!("the model has no ops"))?;
    let record = &a.ops()[last];
    if record.kind == OP_SOFTMAX && last > 0 {
        let before = &a.ops()[last - 1];
        let input = &a.tensors()[record.inputs[0] as usize];
        let produced = &a.tensors()[before.output as usize];
        if key(input) == key(produced) {
            return Ok((last - 1, before.output as usize));
        }
    }
    Ok((last, record.output as usize))
}

/// The real value of one code of tensor `r`.
pub fn real(r: &TensorRecord, code: i8) -> f32 {
    f32::from_bits(r.scale_bits) * (i32::from(code) - r.zero_point) as f32
}
