//! Confidence-based logit adjustment (EmaQ-LT), in integer arithmetic.
//!
//! A model trained on long-tailed data leans towards its head classes;
//! subtracting `τ·ln π_c` from the logits undoes the bias of the training
//! prior `π` (logit adjustment, Menon et al. 2021). EmaQ-LT applies it only
//! where the model is unsure — where the top-1 logit beats the runner-up by
//! less than a margin — so confident predictions are never moved.

use crate::Error;

/// Adjusts `data` (`rows × offsets.len()` int8 logits) in place: each row
/// whose largest code exceeds its second largest by less than `margin`
/// becomes `x_c − offsets[c]`, saturated to int8. Rows with one class are
/// never adjusted (no runner-up). Returns [`Error::ShapeMismatch`] when
/// `data` is not a whole number of rows.
pub fn logit_adjust(offsets: &[i32], margin: i32, data: &mut [i8]) -> Result<(), Error> {
    if offsets.is_empty() || data.len() % offsets.len() != 0 {
        return Err(Error::ShapeMismatch);
    }
    for row in data.chunks_exact_mut(offsets.len()) {
        if top_margin(row).is_some_and(|m| m < margin) {
            for (x, &o) in row.iter_mut().zip(offsets) {
                *x = (*x as i32).saturating_sub(o).clamp(-128, 127) as i8;
            }
        }
    }
    Ok(())
}

/// Largest minus second-largest code of `row` (`None` below two entries).
pub fn top_margin(row: &[i8]) -> Option<i32> {
    if row.len() < 2 {
        return None;
    }
    let (mut first, mut second) = (i32::MIN, i32::MIN);
    for &x in row {
        let x = x as i32;
        if x > first {
            second = first;
            first = x;
        } else if x > second {
            second = x;
        }
    }
    Some(first - second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsure_rows_move_confident_rows_stay() {
        // Row 0: top 10 vs 8 → margin 2 < 5: adjusted.
        // Row 1: top 40 vs 0 → margin 40 ≥ 5: untouched.
        let offsets = [3, -4, 0];
        let mut data = [10, 8, -2, 40, 0, 0];
        logit_adjust(&offsets, 5, &mut data).unwrap();
        assert_eq!(data, [7, 12, -2, 40, 0, 0]);
    }

    #[test]
    fn saturates_and_ties_count_as_zero_margin() {
        // A tie (margin 0) is unsure for any margin > 0; −(−10) on 120 saturates.
        let mut data = [120, 120, -128];
        logit_adjust(&[-10, 0, 5], 1, &mut data).unwrap();
        assert_eq!(data, [127, 120, -128]);
        // margin 0 never adjusts, even a tie.
        let mut data = [5, 5];
        logit_adjust(&[1, -1], 0, &mut data).unwrap();
        assert_eq!(data, [5, 5]);
    }

    #[test]
    fn ragged_rows_are_refused() {
        assert_eq!(
            logit_adjust(&[1, 2], 3, &mut [0; 3]),
            Err(Error::ShapeMismatch)
        );
        assert_eq!(logit_adjust(&[], 3, &mut []), Err(Error::ShapeMismatch));
        assert_eq!(top_margin(&[7]), None);
        assert_eq!(top_margin(&[-128, 127, 127]), Some(0));
    }
}
