//! CDF-based domain projection: one monotone int8 code table per input
//! domain, mapping that domain's input distribution onto the reference
//! domain's (histogram matching with the mid-rank rule).
//!
//! For a domain with code counts `n_d` (cumulative `C_d`, total `N_d`),
//! code `c` sits at the mid-rank `u = (C_d(c − 1) + C_d(c)) / 2N_d` of its
//! domain; it becomes the smallest reference code `r` with
//! `C_r(r) / N_r ≥ u`. Everything is integer, so the tables are exact and
//! reproducible. A sensor whose gain, offset or contrast curve changed maps
//! back onto what the model was trained on, as long as the change is
//! monotone and the shifted range still spans the codes.

/// Counts of each int8 code (`counts[c + 128]`).
pub type CodeHistogram = [u64; 256];

/// Counts `codes` into a histogram.
pub fn histogram<'a>(codes: impl IntoIterator<Item = &'a i8>) -> CodeHistogram {
    let mut h = [0u64; 256];
    for &c in codes {
        h[(c as i32 + 128) as usize] += 1;
    }
    h
}

fn cumulative(h: &CodeHistogram) -> [u64; 256] {
    let mut c = [0u64; 256];
    let mut acc = 0;
    for (out, &n) in c.iter_mut().zip(h) {
        acc += n;
        *out = acc;
    }
    c
}

/// The table projecting a domain with histogram `domain` onto `reference`
/// (entry `c + 128` is the new code of `c`). Both must be non-empty.
pub fn projection(domain: &CodeHistogram, reference: &CodeHistogram) -> [i8; 256] {
    let cd = cumulative(domain);
    let cr = cumulative(reference);
    let (nd, nr) = (cd[255] as u128, cr[255] as u128);
    let mut table = [0i8; 256];
    let mut r = 0usize;
    for c in 0..256 {
        let below = if c == 0 { 0 } else { cd[c - 1] };
        // u = (below + cd[c]) / (2·nd); find the smallest r with cr[r]/nr ≥ u.
        let twice_u_num = (below + cd[c]) as u128 * nr;
        while r < 255 && (cr[r] as u128) * 2 * nd < twice_u_num {
            r += 1;
        }
        table[c] = (r as i32 - 128) as i8;
    }
    table
}

/// The identity table (the reference domain's own).
pub fn identity() -> [i8; 256] {
    core::array::from_fn(|c| (c as i32 - 128) as i8)
}

/// The reference CDF as stored: entry `c + 128` is round(65535 · C(c) / N).
pub fn stored_cdf(reference: &CodeHistogram) -> [u16; 256] {
    let c = cumulative(reference);
    let n = c[255].max(1) as u128;
    core::array::from_fn(|i| ((c[i] as u128 * 65535 + n / 2) / n) as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(pairs: &[(i8, u64)]) -> CodeHistogram {
        let mut h = [0; 256];
        for &(c, n) in pairs {
            h[(c as i32 + 128) as usize] = n;
        }
        h
    }

    fn at(t: &[i8; 256], c: i8) -> i8 {
        t[(c as i32 + 128) as usize]
    }

    #[test]
    fn a_shifted_and_squeezed_domain_maps_back() {
        // Reference: codes 0, 10, 20 equally often. Domain: the same three
        // levels after gain 1/2 and offset +50 → codes 50, 55, 60.
        let reference = hist(&[(0, 4), (10, 4), (20, 4)]);
        let domain = hist(&[(50, 2), (55, 2), (60, 2)]);
        let t = projection(&domain, &reference);
        // Mid-ranks 1/6, 1/2, 5/6 → reference quantiles 0, 10, 20.
        assert_eq!((at(&t, 50), at(&t, 55), at(&t, 60)), (0, 10, 20));
        // Unseen codes take the quantile of their cumulative fraction: 52
        // (u = 1/3, the top of the first level) → 0, 57 (u = 2/3) → 10;
        // below every seen code (u = 0) → the lowest code.
        assert_eq!((at(&t, 52), at(&t, 57)), (0, 10));
        assert_eq!(at(&t, -128), -128);
        assert!(t.windows(2).all(|w| w[0] <= w[1]), "monotone");
    }

    #[test]
    fn mass_at_one_code_lands_in_the_middle_of_the_reference_mass() {
        // Domain: 75 % background at -128, 25 % at 100. Reference: 70 % at
        // -100, 30 % at 90. Background mid-rank 0.375 → -100; 100's
        // mid-rank 0.875 → 90.
        let domain = hist(&[(-128, 75), (100, 25)]);
        let reference = hist(&[(-100, 70), (90, 30)]);
        let t = projection(&domain, &reference);
        assert_eq!((at(&t, -128), at(&t, 100)), (-100, 90));
    }

    #[test]
    fn stored_cdf_rounds_to_65535_at_the_end() {
        let cdf = stored_cdf(&hist(&[(0, 1), (1, 2)]));
        assert_eq!(cdf[127], 0);
        assert_eq!(cdf[128], 21845);
        assert_eq!(cdf[255], 65535);
        assert_eq!(at(&identity(), -5), -5);
    }
}
