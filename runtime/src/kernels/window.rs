//! Sliding-window geometry shared by convolution and pooling.

use crate::Error;

/// `a · b · c` if it fits in `usize`.
pub(crate) fn volume(a: usize, b: usize, c: usize) -> Option<usize> {
    a.checked_mul(b)?.checked_mul(c)
}

/// One spatial axis of a sliding window (convolution or pooling).
///
/// Window `o` covers input positions `o·stride + k·dilation − pad` for taps
/// `k ∈ [0, kernel)`; positions outside `[0, in_len)` are padding.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Axis {
    /// Input extent.
    pub in_len: usize,
    /// Number of window positions.
    pub out_len: usize,
    /// Taps per window (≥ 1).
    pub kernel: usize,
    /// Step between windows (≥ 1).
    pub stride: usize,
    /// Padding before the input.
    pub pad: usize,
    /// Step between taps (≥ 1).
    pub dilation: usize,
}

impl Axis {
    /// Checks kernel, stride, dilation ≥ 1 and that the (padded) position
    /// of the last tap of the last window, `(out_len − 1)·stride +
    /// (kernel − 1)·dilation`, fits in `usize`, which is what makes
    /// [`Axis::taps`] overflow-free.
    pub fn check(&self) -> Result<(), Error> {
        if self.kernel == 0 || self.stride == 0 || self.dilation == 0 {
            return Err(Error::ShapeMismatch);
        }
        if self.out_len > 0 {
            (self.out_len - 1)
                .checked_mul(self.stride)
                .zip((self.kernel - 1).checked_mul(self.dilation))
                .and_then(|(a, b)| a.checked_add(b))
                .ok_or(Error::ShapeMismatch)?;
        }
        Ok(())
    }

    /// Additionally requires every window to contain at least one in-bounds
    /// tap (pooling has nothing to reduce otherwise). Checking the first and
    /// the last window suffices when `dilation == 1`: window starts grow with
    /// `o`, so if the first window ends after 0 and the last one starts
    /// before `in_len`, every window meets `[0, in_len)`.
    pub fn check_covered(&self) -> Result<(), Error> {
        self.check()?;
        if self.dilation != 1 {
            return Err(Error::ShapeMismatch);
        }
        if self.out_len > 0 {
            let (a0, a1, _) = self.taps(0);
            let (b0, b1, _) = self.taps(self.out_len - 1);
            if a0 >= a1 || b0 >= b1 {
                return Err(Error::ShapeMismatch);
            }
        }
        Ok(())
    }

    /// The taps `k0..k1` of window `o < out_len` that land inside the input,
    /// and the input position `i0` of tap `k0`: tap `k ∈ k0..k1` reads
    /// position `i0 + (k − k0)·dilation < in_len`. Empty ranges are `k0 == k1`.
    /// Requires [`Axis::check`] to have passed (no overflow then).
    ///
    /// Undilated axes (nearly all) take a branch without the divisions:
    /// `div_ceil(x, 1) = x`, and two 64-bit divisions per window cost a
    /// host convolution more than its gather.
    #[inline]
    pub fn taps(&self, o: usize) -> (usize, usize, usize) {
        let base = o * self.stride;
        if self.dilation == 1 {
            let (k0, i0) = match self.pad.checked_sub(base) {
                None | Some(0) => (0, base - self.pad),
                Some(before) if before >= self.kernel => return (0, 0, 0),
                Some(before) => (before, 0),
            };
            if i0 >= self.in_len {
                return (0, 0, 0);
            }
            return (k0, k0.saturating_add(self.in_len - i0).min(self.kernel), i0);
        }
        let (k0, i0) = if base >= self.pad {
            (0, base - self.pad)
        } else {
            let before = self.pad - base;
            let k0 = before.div_ceil(self.dilation);
            if k0 >= self.kernel {
                return (0, 0, 0);
            }
            // k0·dilation ≤ (kernel − 1)·dilation: fits by `check`.
            (k0, k0 * self.dilation - before)
        };
        if i0 >= self.in_len {
            return (0, 0, 0);
        }
        let count = (self.in_len - i0).div_ceil(self.dilation);
        (k0, k0.saturating_add(count).min(self.kernel), i0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The taps by brute force: every tap whose position lies in the input.
    fn reference(a: &Axis, o: usize) -> (usize, usize, usize) {
        let inside = (0..a.kernel).find_map(|k| {
            let pos = (o * a.stride + k * a.dilation).checked_sub(a.pad)?;
            (pos < a.in_len).then_some((k, pos))
        });
        let count = (0..a.kernel)
            .filter(|&k| {
                let pos = (o * a.stride + k * a.dilation).checked_sub(a.pad);
                pos.is_some_and(|p| p < a.in_len)
            })
            .count();
        match inside {
            Some((k0, i0)) => (k0, k0 + count, i0),
            None => (0, 0, 0),
        }
    }

    proptest! {
        /// Both branches of `taps` (undilated and dilated) give the
        /// brute-force taps for every window.
        #[test]
        fn taps_match_brute_force(
            in_len in 1usize..=12,
            kernel in 1usize..=7,
            stride in 1usize..=3,
            pad in 0usize..=8,
            dilation in 1usize..=3,
            out_len in 1usize..=12,
        ) {
            let a = Axis { in_len, out_len, kernel, stride, pad, dilation };
            prop_assume!(a.check().is_ok());
            for o in 0..out_len {
                prop_assert_eq!(a.taps(o), reference(&a, o), "window {}", o);
            }
        }
    }
}
