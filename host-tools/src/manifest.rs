//! `models/manifest.json`: the bundled models and their data, so the demo,
//! the benchmarks and the tests walk the same list.

use crate::eval::Task;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The manifest file.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// Every bundled model.
    pub models: Vec<BundledModel>,
    #[serde(skip)]
    dir: PathBuf,
}

/// One bundled model and its data files (names relative to the manifest).
#[derive(Debug, Clone, Deserialize)]
pub struct BundledModel {
    /// Short name used in reports.
    pub name: String,
    /// What the model is, for people reading reports.
    pub description: String,
    /// The float ONNX model.
    pub onnx: String,
    /// Calibration inputs (from the training split).
    pub calib: String,
    /// Held-out test inputs.
    pub test_x: String,
    /// Held-out test labels.
    pub test_y: String,
    /// How its outputs are scored.
    pub task: Task,
}

impl Manifest {
    /// Reads `dir/manifest.json`.
    pub fn load(dir: &Path) -> Result<Self> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut manifest: Manifest =
            serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        manifest.dir = dir.to_path_buf();
        Ok(manifest)
    }

    /// A data or model file named in the manifest, as a path.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}
