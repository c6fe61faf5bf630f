//! Checked views of the two sections EmaQ-LT calibration leaves for the
//! device: per-domain input alignment and confidence-based logit
//! adjustment (layouts in [`crate::format`]).
//!
//! Both are optional and validated once by [`crate::Artifact::parse`];
//! an artifact without them runs exactly as before.

use crate::format::*;
use crate::Error;

/// The INPUT_ALIGN section: one monotone code→code table per domain and
/// the reference domain's input CDF.
#[derive(Debug, Clone, Copy)]
pub struct InputAlign<'a> {
    header: InputAlignHeader,
    tables: &'a [i8],
    reference_cdf: &'a [u16; ALIGN_TABLE_LEN],
}

impl<'a> InputAlign<'a> {
    /// Checks an INPUT_ALIGN section body: header, exact length, every
    /// table monotone non-decreasing (a projection of one CDF onto another
    /// never reorders codes; anything else is corruption).
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let bad = Error::BadInputAlign;
        let header: InputAlignHeader =
            bytemuck::try_pod_read_unaligned(bytes.get(..INPUT_ALIGN_HEADER_SIZE).ok_or(bad)?)
                .map_err(|_| bad)?;
        let domains = header.domains as usize;
        if header.version != INPUT_ALIGN_VERSION
            || header.domains == 0
            || header.domains > MAX_DOMAINS
            || header.reference >= header.domains
            || header.reserved != 0
        {
            return Err(bad);
        }
        let tables_len = domains * ALIGN_TABLE_LEN;
        let cdf_start = INPUT_ALIGN_HEADER_SIZE + tables_len;
        if bytes.len() != cdf_start + 2 * ALIGN_TABLE_LEN {
            return Err(bad);
        }
        let tables: &[i8] = bytemuck::cast_slice(&bytes[INPUT_ALIGN_HEADER_SIZE..cdf_start]);
        let reference_cdf: &[u16; ALIGN_TABLE_LEN] = bytemuck::try_cast_slice(&bytes[cdf_start..])
            .map_err(|_| bad)?
            .try_into()
            .map_err(|_| bad)?;
        let monotone = |s: &[i8]| s.windows(2).all(|w| w[0] <= w[1]);
        if !tables.chunks_exact(ALIGN_TABLE_LEN).all(monotone)
            || !reference_cdf.windows(2).all(|w| w[0] <= w[1])
        {
            return Err(bad);
        }
        Ok(InputAlign {
            header,
            tables,
            reference_cdf,
        })
    }

    /// Number of domains (ids `0..domains()`).
    pub fn domains(&self) -> u32 {
        self.header.domains
    }

    /// The domain the model was trained on (its table is the identity).
    pub fn reference(&self) -> u32 {
        self.header.reference
    }

    /// Domain `domain`'s table: entry `c + 128` is what input code `c` becomes.
    pub fn table(&self, domain: u32) -> Result<&'a [i8], Error> {
        let start = domain as usize * ALIGN_TABLE_LEN;
        self.tables
            .get(start..start + ALIGN_TABLE_LEN)
            .ok_or(Error::UnknownDomain {
                domain,
                domains: self.header.domains,
            })
    }

    /// The reference domain's input CDF: entry `c + 128` is the fraction
    /// (× 65535) of its input codes `≤ c`; the yardstick for drift.
    pub fn reference_cdf(&self) -> &'a [u16; ALIGN_TABLE_LEN] {
        self.reference_cdf
    }

    /// Maps `input` codes in place through `domain`'s table.
    pub fn apply(&self, domain: u32, input: &mut [i8]) -> Result<(), Error> {
        let table = self.table(domain)?;
        for x in input {
            *x = table[(*x as i32 + 128) as usize & 0xFF];
        }
        Ok(())
    }
}

/// The LOGIT_ADJUST section: which tensor, the margin, per-class offsets.
#[derive(Debug, Clone, Copy)]
pub struct LogitAdjust<'a> {
    header: LogitAdjustHeader,
    offsets: &'a [i32],
}

impl<'a> LogitAdjust<'a> {
    /// Checks a LOGIT_ADJUST section body against the graph: header,
    /// length, offsets within ±[`MAX_LOGIT_OFFSET`], and a tensor that is
    /// an int8 arena tensor of whole rows written by some op.
    pub(crate) fn parse(
        bytes: &'a [u8],
        tensors: &[TensorRecord],
        ops: &[OpRecord],
    ) -> Result<Self, Error> {
        let bad = Error::BadLogitAdjust;
        let header: LogitAdjustHeader =
            bytemuck::try_pod_read_unaligned(bytes.get(..LOGIT_ADJUST_HEADER_SIZE).ok_or(bad)?)
                .map_err(|_| bad)?;
        let classes = header.classes as usize;
        if header.version != LOGIT_ADJUST_VERSION
            || classes == 0
            || header.margin < 0
            || bytes.len() != LOGIT_ADJUST_HEADER_SIZE + 4 * classes
        {
            return Err(bad);
        }
        let offsets: &[i32] =
            bytemuck::try_cast_slice(&bytes[LOGIT_ADJUST_HEADER_SIZE..]).map_err(|_| bad)?;
        if offsets.iter().any(|o| o.abs() > MAX_LOGIT_OFFSET) {
            return Err(bad);
        }
        let t = tensors.get(header.tensor as usize).ok_or(bad)?;
        let written = ops.iter().any(|op| op.output as u32 == header.tensor);
        if t.location != LOC_ARENA
            || t.dtype != DTYPE_I8
            || t.len as usize % classes != 0
            || !written
        {
            return Err(bad);
        }
        Ok(LogitAdjust { header, offsets })
    }

    /// The adjusted tensor's index.
    pub fn tensor(&self) -> u32 {
        self.header.tensor
    }

    /// Rows whose top-1 − top-2 code is below this are adjusted.
    pub fn margin(&self) -> i32 {
        self.header.margin
    }

    /// Per-class offsets, subtracted from an unsure row.
    pub fn offsets(&self) -> &'a [i32] {
        self.offsets
    }
}
