//! ST Nucleo-F401RE: protocol on USART2 (PA2/PA3, wired to the ST-LINK's
//! virtual COM port) at 115200 baud, cycles from the DWT cycle counter,
//! defmt over RTT (read by `probe-rs run`).

use super::Target;
use cortex_m::peripheral::DWT;
use defmt_rtt as _;
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::{
    pac,
    serial::{config::Config, Serial},
};
use sturdy_protocol::{Board, CounterUnit};

/// Core clock: HSI through the PLL.
const SYSCLK_MHZ: u32 = 84;

/// The real board.
pub struct Nucleo {
    serial: Serial<pac::USART2>,
    /// Last `CYCCNT` value and the cycles before it, to extend the 32-bit
    /// counter (wraps every 51 s at 84 MHz) to 64 bits.
    last: u32,
    high: u64,
    /// A byte `read_ready` took from the USART, handed out by the next `read`.
    pending: Option<u8>,
}

/// Clocks the core at 84 MHz, starts the cycle counter and USART2.
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
    Nucleo {
        serial,
        last: DWT::cycle_count(),
        high: 0,
        pending: None,
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
    /// Blocks for one byte. Line errors (overrun, noise, framing) drop the
    /// byte; the protocol's framing then reports the damaged frame.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Some(slot) = buf.first_mut() else {
            return Ok(0);
        };
        if let Some(byte) = self.pending.take() {
            *slot = byte;
            return Ok(1);
        }
        loop {
            match _embedded_hal_serial_nb_Read::read(&mut self.serial) {
                Ok(byte) => {
                    *slot = byte;
                    return Ok(1);
                }
                Err(_) => continue,
            }
        }
    }
}

impl embedded_io::ReadReady for Nucleo {
    /// Polls the USART once; a byte found is kept for the next `read`.
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        if self.pending.is_none() {
            self.pending = _embedded_hal_serial_nb_Read::read(&mut self.serial).ok();
        }
        Ok(self.pending.is_some())
    }
}

impl embedded_io::Write for Nucleo {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for &byte in buf {
            while _embedded_hal_serial_nb_Write::write(&mut self.serial, byte).is_err() {}
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        while _embedded_hal_serial_nb_Write::flush(&mut self.serial).is_err() {}
        Ok(())
    }
}
