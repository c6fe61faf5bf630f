//! A protected model kept in flash (Nucleo, feature `flash-repair`): flash
//! loses charge over the years, and the RAM scrubber only mends the
//! working copy, which every reload takes from flash again. At boot,
//! before the working copy is made, the flash image is scanned read-only
//! (`protect::find_repairs`, bit-sliced, as the loader checks) and each
//! erase block holding a correctable word is rewritten through the spare
//! block (`protect::rewrite_blocks`, through embedded-storage's `NorFlash`,
//! so another board's flash driver drops in).
//!
//! At boot only: erasing a 128 KiB sector stalls the single flash bank for
//! one to two seconds, longer than a request may wait. Not yet run on a
//! board (no board on the development machine): the runtime half is
//! host-tested against a NOR model that enforces erase-before-write
//! (`tests/tests/scrub.rs`).

use crate::linked::{self, Scratch, ARTIFACT_LEN, REPAIR_BLOCKS};
use embedded_storage::nor_flash::NorFlash;
use heapless::Vec;
use sturdy_runtime::protect::{find_repairs, rewrite_blocks, Key};

/// Bit fixes listed per scan (4 B each): a full list is rewritten, then
/// the scan runs again.
const FIXES: usize = 64;
/// Bytes moved per flash read or write while copying a block.
const CHUNK: usize = 1024;
/// Scans at most: every round but the last fills the list, so this bounds
/// the repair at `FIXES × (ROUNDS − 1)` bit fixes per boot.
const ROUNDS: u32 = 16;

/// Scans the flash image and repairs it in place; logs what it did.
pub fn at_boot<F: NorFlash>(flash: &mut F, scratch: &mut Scratch) {
    let Ok(image) = bytemuck::try_cast_slice::<u8, u32>(linked::artifact()) else {
        defmt::error!("flash repair: the artifact is not whole words");
        return;
    };
    let (model_at, spare_at) = REPAIR_BLOCKS;
    let artifact = model_at..model_at + ARTIFACT_LEN as u32;
    let key: &Key = &linked::DEVICE_KEY;
    let mut chunk = [0u8; CHUNK];
    for round in 0..ROUNDS {
        let mut fixes: Vec<u32, FIXES> = Vec::new();
        let scan = match find_repairs(image, key, scratch, &mut fixes) {
            Ok(scan) => scan,
            Err(_) => {
                defmt::error!("flash repair: the flash image does not unlock");
                return;
            }
        };
        if fixes.is_empty() {
            defmt::info!(
                "flash repair: {=u32} codewords checked, {=u32} uncorrectable, {=u32} rounds",
                scan.checked,
                scan.uncorrectable_words,
                round
            );
            return;
        }
        match rewrite_blocks(flash, artifact.clone(), spare_at, &mut fixes, &mut chunk) {
            Ok(blocks) => defmt::warn!(
                "flash repair: {=u32} words corrected ({=usize} bits), {=u32} blocks rewritten",
                scan.corrected_words,
                fixes.len(),
                blocks
            ),
            Err(_) => {
                defmt::error!(
                    "flash repair: rewriting failed (the corrected copy is in the spare block)"
                );
                return;
            }
        }
    }
    defmt::warn!("flash repair: stopped after {=u32} rounds", ROUNDS);
}
