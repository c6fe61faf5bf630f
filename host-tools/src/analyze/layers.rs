//! Where each Conv/FC layer's stored parameters lie in a plain artifact,
//! and how to read and write its weight codes (int8 or packed int4): what
//! every campaign that damages one layer needs, so that "flip bit 6 of
//! layer 2" touches the bytes of layer 2 and nothing else.

use crate::fsutil::AlignedBytes;
use crate::meta::Meta;
use anyhow::{anyhow, bail, Result};
use std::ops::Range;
use sturdy_runtime::format::{DTYPE_I4, DTYPE_I8, OP_CONV2D, OP_FULLY_CONNECTED, SECTION_WEIGHTS};
use sturdy_runtime::Artifact;

/// One Conv/FC op's parameters, as absolute byte ranges of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightLayer {
    /// Op index in execution order.
    pub op: usize,
    /// ONNX node it came from.
    pub node: String,
    /// Weight codes.
    pub weights: Range<usize>,
    /// Whether the codes are packed int4 (else int8).
    pub int4: bool,
    /// Number of weight codes.
    pub count: usize,
    /// Output channels (the weights' outermost axis).
    pub channels: usize,
    /// int32 biases, one per channel.
    pub bias: Range<usize>,
    /// int32 Q31 multipliers, one per channel.
    pub multipliers: Range<usize>,
    /// int32 shifts, one per channel.
    pub shifts: Range<usize>,
}

impl WeightLayer {
    /// Bits per weight code: 8 or 4.
    pub fn code_bits(&self) -> u8 {
        if self.int4 {
            4
        } else {
            8
        }
    }

    /// Codes per output channel (the weights are channel-major).
    pub fn per_channel(&self) -> usize {
        self.count / self.channels.max(1)
    }

    /// Absolute file bit holding bit `bit` (0 = LSB) of weight code `i`.
    pub fn bit_position(&self, i: usize, bit: u8) -> usize {
        if self.int4 {
            (self.weights.start + i / 2) * 8 + 4 * (i % 2) + bit as usize
        } else {
            (self.weights.start + i) * 8 + bit as usize
        }
    }

    /// The weight codes as stored in `bytes` (a copy, sign-extended).
    pub fn codes(&self, bytes: &[u8]) -> Vec<i8> {
        let stored = &bytes[self.weights.clone()];
        (0..self.count)
            .map(|i| {
                if self.int4 {
                    let b = stored[i / 2];
                    if i % 2 == 0 {
                        sturdy_runtime::int4::low(b) as i8
                    } else {
                        sturdy_runtime::int4::high(b) as i8
                    }
                } else {
                    stored[i] as i8
                }
            })
            .collect()
    }

    /// Stores `codes` (clamped to the code range) back into `bytes`.
    pub fn set_codes(&self, bytes: &mut [u8], codes: &[i8]) {
        let (lo, hi) = self.code_range();
        let stored = &mut bytes[self.weights.clone()];
        for (i, &c) in codes.iter().enumerate().take(self.count) {
            let c = c.clamp(lo, hi);
            if self.int4 {
                let nibble = (c as u8) & 0x0f;
                let b = &mut stored[i / 2];
                *b = if i % 2 == 0 {
                    (*b & 0xf0) | nibble
                } else {
                    (*b & 0x0f) | (nibble << 4)
                };
            } else {
                stored[i] = c as u8;
            }
        }
    }

    /// Smallest and largest code the dtype holds.
    pub fn code_range(&self) -> (i8, i8) {
        if self.int4 {
            (-8, 7)
        } else {
            (-128, 127)
        }
    }
}

/// Every Conv/FC layer of the plain artifact `bytes`, in op order.
pub fn weight_layers(bytes: &[u8], meta: &Meta) -> Result<Vec<WeightLayer>> {
    let aligned = AlignedBytes::new(bytes);
    let a = Artifact::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let base = a
        .sections()
        .iter()
        .find(|s| s.kind == SECTION_WEIGHTS)
        .map(|s| s.offset as usize)
        .ok_or_else(|| anyhow!("the artifact has no weights section"))?;
    let mut layers = Vec::new();
    for (op, record) in a.ops().iter().enumerate() {
        if record.kind != OP_CONV2D && record.kind != OP_FULLY_CONNECTED {
            continue;
        }
        let range = |k: usize| -> Result<(Range<usize>, &sturdy_runtime::format::TensorRecord)> {
            let t = a
                .tensor(record.inputs[k] as usize)
                .map_err(|e| anyhow!("op {op}: {e}"))?;
            let start = base + t.offset as usize;
            Ok((start..start + t.len as usize, t))
        };
        let (weights, w) = range(1)?;
        let int4 = match w.dtype {
            DTYPE_I8 => false,
            DTYPE_I4 => true,
            other => bail!("op {op}: weights of dtype {other}"),
        };
        let dims = &w.dims[..w.rank as usize];
        let count: usize = dims.iter().map(|&d| d as usize).product();
        layers.push(WeightLayer {
            op,
            node: meta
                .ops
                .get(op)
                .map_or_else(|| format!("op {op}"), |m| m.node.clone()),
            weights,
            int4,
            count,
            channels: dims.first().map_or(1, |&d| d as usize),
            bias: range(2)?.0,
            multipliers: range(3)?.0,
            shifts: range(4)?.0,
        });
    }
    Ok(layers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(int4: bool) -> WeightLayer {
        WeightLayer {
            op: 0,
            node: "n".into(),
            weights: 2..(if int4 { 4 } else { 6 }),
            int4,
            count: 4,
            channels: 2,
            bias: 0..0,
            multipliers: 0..0,
            shifts: 0..0,
        }
    }

    #[test]
    fn int4_codes_round_trip_and_bits_land_in_their_nibble() {
        let l = layer(true);
        let mut bytes = vec![0u8; 6];
        l.set_codes(&mut bytes, &[-8, 7, -1, 20]);
        assert_eq!(bytes[2], 0x78, "low nibble -8 (0x8), high 7");
        assert_eq!(bytes[3], 0x7f, "-1 then 20 clamped to 7");
        assert_eq!(l.codes(&bytes), vec![-8, 7, -1, 7]);
        // Code 1's bit 0 is bit 4 of byte 2.
        assert_eq!(l.bit_position(1, 0), 2 * 8 + 4);
        assert_eq!(l.bit_position(2, 3), 3 * 8 + 3);
    }

    #[test]
    fn int8_codes_round_trip() {
        let l = layer(false);
        let mut bytes = vec![0u8; 6];
        l.set_codes(&mut bytes, &[-128, 127, -1, 5]);
        assert_eq!(&bytes[2..6], &[0x80, 0x7f, 0xff, 0x05]);
        assert_eq!(l.codes(&bytes), vec![-128, 127, -1, 5]);
        assert_eq!(l.bit_position(3, 7), 5 * 8 + 7);
        assert_eq!(l.per_channel(), 2);
    }
}
