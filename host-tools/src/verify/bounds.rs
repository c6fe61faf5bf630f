//! Interval bound propagation through the integer model, op by op, in the
//! runtime's own arithmetic.
//!
//! Two arenas travel through the graph: one holds every activation's
//! lowest reachable code, the other its highest. Each op maps them by the
//! one rule that is sound for it:
//! - **Conv2d, FullyConnected**: the accumulator split by weight sign
//!   ([`super::linear`]);
//! - **Add, MaxPool, AveragePool, Concat, Transpose**: the runtime's own
//!   kernel run on the low arena and on the high arena. Each is
//!   non-decreasing in every input code — Add and Concat rescale with
//!   non-negative multipliers ([`sturdy_runtime::arith::Requant`]) and add,
//!   pooling takes a max or a rounded mean, a transpose moves codes — so
//!   the kernel's output at the low (high) inputs is a lower (upper)
//!   bound of its output anywhere in between;
//! - **Mul**: the kernel at the four corners, element by element (a
//!   product of two intervals is extreme at a corner, and its
//!   requantization is non-decreasing);
//! - **Lut**: the table's smallest and largest entry over each element's
//!   range (exact);
//! - **the EmaQ-LT logit adjustment** (after the op that writes the
//!   adjusted logits): each row either stays or becomes `x − offset`,
//!   saturated, depending on its own margin, so the bound is the hull of
//!   both;
//! - **a final Softmax**: not propagated. Properties speak of its input
//!   (the logits), and a label proved there is carried through it by
//!   [`Scores::proves_label`].
//!
//! Any other op (a Softmax inside the graph, LogSoftmax) is refused when
//! the [`Bounder`] is built, naming the op: no bound is guessed.

use super::interval::Interval;
use super::linear::{self, Channels};
use crate::analyze::tape::codes as read;
use anyhow::{anyhow, bail, ensure, Context, Result};
use sturdy_runtime::format::{TensorRecord, DTYPE_I8, LOC_ARENA, OP_SOFTMAX};
use sturdy_runtime::{kernels, Model, OpKind};

/// What carries the label from the bounded scores to the runtime's output.
#[derive(Debug, Clone)]
enum Tail {
    /// The scores are the output.
    None,
    /// A final Softmax over one row of logits with this (non-increasing)
    /// exponent table.
    Softmax { table: Box<[u32; 256]> },
}

/// Propagates input intervals through one model.
pub struct Bounder<'m> {
    model: Model<'m>,
    /// Ops `0..ops` are propagated; their last output is the scores.
    ops: usize,
    scores: TensorRecord,
    tail: Tail,
}

/// Bounds of the scores (the logits) over an input region.
#[derive(Debug, Clone)]
pub struct Scores {
    /// The bounds, one per class.
    pub bounds: Interval,
    tail: Tail,
}

impl<'m> Bounder<'m> {
    /// Checks that every op has a sound bound rule (see the module doc);
    /// the error names the first op that has not.
    pub fn new(model: Model<'m>) -> Result<Self> {
        let a = model.artifact();
        let count = model.op_count();
        ensure!(count > 0, "the model has no ops");
        let last = model
            .op(count - 1)
            .map_err(|e| anyhow!("op {}: {e}", count - 1))?;
        let (ops, tail) = match last.kind {
            OpKind::Softmax {
                rows: 1,
                cols,
                table,
                log: None,
            } if a.ops()[count - 1].kind == OP_SOFTMAX && count > 1 => {
                let table: [u32; 256] = table.try_into().map_err(|_| {
                    anyhow!("op {}: softmax table of {} entries", count - 1, table.len())
                })?;
                ensure!(
                    table.windows(2).all(|w| w[0] >= w[1]) && table[0] > 0,
                    "op {}: the softmax table is not non-increasing",
                    count - 1
                );
                ensure!(cols >= 2, "op {}: a softmax over {cols} class", count - 1);
                (
                    count - 1,
                    Tail::Softmax {
                        table: Box::new(table),
                    },
                )
            }
            _ => (count, Tail::None),
        };
        let adjusted = a.logit_adjust().map(|l| l.tensor() as u16);
        for i in 0..ops {
            let op = model.op(i).map_err(|e| anyhow!("op {i}: {e}"))?;
            let own_rule = matches!(
                op.kind,
                OpKind::Conv2d { .. }
                    | OpKind::FullyConnected { .. }
                    | OpKind::Mul(_)
                    | OpKind::Lut { .. }
            );
            match op.kind {
                OpKind::Softmax { .. } => bail!(
                    "op {i} ({}): no sound interval rule for a softmax inside the graph",
                    op_name(&op.kind)
                ),
                _ if adjusted == Some(op.record.output) && !own_rule => bail!(
                    "op {i} ({}): the logit adjustment after this op kind is not supported",
                    op_name(&op.kind)
                ),
                _ => {}
            }
        }
        let scores_index = match tail {
            Tail::None => a.graph().output as usize,
            Tail::Softmax { .. } => a.ops()[count - 1].inputs[0] as usize,
        };
        let scores = *a.tensor(scores_index).map_err(|e| anyhow!("{e}"))?;
        ensure!(
            scores.dtype == DTYPE_I8 && scores.location == LOC_ARENA,
            "the scores tensor {scores_index} is not an int8 activation"
        );
        Ok(Self {
            model,
            ops,
            scores,
            tail,
        })
    }

    /// The model bounded.
    pub fn model(&self) -> &Model<'m> {
        &self.model
    }

    /// The input's storage dims (`[1, H, W, C]` for an image).
    pub fn input_dims(&self) -> Vec<usize> {
        let a = self.model.artifact();
        let r = &a.tensors()[a.graph().input as usize];
        r.dims[..usize::from(r.rank).min(4)]
            .iter()
            .map(|&d| d as usize)
            .collect()
    }

    /// Number of classes (score elements).
    pub fn classes(&self) -> usize {
        self.scores.len as usize
    }

    /// Bounds of the scores over every input in `input`.
    pub fn scores(&self, input: &Interval) -> Result<Scores> {
        let size = self.model.arena_size();
        let (mut lo, mut hi) = (vec![0u8; size], vec![0u8; size]);
        let err = |e| anyhow!("{e}");
        let len = self.model.input_len();
        ensure!(
            input.len() == len,
            "an input region of {} elements for a model input of {len}",
            input.len()
        );
        self.model
            .input_mut(&mut lo)
            .map_err(err)?
            .copy_from_slice(&input.lo);
        self.model
            .input_mut(&mut hi)
            .map_err(err)?
            .copy_from_slice(&input.hi);
        for i in 0..self.ops {
            self.op(i, &mut lo, &mut hi)
                .with_context(|| format!("bounding op {i}"))?;
        }
        Ok(Scores {
            bounds: Interval::new(read(&lo, &self.scores), read(&hi, &self.scores))?,
            tail: self.tail.clone(),
        })
    }

    /// The scores the runtime computes for one input (the logits before a
    /// final Softmax).
    pub fn point_scores(&self, input: &[i8]) -> Result<Vec<i8>> {
        let mut arena = crate::host_model::load_input(&self.model, input, None)?;
        for i in 0..self.ops {
            self.model
                .invoke_op(i, &mut arena)
                .map_err(|e| anyhow!("op {i}: {e}"))?;
        }
        Ok(read(&arena, &self.scores))
    }

    /// The label the runtime gives one input: the first index of its
    /// output's largest code.
    pub fn label(&self, input: &[i8]) -> Result<usize> {
        let mut arena = crate::host_model::load_input(&self.model, input, None)?;
        self.model
            .invoke(&mut arena)
            .map_err(|e| anyhow!("inference: {e}"))?;
        let out = self.model.output(&arena).map_err(|e| anyhow!("{e}"))?;
        Ok(argmax(out))
    }

    fn op(&self, i: usize, lo: &mut [u8], hi: &mut [u8]) -> Result<()> {
        let op = self.model.op(i).map_err(|e| anyhow!("{e}"))?;
        let a = self.model.artifact();
        let index = |k: usize| op.record.inputs[k] as usize;
        let tensor = |k: usize| a.tensor(index(k)).map_err(|e| anyhow!("{e}"));
        let out = *a
            .tensor(op.record.output as usize)
            .map_err(|e| anyhow!("{e}"))?;
        let (out_lo, out_hi) = match op.kind {
            OpKind::Conv2d {
                params,
                weights,
                bias,
                multipliers,
                shifts,
            } => {
                let ch = Channels::new(&weights, bias, multipliers, shifts)?;
                let x = tensor(0)?;
                linear::conv2d(&params, &ch, &read(lo, x), &read(hi, x))?
            }
            OpKind::FullyConnected {
                params,
                weights,
                bias,
                multipliers,
                shifts,
            } => {
                let ch = Channels::new(&weights, bias, multipliers, shifts)?;
                let x = tensor(0)?;
                linear::fully_connected(&params, &ch, &read(lo, x), &read(hi, x))?
            }
            OpKind::Mul(p) => {
                let corners = |x: &[u8], y: &[u8]| -> Result<Vec<i8>> {
                    let mut o = vec![0i8; out.len as usize];
                    let (va, vb) = (self.codes(x, index(0))?, self.codes(y, index(1))?);
                    kernels::mul(&p, &va, &vb, &mut o).map_err(|e| anyhow!("{e}"))?;
                    Ok(o)
                };
                let c = [
                    corners(lo, lo)?,
                    corners(lo, hi)?,
                    corners(hi, lo)?,
                    corners(hi, hi)?,
                ];
                let n = out.len as usize;
                let pick = |f: fn(i8, i8) -> i8| {
                    (0..n)
                        .map(|e| c.iter().map(|v| v[e]).reduce(f).unwrap_or(0))
                        .collect()
                };
                (pick(std::cmp::min), pick(std::cmp::max))
            }
            OpKind::Lut { table } => {
                let x = tensor(0)?;
                let range = |l: i8, h: i8| {
                    &table[(i32::from(l) + 128) as usize..=(i32::from(h) + 128) as usize]
                };
                let (xl, xh) = (read(lo, x), read(hi, x));
                let pairs: Vec<(i8, i8)> = xl
                    .iter()
                    .zip(&xh)
                    .map(|(&l, &h)| {
                        let r = range(l, h);
                        (*r.iter().min().unwrap_or(&0), *r.iter().max().unwrap_or(&0))
                    })
                    .collect();
                pairs.into_iter().unzip()
            }
            _ => {
                // Non-decreasing in every input (module doc): the kernel
                // itself, at both ends.
                let err = |e| anyhow!("{e}");
                self.model.invoke_op(i, lo).map_err(err)?;
                self.model.invoke_op(i, hi).map_err(err)?;
                return Ok(());
            }
        };
        let (out_lo, out_hi) = match a.logit_adjust() {
            Some(adj) if adj.tensor() == u32::from(op.record.output) => {
                let shifted = |v: &[i8]| -> Vec<i8> {
                    let classes = adj.offsets().len().max(1);
                    v.iter()
                        .enumerate()
                        .map(|(e, &x)| {
                            let off = adj.offsets().get(e % classes).copied().unwrap_or(0);
                            (i32::from(x) - off).clamp(-128, 127) as i8
                        })
                        .collect()
                };
                let (sl, sh) = (shifted(&out_lo), shifted(&out_hi));
                (
                    out_lo.iter().zip(&sl).map(|(a, b)| *a.min(b)).collect(),
                    out_hi.iter().zip(&sh).map(|(a, b)| *a.max(b)).collect(),
                )
            }
            _ => (out_lo, out_hi),
        };
        write(lo, &out, &out_lo)?;
        write(hi, &out, &out_hi)
    }

    /// Codes of op input tensor `t`: an activation from `arena`, or a
    /// constant.
    fn codes(&self, arena: &[u8], t: usize) -> Result<Vec<i8>> {
        let a = self.model.artifact();
        let record = a.tensor(t).map_err(|e| anyhow!("{e}"))?;
        if record.location == LOC_ARENA {
            return Ok(read(arena, record));
        }
        Ok(a.constant::<i8>(t, DTYPE_I8)
            .map_err(|e| anyhow!("{e}"))?
            .to_vec())
    }
}

impl Scores {
    /// Whether every input of the region gets label `class` from the
    /// runtime, i.e. its output's largest code is at `class` and nowhere
    /// else.
    ///
    /// Without a final Softmax: the class's lowest score is above every
    /// other class's highest. Through a final Softmax (`out_k =
    /// clamp(⌊(256·t_k + ⌊T/2⌋) / T⌋ − 128)`, `t_k = table[max − x_k]`,
    /// `T = Σ t_k`): when `lo_c > hi_j` for all `j ≠ c`, `x_c` is the row
    /// maximum, so `t_c = table[0]`, `t_j ≤ table[lo_c − hi_j]` (the table
    /// is non-increasing) and `T ≤ T̂ = table[0] + Σ_j table[lo_c − hi_j]`.
    /// If moreover `256·(table[0] − table[lo_c − hi_j]) ≥ T̂`, the two
    /// numerators differ by at least `T`, so `q_c ≥ q_j + 1`; the clamp
    /// cannot merge them (`q_c + q_j ≤ 257`, so `q_j < 255`). Hence `out_c
    /// > out_j` for every input of the region.
    pub fn proves_label(&self, class: usize) -> bool {
        let (lo, hi) = (&self.bounds.lo, &self.bounds.hi);
        let Some(&low) = lo.get(class) else {
            return false;
        };
        let others = || {
            hi.iter()
                .enumerate()
                .filter(move |&(j, _)| j != class)
                .map(|(_, &h)| h)
        };
        if !others().all(|h| low > h) {
            return false;
        }
        match &self.tail {
            Tail::None => true,
            Tail::Softmax { table } => {
                let t = |h: i8| u64::from(table[(i32::from(low) - i32::from(h)) as usize]);
                let top = u64::from(table[0]);
                let total: u64 = top + others().map(t).sum::<u64>();
                others().all(|h| 256 * (top - t(h)) >= total)
            }
        }
    }

    /// Whether every input of the region keeps score `class` at or above
    /// `code`.
    pub fn proves_at_least(&self, class: usize, code: i8) -> bool {
        self.bounds.lo.get(class).is_some_and(|&l| l >= code)
    }
}

/// First index of the largest code.
pub fn argmax(v: &[i8]) -> usize {
    v.iter()
        .enumerate()
        .fold(
            (0, i8::MIN),
            |(bi, bv), (i, &x)| if x > bv { (i, x) } else { (bi, bv) },
        )
        .0
}

fn write(arena: &mut [u8], t: &TensorRecord, codes: &[i8]) -> Result<()> {
    let at = t.offset as usize;
    let dst = arena
        .get_mut(at..at + t.len as usize)
        .filter(|d| d.len() == codes.len())
        .ok_or_else(|| {
            anyhow!(
                "an output of {} codes for a tensor of {} bytes",
                codes.len(),
                t.len
            )
        })?;
    for (d, &c) in dst.iter_mut().zip(codes) {
        *d = c as u8;
    }
    Ok(())
}

fn op_name(kind: &OpKind<'_>) -> &'static str {
    match kind {
        OpKind::Conv2d { .. } => "Conv2d",
        OpKind::FullyConnected { .. } => "FullyConnected",
        OpKind::Add(_) => "Add",
        OpKind::Mul(_) => "Mul",
        OpKind::MaxPool(_) => "MaxPool",
        OpKind::AveragePool(_) => "AveragePool",
        OpKind::Softmax { log: Some(_), .. } => "LogSoftmax",
        OpKind::Softmax { .. } => "Softmax",
        OpKind::Lut { .. } => "Lut",
        OpKind::Concat { .. } => "Concat",
        OpKind::Transpose(_) => "Transpose",
    }
}
