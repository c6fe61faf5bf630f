//! What `sturdy analyze` measured, as one serialisable value: written as
//! `report.json` and rendered into `report.html`. Every figure the HTML
//! shows comes from here, next to the settings and seeds that produced it,
//! so two runs can be repeated and compared field by field.

use serde::{Deserialize, Serialize};

/// The whole analysis of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// How the run was invoked: files, sections, seeds, sturdy version.
    pub settings: Settings,
    /// The one-screen answer at the top of the HTML.
    pub summary: Summary,
    /// Does it fit: layers, arena plan, flash per section.
    pub fit: Option<Fit>,
    /// How faithful the integer model is to the float one.
    pub fidelity: Option<Fidelity>,
    /// Random stored-bit, stuck-at and activation faults.
    pub faults: Option<Faults>,
    /// Bit-flip attack, weight noise and structured damage.
    pub attacks: Option<Attacks>,
    /// Layer spectra, the rank advice and the advice applied.
    pub spectra: Option<Spectra>,
    /// Input- and parameter-space Fisher information.
    pub fisher: Option<Fisher>,
    /// Proved neighbourhoods of the samples (`sturdy verify`'s campaign).
    pub verification: Option<Verification>,
    /// Accuracy over the mission's years (with `--profile`).
    pub aging: Option<Aging>,
    /// What protection costs in flash and load time.
    pub cost: Option<Cost>,
}

/// The inputs and knobs of a run: enough to repeat it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// `sturdy` version that wrote the report.
    pub sturdy_version: String,
    /// The ONNX model, when one was given.
    pub onnx: Option<String>,
    /// The plain artifact analysed (made by `analyze` when only ONNX was given).
    pub artifact: String,
    /// The protected artifact, when a key was given.
    pub protected: Option<String>,
    /// Input samples file and how many samples it holds.
    pub input: String,
    /// Samples analysed.
    pub samples: usize,
    /// Labels file.
    pub labels: Option<String>,
    /// Domain ids file.
    pub domains: Option<String>,
    /// Sections run, in order.
    pub sections: Vec<String>,
    /// Seeds per random campaign (mean and 95 % interval over them).
    pub seeds: u32,
    /// First seed; campaign `k` of seed `s` uses a seed derived from both.
    pub base_seed: u64,
}

/// The headline figures (`None`: the section that measures it did not run).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Whether flash and RAM fit the given budgets (`None`: no budget given).
    pub fits: Option<bool>,
    /// Flash the plain artifact takes.
    pub flash_bytes: Option<u64>,
    /// Arena RAM the plan needs.
    pub ram_bytes: Option<u64>,
    /// Accuracy of the float (ONNX) model.
    pub float_accuracy: Option<f64>,
    /// Accuracy of the integer model.
    pub int8_accuracy: Option<f64>,
    /// Fraction of samples where both models pick the same class.
    pub top1_agreement: Option<f64>,
    /// Bit flips the attack needed to break the plain artifact (`None`:
    /// not reached within the budget).
    pub bfa_flips_plain: Option<usize>,
    /// Accuracy of the protected artifact under the same flips.
    pub bfa_protected_accuracy: Option<f64>,
    /// The layer whose output drifts most from the float model (lowest SQNR).
    pub worst_layer: Option<String>,
}

/// Section 1: resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fit {
    /// Flash budget given with `--flash`, in bytes.
    pub flash_budget: Option<u64>,
    /// RAM budget given with `--ram`, in bytes.
    pub ram_budget: Option<u64>,
    /// Bytes of the plain artifact (what goes to flash).
    pub flash_bytes: u64,
    /// Bytes of the protected artifact, when one was analysed.
    pub protected_flash_bytes: Option<u64>,
    /// Arena bytes of the stored plan.
    pub arena_bytes: u64,
    /// Peak of simultaneously live bytes (no plan can do better).
    pub arena_lower_bound: u64,
    /// One row per runtime op.
    pub layers: Vec<Layer>,
    /// Arena buffers with their lifetimes, for the timeline.
    pub buffers: Vec<Buffer>,
    /// Flash per artifact section.
    pub sections: Vec<NamedBytes>,
    /// Measured on the board, with `--board qemu`.
    pub board: Option<BoardCost>,
}

/// One runtime op as the fit table shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Op index in execution order.
    pub index: usize,
    /// ONNX node it came from.
    pub node: String,
    /// Kind, e.g. `Conv2d+Relu`.
    pub kind: String,
    /// Shape of the first (data) input.
    pub input_shape: Vec<usize>,
    /// Shape of the output.
    pub output_shape: Vec<usize>,
    /// Multiply-accumulates per inference (0 for ops without them).
    pub macs: u64,
    /// Bytes of stored weights, biases and requantization arrays.
    pub weight_bytes: u64,
    /// `i8`, `i4` or empty when the op has no weights.
    pub weight_dtype: String,
    /// Bytes of the output tensor.
    pub output_bytes: u64,
}

/// An arena buffer: where it lies and which ops it is live across.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Buffer {
    /// The tensor it holds first.
    pub tensor: String,
    /// Byte offset in the arena.
    pub offset: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// First op index at which it is live (-1: the model input, live before op 0).
    pub first_op: i64,
    /// Last op index that reads it.
    pub last_op: i64,
}

/// A labelled byte count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedBytes {
    /// What the bytes are.
    pub name: String,
    /// How many.
    pub bytes: u64,
}

/// Costs measured on a board, in its counter's unit (QEMU counts
/// instructions, not cycles; a real board's DWT counts cycles).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BoardCost {
    /// Board name.
    pub board: String,
    /// `instructions` or `cycles`.
    pub unit: String,
    /// Per op of the last inference, in op order.
    pub instructions_per_op: Vec<u64>,
    /// Per inference (mean over the samples run).
    pub instructions_total: u64,
    /// Multiply-accumulates per inference.
    pub macs: u64,
    /// The protected artifact's load at boot (`None`: a plain artifact).
    pub load: Option<u64>,
}

/// Section 2: the integer model against the float one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fidelity {
    /// `classification` or `reconstruction`.
    pub task: String,
    /// Float model scores (`None`: no ONNX model given).
    pub float: Option<Scores>,
    /// Integer model scores.
    pub int8: Scores,
    /// Fraction of samples where float and int8 pick the same class.
    pub top1_agreement: Option<f64>,
    /// Class names/ids, in confusion-matrix order.
    pub classes: Vec<i64>,
    /// Int8 confusion matrix: `confusion[label][prediction]` counts.
    pub confusion: Vec<Vec<u64>>,
    /// Per class precision and recall of the int8 model.
    pub per_class: Vec<ClassScore>,
    /// Per domain accuracy (with `--domains`).
    pub per_domain: Vec<DomainScore>,
    /// Output error of int8 against float, over all samples (ST's metrics).
    pub output_error: Option<ErrorMetrics>,
    /// Per-op output error between float and dequantized int8 activations.
    pub layers: Vec<LayerError>,
}

/// Accuracy figures of one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Fraction correct (classification with labels).
    pub accuracy: Option<f64>,
    /// Mean per-class recall.
    pub balanced_accuracy: Option<f64>,
    /// Mean squared reconstruction error (reconstruction).
    pub mean_mse: Option<f64>,
}

/// Precision and recall of one class.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassScore {
    /// Class id.
    pub class: i64,
    /// Samples labelled with it.
    pub count: u64,
    /// Of the samples predicted as this class, the fraction that are.
    pub precision: f64,
    /// Of the samples of this class, the fraction predicted as it.
    pub recall: f64,
}

/// Accuracy on one domain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DomainScore {
    /// Domain id.
    pub domain: u32,
    /// Samples from it.
    pub samples: u64,
    /// Float accuracy on it.
    pub float_accuracy: Option<f64>,
    /// Int8 accuracy on it.
    pub int8_accuracy: f64,
}

/// Error of one tensor against its float reference.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorMetrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// ‖int8 − float‖ / ‖float‖.
    pub l2_relative: f64,
    /// Cosine similarity.
    pub cosine: f64,
    /// Signal-to-quantization-noise ratio, dB.
    pub sqnr_db: f64,
}

/// One op's output error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerError {
    /// Op index.
    pub index: usize,
    /// ONNX node.
    pub node: String,
    /// Op kind.
    pub kind: String,
    /// The error figures, averaged over samples.
    pub error: ErrorMetrics,
}

/// Mean and 95 % interval over seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean over seeds.
    pub mean: f64,
    /// Lower end of the 95 % interval (t-interval over seeds).
    pub lo: f64,
    /// Upper end.
    pub hi: f64,
}

/// Section 3: random faults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Faults {
    /// Accuracy of the fault-free int8 model on the campaign samples.
    pub clean_accuracy: f64,
    /// Samples each campaign runs.
    pub samples: usize,
    /// Stored-bit error rate sweep, one curve per variant.
    pub ber_sweep: Vec<SweepPoint>,
    /// Per layer × bit position sensitivity.
    pub layer_bits: Option<Heatmap>,
    /// Stuck-at faults on stored weights.
    pub stuck_at: Vec<SweepPoint>,
    /// Faults in each op's output (arena), one row per op.
    pub activations: Vec<OpFault>,
}

/// One point of a fault or noise curve.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SweepPoint {
    /// `plain`, `protected`, `stuck-at-0`, … : which curve.
    pub variant: String,
    /// The x value (bit error rate, σ fraction, …).
    pub x: f64,
    /// Accuracy.
    pub accuracy: Estimate,
    /// Silent data corruption: fraction of samples the clean model gets
    /// right whose top-1 changes.
    pub sdc_rate: Estimate,
    /// Fraction of samples the clean model gets wrong that become right.
    pub correction_rate: Estimate,
    /// Mean bits flipped per seed.
    pub flips: f64,
    /// Seeds whose protected artifact was refused at load (uncorrectable).
    pub refused: u32,
}

/// A grid of values with labelled rows and columns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Heatmap {
    /// What a cell holds.
    pub value: String,
    /// Row labels.
    pub rows: Vec<String>,
    /// Column labels.
    pub columns: Vec<String>,
    /// `cells[row][column]`; `None` where the combination does not exist.
    pub cells: Vec<Vec<Option<f64>>>,
}

/// Faults in one op's output tensor.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OpFault {
    /// Op index.
    pub index: usize,
    /// ONNX node.
    pub node: String,
    /// Random bit flips per inference in the op's output bytes (a
    /// single-event upset each).
    pub flips: u32,
    /// SDC rate.
    pub sdc_rate: Estimate,
}

/// Section 4: parameter attacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Attacks {
    /// The Bit-Flip Attack (progressive bit search).
    pub bfa: Option<Bfa>,
    /// Gaussian weight noise, accuracy vs σ as a fraction of each layer's std.
    pub noise: Vec<SweepPoint>,
    /// Whole channels zeroed or sign-flipped.
    pub structured: Vec<StructuredDamage>,
}

/// The Bit-Flip Attack's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Bfa {
    /// Samples the attacker computes gradients on.
    pub attack_samples: usize,
    /// Samples accuracy is measured on (disjoint from the attack batch).
    pub eval_samples: usize,
    /// Flip budget.
    pub max_flips: usize,
    /// Accuracy after 0, 1, 2, … flips on the plain artifact.
    pub plain_curve: Vec<f64>,
    /// Accuracy of random chance (1 / classes).
    pub chance: f64,
    /// Flips until accuracy ≤ 11 %.
    pub flips_to_11: Option<usize>,
    /// Flips until accuracy ≤ chance.
    pub flips_to_chance: Option<usize>,
    /// The flips, in the order committed.
    pub flips: Vec<BitFlip>,
    /// The same flips carried to other artifacts.
    pub transfers: Vec<Transfer>,
}

/// One committed flip.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BitFlip {
    /// Op index of the layer.
    pub op: usize,
    /// ONNX node of the layer.
    pub node: String,
    /// Byte offset in the plain artifact file.
    pub byte: u64,
    /// Bit within the byte (0 = least significant).
    pub bit: u8,
    /// Attack-batch loss after the flip.
    pub loss: f64,
}

/// The attack's flips replayed on another artifact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transfer {
    /// Which artifact and how the flips were aimed, e.g. `protected, same offsets`.
    pub target: String,
    /// Accuracy after all flips (`None`: the artifact was refused at load).
    pub accuracy: Option<f64>,
    /// Whether every output equals the fault-free artifact's.
    pub outputs_identical: bool,
    /// What the load reported (corrected words, refused, …).
    pub note: String,
}

/// Damage to whole output channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StructuredDamage {
    /// `plain`, or how the damage was carried to a protected form.
    pub variant: String,
    /// `zero` or `sign-flip`.
    pub mode: String,
    /// The layer (`all layers` for the top-k row).
    pub node: String,
    /// Channels damaged.
    pub channels: usize,
    /// Accuracy after the damage (`None`: refused at load, detected).
    pub accuracy: Option<f64>,
}

/// Fisher information of the integer model: per sample the input-space
/// `λ_max` against the flip radius found, per layer the diagonal
/// parameter Fisher against the measured fault sensitivity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Fisher {
    /// Samples measured.
    pub samples: usize,
    /// Spectral norm of the input-space Fisher, per sample (1/code²).
    pub lambda_max: Vec<f64>,
    /// Smallest searched ±ε box (codes) with a label flip, per sample
    /// (`None`: none up to the largest radius).
    pub flip_radius: Vec<Option<u8>>,
    /// Spearman correlation of `lambda_max` with the flip radius
    /// (unflipped samples ranked beyond the largest radius).
    pub spearman: Option<f64>,
    /// Per Conv/FC layer.
    pub layers: Vec<LayerFisher>,
    /// Spearman correlation of the layers' Fisher with their fault
    /// sensitivity (when the faults section ran).
    pub layer_spearman: Option<f64>,
    /// Half the layers in int4, chosen by each ranking (with the float
    /// model).
    pub int4: Vec<Int4Trial>,
}

/// A mixed-width artifact: which layers went to int4 and what it gave.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Int4Trial {
    /// How the layers were chosen.
    pub ranking: String,
    /// The int4 layers.
    pub layers: Vec<String>,
    /// Artifact size.
    pub flash_bytes: u64,
    /// Accuracy on the section's samples (with labels).
    pub accuracy: Option<f64>,
}

/// One layer's diagonal parameter Fisher and measured sensitivity.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerFisher {
    /// ONNX node.
    pub node: String,
    /// Mean over the layer's weight codes of `E (∂ log p/∂w)²`.
    pub fisher: f64,
    /// Mean SDC rate over the bit positions of the faults heatmap.
    pub fault_sensitivity: Option<f64>,
}

/// Spectral layer advice, tested: per dense Conv/FC layer, the spectrum
/// of `W Wᵀ / N` against its Marchenko–Pastur fit, and the layer
/// factorized at the advised rank, re-quantized and measured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Spectra {
    /// Samples scored per variant.
    pub samples: usize,
    /// Flash of the unchanged model, quantized the same way.
    pub flash_bytes: u64,
    /// Its accuracy on those samples (with labels).
    pub accuracy: Option<f64>,
    /// One per dense Conv/FC layer.
    pub layers: Vec<LayerSpectrum>,
}

/// One layer's spectrum, advice and measured result.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerSpectrum {
    /// ONNX node.
    pub node: String,
    /// `Conv` or `FC`.
    pub kind: String,
    /// The matrix's smaller side `M`.
    pub m: usize,
    /// Its larger side `N`.
    pub n: usize,
    /// Fitted bulk variance.
    pub sigma2: f64,
    /// MP upper edge `λ₊`.
    pub edge: f64,
    /// Eigenvalues above the edge.
    pub spikes: usize,
    /// `Σλ / λ_max`.
    pub stable_rank: f64,
    /// Power-law tail exponent (≥ 50 eigenvalues only).
    pub alpha: Option<f64>,
    /// Rank to keep: the spike count, or the full rank `M` without spikes.
    pub advised_rank: usize,
    /// Bytes the factorization should save (negative: it would cost).
    pub predicted_saving: i64,
    /// Flash of the model with this layer factorized (when it saves).
    pub flash_bytes: Option<u64>,
    /// Its accuracy (with labels).
    pub accuracy: Option<f64>,
    /// Its top-1 agreement with the unchanged model.
    pub agreement: Option<f64>,
    /// The spectrum, ascending (for the plot).
    pub eigenvalues: Vec<f64>,
}

/// Local robustness and blur tolerance proved for the exact integer
/// model, per property over the first samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Samples each property was decided on.
    pub samples: usize,
    /// Regions bounded per property at most.
    pub regions: usize,
    /// Why nothing was verified, when so.
    pub skipped: Option<String>,
    /// One row per property.
    pub rows: Vec<crate::verify::campaign::Tally>,
}

/// Section 5: accuracy over the mission, from `sturdy aging simulate`'s
/// Monte-Carlo lifetimes with the real decoder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aging {
    /// Mission profile file.
    pub profile: String,
    /// Mission length in years.
    pub lifetime_years: f64,
    /// Lifetimes simulated per configuration.
    pub lifetimes: usize,
    /// Test samples scored at each checkpoint.
    pub samples: usize,
    /// The lifetime plan the protected artifact carries, in words.
    pub plan: String,
    /// Accuracy of the fault-free model on those samples.
    pub clean_accuracy: f64,
    /// One curve per configuration (unprotected, protected without
    /// scrubbing, protected with the planned scrubbing).
    pub curves: Vec<AgingCurve>,
}

/// Accuracy and failures over the years for one configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgingCurve {
    /// Configuration name.
    pub name: String,
    /// Years since deployment at each checkpoint, from 0 (deployment,
    /// the clean model).
    pub years: Vec<f64>,
    /// Raw BER per stored bit the flips were drawn with.
    pub raw_ber: Vec<f64>,
    /// Mean accuracy over lifetimes.
    pub accuracy: Vec<f64>,
    /// The worst lifetime's accuracy.
    pub worst_accuracy: Vec<f64>,
    /// Share of lifetimes refused or below clean accuracy at each checkpoint.
    pub failed_fraction: Vec<f64>,
    /// Uncorrectable codewords over every checkpoint and lifetime (`None`:
    /// not coded).
    pub uncorrectable_words: Option<u64>,
    /// For the scrubbed configuration: the lifetime failure estimate.
    pub lifetime_failure_estimate: Option<f64>,
}

/// Section 6: the price of protection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Plain artifact bytes.
    pub plain_bytes: u64,
    /// One row per code.
    pub codes: Vec<CodeCost>,
    /// The protected artifact measured on the board, with `--board`.
    pub board: Option<BoardCost>,
}

/// Flash and load cost of one code.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeCost {
    /// e.g. `1944 × 1/2`.
    pub code: String,
    /// Protected artifact bytes.
    pub flash_bytes: u64,
    /// Parity bytes.
    pub parity_bytes: u64,
    /// Tag bytes.
    pub tag_bytes: u64,
    /// Flash relative to the plain artifact.
    pub overhead: f64,
    /// Host load (check + verify) throughput, MB of plain artifact per second.
    pub host_load_mb_per_s: f64,
}
