//! The float graph between ONNX import and quantization.
//!
//! The importer resolves everything ONNX leaves dynamic (shape arithmetic,
//! BatchNorm, Pad, DequantizeLinear'd constants, Transposes the layout makes
//! free) so that every [`Node`] here maps to exactly one runtime kernel, and
//! every tensor shape is already in the runtime's *storage* layout: NHWC for
//! feature maps, batch 1. The float executor runs this graph for
//! calibration; the quantizer lowers it node by node.

/// Index of a tensor in [`Graph::tensors`].
pub type TensorId = usize;

/// A whole imported model.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    /// All tensors: activations and constant operands.
    pub tensors: Vec<Tensor>,
    /// Nodes in execution (topological) order.
    pub nodes: Vec<Node>,
    /// The model input (an activation).
    pub input: TensorId,
    /// The model output (an activation).
    pub output: TensorId,
    /// The input's shape as ONNX declares it, batch set to 1: what one sample
    /// of the user's `.npy` looks like.
    pub onnx_input_shape: Vec<usize>,
    /// The output's shape as ONNX declares it, batch set to 1.
    pub onnx_output_shape: Vec<usize>,
    /// How a sample in ONNX layout maps to the stored input.
    pub input_layout: IoLayout,
    /// How the stored output maps back to ONNX layout.
    pub output_layout: IoLayout,
}

/// Relation between a tensor's ONNX layout and its storage layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum IoLayout {
    /// Same element order.
    AsIs,
    /// ONNX says `[1, C, H, W]`; stored as `[1, H, W, C]`.
    NchwAsNhwc,
}

/// One tensor of the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// ONNX tensor name (for error messages and metadata).
    pub name: String,
    /// Dims in storage order, batch 1 (`[1, H, W, C]` for feature maps,
    /// `[rows, features]` for vectors).
    pub shape: Vec<usize>,
    /// `Some` for constants, in storage order.
    pub value: Option<Vec<f32>>,
}

/// One operation, reading `inputs` and writing `output`.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// ONNX node name (or op type and index when the export left it empty).
    pub name: String,
    /// What it computes.
    pub op: Op,
    /// Input tensors (operand order as documented on [`Op`]).
    pub inputs: Vec<TensorId>,
    /// Output tensor.
    pub output: TensorId,
}

/// A clamp fused into the producing node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// No clamp.
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, min), max)` (ReLU6 is `Clip { 0, 6 }`).
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
}

impl Activation {
    /// Applies the clamp to one value.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu => x.max(0.0),
            Activation::Clip { min, max } => x.max(min).min(max),
        }
    }
}

/// The node kinds, one per runtime kernel (plus free reshapes).
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// 2-D convolution over `inputs[0]` (`[1,H,W,C]`).
    Conv(Conv),
    /// `[rows, K] × Wᵀ + b` over `inputs[0]`.
    FullyConnected(FullyConnected),
    /// `inputs[0] + inputs[1]`; `inputs[1]` may be a constant with the same
    /// shape, one value per channel (last storage axis) or one value.
    Add(Activation),
    /// `inputs[0] · inputs[1]`, broadcasting as for `Add`.
    Mul(Activation),
    /// Max pooling of `inputs[0]`.
    MaxPool(Pool),
    /// Average pooling of `inputs[0]` (GlobalAveragePool is a full window).
    AveragePool(Pool),
    /// Softmax over the last storage axis.
    Softmax,
    /// Log-softmax over the last storage axis (PyTorch's `log_softmax`).
    LogSoftmax,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// A standalone clamp that could not be fused into its producer.
    Clamp(Activation),
    /// Concatenation of all inputs along storage axis `axis`.
    Concat {
        /// Storage axis.
        axis: usize,
    },
    /// Storage-order permutation (`output dim k = input dim perm[k]`).
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// Same bytes, new shape (Flatten / Reshape / Squeeze that need no reordering).
    Reshape,
}

/// A convolution with its float weights in storage layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// `[out_c][kernel_h][kernel_w][in_c / groups]`, row-major.
    pub weights: Vec<f32>,
    /// `[out_c, kernel_h, kernel_w, in_c / groups]`.
    pub weight_shape: [usize; 4],
    /// One per output channel (zeros when the model has none).
    pub bias: Vec<f32>,
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// `[dilation_h, dilation_w]`.
    pub dilation: [usize; 2],
    /// Channel groups.
    pub groups: usize,
    /// Fused clamp.
    pub act: Activation,
}

/// A fully connected layer with float weights.
#[derive(Debug, Clone, PartialEq)]
pub struct FullyConnected {
    /// `[out_features][in_features]`, row-major, columns in the input's
    /// storage order (a Flatten of an NHWC map has already been accounted for).
    pub weights: Vec<f32>,
    /// Output features.
    pub out_features: usize,
    /// Input features.
    pub in_features: usize,
    /// One per output feature.
    pub bias: Vec<f32>,
    /// Fused clamp.
    pub act: Activation,
}

/// Pooling window geometry.
#[derive(Debug, Clone, PartialEq)]
pub struct Pool {
    /// `[kernel_h, kernel_w]`.
    pub kernel: [usize; 2],
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// `[top, left, bottom, right]`.
    pub pads: [usize; 4],
    /// Average pooling: divide by the full window including padding.
    pub count_include_pad: bool,
}
