//! Driver for the Arm CMSDK APB UART (the MPS2 FPGA images' UARTs, as QEMU
//! models them in hw/char/cmsdk-apb-uart.c): a one-byte buffer each way.
//! Transmit is polled; receive raises an interrupt whose handler moves the
//! byte into [`super::rx_queue`].

use core::convert::Infallible;
use cortex_m::interrupt::CriticalSection;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
/// Read: interrupt status; write 1s: clear those interrupts.
const INTSTATUS: usize = 0x0C;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;
const CTRL_RX_INTERRUPT: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// Register access to one CMSDK UART block.
struct Registers {
    base: usize,
}

impl Registers {
    fn read(&self, offset: usize) -> u32 {
        // SAFETY: `CmsdkUart::new`'s contract makes `base` a UART register
        // block owned by this driver's two halves; every offset used is one
        // of its 32-bit registers. Volatile, because the hardware changes
        // these registers.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write(&self, offset: usize, value: u32) {
        // SAFETY: as in `read`.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }
}

/// The transmit half, owned by the main loop.
pub struct CmsdkTx {
    regs: Registers,
}

/// The receive half, owned by the receive interrupt's handler.
pub struct CmsdkRx {
    regs: Registers,
}

/// Programs the baud divider, enables transmit, receive and the receive
/// interrupt (the NVIC line stays masked until the caller unmasks it), and
/// splits the UART into its two halves. The halves touch disjoint state:
/// transmit writes DATA and polls TX_FULL; receive reads DATA and RX_FULL
/// and clears INTSTATUS.
///
/// # Safety
///
/// `base` must be the address of a CMSDK APB UART register block, and no
/// other code may access that block while the halves exist.
pub unsafe fn split(base: usize, bauddiv: u32) -> (CmsdkTx, CmsdkRx) {
    let regs = Registers { base };
    regs.write(BAUDDIV, bauddiv);
    regs.write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE | CTRL_RX_INTERRUPT);
    (
        CmsdkTx { regs },
        CmsdkRx {
            regs: Registers { base },
        },
    )
}

impl CmsdkRx {
    /// The interrupt's work: acknowledge, then queue every byte held. The
    /// acknowledgement comes first so a byte landing after the last check
    /// raises the interrupt again instead of waiting unseen.
    pub fn on_interrupt(&self, cs: &CriticalSection) {
        self.regs.write(INTSTATUS, INT_RX);
        while self.regs.read(STATE) & STATE_RX_FULL != 0 {
            super::rx_queue::push(cs, self.regs.read(DATA) as u8);
        }
    }
}

impl CmsdkTx {
    fn write_byte(&mut self, byte: u8) {
        while self.regs.read(STATE) & STATE_TX_FULL != 0 {}
        self.regs.write(DATA, u32::from(byte));
    }
}

impl embedded_io::ErrorType for CmsdkTx {
    type Error = Infallible;
}

impl embedded_io::Write for CmsdkTx {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            self.write_byte(byte);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.regs.read(STATE) & STATE_TX_FULL != 0 {}
        Ok(())
    }
}
