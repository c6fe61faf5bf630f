//! ST Nucleo-F401RE: protocol on USART2 (PA2/PA3, wired to the ST-LINK's
//! virtual COM port) at 115200 baud, received by interrupt; cycles from the
//! DWT cycle counter; TIM5 as the idle schedule's delay; defmt over RTT
//! (read by `probe-rs run`).

use super::{rx_queue, Target};
use core::cell::RefCell;
use cortex_m::interrupt::Mutex;
use cortex_m::peripheral::{DWT, NVIC};
use defmt_rtt as _;
use stm32f4xx_hal::pac::interrupt;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::{
    pac,
    serial::{config::Config, Rx, RxListen, Tx},
    timer::DelayUs,
};
use sturdy_protocol::{Board, CounterUnit};

/// Core clock: HSI through the PLL.
const SYSCLK_MHZ: u32 = 84;

/// USART2's receive half, for the interrupt handler (set once by `init`).
static USART2_RX: Mutex<RefCell<Option<Rx<pac::USART2>>>> = Mutex::new(RefCell::new(None));

/// The real board.
pub struct Nucleo {
    tx: Tx<pac::USART2>,
    delay: DelayUs<pac::TIM5>,
    /// Last `CYCCNT` value and the cycles before it, to extend the 32-bit
    /// counter (wraps every 51 s at 84 MHz) to 64 bits.
    last: u32,
    high: u64,
    /// The flash controller, for repairing the model in flash.
    #[cfg(feature = "flash-repair")]
    flash: pac::FLASH,
}

/// USART2's receive interrupt: queue every byte the USART holds. Line
/// errors (overrun, noise, framing) drop the byte; the protocol's framing
/// then reports the damaged frame.
#[interrupt]
fn USART2() {
    cortex_m::interrupt::free(|cs| {
        if let Some(rx) = USART2_RX.borrow(cs).borrow_mut().as_mut() {
            while let Ok(byte) = _embedded_hal_serial_nb_Read::read(rx) {
                rx_queue::push(cs, byte);
            }
        }
    });
}

/// Clocks the core at 84 MHz, starts the cycle counter, TIM5 and USART2
/// with its receive interrupt.
pub fn init() -> Nucleo {
    let (Some(dp), Some(mut cp)) = (pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        defmt::error!("board::init called twice");
        halt_after_panic();
    };
    let clocks = dp.RCC.constrain().cfgr.sysclk(SYSCLK_MHZ.MHz()).freeze();
    cp.DCB.enable_trace();
    cp.DWT.enable_cycle_counter();
    let gpioa = dp.GPIOA.split();
    let config = Config::default().baudrate(115_200.bps());
    let Ok(serial) = dp.USART2.serial((gpioa.pa2, gpioa.pa3), config, &clocks) else {
        defmt::error!("USART2 configuration rejected");
        halt_after_panic();
    };
    let (tx, mut rx) = serial.split();
    rx.listen();
    cortex_m::interrupt::free(|cs| USART2_RX.borrow(cs).replace(Some(rx)));
    // SAFETY: the handler only takes the critical section to move bytes
    // into the queue; no critical section elsewhere relies on this line
    // staying masked.
    unsafe { NVIC::unmask(pac::Interrupt::USART2) };
    Nucleo {
        tx,
        delay: dp.TIM5.delay_us(&clocks),
        last: DWT::cycle_count(),
        high: 0,
        #[cfg(feature = "flash-repair")]
        flash: dp.FLASH,
    }
}

#[cfg(feature = "flash-repair")]
impl Nucleo {
    /// The flash, unlocked for erasing and programming until the result
    /// is dropped (a `NorFlash`).
    pub fn flash(&mut self) -> stm32f4xx_hal::flash::UnlockedFlash<'_> {
        use stm32f4xx_hal::flash::FlashExt;
        self.flash.unlocked()
    }
}

/// After a panic: stop in a breakpoint so `probe-rs` reports it.
pub fn halt_after_panic() -> ! {
    loop {
        cortex_m::asm::bkpt();
    }
}

impl Target for Nucleo {
    const BOARD: Board = Board::NucleoF401re;
    const UNIT: CounterUnit = CounterUnit::Cycles;
    const RESOLUTION: u32 = 1;
    const UNITS_PER_US: u32 = SYSCLK_MHZ;

    fn now(&mut self) -> u64 {
        let now = DWT::cycle_count();
        self.high += u64::from(now.wrapping_sub(self.last));
        self.last = now;
        self.high
    }

    fn exit(&mut self, _code: u8) {
        // A real board keeps serving; the host just closes the port.
    }
}

impl embedded_io::ErrorType for Nucleo {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Nucleo {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        Ok(rx_queue::read(buf))
    }
}

impl embedded_io::ReadReady for Nucleo {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        Ok(rx_queue::ready())
    }
}

impl embedded_io::Write for Nucleo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &byte in buf {
            while _embedded_hal_serial_nb_Write::write(&mut self.tx, byte).is_err() {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while _embedded_hal_serial_nb_Write::flush(&mut self.tx).is_err() {}
        Ok(())
    }
}

impl embedded_hal::delay::DelayNs for Nucleo {
    fn delay_ns(&mut self, ns: u32) {
        self.delay.delay_ns(ns);
    }
}
