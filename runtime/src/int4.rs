//! Packed int4 storage ([`crate::format::DTYPE_I4`]): the one definition of
//! the nibble layout, for the runtime that reads it and the host tools that
//! write it.
//!
//! Element `e` of a tensor lives in byte `e / 2`: bits 0–3 when `e` is even,
//! bits 4–7 when it is odd (low nibble first), as a 4-bit two's-complement
//! number in `[-8, 7]`. An odd element count leaves the last byte's high
//! nibble unused (writers store 0 there).

/// Bytes that hold `elements` packed int4 values: `⌈elements / 2⌉`.
pub const fn packed_len(elements: usize) -> usize {
    elements.div_ceil(2)
}

/// The signed value of the low nibble of `byte`.
#[inline(always)]
pub const fn low(byte: u8) -> i32 {
    (((byte << 4) as i8) >> 4) as i32
}

/// The signed value of the high nibble of `byte`.
#[inline(always)]
pub const fn high(byte: u8) -> i32 {
    ((byte as i8) >> 4) as i32
}

/// The four int4 codes in the low 16 bits of `h` (code `k` in bits `4k ..
/// 4k + 4`), each sign-extended into byte `k` of the result — int8 codes in
/// order, for unpacking a block of weights a word at a time. Spread the
/// nibbles one per byte (two shift-or-mask steps), then set the top four
/// bits of each byte whose code is negative: bit 3 set, times 30 (`0x08 ·
/// 30 = 0xF0`, no carry between bytes).
#[inline(always)]
pub const fn spread4(h: u32) -> u32 {
    let h = h & 0xFFFF;
    let x = (h | h << 8) & 0x00FF_00FF;
    let x = (x | x << 4) & 0x0F0F_0F0F;
    x | (x & 0x0808_0808).wrapping_mul(30)
}

/// A read-only view of `len` packed int4 values, borrowed from the artifact
/// (flash) like every other constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackedI4<'a> {
    bytes: &'a [u8],
    len: usize,
}

impl<'a> PackedI4<'a> {
    /// Views `bytes` as `len` int4 values; `None` unless `bytes` is exactly
    /// [`packed_len`]`(len)` long, so every element is addressable.
    pub fn new(bytes: &'a [u8], len: usize) -> Option<Self> {
        (bytes.len() == packed_len(len)).then_some(PackedI4 { bytes, len })
    }

    /// Number of int4 values.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view holds no value.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The packed bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Value `i`, or 0 past the end (never panics: kernels validate their
    /// index ranges up front, this keeps a slip harmless).
    #[inline(always)]
    pub fn get(&self, i: usize) -> i32 {
        if i >= self.len {
            return 0;
        }
        match self.bytes.get(i / 2) {
            Some(&b) if i % 2 == 0 => low(b),
            Some(&b) => high(b),
            None => 0,
        }
    }
}

/// Packs int4 `codes` (each in `[-8, 7]`; only the low 4 bits of a code
/// are kept) into [`packed_len`]`(codes.len())` bytes, low nibble first,
/// the unused high nibble of an odd count zero.
pub fn pack(codes: &[i8]) -> impl Iterator<Item = u8> + '_ {
    codes.chunks(2).map(|pair| {
        let nibble = |k: usize| pair.get(k).map_or(0, |&c| c as u8 & 0x0F);
        nibble(0) | (nibble(1) << 4)
    })
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use std::vec::Vec;

    #[test]
    fn spread4_sign_extends_each_code_into_its_byte() {
        // Codes 1, −1, 7, −8 (nibbles 0x1, 0xF, 0x7, 0x8); the high half
        // of the argument is ignored.
        assert_eq!(spread4(0xABCD_87F1), u32::from_le_bytes([1, 0xFF, 7, 0xF8]));
        // Every 16-bit pattern against the nibble-by-nibble definition.
        for h in 0..=0xFFFFu32 {
            let want = [0, 1, 2, 3].map(|k| ((((h >> (4 * k)) as u8) << 4) as i8 >> 4) as u8);
            assert_eq!(spread4(h), u32::from_le_bytes(want), "{h:#06x}");
        }
    }

    #[test]
    fn hand_computed_layout() {
        // 1 → 0x1, −1 → 0xF, 7 → 0x7, −8 → 0x8, −7 → 0x9; odd count pads 0.
        let packed: Vec<u8> = pack(&[1, -1, 7, -8, -7]).collect();
        assert_eq!(packed, [0xF1, 0x87, 0x09]);
        let v = PackedI4::new(&packed, 5).unwrap();
        let values: Vec<i32> = (0..6).map(|i| v.get(i)).collect();
        assert_eq!(values, [1, -1, 7, -8, -7, 0]);
        assert_eq!((v.len(), v.is_empty()), (5, false));
        assert_eq!((low(0x9F), high(0x9F)), (-1, -7));
    }

    #[test]
    fn the_length_must_match_exactly() {
        assert!(PackedI4::new(&[0; 2], 3).is_some());
        assert!(PackedI4::new(&[0; 2], 4).is_some());
        assert!(PackedI4::new(&[0; 2], 5).is_none());
        assert!(PackedI4::new(&[0; 2], 2).is_none());
        assert!(PackedI4::new(&[], 0).is_some_and(|v| v.is_empty()));
        assert_eq!(packed_len(usize::MAX), usize::MAX / 2 + 1);
    }

    #[test]
    fn every_code_round_trips() {
        let codes: Vec<i8> = (-8..=7).chain((-8..=7).rev()).chain([3]).collect();
        let packed: Vec<u8> = pack(&codes).collect();
        let v = PackedI4::new(&packed, codes.len()).unwrap();
        for (i, &c) in codes.iter().enumerate() {
            assert_eq!(v.get(i), c as i32, "element {i}");
        }
    }
}
