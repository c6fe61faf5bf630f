//! The artifact's metadata section: what the host tools need to use an
//! artifact that the runtime does not (names, ONNX shapes and layouts, how it
//! was calibrated, the memory plan's figures). Stored as JSON.

use crate::ir::IoLayout;
use serde::{Deserialize, Serialize};

/// Everything in the META section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// Tool and version that wrote the artifact.
    pub producer: String,
    /// File name of the source model.
    pub source: String,
    /// The model input as the user feeds it.
    pub input: IoMeta,
    /// The model output as the user reads it.
    pub output: IoMeta,
    /// One entry per runtime op, in execution order.
    pub ops: Vec<OpMeta>,
    /// How activation ranges were chosen.
    pub calibration: CalibrationMeta,
    /// Arena figures from the memory planner.
    pub plan: PlanMeta,
    /// The lifetime plan `sturdy protect --profile` applied (code, scrub
    /// interval, predicted failure probability), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aging: Option<crate::aging::plan::AppliedPlan>,
}

/// A model input or output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IoMeta {
    /// ONNX tensor name.
    pub name: String,
    /// ONNX shape with batch 1.
    pub onnx_shape: Vec<usize>,
    /// How ONNX order maps to the stored order.
    pub layout: IoLayout,
}

/// Where a runtime op came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpMeta {
    /// ONNX node name.
    pub node: String,
    /// Human-readable kind, e.g. `Conv2d(groups=16)+Relu6`.
    pub kind: String,
}

/// Calibration summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationMeta {
    /// `minmax` or `percentile`.
    pub method: String,
    /// Percentile kept, for `percentile`.
    pub percentile: Option<f64>,
    /// Calibration samples used.
    pub samples: usize,
    /// Every choice EmaQ-LT made (`method = emaq-lt` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emaq: Option<crate::quantize::emaq::EmaqSummary>,
}

/// Memory plan figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanMeta {
    /// Arena bytes of the stored plan.
    pub arena_bytes: usize,
    /// What TFLite Micro's greedy-by-size planner would need.
    pub greedy_by_size_bytes: usize,
    /// No plan can need less (peak of simultaneously live bytes).
    pub lower_bound_bytes: usize,
}
