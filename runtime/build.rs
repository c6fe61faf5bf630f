//! Selects the kernels' multiply-accumulate path at compile time: Armv7E-M
//! (`thumbv7em-*`: Cortex-M4 and M7) has the DSP extension's dual 16-bit
//! multiply-accumulate (`SMLAD`), so it gets `kernels::mac::dsp`; every
//! other target (the host included) gets the portable loops. Both compute
//! the same wrapping i32 sums, so the choice changes speed, never bits.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(sturdy_dsp)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em") {
        println!("cargo::rustc-cfg=sturdy_dsp");
    }
}
