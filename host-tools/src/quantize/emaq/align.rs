//! CDF-based domain projection: one monotone int8 code table per input
//! domain, mapping that domain's input distribution onto the reference
//! domain's (histogram matching with the mid-rank rule).
//!
//! The rule itself lives in the runtime ([`sturdy_runtime::drift::project`]):
//! the device's drift monitor re-fits its table with it.
//!
//! For a domain with code counts `n_d` (cumulative `C_d`, total `N_d`),
//! code `c` sits at the mid-rank `u = (C_d(c − 1) + C_d(c)) / 2N_d` of its
//! domain; it becomes the smallest reference code `r` with
//! `C_r(r) / N_r ≥ u`, with `C_r / N_r` as stored (rounded to 1/65535). Everything is integer, so the tables are exact and
//! reproducible. A sensor whose gain, offset or contrast curve changed maps
//! back onto what the model was trained on, as long as the change is
//! monotone and the shifted range still spans the codes.

use anyhow::{Context, Result};

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

/// The table projecting a domain with histogram `domain` onto `reference`
/// (entry `c + 128` is the new code of `c`): the device's own integer rule
/// ([`sturdy_runtime::drift::project`]) against the reference CDF as the
/// artifact stores it, so a table re-fitted on the device from the same
/// histogram is this one, bit for bit.
pub fn projection(domain: &CodeHistogram, reference: &CodeHistogram) -> Result<[i8; 256]> {
    sturdy_runtime::drift::project(domain, &stored_cdf(reference))
        .context("a domain's calibration histogram is empty or holds more than 2^32 codes")
}

/// The identity table (the reference domain's own).
pub use sturdy_runtime::drift::identity;

/// The reference CDF as stored: entry `c + 128` is round(65535 · C(c) / N).
pub fn stored_cdf(reference: &CodeHistogram) -> [u16; 256] {
    let n = reference.iter().sum::<u64>().max(1) as u128;
    let mut acc = 0u128;
    core::array::from_fn(|i| {
        acc += reference[i] as u128;
        ((acc * 65535 + n / 2) / n) as u16
    })
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
    fn mass_at_one_code_lands_in_the_middle_of_the_reference_mass() {
        // Domain: 75 % background at -128, 25 % at 100. Reference: 70 % at
        // -100, 30 % at 90. Background mid-rank 0.375 → -100; 100's
        // mid-rank 0.875 → 90.
        let domain = hist(&[(-128, 75), (100, 25)]);
        let reference = hist(&[(-100, 70), (90, 30)]);
        let t = projection(&domain, &reference).unwrap();
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
