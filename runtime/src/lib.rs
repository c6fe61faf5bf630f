//! `sturdy-runtime`: runs int8 quantized neural networks on microcontrollers,
//! with int8 or packed int4 (W4A8) Conv/FC weights.
//!
//! The runtime is `#![no_std]` and never allocates: a model is a byte blob
//! (usually in flash) that [`Model::parse`] validates once, and inference runs
//! over one caller-provided arena whose layout was planned on the host.
//! Every failure, including malformed artifact bytes, is a typed [`Error`].
//!
//! Arithmetic follows the TFLite int8 scheme (see [`arith`]); the host tools
//! execute artifacts through this very crate, so host and board agree bit for
//! bit.
#![no_std]
// `unsafe` is denied everywhere but `kernels::mac::dsp` (single DSP
// instructions through `asm!`, each argued there) and the entry calls
// into SSE2 code of the x86-64 host kernels (`kernels::*_sse2`, whose
// instructions every x86-64 CPU has).
#![deny(unsafe_code)]
#![warn(missing_docs)]

#[cfg(target_endian = "big")]
compile_error!(
    "sturdy artifacts are little-endian and read in place: big-endian targets are not supported"
);

mod adaptation;
pub mod aging;
pub mod arith;
pub mod artifact;
mod crc32;
pub mod drift;
mod error;
pub mod format;
pub mod int4;
pub mod kernel_set;
pub mod kernels;
pub mod ldpc;
mod model;
pub mod protect;
mod timing;

pub use adaptation::{InputAlign, LogitAdjust};
pub use artifact::Artifact;
pub use crc32::crc32;
pub use drift::{DriftEvent, DriftMonitor, DriftStatus};
pub use error::Error;
pub use model::{GuardReport, Model, Op, OpKind, WeightData};
pub use timing::{GuardPolicy, NoFaults, OutputFaults, TimingFaults, MAX_RUNS};
