//! The emulated board: QEMU `mps2-an386` (Cortex-M4) running the firmware,
//! its UART0 on a Unix socket the host listens on, its semihosting output
//! (defmt log frames) on a pipe.
//!
//! `-icount shift=0` ties virtual time to executed instructions, so the
//! firmware's SysTick counts instructions deterministically.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The emulator binary.
pub const QEMU: &str = "qemu-system-arm";
/// The exact command that installs it (Debian/Ubuntu).
pub const INSTALL_HINT: &str = "sudo apt-get install -y qemu-system-arm";

/// Whether `qemu-system-arm` runs on this machine.
pub fn qemu_available() -> bool {
    Command::new(QEMU)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails with the install command when QEMU is missing.
pub fn require_qemu() -> Result<()> {
    if !qemu_available() {
        bail!("{QEMU} is not installed: install it with `{INSTALL_HINT}`");
    }
    Ok(())
}

/// The machine options shared by every way of booting the firmware.
pub fn machine_args() -> Vec<&'static str> {
    vec![
        "-machine",
        "mps2-an386",
        "-cpu",
        "cortex-m4",
        "-icount",
        "shift=0",
        "-semihosting-config",
        "enable=on,target=native",
    ]
}

/// A command line that boots `elf` with the protocol UART on the terminal,
/// for people trying the firmware by hand.
pub fn interactive_command(elf: &Path) -> String {
    format!(
        "{QEMU} {} -nographic -kernel {}",
        machine_args().join(" "),
        elf.display()
    )
}

/// Extra QEMU options from `STURDY_QEMU_ARGS` (whitespace-separated), for
/// debugging: e.g. `-d exec,nochain -accel tcg,one-insn-per-tb=on -D trace.log`.
fn extra_args() -> Vec<String> {
    std::env::var("STURDY_QEMU_ARGS")
        .map(|s| s.split_whitespace().map(String::from).collect())
        .unwrap_or_default()
}

/// A running emulated board. Dropping it kills QEMU.
pub struct QemuBoard {
    child: Child,
    dir: PathBuf,
    log: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = into.lock() {
                v.extend_from_slice(&buf[..n]);
            }
        }
    })
}

fn scratch_dir() -> Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "sturdy-qemu-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

impl QemuBoard {
    /// Boots `elf` and returns the board and the connected UART link.
    pub fn launch(elf: &Path) -> Result<(Self, UnixStream)> {
        Self::launch_with(elf, &extra_args())
    }

    /// [`QemuBoard::launch`] with extra QEMU options (tracing, for example).
    pub fn launch_with(elf: &Path, extra: &[String]) -> Result<(Self, UnixStream)> {
        require_qemu()?;
        let dir = scratch_dir()?;
        let socket = dir.join("uart0.sock");
        let listener = UnixListener::bind(&socket)
            .with_context(|| format!("listening on {}", socket.display()))?;
        listener.set_nonblocking(true)?;
        let mut child = Command::new(QEMU)
            .args(machine_args())
            .args([
                "-display",
                "none",
                "-monitor",
                "none",
                "-serial",
                "chardev:uart0",
            ])
            .arg("-chardev")
            .arg(format!("socket,id=uart0,path={}", socket.display()))
            .arg("-kernel")
            .arg(elf)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {QEMU}"))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(collect(out, log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(collect(err, stderr.clone()));
        }
        let mut board = QemuBoard {
            child,
            dir,
            log,
            stderr,
            readers,
        };
        let stream = board.accept(&listener)?;
        Ok((board, stream))
    }

    fn accept(&mut self, listener: &UnixListener) -> Result<UnixStream> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
                    return Ok(stream);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e).context("accepting QEMU's UART connection"),
            }
            if let Some(status) = self.child.try_wait()? {
                std::thread::sleep(Duration::from_millis(50));
                bail!(
                    "{QEMU} exited ({status}) before connecting its UART: {}",
                    self.stderr_text()
                );
            }
            if Instant::now() > deadline {
                bail!("{QEMU} did not connect its UART within 20 s");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// What QEMU printed on stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .map(|v| String::from_utf8_lossy(&v).trim().to_string())
            .unwrap_or_default()
    }

    /// The firmware's defmt log so far (raw frames; decode with
    /// `defmt-print -e ELF`).
    pub fn log(&self) -> Vec<u8> {
        self.log.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits for QEMU to exit (after a `Shutdown` request), killing it after
    /// `timeout`; returns its exit status and the complete defmt log.
    pub fn finish(mut self, timeout: Duration) -> Result<(ExitStatus, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait()?;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ok((status, self.log()))
    }
}

impl Drop for QemuBoard {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
