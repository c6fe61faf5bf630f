//! Constant values and constant folding.
//!
//! Exporters compute shapes at run time (`Shape → Gather → Unsqueeze →
//! Concat → Reshape`, PyTorch's `x.view(x.size(0), -1)`) and store weights
//! behind `DequantizeLinear`. With batch fixed to 1 all of that is constant,
//! so the importer evaluates it here and the IR only ever sees plain float
//! constants. Values are held as `f64`, which represents every int64 shape
//! value and every f32 exactly; float results are rounded back to f32 after
//! each operation so folding matches ONNX's f32 arithmetic.

use anyhow::{anyhow, bail, ensure, Context, Result};
use tract_onnx::pb::NodeProto;

use super::proto::{self, attr_float, attr_int, attr_ints, attr_tensor};

/// Element class of a constant: what rounding and saturation apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dt {
    /// f16 / f32 / f64, held rounded to f32.
    Float,
    /// int8 (quantized weights; QuantizeLinear saturates to [-128, 127]).
    I8,
    /// uint8 (quantized weights; QuantizeLinear saturates to [0, 255]).
    U8,
    /// Any other integer (int64 shapes, int32 biases, bools as 0/1).
    Int,
}

impl Dt {
    fn is_float(self) -> bool {
        self == Dt::Float
    }
}

/// A constant tensor in ONNX (logical, row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct Const {
    /// Element class.
    pub dt: Dt,
    /// ONNX dims.
    pub dims: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
}

impl Const {
    /// Builds a constant, rounding values to the precision of `dt`.
    pub fn new(dt: Dt, dims: Vec<usize>, data: Vec<f64>) -> Self {
        let data = if dt.is_float() {
            data.into_iter().map(|v| v as f32 as f64).collect()
        } else {
            data.into_iter().map(f64::trunc).collect()
        };
        Const { dt, dims, data }
    }

    /// A 1-D int64 constant (shapes, axes).
    pub fn ints(values: &[i64]) -> Self {
        Const::new(
            Dt::Int,
            vec![values.len()],
            values.iter().map(|&v| v as f64).collect(),
        )
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Values as integers (shape arithmetic).
    pub fn as_i64s(&self) -> Vec<i64> {
        self.data.iter().map(|&v| v as i64).collect()
    }

    /// Values as f32 (weights).
    pub fn as_f32s(&self) -> Vec<f32> {
        self.data.iter().map(|&v| v as f32).collect()
    }

    /// The single value of a one-element constant.
    pub fn scalar(&self) -> Result<f64> {
        ensure!(
            self.numel() == 1,
            "expected a single value, got shape {:?}",
            self.dims
        );
        Ok(self.data[0])
    }
}

/// Row-major strides of `dims`.
pub fn strides(dims: &[usize]) -> Vec<usize> {
    let mut s = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * dims[i + 1];
    }
    s
}

/// Normalizes a possibly negative `axis` for a tensor of rank `rank`.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    ensure!(
        (0..r).contains(&a),
        "axis {axis} out of range for rank {rank}"
    );
    Ok(a as usize)
}

/// Numpy-style broadcast of two shapes.
pub fn broadcast_shape(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let r = a.len().max(b.len());
    let mut out = vec![0; r];
    for i in 0..r {
        let da = if i + a.len() >= r {
            a[i + a.len() - r]
        } else {
            1
        };
        let db = if i + b.len() >= r {
            b[i + b.len() - r]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => bail!("shapes {a:?} and {b:?} do not broadcast"),
        };
    }
    Ok(out)
}

/// Materializes `data` (shape `dims`) broadcast to `shape`.
pub fn broadcast_data(data: &[f64], dims: &[usize], shape: &[usize]) -> Result<Vec<f64>> {
    ensure!(
        broadcast_shape(dims, shape)? == shape,
        "cannot broadcast {dims:?} to {shape:?}"
    );
    let r = shape.len();
    let src_strides = strides(dims);
    // Stride of each output axis in the source (0 where broadcast).
    let mut bs = vec![0; r];
    for i in 0..dims.len() {
        let o = r - dims.len() + i;
        bs[o] = if dims[i] == 1 { 0 } else { src_strides[i] };
    }
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        let off: usize = idx.iter().zip(&bs).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for ax in (0..r).rev() {
            idx[ax] += 1;
            if idx[ax] < shape[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    Ok(out)
}

/// Permutes row-major `data` of shape `dims`: output axis `k` is input axis
/// `perm[k]`.
pub fn transpose_data<T: Copy>(data: &[T], dims: &[usize], perm: &[usize]) -> Vec<T> {
    let r = dims.len();
    let in_strides = strides(dims);
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let s: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        let off: usize = idx.iter().zip(&s).map(|(i, s)| i * s).sum();
        out.push(data[off]);
        for ax in (0..r).rev() {
            idx[ax] += 1;
            if idx[ax] < out_dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    out
}

/// Checks `perm` is a permutation of `0..rank`.
pub fn check_perm(perm: &[usize], rank: usize) -> Result<()> {
    let mut seen = vec![false; rank];
    ensure!(
        perm.len() == rank,
        "permutation {perm:?} does not match rank {rank}"
    );
    for &p in perm {
        ensure!(p < rank && !seen[p], "invalid permutation {perm:?}");
        seen[p] = true;
    }
    Ok(())
}

/// `Reshape` target resolution: `0` copies the input dim (unless
/// `allowzero`), `-1` is inferred.
pub fn resolve_reshape(input: &[usize], target: &[i64], allowzero: bool) -> Result<Vec<usize>> {
    let n: usize = input.iter().product();
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &t) in target.iter().enumerate() {
        match t {
            -1 => {
                ensure!(infer.is_none(), "reshape target {target:?} has two -1");
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => {
                let d = input.get(i).ok_or_else(|| {
                    anyhow!("reshape target {target:?}: 0 at axis {i} past input rank")
                })?;
                out.push(*d);
            }
            t if t >= 0 => out.push(t as usize),
            t => bail!("invalid reshape dim {t}"),
        }
    }
    if let Some(i) = infer {
        let known: usize = out.iter().product();
        ensure!(
            known > 0 && n % known == 0,
            "cannot reshape {input:?} to {target:?}"
        );
        out[i] = n / known;
    }
    ensure!(
        out.iter().product::<usize>() == n,
        "cannot reshape {input:?} ({n} values) to {target:?}"
    );
    Ok(out)
}

/// `Flatten(axis)` output shape.
pub fn flatten_shape(input: &[usize], axis: i64) -> Result<Vec<usize>> {
    let r = input.len() as i64;
    let a = if axis < 0 { axis + r } else { axis };
    ensure!(
        (0..=r).contains(&a),
        "Flatten axis {axis} out of range for rank {r}"
    );
    let a = a as usize;
    Ok(vec![
        input[..a].iter().product(),
        input[a..].iter().product(),
    ])
}

/// `Squeeze` output shape (`axes == None`: drop every 1).
pub fn squeeze_shape(input: &[usize], axes: Option<&[i64]>) -> Result<Vec<usize>> {
    match axes {
        None => Ok(input.iter().copied().filter(|&d| d != 1).collect()),
        Some(axes) => {
            let axes: Vec<usize> = axes
                .iter()
                .map(|&a| norm_axis(a, input.len()))
                .collect::<Result<_>>()?;
            for &a in &axes {
                ensure!(input[a] == 1, "cannot squeeze axis {a} of shape {input:?}");
            }
            Ok(input
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect())
        }
    }
}

/// `Unsqueeze` output shape.
pub fn unsqueeze_shape(input: &[usize], axes: &[i64]) -> Result<Vec<usize>> {
    let r = input.len() + axes.len();
    let mut axes: Vec<usize> = axes
        .iter()
        .map(|&a| norm_axis(a, r))
        .collect::<Result<_>>()?;
    axes.sort_unstable();
    axes.dedup();
    ensure!(axes.len() + input.len() == r, "duplicate Unsqueeze axes");
    let mut it = input.iter();
    Ok((0..r)
        .map(|i| {
            if axes.contains(&i) {
                1
            } else {
                it.next().copied().unwrap_or(1)
            }
        })
        .collect())
}

/// The axes of Squeeze/Unsqueeze: attribute before opset 13, input after.
pub fn axes_param(
    node: &NodeProto,
    axes_input: Option<&Const>,
    opset: i64,
) -> Result<Option<Vec<i64>>> {
    if opset < 13 {
        attr_ints(node, "axes")
    } else {
        Ok(axes_input.map(Const::as_i64s))
    }
}

/// `Shape` of a tensor with dims `dims` (opset 15 `start`/`end` honoured).
pub fn shape_of(node: &NodeProto, dims: &[usize]) -> Result<Const> {
    let r = dims.len() as i64;
    let clamp = |v: i64| -> usize {
        let v = if v < 0 { v + r } else { v };
        v.clamp(0, r) as usize
    };
    let start = clamp(attr_int(node, "start")?.unwrap_or(0));
    let end = clamp(attr_int(node, "end")?.unwrap_or(r));
    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    Ok(Const::ints(if start < end {
        &dims[start..end]
    } else {
        &[]
    }))
}

fn need(inputs: &[Option<Const>], i: usize) -> Result<&Const> {
    inputs
        .get(i)
        .and_then(Option::as_ref)
        .ok_or_else(|| anyhow!("missing input #{i}"))
}

fn binary(a: &Const, b: &Const, dt: Dt, f: impl Fn(f64, f64) -> f64) -> Result<Const> {
    let shape = broadcast_shape(&a.dims, &b.dims)?;
    let x = broadcast_data(&a.data, &a.dims, &shape)?;
    let y = broadcast_data(&b.data, &b.dims, &shape)?;
    Ok(Const::new(
        dt,
        shape,
        x.iter().zip(&y).map(|(&x, &y)| f(x, y)).collect(),
    ))
}

/// `Reduce{Sum,Prod,Mean,Max,Min}` of a constant over `axes` (all when
/// `None`).
fn reduce(x: &Const, axes: Option<&[i64]>, keepdims: bool, op: &str) -> Result<Const> {
    let r = x.dims.len();
    let axes: Vec<usize> = match axes {
        Some(a) => a.iter().map(|&v| norm_axis(v, r)).collect::<Result<_>>()?,
        None => (0..r).collect(),
    };
    let kept: Vec<usize> = (0..r)
        .map(|i| if axes.contains(&i) { 1 } else { x.dims[i] })
        .collect();
    let n_out: usize = kept.iter().product();
    let count = (x.numel() / n_out.max(1)).max(1) as f64;
    let init = match op {
        "ReduceProd" => 1.0,
        "ReduceMax" => f64::NEG_INFINITY,
        "ReduceMin" => f64::INFINITY,
        _ => 0.0,
    };
    let mut acc = vec![init; n_out];
    for (i, &v) in x.data.iter().enumerate() {
        // Output index: the input index with reduced coordinates zeroed.
        let (mut rem, mut o, mut stride) = (i, 0, 1);
        for d in (0..r).rev() {
            let c = rem % x.dims[d];
            rem /= x.dims[d];
            o += if axes.contains(&d) { 0 } else { c * stride };
            stride *= kept[d];
        }
        acc[o] = match op {
            "ReduceProd" => acc[o] * v,
            "ReduceMax" => acc[o].max(v),
            "ReduceMin" => acc[o].min(v),
            _ => acc[o] + v,
        };
    }
    if op == "ReduceMean" {
        acc.iter_mut().for_each(|v| *v /= count);
    }
    let dims = if keepdims {
        kept
    } else {
        (0..r)
            .filter(|i| !axes.contains(i))
            .map(|i| x.dims[i])
            .collect()
    };
    Ok(Const::new(x.dt, dims, acc))
}

fn unary(a: &Const, f: impl Fn(f64) -> f64) -> Const {
    Const::new(a.dt, a.dims.clone(), a.data.iter().map(|&v| f(v)).collect())
}

fn arith_dt(a: &Const, b: &Const) -> Dt {
    if a.dt.is_float() || b.dt.is_float() {
        Dt::Float
    } else {
        Dt::Int
    }
}

fn gather(data: &Const, indices: &Const, axis: i64) -> Result<Const> {
    let axis = norm_axis(axis, data.dims.len())?;
    let d = data.dims[axis] as i64;
    let idx: Vec<usize> = indices
        .as_i64s()
        .into_iter()
        .map(|i| {
            let j = if i < 0 { i + d } else { i };
            ensure!(
                (0..d).contains(&j),
                "Gather index {i} out of range for dim {d}"
            );
            Ok(j as usize)
        })
        .collect::<Result<_>>()?;
    let outer: usize = data.dims[..axis].iter().product();
    let inner: usize = data.dims[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * idx.len() * inner);
    for o in 0..outer {
        for &j in &idx {
            let base = (o * data.dims[axis] + j) * inner;
            out.extend_from_slice(&data.data[base..base + inner]);
        }
    }
    let mut dims = data.dims[..axis].to_vec();
    dims.extend_from_slice(&indices.dims);
    dims.extend_from_slice(&data.dims[axis + 1..]);
    Ok(Const {
        dt: data.dt,
        dims,
        data: out,
    })
}

fn concat(parts: &[&Const], axis: i64) -> Result<Const> {
    let first = parts.first().ok_or_else(|| anyhow!("Concat of nothing"))?;
    let rank = first.dims.len();
    let axis = norm_axis(axis, rank)?;
    let mut dims = first.dims.clone();
    dims[axis] = 0;
    for p in parts {
        ensure!(
            p.dims.len() == rank,
            "Concat of ranks {rank} and {}",
            p.dims.len()
        );
        for (i, (&a, &b)) in p.dims.iter().zip(&first.dims).enumerate() {
            ensure!(
                i == axis || a == b,
                "Concat of shapes {:?} and {:?}",
                first.dims,
                p.dims
            );
        }
        dims[axis] += p.dims[axis];
    }
    let outer: usize = dims[..axis].iter().product();
    let mut out = Vec::new();
    for o in 0..outer {
        for p in parts {
            let chunk: usize = p.dims[axis..].iter().product();
            out.extend_from_slice(&p.data[o * chunk..(o + 1) * chunk]);
        }
    }
    let dt = if parts.iter().any(|p| p.dt.is_float()) {
        Dt::Float
    } else {
        first.dt
    };
    Ok(Const::new(dt, dims, out))
}

fn slice(
    data: &Const,
    starts: &[i64],
    ends: &[i64],
    axes: Option<Vec<i64>>,
    steps: Option<Vec<i64>>,
) -> Result<Const> {
    let r = data.dims.len();
    ensure!(
        starts.len() == ends.len(),
        "Slice starts/ends lengths differ"
    );
    let axes = axes.unwrap_or_else(|| (0..starts.len() as i64).collect());
    let steps = steps.unwrap_or_else(|| vec![1; starts.len()]);
    ensure!(
        axes.len() == starts.len() && steps.len() == starts.len(),
        "Slice parameter lengths differ"
    );
    // Per axis: (start, step, count).
    let mut plan: Vec<(i64, i64, usize)> = data.dims.iter().map(|&d| (0, 1, d)).collect();
    for i in 0..starts.len() {
        let ax = norm_axis(axes[i], r)?;
        let d = data.dims[ax] as i64;
        let step = steps[i];
        ensure!(step != 0, "Slice step 0");
        let fix = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
        let (s, e) = if step > 0 {
            (fix(starts[i]).clamp(0, d), fix(ends[i]).clamp(0, d))
        } else {
            (
                fix(starts[i]).clamp(0, d - 1),
                fix(ends[i]).clamp(-1, d - 1),
            )
        };
        let count = if step > 0 {
            if e > s {
                (e - s + step - 1) / step
            } else {
                0
            }
        } else if s > e {
            (s - e + (-step) - 1) / (-step)
        } else {
            0
        };
        plan[ax] = (s, step, count as usize);
    }
    let dims: Vec<usize> = plan.iter().map(|p| p.2).collect();
    let st = strides(&data.dims);
    let n: usize = dims.iter().product();
    let mut out = Vec::with_capacity(n);
    let mut idx = vec![0usize; r];
    for _ in 0..n {
        let off: i64 = (0..r)
            .map(|a| (plan[a].0 + plan[a].1 * idx[a] as i64) * st[a] as i64)
            .sum();
        out.push(data.data[off as usize]);
        for ax in (0..r).rev() {
            idx[ax] += 1;
            if idx[ax] < dims[ax] {
                break;
            }
            idx[ax] = 0;
        }
    }
    Ok(Const {
        dt: data.dt,
        dims,
        data: out,
    })
}

/// Broadcast parameter (`scale`, `zero_point`) of Quantize/DequantizeLinear
/// to `x`'s shape: per tensor, or per `axis`.
fn qparam(p: &Const, x_dims: &[usize], axis: i64) -> Result<Vec<f64>> {
    if p.numel() == 1 {
        return Ok(vec![p.data[0]; x_dims.iter().product()]);
    }
    let axis = norm_axis(axis, x_dims.len())?;
    ensure!(
        p.dims.len() == 1 && p.dims[0] == x_dims[axis],
        "per-axis parameter of shape {:?} does not match axis {axis} of {x_dims:?}",
        p.dims
    );
    let mut shape = vec![1; x_dims.len()];
    shape[axis] = x_dims[axis];
    broadcast_data(&p.data, &shape, x_dims)
}

fn check_block_size(node: &NodeProto) -> Result<()> {
    ensure!(
        attr_int(node, "block_size")?.unwrap_or(0) == 0,
        "blocked quantization (block_size) is not supported"
    );
    Ok(())
}

/// `DequantizeLinear` of a constant: `(x - zero_point) · scale` in f32.
pub fn dequantize(node: &NodeProto, x: &Const, scale: &Const, zp: Option<&Const>) -> Result<Const> {
    check_block_size(node)?;
    let axis = attr_int(node, "axis")?.unwrap_or(1);
    let s = qparam(scale, &x.dims, axis)?;
    let z = match zp {
        Some(z) => qparam(z, &x.dims, axis)?,
        None => vec![0.0; x.numel()],
    };
    let data = (0..x.numel())
        .map(|i| ((x.data[i] - z[i]) as f32 * s[i] as f32) as f64)
        .collect();
    Ok(Const::new(Dt::Float, x.dims.clone(), data))
}

/// `QuantizeLinear` of a constant: round half to even, saturate to the
/// zero point's type (uint8 when absent).
pub fn quantize(node: &NodeProto, x: &Const, scale: &Const, zp: Option<&Const>) -> Result<Const> {
    check_block_size(node)?;
    let axis = attr_int(node, "axis")?.unwrap_or(1);
    let s = qparam(scale, &x.dims, axis)?;
    let (dt, z) = match zp {
        Some(z) => (z.dt, qparam(z, &x.dims, axis)?),
        None => (Dt::U8, vec![0.0; x.numel()]),
    };
    let (lo, hi) = match dt {
        Dt::I8 => (-128.0, 127.0),
        Dt::U8 => (0.0, 255.0),
        _ => bail!("QuantizeLinear to a type other than int8/uint8"),
    };
    let data = (0..x.numel())
        .map(|i| {
            let q = (x.data[i] as f32 / s[i] as f32).round_ties_even() as f64 + z[i];
            q.clamp(lo, hi)
        })
        .collect();
    Ok(Const::new(dt, x.dims.clone(), data))
}

/// Builds the value of a `Constant` node.
pub fn constant_node(node: &NodeProto, dir: Option<&str>) -> Result<Const> {
    if let Some(t) = attr_tensor(node, "value")? {
        return proto::load_tensor(t, dir);
    }
    if let Some(v) = attr_float(node, "value_float")? {
        return Ok(Const::new(Dt::Float, vec![], vec![v as f64]));
    }
    if let Some(v) = proto::attr_floats(node, "value_floats")? {
        return Ok(Const::new(
            Dt::Float,
            vec![v.len()],
            v.iter().map(|&x| x as f64).collect(),
        ));
    }
    if let Some(v) = attr_int(node, "value_int")? {
        return Ok(Const::new(Dt::Int, vec![], vec![v as f64]));
    }
    if let Some(v) = attr_ints(node, "value_ints")? {
        return Ok(Const::ints(&v));
    }
    bail!("Constant without a supported value attribute (sparse and string constants are not supported)")
}

/// Cast target class from the `to` attribute.
fn cast_dt(to: i64) -> Result<Dt> {
    Ok(match proto::dt_of(to as i32)? {
        Dt::Float => Dt::Float,
        _ => match to {
            3 => Dt::I8,
            2 => Dt::U8,
            _ => Dt::Int,
        },
    })
}

/// Ops whose outputs are computed here when all their inputs are constant.
pub const FOLDABLE: &[&str] = &[
    "Identity",
    "Dropout",
    "Cast",
    "Shape",
    "Size",
    "Gather",
    "Unsqueeze",
    "Squeeze",
    "Flatten",
    "Reshape",
    "Concat",
    "Slice",
    "ConstantOfShape",
    "Range",
    "Expand",
    "Transpose",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Min",
    "Max",
    "Equal",
    "Less",
    "Greater",
    "Where",
    "Neg",
    "Sqrt",
    "Reciprocal",
    "Abs",
    "Floor",
    "Ceil",
    "Exp",
    "Log",
    "Relu",
    "Sigmoid",
    "Tanh",
    "Not",
    "ReduceSum",
    "ReduceProd",
    "ReduceMean",
    "ReduceMax",
    "ReduceMin",
    "DequantizeLinear",
    "QuantizeLinear",
];

/// Evaluates `node` on constant `inputs` (`None` for absent optional
/// inputs). Returns one value per node output that can be computed; errors
/// when the op is not in [`FOLDABLE`].
pub fn fold(node: &NodeProto, inputs: &[Option<Const>], opset: i64) -> Result<Vec<Const>> {
    let op = node.op_type.as_str();
    let x = || need(inputs, 0);
    let out = match op {
        "Identity" | "Dropout" => x()?.clone(),
        "Cast" => {
            let to = attr_int(node, "to")?.ok_or_else(|| anyhow!("Cast without 'to'"))?;
            let dt = cast_dt(to)?;
            let a = x()?;
            let data = if to == 9 {
                a.data.iter().map(|&v| (v != 0.0) as u8 as f64).collect()
            } else {
                a.data.clone()
            };
            Const::new(dt, a.dims.clone(), data)
        }
        "Shape" => shape_of(node, &x()?.dims)?,
        "Size" => Const::new(Dt::Int, vec![], vec![x()?.numel() as f64]),
        "Gather" => gather(x()?, need(inputs, 1)?, attr_int(node, "axis")?.unwrap_or(0))?,
        "Unsqueeze" => {
            let a = x()?;
            let axes = axes_param(node, inputs.get(1).and_then(Option::as_ref), opset)?
                .ok_or_else(|| anyhow!("Unsqueeze without axes"))?;
            Const {
                dims: unsqueeze_shape(&a.dims, &axes)?,
                ..a.clone()
            }
        }
        "Squeeze" => {
            let a = x()?;
            let axes = axes_param(node, inputs.get(1).and_then(Option::as_ref), opset)?;
            Const {
                dims: squeeze_shape(&a.dims, axes.as_deref())?,
                ..a.clone()
            }
        }
        "Flatten" => {
            let a = x()?;
            Const {
                dims: flatten_shape(&a.dims, attr_int(node, "axis")?.unwrap_or(1))?,
                ..a.clone()
            }
        }
        "Reshape" => {
            let a = x()?;
            let target = if opset < 5 {
                attr_ints(node, "shape")?.ok_or_else(|| anyhow!("Reshape without shape"))?
            } else {
                need(inputs, 1)?.as_i64s()
            };
            let allowzero = attr_int(node, "allowzero")?.unwrap_or(0) != 0;
            Const {
                dims: resolve_reshape(&a.dims, &target, allowzero)?,
                ..a.clone()
            }
        }
        "Concat" => {
            let parts: Vec<&Const> = inputs.iter().flatten().collect();
            let axis = attr_int(node, "axis")?.ok_or_else(|| anyhow!("Concat without axis"))?;
            concat(&parts, axis)?
        }
        "Slice" => {
            let a = x()?;
            if opset < 10 {
                let starts =
                    attr_ints(node, "starts")?.ok_or_else(|| anyhow!("Slice without starts"))?;
                let ends = attr_ints(node, "ends")?.ok_or_else(|| anyhow!("Slice without ends"))?;
                slice(a, &starts, &ends, attr_ints(node, "axes")?, None)?
            } else {
                let opt = |i: usize| inputs.get(i).and_then(Option::as_ref).map(Const::as_i64s);
                slice(
                    a,
                    &need(inputs, 1)?.as_i64s(),
                    &need(inputs, 2)?.as_i64s(),
                    opt(3),
                    opt(4),
                )?
            }
        }
        "ConstantOfShape" => {
            let dims: Vec<usize> = x()?
                .as_i64s()
                .into_iter()
                .map(|d| usize::try_from(d).map_err(|_| anyhow!("negative dim {d}")))
                .collect::<Result<_>>()?;
            let v = match attr_tensor(node, "value")? {
                Some(t) => proto::load_tensor(t, None)?,
                None => Const::new(Dt::Float, vec![], vec![0.0]),
            };
            let n = dims.iter().product();
            Const::new(v.dt, dims, vec![v.scalar()?; n])
        }
        "Range" => {
            let (s, l, d) = (
                x()?.scalar()?,
                need(inputs, 1)?.scalar()?,
                need(inputs, 2)?.scalar()?,
            );
            ensure!(d != 0.0, "Range with delta 0");
            let n = ((l - s) / d).ceil().max(0.0) as usize;
            ensure!(n <= 1 << 24, "Range too long");
            Const::new(x()?.dt, vec![n], (0..n).map(|i| s + i as f64 * d).collect())
        }
        "Expand" => {
            let a = x()?;
            let target: Vec<usize> = need(inputs, 1)?
                .as_i64s()
                .iter()
                .map(|&d| d.max(0) as usize)
                .collect();
            let shape = broadcast_shape(&a.dims, &target)?;
            Const {
                data: broadcast_data(&a.data, &a.dims, &shape)?,
                dims: shape,
                dt: a.dt,
            }
        }
        "Transpose" => {
            let a = x()?;
            let r = a.dims.len();
            let perm: Vec<usize> = match attr_ints(node, "perm")? {
                Some(p) => p.iter().map(|&v| norm_axis(v, r)).collect::<Result<_>>()?,
                None => (0..r).rev().collect(),
            };
            check_perm(&perm, r)?;
            Const {
                dt: a.dt,
                data: transpose_data(&a.data, &a.dims, &perm),
                dims: perm.iter().map(|&p| a.dims[p]).collect(),
            }
        }
        "Add" | "Sub" | "Mul" | "Div" | "Pow" | "Min" | "Max" => {
            let present: Vec<&Const> = inputs.iter().flatten().collect();
            let first = present
                .first()
                .copied()
                .ok_or_else(|| anyhow!("{op} of nothing"))?;
            let mut acc = first.clone();
            for b in &present[1..] {
                let dt = arith_dt(&acc, b);
                let int = !dt.is_float();
                acc = binary(&acc, b, dt, |x, y| match op {
                    "Add" => x + y,
                    "Sub" => x - y,
                    "Mul" => x * y,
                    "Div" if int => {
                        if y == 0.0 {
                            0.0
                        } else {
                            (x / y).trunc()
                        }
                    }
                    "Div" => (x as f32 / y as f32) as f64,
                    "Pow" => x.powf(y),
                    "Min" => x.min(y),
                    _ => x.max(y),
                })?;
            }
            acc
        }
        "Equal" | "Less" | "Greater" => binary(x()?, need(inputs, 1)?, Dt::Int, |a, b| {
            let r = match op {
                "Equal" => a == b,
                "Less" => a < b,
                _ => a > b,
            };
            r as u8 as f64
        })?,
        "Where" => {
            let (c, a, b) = (x()?, need(inputs, 1)?, need(inputs, 2)?);
            let shape = broadcast_shape(&broadcast_shape(&c.dims, &a.dims)?, &b.dims)?;
            let cd = broadcast_data(&c.data, &c.dims, &shape)?;
            let ad = broadcast_data(&a.data, &a.dims, &shape)?;
            let bd = broadcast_data(&b.data, &b.dims, &shape)?;
            let data = (0..cd.len())
                .map(|i| if cd[i] != 0.0 { ad[i] } else { bd[i] })
                .collect();
            Const::new(arith_dt(a, b), shape, data)
        }
        "ReduceSum" | "ReduceProd" | "ReduceMean" | "ReduceMax" | "ReduceMin" => {
            // Axes: an input from opset 13 (ReduceSum) / 18 (the others).
            let from = if op == "ReduceSum" { 13 } else { 18 };
            let axes = if opset < from {
                attr_ints(node, "axes")?
            } else {
                inputs.get(1).and_then(Option::as_ref).map(Const::as_i64s)
            };
            let noop = attr_int(node, "noop_with_empty_axes")?.unwrap_or(0) != 0;
            match axes {
                Some(a) if !a.is_empty() => reduce(
                    x()?,
                    Some(&a),
                    attr_int(node, "keepdims")?.unwrap_or(1) != 0,
                    op,
                )?,
                _ if noop => x()?.clone(),
                _ => reduce(
                    x()?,
                    None,
                    attr_int(node, "keepdims")?.unwrap_or(1) != 0,
                    op,
                )?,
            }
        }
        "Neg" => unary(x()?, |v| -v),
        "Abs" => unary(x()?, f64::abs),
        "Floor" => unary(x()?, f64::floor),
        "Ceil" => unary(x()?, f64::ceil),
        "Relu" => unary(x()?, |v| v.max(0.0)),
        "Not" => unary(x()?, |v| (v == 0.0) as u8 as f64),
        "Sqrt" => unary(x()?, |v| (v as f32).sqrt() as f64),
        "Reciprocal" => unary(x()?, |v| (1.0 / v as f32) as f64),
        "Exp" => unary(x()?, |v| (v as f32).exp() as f64),
        "Log" => unary(x()?, |v| (v as f32).ln() as f64),
        "Sigmoid" => unary(x()?, |v| (1.0 / (1.0 + (-v as f32).exp())) as f64),
        "Tanh" => unary(x()?, |v| (v as f32).tanh() as f64),
        "DequantizeLinear" => dequantize(
            node,
            x()?,
            need(inputs, 1)?,
            inputs.get(2).and_then(Option::as_ref),
        )?,
        "QuantizeLinear" => quantize(
            node,
            x()?,
            need(inputs, 1)?,
            inputs.get(2).and_then(Option::as_ref),
        )?,
        _ => bail!("cannot evaluate {op} on constant inputs"),
    };
    Ok(vec![out])
}

/// Wraps [`fold`] with the node's identity in the error.
pub fn fold_node(
    node: &NodeProto,
    name: &str,
    inputs: &[Option<Const>],
    opset: i64,
) -> Result<Vec<Const>> {
    fold(node, inputs, opset)
        .with_context(|| format!("folding constant node '{name}' ({})", node.op_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(dims: &[usize], data: &[f64]) -> Const {
        Const::new(Dt::Float, dims.to_vec(), data.to_vec())
    }

    #[test]
    fn reduce_hand_computed() {
        // [[1, 2, 3], [4, 5, 6]]
        let x = c(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let sum0 = reduce(&x, Some(&[0]), false, "ReduceSum").unwrap();
        assert_eq!((sum0.dims, sum0.data), (vec![3], vec![5.0, 7.0, 9.0]));
        let prod1 = reduce(&x, Some(&[-1]), true, "ReduceProd").unwrap();
        assert_eq!((prod1.dims, prod1.data), (vec![2, 1], vec![6.0, 120.0]));
        let mean = reduce(&x, None, false, "ReduceMean").unwrap();
        assert_eq!((mean.dims, mean.data), (vec![], vec![3.5]));
        let max = reduce(&x, Some(&[1]), false, "ReduceMax").unwrap();
        assert_eq!(max.data, vec![3.0, 6.0]);
        let min = reduce(&x, Some(&[0, 1]), true, "ReduceMin").unwrap();
        assert_eq!((min.dims, min.data), (vec![1, 1], vec![1.0]));
        assert!(reduce(&x, Some(&[2]), true, "ReduceSum").is_err());
    }
}
