//! An artifact loaded on the host and run through `sturdy-runtime` — the
//! same parser, planner output and kernels the board executes.

use crate::artifact_writer::QParams;
use crate::float_exec::{from_storage, to_storage};
use crate::fsutil::AlignedBytes;
use crate::meta::Meta;
use crate::quantize::scales::{dequantize_value, quantize_value};
use anyhow::{anyhow, Context, Result};
use std::path::Path;
use std::sync::{Arc, Mutex};
use sturdy_runtime::ldpc::DecoderScratch;
use sturdy_runtime::protect::reverify_on_trip;
use sturdy_runtime::{GuardPolicy, GuardReport, Model, TimingFaults};

/// Transient timing faults for every inference of a [`HostModel`]: each
/// input gets its own generator, seeded from `seed` and the input's CRC,
/// so results do not depend on sample order or threads, and a board sent
/// the same seed ([`TimingSetting::seed_for`]) flips the same bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimingSetting {
    /// Wrong output bits per 10⁹.
    pub rate_ppb: u32,
    /// The campaign's seed.
    pub seed: u32,
    /// What the guards do about the flips.
    pub policy: GuardPolicy,
}

impl TimingSetting {
    /// The generator seed for one (raw, int8) input.
    pub fn seed_for(&self, input: &[i8]) -> u32 {
        let crc = sturdy_runtime::crc32(bytemuck::cast_slice(input));
        // A multiplicative mix, so seeds 1 and 2 give unrelated streams.
        (self.seed.wrapping_mul(0x9E37_79B9) ^ crc).rotate_left(7)
    }
}

/// A validated artifact with its metadata, ready to run samples.
#[derive(Debug, Clone)]
pub struct HostModel {
    bytes: AlignedBytes,
    /// The artifact's metadata section.
    pub meta: Meta,
    input_q: QParams,
    output_q: QParams,
    guarded: bool,
    timing: Option<TimingSetting>,
    guard_totals: Arc<Mutex<GuardReport>>,
    /// Bits flipped by timing faults over every inference (shared by clones).
    flipped: Arc<std::sync::atomic::AtomicU64>,
    /// The protected artifact and key this model was recovered from: a
    /// guard trip re-verifies the op's weights against them.
    protected: Option<Arc<ProtectedSource>>,
}

/// What re-verification of a protected model needs.
struct ProtectedSource {
    bytes: AlignedBytes,
    key: sturdy_runtime::protect::Key,
}

impl std::fmt::Debug for ProtectedSource {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ProtectedSource({} bytes, key ..)",
            self.bytes.as_bytes().len()
        )
    }
}

fn qparams(record: &sturdy_runtime::format::TensorRecord) -> QParams {
    QParams {
        scale: f32::from_bits(record.scale_bits),
        zero_point: record.zero_point,
    }
}

impl HostModel {
    /// Validates `bytes` with the runtime's parser and reads the metadata.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if sturdy_runtime::protect::is_protected(AlignedBytes::new(bytes).as_bytes()) {
            anyhow::bail!("this artifact is protected: load it with its key (--key KEY)");
        }
        Self::from_parts(bytes, &[])
    }

    /// Validates `bytes` and reads the metadata from `meta` — or, when
    /// `meta` is empty, from the artifact's own metadata section (a
    /// protected artifact keeps its metadata outside the recovered bytes).
    pub fn from_parts(bytes: &[u8], meta: &[u8]) -> Result<Self> {
        let bytes = AlignedBytes::new(bytes);
        let model = Model::parse(bytes.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
        let artifact = model.artifact();
        let meta = if meta.is_empty() {
            artifact.meta()
        } else {
            meta
        };
        let meta: Meta = serde_json::from_slice(meta).context("reading the artifact's metadata")?;
        let tensors = artifact.tensors();
        let input_q = qparams(&tensors[artifact.graph().input as usize]);
        let output_q = qparams(&tensors[artifact.graph().output as usize]);
        Ok(Self {
            bytes,
            meta,
            input_q,
            output_q,
            guarded: false,
            timing: None,
            guard_totals: Arc::default(),
            flipped: Arc::default(),
            protected: None,
        })
    }

    /// Binds the protected artifact `bytes` (which this model was recovered
    /// from with `key`) so that a guard trip re-verifies the tripped op's
    /// weights against its codewords and tags, as the board does.
    pub fn set_protected_source(&mut self, bytes: &[u8], key: sturdy_runtime::protect::Key) {
        self.protected = Some(Arc::new(ProtectedSource {
            bytes: AlignedBytes::new(bytes),
            key,
        }));
    }

    /// Reads and validates an artifact file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        if !bytes.starts_with(&sturdy_runtime::format::MAGIC) {
            anyhow::bail!(
                "{}: not a sturdy artifact (make one with `sturdy quantize MODEL.onnx`); {}",
                path.display(),
                crate::file_kind::describe_head(&bytes)
            );
        }
        Self::from_bytes(&bytes).with_context(|| format!("loading {}", path.display()))
    }

    /// The raw, aligned artifact bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_bytes()
    }

    /// The runtime's view (parsing is cheap; it was validated at load).
    pub fn model(&self) -> Result<Model<'_>> {
        Model::parse(self.bytes.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))
    }

    /// Quantization of the int8 input.
    pub fn input_qparams(&self) -> QParams {
        self.input_q
    }

    /// Quantization of the int8 output.
    pub fn output_qparams(&self) -> QParams {
        self.output_q
    }

    /// One float sample in ONNX layout → int8 input in storage layout.
    pub fn quantize_input(&self, sample: &[f32]) -> Vec<i8> {
        let stored = to_storage(self.meta.input.layout, &self.meta.input.onnx_shape, sample);
        stored
            .iter()
            .map(|&x| quantize_value(x, self.input_q))
            .collect()
    }

    /// int8 output in storage layout → floats in ONNX layout.
    pub fn dequantize_output(&self, output: &[i8]) -> Vec<f32> {
        let real: Vec<f32> = output
            .iter()
            .map(|&x| dequantize_value(x, self.output_q))
            .collect();
        from_storage(self.meta.output.layout, &self.meta.output.onnx_shape, &real)
    }

    /// Whether the artifact carries activation guards (a GUARDS section).
    pub fn has_guards(&self) -> bool {
        self.model().is_ok_and(|m| m.artifact().guards().is_some())
    }

    /// Turns guarded inference on (`invoke_guarded`, which is plain
    /// `invoke` for an artifact without guards; what the firmware runs) or
    /// off (default: plain `invoke`).
    pub fn set_guarded(&mut self, guarded: bool) {
        self.guarded = guarded;
    }

    /// Runs every inference under transient timing faults (`None`: off).
    /// The setting's guard policy replaces [`HostModel::set_guarded`]'s.
    pub fn set_timing_faults(&mut self, timing: Option<TimingSetting>) {
        self.timing = timing;
    }

    /// Output bits timing faults flipped so far (shared by clones).
    pub fn timing_flips(&self) -> u64 {
        self.flipped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Guard counts summed over every inference run so far (shared by clones).
    pub fn guard_totals(&self) -> GuardReport {
        self.guard_totals.lock().map(|g| *g).unwrap_or_default()
    }

    /// Runs one int8 input through the runtime's guarded invoke and
    /// returns the int8 output with this inference's guard report. A model
    /// recovered from a protected artifact re-verifies a tripped op against
    /// it, as the board does; a plain one just re-runs it.
    pub fn infer_guarded(&self, input: &[i8]) -> Result<(Vec<i8>, GuardReport)> {
        self.infer_guarded_in(input, None)
    }

    /// [`HostModel::infer_guarded`] for an input from `domain` (mapped
    /// through its alignment table first; `None`: as given), under this
    /// model's timing faults if set.
    fn infer_guarded_in(
        &self,
        input: &[i8],
        domain: Option<u32>,
    ) -> Result<(Vec<i8>, GuardReport)> {
        let (policy, mut faults) = match &self.timing {
            Some(t) => (t.policy, TimingFaults::new(t.rate_ppb, t.seed_for(input))),
            None => (GuardPolicy::Stored, TimingFaults::NONE),
        };
        let model = self.model()?;
        let mut arena = load_input(&model, input, domain)?;
        let mut report = GuardReport::default();
        let err = |e| anyhow!("inference failed: {e}");
        let mut run = |reverify: &mut dyn FnMut(usize) -> Result<(), sturdy_runtime::Error>| {
            (0..model.op_count()).try_for_each(|op| {
                model.invoke_op_with(
                    op,
                    &mut arena,
                    policy,
                    &mut faults,
                    &mut *reverify,
                    &mut report,
                )
            })
        };
        match &self.protected {
            Some(p) => {
                let mut scratch: Box<DecoderScratch> = Box::default();
                let mut hook = reverify_on_trip(p.bytes.as_bytes(), &p.key, &model, &mut scratch);
                run(&mut hook)
            }
            None => run(&mut |_| Ok(())),
        }
        .map_err(err)?;
        let flips = u64::from(faults.flipped());
        self.flipped
            .fetch_add(flips, std::sync::atomic::Ordering::Relaxed);
        Ok((model.output(&arena).map_err(err)?.to_vec(), report))
    }

    /// Runs one int8 input through the runtime and returns the int8 output
    /// (guarded when turned on with [`HostModel::set_guarded`]; the guard
    /// counts then add to [`HostModel::guard_totals`]).
    pub fn infer_quantized(&self, input: &[i8]) -> Result<Vec<i8>> {
        self.infer_in_domain(input, None)
    }

    /// [`HostModel::infer_quantized`] for an input from `domain`: the
    /// artifact's alignment table for that domain is applied to the input
    /// codes first, as the device does (`None`, or an artifact without
    /// tables: the input runs as given).
    pub fn infer_in_domain(&self, input: &[i8], domain: Option<u32>) -> Result<Vec<i8>> {
        if self.guarded || self.timing.is_some() {
            let (output, report) = self.infer_guarded_in(input, domain)?;
            if let Ok(mut totals) = self.guard_totals.lock() {
                add_report(&mut totals, &report);
            }
            return Ok(output);
        }
        let model = self.model()?;
        let mut arena = load_input(&model, input, domain)?;
        let err = |e| anyhow!("inference failed: {e}");
        model.invoke(&mut arena).map_err(err)?;
        Ok(model.output(&arena).map_err(err)?.to_vec())
    }

    /// Float sample from `domain` in, float output out (both in ONNX layout).
    pub fn run(&self, sample: &[f32], domain: Option<u32>) -> Result<Vec<f32>> {
        let input = self.quantize_input(sample);
        Ok(self.dequantize_output(&self.infer_in_domain(&input, domain)?))
    }
}

/// A fresh arena holding `input`, mapped through `domain`'s alignment
/// table when given: the device's steps before the first op.
pub fn load_input(model: &Model<'_>, input: &[i8], domain: Option<u32>) -> Result<Vec<u8>> {
    let mut arena = vec![0u8; model.arena_size()];
    let err = |e| anyhow!("inference failed: {e}");
    let slot = model.input_mut(&mut arena).map_err(err)?;
    anyhow::ensure!(
        slot.len() == input.len(),
        "input has {} values, expected {}",
        input.len(),
        slot.len()
    );
    slot.copy_from_slice(input);
    if let Some(d) = domain {
        model.align_input(&mut arena, d).map_err(err)?;
    }
    Ok(arena)
}

/// Adds `r`'s counts to `totals` (first tripped op: the earliest kept).
pub fn add_report(totals: &mut GuardReport, r: &GuardReport) {
    totals.ops_checked = totals.ops_checked.saturating_add(r.ops_checked);
    totals.values_clamped = totals.values_clamped.saturating_add(r.values_clamped);
    totals.trips = totals.trips.saturating_add(r.trips);
    totals.trips_after_rerun = totals.trips_after_rerun.saturating_add(r.trips_after_rerun);
    if totals.first_tripped_op.is_none() {
        totals.first_tripped_op = r.first_tripped_op;
    }
}

/// The guard counts as JSON (`sturdy run` puts them under `guards`).
pub fn guards_json(r: &GuardReport) -> serde_json::Value {
    serde_json::json!({
        "ops_checked": r.ops_checked,
        "values_clamped": r.values_clamped,
        "trips": r.trips,
        "ops_rerun": r.trips,
        "trips_after_rerun": r.trips_after_rerun,
        "first_tripped_op": r.first_tripped_op,
    })
}
