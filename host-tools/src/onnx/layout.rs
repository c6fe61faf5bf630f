//! ONNX order vs storage order, and window geometry.
//!
//! ONNX feature maps are NCHW; the runtime stores them NHWC. Every
//! activation the importer tracks carries a [`Layout`] saying how its ONNX
//! (logical) elements sit in storage, so Transposes that only undo a layout
//! change cost nothing, constants are laid out to match the tensor they meet,
//! and a Flatten of an NHWC map can be absorbed into the next FC's weights.
//! The pad/output-size arithmetic for Conv and pooling lives here too, as
//! plain functions so it can be tested against hand-computed values.

use anyhow::{ensure, Result};

use super::fold::transpose_data;

/// How an activation's ONNX-order elements are arranged in storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Storage order and shape are the ONNX order and shape.
    Plain,
    /// Channels-first in ONNX, channels-last in storage: ONNX `[N, C, H, W]`
    /// is stored `[N, H, W, C]`; ONNX `[N, C, W]` (1-D conv) is stored
    /// `[N, 1, W, C]`.
    ChannelsLast,
    /// ONNX `[1, C·H·W]`, the flatten of a channels-last `[1, C, H, W]` map,
    /// whose storage is still in `(h, w, c)` order (shape `[1, C·H·W]`). Only
    /// a following FullyConnected can absorb it (by permuting its weight
    /// columns); anything else converts it to [`Layout::Plain`] first.
    FlattenedNhwc {
        /// Channels of the map that was flattened.
        c: usize,
        /// Height of the map that was flattened.
        h: usize,
        /// Width of the map that was flattened.
        w: usize,
    },
}

impl Layout {
    /// Storage shape of a tensor whose ONNX shape is `shape`.
    pub fn storage_shape(self, shape: &[usize]) -> Vec<usize> {
        match (self, shape.len()) {
            (Layout::ChannelsLast, 4) => vec![shape[0], shape[2], shape[3], shape[1]],
            (Layout::ChannelsLast, 3) => vec![shape[0], 1, shape[2], shape[1]],
            _ => shape.to_vec(),
        }
    }

    /// Storage axis holding ONNX axis `axis` (`None` when the ONNX axis is
    /// not one storage axis, as in a flattened NHWC map).
    pub fn storage_axis(self, rank: usize, axis: usize) -> Option<usize> {
        match (self, rank) {
            (Layout::Plain, _) => Some(axis),
            (Layout::ChannelsLast, 4) => Some([0, 3, 1, 2][axis]),
            (Layout::ChannelsLast, 3) => Some([0, 3, 2][axis]),
            (Layout::ChannelsLast, _) => None,
            (Layout::FlattenedNhwc { .. }, _) => None,
        }
    }

    /// True when storage holds the elements in ONNX order (only the shape
    /// differs), e.g. a channels-last map with one channel or one pixel.
    pub fn is_trivial(self, shape: &[usize]) -> bool {
        match self {
            Layout::Plain => true,
            Layout::ChannelsLast => {
                shape.len() < 3 || shape[1] == 1 || shape[2..].iter().product::<usize>() == 1
            }
            Layout::FlattenedNhwc { c, h, w } => c == 1 || h * w == 1,
        }
    }

    /// Reorders a tensor given in ONNX order (`shape`) into storage order.
    pub fn to_storage<T: Copy>(self, shape: &[usize], logical: &[T]) -> Vec<T> {
        match (self, shape.len()) {
            (Layout::ChannelsLast, 4) => transpose_data(logical, shape, &[0, 2, 3, 1]),
            (Layout::ChannelsLast, 3) => transpose_data(logical, shape, &[0, 2, 1]),
            (Layout::FlattenedNhwc { c, h, w }, _) => {
                transpose_data(logical, &[1, c, h, w], &[0, 2, 3, 1])
            }
            _ => logical.to_vec(),
        }
    }

    /// Reorders a tensor given in storage order back into ONNX order
    /// (`shape` is the ONNX shape).
    pub fn to_logical<T: Copy>(self, shape: &[usize], storage: &[T]) -> Vec<T> {
        match (self, shape.len()) {
            (Layout::ChannelsLast, 4) => transpose_data(
                storage,
                &[shape[0], shape[2], shape[3], shape[1]],
                &[0, 3, 1, 2],
            ),
            (Layout::ChannelsLast, 3) => {
                transpose_data(storage, &[shape[0], shape[2], shape[1]], &[0, 2, 1])
            }
            (Layout::FlattenedNhwc { c, h, w }, _) => {
                transpose_data(storage, &[1, h, w, c], &[0, 3, 1, 2])
            }
            _ => storage.to_vec(),
        }
    }
}

/// Output length of a sliding window along one axis:
/// `(input + pads − dilated_kernel) / stride + 1`, rounded down, or up when
/// `ceil` (ONNX `ceil_mode`).
pub fn window_out_len(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    pad_begin: usize,
    pad_end: usize,
    ceil: bool,
) -> Result<usize> {
    ensure!(
        kernel >= 1 && stride >= 1 && dilation >= 1,
        "kernel, stride and dilation must be ≥ 1"
    );
    let span = (kernel - 1) * dilation + 1;
    let padded = input + pad_begin + pad_end;
    ensure!(
        padded >= span,
        "window of {span} does not fit in {input} + {pad_begin} + {pad_end} padding"
    );
    let n = padded - span;
    Ok(if ceil { n.div_ceil(stride) } else { n / stride } + 1)
}

/// Pads `(begin, end)` for `auto_pad = SAME_UPPER` (`upper`, extra pad at
/// the end) or `SAME_LOWER` (extra pad at the beginning): the output has
/// `ceil(input / stride)` elements.
pub fn same_pads(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    upper: bool,
) -> (usize, usize) {
    let stride = stride.max(1);
    let out = input.div_ceil(stride);
    let span = (kernel.max(1) - 1) * dilation.max(1) + 1;
    let total = ((out.saturating_sub(1)) * stride + span).saturating_sub(input);
    let small = total / 2;
    if upper {
        (small, total - small)
    } else {
        (total - small, small)
    }
}
