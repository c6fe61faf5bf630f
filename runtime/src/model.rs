//! A fully validated model and the interpreter that runs it over one arena.
//!
//! [`Model::parse`] decodes every op record into typed kernel parameters
//! once, so a model that parses cannot fail later for structural reasons;
//! [`Model::invoke`] decodes again per op (no heap to keep them in: it is a
//! handful of comparisons per op) and calls the kernels.

use crate::arith::Requant;
use crate::artifact::Artifact;
use crate::format::*;
use crate::int4::PackedI4;
use crate::kernel_set::{self, links};
use crate::kernels::{self, Activation, ConcatInput, ConvPath};
use crate::Error;

/// What guarded inference ([`Model::invoke_guarded`]) found and did;
/// each call adds to the counts, so one report can total a test split.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GuardReport {
    /// Guarded op runs (re-runs included).
    pub ops_checked: u32,
    /// Output values outside their op's guard range, clamped into it (in
    /// the outputs kept: after a re-run, the re-run's count).
    pub values_clamped: u32,
    /// Times an op's count crossed its threshold (each trip re-verifies the
    /// op's weights through the caller's hook and re-runs the op once).
    pub trips: u32,
    /// Re-runs whose output still crossed the threshold (clamped and kept).
    pub trips_after_rerun: u32,
    /// First op that tripped, if any.
    pub first_tripped_op: Option<u32>,
}

/// A checked artifact, ready to run with the kernels of the set `K`
/// ([`kernel_set`]; every kernel by default, a firmware links only those
/// its artifact runs).
#[derive(Debug, Clone, Copy)]
pub struct Model<'a, const K: u32 = { kernel_set::ALL }> {
    artifact: Artifact<'a>,
}

/// One decoded op: typed parameters and the constants it reads, borrowed
/// from the artifact.
#[derive(Debug, Clone, Copy)]
pub struct Op<'a> {
    /// Position in execution order.
    pub index: usize,
    /// What the op computes.
    pub kind: OpKind<'a>,
    /// The record it was decoded from (tensor indices).
    pub record: &'a OpRecord,
}

/// The weights of a Conv/FC op in their stored format: the interpreter
/// picks the kernel monomorphized for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightData<'a> {
    /// `DTYPE_I8`: one weight per byte.
    I8(&'a [i8]),
    /// `DTYPE_I4`: two weights per byte, low nibble first (W4A8).
    I4(PackedI4<'a>),
}

/// The typed form of each op kind.
#[derive(Debug, Clone, Copy)]
#[allow(missing_docs)] // fields mirror the kernel signatures, documented there
pub enum OpKind<'a> {
    /// [`kernels::conv2d`].
    Conv2d {
        params: kernels::Conv2d,
        weights: WeightData<'a>,
        bias: &'a [i32],
        multipliers: &'a [i32],
        shifts: &'a [i32],
    },
    /// [`kernels::fully_connected`].
    FullyConnected {
        params: kernels::FullyConnected,
        weights: WeightData<'a>,
        bias: &'a [i32],
        multipliers: &'a [i32],
        shifts: &'a [i32],
    },
    /// [`kernels::add`].
    Add(kernels::Add),
    /// [`kernels::mul`].
    Mul(kernels::Mul),
    /// [`kernels::max_pool`].
    MaxPool(kernels::Pool),
    /// [`kernels::average_pool`].
    AveragePool(kernels::Pool),
    /// [`kernels::softmax`], or [`kernels::log_softmax`] when `log` is set.
    Softmax {
        rows: usize,
        cols: usize,
        table: &'a [u32],
        log: Option<kernels::LogSoftmax>,
    },
    /// [`kernels::lut`].
    Lut { table: &'a [i8] },
    /// [`kernels::concat`]: `outer` repetitions, per-input rescale pairs.
    Concat { outer: usize, rescale: &'a [i32] },
    /// [`kernels::transpose`].
    Transpose(kernels::Transpose),
}

impl<'a> Model<'a> {
    /// Parses and fully validates `bytes`: structure, every tensor, every op,
    /// and that no op writes over a tensor it reads.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        Self::parse_linking(bytes)
    }
}

impl<'a, const K: u32> Model<'a, K> {
    /// [`Model::parse`] for a build that links only the kernels of `K` (a
    /// firmware passes the set its build script derived from its
    /// artifact): [`Error::KernelNotLinked`] names the first op that needs
    /// another. The check rides parse's one pass over the ops.
    pub fn parse_linking(bytes: &'a [u8]) -> Result<Self, Error> {
        let model = Model {
            artifact: Artifact::parse(bytes)?,
        };
        for i in 0..model.artifact.ops().len() {
            let op = model.op(i)?;
            if !links(K, kernel_set::of(&op.kind)) {
                return Err(Error::KernelNotLinked { op: i });
            }
            let out = model.arena_range(op.record.output as usize, i)?;
            for &t in op.inputs() {
                let r = model.artifact.tensor(t as usize)?;
                if r.location == LOC_ARENA && overlaps(&out, &model.arena_range(t as usize, i)?) {
                    return Err(Error::BadOp { op: i });
                }
            }
        }
        Ok(model)
    }

    /// The underlying artifact view.
    pub fn artifact(&self) -> &Artifact<'a> {
        &self.artifact
    }

    /// Arena bytes [`Model::invoke`] needs.
    pub fn arena_size(&self) -> usize {
        self.artifact.graph().arena_size as usize
    }

    /// Elements of the int8 model input.
    pub fn input_len(&self) -> usize {
        self.io_record(self.artifact.graph().input).len as usize
    }

    /// Elements of the int8 model output.
    pub fn output_len(&self) -> usize {
        self.io_record(self.artifact.graph().output).len as usize
    }

    fn io_record(&self, index: u32) -> &'a TensorRecord {
        // Checked by `Artifact::parse`: both indices name arena i8 tensors.
        &self.artifact.tensors()[index as usize]
    }

    /// Number of ops.
    pub fn op_count(&self) -> usize {
        self.artifact.ops().len()
    }

    /// The model input's slot in the arena, to fill before [`Model::invoke`].
    pub fn input_mut<'b>(&self, arena: &'b mut [u8]) -> Result<&'b mut [i8], Error> {
        let r = self.io_record(self.artifact.graph().input);
        let range = r.offset as usize..r.offset as usize + r.len as usize;
        let needed = self.arena_size();
        let got = arena.len();
        let bytes = arena
            .get_mut(range)
            .ok_or(Error::ArenaTooSmall { needed, got })?;
        Ok(bytemuck::cast_slice_mut(bytes))
    }

    /// The model output's slot in the arena, valid after [`Model::invoke`].
    pub fn output<'b>(&self, arena: &'b [u8]) -> Result<&'b [i8], Error> {
        let r = self.io_record(self.artifact.graph().output);
        let range = r.offset as usize..r.offset as usize + r.len as usize;
        let needed = self.arena_size();
        let got = arena.len();
        let bytes = arena
            .get(range)
            .ok_or(Error::ArenaTooSmall { needed, got })?;
        Ok(bytemuck::cast_slice(bytes))
    }

    /// Runs every op over `arena` (input already written with
    /// [`Model::input_mut`]).
    pub fn invoke(&self, arena: &mut [u8]) -> Result<(), Error> {
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_size(),
                got: arena.len(),
            });
        }
        for i in 0..self.op_count() {
            self.run_op(&self.op(i)?, arena)?;
        }
        Ok(())
    }

    /// Runs op `index` alone over `arena` (its inputs already computed), so a
    /// caller can time or trace each op; running every op in order is
    /// exactly [`Model::invoke`].
    pub fn invoke_op(&self, index: usize, arena: &mut [u8]) -> Result<(), Error> {
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_size(),
                got: arena.len(),
            });
        }
        self.run_op(&self.op(index)?, arena)
    }

    /// Clamps op `index`'s output (already computed in `arena`) into the
    /// op's guard range and returns how many values were outside it; 0
    /// when the artifact has no guards or this op is unguarded.
    pub fn guard_op(&self, index: usize, arena: &mut [u8]) -> Result<u32, Error> {
        let Some(guard) = self.artifact.guards().and_then(|g| g.get(index)) else {
            return Ok(0);
        };
        if guard.flags & GUARD_ON == 0 {
            return Ok(0);
        }
        let out = self.op_output_range(index)?;
        let needed = self.arena_size();
        let got = arena.len();
        let bytes = arena
            .get_mut(out)
            .ok_or(Error::ArenaTooSmall { needed, got })?;
        if guard.min > guard.max {
            return Err(Error::BadOp { op: index });
        }
        Ok(crate::kernels::mac::clamp_count(
            bytes, guard.min, guard.max,
        ))
    }

    /// Runs every op like [`Model::invoke`], and after each guarded op
    /// clamps its output into the op's guard range and counts the values
    /// that were outside it. When an op's count exceeds its threshold,
    /// `reverify(op)` is called (re-check that op's weights: for a
    /// protected model their codewords and tags, for a plain model a no-op
    /// `|_| Ok(())`); its error aborts the inference, otherwise the op is
    /// re-run once (its inputs are untouched: parse checked that no op
    /// writes over what it reads) and clamped again. Counts are added to
    /// `report`. Without a GUARDS section this is exactly [`Model::invoke`].
    pub fn invoke_guarded<F>(
        &self,
        arena: &mut [u8],
        mut reverify: F,
        report: &mut GuardReport,
    ) -> Result<(), Error>
    where
        F: FnMut(usize) -> Result<(), Error>,
    {
        if arena.len() < self.arena_size() {
            return Err(Error::ArenaTooSmall {
                needed: self.arena_size(),
                got: arena.len(),
            });
        }
        for i in 0..self.op_count() {
            self.invoke_op_guarded(i, arena, &mut reverify, report)?;
        }
        Ok(())
    }

    /// Op `index` of [`Model::invoke_guarded`] alone (its inputs already
    /// computed): run, clamp and count, and on a trip re-verify through
    /// `reverify` and re-run once. Lets a caller time or trace each op of a
    /// guarded inference (the firmware does); running every op in order is
    /// exactly [`Model::invoke_guarded`].
    pub fn invoke_op_guarded<F>(
        &self,
        index: usize,
        arena: &mut [u8],
        reverify: F,
        report: &mut GuardReport,
    ) -> Result<(), Error>
    where
        F: FnMut(usize) -> Result<(), Error>,
    {
        let policy = crate::timing::GuardPolicy::Stored;
        self.invoke_op_with(
            index,
            arena,
            policy,
            &mut crate::timing::NoFaults,
            reverify,
            report,
        )
    }

    /// Input domains the artifact has alignment tables for (0: none).
    pub fn domain_count(&self) -> u32 {
        self.artifact.input_align().map_or(0, |a| a.domains())
    }

    /// Maps the input already written in `arena` through `domain`'s
    /// alignment table (EmaQ-LT's CDF projection), so a sample from a
    /// shifted sensor or site reaches the model in the reference domain's
    /// distribution. A no-op for an artifact without tables (every domain
    /// then runs as given); [`Error::UnknownDomain`] for a domain without a
    /// table. Call between [`Model::input_mut`] and [`Model::invoke`].
    pub fn align_input(&self, arena: &mut [u8], domain: u32) -> Result<(), Error> {
        let Some(align) = self.artifact.input_align() else {
            return Ok(());
        };
        align.apply(domain, self.input_mut(arena)?)
    }

    /// Copies `input` in, runs the model and copies the output out.
    pub fn infer(&self, arena: &mut [u8], input: &[i8], output: &mut [i8]) -> Result<(), Error> {
        if input.len() != self.input_len() {
            return Err(Error::BadIoLength {
                expected: self.input_len(),
                got: input.len(),
            });
        }
        if output.len() != self.output_len() {
            return Err(Error::BadIoLength {
                expected: self.output_len(),
                got: output.len(),
            });
        }
        self.input_mut(arena)?.copy_from_slice(input);
        self.invoke(arena)?;
        output.copy_from_slice(self.output(arena)?);
        Ok(())
    }

    /// Decodes op `index` into typed parameters, checking every tensor it names.
    pub fn op(&self, index: usize) -> Result<Op<'a>, Error> {
        let record = self
            .artifact
            .ops()
            .get(index)
            .ok_or(Error::BadOp { op: index })?;
        let decoder = Decoder {
            artifact: &self.artifact,
            record,
            index,
        };
        Ok(Op {
            index,
            kind: decoder.decode()?,
            record,
        })
    }

    /// Where op `index`'s output lies in the arena.
    pub(crate) fn op_output_range(&self, index: usize) -> Result<core::ops::Range<usize>, Error> {
        let record = self
            .artifact
            .ops()
            .get(index)
            .ok_or(Error::BadOp { op: index })?;
        self.arena_range(record.output as usize, index)
    }

    fn arena_range(&self, tensor: usize, op: usize) -> Result<core::ops::Range<usize>, Error> {
        let t = self.artifact.tensor(tensor)?;
        if t.location != LOC_ARENA {
            return Err(Error::BadOp { op });
        }
        Ok(t.offset as usize..t.offset as usize + t.len as usize)
    }

    /// Runs one op's kernel, then — when this op writes the adjusted
    /// logits — the logit adjustment, so every way of running the model
    /// (whole, op by op, guarded) computes the same outputs.
    fn run_op(&self, op: &Op<'a>, arena: &mut [u8]) -> Result<(), Error> {
        self.run_kernel(op, arena)?;
        let Some(adjust) = self.artifact.logit_adjust() else {
            return Ok(());
        };
        if adjust.tensor() != op.record.output as u32 {
            return Ok(());
        }
        let out = self.arena_range(op.record.output as usize, op.index)?;
        let (needed, got) = (self.arena_size(), arena.len());
        let bytes = arena
            .get_mut(out)
            .ok_or(Error::ArenaTooSmall { needed, got })?;
        let logits: &mut [i8] = bytemuck::cast_slice_mut(bytes);
        kernels::logit_adjust(adjust.offsets(), adjust.margin(), logits)
    }

    fn run_kernel(&self, op: &Op<'a>, arena: &mut [u8]) -> Result<(), Error> {
        let out = self.arena_range(op.record.output as usize, op.index)?;
        let (head, rest) = arena.split_at_mut(out.start);
        let (out_bytes, tail) = rest.split_at_mut(out.len());
        let io = Io {
            head,
            tail,
            out_end: out.end,
            artifact: &self.artifact,
        };
        let output: &mut [i8] = bytemuck::cast_slice_mut(out_bytes);
        let input = |k: usize| io.tensor(op.record.inputs[k], op.index);
        // `K` is a constant: each arm's check folds away, or the arm does
        // and its kernel is never linked.
        let linked = |kernel: u32| {
            if links(K, kernel) {
                Ok(())
            } else {
                Err(Error::KernelNotLinked { op: op.index })
            }
        };
        match op.kind {
            OpKind::Conv2d {
                params: p,
                weights,
                bias: b,
                multipliers: m,
                shifts: s,
            } => {
                let x = input(0)?;
                // One arm per linked nest: `conv2d_via` is inlined with
                // its path a constant, so each arm calls one nest.
                macro_rules! via {
                    ($w:expr, $path:ident, $kernel:ident) => {{
                        linked(kernel_set::$kernel)?;
                        kernels::conv2d_via(ConvPath::$path, &p, x, $w, b, m, s, output)
                    }};
                }
                match weights {
                    WeightData::I8(w) => match kernels::conv_path(&p, &w) {
                        ConvPath::Depthwise => via!(w, Depthwise, DEPTHWISE_I8),
                        ConvPath::Dense => via!(w, Dense, DENSE_I8),
                        ConvPath::General => via!(w, General, GENERAL_CONV_I8),
                    },
                    WeightData::I4(w) => match kernels::conv_path(&p, &w) {
                        ConvPath::Depthwise => via!(w, Depthwise, DEPTHWISE_I4),
                        ConvPath::Dense => via!(w, Dense, DENSE_I4),
                        ConvPath::General => via!(w, General, GENERAL_CONV_I4),
                    },
                }
            }
            OpKind::FullyConnected {
                params: p,
                weights,
                bias: b,
                multipliers: m,
                shifts: s,
            } => {
                let x = input(0)?;
                match weights {
                    WeightData::I8(w) => {
                        linked(kernel_set::FULLY_CONNECTED_I8)?;
                        kernels::fully_connected(&p, x, w, b, m, s, output)
                    }
                    WeightData::I4(w) => {
                        linked(kernel_set::FULLY_CONNECTED_I4)?;
                        kernels::fully_connected(&p, x, w, b, m, s, output)
                    }
                }
            }
            OpKind::Add(p) => {
                linked(kernel_set::ADD)?;
                kernels::add(&p, input(0)?, input(1)?, output)
            }
            OpKind::Mul(p) => {
                linked(kernel_set::MUL)?;
                kernels::mul(&p, input(0)?, input(1)?, output)
            }
            OpKind::MaxPool(p) => {
                linked(kernel_set::MAX_POOL)?;
                kernels::max_pool(&p, input(0)?, output)
            }
            OpKind::AveragePool(p) => {
                linked(kernel_set::AVERAGE_POOL)?;
                kernels::average_pool(&p, input(0)?, output)
            }
            OpKind::Softmax {
                rows,
                cols,
                table,
                log: None,
            } => {
                linked(kernel_set::SOFTMAX)?;
                kernels::softmax(rows, cols, table, input(0)?, output)
            }
            OpKind::Softmax {
                rows,
                cols,
                table,
                log: Some(p),
            } => {
                linked(kernel_set::LOG_SOFTMAX)?;
                kernels::log_softmax(rows, cols, table, &p, input(0)?, output)
            }
            OpKind::Lut { table } => {
                linked(kernel_set::LUT)?;
                kernels::lut(table, input(0)?, output)
            }
            OpKind::Transpose(p) => {
                linked(kernel_set::TRANSPOSE)?;
                kernels::transpose(&p, input(0)?, output)
            }
            OpKind::Concat { outer, rescale } => {
                linked(kernel_set::CONCAT)?;
                // The last input is the rescale table, not data.
                let count = op.inputs().len().saturating_sub(1);
                let mut parts = [ConcatInput {
                    data: &[],
                    chunk: 0,
                    input_offset: 0,
                    rescale: Requant::new(0, 0)?,
                }; MAX_OP_INPUTS];
                for (k, part) in parts.iter_mut().enumerate().take(count) {
                    let t = self.artifact.tensor(op.record.inputs[k] as usize)?;
                    *part = ConcatInput {
                        data: input(k)?,
                        chunk: t.len as usize / outer.max(1),
                        input_offset: -t.zero_point,
                        rescale: Requant::new(rescale[2 * k], rescale[2 * k + 1])?,
                    };
                }
                let zp = self.artifact.tensor(op.record.output as usize)?.zero_point;
                kernels::concat(outer, &parts[..count], zp, output)
            }
        }
    }
}

impl Op<'_> {
    /// The tensor indices this op reads (activations and constants).
    pub fn inputs(&self) -> &[u16] {
        let n = (self.record.input_count as usize).min(MAX_OP_INPUTS);
        &self.record.inputs[..n]
    }
}

fn overlaps(a: &core::ops::Range<usize>, b: &core::ops::Range<usize>) -> bool {
    a.start < b.end && b.start < a.end
}

/// The arena split around one op's output: inputs live before or after it.
struct Io<'b, 'a> {
    head: &'b [u8],
    tail: &'b [u8],
    out_end: usize,
    artifact: &'b Artifact<'a>,
}

impl<'b> Io<'b, '_> {
    /// An int8 input, from the weights (constants) or the arena.
    fn tensor(&self, index: u16, op: usize) -> Result<&'b [i8], Error> {
        let t = self.artifact.tensor(index as usize)?;
        if t.location == LOC_WEIGHTS {
            return self.artifact.constant::<i8>(index as usize, DTYPE_I8);
        }
        let (start, end) = (t.offset as usize, t.offset as usize + t.len as usize);
        let bytes = if end <= self.head.len() {
            self.head.get(start..end)
        } else if start >= self.out_end {
            self.tail.get(start - self.out_end..end - self.out_end)
        } else {
            None
        };
        bytes.map(bytemuck::cast_slice).ok_or(Error::BadOp { op })
    }
}

/// Decodes one op record against the artifact's tensors.
struct Decoder<'r, 'a> {
    artifact: &'r Artifact<'a>,
    record: &'a OpRecord,
    index: usize,
}

impl<'a> Decoder<'_, 'a> {
    fn bad(&self) -> Error {
        Error::BadOp { op: self.index }
    }

    fn param(&self, k: usize) -> Result<i32, Error> {
        self.record.params.get(k).copied().ok_or(self.bad())
    }

    /// A non-negative parameter as usize.
    fn uparam(&self, k: usize) -> Result<usize, Error> {
        usize::try_from(self.param(k)?).map_err(|_| self.bad())
    }

    fn act(&self, k: usize) -> Result<Activation, Error> {
        let (min, max) = (self.param(k)?, self.param(k + 1)?);
        let min = i8::try_from(min).map_err(|_| self.bad())?;
        let max = i8::try_from(max).map_err(|_| self.bad())?;
        if min > max {
            return Err(self.bad());
        }
        Ok(Activation { min, max })
    }

    fn requant(&self, k: usize) -> Result<Requant, Error> {
        Requant::new(self.param(k)?, self.param(k + 1)?)
    }

    fn input_index(&self, k: usize) -> Result<usize, Error> {
        if k >= (self.record.input_count as usize).min(MAX_OP_INPUTS) {
            return Err(self.bad());
        }
        Ok(self.record.inputs[k] as usize)
    }

    /// An int8 activation input or output record.
    fn activation(&self, tensor: usize) -> Result<&'a TensorRecord, Error> {
        let t = self.artifact.tensor(tensor)?;
        if t.dtype != DTYPE_I8 {
            return Err(self.bad());
        }
        Ok(t)
    }

    fn input(&self, k: usize) -> Result<&'a TensorRecord, Error> {
        let t = self.activation(self.input_index(k)?)?;
        Ok(t)
    }

    fn output(&self) -> Result<&'a TensorRecord, Error> {
        let t = self.activation(self.record.output as usize)?;
        if t.location != LOC_ARENA {
            return Err(self.bad());
        }
        Ok(t)
    }

    fn constant<T: bytemuck::Pod>(&self, k: usize, dtype: u8) -> Result<&'a [T], Error> {
        self.artifact
            .constant(self.input_index(k)?, dtype)
            .map_err(|_| self.bad())
    }

    /// Conv/FC weights (input `k`), int8 or packed int4 by their dtype.
    fn weights(&self, k: usize) -> Result<WeightData<'a>, Error> {
        let index = self.input_index(k)?;
        let t = self.artifact.tensor(index)?;
        let bad = |_| self.bad();
        if t.dtype != DTYPE_I4 {
            return self
                .artifact
                .constant(index, DTYPE_I8)
                .map(WeightData::I8)
                .map_err(bad);
        }
        let elements = t
            .dims
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d as usize))
            .ok_or(self.bad())?;
        let bytes = self.artifact.constant(index, DTYPE_I4).map_err(bad)?;
        PackedI4::new(bytes, elements)
            .map(WeightData::I4)
            .ok_or(self.bad())
    }

    /// `[h, w, c]` of a rank-4 batch-1 feature map.
    fn feature_map(&self, t: &TensorRecord) -> Result<[usize; 3], Error> {
        if t.rank != 4 || t.dims[0] != 1 {
            return Err(self.bad());
        }
        Ok([t.dims[1] as usize, t.dims[2] as usize, t.dims[3] as usize])
    }

    fn expect_inputs(&self, n: usize) -> Result<(), Error> {
        if self.record.input_count as usize != n {
            return Err(self.bad());
        }
        Ok(())
    }

    fn decode(&self) -> Result<OpKind<'a>, Error> {
        match self.record.kind {
            OP_CONV2D => self.conv2d(),
            OP_FULLY_CONNECTED => self.fully_connected(),
            OP_ADD => self.add(),
            OP_MUL => self.mul(),
            OP_MAX_POOL => Ok(OpKind::MaxPool(self.pool()?)),
            OP_AVERAGE_POOL => Ok(OpKind::AveragePool(self.pool()?)),
            OP_SOFTMAX => self.softmax(),
            OP_LUT => self.lut(),
            OP_CONCAT => self.concat(),
            OP_TRANSPOSE => self.transpose(),
            kind => Err(Error::UnknownOp {
                op: self.index,
                kind,
            }),
        }
    }

    fn conv2d(&self) -> Result<OpKind<'a>, Error> {
        self.expect_inputs(5)?;
        let (x, y) = (self.input(0)?, self.output()?);
        let [in_h, in_w, in_c] = self.feature_map(x)?;
        let [out_h, out_w, out_c] = self.feature_map(y)?;
        let w = self.artifact.tensor(self.input_index(1)?)?;
        if w.rank != 4 || w.dims[0] as usize != out_c {
            return Err(self.bad());
        }
        let params = kernels::Conv2d {
            in_h,
            in_w,
            in_c,
            out_h,
            out_w,
            out_c,
            kernel_h: w.dims[1] as usize,
            kernel_w: w.dims[2] as usize,
            stride_h: self.uparam(0)?,
            stride_w: self.uparam(1)?,
            pad_top: self.uparam(2)?,
            pad_left: self.uparam(3)?,
            dilation_h: self.uparam(4)?,
            dilation_w: self.uparam(5)?,
            groups: self.uparam(6)?,
            input_offset: -x.zero_point,
            output_offset: y.zero_point,
            act: self.act(7)?,
        };
        Ok(OpKind::Conv2d {
            params,
            weights: self.weights(1)?,
            bias: self.constant(2, DTYPE_I32)?,
            multipliers: self.constant(3, DTYPE_I32)?,
            shifts: self.constant(4, DTYPE_I32)?,
        })
    }

    fn fully_connected(&self) -> Result<OpKind<'a>, Error> {
        self.expect_inputs(5)?;
        let (x, y) = (self.input(0)?, self.output()?);
        let w = self.artifact.tensor(self.input_index(1)?)?;
        if w.rank != 2 || w.dims[1] == 0 {
            return Err(self.bad());
        }
        let (out_features, in_features) = (w.dims[0] as usize, w.dims[1] as usize);
        let rows = x.len as usize / in_features;
        if rows * in_features != x.len as usize || rows * out_features != y.len as usize {
            return Err(self.bad());
        }
        let params = kernels::FullyConnected {
            rows,
            in_features,
            out_features,
            input_offset: -x.zero_point,
            output_offset: y.zero_point,
            act: self.act(0)?,
        };
        Ok(OpKind::FullyConnected {
            params,
            weights: self.weights(1)?,
            bias: self.constant(2, DTYPE_I32)?,
            multipliers: self.constant(3, DTYPE_I32)?,
            shifts: self.constant(4, DTYPE_I32)?,
        })
    }

    fn broadcast(&self, k: usize) -> Result<kernels::Broadcast, Error> {
        match self.param(k)? {
            0 => Ok(kernels::Broadcast::None),
            1 => Ok(kernels::Broadcast::PerChannel),
            2 => Ok(kernels::Broadcast::Scalar),
            _ => Err(self.bad()),
        }
    }

    fn binary_operands(&self) -> Result<(i32, i32, i32), Error> {
        self.expect_inputs(2)?;
        let (a, b, y) = (self.input(0)?, self.input(1)?, self.output()?);
        if a.len != y.len {
            return Err(self.bad());
        }
        Ok((-a.zero_point, -b.zero_point, y.zero_point))
    }

    fn add(&self) -> Result<OpKind<'a>, Error> {
        let (input1_offset, input2_offset, output_offset) = self.binary_operands()?;
        Ok(OpKind::Add(kernels::Add {
            input1_offset,
            input2_offset,
            output_offset,
            left_shift: u32::try_from(self.param(0)?).map_err(|_| self.bad())?,
            input1: self.requant(1)?,
            input2: self.requant(3)?,
            output: self.requant(5)?,
            act: self.act(7)?,
            broadcast: self.broadcast(9)?,
        }))
    }

    fn mul(&self) -> Result<OpKind<'a>, Error> {
        let (input1_offset, input2_offset, output_offset) = self.binary_operands()?;
        Ok(OpKind::Mul(kernels::Mul {
            input1_offset,
            input2_offset,
            output_offset,
            output: self.requant(0)?,
            act: self.act(2)?,
            broadcast: self.broadcast(4)?,
        }))
    }

    fn pool(&self) -> Result<kernels::Pool, Error> {
        self.expect_inputs(1)?;
        let (x, y) = (self.input(0)?, self.output()?);
        let [in_h, in_w, channels] = self.feature_map(x)?;
        let [out_h, out_w, out_c] = self.feature_map(y)?;
        if out_c != channels || x.zero_point != y.zero_point || x.scale_bits != y.scale_bits {
            return Err(self.bad());
        }
        Ok(kernels::Pool {
            in_h,
            in_w,
            channels,
            out_h,
            out_w,
            kernel_h: self.uparam(0)?,
            kernel_w: self.uparam(1)?,
            stride_h: self.uparam(2)?,
            stride_w: self.uparam(3)?,
            pad_top: self.uparam(4)?,
            pad_left: self.uparam(5)?,
            act: self.act(6)?,
            count_include_pad: self.param(8)? != 0,
            // `check_tensor` keeps every zero point in i8 range.
            pad_value: x.zero_point as i8,
        })
    }

    fn softmax(&self) -> Result<OpKind<'a>, Error> {
        self.expect_inputs(2)?;
        let (x, y) = (self.input(0)?, self.output()?);
        let cols = x.dims[(x.rank as usize).saturating_sub(1)] as usize;
        if x.len != y.len || cols == 0 {
            return Err(self.bad());
        }
        let table: &[u32] = self.constant(1, DTYPE_U32)?;
        // params[0]: 0 = softmax; 1 = log-softmax with params[1] the Q16
        // log2 step and params[2..4] the requantization to output steps.
        let log = match self.param(0)? {
            0 => None,
            1 => {
                let step_q16 = self.param(1)?;
                if table.len() != 256
                    || table[0] != 1 << 16
                    || !(0..=kernels::LOG_SOFTMAX_MAX_STEP).contains(&step_q16)
                {
                    return Err(self.bad());
                }
                Some(kernels::LogSoftmax {
                    step_q16,
                    to_output: self.requant(2)?,
                    // `check_tensor` keeps every zero point in i8 range.
                    zero_point: y.zero_point as i8,
                })
            }
            _ => return Err(self.bad()),
        };
        Ok(OpKind::Softmax {
            rows: x.len as usize / cols,
            cols,
            table,
            log,
        })
    }

    fn lut(&self) -> Result<OpKind<'a>, Error> {
        self.expect_inputs(2)?;
        if self.input(0)?.len != self.output()?.len {
            return Err(self.bad());
        }
        Ok(OpKind::Lut {
            table: self.constant(1, DTYPE_I8)?,
        })
    }

    fn concat(&self) -> Result<OpKind<'a>, Error> {
        let count = self.record.input_count as usize;
        if !(2..=MAX_OP_INPUTS).contains(&count) {
            return Err(self.bad());
        }
        let parts = count - 1;
        let y = self.output()?;
        let axis = self.uparam(0)?;
        if axis >= y.rank as usize {
            return Err(self.bad());
        }
        let mut axis_total = 0u32;
        for k in 0..parts {
            let x = self.input(k)?;
            let same_elsewhere = (0..4).all(|d| d == axis || x.dims[d] == y.dims[d]);
            if x.rank != y.rank || !same_elsewhere {
                return Err(self.bad());
            }
            axis_total = axis_total.checked_add(x.dims[axis]).ok_or(self.bad())?;
        }
        if axis_total != y.dims[axis] {
            return Err(self.bad());
        }
        let rescale: &[i32] = self.constant(parts, DTYPE_I32)?;
        if rescale.len() != 2 * parts {
            return Err(self.bad());
        }
        let outer = y.dims[..axis].iter().map(|&d| d as usize).product();
        Ok(OpKind::Concat { outer, rescale })
    }

    fn transpose(&self) -> Result<OpKind<'a>, Error> {
        self.expect_inputs(1)?;
        let (x, y) = (self.input(0)?, self.output()?);
        let pad = |t: &TensorRecord| {
            let rank = t.rank as usize;
            let mut dims = [1usize; 4];
            for (k, d) in t.dims[..rank].iter().enumerate() {
                dims[4 - rank + k] = *d as usize;
            }
            dims
        };
        let perm = [
            self.uparam(0)?,
            self.uparam(1)?,
            self.uparam(2)?,
            self.uparam(3)?,
        ];
        let (in_dims, out_dims) = (pad(x), pad(y));
        if perm.iter().any(|&p| p >= 4) || (0..4).any(|k| out_dims[k] != in_dims[perm[k]]) {
            return Err(self.bad());
        }
        Ok(OpKind::Transpose(kernels::Transpose { in_dims, perm }))
    }
}
