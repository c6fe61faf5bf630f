//! Backward passes for the runtime's ops, in code units: the gradient of
//! the loss with respect to every int8 activation code and every weight
//! code, at the activations a [`Tape`] recorded.
//!
//! Why hand-written and not an autodiff crate: the function differentiated
//! is the integer model itself. Each op is read as the real-valued map its
//! kernel rounds (`q_y ≈ z_y + M·Σ(q_x − z_x)·q_w` for Conv/FC, the
//! rescaled sum for Add, …) and differentiated there, with the
//! straight-through rule for rounding and zero gradient where the output
//! saturates at its clamp (the fused ReLU included). That needs the
//! kernels' own parameters (multipliers, zero points, tables), which an
//! autodiff graph would have to be rebuilt from anyway. The tests check the
//! gradient against loss changes the runtime really shows.

use super::tape::Tape;
use anyhow::{anyhow, Result};
use sturdy_runtime::format::TensorRecord;
use sturdy_runtime::kernels::{Activation, Broadcast};
use sturdy_runtime::{Model, OpKind, WeightData};

/// Loss gradients of one or more inferences.
#[derive(Debug, Clone, Default)]
pub struct Gradients {
    /// Per op: ∂L/∂(weight code), for Conv/FC ops (`None` otherwise).
    pub weights: Vec<Option<Vec<f32>>>,
}

impl Gradients {
    /// Zero gradients shaped for `model`.
    pub fn zeros(model: &Model<'_>) -> Result<Self> {
        let weights = (0..model.op_count())
            .map(|i| {
                Ok(match model.op(i).map_err(|e| anyhow!("{e}"))?.kind {
                    OpKind::Conv2d { weights, .. } | OpKind::FullyConnected { weights, .. } => {
                        Some(vec![0.0; weight_count(&weights)])
                    }
                    _ => None,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Gradients { weights })
    }
}

fn weight_count(w: &WeightData<'_>) -> usize {
    match w {
        WeightData::I8(w) => w.len(),
        WeightData::I4(w) => w.len(),
    }
}

fn weight(w: &WeightData<'_>, i: usize) -> f32 {
    match w {
        WeightData::I8(w) => f32::from(w[i]),
        WeightData::I4(w) => w.get(i) as f32,
    }
}

/// Real value of a Q31 multiplier and shift.
fn real_multiplier(m: i32, shift: i32) -> f32 {
    (f64::from(m) * 2f64.powi(shift - 31)) as f32
}

fn scale(r: &TensorRecord) -> f32 {
    f32::from_bits(r.scale_bits)
}

/// Propagates `seed` (∂L/∂code of tensor `from`, written by op `last`)
/// back through ops `last, last − 1, …, 0` and adds the weight gradients
/// to `grads`.
pub fn backward(
    model: &Model<'_>,
    tape: &Tape,
    last: usize,
    from: usize,
    seed: Vec<f32>,
    grads: &mut Gradients,
) -> Result<()> {
    propagate(model, tape, last, from, seed, grads).map(drop)
}

/// ∂L/∂(input code) of the model's input tensor, from `seed` (as in
/// [`backward`]): the direction a gradient-guided search for a
/// counterexample steps along (`sturdy verify`).
pub fn input_gradient(
    model: &Model<'_>,
    tape: &Tape,
    last: usize,
    from: usize,
    seed: Vec<f32>,
) -> Result<Vec<f32>> {
    Ok(gradients(model, tape, last, from, seed)?.0)
}

/// Both gradients of one backward pass from `seed`: with respect to the
/// input codes and to every weight code (the Fisher section needs both
/// per class).
pub fn gradients(
    model: &Model<'_>,
    tape: &Tape,
    last: usize,
    from: usize,
    seed: Vec<f32>,
) -> Result<(Vec<f32>, Gradients)> {
    let mut grads = Gradients::zeros(model)?;
    let mut act = propagate(model, tape, last, from, seed, &mut grads)?;
    let input = model.artifact().graph().input as usize;
    let len = model.input_len();
    let g = act[input].take().unwrap_or_else(|| vec![0.0; len]);
    Ok((g, grads))
}

/// [`backward`]'s pass; returns the gradients left at tensors no op
/// wrote (the model input among them).
fn propagate(
    model: &Model<'_>,
    tape: &Tape,
    last: usize,
    from: usize,
    seed: Vec<f32>,
    grads: &mut Gradients,
) -> Result<Vec<Option<Vec<f32>>>> {
    let tensors = model.artifact().tensors();
    let mut act: Vec<Option<Vec<f32>>> = vec![None; tensors.len()];
    act[from] = Some(seed);
    for i in (0..=last).rev() {
        let op = model.op(i).map_err(|e| anyhow!("{e}"))?;
        let out = op.record.output as usize;
        let Some(g) = act[out].take() else { continue };
        let ctx = Ctx {
            tape,
            tensors,
            inputs: &tape.inputs[i],
            record: op.record,
            one_sided: i == last,
        };
        let wgrad = grads.weights.get_mut(i).and_then(Option::as_mut);
        ctx.op(&op.kind, &g, &mut act, wgrad)
            .map_err(|e| anyhow!("backward of op {i}: {e}"))?;
    }
    Ok(act)
}

/// What one op's backward pass reads.
struct Ctx<'t> {
    tape: &'t Tape,
    tensors: &'t [TensorRecord],
    /// Canonical tensor of each input.
    inputs: &'t [Option<usize>],
    record: &'t sturdy_runtime::format::OpRecord,
    /// Whether a clamped output still passes the gradient that points back
    /// into range (the loss's own scores: a logit stuck at 127 would
    /// otherwise hide that lowering it is what breaks the model).
    one_sided: bool,
}

impl Ctx<'_> {
    fn input(&self, k: usize) -> (&[i8], &TensorRecord, Option<usize>) {
        let canon = self.inputs.get(k).copied().flatten();
        let record = &self.tensors[self.record.inputs[k] as usize];
        (canon.map_or(&[][..], |t| self.tape.get(t)), record, canon)
    }

    fn output(&self) -> (&[i8], &TensorRecord) {
        let t = self.record.output as usize;
        (self.tape.get(t), &self.tensors[t])
    }

    /// `g` with zeros where the output sits at its clamp (see
    /// [`Ctx::one_sided`] for the loss's own scores).
    fn masked(&self, g: &[f32], act: Activation) -> Vec<f32> {
        let (y, _) = self.output();
        let one_sided = self.one_sided;
        g.iter()
            .zip(y)
            .map(|(&g, &q)| {
                let inside = q > act.min && q < act.max;
                // Ascent moves q along +g: down from the top clamp, up from the bottom one.
                let back_in = one_sided && ((q >= act.max && g < 0.0) || (q <= act.min && g > 0.0));
                if inside || back_in {
                    g
                } else {
                    0.0
                }
            })
            .collect()
    }

    fn op(
        &self,
        kind: &OpKind<'_>,
        g: &[f32],
        act: &mut [Option<Vec<f32>>],
        wgrad: Option<&mut Vec<f32>>,
    ) -> Result<()> {
        let (x, xr, xc) = self.input(0);
        let mut gx = vec![0f32; x.len()];
        match kind {
            OpKind::Conv2d {
                params: p,
                weights,
                multipliers,
                shifts,
                ..
            } => {
                let g = self.masked(g, p.act);
                let mut local = vec![0f32; weight_count(weights)];
                let gw = wgrad.unwrap_or(&mut local);
                let (ocg, icg) = (p.out_c / p.groups.max(1), p.in_c / p.groups.max(1));
                for (pos, gp) in g.chunks(p.out_c).enumerate() {
                    let (oy, ox) = (pos / p.out_w, pos % p.out_w);
                    for (o, &go) in gp.iter().enumerate() {
                        if go == 0.0 {
                            continue;
                        }
                        let big_g = go * real_multiplier(multipliers[o], shifts[o]);
                        let group = o / ocg.max(1);
                        for ky in 0..p.kernel_h {
                            let iy =
                                (oy * p.stride_h + ky * p.dilation_h) as isize - p.pad_top as isize;
                            if iy < 0 || iy >= p.in_h as isize {
                                continue;
                            }
                            for kx in 0..p.kernel_w {
                                let ix = (ox * p.stride_w + kx * p.dilation_w) as isize
                                    - p.pad_left as isize;
                                if ix < 0 || ix >= p.in_w as isize {
                                    continue;
                                }
                                let xb =
                                    (iy as usize * p.in_w + ix as usize) * p.in_c + group * icg;
                                let wb = ((o * p.kernel_h + ky) * p.kernel_w + kx) * icg;
                                for ci in 0..icg {
                                    let xv = (i32::from(x[xb + ci]) + p.input_offset) as f32;
                                    gw[wb + ci] += big_g * xv;
                                    gx[xb + ci] += big_g * weight(weights, wb + ci);
                                }
                            }
                        }
                    }
                }
            }
            OpKind::FullyConnected {
                params: p,
                weights,
                multipliers,
                shifts,
                ..
            } => {
                let g = self.masked(g, p.act);
                let mut local = vec![0f32; weight_count(weights)];
                let gw = wgrad.unwrap_or(&mut local);
                let n = p.in_features;
                for (r, gr) in g.chunks(p.out_features).enumerate() {
                    let xs = &x[r * n..(r + 1) * n];
                    for (o, &go) in gr.iter().enumerate() {
                        if go == 0.0 {
                            continue;
                        }
                        let big_g = go * real_multiplier(multipliers[o], shifts[o]);
                        for (i, &xv) in xs.iter().enumerate() {
                            gw[o * n + i] += big_g * (i32::from(xv) + p.input_offset) as f32;
                            gx[r * n + i] += big_g * weight(weights, o * n + i);
                        }
                    }
                }
            }
            OpKind::Add(p) => {
                let g = self.masked(g, p.act);
                let (b, br, bc) = self.input(1);
                let s_y = scale(self.output().1);
                let (ra, rb) = (scale(xr) / s_y, scale(br) / s_y);
                let mut gb = vec![0f32; b.len()];
                for (i, &gi) in g.iter().enumerate() {
                    gx[i] += gi * ra;
                    if let Some(j) = broadcast(p.broadcast, i, b.len()) {
                        gb[j] += gi * rb;
                    }
                }
                accumulate(act, bc, gb);
            }
            OpKind::Mul(p) => {
                let g = self.masked(g, p.act);
                let (b, br, bc) = self.input(1);
                let r = scale(xr) * scale(br) / scale(self.output().1);
                let mut gb = vec![0f32; b.len()];
                for (i, &gi) in g.iter().enumerate() {
                    let Some(j) = broadcast(p.broadcast, i, b.len()) else {
                        continue;
                    };
                    gx[i] += gi * r * (i32::from(b[j]) - br.zero_point) as f32;
                    gb[j] += gi * r * (i32::from(x[i]) - xr.zero_point) as f32;
                }
                accumulate(act, bc, gb);
            }
            OpKind::MaxPool(p) | OpKind::AveragePool(p) => {
                let g = self.masked(g, p.act);
                let ratio = scale(xr) / scale(self.output().1);
                let is_max = matches!(kind, OpKind::MaxPool(_));
                pool_backward(p, x, &g, ratio, is_max, &mut gx);
            }
            OpKind::Softmax {
                rows, cols, log, ..
            } => {
                let (_, yr) = self.output();
                let (s_x, s_y) = (scale(xr), scale(yr));
                for r in 0..*rows {
                    let span = r * cols..(r + 1) * cols;
                    let z: Vec<f32> = x[span.clone()]
                        .iter()
                        .map(|&q| super::tape::real(xr, q))
                        .collect();
                    let p = softmax(&z);
                    let gy: Vec<f32> = g[span.clone()].iter().map(|&v| v / s_y).collect();
                    let dz: Vec<f32> = if log.is_some() {
                        let total: f32 = gy.iter().sum();
                        gy.iter().zip(&p).map(|(&g, &p)| g - p * total).collect()
                    } else {
                        let dot: f32 = gy.iter().zip(&p).map(|(g, p)| g * p).sum();
                        gy.iter().zip(&p).map(|(&g, &p)| p * (g - dot)).collect()
                    };
                    for (slot, d) in gx[span].iter_mut().zip(dz) {
                        *slot = d * s_x;
                    }
                }
            }
            OpKind::Lut { table } => {
                let at = |q: i32| f32::from(table[(q.clamp(-128, 127) + 128) as usize]);
                for (i, (&q, &gi)) in x.iter().zip(g).enumerate() {
                    let q = i32::from(q);
                    let (lo, hi) = ((q - 1).max(-128), (q + 1).min(127));
                    gx[i] = gi * (at(hi) - at(lo)) / (hi - lo).max(1) as f32;
                }
            }
            OpKind::Transpose(p) => {
                let d = p.in_dims;
                let strides = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1];
                let out_dims = p.perm.map(|a| d[a]);
                let perm_strides = p.perm.map(|a| strides[a]);
                let mut j = 0;
                for i0 in 0..out_dims[0] {
                    for i1 in 0..out_dims[1] {
                        for i2 in 0..out_dims[2] {
                            for i3 in 0..out_dims[3] {
                                let src = i0 * perm_strides[0]
                                    + i1 * perm_strides[1]
                                    + i2 * perm_strides[2]
                                    + i3 * perm_strides[3];
                                if let (Some(slot), Some(&gj)) = (gx.get_mut(src), g.get(j)) {
                                    *slot += gj;
                                }
                                j += 1;
                            }
                        }
                    }
                }
            }
            OpKind::Concat { outer, .. } => {
                let s_y = scale(self.output().1);
                let parts = self.inputs.len().saturating_sub(1);
                let total = g.len() / (*outer).max(1);
                let mut offset = 0;
                for k in 0..parts {
                    let (xk, rk, ck) = self.input(k);
                    let chunk = xk.len() / (*outer).max(1);
                    let ratio = scale(rk) / s_y;
                    let mut gk = vec![0f32; xk.len()];
                    for o in 0..*outer {
                        for c in 0..chunk {
                            gk[o * chunk + c] = g[o * total + offset + c] * ratio;
                        }
                    }
                    offset += chunk;
                    accumulate(act, ck, gk);
                }
                return Ok(());
            }
        }
        accumulate(act, xc, gx);
        Ok(())
    }
}

/// The `b` index element `i` of `a` pairs with.
fn broadcast(mode: Broadcast, i: usize, len: usize) -> Option<usize> {
    match mode {
        Broadcast::None => (i < len).then_some(i),
        Broadcast::PerChannel => (len > 0).then(|| i % len),
        Broadcast::Scalar => (len > 0).then_some(0),
    }
}

/// Adds `g` into the gradient of canonical tensor `t` (constants: dropped).
fn accumulate(act: &mut [Option<Vec<f32>>], t: Option<usize>, g: Vec<f32>) {
    let Some(t) = t else { return };
    match &mut act[t] {
        Some(existing) => existing.iter_mut().zip(g).for_each(|(e, v)| *e += v),
        slot => *slot = Some(g),
    }
}

fn pool_backward(
    p: &sturdy_runtime::kernels::Pool,
    x: &[i8],
    g: &[f32],
    ratio: f32,
    is_max: bool,
    gx: &mut [f32],
) {
    let c = p.channels;
    for oy in 0..p.out_h {
        for ox in 0..p.out_w {
            let taps: Vec<(usize, usize)> = (0..p.kernel_h)
                .flat_map(|ky| (0..p.kernel_w).map(move |kx| (ky, kx)))
                .filter_map(|(ky, kx)| {
                    let iy = (oy * p.stride_h + ky) as isize - p.pad_top as isize;
                    let ix = (ox * p.stride_w + kx) as isize - p.pad_left as isize;
                    (iy >= 0 && ix >= 0 && (iy as usize) < p.in_h && (ix as usize) < p.in_w)
                        .then_some((iy as usize, ix as usize))
                })
                .collect();
            let count = if p.count_include_pad {
                p.kernel_h * p.kernel_w
            } else {
                taps.len()
            };
            for ch in 0..c {
                let go = g[(oy * p.out_w + ox) * c + ch] * ratio;
                if go == 0.0 || taps.is_empty() {
                    continue;
                }
                let at = |&(iy, ix): &(usize, usize)| (iy * p.in_w + ix) * c + ch;
                if is_max {
                    // The first maximum, as the kernel keeps it.
                    let mut best = at(&taps[0]);
                    for t in &taps[1..] {
                        if x[at(t)] > x[best] {
                            best = at(t);
                        }
                    }
                    gx[best] += go;
                } else {
                    for t in &taps {
                        gx[at(t)] += go / count.max(1) as f32;
                    }
                }
            }
        }
    }
}

/// A numerically stable softmax.
pub fn softmax(z: &[f32]) -> Vec<f32> {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = z.iter().map(|&v| (v - max).exp()).collect();
    let total: f32 = e.iter().sum();
    e.iter().map(|v| v / total.max(f32::MIN_POSITIVE)).collect()
}
