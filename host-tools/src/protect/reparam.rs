//! Keyed channel reparameterization (PARDEF layer 1), on a plain artifact.
//!
//! For a Conv/FC *producer* whose output channels reach exactly one
//! Conv/FC *consumer* through per-channel ops only, a keyed permutation `π`
//! of the `C` channels is applied to everything that is indexed by that
//! channel:
//!
//! - the producer's output channels: weight rows, bias, requantization
//!   multipliers and shifts (new channel `j` = old channel `π(j)`);
//! - depthwise convolutions on the way (channel multiplier 1): their weight
//!   rows, bias, multipliers and shifts, with the same `π`;
//! - the consumer's input channels: the innermost axis of its `[O,KH,KW,C]`
//!   weights, or, for a fully connected consumer reading a flattened NHWC
//!   map, every input feature `k` by its channel `k mod C` (the channel is
//!   the fastest storage axis).
//!
//! Weights move as elements, whatever their storage: int8 in place, packed
//! int4 (W4A8) unpacked, permuted and repacked (a row of odd length does
//! not start on a byte boundary).
//!
//! Max and average pooling, table lookups (sigmoid, tanh, standalone clamps)
//! and fused ReLU/ReLU6 clamps act on each channel alone with per-tensor
//! quantization, so the permuted model computes the permuted activations,
//! and the consumer's i32 sums (wrapping, hence associative) are the same
//! sums in another order: the outputs are **bit-identical**. The graph,
//! tensor records and layout do not change — only weight bytes move.
//!
//! A chain is skipped (left as it is) whenever it cannot be tracked for
//! sure: the tensor is the model output, has several readers or is read by
//! anything else (Add, Mul, Concat, Softmax, Transpose, a grouped
//! convolution, …), a reshape changes the channel axis, or a constant it
//! would rewrite is shared.
//!
//! **No positive scaling.** PARDEF also scales each channel by a keyed
//! positive factor. In int8 that is not exact: the producer's requantized
//! output is rounded and saturated on a per-tensor grid, so a scaled
//! channel stores different activations, and folding a factor into the Q31
//! multiplier and shift rounds twice. The permutation alone carries the
//! protection: the stored bit at a given address belongs to a different
//! weight than in the public model, and the attacker without the key does
//! not know which.

use anyhow::{anyhow, Result};
use chacha20::rand_core::{Rng, SeedableRng};
use chacha20::ChaCha20Rng;
use std::ops::Range;
use sturdy_runtime::format::*;
use sturdy_runtime::int4::{self, PackedI4};
use sturdy_runtime::Artifact;

use crate::fsutil::AlignedBytes;

/// One permuted channel space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// Op index of the Conv/FC producing the channels.
    pub producer: usize,
    /// Depthwise convolutions on the way (permuted alike).
    pub depthwise: Vec<usize>,
    /// Op index of the Conv/FC consuming them.
    pub consumer: usize,
    /// Channels `C`.
    pub channels: usize,
}

/// Which producers are permuted and why the others are not.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Chains that will be permuted, in op order.
    pub chains: Vec<Chain>,
    /// Conv/FC ops left as they are, with the reason.
    pub skipped: Vec<(usize, String)>,
}

fn arena_range(t: &TensorRecord) -> Range<usize> {
    t.offset as usize..(t.offset + t.len) as usize
}

fn overlaps(a: &Range<usize>, b: &Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

fn inputs(op: &OpRecord) -> &[u16] {
    &op.inputs[..(op.input_count as usize).min(MAX_OP_INPUTS)]
}

fn last_dim(t: &TensorRecord) -> usize {
    t.dims[(t.rank as usize).clamp(1, 4) - 1] as usize
}

struct Graph<'a> {
    tensors: &'a [TensorRecord],
    ops: &'a [OpRecord],
    output: usize,
    produced: Vec<bool>,
    uses: Vec<usize>,
}

impl<'a> Graph<'a> {
    fn new(a: &Artifact<'a>) -> Self {
        let (tensors, ops) = (a.tensors(), a.ops());
        let mut produced = vec![false; tensors.len()];
        let mut uses = vec![0usize; tensors.len()];
        for op in ops {
            if let Some(p) = produced.get_mut(op.output as usize) {
                *p = true;
            }
            for &t in inputs(op) {
                if let Some(u) = uses.get_mut(t as usize) {
                    *u += 1;
                }
            }
        }
        Graph {
            tensors,
            ops,
            output: a.graph().output as usize,
            produced,
            uses,
        }
    }

    fn tensor(&self, t: u16) -> Result<&TensorRecord, String> {
        self.tensors
            .get(t as usize)
            .ok_or_else(|| format!("tensor {t} out of range"))
    }

    /// The one reader of the activation produced by op `i`: (op index, the
    /// tensor record it reads, which may be a reshape alias).
    fn sole_reader(&self, i: usize) -> Result<(usize, u16), String> {
        let out = self.ops[i].output;
        let t = self.tensor(out)?;
        if t.location != LOC_ARENA || t.dtype != DTYPE_I8 {
            return Err("output is not an int8 activation".into());
        }
        let range = arena_range(t);
        let is_view = |x: u16| -> bool {
            x == out
                || self.tensors.get(x as usize).is_some_and(|r| {
                    !self.produced[x as usize] && r.location == LOC_ARENA && arena_range(r) == range
                })
        };
        if is_view(self.output as u16) {
            return Err("it is the model output".into());
        }
        let mut readers = Vec::new();
        for (j, op) in self.ops.iter().enumerate().skip(i + 1) {
            for (slot, &x) in inputs(op).iter().enumerate() {
                let Some(r) = self.tensors.get(x as usize) else {
                    continue;
                };
                if r.location != LOC_ARENA || !overlaps(&arena_range(r), &range) {
                    continue;
                }
                if !is_view(x) {
                    return Err(format!("op {j} reads part of it under another shape"));
                }
                readers.push((j, slot, x));
            }
            let o = self.tensor(op.output)?;
            if overlaps(&arena_range(o), &range) {
                break; // the buffer is reused from here on
            }
        }
        match readers.as_slice() {
            [(j, 0, x)] => Ok((*j, *x)),
            [] => Err("nobody reads it".into()),
            [_] => Err("it is not the first operand of its reader".into()),
            _ => Err("it has several readers".into()),
        }
    }

    /// A constant this chain rewrites: single-use, in the weights section.
    fn owned(&self, t: u16, dtype: u8) -> Result<u16, String> {
        let r = self.tensor(t)?;
        if r.location != LOC_WEIGHTS || r.dtype != dtype {
            return Err(format!("tensor {t} is not a constant of the expected type"));
        }
        if self.uses[t as usize] != 1 {
            return Err(format!("constant {t} is shared"));
        }
        Ok(t)
    }

    /// Weights (int8 or int4), bias, multipliers and shifts of a Conv/FC
    /// op, all single-use.
    fn per_channel(&self, j: usize) -> Result<[u16; 4], String> {
        let ins = inputs(&self.ops[j]);
        if ins.len() != 5 {
            return Err(format!("op {j} does not have 5 operands"));
        }
        let weights = match self.tensor(ins[1])?.dtype {
            DTYPE_I4 => DTYPE_I4,
            _ => DTYPE_I8,
        };
        Ok([
            self.owned(ins[1], weights)?,
            self.owned(ins[2], DTYPE_I32)?,
            self.owned(ins[3], DTYPE_I32)?,
            self.owned(ins[4], DTYPE_I32)?,
        ])
    }

    fn chain(&self, i: usize) -> Result<Chain, String> {
        let op = &self.ops[i];
        match op.kind {
            OP_CONV2D if op.params[6] == 1 => {}
            OP_FULLY_CONNECTED => {}
            _ => return Err("not a dense Conv/FC".into()),
        }
        let [w, ..] = self.per_channel(i)?;
        let channels = self.tensor(w)?.dims[0] as usize;
        if last_dim(self.tensor(op.output)?) != channels || channels < 2 {
            return Err("output channels are not the last axis".into());
        }
        let mut at = i;
        let mut depthwise = Vec::new();
        loop {
            let (j, view) = self.sole_reader(at)?;
            let reader = &self.ops[j];
            let view = self.tensor(view)?;
            match reader.kind {
                OP_MAX_POOL | OP_AVERAGE_POOL => {
                    if last_dim(view) != channels
                        || last_dim(self.tensor(reader.output)?) != channels
                    {
                        return Err(format!("pool op {j} does not keep the channel axis"));
                    }
                }
                OP_LUT => {
                    if self.tensor(reader.output)?.len != view.len {
                        return Err(format!("table op {j} changes the size"));
                    }
                }
                OP_CONV2D => {
                    let [cw, ..] = self.per_channel(j)?;
                    let wd = self.tensor(cw)?.dims;
                    if view.rank != 4 || last_dim(view) != channels {
                        return Err(format!("conv op {j} reads another channel axis"));
                    }
                    let groups = reader.params[6] as usize;
                    if groups == 1 && wd[3] as usize == channels {
                        return Ok(Chain {
                            producer: i,
                            depthwise,
                            consumer: j,
                            channels,
                        });
                    }
                    if groups == channels && wd[3] == 1 && wd[0] as usize == channels {
                        depthwise.push(j);
                    } else {
                        return Err(format!("conv op {j} is grouped"));
                    }
                }
                OP_FULLY_CONNECTED => {
                    let [fw, ..] = self.per_channel(j)?;
                    let k = self.tensor(fw)?.dims[1] as usize;
                    if k % channels != 0 || view.len as usize % k != 0 {
                        return Err(format!("FC op {j} features are not whole pixels"));
                    }
                    return Ok(Chain {
                        producer: i,
                        depthwise,
                        consumer: j,
                        channels,
                    });
                }
                kind => return Err(format!("op {j} (kind {kind}) mixes channels")),
            }
            at = j;
        }
    }
}

/// Finds the chains of `plain` that can be permuted exactly.
pub fn plan(plain: &[u8]) -> Result<Plan> {
    let aligned = AlignedBytes::new(plain);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let g = Graph::new(&a);
    let mut plan = Plan::default();
    let mut claimed = vec![false; g.ops.len()];
    for (i, op) in g.ops.iter().enumerate() {
        if op.kind != OP_CONV2D && op.kind != OP_FULLY_CONNECTED {
            continue;
        }
        match g.chain(i) {
            Ok(c) if c.depthwise.iter().any(|&d| claimed[d]) => {
                plan.skipped
                    .push((i, "depthwise op already in another chain".into()));
            }
            Ok(c) => {
                for &d in &c.depthwise {
                    claimed[d] = true;
                }
                plan.chains.push(c);
            }
            Err(why) => plan.skipped.push((i, why)),
        }
    }
    Ok(plan)
}

/// A uniformly random permutation of `0..n` other than the identity
/// (Fisher–Yates with unbiased bounded draws).
fn permutation(rng: &mut ChaCha20Rng, n: usize) -> Vec<usize> {
    loop {
        let mut p: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let bound = (i + 1) as u64;
            let zone = u64::MAX - u64::MAX % bound;
            let r = loop {
                let r = rng.next_u64();
                if r < zone {
                    break r % bound;
                }
            };
            p.swap(i, r as usize);
        }
        if n < 2 || p.iter().enumerate().any(|(i, &v)| i != v) {
            return p;
        }
    }
}

/// Rows of a tensor's elements: row `j` becomes old row `perm[j]`.
fn permute_rows<T: Copy>(elements: &mut [T], perm: &[usize]) {
    let row = elements.len() / perm.len();
    let old = elements.to_vec();
    for (j, &src) in perm.iter().enumerate() {
        elements[j * row..(j + 1) * row].copy_from_slice(&old[src * row..(src + 1) * row]);
    }
}

/// Innermost groups of `perm.len()` elements: element `g·C + j` becomes
/// old element `g·C + perm[j]`.
fn permute_inner<T: Copy>(elements: &mut [T], perm: &[usize]) {
    let c = perm.len();
    for group in elements.chunks_exact_mut(c) {
        let old = group.to_vec();
        for (j, &src) in perm.iter().enumerate() {
            group[j] = old[src];
        }
    }
}

/// Runs `f` over the elements of constant `t`, stored in `bytes`: int4
/// unpacked into codes and repacked after, anything else as bytes (a row
/// of an int32 tensor is then its bytes, which permute alike).
fn with_elements(bytes: &mut [u8], t: &TensorRecord, f: impl FnOnce(&mut [i8])) -> Result<()> {
    if t.dtype != DTYPE_I4 {
        f(bytemuck::cast_slice_mut(bytes));
        return Ok(());
    }
    let count = t.dims.iter().map(|&d| d as usize).product();
    let view = PackedI4::new(bytes, count).ok_or_else(|| anyhow!("bad int4 tensor"))?;
    let mut codes: Vec<i8> = (0..count).map(|i| view.get(i) as i8).collect();
    f(&mut codes);
    for (b, packed) in bytes.iter_mut().zip(int4::pack(&codes)) {
        *b = packed;
    }
    Ok(())
}

/// Permutes `plain`'s channels with permutations drawn from `seed`
/// (ChaCha20, one per chain in op order). Returns the new artifact (same
/// length and layout, metadata untouched) and the plan applied.
pub fn reparameterize(plain: &[u8], seed: &[u8; 32]) -> Result<(Vec<u8>, Plan)> {
    let plan = plan(plain)?;
    let aligned = AlignedBytes::new(plain);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let base = a
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_WEIGHTS)
        .map_or(0, |s| s.offset as usize);
    let (tensors, ops) = (a.tensors(), a.ops());
    let span = |t: u16| {
        let r = &tensors[t as usize];
        base + r.offset as usize..base + (r.offset + r.len) as usize
    };
    let mut out = plain.to_vec();
    let mut rng = ChaCha20Rng::from_seed(*seed);
    for chain in &plan.chains {
        let perm = permutation(&mut rng, chain.channels);
        for &op in std::iter::once(&chain.producer).chain(&chain.depthwise) {
            for &t in &inputs(&ops[op])[1..5] {
                let record = &tensors[t as usize];
                with_elements(&mut out[span(t)], record, |e| permute_rows(e, &perm))?;
            }
        }
        let w = inputs(&ops[chain.consumer])[1];
        let record = &tensors[w as usize];
        with_elements(&mut out[span(w)], record, |e| permute_inner(e, &perm))?;
    }
    Ok((out, plan))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_permutations_and_not_identity() {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        for n in [2, 3, 8, 64] {
            let mut p = permutation(&mut rng, n);
            assert!(p.iter().enumerate().any(|(i, &v)| i != v));
            p.sort_unstable();
            assert_eq!(p, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn row_and_inner_permutations_agree_with_their_definition() {
        let mut rows: Vec<u8> = (0..12).collect();
        permute_rows(&mut rows, &[2, 0, 1]);
        assert_eq!(rows, [8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7]);
        let mut inner: Vec<u8> = (0..6).collect();
        permute_inner(&mut inner, &[2, 0, 1]);
        assert_eq!(inner, [2, 0, 1, 5, 3, 4]);
    }

    #[test]
    fn int4_rows_of_odd_length_move_as_elements() {
        // Two rows of three codes, [1, 2, 3] and [−4, −5, −6], packed flat:
        // 1 | 2 << 4, 3 | −4 << 4, −5 | −6 << 4: row 1 starts on a high nibble.
        let record = TensorRecord {
            dtype: DTYPE_I4,
            rank: 2,
            dims: [2, 3, 1, 1],
            len: 3,
            ..bytemuck::Zeroable::zeroed()
        };
        let mut bytes: Vec<u8> = int4::pack(&[1, 2, 3, -4, -5, -6]).collect();
        assert_eq!(bytes, [0x21, 0xC3, 0xAB]);
        with_elements(&mut bytes, &record, |e| permute_rows(e, &[1, 0])).unwrap();
        assert_eq!(
            bytes,
            int4::pack(&[-4, -5, -6, 1, 2, 3]).collect::<Vec<_>>()
        );
        with_elements(&mut bytes, &record, |e| permute_inner(e, &[2, 0, 1])).unwrap();
        assert_eq!(
            bytes,
            int4::pack(&[-6, -4, -5, 3, 1, 2]).collect::<Vec<_>>()
        );
    }
}
