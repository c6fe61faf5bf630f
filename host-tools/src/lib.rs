//! `sturdy-tools`: the host half of sturdy.
//!
//! ONNX → [`onnx::import`] → float [`ir::Graph`] → [`quantize`] → artifact
//! bytes → executed by `sturdy-runtime`, the same crate the board runs.
#![warn(missing_docs)]

pub mod aging;
pub mod analyze;
pub mod artifact_writer;
pub mod cli;
pub mod drift;
pub mod eval;
pub mod file_kind;
pub mod float_exec;
pub mod fsutil;
pub mod hil;
pub mod host_model;
pub mod ir;
pub mod longtail;
pub mod manifest;
pub mod meta;
pub mod metrics;
pub mod npy;
pub mod npy_f16;
pub mod onnx;
pub mod planner;
pub mod protect;
pub mod quantize;
pub mod reference;
pub mod spectral;
pub mod verify;
