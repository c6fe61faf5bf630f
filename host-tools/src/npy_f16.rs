//! float16 `.npy` files (`descr '<f2'`), which `ndarray-npy` does not read:
//! a campaign's samples stored at half the bytes (numpy's
//! `x.astype(np.float16)`), widened to f32 with the `half` crate on load.

use anyhow::{bail, ensure, Context, Result};
use ndarray::{ArrayD, IxDyn};
use std::path::Path;

/// Reads `path` if it is a little-endian float16 C-order array: `Ok(None)`
/// when it is some other `.npy` (or not one at all), an error when it
/// claims float16 but is malformed.
pub fn read(path: &Path) -> Result<Option<ArrayD<f32>>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&bytes).with_context(|| format!("{}: a malformed float16 .npy file", path.display()))
}

/// [`read`] on the file's bytes.
pub fn parse(bytes: &[u8]) -> Result<Option<ArrayD<f32>>> {
    if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
        return Ok(None);
    }
    let (header_len, start) = match bytes[6] {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        _ => return Ok(None),
    };
    let Some(header) = bytes.get(start..start + header_len) else {
        bail!("the header runs past the end of the file");
    };
    let header = String::from_utf8_lossy(header);
    let descr = field(&header, "descr").unwrap_or_default();
    if !descr.contains("<f2") {
        return Ok(None);
    }
    ensure!(
        field(&header, "fortran_order").is_some_and(|v| v.starts_with("False")),
        "only C-order arrays are supported"
    );
    let shape_text = field(&header, "shape").unwrap_or_default();
    let inner = shape_text
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or_default();
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .with_context(|| format!("bad dimension '{s}'"))
        })
        .collect::<Result<_>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .context("the shape overflows")?;
    let data = &bytes[start + header_len..];
    ensure!(
        data.len() == count * 2,
        "{} data bytes for {count} float16 values",
        data.len()
    );
    let values: Vec<f32> = data
        .chunks_exact(2)
        .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    Ok(Some(ArrayD::from_shape_vec(IxDyn(&shape), values)?))
}

/// The text after `'name':` in a numpy header dict.
fn field<'h>(header: &'h str, name: &str) -> Option<&'h str> {
    let key = format!("'{name}':");
    let at = header.find(&key)? + key.len();
    Some(header[at..].trim_start())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A v1 .npy file of float16 `values` with `shape`, as numpy writes it.
    fn npy(shape: &str, values: &[f32]) -> Vec<u8> {
        let mut header = format!("{{'descr': '<f2', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.as_bytes());
        for &v in values {
            out.extend(half::f16::from_f32(v).to_le_bytes());
        }
        out
    }

    #[test]
    fn reads_what_numpy_writes() {
        let a = parse(&npy("(2, 3)", &[0.5, -1.0, 2.0, 65504.0, 0.0, 0.25]))
            .unwrap()
            .unwrap();
        assert_eq!(a.shape(), &[2, 3]);
        assert_eq!(
            a.iter().copied().collect::<Vec<_>>(),
            vec![0.5, -1.0, 2.0, 65504.0, 0.0, 0.25]
        );
        let one = parse(&npy("(3,)", &[1.0, 2.0, 3.0])).unwrap().unwrap();
        assert_eq!(one.shape(), &[3]);
    }

    #[test]
    fn other_files_are_not_claimed_and_broken_ones_are_refused() {
        let f32_file = npy("(1,)", &[1.0])
            .iter()
            .map(|&b| if b == b'2' { b'4' } else { b })
            .collect::<Vec<_>>();
        assert!(parse(&f32_file).unwrap().is_none());
        assert!(parse(b"not numpy").unwrap().is_none());
        let mut short = npy("(2, 2)", &[1.0, 2.0, 3.0, 4.0]);
        short.truncate(short.len() - 2);
        assert!(parse(&short).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            let mut file = b"\x93NUMPY\x01\x00".to_vec();
            file.extend(bytes);
            let _ = parse(&file);
        }
    }
}
