//! Device keys: 256-bit secrets from the OS RNG, stored owner-only.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
pub use sturdy_runtime::protect::{Key, KEY_LEN};

/// Draws a fresh key from the operating system's random number generator.
pub fn generate() -> Result<Key> {
    let mut key = [0u8; KEY_LEN];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("OS random generator failed: {e}"))?;
    Ok(key)
}

/// The key file's text: 64 lowercase hex digits and a newline.
pub fn to_text(key: &Key) -> String {
    let mut s: String = key.iter().map(|b| format!("{b:02x}")).collect();
    s.push('\n');
    s
}

/// Parses a key file: 64 hex digits (surrounding whitespace ignored) or the
/// 32 raw bytes.
pub fn parse(bytes: &[u8]) -> Result<Key> {
    let mut key = [0u8; KEY_LEN];
    if bytes.len() == KEY_LEN
        && std::str::from_utf8(bytes).map_or(true, |s| s.trim().len() != 2 * KEY_LEN)
    {
        key.copy_from_slice(bytes);
        return Ok(key);
    }
    let text =
        std::str::from_utf8(bytes).context("key file is neither 32 raw bytes nor hex text")?;
    let hex = text.trim();
    if hex.len() != 2 * KEY_LEN || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
        bail!("a key file holds 64 hex digits (256 bits), as `sturdy keygen` writes");
    }
    for (i, slot) in key.iter_mut().enumerate() {
        *slot = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    Ok(key)
}

/// Reads a key file written by `sturdy keygen`.
pub fn read(path: &Path) -> Result<Key> {
    let bytes = std::fs::read(path).with_context(|| format!("reading key {}", path.display()))?;
    parse(&bytes).with_context(|| format!("reading key {}", path.display()))
}

/// Writes `bytes` readable by the owner only (mode 0600 on Unix): into a
/// fresh temporary file created with that mode beside `path`, synced, then
/// renamed over `path`, so no reader ever sees a partial or world-readable
/// secret.
pub fn write_private_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = crate::fsutil::temp_path_beside(path)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| -> Result<()> {
        let mut file = options
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_raw_bytes() {
        let key = generate().unwrap();
        assert_eq!(parse(to_text(&key).as_bytes()).unwrap(), key);
        assert_eq!(parse(&key).unwrap(), key);
        assert!(parse(b"abcd").is_err());
        assert_ne!(generate().unwrap(), key);
    }
}
