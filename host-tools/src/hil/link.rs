//! The byte transport under the protocol: anything readable and writable
//! (a QEMU UART socket, a serial port).

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

/// A bidirectional byte stream to a board. Reads should time out (return
/// `WouldBlock`/`TimedOut`) rather than block forever where the transport
/// allows it.
pub trait Link: Read + Write + Send {}

impl<T: Read + Write + Send> Link for T {}

/// Opens a real board's serial port (`serial:PATH`) for the protocol.
///
/// The port is put in raw mode at 115200 baud with `stty` when it is
/// available (the firmware's USART2 setting). Plain file I/O has no read
/// timeout: a board that stops answering blocks the host until interrupted.
pub fn open_serial(path: &Path) -> Result<File> {
    let configured = Command::new("stty")
        .arg("-F")
        .arg(path)
        .args([
            "115200", "raw", "-echo", "-echoe", "-echok", "-ixon", "-crtscts",
        ])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !configured {
        eprintln!(
            "note: could not configure {} with stty; make sure it is raw 8N1 at 115200 baud",
            path.display()
        );
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening serial port {}", path.display()))
}
