//! CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320) four bits at a time
//! from a 16-entry table (64 bytes of flash): it runs over the header at
//! every parse, and the bit-at-a-time loop spent 32 instructions a byte
//! there, 4 % of a small model's protected load.

/// CRC-32 of `bytes` (the zlib / PNG / Ethernet CRC).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32_update(0xFFFF_FFFF, bytes) ^ 0xFFFF_FFFF
}

/// The reflected polynomial.
const POLY: u32 = 0xEDB8_8320;

/// The CRC of each 4-bit value: four bit steps at once.
const NIBBLE: [u32; 16] = {
    let mut table = [0u32; 16];
    let mut i = 0;
    while i < 16 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 4 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// Continues a CRC-32 over more bytes (`state` starts at `0xFFFF_FFFF`).
pub(crate) fn crc32_update(mut state: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        state ^= b as u32;
        state = (state >> 4) ^ NIBBLE[(state & 15) as usize];
        state = (state >> 4) ^ NIBBLE[(state & 15) as usize];
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

    /// The table form equals the bit-at-a-time definition on every byte
    /// value and running state tried.
    #[test]
    fn nibble_steps_equal_bit_steps() {
        let bitwise = |mut state: u32, b: u8| {
            state ^= b as u32;
            for _ in 0..8 {
                state = if state & 1 == 1 {
                    (state >> 1) ^ POLY
                } else {
                    state >> 1
                };
            }
            state
        };
        let mut state = 0xFFFF_FFFFu32;
        for round in 0..4u32 {
            for b in 0..=255u8 {
                let want = bitwise(state, b);
                assert_eq!(crc32_update(state, &[b]), want);
                state = want.rotate_left(round + 1);
            }
        }
    }

    #[test]
    fn update_in_pieces_equals_whole() {
        let s = crc32_update(0xFFFF_FFFF, b"12345");
        assert_eq!(crc32_update(s, b"6789") ^ 0xFFFF_FFFF, 0xCBF4_3926);
    }
}
