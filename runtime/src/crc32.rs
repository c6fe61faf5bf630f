//! CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320), table-free so it costs no
//! flash beyond its code; it only runs over the header at parse time.

/// CRC-32 of `bytes` (the zlib / PNG / Ethernet CRC).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
}

/// Continues a CRC-32 over more bytes (`state` starts at `0xFFFF_FFFF`).
pub(crate) fn crc32_update(mut state: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        state ^= b as u32;
        for _ in 0..8 {
            let mask = (state & 1).wrapping_neg();
            state = (state >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_check_value() {
        // The CRC-32 catalogue's check value for "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn update_in_pieces_equals_whole() {
        let s = crc32_update(0xFFFF_FFFF, b"12345");
        assert_eq!(crc32_update(s, b"6789") ^ 0xFFFF_FFFF, 0xCBF4_3926);
    }
}
