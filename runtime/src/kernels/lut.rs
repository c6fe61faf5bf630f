//! Table-driven element-wise int8 functions (Sigmoid, Tanh, standalone ReLU/Clip…).

use crate::Error;

/// `output[i] = table[input[i] + 128]`; the 256-entry table already maps the
/// input quantization to the output quantization.
///
/// Returns [`Error::ShapeMismatch`] (output untouched) unless the table has
/// 256 entries and `input` and `output` have the same length.
pub fn lut(table: &[i8], input: &[i8], output: &mut [i8]) -> Result<(), Error> {
    let table: &[i8; 256] = table.try_into().map_err(|_| Error::ShapeMismatch)?;
    if input.len() != output.len() {
        return Err(Error::ShapeMismatch);
    }
    for (y, &x) in output.iter_mut().zip(input) {
        *y = table[(x as i32 + 128) as usize];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_by_code_plus_128() {
        let mut table = [0i8; 256];
        for (i, t) in table.iter_mut().enumerate() {
            *t = (127 - i as i32) as i8; // x ↦ −1 − x: −128 → 127 … 127 → −128
        }
        let mut y = [0i8; 4];
        lut(&table, &[-128, -1, 0, 127], &mut y).unwrap();
        assert_eq!(y, [127, 0, -1, -128]);
    }

    #[test]
    fn rejects_short_table_and_length_mismatch() {
        let mut y = [5i8; 2];
        assert_eq!(lut(&[0; 255], &[0, 0], &mut y), Err(Error::ShapeMismatch));
        assert_eq!(lut(&[0; 256], &[0], &mut y), Err(Error::ShapeMismatch));
        assert_eq!(y, [5, 5]);
    }
}
