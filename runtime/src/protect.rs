//! Protected artifacts: QC-LDPC coded storage behind a keyed interleaver,
//! and a keyed integrity tag per block (PARDEF layers 2 and 3).
//!
//! A protected artifact is an ordinary artifact container (same header,
//! CRC and section table, see [`crate::format`]) whose sections are
//! [`SECTION_PROTECTION`] (a [`ProtectionHeader`] and the tags),
//! [`SECTION_CODED`] (the stored image) and optionally [`SECTION_META`].
//! The stored image encodes the *inner artifact*: a complete plain artifact
//! (graph + weights, no metadata), so every byte the interpreter and the
//! kernels read — weights, biases, requantization arrays, tables and the op
//! parameters — is covered by the code and the tags.
//!
//! [`load`] rebuilds the inner artifact into caller RAM ("decode into RAM
//! at load"): it checks every codeword's syndrome, decodes only the failing
//! ones, verifies every tag, fills a [`Health`] record and returns the plain
//! [`Model`] over the recovered bytes. An uncorrectable codeword or a tag
//! mismatch is a [`ProtectError`], never a silently wrong model.
//!
//! # Keys
//!
//! The 256-bit device key never enters the artifact. Two subkeys are
//! derived per artifact from the key and the artifact's random 16-byte
//! nonce with keyed BLAKE2s-256 (different personalisation strings):
//! `k_mac` for the tags and `k_il` for the interleaver. A `key_check` tag
//! over the protection header lets [`load`] refuse a wrong key (or a
//! damaged header) up front.
//!
//! # Interleaver
//!
//! With `C` codewords of `n` bits, the stored image is `C·n` bits packed
//! LSB-first into `u32` words. Bit `j` of codeword `i` is stored at
//!
//! ```text
//! p(i, j) = j·C + ((a·i + b_j) mod C)
//! ```
//!
//! `a` (coprime to `C`) and the per-column offsets `b_j` come from `k_il`.
//! Any run of up to `C` consecutive stored bits (a burst, a flash word, a
//! row) therefore puts at most two bits (one per column it spans) into any
//! one codeword, and without the key an
//! attacker cannot tell which codeword a stored bit belongs to, so flips
//! aimed at one weight land, one each, in unknown codewords that the code
//! repairs.
//!
//! # Message layout
//!
//! The inner artifact's bytes form a little-endian bit stream (bit `t` =
//! bit `t % 8` of byte `t / 8`), zero-padded to `C·k` bits; codeword `i`
//! carries bits `i·k .. (i+1)·k` as its systematic part.
//!
//! # Tags
//!
//! The inner artifact is cut into blocks of `block_len` bytes (the last may
//! be shorter). Tag `b` = the first 16 bytes of BLAKE2s-MAC-256 under
//! `k_mac` of `header ‖ b as u32 LE ‖ block bytes`. A codeword is a function
//! of its message, so tagging the recovered message tags the stored
//! codewords: a block the decoder "corrected" into a different valid
//! codeword fails its tag.

use crate::artifact::container;
use crate::format::*;
use crate::ldpc::MAX_CODEWORD_WORDS;
use crate::ldpc::{decode, Code, DecoderScratch, LdpcError, Length, Rate, DEFAULT_MAX_ITERATIONS};
use crate::{Error, Model};
use blake2::digest::{FixedOutput, KeyInit, Update};
use blake2::Blake2sMac256;
use core::fmt;

/// Bytes of a device key (256 bits).
pub const KEY_LEN: usize = 32;
/// Bytes of one integrity tag.
pub const TAG_LEN: usize = 16;
/// Bytes of the per-artifact nonce.
pub const NONCE_LEN: usize = 16;

/// A 256-bit device key.
pub type Key = [u8; KEY_LEN];

/// What went wrong loading a protected artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectError {
    /// The container, or the recovered inner artifact, is malformed.
    Model(Error),
    /// The protection header or sections are inconsistent.
    BadProtection,
    /// The key check failed: a different key, or a damaged protection header.
    WrongKey,
    /// The caller's RAM cannot hold the inner artifact.
    RamTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes given.
        got: usize,
    },
    /// Codewords the decoder could not repair (more flips than the code corrects).
    Uncorrectable {
        /// Index of the first such codeword.
        codeword: u32,
        /// How many there were.
        count: u32,
    },
    /// Blocks whose integrity tag does not match: tampering, or a miscorrection.
    TagMismatch {
        /// Index of the first such block.
        block: u32,
        /// How many there were.
        count: u32,
    },
}

impl From<Error> for ProtectError {
    fn from(e: Error) -> Self {
        ProtectError::Model(e)
    }
}

impl fmt::Display for ProtectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtectError::Model(e) => write!(f, "{e}"),
            ProtectError::BadProtection => write!(f, "protection header is malformed"),
            ProtectError::WrongKey => {
                write!(f, "key check failed: wrong key, or a damaged protection header")
            }
            ProtectError::RamTooSmall { needed, got } => {
                write!(f, "weights RAM too small: {needed} bytes needed, {got} given")
            }
            ProtectError::Uncorrectable { codeword, count } => write!(
                f,
                "{count} uncorrectable codeword(s), first #{codeword}: too many bit flips"
            ),
            ProtectError::TagMismatch { block, count } => write!(
                f,
                "integrity tag mismatch in {count} block(s), first #{block}: the stored model was modified"
            ),
        }
    }
}

impl core::error::Error for ProtectError {}

/// What loading a protected artifact found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    /// Codewords whose syndrome was checked.
    pub codewords_checked: u32,
    /// Codewords that failed the check and were repaired.
    pub corrected_words: u32,
    /// Bits the decoder changed.
    pub corrected_bits: u32,
    /// Codewords the decoder could not repair.
    pub uncorrectable_words: u32,
    /// Tagged blocks checked.
    pub blocks_checked: u32,
    /// Blocks whose tag did not match.
    pub mac_failures: u32,
}

/// The two per-artifact subkeys derived from the device key and the nonce.
#[derive(Clone)]
pub struct Subkeys {
    mac: [u8; 32],
    interleave: [u8; 32],
}

impl fmt::Debug for Subkeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Subkeys(..)")
    }
}

fn blake2s_mac(key: &[u8], persona: &[u8; 8]) -> Blake2sMac256 {
    // The key is 32 bytes, the salt empty and the persona 8 bytes: all within
    // BLAKE2s limits, so construction cannot fail; fall back to the plain
    // keyed constructor to stay panic-free regardless.
    Blake2sMac256::new_with_salt_and_personal(Some(key), &[], persona).unwrap_or_else(|_| {
        let mut k = [0u8; 32];
        let len = key.len().min(32);
        k[..len].copy_from_slice(&key[..len]);
        <Blake2sMac256 as KeyInit>::new(&k.into())
    })
}

impl Subkeys {
    /// Derives the subkeys of the artifact with `nonce`.
    pub fn derive(key: &Key, nonce: &[u8; NONCE_LEN]) -> Subkeys {
        let derive = |persona: &[u8; 8]| -> [u8; 32] {
            let mut mac = blake2s_mac(key, persona);
            Update::update(&mut mac, nonce);
            mac.finalize_fixed().into()
        };
        Subkeys {
            mac: derive(b"sturdyKm"),
            interleave: derive(b"sturdyKi"),
        }
    }

    /// Seed of the keyed channel reparameterization (`sturdy protect`,
    /// host side only: the device never needs it, the reparameterized model
    /// runs as it is). Same derivation as the other subkeys, persona
    /// `sturdyKr`.
    pub fn reparam_seed(key: &Key, nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
        let mut mac = blake2s_mac(key, b"sturdyKr");
        Update::update(&mut mac, nonce);
        mac.finalize_fixed().into()
    }

    /// Tag over `header` (its `key_check` field zeroed) proving the key.
    pub fn key_check(&self, header: &ProtectionHeader) -> [u8; TAG_LEN] {
        let mut h = *header;
        h.key_check = [0; TAG_LEN];
        let mut mac = blake2s_mac(&self.mac, b"sturdyKc");
        Update::update(&mut mac, bytemuck::bytes_of(&h));
        truncate(mac.finalize_fixed().into())
    }

    /// Tag of block `index` with contents `block` (see the module docs).
    pub fn block_tag(&self, header: &ProtectionHeader, index: u32, block: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = blake2s_mac(&self.mac, b"sturdyTg");
        Update::update(&mut mac, bytemuck::bytes_of(header));
        Update::update(&mut mac, &index.to_le_bytes());
        Update::update(&mut mac, block);
        truncate(mac.finalize_fixed().into())
    }

    /// The interleaver for `codewords` codewords.
    pub fn interleaver(&self, codewords: usize) -> Interleaver {
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.interleave[8 * i..8 * i + 8]);
            u64::from_le_bytes(b)
        };
        Interleaver::new(codewords, word(0), word(1))
    }
}

fn truncate(full: [u8; 32]) -> [u8; TAG_LEN] {
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(&full[..TAG_LEN]);
    tag
}

/// Constant-time equality of two tags.
fn tags_equal(a: &[u8; TAG_LEN], b: &[u8]) -> bool {
    b.len() == TAG_LEN && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The keyed interleaver `p(i, j) = j·C + ((a·i + b_j) mod C)`.
#[derive(Debug, Clone, Copy)]
pub struct Interleaver {
    codewords: u64,
    a: u64,
    seed: u64,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Interleaver {
    /// The interleaver over `codewords` codewords with keyed words `s0`, `s1`.
    pub fn new(codewords: usize, s0: u64, s1: u64) -> Interleaver {
        let c = codewords.max(1) as u64;
        let mut a = if c > 1 { 1 + mix64(s0) % (c - 1) } else { 0 };
        // Coprimes are dense: this loop runs a handful of times.
        while c > 1 && gcd(a, c) != 1 {
            a = if a + 1 >= c { 1 } else { a + 1 };
        }
        Interleaver {
            codewords: c,
            a,
            seed: s1,
        }
    }

    /// Column offset `b_j` in `0..C` (multiply-shift range reduction, no division).
    fn offset(&self, j: usize) -> u64 {
        let r = mix64(self.seed ^ (j as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 32;
        (r * self.codewords) >> 32
    }

    /// `a·i mod C`, computed once per codeword.
    fn row(&self, i: usize) -> u64 {
        (self.a * (i as u64 % self.codewords)) % self.codewords
    }

    /// Stored bit position of bit `j` of codeword `i`.
    pub fn position(&self, i: usize, j: usize) -> usize {
        self.place(self.row(i), j)
    }

    fn place(&self, row: u64, j: usize) -> usize {
        let mut s = row + self.offset(j);
        if s >= self.codewords {
            s -= self.codewords;
        }
        (j as u64 * self.codewords + s) as usize
    }
}

fn get_bit(words: &[u32], p: usize) -> u32 {
    words.get(p / 32).map_or(0, |w| (w >> (p % 32)) & 1)
}

fn flip_to(words: &mut [u32], p: usize, bit: u32) {
    if let Some(w) = words.get_mut(p / 32) {
        *w = (*w & !(1 << (p % 32))) | (bit << (p % 32));
    }
}

/// Reads `len ≤ 32` bits starting at bit `start` (zeros past the end).
fn get_bits(words: &[u32], start: usize, len: usize) -> u32 {
    let (w, s) = (start / 32, start % 32);
    let lo = u64::from(words.get(w).copied().unwrap_or(0));
    let hi = u64::from(words.get(w + 1).copied().unwrap_or(0));
    let v = ((hi << 32 | lo) >> s) as u32;
    if len >= 32 {
        v
    } else {
        v & ((1u32 << len) - 1)
    }
}

/// Writes the low `len ≤ 32` bits of `value` at bit `start` (ignores bits past the end).
fn set_bits(words: &mut [u32], start: usize, len: usize, value: u32) {
    let (w, s) = (start / 32, start % 32);
    let mask = if len >= 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << len) - 1
    } << s;
    let value = (u64::from(value) << s) & mask;
    if let Some(x) = words.get_mut(w) {
        *x = (*x & !(mask as u32)) | value as u32;
    }
    if let Some(x) = words.get_mut(w + 1) {
        *x = (*x & !((mask >> 32) as u32)) | (value >> 32) as u32;
    }
}

/// Copies `len` bits from `src` at `from` to `dst` at `to`.
fn copy_bits(src: &[u32], from: usize, dst: &mut [u32], to: usize, len: usize) {
    let mut done = 0;
    while done < len {
        let chunk = (len - done).min(32);
        set_bits(dst, to + done, chunk, get_bits(src, from + done, chunk));
        done += chunk;
    }
}

/// The code a header names, `None` for uncoded storage.
pub fn code_of(header: &ProtectionHeader) -> Result<Option<Code>, ProtectError> {
    if header.flags & PROTECT_LDPC == 0 {
        return Ok(None);
    }
    let length = match header.code_length {
        648 => Length::N648,
        1296 => Length::N1296,
        1944 => Length::N1944,
        _ => return Err(ProtectError::BadProtection),
    };
    let rate = match header.code_rate {
        RATE_1_2 => Rate::R1_2,
        RATE_2_3 => Rate::R2_3,
        RATE_3_4 => Rate::R3_4,
        RATE_5_6 => Rate::R5_6,
        _ => return Err(ProtectError::BadProtection),
    };
    Ok(Some(Code::new(length, rate)))
}

/// The `code_rate` tag of a rate.
pub fn rate_tag(rate: Rate) -> u16 {
    match rate {
        Rate::R1_2 => RATE_1_2,
        Rate::R2_3 => RATE_2_3,
        Rate::R3_4 => RATE_3_4,
        Rate::R5_6 => RATE_5_6,
    }
}

/// A structurally checked protected artifact (nothing decoded yet).
#[derive(Debug, Clone, Copy)]
pub struct ProtectedArtifact<'a> {
    header: ProtectionHeader,
    code: Option<Code>,
    tags: &'a [u8],
    stored: &'a [u32],
    meta: &'a [u8],
}

/// True when `bytes` is an artifact container with a protection section.
pub fn is_protected(bytes: &[u8]) -> bool {
    container(bytes).is_ok_and(|c| c.iter().any(|s| s.kind == SECTION_PROTECTION))
}

impl<'a> ProtectedArtifact<'a> {
    /// Checks the container, the protection header and every length. Never
    /// panics on any input.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ProtectError> {
        let sections = container(bytes)?;
        let section = |kind| -> Result<Option<&'a [u8]>, ProtectError> {
            let mut found = sections.iter().filter(|s| s.kind == kind);
            let first = found.next();
            if found.next().is_some() {
                return Err(ProtectError::BadProtection);
            }
            // Bounds were checked by `container`.
            Ok(first.and_then(|s| {
                bytes.get(s.offset as usize..(s.offset as usize).checked_add(s.len as usize)?)
            }))
        };
        if section(SECTION_GRAPH)?.is_some() || section(SECTION_WEIGHTS)?.is_some() {
            return Err(ProtectError::BadProtection);
        }
        let protection =
            section(SECTION_PROTECTION)?.ok_or(ProtectError::Model(Error::MissingSection {
                kind: SECTION_PROTECTION,
            }))?;
        let stored = section(SECTION_CODED)?.ok_or(ProtectError::Model(Error::MissingSection {
            kind: SECTION_CODED,
        }))?;
        let meta = section(SECTION_META)?.unwrap_or(&[]);
        let header: ProtectionHeader = protection
            .get(..PROTECTION_HEADER_SIZE)
            .map(bytemuck::pod_read_unaligned)
            .ok_or(ProtectError::BadProtection)?;
        let tags = &protection[PROTECTION_HEADER_SIZE..];
        let bad = ProtectError::BadProtection;
        if header.version != PROTECTION_VERSION
            || header.inner_len as usize % ALIGN != 0
            || header.inner_len == 0
            || header.flags & !(PROTECT_LDPC | PROTECT_MAC | PROTECT_REPARAM) != 0
        {
            return Err(bad);
        }
        let inner_len = header.inner_len as usize;
        let code = code_of(&header)?;
        let expected_stored = match code {
            Some(code) => {
                let codewords = (inner_len * 8).div_ceil(code.k());
                if header.codewords as usize != codewords {
                    return Err(bad);
                }
                codewords
                    .checked_mul(code.n())
                    .ok_or(bad)?
                    .div_ceil(32)
                    .checked_mul(4)
                    .ok_or(bad)?
            }
            None => {
                if header.codewords != 0 {
                    return Err(bad);
                }
                inner_len
            }
        };
        if stored.len() != expected_stored {
            return Err(bad);
        }
        let blocks = if header.flags & PROTECT_MAC != 0 {
            if header.block_len == 0 || header.block_len as usize % ALIGN != 0 {
                return Err(bad);
            }
            inner_len.div_ceil(header.block_len as usize)
        } else {
            0
        };
        if header.block_count as usize != blocks || tags.len() != blocks * TAG_LEN {
            return Err(bad);
        }
        let stored = bytemuck::try_cast_slice(stored).map_err(|_| Error::Misaligned)?;
        Ok(ProtectedArtifact {
            header,
            code,
            tags,
            stored,
            meta,
        })
    }

    /// The protection header.
    pub fn header(&self) -> &ProtectionHeader {
        &self.header
    }

    /// The code of the stored image (`None`: stored uncoded).
    pub fn code(&self) -> Option<Code> {
        self.code
    }

    /// Bytes of RAM [`load`] needs for the inner artifact.
    pub fn inner_len(&self) -> usize {
        self.header.inner_len as usize
    }

    /// The stored image (codewords, interleaved).
    pub fn stored(&self) -> &'a [u32] {
        self.stored
    }

    /// All tags, [`TAG_LEN`] bytes each.
    pub fn tags(&self) -> &'a [u8] {
        self.tags
    }

    /// The metadata section (host JSON), stored uncoded.
    pub fn meta(&self) -> &'a [u8] {
        self.meta
    }
}

/// Encodes `inner` (the inner artifact, as words) into `stored` (the coded,
/// interleaved image, `⌈C·n / 32⌉` words, overwritten) — the host side of
/// [`load`], also usable on a device to re-encode after an update.
pub fn encode_stored(
    code: &Code,
    interleaver: &Interleaver,
    codewords: usize,
    inner: &[u32],
    inner_bits: usize,
    stored: &mut [u32],
) -> Result<(), LdpcError> {
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let words = code.words();
    for i in 0..codewords {
        let cw = &mut cw[..words];
        cw.fill(0);
        let start = i * code.k();
        let len = code.k().min(inner_bits.saturating_sub(start));
        copy_bits(inner, start, cw, 0, len);
        code.encode_in_place(cw)?;
        let row = interleaver.row(i);
        for j in 0..code.n() {
            flip_to(stored, interleaver.place(row, j), get_bit(cw, j));
        }
    }
    Ok(())
}

/// Rebuilds the inner artifact of the protected artifact `bytes` into
/// `ram`, verifying and repairing it, and returns the model over it.
///
/// `ram` needs [`ProtectedArtifact::inner_len`] bytes (as `u32` words, so
/// it is aligned); `scratch` must fit the artifact's code (the default
/// [`DecoderScratch`] fits all). `health` is filled even when loading fails.
/// Every codeword is checked and every tag verified before an error is
/// returned, so the counts are complete.
pub fn load<'r, const N: usize, const M: usize>(
    bytes: &[u8],
    key: &Key,
    ram: &'r mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Result<Model<'r>, ProtectError> {
    *health = Health::default();
    let protected = ProtectedArtifact::parse(bytes)?;
    let header = protected.header;
    let keys = Subkeys::derive(key, &header.nonce);
    if !tags_equal(&keys.key_check(&header), &header.key_check) {
        return Err(ProtectError::WrongKey);
    }
    let inner_len = protected.inner_len();
    let inner_words = inner_len / 4;
    if ram.len() < inner_words {
        return Err(ProtectError::RamTooSmall {
            needed: inner_len,
            got: ram.len() * 4,
        });
    }
    let ram = &mut ram[..inner_words];
    match protected.code {
        Some(code) => {
            let interleaver = keys.interleaver(header.codewords as usize);
            let inner_bits = inner_len * 8;
            let mut first_bad = None;
            let mut cw = [0u32; MAX_CODEWORD_WORDS];
            let cw = &mut cw[..code.words()];
            for i in 0..header.codewords as usize {
                cw.fill(0);
                let row = interleaver.row(i);
                for j in 0..code.n() {
                    let bit = get_bit(protected.stored, interleaver.place(row, j));
                    cw[j / 32] |= bit << (j % 32);
                }
                health.codewords_checked += 1;
                match decode(&code, cw, scratch, DEFAULT_MAX_ITERATIONS) {
                    Ok(0) => {}
                    Ok(changed) => {
                        health.corrected_words += 1;
                        health.corrected_bits += changed as u32;
                    }
                    Err(_) => {
                        health.uncorrectable_words += 1;
                        first_bad.get_or_insert(i as u32);
                    }
                }
                let start = i * code.k();
                let len = code.k().min(inner_bits.saturating_sub(start));
                copy_bits(cw, 0, ram, start, len);
            }
            if let Some(codeword) = first_bad {
                return Err(ProtectError::Uncorrectable {
                    codeword,
                    count: health.uncorrectable_words,
                });
            }
        }
        None => ram.copy_from_slice(protected.stored),
    }
    let ram: &'r [u32] = ram;
    let inner: &'r [u8] = bytemuck::cast_slice(ram);
    if header.flags & PROTECT_MAC != 0 {
        let block_len = header.block_len as usize;
        let mut first_bad = None;
        for (b, (block, tag)) in inner
            .chunks(block_len)
            .zip(protected.tags.chunks_exact(TAG_LEN))
            .enumerate()
        {
            health.blocks_checked += 1;
            if !tags_equal(&keys.block_tag(&header, b as u32, block), tag) {
                health.mac_failures += 1;
                first_bad.get_or_insert(b as u32);
            }
        }
        if let Some(block) = first_bad {
            return Err(ProtectError::TagMismatch {
                block,
                count: health.mac_failures,
            });
        }
    }
    Ok(Model::parse(inner)?)
}

/// Re-verifies a loaded protected model's weights op by op: the hook
/// [`Model::invoke_guarded`] calls when an op trips its activation guard.
///
/// For each constant the op reads (weights, biases, requantization arrays,
/// tables) it re-computes the integrity tags of the blocks covering those
/// bytes of the model's RAM, and re-decodes the stored codewords covering
/// them and compares their message bits with the RAM. Any difference means
/// the decoded copy was damaged after [`load`]: the inference stops with
/// [`Error::GuardReverify`] (the caller reloads). The model borrows its
/// RAM, so repair is a reload, not a patch.
pub struct Reverifier<'a> {
    protected: ProtectedArtifact<'a>,
    keys: Subkeys,
    inner: &'a [u8],
}

impl<'a> Reverifier<'a> {
    /// Binds the protected artifact `bytes` and `key` to `model`, the model
    /// [`load`] returned for them (its bytes are the recovered RAM).
    pub fn new(bytes: &'a [u8], key: &Key, model: &Model<'a>) -> Result<Self, ProtectError> {
        let protected = ProtectedArtifact::parse(bytes)?;
        let keys = Subkeys::derive(key, &protected.header.nonce);
        if !tags_equal(
            &keys.key_check(&protected.header),
            &protected.header.key_check,
        ) {
            return Err(ProtectError::WrongKey);
        }
        let inner = model.artifact().bytes();
        if inner.len() != protected.inner_len() {
            return Err(ProtectError::BadProtection);
        }
        Ok(Reverifier {
            protected,
            keys,
            inner,
        })
    }

    /// Re-checks the constants op `op` of `model` reads (see the type's
    /// documentation); `scratch` as for [`load`].
    pub fn check_op<const N: usize, const M: usize>(
        &self,
        model: &Model<'_>,
        op: usize,
        scratch: &mut DecoderScratch<N, M>,
    ) -> Result<(), Error> {
        let artifact = model.artifact();
        let weights_at = artifact
            .sections()
            .iter()
            .find(|s| s.kind == SECTION_WEIGHTS)
            .map_or(0, |s| s.offset as usize);
        let record = artifact.ops().get(op).ok_or(Error::BadOp { op })?;
        let count = (record.input_count as usize).min(MAX_OP_INPUTS);
        for &t in &record.inputs[..count] {
            let t = artifact.tensor(t as usize)?;
            if t.location != LOC_WEIGHTS || t.len == 0 {
                continue;
            }
            let start = weights_at + t.offset as usize;
            let end = start + t.len as usize;
            if !self.range_intact(start, end, scratch) {
                return Err(Error::GuardReverify { op });
            }
        }
        Ok(())
    }

    /// True when RAM bytes `start..end` still match their tags and codewords.
    fn range_intact<const N: usize, const M: usize>(
        &self,
        start: usize,
        end: usize,
        scratch: &mut DecoderScratch<N, M>,
    ) -> bool {
        let header = &self.protected.header;
        if end > self.inner.len() || start >= end {
            return false;
        }
        if header.flags & PROTECT_MAC != 0 {
            let block_len = header.block_len as usize;
            for b in start / block_len..=(end - 1) / block_len {
                let block = &self.inner[b * block_len..((b + 1) * block_len).min(self.inner.len())];
                let tag = self.protected.tags.get(b * TAG_LEN..(b + 1) * TAG_LEN);
                if !tag.is_some_and(|tag| {
                    tags_equal(&self.keys.block_tag(header, b as u32, block), tag)
                }) {
                    return false;
                }
            }
        }
        match self.protected.code {
            Some(code) => {
                let interleaver = self.keys.interleaver(header.codewords as usize);
                let mut cw = [0u32; MAX_CODEWORD_WORDS];
                let cw = &mut cw[..code.words()];
                let (first_bit, last_bit) = (start * 8, end * 8);
                for i in first_bit / code.k()..=(last_bit - 1) / code.k() {
                    cw.fill(0);
                    let row = interleaver.row(i);
                    for j in 0..code.n() {
                        let bit = get_bit(self.protected.stored, interleaver.place(row, j));
                        cw[j / 32] |= bit << (j % 32);
                    }
                    if decode(&code, cw, scratch, DEFAULT_MAX_ITERATIONS).is_err() {
                        return false;
                    }
                    let from = (i * code.k()).max(first_bit);
                    let to = ((i + 1) * code.k()).min(last_bit);
                    for t in from..to {
                        let ram = u32::from((self.inner[t / 8] >> (t % 8)) & 1);
                        if ram != get_bit(cw, t - i * code.k()) {
                            return false;
                        }
                    }
                }
                true
            }
            None => {
                let stored: &[u8] = bytemuck::cast_slice(self.protected.stored);
                stored.get(start..end) == self.inner.get(start..end)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaver_is_a_permutation() {
        for c in [1usize, 2, 3, 7, 12, 64, 97] {
            let il = Interleaver::new(c, 0x1234_5678, 0xdead_beef);
            let n = 48;
            let mut seen = [false; 97 * 48];
            for i in 0..c {
                for j in 0..n {
                    let p = il.position(i, j);
                    assert!(p < c * n && !seen[p]);
                    seen[p] = true;
                }
            }
        }
    }

    #[test]
    fn bursts_spread_over_codewords() {
        let c = 50;
        let il = Interleaver::new(c, 7, 9);
        let mut owner = [0usize; 50 * 648];
        for i in 0..c {
            for j in 0..648 {
                owner[il.position(i, j)] = i;
            }
        }
        for start in 0..(c * 648 - c) {
            let mut hits = [0u8; 50];
            for &o in &owner[start..start + c] {
                hits[o] += 1;
            }
            // A burst of C bits spans at most two columns: ≤ 2 bits per codeword.
            assert!(hits.iter().all(|&h| h <= 2));
        }
    }

    #[test]
    fn bit_copies() {
        let src = [0xDEAD_BEEFu32, 0x0123_4567, 0x89AB_CDEF];
        for from in 0..40 {
            for to in 0..40 {
                let len = 50;
                let mut dst = [0u32; 4];
                copy_bits(&src, from, &mut dst, to, len);
                for t in 0..len {
                    assert_eq!(get_bit(&dst, to + t), get_bit(&src, from + t));
                }
                assert_eq!(get_bit(&dst, to + len), 0);
            }
        }
    }

    #[test]
    fn subkeys_depend_on_key_and_nonce() {
        let a = Subkeys::derive(&[1; 32], &[0; 16]);
        let b = Subkeys::derive(&[2; 32], &[0; 16]);
        let c = Subkeys::derive(&[1; 32], &[1; 16]);
        assert_ne!(a.mac, b.mac);
        assert_ne!(a.mac, c.mac);
        assert_ne!(a.mac, a.interleave);
    }
}
