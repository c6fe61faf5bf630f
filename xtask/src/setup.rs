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
