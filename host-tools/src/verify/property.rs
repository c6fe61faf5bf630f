//! What `sturdy verify` proves: a set of int8 inputs (a region) and a
//! condition every one of them must meet.

use super::bounds::{argmax, Bounder, Scores};
use super::interval::Interval;
use anyhow::Result;

/// A set of int8 model inputs (storage layout).
#[derive(Debug, Clone)]
pub enum Region {
    /// Every input between two bounds.
    Box(Interval),
    /// The codes `round(from + t·(to − from))`, element by element, for
    /// every `t ∈ [t0, t1]` (in f64, cut to int8): the straight path from
    /// a sample to a transformed copy of it (blur). Each element is
    /// monotone in `t` (IEEE products, sums and rounding are monotone), so
    /// the hull of `[t0, t1]` is spanned by its two ends.
    Segment {
        /// Input at `t = 0`.
        from: Vec<i8>,
        /// Input at `t = 1`.
        to: Vec<i8>,
        /// Start of the parameter range.
        t0: f64,
        /// End of the parameter range.
        t1: f64,
    },
}

impl Region {
    /// The smallest box holding the region (what bounds propagate).
    pub fn hull(&self) -> Interval {
        match self {
            Region::Box(b) => b.clone(),
            Region::Segment { from, to, t0, t1 } => {
                let (a, b) = (segment_point(from, to, *t0), segment_point(from, to, *t1));
                let lo = a.iter().zip(&b).map(|(x, y)| *x.min(y)).collect();
                let hi = a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect();
                Interval { lo, hi }
            }
        }
    }

    /// A point of the region, from `u ∈ [0, 1)` per element (a box) or
    /// the first `u` (a segment).
    pub fn point(&self, u: &mut dyn FnMut() -> f64) -> Vec<i8> {
        match self {
            Region::Box(b) => {
                b.lo.iter()
                    .zip(&b.hi)
                    .map(|(&l, &h)| {
                        let span = f64::from(i32::from(h) - i32::from(l) + 1);
                        (i32::from(l) + (u() * span) as i32).min(i32::from(h)) as i8
                    })
                    .collect()
            }
            Region::Segment { from, to, t0, t1 } => segment_point(from, to, t0 + u() * (t1 - t0)),
        }
    }

    /// The middle point.
    pub fn center(&self) -> Vec<i8> {
        match self {
            Region::Box(b) => b.center(),
            Region::Segment { from, to, t0, t1 } => segment_point(from, to, 0.5 * (t0 + t1)),
        }
    }

    /// Two regions covering this one: a segment halves its parameter range;
    /// a box bisects the element with the largest `width × |priority|`
    /// (the gradient at its centre: where a split moves the scores most),
    /// or the widest with no priority. `None` once it is a single input.
    pub fn split(&self, priority: Option<&[f32]>) -> Option<(Region, Region)> {
        match self {
            Region::Box(b) => {
                let score = |i: usize| {
                    let width = f32::from(i16::from(b.hi[i]) - i16::from(b.lo[i]));
                    width
                        * priority
                            .and_then(|p| p.get(i))
                            .map_or(1.0, |g| g.abs() + 1e-6)
                };
                let i = (0..b.len())
                    .filter(|&i| b.lo[i] < b.hi[i])
                    .max_by(|&x, &y| score(x).total_cmp(&score(y)))?;
                let (low, high) = b.bisect(i)?;
                Some((Region::Box(low), Region::Box(high)))
            }
            Region::Segment { from, to, t0, t1 } => {
                let h = self.hull();
                if h.lo == h.hi {
                    return None;
                }
                let mid = 0.5 * (t0 + t1);
                let half = |a: f64, b: f64| Region::Segment {
                    from: from.clone(),
                    to: to.clone(),
                    t0: a,
                    t1: b,
                };
                Some((half(*t0, mid), half(mid, *t1)))
            }
        }
    }
}

/// `round(from + t·(to − from))` element by element.
pub fn segment_point(from: &[i8], to: &[i8], t: f64) -> Vec<i8> {
    from.iter()
        .zip(to)
        .map(|(&a, &b)| {
            let (a, b) = (f64::from(a), f64::from(b));
            (a + t * (b - a)).round().clamp(-128.0, 127.0) as i8
        })
        .collect()
}

/// What every input of a region must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// The runtime's label (first index of the output's largest code) is
    /// this class.
    Label(usize),
    /// The class's score (logit; before a final Softmax) is at least this
    /// code.
    AtLeast {
        /// The class.
        class: usize,
        /// The lowest allowed score code.
        code: i8,
    },
}

impl Condition {
    /// Whether bounds over a region prove it for all of the region.
    pub fn proved_by(&self, s: &Scores) -> bool {
        match *self {
            Condition::Label(c) => s.proves_label(c),
            Condition::AtLeast { class, code } => s.proves_at_least(class, code),
        }
    }

    /// Whether the runtime meets it on one input.
    pub fn holds_at(&self, bounder: &Bounder<'_>, x: &[i8]) -> Result<bool> {
        Ok(match *self {
            Condition::Label(c) => bounder.label(x)? == c,
            Condition::AtLeast { class, code } => bounder
                .point_scores(x)?
                .get(class)
                .is_some_and(|&v| v >= code),
        })
    }

    /// The direction in score space that leads to a violation, as the
    /// loss gradient a search descends: the class's score up, for a label
    /// its strongest rival's down.
    pub fn seed(&self, scores: &[i8]) -> Vec<f32> {
        let mut g = vec![0.0; scores.len()];
        match *self {
            Condition::Label(c) => {
                let rival = argmax(
                    &scores
                        .iter()
                        .enumerate()
                        .map(|(j, &v)| if j == c { i8::MIN } else { v })
                        .collect::<Vec<_>>(),
                );
                if let Some(r) = g.get_mut(rival) {
                    *r = -1.0;
                }
                if let Some(v) = g.get_mut(c) {
                    *v = 1.0;
                }
            }
            Condition::AtLeast { class, .. } => {
                if let Some(v) = g.get_mut(class) {
                    *v = 1.0;
                }
            }
        }
        g
    }

    /// A short description for tables.
    pub fn describe(&self) -> String {
        match self {
            Condition::Label(c) => format!("label = {c}"),
            Condition::AtLeast { class, code } => format!("score[{class}] ≥ {code}"),
        }
    }
}

/// One property: a name, a region and its condition.
#[derive(Debug, Clone)]
pub struct Property {
    /// Shown in tables and errors.
    pub name: String,
    /// The inputs.
    pub region: Region,
    /// What each must give.
    pub condition: Condition,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_hull_spans_its_ends_and_splitting_halves_the_parameter() {
        let r = Region::Segment {
            from: vec![0, 10, -5],
            to: vec![8, 10, -13],
            t0: 0.0,
            t1: 1.0,
        };
        let h = r.hull();
        assert_eq!((h.lo, h.hi), (vec![0, 10, -13], vec![8, 10, -5]));
        let (a, b) = r.split(None).unwrap();
        assert_eq!(a.hull().hi, vec![4, 10, -5]);
        assert_eq!(b.hull().lo, vec![4, 10, -13]);
        assert_eq!(segment_point(&[0], &[8], 0.25), vec![2]);
    }

    #[test]
    fn box_split_follows_the_priority_and_stops_at_a_point() {
        let r = Region::Box(Interval {
            lo: vec![0, 0],
            hi: vec![4, 4],
        });
        let Some((Region::Box(a), _)) = r.split(Some(&[0.1, -2.0])) else {
            panic!("no split")
        };
        assert_eq!((a.lo, a.hi), (vec![0, 0], vec![4, 2]));
        assert!(Region::Box(Interval::point(&[3, 3])).split(None).is_none());
    }
}
