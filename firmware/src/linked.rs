//! The artifact linked into flash and the arena it runs in, both sized by
//! `build.rs` from the artifact itself.

use core::sync::atomic::{AtomicBool, Ordering};

/// Forces the alignment the runtime's in-place casts need (`include_bytes!`
/// data is only 1-byte aligned).
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

include!(concat!(env!("OUT_DIR"), "/linked.rs"));

/// The linked artifact's bytes, in flash.
pub fn artifact() -> &'static [u8] {
    &ARTIFACT.0
}

/// The arena: static, so the linker accounts for it in RAM and a model that
/// cannot fit fails the link instead of overflowing the stack at run time.
static mut ARENA: Aligned<[u8; ARENA_SIZE]> = Aligned([0; ARENA_SIZE]);
static ARENA_TAKEN: AtomicBool = AtomicBool::new(false);

/// Hands out the arena once; `None` on any later call.
pub fn take_arena() -> Option<&'static mut [u8]> {
    if ARENA_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: `ARENA_TAKEN` lets exactly one caller past this point, so the
    // `&'static mut` created here is the only reference to `ARENA` ever made.
    Some(unsafe { &mut (*core::ptr::addr_of_mut!(ARENA)).0 })
}
