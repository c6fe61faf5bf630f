//! Driver for the Arm CMSDK APB UART (the MPS2 FPGA images' UARTs, as QEMU
//! models them in hw/char/cmsdk-apb-uart.c): a one-byte buffer each way,
//! polled through four registers.

use core::convert::Infallible;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;

/// One CMSDK UART, polled.
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Programs the baud divider and enables transmit and receive.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a CMSDK APB UART register block, and no
    /// other code may access that block while this driver exists.
    pub unsafe fn new(base: usize, bauddiv: u32) -> Self {
        let uart = Self { base };
        uart.write_reg(BAUDDIV, bauddiv);
        uart.write_reg(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract makes `base` a UART register block owned
        // by this driver; every offset used is one of its 32-bit registers.
        // Volatile, because the hardware changes these registers.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    /// A received byte is waiting (reading it will not block).
    pub fn rx_ready(&self) -> bool {
        self.read_reg(STATE) & STATE_RX_FULL != 0
    }

    fn write_byte(&mut self, byte: u8) {
        while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
        self.write_reg(DATA, u32::from(byte));
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Blocks until at least one byte arrived, then takes what is buffered.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            if n > 0 && !self.rx_ready() {
                break;
            }
            while !self.rx_ready() {}
            *slot = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for CmsdkUart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            self.write_byte(byte);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.read_reg(STATE) & STATE_TX_FULL != 0 {}
        Ok(())
    }
}
