//! A set of int8 tensors given by per-element bounds.

use anyhow::{ensure, Result};

/// Every tensor `x` with `lo[i] ≤ x[i] ≤ hi[i]`: an input region, or what
/// bound propagation knows of an activation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interval {
    /// Lowest code of each element.
    pub lo: Vec<i8>,
    /// Highest code of each element.
    pub hi: Vec<i8>,
}

impl Interval {
    /// The interval `[lo, hi]`; refuses unequal lengths or an element with
    /// `lo > hi` (an empty set proves everything, which is never meant).
    pub fn new(lo: Vec<i8>, hi: Vec<i8>) -> Result<Self> {
        ensure!(
            lo.len() == hi.len(),
            "bounds of {} and {} elements",
            lo.len(),
            hi.len()
        );
        if let Some(i) = lo.iter().zip(&hi).position(|(l, h)| l > h) {
            anyhow::bail!(
                "element {i}: lower bound {} above upper bound {}",
                lo[i],
                hi[i]
            );
        }
        Ok(Self { lo, hi })
    }

    /// The single tensor `x`.
    pub fn point(x: &[i8]) -> Self {
        Self {
            lo: x.to_vec(),
            hi: x.to_vec(),
        }
    }

    /// `x ± eps` codes, cut to the int8 range.
    pub fn around(x: &[i8], eps: u8) -> Self {
        let shift = |v: i8, d: i32| (i32::from(v) + d).clamp(-128, 127) as i8;
        let e = i32::from(eps);
        Self {
            lo: x.iter().map(|&v| shift(v, -e)).collect(),
            hi: x.iter().map(|&v| shift(v, e)).collect(),
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.lo.len()
    }

    /// Whether it bounds a tensor of no elements.
    pub fn is_empty(&self) -> bool {
        self.lo.is_empty()
    }

    /// Whether `x` lies inside.
    pub fn contains(&self, x: &[i8]) -> bool {
        x.len() == self.len()
            && x.iter()
                .zip(&self.lo)
                .zip(&self.hi)
                .all(|((v, l), h)| l <= v && v <= h)
    }

    /// `x` moved into the interval element by element.
    pub fn project(&self, x: &mut [i8]) {
        for ((v, &l), &h) in x.iter_mut().zip(&self.lo).zip(&self.hi) {
            *v = (*v).clamp(l, h);
        }
    }

    /// The middle of each element's range, rounded down.
    pub fn center(&self) -> Vec<i8> {
        self.lo
            .iter()
            .zip(&self.hi)
            .map(|(&l, &h)| ((i32::from(l) + i32::from(h)).div_euclid(2)) as i8)
            .collect()
    }

    /// The two halves of element `i`'s range (`[lo, mid]`, `[mid + 1,
    /// hi]`), or `None` when it holds one code.
    pub fn bisect(&self, i: usize) -> Option<(Self, Self)> {
        let (l, h) = (*self.lo.get(i)?, *self.hi.get(i)?);
        if l == h {
            return None;
        }
        let mid = ((i32::from(l) + i32::from(h)).div_euclid(2)) as i8;
        let (mut low, mut high) = (self.clone(), self.clone());
        low.hi[i] = mid;
        high.lo[i] = mid + 1;
        Some((low, high))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn around_cuts_to_int8_and_bisect_covers_the_range_once() {
        let b = Interval::around(&[-127, 0, 126], 3);
        assert_eq!(b.lo, vec![-128, -3, 123]);
        assert_eq!(b.hi, vec![-124, 3, 127]);
        let (low, high) = b.bisect(1).unwrap();
        assert_eq!(
            (low.lo[1], low.hi[1], high.lo[1], high.hi[1]),
            (-3, 0, 1, 3)
        );
        assert!(Interval::point(&[5]).bisect(0).is_none());
        assert!(Interval::new(vec![2], vec![1]).is_err());
    }
}
