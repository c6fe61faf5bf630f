//! What the protocol server needs from a board: a byte link (embedded-io,
//! with a non-blocking "is a byte waiting" so idle time can scrub),
//! a counter for inference cost, and a way to end an emulated session.
//! One module per board, picked by cargo feature.

use sturdy_protocol::{Board, CounterUnit};

/// A board the server can run on.
pub trait Target: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write {
    /// Which board this is, reported in `Info`.
    const BOARD: Board;
    /// What [`Target::now`] counts.
    const UNIT: CounterUnit;
    /// Smallest step of [`Target::now`], in [`Target::UNIT`]s.
    const RESOLUTION: u32;
    /// A monotonic count of instructions or cycles since boot.
    fn now(&mut self) -> u64;
    /// Ends the session with `code` where the board can (an emulator
    /// exits); returns on a real board, which keeps serving.
    fn exit(&mut self, code: u8);
}

#[cfg(feature = "qemu")]
mod cmsdk_uart;
#[cfg(feature = "qemu")]
mod qemu;
#[cfg(feature = "qemu")]
pub use qemu::{halt_after_panic, init};

#[cfg(feature = "nucleo-f401re")]
mod nucleo;
#[cfg(feature = "nucleo-f401re")]
pub use nucleo::{halt_after_panic, init};
