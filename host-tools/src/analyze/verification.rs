//! The verification section: how much of the neighbourhood of each sample
//! is *proved* to keep its label, for the exact integer model
//! ([`crate::verify`]).

use super::report::Verification;
use super::subject::Subject;
use crate::verify::bounds::Bounder;
use crate::verify::campaign::label_campaign;
use crate::verify::search::Budget;
use anyhow::Result;

/// Radii (codes) of the local-robustness rows.
pub const RADII: [u8; 3] = [1, 2, 4];
/// Blur widths (pixels) of the blur rows, for image inputs.
pub const SIGMAS: [f64; 2] = [0.5, 1.0];

/// Verifies the first `samples` inputs of the subject's batch: local
/// robustness at [`RADII`] and, for images, blur tolerance at [`SIGMAS`].
/// A model the bounds cannot pass (an unsupported op) or that is not a
/// classifier is reported as skipped, with the reason.
pub fn run(s: &Subject, samples: usize, seed: u64) -> Result<Verification> {
    let aligned = crate::fsutil::AlignedBytes::new(&s.plain);
    let model =
        sturdy_runtime::Model::parse(aligned.as_bytes()).map_err(|e| anyhow::anyhow!("{e}"))?;
    let budget = Budget::default();
    let mut out = Verification {
        samples: samples.min(s.batch.inputs.len()),
        regions: budget.regions,
        ..Verification::default()
    };
    if model.output_len() == model.input_len() {
        out.skipped =
            Some("a reconstruction model (output the size of its input): no label to keep".into());
        return Ok(out);
    }
    let bounder = match Bounder::new(model) {
        Ok(b) => b,
        Err(e) => {
            out.skipped = Some(format!("{e:#}"));
            return Ok(out);
        }
    };
    let inputs = &s.batch.inputs[..out.samples];
    let labels = s
        .batch
        .labels
        .as_deref()
        .map(|l| &l[..out.samples.min(l.len())]);
    let sigmas: &[f64] = if bounder.input_dims().len() == 4 {
        &SIGMAS
    } else {
        &[]
    };
    out.rows = label_campaign(&bounder, inputs, labels, &RADII, sigmas, budget, seed)?;
    Ok(out)
}
