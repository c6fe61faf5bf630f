//! LDPC frame-error rate on a binary symmetric channel (each stored bit
//! flips independently, the model of retention and radiation faults), for
//! sturdy's QC-LDPC codes (IEEE 802.11n, n = 1944, the four rates; integer
//! layered normalized min-sum, `sturdy_runtime::ldpc::fer::simulate`) next
//! to the `labrador-ldpc` crate (no_std CCSDS codes, its min-sum decoder)
//! at comparable rates. Both decoders get hard decisions only (a memory
//! gives no soft information) and at most 20 iterations.
//!
//! Each point runs up to `MAX_FRAMES` frames and stops early after
//! `STOP_ERRORS` frame errors; "0" means none in all frames (below
//! 3/frames at 95 % confidence). Run with `cargo xtask bench`.

use labrador_ldpc::LDPCCode;
use sturdy_runtime::ldpc::fer::simulate;
use sturdy_runtime::ldpc::{Code, DecoderScratch, Length, Rate};

const BERS: [f64; 6] = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2];
const MAX_FRAMES: u32 = 3000;
const STOP_ERRORS: u32 = 100;
const ITERATIONS: u32 = 20;
const SEED: u64 = 2024;

/// Frame errors and frames of one point.
#[derive(Clone, Copy, Default)]
struct Point {
    errors: u32,
    frames: u32,
}

impl Point {
    fn cell(self) -> String {
        if self.errors == 0 {
            format!("0 (/{})", self.frames)
        } else {
            format!("{:.1e}", f64::from(self.errors) / f64::from(self.frames))
        }
    }
}

/// sturdy's decoder, in batches so a point stops once it has enough errors.
fn sturdy_point(code: &Code, ber: f64, seed: u64) -> Point {
    let mut scratch: Box<DecoderScratch> = Box::default();
    let mut point = Point::default();
    let mut batch = 0u64;
    while point.frames < MAX_FRAMES && point.errors < STOP_ERRORS {
        let report = simulate(
            code,
            (ber * 1e6).round() as u32,
            100,
            seed ^ (batch << 32),
            ITERATIONS,
            &mut scratch,
        )
        .expect("the default scratch fits every code");
        point.frames += report.frames;
        point.errors += report.frame_errors();
        batch += 1;
    }
    point
}

/// SplitMix64, for the labrador runs' data and flips.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// labrador-ldpc's min-sum decoder on hard decisions of the transmitted bits.
fn labrador_point(code: LDPCCode, ber: f64, seed: u64) -> Point {
    let mut rng = Rng(seed);
    let threshold = (ber * 2f64.powi(64)) as u64;
    let k = code.k() / 8;
    let mut data = vec![0u8; k];
    let mut tx = vec![0u8; code.n() / 8];
    let mut llrs = vec![0i8; code.n()];
    let mut output = vec![0u8; code.output_len()];
    let mut working = vec![0i8; code.decode_ms_working_len()];
    let mut working_u8 = vec![0u8; code.decode_ms_working_u8_len()];
    let mut point = Point::default();
    while point.frames < MAX_FRAMES && point.errors < STOP_ERRORS {
        for b in &mut data {
            *b = rng.next() as u8;
        }
        code.copy_encode(&data, &mut tx);
        let mut rx = tx.clone();
        for i in 0..code.n() {
            if rng.next() < threshold {
                rx[i / 8] ^= 0x80 >> (i % 8);
            }
        }
        code.hard_to_llrs(&rx, &mut llrs);
        let (ok, _) = code.decode_ms(
            &llrs,
            &mut output,
            &mut working,
            &mut working_u8,
            ITERATIONS as usize,
        );
        point.frames += 1;
        if !ok || output[..k] != data[..] {
            point.errors += 1;
        }
    }
    point
}

fn main() {
    let started = std::time::Instant::now();
    let sturdy: Vec<(String, Code)> = [
        (Rate::R1_2, "1/2"),
        (Rate::R2_3, "2/3"),
        (Rate::R3_4, "3/4"),
        (Rate::R5_6, "5/6"),
    ]
    .into_iter()
    .map(|(rate, name)| {
        (
            format!("sturdy 802.11n n=1944 R {name}"),
            Code::new(Length::N1944, rate),
        )
    })
    .collect();
    let labrador = [
        (
            "labrador CCSDS TM2048 (n=2048, k=1024) R 1/2",
            LDPCCode::TM2048,
        ),
        (
            "labrador CCSDS TM1536 (n=1536, k=1024) R 2/3",
            LDPCCode::TM1536,
        ),
        (
            "labrador CCSDS TM1280 (n=1280, k=1024) R 4/5",
            LDPCCode::TM1280,
        ),
    ];
    // One thread per code: the points are independent and deterministic.
    let rows: Vec<(String, Vec<Point>)> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (name, code) in &sturdy {
            handles.push(s.spawn(move || {
                let points = BERS
                    .iter()
                    .enumerate()
                    .map(|(i, &ber)| sturdy_point(code, ber, SEED + i as u64))
                    .collect();
                (name.clone(), points)
            }));
        }
        for (name, code) in labrador {
            handles.push(s.spawn(move || {
                let points = BERS
                    .iter()
                    .enumerate()
                    .map(|(i, &ber)| labrador_point(code, ber, SEED + i as u64))
                    .collect();
                (name.to_string(), points)
            }));
        }
        handles
            .into_iter()
            .map(|h| h.join().expect("no panics"))
            .collect()
    });
    println!(
        "LDPC frame-error rate, binary symmetric channel, hard decisions, ≤ {ITERATIONS} min-sum iterations; \
         up to {MAX_FRAMES} frames per point (stops at {STOP_ERRORS} errors); seed {SEED}"
    );
    let header: Vec<String> = BERS.iter().map(|b| format!("BER {b:.0e}")).collect();
    println!("| code | {} |", header.join(" | "));
    println!("|---|{}", "---:|".repeat(BERS.len()));
    for (name, points) in rows {
        let cells: Vec<String> = points.iter().map(|p| p.cell()).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    println!("({:.1} s)", started.elapsed().as_secs_f64());
}
