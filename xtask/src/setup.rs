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

/// A Debian package a step runs, by the program it provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AptTool {
    /// The program on PATH.
    pub program: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// What it is for, for the error message.
    pub purpose: &'static str,
}

/// The emulator the hardware-in-loop tests, demo and bench boot the firmware on.
pub const QEMU: AptTool = AptTool {
    program: "qemu-system-arm",
    package: "qemu-system-arm",
    purpose: "QEMU's Arm system emulator",
};

/// The browser the analysis report's test renders the page in.
pub const CHROMIUM: AptTool = AptTool {
    program: "chromium",
    package: "chromium",
    purpose: "the Chromium browser (headless)",
};

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

/// Makes sure `tool` runs: installs its package with apt-get (through
/// sudo unless root) when missing, or fails with the exact command that
/// installs it.
pub fn ensure_apt_tool(tool: AptTool) -> Result<()> {
    let AptTool {
        program,
        package,
        purpose,
    } = tool;
    if runs(program, &["--version"]) {
        return Ok(());
    }
    let install = format!("sudo apt-get install -y {package}");
    if !runs("apt-get", &["--version"]) {
        bail!("{program} is missing and apt-get is not available: install {purpose} (on Debian/Ubuntu: `{install}`) and retry");
    }
    step(&format!("installing {program} (apt)"));
    let installed = apt_get(&["install", "-y", "-q", package])
        || (apt_get(&["update", "-q"]) && apt_get(&["install", "-y", "-q", package]));
    if !installed || !runs(program, &["--version"]) {
        bail!("could not install {program}: run `{install}` and retry");
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
    cargo_firmware_with(args, &[])
}

/// `cargo_firmware` with extra environment variables (the artifact and key
/// `firmware/build.rs` links).
pub fn cargo_firmware_with(args: &[&str], env: &[(&str, &str)]) -> Result<()> {
    let status = Command::new(cargo_bin())
        .args(args)
        .envs(env.iter().copied())
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
