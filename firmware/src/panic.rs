//! The panic handler. The server path is written not to panic (every error
//! is a typed response); this is the last resort that makes a bug visible:
//! log it, then exit with a failure (QEMU) or halt for the debugger (board).

use core::panic::PanicInfo;

#[panic_handler]
fn panic(info: &PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    crate::board::halt_after_panic()
}
