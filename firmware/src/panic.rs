//! The panic handler. The server path is written not to panic (every error
//! is a typed response); this is the last resort that makes a bug visible:
//! log it, then exit with a failure (QEMU) or halt for the debugger (board).

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    // File and line only: formatting the message would link `core::fmt`.
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}", at.file(), at.line()),
        None => defmt::error!("panic"),
    }
    crate::board::halt_after_panic()
}
