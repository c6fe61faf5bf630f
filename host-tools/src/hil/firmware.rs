//! Building `sturdy-firmware` with an artifact linked into its flash.
//!
//! The firmware is its own cargo workspace (another target); this runs
//! `cargo build` there with `STURDY_ARTIFACT` set, then copies the ELF to a
//! name derived from the artifact's CRC, so concurrent builds of different
//! artifacts (parallel tests) never hand one caller another's ELF.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// The firmware's target triple.
pub const FIRMWARE_TARGET: &str = "thumbv7em-none-eabihf";

/// The boards the firmware builds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BoardKind {
    /// QEMU `mps2-an386` (default feature `qemu`).
    Qemu,
    /// ST Nucleo-F401RE (feature `nucleo-f401re`).
    NucleoF401re,
}

impl BoardKind {
    /// Cargo arguments selecting the board's feature.
    pub fn cargo_features(self) -> &'static [&'static str] {
        match self {
            BoardKind::Qemu => &[],
            BoardKind::NucleoF401re => &["--no-default-features", "--features", "nucleo-f401re"],
        }
    }

    /// Short name used in file names.
    pub fn slug(self) -> &'static str {
        match self {
            BoardKind::Qemu => "qemu",
            BoardKind::NucleoF401re => "nucleo-f401re",
        }
    }

    /// The chip name `probe-rs` knows the board by (`None`: not a probe target).
    pub fn probe_rs_chip(self) -> Option<&'static str> {
        match self {
            BoardKind::Qemu => None,
            BoardKind::NucleoF401re => Some("STM32F401RETx"),
        }
    }
}

/// Where the firmware sources are: `STURDY_FIRMWARE_DIR`, else the
/// `firmware/` folder beside this crate.
pub fn default_firmware_dir() -> PathBuf {
    match std::env::var_os("STURDY_FIRMWARE_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware"),
    }
}

fn require_target() -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !sysroot.join("lib/rustlib").join(FIRMWARE_TARGET).exists() {
        bail!(
            "the {FIRMWARE_TARGET} target is not installed: install it with `rustup target add {FIRMWARE_TARGET}`"
        );
    }
    Ok(())
}

/// A cross-process lock (a directory: `mkdir` is atomic), removed on drop.
struct BuildLock(PathBuf);

impl BuildLock {
    fn acquire(path: PathBuf) -> Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(BuildLock(path)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock older than any build is left over from a crash.
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| SystemTime::now().duration_since(t).ok())
                        .is_some_and(|age| age > Duration::from_secs(900));
                    if stale {
                        let _ = std::fs::remove_dir(&path);
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => {
                    return Err(e).with_context(|| format!("creating lock {}", path.display()))
                }
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Builds the firmware for `board` with `artifact` linked in and returns the
/// path of an ELF that holds exactly that artifact. Cargo's output is shown
/// when `verbose`, and on failure in any case.
pub fn build_firmware(
    artifact: &Path,
    board: BoardKind,
    firmware_dir: &Path,
    verbose: bool,
) -> Result<PathBuf> {
    build_firmware_keyed(artifact, None, board, firmware_dir, verbose)
}

/// [`build_firmware`] for a protected artifact: the device key file `key`
/// (`sturdy keygen`) is compiled into the image (`STURDY_KEY`), the firmware
/// decodes the artifact into RAM at boot with it. A real product would keep
/// the key in OTP or secure storage instead.
pub fn build_firmware_keyed(
    artifact: &Path,
    key: Option<&Path>,
    board: BoardKind,
    firmware_dir: &Path,
    verbose: bool,
) -> Result<PathBuf> {
    build_firmware_with(artifact, key, board, &[], firmware_dir, verbose)
}

/// [`build_firmware_keyed`] with extra firmware cargo features (e.g.
/// `kernel-check` for the kernel test); the ELF's name says which.
pub fn build_firmware_with(
    artifact: &Path,
    key: Option<&Path>,
    board: BoardKind,
    features: &[&str],
    firmware_dir: &Path,
    verbose: bool,
) -> Result<PathBuf> {
    require_target()?;
    let artifact = std::fs::canonicalize(artifact)
        .with_context(|| format!("finding {}", artifact.display()))?;
    let bytes = std::fs::read(&artifact)?;
    let key = key
        .map(|k| std::fs::canonicalize(k).with_context(|| format!("finding key {}", k.display())))
        .transpose()?;
    if let Some(key) = &key {
        // Fail here with the host's message rather than in build.rs.
        crate::protect::key::read(key)?;
    }
    // The ELF name tells keyed builds apart without deriving anything from
    // the key's bits: the CRC covers the key file's path only.
    let crc = sturdy_runtime::crc32(&bytes)
        ^ key.as_ref().map_or(0, |k| {
            sturdy_runtime::crc32(k.as_os_str().to_string_lossy().as_bytes())
        });
    let manifest = firmware_dir.join("Cargo.toml");
    if !manifest.exists() {
        bail!(
            "no firmware sources at {} (set STURDY_FIRMWARE_DIR or --firmware-dir)",
            firmware_dir.display()
        );
    }
    let firmware_dir = &std::fs::canonicalize(firmware_dir)?;
    let _lock = BuildLock::acquire(firmware_dir.join("target/.sturdy-build.lock"))?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(firmware_dir)
        .args([
            "build",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .args(board.cargo_features())
        .args(features.iter().flat_map(|f| ["--features", f]))
        .env("STURDY_ARTIFACT", &artifact)
        .env("STURDY_KEY", key.as_deref().unwrap_or(Path::new("")))
        // Its own target dir, even when the user shares one between
        // projects: a shared one may be locked by the cargo running us.
        .env("CARGO_TARGET_DIR", firmware_dir.join("target"))
        .stdout(Stdio::piped())
        .stderr(if verbose {
            Stdio::inherit()
        } else {
            Stdio::piped()
        });
    // Flags meant for the host build would replace the firmware's own
    // (linker scripts, target) from .cargo/config.toml.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
    ] {
        command.env_remove(var);
    }
    let out = command.output().context("running cargo for the firmware")?;
    if !out.status.success() {
        bail!(
            "building the firmware failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let elf = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .next_back()
        .context("cargo built no firmware executable")?;
    let copy = elf.with_file_name(format!(
        "sturdy-firmware-{}{}-{crc:08x}-{}.elf",
        board.slug(),
        features.iter().map(|f| format!("+{f}")).collect::<String>(),
        bytes.len()
    ));
    std::fs::copy(&elf, &copy)
        .with_context(|| format!("copying {} to {}", elf.display(), copy.display()))?;
    Ok(copy)
}
