//! The campaign settings one run shares (what `--seeds`, `--samples`, …
//! set), recorded in the report so the run can be repeated.

/// Campaign settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Knobs {
    /// Repetitions per random point.
    pub seeds: u32,
    /// Base seed every task seed derives from.
    pub base_seed: u64,
    /// Samples each fault or noise campaign runs (the first ones).
    pub samples: usize,
    /// Samples per cell of the layer × bit heatmap.
    pub heat_samples: usize,
    /// Codes per cell of the heatmap whose bit is flipped.
    pub heat_flips: usize,
    /// Samples the bit-flip attacker computes gradients on.
    pub attack_samples: usize,
    /// Flip budget of the bit-flip attack.
    pub max_flips: usize,
    /// Samples the Fisher and verification sections measure.
    pub verify_samples: usize,
}

impl Default for Knobs {
    /// The defaults `sturdy analyze` documents: a few minutes on 2 cores
    /// for the bundled MNIST CNN.
    fn default() -> Self {
        Knobs {
            seeds: 3,
            base_seed: 1,
            samples: 500,
            heat_samples: 200,
            heat_flips: 10,
            attack_samples: 256,
            max_flips: 100,
            verify_samples: 50,
        }
    }
}
