//! Flash and RAM accounting from the linker's symbols, and a painted-stack
//! high-water mark, so reports give measured sizes rather than estimates.

use crate::linked::{ARENA_SIZE, ARTIFACT_LEN, FLASH_LEN, FLASH_ORIGIN, RAM_LEN, RAM_ORIGIN};
use core::ptr::addr_of;
use sturdy_protocol::Memory;

// Symbols defined by cortex-m-rt's `link.x`; only their addresses are used.
extern "C" {
    static __etext: u8;
    static __sdata: u8;
    static __edata: u8;
    static __sidata: u8;
    static __sheap: u8;
    static _stack_start: u8;
}

/// Pattern written over the unused stack at boot.
const PAINT: u32 = 0x5354_4B21;
/// Most stack bytes painted: bounds the boot and scan cost on a 4 MiB
/// emulated RAM; a deeper use reports this many bytes.
const PAINT_LIMIT: usize = 64 << 10;
/// Bytes below the current stack pointer left alone while painting.
const PAINT_MARGIN: usize = 64;

fn addr(symbol: *const u8) -> u32 {
    symbol as usize as u32
}

/// Lowest painted address: the larger of the end of static RAM and
/// `PAINT_LIMIT` below the top of the stack.
fn paint_bottom() -> usize {
    let heap = addr(addr_of!(__sheap)) as usize;
    let top = addr(addr_of!(_stack_start)) as usize;
    heap.max(top.saturating_sub(PAINT_LIMIT))
        .next_multiple_of(4)
}

/// Fills the unused stack with [`PAINT`]; call first thing in `main`.
#[inline(never)]
pub fn paint_stack() {
    let sp = cortex_m::register::msp::read() as usize;
    let end = sp.saturating_sub(PAINT_MARGIN) & !3;
    let mut at = paint_bottom();
    while at < end {
        // SAFETY: [paint_bottom, sp - margin) lies between the end of the
        // static data (`__sheap`) and the current stack pointer: RAM that no
        // live object occupies, since the stack grows down from above `sp`
        // and this loop makes no calls. Word-aligned by construction.
        unsafe { core::ptr::write_volatile(at as *mut u32, PAINT) };
        at += 4;
    }
}

/// Deepest stack use since boot, in bytes: from the top of the stack down to
/// the lowest word no longer holding [`PAINT`].
pub fn stack_peak() -> u32 {
    let top = addr(addr_of!(_stack_start)) as usize;
    let mut at = paint_bottom();
    while at < top {
        // SAFETY: reads word-aligned RAM inside the stack region (between
        // `paint_bottom()` and `_stack_start`); a read has no side effects.
        let word = unsafe { core::ptr::read_volatile(at as *const u32) };
        if word != PAINT {
            break;
        }
        at += 4;
    }
    (top - at) as u32
}

/// Flash and RAM use of this firmware image.
pub fn usage() -> Memory {
    let data_len = addr(addr_of!(__edata)) - addr(addr_of!(__sdata));
    let heap = addr(addr_of!(__sheap));
    Memory {
        flash_total: FLASH_LEN,
        flash_used: addr(addr_of!(__sidata)) + data_len - FLASH_ORIGIN,
        code: addr(addr_of!(__etext)) - FLASH_ORIGIN,
        artifact: ARTIFACT_LEN as u32,
        ram_total: RAM_LEN,
        ram_static: heap - RAM_ORIGIN,
        arena: ARENA_SIZE as u32,
        stack_reserved: addr(addr_of!(_stack_start)) - heap,
    }
}
