//! Measurements on a board (`--board qemu` or a serial port): the same
//! hardware-in-loop session as `sturdy hil`, on a few samples, for the
//! fit section's instructions per op and the cost section's load cost.

use super::report::BoardCost;
use crate::hil::session::{run_hil, BoardSpec, HilOptions};
use anyhow::{ensure, Context, Result};
use std::path::{Path, PathBuf};

/// Samples run on the board: the per-op counts are the last inference's,
/// and the bit-exact check covers all of them.
pub const SAMPLES: usize = 8;

/// Where the board run keeps the artifact and key files it hands to the
/// firmware build; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("sturdy-analyze-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }

    fn file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `artifact` (protected when the key file `key` is given) on `board` over the
/// first [`SAMPLES`] of `input`; every output must match the host's.
pub fn measure(
    board: &BoardSpec,
    artifact: &[u8],
    key: Option<&Path>,
    input: &Path,
) -> Result<BoardCost> {
    let scratch = Scratch::new()?;
    let opts = HilOptions {
        board: board.clone(),
        limit: Some(SAMPLES),
        key: key.map(Path::to_path_buf),
        ..HilOptions::qemu(scratch.file("model.sturdy", artifact)?, input.to_path_buf())
    };
    let report = run_hil(&opts).context("running the artifact on the board")?;
    ensure!(
        report.bit_exact(),
        "the board's outputs differ from the host's in {} of {} samples: the figures would not describe this model",
        report.mismatched_samples,
        report.samples
    );
    Ok(BoardCost {
        board: report.board_name().to_string(),
        unit: report.unit().to_string(),
        instructions_per_op: report.per_op.iter().map(|o| o.count).collect(),
        instructions_total: report.mean_cost(),
        macs: report.macs,
        load: report.health.map(|h| h.load_cost),
    })
}
