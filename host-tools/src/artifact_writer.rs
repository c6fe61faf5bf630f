//! Builds artifact bytes from tensors, ops and constants — the inverse of
//! `sturdy_runtime::Artifact::parse`, using the same record definitions.

use anyhow::{bail, Result};
use sturdy_runtime::format::*;

/// Collects records and constants, then lays out the artifact.
#[derive(Debug, Default)]
pub struct ArtifactBuilder {
    tensors: Vec<TensorRecord>,
    ops: Vec<OpRecord>,
    weights: Vec<u8>,
}

/// Quantization of an int8 tensor, as recorded for host-side conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Real value of one step.
    pub scale: f32,
    /// Integer that represents real 0.
    pub zero_point: i32,
}

impl ArtifactBuilder {
    /// An empty artifact.
    pub fn new() -> Self {
        Self::default()
    }

    fn push_tensor(
        &mut self,
        dtype: u8,
        dims: &[usize],
        q: QParams,
        location: u8,
        offset: usize,
        len: usize,
    ) -> Result<u16> {
        if dims.is_empty() || dims.len() > 4 {
            bail!("tensor rank {} is outside 1..=4", dims.len());
        }
        let index = self.tensors.len();
        if index >= NO_TENSOR as usize {
            bail!("more than {} tensors", NO_TENSOR);
        }
        let mut record_dims = [1u32; 4];
        for (slot, &d) in record_dims.iter_mut().zip(dims) {
            *slot = u32::try_from(d)?;
        }
        self.tensors.push(TensorRecord {
            dtype,
            rank: dims.len() as u8,
            location,
            reserved0: 0,
            dims: record_dims,
            zero_point: q.zero_point,
            scale_bits: q.scale.to_bits(),
            offset: u32::try_from(offset)?,
            len: u32::try_from(len)?,
            reserved1: 0,
        });
        Ok(index as u16)
    }

    fn push_weights(&mut self, bytes: &[u8]) -> usize {
        let offset = self.weights.len();
        self.weights.extend_from_slice(bytes);
        self.weights
            .resize(self.weights.len().next_multiple_of(ALIGN), 0);
        offset
    }

    /// Adds an int8 activation living in the arena; its offset is set later
    /// by [`ArtifactBuilder::set_arena_offset`] once the plan is known.
    pub fn add_activation(&mut self, dims: &[usize], q: QParams) -> Result<u16> {
        let len = dims.iter().product();
        self.push_tensor(DTYPE_I8, dims, q, LOC_ARENA, 0, len)
    }

    /// Places activation `tensor` at `offset` in the arena.
    pub fn set_arena_offset(&mut self, tensor: u16, offset: usize) -> Result<()> {
        self.tensors[tensor as usize].offset = u32::try_from(offset)?;
        Ok(())
    }

    /// Adds an int8 constant to the weights section.
    pub fn add_i8(&mut self, dims: &[usize], data: &[i8], q: QParams) -> Result<u16> {
        let offset = self.push_weights(bytemuck::cast_slice(data));
        self.push_tensor(DTYPE_I8, dims, q, LOC_WEIGHTS, offset, data.len())
    }

    /// Adds int4 Conv/FC weights (`codes` in `[-7, 7]`, storage order),
    /// packed two per byte as `DTYPE_I4`.
    pub fn add_i4(&mut self, dims: &[usize], codes: &[i8]) -> Result<u16> {
        if dims.iter().product::<usize>() != codes.len() {
            bail!("int4 tensor of shape {dims:?} given {} codes", codes.len());
        }
        if let Some(c) = codes.iter().find(|c| !(-7..=7).contains(*c)) {
            bail!("int4 code {c} is outside [-7, 7]");
        }
        let packed: Vec<u8> = sturdy_runtime::int4::pack(codes).collect();
        let offset = self.push_weights(&packed);
        let q = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        self.push_tensor(DTYPE_I4, dims, q, LOC_WEIGHTS, offset, packed.len())
    }

    /// Adds an int32 constant (bias, multipliers, shifts) to the weights section.
    pub fn add_i32(&mut self, dims: &[usize], data: &[i32]) -> Result<u16> {
        let offset = self.push_weights(bytemuck::cast_slice(data));
        let q = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        self.push_tensor(DTYPE_I32, dims, q, LOC_WEIGHTS, offset, data.len() * 4)
    }

    /// Adds a uint32 table to the weights section.
    pub fn add_u32(&mut self, dims: &[usize], data: &[u32]) -> Result<u16> {
        let offset = self.push_weights(bytemuck::cast_slice(data));
        let q = QParams {
            scale: 0.0,
            zero_point: 0,
        };
        self.push_tensor(DTYPE_U32, dims, q, LOC_WEIGHTS, offset, data.len() * 4)
    }

    /// Appends an op (execution order = call order).
    pub fn add_op(&mut self, kind: u16, inputs: &[u16], output: u16, params: &[i32]) -> Result<()> {
        if inputs.len() > MAX_OP_INPUTS || params.len() > 10 {
            bail!(
                "op kind {kind} has {} inputs / {} params: too many",
                inputs.len(),
                params.len()
            );
        }
        let mut record = OpRecord {
            kind,
            input_count: inputs.len() as u16,
            inputs: [NO_TENSOR; MAX_OP_INPUTS],
            output,
            reserved: 0,
            params: [0; 10],
        };
        record.inputs[..inputs.len()].copy_from_slice(inputs);
        record.params[..params.len()].copy_from_slice(params);
        self.ops.push(record);
        Ok(())
    }

    /// Bytes of constants so far.
    pub fn weights_len(&self) -> usize {
        self.weights.len()
    }

    /// Lays out header, section table, graph, weights and metadata, and
    /// seals the header with its CRC.
    pub fn finish(
        self,
        input: u16,
        output: u16,
        arena_size: usize,
        meta: &[u8],
    ) -> Result<Vec<u8>> {
        let graph_header = GraphHeader {
            tensor_count: self.tensors.len() as u32,
            op_count: self.ops.len() as u32,
            input: input as u32,
            output: output as u32,
            arena_size: u32::try_from(arena_size)?,
            reserved: [0; 3],
        };
        let mut graph = bytemuck::bytes_of(&graph_header).to_vec();
        graph.extend_from_slice(bytemuck::cast_slice(&self.tensors));
        graph.extend_from_slice(bytemuck::cast_slice(&self.ops));

        assemble(&[
            (SECTION_GRAPH, graph.as_slice()),
            (SECTION_WEIGHTS, &self.weights),
            (SECTION_META, meta),
        ])
    }
}

/// Lays out header, section table and `bodies` (in order), and seals the
/// header with its CRC.
pub fn assemble(bodies: &[(u32, &[u8])]) -> Result<Vec<u8>> {
    let mut offset = HEADER_SIZE + bodies.len() * SECTION_ENTRY_SIZE;
    let mut table = Vec::new();
    for &(kind, body) in bodies {
        offset = offset.next_multiple_of(ALIGN);
        table.push(SectionEntry {
            kind,
            offset: u32::try_from(offset)?,
            len: u32::try_from(body.len())?,
            reserved: 0,
        });
        offset += body.len();
    }
    let total_len = offset.next_multiple_of(ALIGN);
    let mut header = Header {
        magic: MAGIC,
        version_major: VERSION_MAJOR,
        version_minor: VERSION_MINOR,
        flags: 0,
        total_len: u32::try_from(total_len)?,
        section_count: table.len() as u32,
        header_crc: 0,
        reserved: [0; 9],
    };
    let mut sealed = bytemuck::bytes_of(&header).to_vec();
    sealed.extend_from_slice(bytemuck::cast_slice(&table));
    header.header_crc = sturdy_runtime::crc32(&sealed);

    let mut out = vec![0u8; total_len];
    out[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
    out[HEADER_SIZE..sealed.len()].copy_from_slice(&sealed[HEADER_SIZE..]);
    for (entry, &(_, body)) in table.iter().zip(bodies) {
        out[entry.offset as usize..entry.offset as usize + body.len()].copy_from_slice(body);
    }
    Ok(out)
}

/// The artifact `bytes` with its GUARDS section replaced by `guards` (one
/// record per op), every other section kept as it is.
pub fn with_guards(bytes: &[u8], guards: &[GuardRecord]) -> Result<Vec<u8>> {
    let aligned = crate::fsutil::AlignedBytes::new(bytes);
    let a = sturdy_runtime::Artifact::parse(aligned.as_bytes())
        .map_err(|e| anyhow::anyhow!("invalid artifact: {e}"))?;
    anyhow::ensure!(
        guards.len() == a.ops().len(),
        "{} guards for {} ops",
        guards.len(),
        a.ops().len()
    );
    let header = GuardHeader {
        version: GUARDS_VERSION,
        op_count: u32::try_from(guards.len())?,
        reserved: [0; 2],
    };
    let mut body = bytemuck::bytes_of(&header).to_vec();
    body.extend_from_slice(bytemuck::cast_slice(guards));
    with_section(bytes, SECTION_GUARDS, &body)
}

/// The artifact `bytes` with its section of `kind` replaced by (or, if
/// absent, extended with) `body`; every other section kept as it is. The
/// body is written as given (tests write malformed ones on purpose); the
/// runtime's parse is what judges it.
pub fn with_section(bytes: &[u8], kind: u32, body: &[u8]) -> Result<Vec<u8>> {
    let aligned = crate::fsutil::AlignedBytes::new(bytes);
    let all = aligned.as_bytes();
    let sections = sturdy_runtime::Artifact::parse(all)
        .map_err(|e| anyhow::anyhow!("invalid artifact: {e}"))?
        .sections();
    let mut bodies: Vec<(u32, &[u8])> = sections
        .iter()
        .filter(|s| s.kind != kind)
        .map(|s| (s.kind, &all[s.offset as usize..(s.offset + s.len) as usize]))
        .collect();
    bodies.push((kind, body));
    assemble(&bodies)
}

/// The body of an INPUT_ALIGN section: one 256-entry table per domain
/// (`tables[d][c + 128]`), the reference domain and its input CDF.
pub fn input_align_body(tables: &[[i8; 256]], reference: u32, cdf: &[u16; 256]) -> Result<Vec<u8>> {
    let header = InputAlignHeader {
        version: INPUT_ALIGN_VERSION,
        domains: u32::try_from(tables.len())?,
        reference,
        reserved: 0,
    };
    let mut body = bytemuck::bytes_of(&header).to_vec();
    for t in tables {
        body.extend_from_slice(bytemuck::cast_slice(t));
    }
    body.extend_from_slice(bytemuck::cast_slice(cdf));
    Ok(body)
}

/// The body of a LOGIT_ADJUST section for record `tensor`.
pub fn logit_adjust_body(tensor: u16, margin: i32, offsets: &[i32]) -> Result<Vec<u8>> {
    let header = LogitAdjustHeader {
        version: LOGIT_ADJUST_VERSION,
        tensor: tensor as u32,
        classes: u32::try_from(offsets.len())?,
        margin,
    };
    let mut body = bytemuck::bytes_of(&header).to_vec();
    body.extend_from_slice(bytemuck::cast_slice(offsets));
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int4_constants_are_packed_low_nibble_first() {
        let mut b = ArtifactBuilder::new();
        let t = b.add_i4(&[1, 3], &[-7, 7, 1]).unwrap();
        // −7 → 0x9, 7 → 0x7, 1 → 0x1, high nibble of the last byte 0;
        // padded to 4 bytes; len counts the packed bytes.
        assert_eq!(b.weights, [0x79, 0x01, 0, 0]);
        let r = b.tensors[t as usize];
        assert_eq!((r.dtype, r.len, r.location), (DTYPE_I4, 2, LOC_WEIGHTS));
        assert!(b.add_i4(&[2], &[-8, 0]).is_err(), "-8 is never written");
        assert!(b.add_i4(&[3], &[1, 2]).is_err(), "shape and codes disagree");
    }
}
