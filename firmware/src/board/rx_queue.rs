//! Received bytes, queued by the UART's receive interrupt so the main loop
//! may be busy (a scrub slice, an inference, a nap) while a frame arrives:
//! a UART holds one byte, and a byte not read before the next one lands is
//! lost. The queue holds more than a whole frame and the host sends one
//! request at a time, so a conforming host never fills it; a byte that
//! finds it full is dropped, and the protocol's CRC reports the frame.
//!
//! Fixed capacity (`heapless::Deque`), shared with the interrupt under a
//! critical section: no heap, no `unsafe`.

use core::cell::RefCell;
use cortex_m::interrupt::{self, CriticalSection, Mutex};
use heapless::Deque;
use sturdy_protocol::MAX_FRAME;

/// Bytes the queue holds: more than one frame, rounded up to a power of two.
pub const CAPACITY: usize = (MAX_FRAME + 1).next_power_of_two();

static QUEUE: Mutex<RefCell<Deque<u8, CAPACITY>>> = Mutex::new(RefCell::new(Deque::new()));

/// Appends a received byte (from the receive interrupt); a full queue drops it.
pub fn push(cs: &CriticalSection, byte: u8) {
    let _ = QUEUE.borrow(cs).borrow_mut().push_back(byte);
}

/// A received byte is waiting.
pub fn ready() -> bool {
    interrupt::free(|cs| !QUEUE.borrow(cs).borrow().is_empty())
}

/// Waits for at least one byte, then takes what is queued, up to `buf`'s
/// length (the `embedded_io::Read` contract).
pub fn read(buf: &mut [u8]) -> usize {
    if buf.is_empty() {
        return 0;
    }
    loop {
        let n = interrupt::free(|cs| {
            let mut queue = QUEUE.borrow(cs).borrow_mut();
            let mut n = 0;
            for slot in buf.iter_mut() {
                let Some(byte) = queue.pop_front() else { break };
                *slot = byte;
                n += 1;
            }
            n
        });
        if n > 0 {
            return n;
        }
    }
}
