//! What the protocol server needs from a board: a byte link (embedded-io,
//! with a non-blocking "is a byte waiting" so idle time can scrub, bytes
//! queued by the receive interrupt meanwhile), a counter for inference
//! cost, a delay (embedded-hal's `DelayNs`, so another board's HAL drops
//! in) for the idle scrub schedule, and a way to end an emulated session.
//! One module per board, picked by cargo feature.

use embedded_hal::delay::DelayNs;
use sturdy_protocol::{Board, CounterUnit};

/// Longest nap between idle scrub slices: a request that arrives while
/// the board naps waits at most this long (its bytes queue meanwhile).
const MAX_NAP_US: u64 = 1_000;

/// A board the server can run on.
pub trait Target:
    embedded_io::Read + embedded_io::ReadReady + embedded_io::Write + DelayNs
{
    /// Which board this is, reported in `Info`.
    const BOARD: Board;
    /// What [`Target::now`] counts.
    const UNIT: CounterUnit;
    /// Smallest step of [`Target::now`], in [`Target::UNIT`]s.
    const RESOLUTION: u32;
    /// [`Target::now`] units per microsecond.
    const UNITS_PER_US: u32;
    /// A monotonic count of instructions or cycles since boot.
    fn now(&mut self) -> u64;
    /// Naps until `units` of [`Target::now`] have passed, or at most
    /// `MAX_NAP_US`: the idle scrub schedule's wait for its next slice.
    fn nap(&mut self, units: u64) {
        let us = units / u64::from(Self::UNITS_PER_US);
        self.delay_us(us.clamp(1, MAX_NAP_US) as u32);
    }
    /// Ends the session with `code` where the board can (an emulator
    /// exits); returns on a real board, which keeps serving.
    fn exit(&mut self, code: u8);
}

mod rx_queue;

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
