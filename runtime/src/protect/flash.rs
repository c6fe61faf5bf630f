//! Repairing a protected image that lives in NOR flash, through the
//! `embedded-storage` [`NorFlash`] trait, so any board's flash driver
//! drops in.
//!
//! Flash ages by losing charge: a model kept (and run) in flash collects
//! flipped bits over the years, and the RAM scrubber cannot fix them —
//! flash is not written like RAM. Repair is two steps:
//!
//! 1. [`find_repairs`] — read-only: checks every codeword of the
//!    memory-mapped image (bit-sliced, as the loader does), decodes the
//!    failing ones and lists the stored bits the decoder changed, as bit
//!    offsets from the start of the artifact, in a fixed-capacity
//!    `heapless::Vec` (a full list ends the scan early: repair, then scan
//!    again).
//! 2. [`rewrite_blocks`] — for each erase block the list touches: copy the
//!    block to a spare block with the fixes applied, erase the block, copy
//!    the spare back. Only a `chunk` of RAM is needed (a flash block can be
//!    larger than the chip's RAM: 128 KiB sectors on an STM32F401), and
//!    every word is written once after an erase, as NOR flash requires.
//!
//! A power loss between erasing a block and copying it back leaves the
//! corrected copy in the spare block; an application that must survive it
//! records the pair (block, spare) before step 2 and finishes the copy at
//! boot.

use super::sliced::{groups, Messages, Offsets, Rows, MAX_COLUMNS};
use super::{get_bit, unlock, Health, Key, ProtectError};
use crate::ldpc::{DecoderScratch, MAX_CODEWORD_WORDS};
use core::ops::Range;
use embedded_storage::nor_flash::NorFlash;
use heapless::Vec;

/// What one [`find_repairs`] scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlashScan {
    /// Codewords checked.
    pub checked: u32,
    /// Codewords the decoder repaired (their changed bits are listed).
    pub corrected_words: u32,
    /// Codewords it could not repair (left as they are).
    pub uncorrectable_words: u32,
    /// False when the list filled up before the scan ended: rewrite, then
    /// scan again.
    pub complete: bool,
}

/// Scans the protected artifact `artifact` (as mapped in memory, `u32`
/// words) and appends to `fixes` the artifact bit offsets the decoder
/// changes. Errors: not a protected artifact, wrong key, stored uncoded, or
/// `scratch` too small for the code.
pub fn find_repairs<const N: usize, const M: usize, const F: usize>(
    artifact: &[u32],
    key: &Key,
    scratch: &mut DecoderScratch<N, M>,
    fixes: &mut Vec<u32, F>,
) -> Result<FlashScan, ProtectError> {
    let bytes: &[u8] = bytemuck::cast_slice(artifact);
    let (p, keys) = unlock(bytes, key)?;
    let code = p.code.ok_or(ProtectError::BadProtection)?;
    if N < code.n() || M < code.m() {
        return Err(ProtectError::RamTooSmall {
            needed: code.n() + code.m(),
            got: N + M,
        });
    }
    let il = keys.interleaver(p.header.codewords as usize);
    let stored = p.stored;
    let stored_bit = p.stored_at as u64 * 8;
    let mut scan = FlashScan::default();
    let mut health = Health::default();
    let mut cw = [0u32; MAX_CODEWORD_WORDS];
    let cw = &mut cw[..code.words()];
    let mut table = [0u16; MAX_COLUMNS];
    let offsets = Offsets::for_groups(&il, code.n(), &mut table);
    for (first, width) in groups(il.codewords) {
        let ignore = &mut Messages::Ignore;
        let il_offsets = (&il, offsets);
        let mut rows = Rows::check(
            &code,
            stored,
            il_offsets,
            (first, width),
            ignore,
            &mut health,
        );
        scan.checked += width as u32;
        while let Some(r) = rows.next_row(&code, stored, &il, cw, scratch, &mut health) {
            if r.changed.is_none() {
                scan.uncorrectable_words += 1;
                continue;
            }
            // The decoded bits that differ from the stored ones.
            let changed = (0..code.n())
                .map(|j| (j, il.place(r.row, j)))
                .filter(|&(j, at)| get_bit(cw, j) != get_bit(stored, at));
            // All of a codeword's fixes or none: a half-listed word would be
            // rewritten still failing.
            if fixes.capacity() - fixes.len() < changed.clone().count() {
                return Ok(scan);
            }
            for (_, at) in changed {
                let at = stored_bit + at as u64;
                let at = u32::try_from(at).map_err(|_| ProtectError::BadProtection)?;
                // Capacity was checked above.
                let _ = fixes.push(at);
            }
            scan.corrected_words += 1;
        }
    }
    scan.complete = true;
    Ok(scan)
}

/// Why [`rewrite_blocks`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashRepairError<E> {
    /// The flash driver failed (the block being repaired may be erased:
    /// its corrected copy is in the spare block).
    Flash(E),
    /// The spare block is not block-aligned or shares a block with the
    /// artifact, a fix lies outside the artifact, or `chunk` is empty or
    /// does not divide a block into whole write and read units.
    BadLayout,
}

/// Applies `fixes` (artifact bit offsets from one [`find_repairs`] scan;
/// sorted here) to the artifact stored at flash offsets `artifact`, one
/// erase block at a time through the spare block at `spare_at`, with
/// `chunk` as the only buffer. Returns the blocks rewritten.
pub fn rewrite_blocks<F: NorFlash>(
    flash: &mut F,
    artifact: Range<u32>,
    spare_at: u32,
    fixes: &mut [u32],
    chunk: &mut [u8],
) -> Result<u32, FlashRepairError<F::Error>> {
    let block = F::ERASE_SIZE as u64;
    let n = chunk.len() as u64;
    let (lo, hi) = (u64::from(artifact.start), u64::from(artifact.end));
    let spare = u64::from(spare_at);
    let units_fit = n > 0
        && block > 0
        && block % n == 0
        && chunk.len() % F::WRITE_SIZE.max(1) == 0
        && chunk.len() % F::READ_SIZE.max(1) == 0;
    // The spare block must hold no byte of any block the artifact touches.
    let apart = spare + block <= lo / block * block || spare >= hi.div_ceil(block) * block;
    let at = |bit: u32| lo + u64::from(bit / 8);
    let inside = fixes.iter().all(|&b| at(b) < hi);
    if !units_fit || spare % block != 0 || !apart || !inside {
        return Err(FlashRepairError::BadLayout);
    }
    let offset = |x: u64| u32::try_from(x).map_err(|_| FlashRepairError::BadLayout);
    let flash_err = FlashRepairError::Flash;
    fixes.sort_unstable();
    let mut rewritten = 0;
    let mut next = 0;
    while let Some(&first) = fixes.get(next) {
        let start = at(first) / block * block;
        let end = next + fixes[next..].partition_point(|&b| at(b) < start + block);
        let in_block = &fixes[next..end];
        flash
            .erase(spare_at, offset(spare + block)?)
            .map_err(flash_err)?;
        for c in (0..block).step_by(n as usize) {
            flash.read(offset(start + c)?, chunk).map_err(flash_err)?;
            let here = start + c..start + c + n;
            for &bit in in_block.iter().filter(|&&b| here.contains(&at(b))) {
                chunk[(at(bit) - here.start) as usize] ^= 1 << (bit % 8);
            }
            flash.write(offset(spare + c)?, chunk).map_err(flash_err)?;
        }
        flash
            .erase(offset(start)?, offset(start + block)?)
            .map_err(flash_err)?;
        for c in (0..block).step_by(n as usize) {
            flash.read(offset(spare + c)?, chunk).map_err(flash_err)?;
            flash.write(offset(start + c)?, chunk).map_err(flash_err)?;
        }
        rewritten += 1;
        next = end;
    }
    Ok(rewritten)
}
