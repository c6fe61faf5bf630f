//! Hardware in the loop: run an artifact on a board (QEMU or real) over the
//! `sturdy-protocol` link and compare every output byte with the host run.
//!
//! * [`link`] — the byte transport ([`link::Link`]) and its serial-port form;
//! * [`client`] — requests and typed replies over a link;
//! * [`qemu`] — launching the emulated board with the UART on a socket;
//! * [`firmware`] — building `sturdy-firmware` with an artifact linked in;
//! * [`session`] — running a sample set on the board against the host;
//! * [`drift_check`] — the board's drift monitor against its host twin.

pub mod client;
pub mod cost;
pub mod drift_check;
pub mod error;
pub mod firmware;
pub mod link;
pub mod qemu;
pub mod session;

pub use client::{Client, Reply};
pub use error::BoardError;
pub use firmware::{build_firmware, build_firmware_keyed, BoardKind};
pub use qemu::{QemuBoard, INSTALL_HINT};
pub use session::{run_hil, BoardSpec, HilOptions, HilReport};
