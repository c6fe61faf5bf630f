//! Naming what a file looks like when it is not what a command expected,
//! so "not an ONNX model" says what it is instead (a `.npy`, an archive, a
//! text file…) and shows its first bytes.

/// Formats the head of a file whose magic sturdy did not recognise: its
/// first bytes in hex and as text, and the format they suggest.
pub fn describe_head(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "the file is empty".into();
    }
    let head = &bytes[..bytes.len().min(16)];
    let hex: Vec<String> = head.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    let guess = guess_format(bytes).map_or(String::new(), |g| format!(", which looks like {g}"));
    format!("its first bytes are {} (\"{text}\"){guess}", hex.join(" "))
}

/// Formats recognised by their magic bytes.
const MAGICS: [(&[u8], usize, &str); 7] = [
    (b"\x93NUMPY", 0, "a NumPy .npy array"),
    (b"PK\x03\x04", 0, "a zip archive (.npz, .pt, .keras?)"),
    (b"\x1f\x8b", 0, "a gzip file"),
    (b"\x7fELF", 0, "an ELF executable"),
    (b"\x89PNG", 0, "a PNG image"),
    (
        b"TFL3",
        4,
        "a TensorFlow Lite flatbuffer (convert it to ONNX with tf2onnx)",
    ),
    (
        b"\x89HDF",
        0,
        "an HDF5 file (a Keras .h5 model? export it to ONNX)",
    ),
];

fn guess_format(bytes: &[u8]) -> Option<&'static str> {
    MAGICS
        .iter()
        .find(|(magic, at, _)| bytes.get(*at..*at + magic.len()) == Some(*magic))
        .map(|(_, _, name)| *name)
        .or_else(|| {
            let head = &bytes[..bytes.len().min(256)];
            let text = std::str::from_utf8(head).is_ok_and(|s| {
                s.chars()
                    .all(|c| !c.is_control() || c.is_ascii_whitespace())
            });
            text.then_some("text")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_common_formats_and_shows_the_bytes() {
        let npy = describe_head(b"\x93NUMPY\x01\x00v\x00{'descr'");
        assert!(npy.contains("93 4e 55 4d 50 59 01 00"), "{npy}");
        assert!(npy.contains("\".NUMPY..v.{'desc\""), "{npy}");
        assert!(npy.ends_with("a NumPy .npy array"), "{npy}");
        assert!(describe_head(b"\x1c\x00\x00\x00TFL3\x00\x00").contains("TensorFlow Lite"));
        assert!(describe_head(b"hello, world\n").ends_with("looks like text"));
        assert_eq!(describe_head(b""), "the file is empty");
    }

    #[test]
    fn unknown_binary_gets_no_guess() {
        let d = describe_head(&[0x08, 0x07, 0x12, 0xff, 0x00]);
        assert_eq!(d, "its first bytes are 08 07 12 ff 00 (\".....\")");
    }
}
