//! The byte transport under the protocol: anything readable and writable
//! (a QEMU UART socket, a serial port).

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::Duration;

/// A bidirectional byte stream to a board. Reads should time out (return
/// `WouldBlock`/`TimedOut`) rather than block forever where the transport
/// allows it, so a dead board is reported instead of hanging the host.
pub trait Link: Read + Write + Send {}

impl<T: Read + Write + Send> Link for T {}

/// How long one read of a [`SerialLink`] waits before reporting `TimedOut`.
const POLL: Duration = Duration::from_millis(200);

/// A serial port (or pty) as a [`Link`] with read timeouts: plain file reads
/// cannot time out, so a thread reads the port and hands bytes over a
/// channel. The thread ends when the port reports end of file or an error.
pub struct SerialLink {
    port: File,
    bytes: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for SerialLink {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.bytes.recv_timeout(POLL) {
                Ok(bytes) => self.pending = bytes,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(std::io::ErrorKind::TimedOut.into());
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

impl Write for SerialLink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.port.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.port.flush()
    }
}

/// Opens a real board's serial port (`serial:PATH`) for the protocol.
///
/// The port is put in raw mode at 115200 baud with `stty` when it is
/// available (the firmware's USART2 setting).
pub fn open_serial(path: &Path) -> Result<SerialLink> {
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
    let port = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("opening serial port {}", path.display()))?;
    let mut reader = port
        .try_clone()
        .context("duplicating the serial port handle")?;
    let (tx, bytes) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Ok(SerialLink {
        port,
        bytes,
        pending: Vec::new(),
    })
}
