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
//! [`verify_in_place`] is the other mode, for artifacts written with the
//! in-place layout ([`PROTECT_IN_PLACE`]) and held in RAM: it checks every
//! codeword where it lies, decodes only the failing ones, writes the
//! corrected bits back into the image ("patch"), verifies the tags and
//! returns the model over the image itself — no second buffer. [`load`]
//! reads both layouts; [`verify_in_place`] refuses the sequential one
//! ([`ProtectError::NotInPlace`]): its image is a permutation of the model.
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
//! bit `t % 8` of byte `t / 8`), zero-padded to `C·k` bits. Two layouts
//! ([`Layout`]) say which of those bits codeword `i` carries:
//!
//! - [`Layout::Sequential`] (default): bits `i·k .. (i+1)·k` as its
//!   systematic part, so the stored image's first `C·k` bits are a keyed
//!   permutation of the inner artifact and must be decoded into RAM.
//! - [`Layout::InPlace`] ([`PROTECT_IN_PLACE`]): message bit `j < k` is inner
//!   bit `p(i, j)`. Since `p` maps the message columns `j < k` exactly onto
//!   `0 .. C·k`, the stored image's first `C·k` bits *are* the padded inner
//!   artifact, unpermuted, and the parity follows at `C·k .. C·n`. Bursts are
//!   still spread (stride `C`) and the grouping into codewords stays keyed.
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
use core::ops::Range;

mod flash;
mod scrub;
mod sliced;
pub use flash::{find_repairs, rewrite_blocks, FlashRepairError, FlashScan};
pub use scrub::{ScrubCounts, ScrubStep, Scrubber};

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
    /// [`verify_in_place`] was given a sequential-layout image, which is a
    /// permutation of the model and cannot run in place (use [`load`]).
    NotInPlace,
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
            ProtectError::NotInPlace => write!(
                f,
                "the artifact was not protected with --in-place: decode it into RAM instead"
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

    /// The block tags of `header`'s artifact (see the module docs).
    pub fn block_tags(&self, header: &ProtectionHeader) -> BlockTags {
        let mut mac = blake2s_mac(&self.mac, b"sturdyTg");
        Update::update(&mut mac, bytemuck::bytes_of(header));
        BlockTags(mac)
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

/// The tag MAC keyed and fed the header, from which every block's tag
/// goes on: a clone per block compresses the key block once per artifact
/// rather than once per tag.
#[derive(Clone)]
pub struct BlockTags(Blake2sMac256);

impl BlockTags {
    /// Tag of block `index` with contents `block`.
    pub fn tag(&self, index: u32, block: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.0.clone();
        Update::update(&mut mac, &index.to_le_bytes());
        Update::update(&mut mac, block);
        truncate(mac.finalize_fixed().into())
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
    /// `a⁻¹ mod C`: the codeword of a row.
    a_inv: u64,
    seed: u64,
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `x⁻¹ mod m` for `x` coprime to `m` (extended Euclid; 0 when `m ≤ 1`).
fn inverse_mod(x: u64, m: u64) -> u64 {
    if m <= 1 {
        return 0;
    }
    let (mut r0, mut r1) = (i128::from(m), i128::from(x % m));
    let (mut t0, mut t1) = (0i128, 1i128);
    while r1 != 0 {
        let q = r0 / r1;
        (r0, r1) = (r1, r0 - q * r1);
        (t0, t1) = (t1, t0 - q * t1);
    }
    t0.rem_euclid(i128::from(m)) as u64
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
            a_inv: inverse_mod(a, c),
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

    /// The codeword whose row is `row` (`row < C`): rows are what the
    /// bit-sliced check walks, codewords what the message layout indexes.
    fn index_of_row(&self, row: u64) -> usize {
        // Both factors are below C, a `u32` in the header, so the product
        // fits 64 bits.
        ((self.a_inv * row) % self.codewords) as usize
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

/// Writes the 32 bits of `value` at bit `start` (bits past the end are
/// dropped): [`set_bits`] for a whole word, the loader's common case, in a
/// dozen instructions.
fn put32(words: &mut [u32], start: usize, value: u32) {
    let (w, s) = (start / 32, start % 32);
    match words.get_mut(w..w.saturating_add(2)) {
        Some([lo, hi]) => {
            let below = (1u32 << s) - 1;
            *lo = *lo & below | value << s;
            // `value >> (32 - s)`, zero when `s = 0`.
            *hi = *hi & !below | (value >> 1) >> (31 - s);
        }
        _ => set_bits(words, start, 32, value),
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

/// Which inner-artifact bits each codeword carries (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Codeword `i` carries inner bits `i·k .. (i+1)·k`: decode into RAM.
    Sequential,
    /// Message bit `j` of codeword `i` is inner bit `p(i, j)`: the image
    /// starts with the inner artifact and is verified in place.
    InPlace,
}

impl Layout {
    /// The layout `header` declares.
    pub fn of(header: &ProtectionHeader) -> Layout {
        if header.flags & PROTECT_IN_PLACE != 0 {
            Layout::InPlace
        } else {
            Layout::Sequential
        }
    }

    /// Writes the message of codeword `i` (the first `k` bits of `cw`) into
    /// the inner-artifact bits `inner` (bits past its end are padding and
    /// dropped): how [`load`] rebuilds the model from either layout.
    fn put_message(self, il: &Interleaver, i: usize, k: usize, cw: &[u32], inner: &mut [u32]) {
        match self {
            Layout::Sequential => {
                let len = k.min((inner.len() * 32).saturating_sub(i * k));
                copy_bits(cw, 0, inner, i * k, len);
            }
            Layout::InPlace => scatter(cw, il, il.row(i), 0..k, inner),
        }
    }

    /// Inner-artifact bit of message bit `j` of codeword `i`.
    fn message_bit(self, il: &Interleaver, i: usize, k: usize, j: usize) -> usize {
        match self {
            Layout::Sequential => i * k + j,
            Layout::InPlace => il.position(i, j),
        }
    }
}

/// Reads the first `bits` bits of codeword row `row` from the stored image
/// into `cw` (zeroed first): the interleaver's gather.
fn gather(stored: &[u32], il: &Interleaver, row: u64, bits: usize, cw: &mut [u32]) {
    cw.fill(0);
    for j in 0..bits {
        if let Some(w) = cw.get_mut(j / 32) {
            *w |= get_bit(stored, il.place(row, j)) << (j % 32);
        }
    }
}

/// Writes bits `bits` of `cw` to their stored positions in codeword row
/// `row`: the interleaver's scatter (encoding, and the in-place patch).
fn scatter(cw: &[u32], il: &Interleaver, row: u64, bits: Range<usize>, stored: &mut [u32]) {
    for j in bits {
        flip_to(stored, il.place(row, j), get_bit(cw, j));
    }
}

/// Checks the gathered codeword `cw`'s syndrome and, failing, decodes it
/// in place; counts in `health`. Returns the bits changed, or `None` when
/// uncorrectable (`cw` then holds the codeword as stored).
fn check_gathered<const N: usize, const M: usize>(
    code: &Code,
    cw: &mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Option<usize> {
    health.codewords_checked += 1;
    match decode(code, cw, scratch, DEFAULT_MAX_ITERATIONS) {
        Ok(0) => Some(0),
        Ok(changed) => {
            health.corrected_words += 1;
            health.corrected_bits += changed as u32;
            Some(changed)
        }
        Err(_) => {
            health.uncorrectable_words += 1;
            None
        }
    }
}

/// Gathers codeword `i` from `stored` into `cw`, checks its syndrome and,
/// failing, decodes it; counts in `health`. Returns the bits changed, or
/// `None` when uncorrectable (`cw` then holds the codeword as stored).
fn check_codeword<const N: usize, const M: usize>(
    code: &Code,
    il: &Interleaver,
    i: usize,
    stored: &[u32],
    cw: &mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Option<usize> {
    gather(stored, il, il.row(i), code.n(), cw);
    check_gathered(code, cw, scratch, health)
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
    /// Byte offsets of the stored image and the tags in the artifact, so
    /// [`verify_in_place`] can re-borrow them mutably.
    stored_at: usize,
    tags_at: usize,
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
        let section = |kind| -> Result<Option<(usize, &'a [u8])>, ProtectError> {
            let mut found = sections.iter().filter(|s| s.kind == kind);
            let first = found.next();
            if found.next().is_some() {
                return Err(ProtectError::BadProtection);
            }
            // Bounds were checked by `container`.
            Ok(first.and_then(|s| {
                let at = s.offset as usize;
                Some((at, bytes.get(at..at.checked_add(s.len as usize)?)?))
            }))
        };
        if section(SECTION_GRAPH)?.is_some() || section(SECTION_WEIGHTS)?.is_some() {
            return Err(ProtectError::BadProtection);
        }
        let missing = |kind| ProtectError::Model(Error::MissingSection { kind });
        let (protection_at, protection) =
            section(SECTION_PROTECTION)?.ok_or(missing(SECTION_PROTECTION))?;
        let (stored_at, stored) = section(SECTION_CODED)?.ok_or(missing(SECTION_CODED))?;
        let meta = section(SECTION_META)?.map_or(&[][..], |(_, meta)| meta);
        let header: ProtectionHeader = protection
            .get(..PROTECTION_HEADER_SIZE)
            .map(bytemuck::pod_read_unaligned)
            .ok_or(ProtectError::BadProtection)?;
        let tags = &protection[PROTECTION_HEADER_SIZE..];
        let bad = ProtectError::BadProtection;
        if header.version != PROTECTION_VERSION
            || header.inner_len as usize % ALIGN != 0
            || header.inner_len == 0
            || header.flags & !(PROTECT_LDPC | PROTECT_MAC | PROTECT_REPARAM | PROTECT_IN_PLACE)
                != 0
            || (header.flags & PROTECT_IN_PLACE != 0 && header.flags & PROTECT_LDPC == 0)
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
            stored_at,
            tags_at: protection_at + PROTECTION_HEADER_SIZE,
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

    /// The message layout of the stored image.
    pub fn layout(&self) -> Layout {
        Layout::of(&self.header)
    }

    /// True when [`verify_in_place`] can run this artifact: in-place coded,
    /// or uncoded (the stored image is then the inner artifact as it is).
    pub fn runs_in_place(&self) -> bool {
        self.code.is_none() || self.layout() == Layout::InPlace
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
/// interleaved image, `⌈C·n / 32⌉` words, overwritten) in `layout` — the
/// host side of [`load`] and [`verify_in_place`], also usable on a device
/// to re-encode after an update.
pub fn encode_stored(
    code: &Code,
    interleaver: &Interleaver,
    codewords: usize,
    inner: &[u32],
    inner_bits: usize,
    stored: &mut [u32],
    layout: Layout,
) -> Result<(), LdpcError> {
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let cw = &mut cw[..code.words()];
    let k = code.k();
    if layout == Layout::InPlace {
        stored.fill(0);
        copy_bits(inner, 0, stored, 0, inner_bits);
    }
    for i in 0..codewords {
        let row = interleaver.row(i);
        let first_written = match layout {
            Layout::Sequential => {
                cw.fill(0);
                copy_bits(inner, i * k, cw, 0, k.min(inner_bits.saturating_sub(i * k)));
                0
            }
            Layout::InPlace => {
                gather(stored, interleaver, row, k, cw);
                k
            }
        };
        code.encode_in_place(cw)?;
        scatter(cw, interleaver, row, first_written..code.n(), stored);
    }
    Ok(())
}

/// Parses `bytes` and checks `key` against the header's key check.
fn unlock<'a>(
    bytes: &'a [u8],
    key: &Key,
) -> Result<(ProtectedArtifact<'a>, Subkeys), ProtectError> {
    let protected = ProtectedArtifact::parse(bytes)?;
    let keys = Subkeys::derive(key, &protected.header.nonce);
    if !tags_equal(
        &keys.key_check(&protected.header),
        &protected.header.key_check,
    ) {
        return Err(ProtectError::WrongKey);
    }
    Ok((protected, keys))
}

/// `Uncorrectable` when `first_bad` names a codeword the decoder gave up on.
fn refuse_uncorrectable(first_bad: Option<u32>, health: &Health) -> Result<(), ProtectError> {
    match first_bad {
        Some(codeword) => Err(ProtectError::Uncorrectable {
            codeword,
            count: health.uncorrectable_words,
        }),
        None => Ok(()),
    }
}

/// Verifies every block tag of the recovered `inner` artifact (all of
/// them, so the counts in `health` are complete).
fn check_tags(
    keys: &Subkeys,
    header: &ProtectionHeader,
    inner: &[u8],
    tags: &[u8],
    health: &mut Health,
) -> Result<(), ProtectError> {
    if header.flags & PROTECT_MAC == 0 {
        return Ok(());
    }
    let mut first_bad = None;
    let tags_of = keys.block_tags(header);
    for (b, (block, tag)) in inner
        .chunks(header.block_len as usize)
        .zip(tags.chunks_exact(TAG_LEN))
        .enumerate()
    {
        health.blocks_checked += 1;
        if !tags_equal(&tags_of.tag(b as u32, block), tag) {
            health.mac_failures += 1;
            first_bad.get_or_insert(b as u32);
        }
    }
    match first_bad {
        Some(block) => Err(ProtectError::TagMismatch {
            block,
            count: health.mac_failures,
        }),
        None => Ok(()),
    }
}

/// Rebuilds the inner artifact of the protected artifact `bytes` into
/// `ram`, verifying and repairing it, and returns the model over it.
///
/// Reads both layouts (an in-place image is gathered and decoded into
/// `ram` like a sequential one: the flash copy stays untouched).
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
    let (protected, keys) = unlock(bytes, key)?;
    let header = protected.header;
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
            let layout = protected.layout();
            let stored = protected.stored;
            let first_bad = load_checked(&code, &interleaver, layout, stored, ram, scratch, health);
            refuse_uncorrectable(first_bad, health)?;
        }
        None => ram.copy_from_slice(protected.stored),
    }
    let ram: &'r [u32] = ram;
    let inner: &'r [u8] = bytemuck::cast_slice(ram);
    check_tags(&keys, &header, inner, protected.tags, health)?;
    Ok(Model::parse(inner)?)
}

/// Rebuilds the inner artifact `ram` from `stored`: checks the codewords 32
/// at a time with the bit-sliced syndrome (taking the sequential layout's
/// messages on the way; the in-place layout's are the image's first bits),
/// then gathers and decodes only the failing ones and rewrites their
/// messages. Returns the first uncorrectable codeword, if any.
fn load_checked<const N: usize, const M: usize>(
    code: &Code,
    il: &Interleaver,
    layout: Layout,
    stored: &[u32],
    ram: &mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Option<u32> {
    let codewords = il.codewords;
    let inner_bits = ram.len() * 32;
    if layout == Layout::InPlace {
        copy_bits(stored, 0, ram, 0, inner_bits);
    }
    let mut first_bad: Option<u32> = None;
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let cw = &mut cw[..code.words()];
    let mut table = [0u16; sliced::MAX_COLUMNS];
    let offsets = sliced::Offsets::for_groups(il, code.n(), &mut table);
    for group in sliced::groups(codewords) {
        let mut messages = match layout {
            Layout::Sequential => sliced::Messages::Write(ram),
            Layout::InPlace => sliced::Messages::Ignore,
        };
        let mut rows =
            sliced::Rows::check(code, stored, (il, offsets), group, &mut messages, health);
        while let Some(r) = rows.next_row(code, stored, il, cw, scratch, health) {
            let i = il.index_of_row(r.row);
            if r.changed.is_none() {
                first_bad = Some(first_bad.map_or(i as u32, |b| b.min(i as u32)));
            }
            layout.put_message(il, i, code.k(), cw, ram);
        }
    }
    first_bad
}

/// Verifies a RAM-resident protected artifact where it lies, patches the
/// bits the decoder corrects back into it, and returns the model over its
/// own bytes: the whole cost in RAM is the artifact itself (no inner copy).
///
/// `artifact` is the complete protected artifact (header, sections), as
/// `u32` words so it is aligned; it must use the in-place layout (`sturdy
/// protect --in-place`, else [`ProtectError::NotInPlace`]) or be stored
/// uncoded. Every codeword is syndrome-checked (bit-sliced, 32 at a time), only
/// failing ones are decoded and written back, then every tag is checked
/// over the patched inner bytes and the first `inner_len` bytes of the
/// image are parsed. `scratch` and `health` as for [`load`]. On an error
/// the image may be partly patched (only ever with decoder output): reload
/// it from storage before retrying.
pub fn verify_in_place<'r, const N: usize, const M: usize>(
    artifact: &'r mut [u32],
    key: &Key,
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Result<Model<'r>, ProtectError> {
    *health = Health::default();
    let (header, code, keys, stored_at, stored_words, tags_at, tags_len) = {
        let (p, keys) = unlock(bytemuck::cast_slice(artifact), key)?;
        if !p.runs_in_place() {
            return Err(ProtectError::NotInPlace);
        }
        let tags_len = p.tags.len();
        (
            p.header,
            p.code,
            keys,
            p.stored_at,
            p.stored.len(),
            p.tags_at,
            tags_len,
        )
    };
    if let Some(code) = code {
        let stored = artifact
            .get_mut(stored_at / 4..stored_at / 4 + stored_words)
            .ok_or(ProtectError::BadProtection)?;
        patch(
            &code,
            &keys.interleaver(header.codewords as usize),
            stored,
            scratch,
            health,
        )?;
    }
    let artifact: &'r [u32] = artifact;
    let bytes: &'r [u8] = bytemuck::cast_slice(artifact);
    let inner = bytes
        .get(stored_at..stored_at + header.inner_len as usize)
        .ok_or(ProtectError::BadProtection)?;
    let tags = bytes
        .get(tags_at..tags_at + tags_len)
        .ok_or(ProtectError::BadProtection)?;
    check_tags(&keys, &header, inner, tags, health)?;
    Ok(Model::parse(inner)?)
}

/// Checks every codeword of the in-place `stored` image 32 at a time with
/// the bit-sliced syndrome, gathers and decodes only the failing ones and
/// writes each corrected one back over its stored bits. Refuses with the
/// first (lowest-index) uncorrectable codeword, if any.
fn patch<const N: usize, const M: usize>(
    code: &Code,
    il: &Interleaver,
    stored: &mut [u32],
    scratch: &mut DecoderScratch<N, M>,
    health: &mut Health,
) -> Result<(), ProtectError> {
    let mut first_bad: Option<u32> = None;
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let cw = &mut cw[..code.words()];
    let mut table = [0u16; sliced::MAX_COLUMNS];
    let offsets = sliced::Offsets::for_groups(il, code.n(), &mut table);
    for group in sliced::groups(il.codewords) {
        let ignore = &mut sliced::Messages::Ignore;
        let mut rows = sliced::Rows::check(code, stored, (il, offsets), group, ignore, health);
        while let Some(r) = rows.next_row(code, stored, il, cw, scratch, health) {
            match r.changed {
                None => {
                    let i = il.index_of_row(r.row) as u32;
                    first_bad = Some(first_bad.map_or(i, |b| b.min(i)));
                }
                Some(0) => {}
                Some(_) => scatter(cw, il, r.row, 0..code.n(), stored),
            }
        }
    }
    refuse_uncorrectable(first_bad, health)
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
///
/// Works for a model [`load`] decoded from either layout. A model
/// [`verify_in_place`] returned keeps its artifact borrowed (it *is* the
/// artifact): there, re-verifying is calling [`verify_in_place`] again,
/// which also patches.
pub struct Reverifier<'a> {
    protected: ProtectedArtifact<'a>,
    keys: Subkeys,
    inner: &'a [u8],
}

/// The guard hook ([`Model::invoke_guarded`], [`Model::invoke_op_guarded`])
/// of a protected model: a tripped op's constants are re-checked with a
/// [`Reverifier`] bound to `bytes` and `key` on the first trip only — its
/// key derivation costs more than the guards, and most inferences never
/// trip. Binding failures are reported as [`Error::GuardReverify`].
pub fn reverify_on_trip<'a, 'm, const N: usize, const M: usize, const K: u32>(
    bytes: &'a [u8],
    key: &'m Key,
    model: &'m Model<'a, K>,
    scratch: &'m mut DecoderScratch<N, M>,
) -> impl FnMut(usize) -> Result<(), Error> + 'm
where
    'a: 'm,
{
    let mut bound: Option<Reverifier<'a>> = None;
    move |op| {
        let r = match &mut bound {
            Some(r) => r,
            slot @ None => slot.insert(
                Reverifier::new(bytes, key, model).map_err(|_| Error::GuardReverify { op })?,
            ),
        };
        r.check_op(model, op, scratch)
    }
}

impl<'a> Reverifier<'a> {
    /// Binds the protected artifact `bytes` and `key` to `model`, the model
    /// [`load`] returned for them (its bytes are the recovered RAM).
    pub fn new<const K: u32>(
        bytes: &'a [u8],
        key: &Key,
        model: &Model<'a, K>,
    ) -> Result<Self, ProtectError> {
        let (protected, keys) = unlock(bytes, key)?;
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
    pub fn check_op<const N: usize, const M: usize, const K: u32>(
        &self,
        model: &Model<'_, K>,
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
            let tags_of = self.keys.block_tags(header);
            for b in start / block_len..=(end - 1) / block_len {
                let block = &self.inner[b * block_len..((b + 1) * block_len).min(self.inner.len())];
                let tag = self.protected.tags.get(b * TAG_LEN..(b + 1) * TAG_LEN);
                if !tag.is_some_and(|tag| tags_equal(&tags_of.tag(b as u32, block), tag)) {
                    return false;
                }
            }
        }
        match self.protected.code {
            Some(code) => {
                let interleaver = self.keys.interleaver(header.codewords as usize);
                let layout = self.protected.layout();
                let mut cw = [0u32; MAX_CODEWORD_WORDS];
                let cw = &mut cw[..code.words()];
                let (first_bit, last_bit) = (start * 8, end * 8);
                // In place, a range of C bits or more touches every codeword.
                let codewords = match layout {
                    Layout::Sequential => first_bit / code.k()..(last_bit - 1) / code.k() + 1,
                    Layout::InPlace => 0..header.codewords as usize,
                };
                let mut health = Health::default();
                codewords.into_iter().all(|i| {
                    let stored = self.protected.stored;
                    check_codeword(&code, &interleaver, i, stored, cw, scratch, &mut health)
                        .is_some()
                        && (0..code.k()).all(|j| {
                            let t = layout.message_bit(&interleaver, i, code.k(), j);
                            !(first_bit..last_bit).contains(&t)
                                || u32::from((self.inner[t / 8] >> (t % 8)) & 1) == get_bit(cw, j)
                        })
                })
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
    extern crate std;
    use super::*;
    use std::{boxed::Box, vec, vec::Vec};

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

    /// A whole-word write changes exactly the 32 bits it names (checked bit
    /// by bit), including where they run past the end.
    #[test]
    fn word_writes_change_only_their_bits() {
        let before = [0x0F0F_3C3Cu32, 0xA5A5_5A5A, 0x1234_5678];
        let value = 0xC001_D00Du32;
        for start in 0..96 {
            let mut words = before;
            put32(&mut words, start, value);
            for p in 0..96 {
                let want = if (start..start + 32).contains(&p) {
                    value >> (p - start) & 1
                } else {
                    get_bit(&before, p)
                };
                assert_eq!(get_bit(&words, p), want, "start {start}, bit {p}");
            }
        }
    }

    #[test]
    fn in_place_layout_keeps_the_inner_bits_and_patches_flips() {
        let code = Code::new(Length::N648, Rate::R5_6);
        let inner: [u32; 40] = core::array::from_fn(|w| (w as u32).wrapping_mul(0x9E37_79B9));
        let inner_bits = inner.len() * 32;
        let codewords = inner_bits.div_ceil(code.k());
        let il = Interleaver::new(codewords, 3, 5);
        let mut stored = [0u32; 64];
        let stored = &mut stored[..(codewords * code.n()).div_ceil(32)];
        encode_stored(
            &code,
            &il,
            codewords,
            &inner,
            inner_bits,
            stored,
            Layout::InPlace,
        )
        .unwrap();
        assert_eq!(&stored[..inner.len()], &inner[..]);
        let clean = stored.to_vec();
        for p in [3, 700, 1500, codewords * code.k() + 9] {
            stored[p / 32] ^= 1 << (p % 32);
        }
        let mut scratch = DecoderScratch::<648, 324>::new();
        let mut health = Health::default();
        patch(&code, &il, stored, &mut scratch, &mut health).unwrap();
        assert_eq!(stored, &clean[..]);
        assert_eq!(health.corrected_bits, 4);
    }

    const KEY: Key = [0x5a; KEY_LEN];
    const NONCE: [u8; NONCE_LEN] = [7; NONCE_LEN];

    /// An artifact container holding `sections` (kind, bytes), as words.
    fn container_words(sections: &[(u32, &[u8])]) -> Vec<u32> {
        let table_end = HEADER_SIZE + sections.len() * SECTION_ENTRY_SIZE;
        let mut bytes = vec![0u8; table_end];
        let mut entries = Vec::new();
        for &(kind, data) in sections {
            entries.push(SectionEntry {
                kind,
                offset: bytes.len() as u32,
                len: data.len() as u32,
                reserved: 0,
            });
            bytes.extend_from_slice(data);
            bytes.resize(bytes.len().next_multiple_of(ALIGN), 0);
        }
        let table: &[u8] = bytemuck::cast_slice(&entries);
        bytes[HEADER_SIZE..table_end].copy_from_slice(table);
        let mut header = Header {
            magic: MAGIC,
            version_major: VERSION_MAJOR,
            version_minor: VERSION_MINOR,
            flags: 0,
            total_len: bytes.len() as u32,
            section_count: sections.len() as u32,
            header_crc: 0,
            reserved: [0; 9],
        };
        let state = crate::crc32::crc32_update(!0, bytemuck::bytes_of(&header));
        header.header_crc = crate::crc32::crc32_update(state, table) ^ !0;
        bytes[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
        bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }

    /// A plain artifact that parses as a model (one arena tensor, no ops)
    /// carrying `weights_len` pseudo-random weight bytes.
    fn plain_artifact(weights_len: usize) -> Vec<u32> {
        let graph = GraphHeader {
            tensor_count: 1,
            op_count: 0,
            input: 0,
            output: 0,
            arena_size: 16,
            reserved: [0; 3],
        };
        let tensor = TensorRecord {
            dtype: DTYPE_I8,
            rank: 1,
            location: LOC_ARENA,
            reserved0: 0,
            dims: [16, 1, 1, 1],
            zero_point: 0,
            scale_bits: 0,
            offset: 0,
            len: 16,
            reserved1: 0,
        };
        let mut graph_bytes = bytemuck::bytes_of(&graph).to_vec();
        graph_bytes.extend_from_slice(bytemuck::bytes_of(&tensor));
        let weights: Vec<u8> = (0..weights_len as u32)
            .map(|b| (b.wrapping_mul(0x9E37_79B9) >> 24) as u8)
            .collect();
        container_words(&[(SECTION_GRAPH, &graph_bytes), (SECTION_WEIGHTS, &weights)])
    }

    /// A protected artifact and what a test needs of it.
    struct Fixture {
        artifact: Vec<u32>,
        inner: Vec<u32>,
        code: Code,
        il: Interleaver,
        codewords: usize,
        /// Word offset of the stored image in `artifact`.
        stored_at: usize,
        blocks: u32,
    }

    impl Fixture {
        /// `inner` protected in `layout` with `code`, tagged per `block_len` bytes.
        fn new(inner: Vec<u32>, layout: Layout, length: Length, rate: Rate) -> Fixture {
            let block_len = 256;
            let code = Code::new(length, rate);
            let inner_len = inner.len() * 4;
            let codewords = (inner_len * 8).div_ceil(code.k());
            let mut header = ProtectionHeader {
                version: PROTECTION_VERSION,
                flags: PROTECT_LDPC
                    | PROTECT_MAC
                    | if layout == Layout::InPlace {
                        PROTECT_IN_PLACE
                    } else {
                        0
                    },
                inner_len: inner_len as u32,
                code_length: length.bits() as u16,
                code_rate: rate_tag(rate),
                codewords: codewords as u32,
                block_len,
                block_count: inner_len.div_ceil(block_len as usize) as u32,
                reserved: 0,
                nonce: NONCE,
                key_check: [0; TAG_LEN],
            };
            let keys = Subkeys::derive(&KEY, &NONCE);
            header.key_check = keys.key_check(&header);
            let mut protection = bytemuck::bytes_of(&header).to_vec();
            let inner_bytes: &[u8] = bytemuck::cast_slice(&inner);
            let tags_of = keys.block_tags(&header);
            for (b, block) in inner_bytes.chunks(block_len as usize).enumerate() {
                protection.extend_from_slice(&tags_of.tag(b as u32, block));
            }
            let il = keys.interleaver(codewords);
            let mut stored = vec![0u32; (codewords * code.n()).div_ceil(32)];
            let inner_bits = inner_len * 8;
            encode_stored(
                &code,
                &il,
                codewords,
                &inner,
                inner_bits,
                &mut stored,
                layout,
            )
            .unwrap();
            let stored_bytes: &[u8] = bytemuck::cast_slice(&stored);
            let artifact = container_words(&[
                (SECTION_PROTECTION, &protection),
                (SECTION_CODED, stored_bytes),
            ]);
            let parsed = ProtectedArtifact::parse(bytemuck::cast_slice(&artifact)).unwrap();
            assert_eq!(parsed.layout(), layout);
            let stored_at = parsed.stored_at / 4;
            Fixture {
                artifact,
                inner,
                code,
                il,
                codewords,
                stored_at,
                blocks: header.block_count,
            }
        }

        fn stored<'w>(&self, words: &'w mut [u32]) -> &'w mut [u32] {
            let len = (self.codewords * self.code.n()).div_ceil(32);
            &mut words[self.stored_at..self.stored_at + len]
        }

        /// Flips bit `j` of codeword `i` in the artifact `words`; returns
        /// its artifact bit offset.
        fn flip(&self, words: &mut [u32], i: usize, j: usize) -> u32 {
            let p = self.il.position(i, j);
            self.stored(words)[p / 32] ^= 1 << (p % 32);
            (self.stored_at * 32 + p) as u32
        }

        /// Flips `count` distinct pseudo-random bits of codeword `i`.
        fn flip_random(
            &self,
            words: &mut [u32],
            i: usize,
            count: usize,
            seed: &mut u64,
        ) -> Vec<u32> {
            let mut flipped: Vec<usize> = Vec::new();
            while flipped.len() < count {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let j = (*seed >> 33) as usize % self.code.n();
                if !flipped.contains(&j) {
                    flipped.push(j);
                }
            }
            flipped.iter().map(|&j| self.flip(words, i, j)).collect()
        }
    }

    /// The per-codeword reference for [`patch`]: every codeword gathered,
    /// checked and decoded on its own ([`check_codeword`], in index order),
    /// corrected ones scattered back. Returns the counts and the first
    /// uncorrectable codeword.
    fn reference_patch(code: &Code, il: &Interleaver, stored: &mut [u32]) -> (Health, Option<u32>) {
        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        let mut first_bad = None;
        let mut cw = [0u32; MAX_CODEWORD_WORDS];
        let cw = &mut cw[..code.words()];
        for i in 0..il.codewords as usize {
            match check_codeword(code, il, i, stored, cw, &mut scratch, &mut health) {
                None => {
                    first_bad.get_or_insert(i as u32);
                }
                Some(0) => {}
                Some(_) => scatter(cw, il, il.row(i), 0..code.n(), stored),
            }
        }
        (health, first_bad)
    }

    #[test]
    fn verify_in_place_repairs_flips_like_the_per_codeword_reference() {
        let configs = [
            (Length::N648, Rate::R1_2, 3, 3000),
            (Length::N648, Rate::R5_6, 1, 5000),
            (Length::N1944, Rate::R2_3, 3, 12000),
        ];
        for (length, rate, most_flips, weights_len) in configs {
            let f = Fixture::new(plain_artifact(weights_len), Layout::InPlace, length, rate);
            // Two full groups and a partial one.
            assert!(f.codewords > 2 * sliced::GROUP && f.codewords % sliced::GROUP != 0);
            let mut seed = 0x0123_4567_89ab_cdef;
            let mut words = f.artifact.clone();
            let mut flipped = 0;
            for i in 0..f.codewords {
                // 0 ..= most_flips flips: clean codewords inside damaged groups too.
                let count = i % (most_flips + 1);
                flipped += f.flip_random(&mut words, i, count, &mut seed).len() as u32;
            }
            let mut reference = words.clone();
            let (want, first_bad) = reference_patch(&f.code, &f.il, f.stored(&mut reference));
            assert_eq!(
                first_bad, None,
                "{length:?} {rate:?}: the fixture is correctable"
            );
            assert_eq!(
                reference, f.artifact,
                "{length:?} {rate:?}: the reference repairs it"
            );
            assert_eq!(want.corrected_bits, flipped);

            let mut scratch: Box<DecoderScratch> = Box::default();
            let mut health = Health::default();
            let model = verify_in_place(&mut words, &KEY, &mut scratch, &mut health).unwrap();
            let inner_bytes: &[u8] = bytemuck::cast_slice(&f.inner);
            assert_eq!(model.artifact().bytes(), inner_bytes);
            assert_eq!(
                words, f.artifact,
                "{length:?} {rate:?}: image restored bit for bit"
            );
            let want = Health {
                blocks_checked: f.blocks,
                mac_failures: 0,
                ..want
            };
            assert_eq!(health, want, "{length:?} {rate:?}");
            assert_eq!(health.codewords_checked, f.codewords as u32);

            // A clean image: every codeword checked, nothing decoded.
            let model = verify_in_place(&mut words, &KEY, &mut scratch, &mut health).unwrap();
            assert_eq!(model.artifact().bytes(), inner_bytes);
            let clean = Health {
                codewords_checked: f.codewords as u32,
                blocks_checked: f.blocks,
                ..Health::default()
            };
            assert_eq!(health, clean);
        }
    }

    #[test]
    fn verify_in_place_names_the_first_uncorrectable_codeword() {
        let f = Fixture::new(
            plain_artifact(3000),
            Layout::InPlace,
            Length::N648,
            Rate::R1_2,
        );
        // Two codewords whose row order is the reverse of their index
        // order: the sliced walk meets the higher index first.
        let (lo, hi) = (0..f.codewords)
            .flat_map(|a| (a + 1..f.codewords).map(move |b| (a, b)))
            .find(|&(a, b)| f.il.row(a) > f.il.row(b) && f.il.row(b) > 0)
            .unwrap();
        let mut seed = 99;
        let mut words = f.artifact.clone();
        for i in [hi, lo] {
            f.flip_random(&mut words, i, 120, &mut seed);
        }
        for i in (0..f.codewords).step_by(5).filter(|&i| i != lo && i != hi) {
            f.flip_random(&mut words, i, 2, &mut seed);
        }
        let mut reference = words.clone();
        let (want, first_bad) = reference_patch(&f.code, &f.il, f.stored(&mut reference));
        assert_eq!(
            first_bad,
            Some(lo as u32),
            "the fixture is uncorrectable at {lo}"
        );
        assert_eq!(want.uncorrectable_words, 2);

        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        let err = verify_in_place(&mut words, &KEY, &mut scratch, &mut health).unwrap_err();
        assert_eq!(
            err,
            ProtectError::Uncorrectable {
                codeword: lo as u32,
                count: 2
            }
        );
        assert_eq!(health, want);
        // Only decoder output was written: the image is the reference's.
        assert_eq!(words, reference);
    }

    #[test]
    fn scrubber_and_flash_scan_repair_what_the_reference_repairs() {
        let f = Fixture::new(
            plain_artifact(3000),
            Layout::InPlace,
            Length::N648,
            Rate::R1_2,
        );
        let mut seed = 5;
        let mut words = f.artifact.clone();
        let mut flips = Vec::new();
        for i in (0..f.codewords).filter(|i| i % 3 != 0) {
            flips.extend(f.flip_random(&mut words, i, 1 + i % 3, &mut seed));
        }
        flips.sort_unstable();
        let mut reference = words.clone();
        let (want, first_bad) = reference_patch(&f.code, &f.il, f.stored(&mut reference));
        assert_eq!((first_bad, &reference), (None, &f.artifact));

        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut fixes = heapless::Vec::<u32, 1024>::new();
        let scan = find_repairs(&words, &KEY, &mut scratch, &mut fixes).unwrap();
        assert_eq!(
            scan,
            FlashScan {
                checked: f.codewords as u32,
                corrected_words: want.corrected_words,
                uncorrectable_words: 0,
                complete: true,
            }
        );
        let mut listed = fixes.to_vec();
        listed.sort_unstable();
        assert_eq!(listed, flips);

        let mut scrubber = Scrubber::new(bytemuck::cast_slice(&words), &KEY).unwrap();
        let pass = loop {
            // A budget that is no multiple of 32: narrow groups too.
            let step = scrubber
                .step(&mut words, &mut [], 10, &mut scratch)
                .unwrap();
            if let Some(pass) = step.completed_pass {
                break pass;
            }
        };
        assert_eq!(words, f.artifact);
        assert_eq!(
            pass,
            ScrubCounts {
                checked: want.codewords_checked,
                corrected_words: want.corrected_words,
                corrected_bits: want.corrected_bits,
                uncorrectable_words: 0,
                decoded_bits_repaired: 0,
            }
        );
    }

    #[test]
    fn load_and_scrubber_repair_a_sequential_image_and_its_decoded_copy() {
        let f = Fixture::new(
            plain_artifact(3000),
            Layout::Sequential,
            Length::N648,
            Rate::R1_2,
        );
        let mut seed = 11;
        let mut words = f.artifact.clone();
        for i in (0..f.codewords).filter(|i| i % 4 != 1) {
            f.flip_random(&mut words, i, 1 + i % 3, &mut seed);
        }
        let mut reference = words.clone();
        let (want, first_bad) = reference_patch(&f.code, &f.il, f.stored(&mut reference));
        assert_eq!((first_bad, &reference), (None, &f.artifact));

        let mut scratch: Box<DecoderScratch> = Box::default();
        let mut health = Health::default();
        let mut ram = vec![0u32; f.inner.len()];
        let bytes: &[u8] = bytemuck::cast_slice(&words);
        let model = load(bytes, &KEY, &mut ram, &mut scratch, &mut health).unwrap();
        let inner_bytes: &[u8] = bytemuck::cast_slice(&f.inner);
        assert_eq!(model.artifact().bytes(), inner_bytes);
        let loaded = Health {
            blocks_checked: f.blocks,
            ..want
        };
        assert_eq!(health, loaded);

        // Soft errors in the decoded copy, in damaged codewords and in
        // clean ones (stale rows: gathered, not decoded).
        let mut decoded = f.inner.clone();
        // Codewords 1, 5 and 13 are clean (stale rows), 0, 3, 30 and 52 damaged.
        let soft = [5usize, 329, 1720, 1000, 4321, 9999, 17_000];
        for t in soft {
            decoded[t / 32] ^= 1 << (t % 32);
        }
        let mut scrubber = Scrubber::new(bytemuck::cast_slice(&words), &KEY).unwrap();
        let pass = loop {
            let step = scrubber
                .step(&mut words, &mut decoded, 10, &mut scratch)
                .unwrap();
            if let Some(pass) = step.completed_pass {
                break pass;
            }
        };
        assert_eq!(words, f.artifact);
        assert_eq!(decoded, f.inner);
        assert_eq!(
            pass,
            ScrubCounts {
                checked: want.codewords_checked,
                corrected_words: want.corrected_words,
                corrected_bits: want.corrected_bits,
                uncorrectable_words: 0,
                decoded_bits_repaired: soft.len() as u32,
            }
        );
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

    /// A block tag is the keyed BLAKE2s (persona `sturdyTg`) of the header,
    /// the block's index and its bytes, truncated: built here in one piece
    /// with the `blake2` crate, against the loader's per-block clones.
    #[test]
    fn block_tags_are_the_keyed_hash_of_header_index_and_block() {
        let keys = Subkeys::derive(&[7; 32], &[3; 16]);
        let header = ProtectionHeader {
            block_len: 100,
            codewords: 34,
            ..bytemuck::Zeroable::zeroed()
        };
        let tags = keys.block_tags(&header);
        for (index, len) in [(0u32, 100usize), (1, 100), (5, 37), (9, 0)] {
            let block: Vec<u8> = (0..len)
                .map(|i| (i as u8).wrapping_mul(31) ^ index as u8)
                .collect();
            let mut mac =
                Blake2sMac256::new_with_salt_and_personal(Some(&keys.mac), &[], b"sturdyTg")
                    .unwrap();
            Update::update(&mut mac, bytemuck::bytes_of(&header));
            Update::update(&mut mac, &index.to_le_bytes());
            Update::update(&mut mac, &block);
            let full: [u8; 32] = mac.finalize_fixed().into();
            assert_eq!(
                tags.tag(index, &block)[..],
                full[..TAG_LEN],
                "block {index}"
            );
        }
    }
}
