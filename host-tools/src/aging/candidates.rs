//! The plan's candidates for one artifact: every 802.11n code (3 lengths ×
//! 4 rates), sized by the real encoder and with its frame-error curve
//! measured by the runtime's own decoder ([`sturdy_runtime::ldpc::fer`]).
//!
//! FER is simulated on a binary symmetric channel at raw BERs from 0.5 %
//! up, stopping once more than half the frames are lost; the points with
//! losses below that (the waterfall's tail) are kept, since the plan
//! extrapolates their slope to the far lower BERs of a real memory (see
//! [`super::plan::FerCurve`]).

use super::plan::{Candidate, FerCurve, FerPoint};
use crate::fsutil::AlignedBytes;
use crate::protect::{self, Options};
use anyhow::{anyhow, Result};
use indicatif::{ProgressBar, ProgressStyle};
use sturdy_runtime::ldpc::{fer, Code, DecoderScratch, Rate, DEFAULT_MAX_ITERATIONS};
use sturdy_runtime::protect::ProtectedArtifact;

/// Raw BERs (parts per million) the FER is measured at, low to high: from
/// 0.5 % in steps of ×1.2 up to about 25 % (22 points), dense enough that
/// even the steepest waterfall of the 802.11n codes has two points in it.
pub fn measured_bers_ppm() -> impl Iterator<Item = u32> {
    (0..22).map(|i| (5_000.0 * 1.2f64.powi(i)).round() as u32)
}

/// FER points above this are the saturated head of the curve, not its tail.
const MAX_KEPT_FER: f64 = 0.5;

/// "n=1944 r=5/6".
pub fn code_label(code: &Code) -> String {
    let rate = match code.rate() {
        Rate::R1_2 => "1/2",
        Rate::R2_3 => "2/3",
        Rate::R3_4 => "3/4",
        Rate::R5_6 => "5/6",
    };
    format!("n={} r={rate}", code.n())
}

/// Measures `code`'s FER with `frames` frames per BER (seeded, so the same
/// `seed` gives the same points), from low BERs up to the first one where
/// more than half the frames are lost (the saturated points above cost a
/// full decode per frame and say nothing about the tail).
pub fn measure_fer(code: &Code, frames: u32, seed: u64) -> Result<Vec<FerPoint>> {
    let mut scratch = Box::<DecoderScratch>::default();
    let mut points = Vec::new();
    for (i, ppm) in measured_bers_ppm().enumerate() {
        let report = fer::simulate(
            code,
            ppm,
            frames,
            seed.wrapping_add(i as u64),
            DEFAULT_MAX_ITERATIONS,
            &mut scratch,
        )
        .map_err(|e| anyhow!("{}: FER simulation failed: {e:?}", code_label(code)))?;
        let point = FerPoint {
            ber: f64::from(ppm) / 1e6,
            frames: u64::from(frames),
            frame_errors: u64::from(report.frame_errors()),
        };
        if point.frame_errors as f64 > MAX_KEPT_FER * f64::from(frames) {
            // A waterfall too steep for the grid: its first saturated point
            // keeps the fit possible and flattens the slope (a higher,
            // conservative FER below).
            if points.len() < 2 {
                points.push(point);
            }
            break;
        }
        if point.frame_errors > 0 {
            points.push(point);
        }
    }
    Ok(points)
}

/// Every code as a candidate for protecting `plain` (a plain artifact):
/// its codewords and stored bytes from actually protecting it (tags on, as
/// `sturdy protect` does by default), its FER curve measured.
pub fn candidates(plain: &[u8], frames: u32, seed: u64) -> Result<Vec<Candidate>> {
    let bar = ProgressBar::new(Code::ALL.len() as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>16} [{bar:32}] {pos}/{len} codes ({eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("measuring FER");
    let mut out = Vec::with_capacity(Code::ALL.len());
    for code in Code::ALL {
        let label = code_label(&code);
        let options = Options {
            reparam: false,
            code: Some(code),
            ..Options::default()
        };
        // Sizes do not depend on the key or nonce.
        let protected = protect::protect(plain, &[0; 32], [0; 16], options)?;
        let aligned = AlignedBytes::new(&protected);
        let codewords = ProtectedArtifact::parse(aligned.as_bytes())
            .map_err(|e| anyhow!("{label}: {e}"))?
            .header()
            .codewords as usize;
        let points = measure_fer(&code, frames, seed)?;
        out.push(Candidate {
            codeword_bits: code.n(),
            message_bits: code.k(),
            codewords,
            stored_bytes: protected.len(),
            fer: FerCurve::fit(&label, &points)?,
            label,
        });
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(out)
}
