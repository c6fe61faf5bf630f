//! Section 6: what protection costs — flash per code (parity, tags) and
//! how fast the host recovers the artifact (the runtime's own loader).

use super::report::{CodeCost, Cost};
use crate::protect::{self, Options};
use anyhow::Result;
use std::time::Instant;
use sturdy_runtime::ldpc::{Code, Length, Rate};
use sturdy_runtime::protect::Key;

/// The codes compared: every 802.11n rate at n = 1944, and the shortest
/// length at rate 1/2.
pub const CODES: [(Length, Rate, &str); 5] = [
    (Length::N1944, Rate::R1_2, "1944 × 1/2"),
    (Length::N1944, Rate::R2_3, "1944 × 2/3"),
    (Length::N1944, Rate::R3_4, "1944 × 3/4"),
    (Length::N1944, Rate::R5_6, "1944 × 5/6"),
    (Length::N648, Rate::R1_2, "648 × 1/2"),
];

/// Protects `plain` with each code (`key`, `nonce`: sizes do not depend on
/// them) and measures the host loader's throughput over at least 0.2 s.
pub fn run(plain: &[u8], key: &Key, nonce: [u8; 16]) -> Result<Cost> {
    let codes = CODES
        .iter()
        .map(|&(length, rate, name)| -> Result<CodeCost> {
            let options = Options {
                code: Some(Code::new(length, rate)),
                ..Options::default()
            };
            let bytes = protect::protect(plain, key, nonce, options)?;
            let report = protect::report(&bytes)?;
            let number = |field: &str| report[field].as_f64().unwrap_or(0.0);
            let start = Instant::now();
            let mut loads = 0u32;
            while loads < 3 || start.elapsed().as_secs_f64() < 0.2 {
                let _ = protect::recover(&bytes, key);
                loads += 1;
            }
            let per_load = start.elapsed().as_secs_f64() / f64::from(loads);
            Ok(CodeCost {
                code: name.into(),
                flash_bytes: bytes.len() as u64,
                parity_bytes: number("parity_bytes").round() as u64,
                tag_bytes: number("tag_bytes") as u64,
                overhead: bytes.len() as f64 / plain.len().max(1) as f64,
                host_load_mb_per_s: plain.len() as f64 / per_load / 1e6,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Cost {
        plain_bytes: plain.len() as u64,
        codes,
        board: None,
    })
}
