//! QEMU `mps2-an386`: protocol on UART0 (receive by interrupt), logs and
//! exit over semihosting, and SysTick as an instruction counter and the
//! delay the idle scrub schedule naps with.
//!
//! Under `-icount shift=0` QEMU's virtual clock advances exactly 1 ns per
//! executed instruction, and SysTick (clocked from the 25 MHz system clock of
//! the MPS2 board) ticks every 40 ns of virtual time: one tick is 40
//! instructions, deterministically, whatever the host machine does.

use super::cmsdk_uart::{self, CmsdkRx, CmsdkTx};
use super::{rx_queue, Target};
use core::cell::RefCell;
use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::interrupt::{InterruptNumber, Mutex};
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m::peripheral::{NVIC, SCB, SYST};
use cortex_m_rt::exception;
use cortex_m_semihosting::debug;
use defmt_semihosting as _;
use sturdy_protocol::{Board, CounterUnit};

/// UART0 of the AN385/AN386 FPGA images (QEMU connects it to `-serial`).
const UART0_BASE: usize = 0x4000_4000;
/// System (and peripheral) clock of the MPS2 board.
const SYSCLK_HZ: u32 = 25_000_000;
/// 115200 baud; QEMU ignores the rate but refuses dividers below 16.
const BAUDDIV: u32 = SYSCLK_HZ / 115_200;
/// Virtual nanoseconds (= instructions under `-icount shift=0`) per tick.
const INSTRUCTIONS_PER_TICK: u32 = 1_000_000_000 / SYSCLK_HZ;
const RELOAD: u32 = 0x00FF_FFFF;

/// UART0's receive interrupt: NVIC line 0 on the AN385/AN386 images
/// (`uartirq[] = {0, 2, 4, 18, 20}` in QEMU's hw/arm/mps2.c; transmit is
/// one above).
#[derive(Clone, Copy)]
struct Uart0Rx;

// SAFETY: 0 is UART0's receive line on this board, a valid NVIC line
// below the 32 the AN386 image wires.
unsafe impl InterruptNumber for Uart0Rx {
    fn number(self) -> u16 {
        0
    }
}

/// UART0's receive half, for the interrupt handler (set once by `init`).
static UART0_RX: Mutex<RefCell<Option<CmsdkRx>>> = Mutex::new(RefCell::new(None));

/// SysTick wraps since boot (the handler counts them).
static WRAPS: AtomicU32 = AtomicU32::new(0);

#[exception]
fn SysTick() {
    WRAPS.fetch_add(1, Ordering::Relaxed);
}

/// Device interrupts: this board has no PAC, so cortex-m-rt routes every
/// one here, and UART0's receive line is the only one unmasked.
#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn == Uart0Rx.number() as i16 {
        cortex_m::interrupt::free(|cs| {
            if let Some(rx) = UART0_RX.borrow(cs).borrow().as_ref() {
                rx.on_interrupt(cs);
            }
        });
    }
}

/// The emulated board.
pub struct Qemu {
    uart: CmsdkTx,
}

/// Starts SysTick and UART0, its receive interrupt unmasked.
pub fn init() -> Qemu {
    let Some(mut core) = cortex_m::Peripherals::take() else {
        defmt::error!("board::init called twice");
        halt_after_panic();
    };
    core.SYST.set_clock_source(SystClkSource::Core);
    core.SYST.set_reload(RELOAD);
    core.SYST.clear_current();
    core.SYST.enable_interrupt();
    core.SYST.enable_counter();
    // SAFETY: UART0_BASE is the AN386's UART0 register block, and this is
    // the only driver ever created for it.
    let (uart, rx) = unsafe { cmsdk_uart::split(UART0_BASE, BAUDDIV) };
    cortex_m::interrupt::free(|cs| UART0_RX.borrow(cs).replace(Some(rx)));
    // SAFETY: the handler only takes the critical section to move bytes
    // into the queue; no critical section elsewhere relies on this line
    // staying masked.
    unsafe { NVIC::unmask(Uart0Rx) };
    Qemu { uart }
}

/// After a panic: report failure to the emulator and stop.
pub fn halt_after_panic() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

impl Target for Qemu {
    const BOARD: Board = Board::QemuMps2An386;
    const UNIT: CounterUnit = CounterUnit::Instructions;
    const RESOLUTION: u32 = INSTRUCTIONS_PER_TICK;
    /// Virtual time runs 1 ns per instruction under `-icount shift=0`.
    const UNITS_PER_US: u32 = 1_000;

    fn now(&mut self) -> u64 {
        loop {
            // A wrap may be pending but not yet counted by the handler: read
            // the pending bit around the counter and retry if it changed.
            let wraps = WRAPS.load(Ordering::Relaxed);
            let pending_before = SCB::is_pendst_pending();
            let current = SYST::get_current();
            let pending_after = SCB::is_pendst_pending();
            if WRAPS.load(Ordering::Relaxed) != wraps || pending_before != pending_after {
                continue;
            }
            let wraps = u64::from(wraps) + u64::from(pending_before);
            let ticks = wraps * (u64::from(RELOAD) + 1) + u64::from(RELOAD - current);
            return ticks * u64::from(INSTRUCTIONS_PER_TICK);
        }
    }

    fn exit(&mut self, code: u8) {
        let _ = embedded_io::Write::flush(&mut self.uart);
        if code == 0 {
            debug::exit(debug::EXIT_SUCCESS);
        } else {
            debug::exit(debug::EXIT_FAILURE);
        }
    }
}

impl embedded_io::ErrorType for Qemu {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Qemu {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        Ok(rx_queue::read(buf))
    }
}

impl embedded_io::ReadReady for Qemu {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(rx_queue::ready())
    }
}

impl embedded_hal::delay::DelayNs for Qemu {
    /// Waits on the instruction clock (virtual nanoseconds): under
    /// `-icount` a wait is instructions spent, so a nap is as
    /// deterministic as everything else the board counts.
    fn delay_ns(&mut self, ns: u32) {
        let until = self.now() + u64::from(ns);
        while self.now() < until {}
    }
}

impl embedded_io::Write for Qemu {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.uart.write(buf)
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.uart.flush()
    }
}
