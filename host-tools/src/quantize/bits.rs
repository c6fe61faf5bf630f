//! The storage width of each Conv/FC layer's weights: int8, or int4 for
//! W4A8 (weights 4-bit, activations still 8-bit). A plain per-IR-node
//! vector, so a uniform `--bits` and a per-layer allocation fill the same
//! slot.

use super::{clip, scales};
use crate::ir::Graph;

/// What `--bits` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitsChoice {
    /// Every Conv/FC layer at one width.
    Uniform(WeightBits),
    /// Per layer, by measured sensitivity, under a byte budget for the
    /// Conv/FC weights (`None`: three quarters of their int8 size).
    Mixed {
        /// Most bytes the Conv/FC weights may take.
        flash_budget: Option<usize>,
    },
}

impl Default for BitsChoice {
    fn default() -> Self {
        BitsChoice::Uniform(WeightBits::Int8)
    }
}

/// How one Conv/FC node stores its weights (other nodes ignore it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WeightBits {
    /// Symmetric per output channel in `[-127, 127]`, one per byte.
    #[default]
    Int8,
    /// Symmetric per output channel in `[-7, 7]`, two per byte
    /// (`DTYPE_I4`), each channel's scale from a clipping search.
    Int4,
}

impl WeightBits {
    /// This width for every node of `graph`: the per-node vector
    /// [`super::QuantizeOptions`] takes.
    pub fn uniform(self, graph: &Graph) -> Vec<WeightBits> {
        vec![self; graph.nodes.len()]
    }

    /// Bits per stored weight.
    pub fn bits(self) -> u32 {
        match self {
            WeightBits::Int8 => 8,
            WeightBits::Int4 => 4,
        }
    }

    /// Codes and one scale per channel for `weights`, `channels` rows of
    /// equal length, at this width.
    pub fn quantize(self, weights: &[f32], channels: usize) -> (Vec<i8>, Vec<f32>) {
        match self {
            WeightBits::Int8 => scales::quantize_per_channel(weights, channels),
            WeightBits::Int4 => clip::quantize_per_channel_i4(weights, channels),
        }
    }
}
