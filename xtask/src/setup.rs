//! Installing prerequisites and running cargo from the workspace root.

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::process::Command;

/// The Cortex-M4F target the runtime and firmware build for.
pub const EMBEDDED_TARGET: &str = "thumbv7em-none-eabihf";

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Prints a step banner so long runs say where they are.
pub fn step(what: &str) {
    eprintln!("\n==> {what}");
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Runs `cargo args…` in the workspace root, failing if it fails.
pub fn cargo(args: &[&str]) -> Result<()> {
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("starting cargo {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn rustup(args: &[&str]) -> Result<()> {
    let status = Command::new("rustup")
        .args(args)
        .status()
        .with_context(|| {
            format!(
                "running `rustup {}`: is rustup installed? (https://rustup.rs)",
                args.join(" ")
            )
        })?;
    if !status.success() {
        bail!(
            "`rustup {}` failed ({status}); run it by hand and retry",
            args.join(" ")
        );
    }
    Ok(())
}

/// Installs a rustup target if the toolchain does not have it.
pub fn ensure_target(target: &str) -> Result<()> {
    let out = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .context("running rustc")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if sysroot.join("lib/rustlib").join(target).exists() {
        return Ok(());
    }
    step(&format!("installing the {target} target"));
    rustup(&["target", "add", target])
}

/// Installs a rustup component if `cargo probe…` does not run.
pub fn ensure_component(component: &str, probe: &[&str]) -> Result<()> {
    let works = Command::new(cargo_bin())
        .args(probe)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if works {
        return Ok(());
    }
    step(&format!("installing the {component} component"));
    rustup(&["component", "add", component])
}

/// The emulator the hardware-in-loop tests, demo and bench boot the firmware on.
pub const QEMU: &str = "qemu-system-arm";
/// The exact command that installs it on Debian and Ubuntu.
pub const QEMU_INSTALL: &str = "sudo apt-get install -y qemu-system-arm";

fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs `apt-get args…`, through sudo unless already root.
fn apt_get(args: &[&str]) -> bool {
    if is_root() {
        runs("apt-get", args)
    } else {
        let mut with_sudo = vec!["apt-get"];
        with_sudo.extend_from_slice(args);
        Command::new("sudo")
            .args(&with_sudo)
            .status()
            .is_ok_and(|s| s.success())
    }
}

/// Installs QEMU with apt when it is missing, or stops with the command
/// that installs it.
pub fn ensure_qemu() -> Result<()> {
    if runs(QEMU, &["--version"]) {
        return Ok(());
    }
    if !runs("apt-get", &["--version"]) {
        bail!("{QEMU} is missing and apt-get is not available: install QEMU's Arm system emulator (on Debian/Ubuntu: `{QEMU_INSTALL}`) and retry");
    }
    step(&format!("installing {QEMU} (apt)"));
    let installed = apt_get(&["install", "-y", "-q", QEMU])
        || (apt_get(&["update", "-q"]) && apt_get(&["install", "-y", "-q", QEMU]));
    if !installed || !runs(QEMU, &["--version"]) {
        bail!("could not install {QEMU}: run `{QEMU_INSTALL}` and retry");
    }
    Ok(())
}

/// The firmware's own workspace.
pub fn firmware_dir() -> PathBuf {
    workspace_root().join("firmware")
}

/// Runs `cargo args…` in the firmware workspace (its `.cargo/config.toml`
/// sets the target and linker scripts), failing if it fails.
pub fn cargo_firmware(args: &[&str]) -> Result<()> {
    let status = Command::new(cargo_bin())
        .args(args)
        .current_dir(firmware_dir())
        .env("CARGO_TARGET_DIR", firmware_dir().join("target"))
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .with_context(|| format!("starting cargo {} (firmware)", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` in firmware/ failed ({status})", args.join(" "));
    }
    Ok(())
}
