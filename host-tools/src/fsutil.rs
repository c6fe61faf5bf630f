//! File helpers: nothing half-written on failure, artifacts read aligned.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Writes `bytes` to a temporary file beside `path`, then renames it over
/// `path`, so a crash or error never leaves a truncated output behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_path_beside(path)?;
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()));
    }
    Ok(())
}

/// A hidden temporary name in `path`'s own directory (so the final rename
/// stays on one file system and is atomic), unique to this process.
pub fn temp_path_beside(path: &Path) -> Result<PathBuf> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    Ok(dir.join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Artifact bytes held in 4-byte-aligned storage, as the runtime's in-place
/// casts require (a plain `Vec<u8>` guarantees no alignment).
#[derive(Debug, Clone)]
pub struct AlignedBytes {
    words: Vec<u32>,
    len: usize,
}

impl AlignedBytes {
    /// Copies `bytes` into aligned storage.
    pub fn new(bytes: &[u8]) -> Self {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
        Self {
            words,
            len: bytes.len(),
        }
    }

    /// Reads a whole file into aligned storage.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Ok(Self::new(&bytes))
    }

    /// The bytes, 4-byte aligned.
    pub fn as_bytes(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }

    /// The storage as mutable words (the bytes zero-padded to a multiple
    /// of 4): what the runtime's in-place verifier patches.
    pub fn words_mut(&mut self) -> &mut [u32] {
        &mut self.words
    }
}
