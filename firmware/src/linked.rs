//! The artifact linked into flash and the RAM it runs in, all sized by
//! `build.rs` from the artifact itself.

use core::sync::atomic::{AtomicBool, Ordering};

/// Forces the alignment the runtime's in-place casts need (`include_bytes!`
/// data is only 1-byte aligned).
#[repr(C, align(16))]
pub struct Aligned<T: ?Sized>(pub T);

include!(concat!(env!("OUT_DIR"), "/linked.rs"));

/// The model type of this build: it links only the kernels of [`KERNELS`],
/// so the code of every other kernel stays out of flash.
pub type LinkedModel<'a> = sturdy_runtime::Model<'a, KERNELS>;

/// Parses `bytes` as a model run with this build's kernels
/// ([`sturdy_runtime::Error::KernelNotLinked`] for an artifact that needs
/// another: one this firmware was not built for).
pub fn parse_model(bytes: &[u8]) -> Result<LinkedModel<'_>, sturdy_runtime::Error> {
    LinkedModel::parse_linking(bytes)
}

/// The linked artifact's bytes, in flash. Read through an opaque
/// reference: the bytes are known at compile time, but flash repair
/// (feature `flash-repair`) can rewrite them, so no read may be folded to
/// the built-in value.
pub fn artifact() -> &'static [u8] {
    core::hint::black_box(&ARTIFACT.0)
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

/// The RAM a protected artifact is loaded through: the working copy of the
/// whole protected artifact (its stored image is what fault injection
/// flips), the decoded inner artifact the model runs from ("decode into RAM
/// at load"; empty for the in-place layout, whose model runs in the working
/// copy), and the decoder's scratch. All empty for a plain artifact.
pub struct ProtectRam {
    /// Working copy of the protected artifact (flash bytes, then faults).
    pub working: &'static mut [u32],
    /// The decoded inner artifact (empty in place).
    pub decoded: &'static mut [u32],
    /// The LDPC decoder's scratch, sized for the artifact's code.
    pub scratch: &'static mut Scratch,
}

struct ProtectStatics {
    working: [u32; WORKING_WORDS],
    decoded: [u32; DECODED_WORDS],
    scratch: Scratch,
}

static mut PROTECT: Aligned<ProtectStatics> = Aligned(ProtectStatics {
    working: [0; WORKING_WORDS],
    decoded: [0; DECODED_WORDS],
    scratch: Scratch::new(),
});
static PROTECT_TAKEN: AtomicBool = AtomicBool::new(false);

/// Hands out the protected-load RAM once; `None` on any later call.
pub fn take_protect_ram() -> Option<ProtectRam> {
    if PROTECT_TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: `PROTECT_TAKEN` lets exactly one caller past this point, so the
    // `&'static mut` created here is the only reference to `PROTECT` ever
    // made; the three fields are disjoint borrows of it.
    let statics = unsafe { &mut (*core::ptr::addr_of_mut!(PROTECT)).0 };
    Some(ProtectRam {
        working: &mut statics.working,
        decoded: &mut statics.decoded,
        scratch: &mut statics.scratch,
    })
}
