//! The checked, zero-copy view of an artifact's bytes.
//!
//! [`Artifact::parse`] checks the header, the CRC over header and section
//! table, every section's bounds and alignment, and every tensor record,
//! then hands out typed slices that borrow the original bytes (flash, XIP).
//! Ops are checked one level up, by [`crate::Model`].

use crate::adaptation::{InputAlign, LogitAdjust};
use crate::crc32::crc32_update;
use crate::format::*;
use crate::int4::packed_len;
use crate::Error;
use bytemuck::Pod;

/// Most sections an artifact may list (bounds the header CRC work).
pub const MAX_SECTIONS: usize = 32;

/// A structurally valid artifact borrowed from its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Artifact<'a> {
    bytes: &'a [u8],
    sections: &'a [SectionEntry],
    graph: GraphHeader,
    tensors: &'a [TensorRecord],
    ops: &'a [OpRecord],
    weights: &'a [u8],
    meta: &'a [u8],
    guards: Option<&'a [GuardRecord]>,
    input_align: Option<InputAlign<'a>>,
    drift: Option<DriftSettings>,
    logit_adjust: Option<LogitAdjust<'a>>,
}

/// Reads a `T` at `offset`, or says how many bytes were missing.
fn read<T: Pod>(bytes: &[u8], offset: usize) -> Result<T, Error> {
    let needed = core::mem::size_of::<T>();
    let end = offset
        .checked_add(needed)
        .ok_or(Error::Truncated { offset, needed })?;
    let raw = bytes
        .get(offset..end)
        .ok_or(Error::Truncated { offset, needed })?;
    Ok(bytemuck::pod_read_unaligned(raw))
}

/// Casts `count` records of `T` starting at `offset` in place.
fn slice_of<T: Pod>(bytes: &[u8], offset: usize, count: usize) -> Result<&[T], Error> {
    let needed = count
        .checked_mul(core::mem::size_of::<T>())
        .ok_or(Error::Truncated {
            offset,
            needed: usize::MAX,
        })?;
    let end = offset
        .checked_add(needed)
        .ok_or(Error::Truncated { offset, needed })?;
    let raw = bytes
        .get(offset..end)
        .ok_or(Error::Truncated { offset, needed })?;
    bytemuck::try_cast_slice(raw).map_err(|_| Error::Misaligned)
}

/// Element size in bytes of a whole-byte `DTYPE_*` tag (`None` for
/// [`DTYPE_I4`], two elements per byte, and for unknown tags).
pub fn dtype_size(dtype: u8) -> Option<usize> {
    match dtype {
        DTYPE_I8 => Some(1),
        DTYPE_I32 | DTYPE_U32 => Some(4),
        _ => None,
    }
}

impl<'a> Artifact<'a> {
    /// Validates `bytes` as an artifact. Never panics, never reads out of
    /// bounds; any inconsistency is an [`Error`] naming what is wrong.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let sections = container(bytes)?;
        let section = |kind| -> Result<Option<&'a [u8]>, Error> {
            let mut found = sections.iter().filter(|s| s.kind == kind);
            let first = found.next();
            if found.next().is_some() {
                return Err(Error::BadSection { kind });
            }
            Ok(first.map(|s| &bytes[s.offset as usize..s.offset as usize + s.len as usize]))
        };
        let graph_bytes = section(SECTION_GRAPH)?.ok_or(Error::MissingSection {
            kind: SECTION_GRAPH,
        })?;
        let weights = section(SECTION_WEIGHTS)?.unwrap_or(&[]);
        let meta = section(SECTION_META)?.unwrap_or(&[]);
        let guard_bytes = section(SECTION_GUARDS)?;
        let align_bytes = section(SECTION_INPUT_ALIGN)?;
        let logit_bytes = section(SECTION_LOGIT_ADJUST)?;
        let drift_bytes = section(SECTION_DRIFT)?;

        let graph: GraphHeader = read(graph_bytes, 0)?;
        let tensor_count = graph.tensor_count as usize;
        if tensor_count > NO_TENSOR as usize {
            return Err(Error::BadSection {
                kind: SECTION_GRAPH,
            });
        }
        let tensors: &[TensorRecord] = slice_of(graph_bytes, GRAPH_HEADER_SIZE, tensor_count)?;
        let ops_offset = GRAPH_HEADER_SIZE + tensor_count * TENSOR_RECORD_SIZE;
        let ops: &[OpRecord] = slice_of(graph_bytes, ops_offset, graph.op_count as usize)?;

        let artifact = Artifact {
            bytes,
            sections,
            graph,
            tensors,
            ops,
            weights,
            meta,
            guards: guard_bytes
                .map(|g| parse_guards(g, graph.op_count as usize))
                .transpose()?,
            input_align: align_bytes.map(InputAlign::parse).transpose()?,
            drift: drift_bytes.map(crate::drift::parse_settings).transpose()?,
            logit_adjust: logit_bytes
                .map(|l| LogitAdjust::parse(l, tensors, ops))
                .transpose()?,
        };
        for i in 0..tensors.len() {
            artifact.check_tensor(i)?;
        }
        for io in [graph.input, graph.output] {
            let t = tensors.get(io as usize).ok_or(Error::BadTensor {
                tensor: io as usize,
            })?;
            if t.location != LOC_ARENA || t.dtype != DTYPE_I8 {
                return Err(Error::BadTensor {
                    tensor: io as usize,
                });
            }
        }
        Ok(artifact)
    }

    fn check_tensor(&self, index: usize) -> Result<(), Error> {
        let bad = Error::BadTensor { tensor: index };
        let t = &self.tensors[index];
        let rank = t.rank as usize;
        let zero_point_ok = i8::try_from(t.zero_point).is_ok();
        if !(1..=4).contains(&rank) || t.dims[rank..].iter().any(|&d| d != 1) || !zero_point_ok {
            return Err(bad);
        }
        let elements = t.dims.iter().try_fold(1usize, |acc, &d| {
            (d > 0)
                .then_some(())
                .and_then(|_| acc.checked_mul(d as usize))
        });
        // Packed int4 is for Conv/FC weights only: a constant, byte-aligned.
        let (bytes, align) = match t.dtype {
            DTYPE_I4 if t.location == LOC_WEIGHTS => (elements.map(packed_len), 1),
            dtype => {
                let size = dtype_size(dtype).ok_or(bad)?;
                (elements.and_then(|e| e.checked_mul(size)), size)
            }
        };
        let bytes = bytes.ok_or(bad)?;
        if bytes != t.len as usize || t.offset as usize % align != 0 {
            return Err(bad);
        }
        let end = (t.offset as usize).checked_add(bytes).ok_or(bad)?;
        let limit = match t.location {
            LOC_ARENA => self.graph.arena_size as usize,
            LOC_WEIGHTS => self.weights.len(),
            _ => return Err(bad),
        };
        if end > limit {
            return Err(bad);
        }
        Ok(())
    }

    /// The whole artifact.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The section table (for per-section flash reports).
    pub fn sections(&self) -> &'a [SectionEntry] {
        self.sections
    }

    /// The graph header: counts, model input/output tensors, arena size.
    pub fn graph(&self) -> &GraphHeader {
        &self.graph
    }

    /// All tensor records (each already checked against its section).
    pub fn tensors(&self) -> &'a [TensorRecord] {
        self.tensors
    }

    /// All op records, in execution order (checked by [`crate::Model`]).
    pub fn ops(&self) -> &'a [OpRecord] {
        self.ops
    }

    /// The weights section.
    pub fn weights(&self) -> &'a [u8] {
        self.weights
    }

    /// The metadata section (JSON for the host tools; empty if absent).
    pub fn meta(&self) -> &'a [u8] {
        self.meta
    }

    /// The activation guards, one per op (`None`: the artifact has no
    /// GUARDS section).
    pub fn guards(&self) -> Option<&'a [GuardRecord]> {
        self.guards
    }

    /// The per-domain input alignment tables (`None`: inputs run as given).
    pub fn input_align(&self) -> Option<InputAlign<'a>> {
        self.input_align
    }

    /// The drift-monitor settings (`None`: the artifact asks for none).
    pub fn drift(&self) -> Option<DriftSettings> {
        self.drift
    }

    /// The logit adjustment (`None`: outputs are the model's own).
    pub fn logit_adjust(&self) -> Option<LogitAdjust<'a>> {
        self.logit_adjust
    }

    /// Tensor record `index`, or `BadTensor`.
    pub fn tensor(&self, index: usize) -> Result<&'a TensorRecord, Error> {
        self.tensors
            .get(index)
            .ok_or(Error::BadTensor { tensor: index })
    }

    /// A constant tensor's elements, cast in place from the weights section.
    pub fn constant<T: Pod>(&self, index: usize, dtype: u8) -> Result<&'a [T], Error> {
        let t = self.tensor(index)?;
        if t.location != LOC_WEIGHTS || t.dtype != dtype {
            return Err(Error::BadTensor { tensor: index });
        }
        let raw = &self.weights[t.offset as usize..t.offset as usize + t.len as usize];
        bytemuck::try_cast_slice(raw).map_err(|_| Error::BadTensor { tensor: index })
    }
}

/// Checks a GUARDS section: header, length, one well-formed record per op.
fn parse_guards(bytes: &[u8], op_count: usize) -> Result<&[GuardRecord], Error> {
    let bad = Error::BadGuards { op: None };
    let header: GuardHeader = read(bytes, 0).map_err(|_| bad)?;
    if header.version != GUARDS_VERSION
        || header.op_count as usize != op_count
        || header.reserved != [0; 2]
        || bytes.len() != GUARD_HEADER_SIZE + op_count * GUARD_RECORD_SIZE
    {
        return Err(bad);
    }
    let records: &[GuardRecord] = slice_of(bytes, GUARD_HEADER_SIZE, op_count).map_err(|_| bad)?;
    for (op, g) in records.iter().enumerate() {
        if g.min > g.max || g.flags & !GUARD_ON != 0 || g.reserved != 0 {
            return Err(Error::BadGuards { op: Some(op) });
        }
    }
    Ok(records)
}

/// Checks an artifact container — magic, version, length, alignment,
/// header CRC, every section's bounds and alignment — and returns its
/// section table. Shared by plain and protected artifacts.
pub(crate) fn container(bytes: &[u8]) -> Result<&[SectionEntry], Error> {
    let header: Header = read(bytes, 0)?;
    if header.magic != MAGIC {
        return Err(Error::BadMagic);
    }
    if header.version_major != VERSION_MAJOR {
        return Err(Error::UnsupportedVersion {
            major: header.version_major,
        });
    }
    if header.total_len as usize != bytes.len() {
        return Err(Error::Truncated {
            offset: bytes.len(),
            needed: header.total_len as usize,
        });
    }
    if bytes.as_ptr() as usize % ALIGN != 0 {
        return Err(Error::Misaligned);
    }
    let count = header.section_count as usize;
    if count > MAX_SECTIONS {
        return Err(Error::BadSection { kind: u32::MAX });
    }
    let sections: &[SectionEntry] = slice_of(bytes, HEADER_SIZE, count)?;
    check_header_crc(bytes, &header, count)?;
    for s in sections {
        let end = (s.offset as usize).checked_add(s.len as usize);
        if s.offset as usize % ALIGN != 0 || end.is_none_or(|e| e > bytes.len()) {
            return Err(Error::BadSection { kind: s.kind });
        }
    }
    Ok(sections)
}

fn check_header_crc(bytes: &[u8], header: &Header, sections: usize) -> Result<(), Error> {
    let mut zeroed = *header;
    zeroed.header_crc = 0;
    let table = &bytes[HEADER_SIZE..HEADER_SIZE + sections * SECTION_ENTRY_SIZE];
    let state = crc32_update(0xFFFF_FFFF, bytemuck::bytes_of(&zeroed));
    let computed = crc32_update(state, table) ^ 0xFFFF_FFFF;
    if computed != header.header_crc {
        return Err(Error::HeaderCrc {
            stored: header.header_crc,
            computed,
        });
    }
    Ok(())
}
