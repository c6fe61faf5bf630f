//! PARDEF-style protection on the host: device keys, protecting an artifact,
//! loading a protected one, fault injection.
//!
//! The layout and the key, interleaver and tag definitions live in the
//! runtime ([`sturdy_runtime::protect`]): the host writes exactly what the
//! board reads, through the same functions.

pub mod attack;
pub mod inject;
pub mod key;
pub mod reparam;

use crate::artifact_writer::assemble;
use crate::fsutil::AlignedBytes;
use crate::host_model::HostModel;
use anyhow::{anyhow, bail, Result};
use serde_json::{json, Value};
use sturdy_runtime::format::*;
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};
use sturdy_runtime::protect::{
    encode_stored, rate_tag, verify_in_place, Health, Key, Layout, ProtectError, ProtectedArtifact,
    Subkeys, NONCE_LEN, TAG_LEN,
};
use sturdy_runtime::Model;

/// Bytes of inner artifact per tagged block unless told otherwise.
pub const DEFAULT_BLOCK_LEN: usize = 1024;

/// Which layers `protect` applies.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Keyed channel permutation of the weights (function-preserving).
    pub reparam: bool,
    /// QC-LDPC code of the stored image; `None` stores it uncoded.
    pub code: Option<Code>,
    /// A keyed tag per block of `block_len` bytes.
    pub mac: bool,
    /// Bytes per tagged block (multiple of 4).
    pub block_len: usize,
    /// The in-place layout ([`PROTECT_IN_PLACE`], needs the code): the
    /// coded image starts with the inner artifact, so a RAM-resident
    /// artifact runs where it lies after [`verify_in_place`].
    pub in_place: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reparam: true,
            code: Some(Code::new(Length::N1944, Rate::R1_2)),
            mac: true,
            block_len: DEFAULT_BLOCK_LEN,
            in_place: false,
        }
    }
}

/// The plain artifact without its metadata (what the device decodes into
/// RAM: graph, weights, and the guards, input-alignment and
/// logit-adjustment sections that change what inference computes), and
/// the metadata.
pub fn split_inner(plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let aligned = AlignedBytes::new(plain);
    let model = Model::parse(aligned.as_bytes()).map_err(|e| anyhow!("invalid artifact: {e}"))?;
    let a = model.artifact();
    let bodies: Vec<(u32, &[u8])> = a
        .sections()
        .iter()
        .filter(|s| s.kind != SECTION_META)
        .map(|s| {
            (
                s.kind,
                &a.bytes()[s.offset as usize..(s.offset + s.len) as usize],
            )
        })
        .collect();
    let inner = assemble(&bodies)?;
    Ok((inner, a.meta().to_vec()))
}

/// Protects a plain artifact with `key`; `nonce` is fresh randomness per
/// artifact (never reuse one with the same key).
///
/// With reparameterization on, the channels are first permuted with the
/// seed [`Subkeys::reparam_seed`] of key and nonce. With the code and the
/// tags both off, the result is the reparameterized *plain* artifact (it
/// runs without the key; the key and nonce are needed only to redo it).
pub fn protect(
    plain: &[u8],
    key: &Key,
    nonce: [u8; NONCE_LEN],
    options: Options,
) -> Result<Vec<u8>> {
    if options.code.is_none() && !options.mac && !options.reparam {
        bail!("nothing to do: reparameterization, the code and the tags are all switched off");
    }
    let reparameterized;
    let plain = if options.reparam {
        let seed = Subkeys::reparam_seed(key, &nonce);
        reparameterized = reparam::reparameterize(plain, &seed)?.0;
        if options.code.is_none() && !options.mac {
            return Ok(reparameterized);
        }
        reparameterized.as_slice()
    } else {
        plain
    };
    if options.block_len == 0 || options.block_len % ALIGN != 0 {
        bail!("the tag block length must be a positive multiple of {ALIGN} bytes");
    }
    if options.in_place && options.code.is_none() {
        bail!("--in-place needs the LDPC code (uncoded storage is already in place)");
    }
    let (inner, meta) = split_inner(plain)?;
    let inner_words: Vec<u32> = inner
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut header = ProtectionHeader {
        version: PROTECTION_VERSION,
        flags: 0,
        inner_len: u32::try_from(inner.len())?,
        code_length: 0,
        code_rate: 0,
        codewords: 0,
        block_len: 0,
        block_count: 0,
        reserved: 0,
        nonce,
        key_check: [0; TAG_LEN],
    };
    if options.reparam {
        header.flags |= PROTECT_REPARAM;
    }
    if let Some(code) = options.code {
        header.flags |= PROTECT_LDPC;
        header.code_length = code.n() as u16;
        header.code_rate = rate_tag(code.rate());
        header.codewords = u32::try_from((inner.len() * 8).div_ceil(code.k()))?;
        if options.in_place {
            header.flags |= PROTECT_IN_PLACE;
        }
    }
    if options.mac {
        header.flags |= PROTECT_MAC;
        header.block_len = u32::try_from(options.block_len)?;
        header.block_count = u32::try_from(inner.len().div_ceil(options.block_len))?;
    }
    let keys = Subkeys::derive(key, &nonce);
    header.key_check = keys.key_check(&header);

    let mut protection = bytemuck::bytes_of(&header).to_vec();
    if options.mac {
        let tags_of = keys.block_tags(&header);
        for (b, block) in inner.chunks(options.block_len).enumerate() {
            protection.extend_from_slice(&tags_of.tag(b as u32, block));
        }
    }
    let stored: Vec<u32> = match options.code {
        Some(code) => {
            let codewords = header.codewords as usize;
            let mut stored = vec![0u32; (codewords * code.n()).div_ceil(32)];
            let interleaver = keys.interleaver(codewords);
            encode_stored(
                &code,
                &interleaver,
                codewords,
                &inner_words,
                inner.len() * 8,
                &mut stored,
                Layout::of(&header),
            )
            .map_err(|e| anyhow!("encoding failed: {e}"))?;
            stored
        }
        None => inner_words,
    };
    let mut bodies: Vec<(u32, &[u8])> = vec![
        (SECTION_PROTECTION, &protection),
        (SECTION_CODED, bytemuck::cast_slice(&stored)),
    ];
    if !meta.is_empty() {
        bodies.push((SECTION_META, &meta));
    }
    assemble(&bodies)
}

/// A fresh random nonce.
pub fn fresh_nonce() -> Result<[u8; NONCE_LEN]> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|e| anyhow!("OS random generator failed: {e}"))?;
    Ok(nonce)
}

/// The health record as JSON (the `health` object of `sturdy run --json`).
pub fn health_json(h: &Health) -> Value {
    json!({
        "codewords_checked": h.codewords_checked,
        "corrected_words": h.corrected_words,
        "corrected_bits": h.corrected_bits,
        "uncorrectable_words": h.uncorrectable_words,
        "blocks_checked": h.blocks_checked,
        "mac_failures": h.mac_failures,
    })
}

/// Recovers the inner artifact of protected `bytes` with the runtime: an
/// in-place artifact through [`verify_in_place`] on a RAM copy of the
/// file (as a device holding it in RAM would), any other through the
/// decode-into-RAM [`load`](sturdy_runtime::protect::load). The health
/// record comes back whether or not loading succeeded.
pub fn recover(bytes: &[u8], key: &Key) -> (Result<Vec<u8>, ProtectError>, Health) {
    let mut aligned = AlignedBytes::new(bytes);
    let mut health = Health::default();
    let mut scratch: Box<DecoderScratch> = Box::default();
    let (inner_len, in_place) = match ProtectedArtifact::parse(aligned.as_bytes()) {
        Ok(p) => (p.inner_len(), p.layout() == Layout::InPlace),
        Err(e) => return (Err(e), health),
    };
    let result = if in_place {
        verify_in_place(aligned.words_mut(), key, &mut scratch, &mut health)
            .map(|m| m.artifact().bytes().to_vec())
    } else {
        let mut ram = vec![0u32; inner_len / 4];
        sturdy_runtime::protect::load(aligned.as_bytes(), key, &mut ram, &mut scratch, &mut health)
            .map(|m| m.artifact().bytes().to_vec())
    };
    (result, health)
}

/// Loads a protected artifact for host execution: the runtime's loader
/// recovers the inner artifact, the host reads the uncoded metadata.
pub fn load_host(bytes: &[u8], key: &Key) -> Result<(HostModel, Health)> {
    let aligned = AlignedBytes::new(bytes);
    let protected = ProtectedArtifact::parse(aligned.as_bytes())
        .map_err(|e| anyhow!("invalid protected artifact: {e}"))?;
    let meta = protected.meta().to_vec();
    let (inner, health) = recover(bytes, key);
    let inner = inner.map_err(|e| {
        anyhow!(
            "refusing the protected model: {e} (health: {})",
            health_json(&health)
        )
    })?;
    let mut model = HostModel::from_parts(&inner, &meta)?;
    model.set_protected_source(bytes, *key);
    Ok((model, health))
}

/// RAM each loading mode needs for protected artifact `p` of `total`
/// bytes: decoding into RAM needs the inner copy (plus the artifact itself
/// when that is RAM-resident rather than in XIP flash); verifying in place
/// needs the RAM-resident artifact only (`null` for a sequential image).
fn ram_json(p: &ProtectedArtifact<'_>, total: usize) -> Value {
    let inner = p.inner_len();
    json!({
        "decode_into_ram_from_flash": inner,
        "decode_into_ram_from_ram": total + inner,
        "verify_in_place": p.runs_in_place().then_some(total),
    })
}

/// Flash accounting of a protected artifact for `inspect`.
pub fn report(bytes: &[u8]) -> Result<Value> {
    let aligned = AlignedBytes::new(bytes);
    let p = ProtectedArtifact::parse(aligned.as_bytes())
        .map_err(|e| anyhow!("invalid protected artifact: {e}"))?;
    let h = p.header();
    let inner = p.inner_len();
    let stored = p.stored().len() * 4;
    let (parity_bits, padding_bits, code) = match p.code() {
        Some(c) => {
            let cw = h.codewords as usize;
            let rate = match c.rate() {
                Rate::R1_2 => "1/2",
                Rate::R2_3 => "2/3",
                Rate::R3_4 => "3/4",
                Rate::R5_6 => "5/6",
            };
            (
                cw * c.m(),
                cw * c.k() - inner * 8,
                json!({"n": c.n(), "k": c.k(), "rate": rate, "codewords": cw}),
            )
        }
        None => (0, 0, Value::Null),
    };
    let tags = p.tags().len();
    let mode = match p.layout() {
        Layout::InPlace => "verify in place",
        Layout::Sequential => "decode into RAM",
    };
    let aging = serde_json::from_slice::<crate::meta::Meta>(p.meta())
        .ok()
        .and_then(|m| m.aging);
    Ok(json!({
        "aging_plan": aging,
        "mode": mode,
        "ram": ram_json(&p, bytes.len()),
        "inner_bytes": inner,
        "stored_bytes": stored,
        "parity_bytes": parity_bits as f64 / 8.0,
        "message_padding_bytes": padding_bits as f64 / 8.0,
        "tag_bytes": tags,
        "tag_blocks": h.block_count,
        "block_len": h.block_len,
        "protection_header_bytes": PROTECTION_HEADER_SIZE,
        "code": code,
        "ldpc": h.flags & PROTECT_LDPC != 0,
        "mac": h.flags & PROTECT_MAC != 0,
        "reparam": h.flags & PROTECT_REPARAM != 0,
        "overhead_vs_inner": (stored + tags + PROTECTION_HEADER_SIZE) as f64 / inner as f64 - 1.0,
        "ram_bytes_to_load": inner,
        "total_bytes": bytes.len(),
    }))
}
