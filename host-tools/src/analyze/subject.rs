//! What every campaign works on: the plain artifact, its layers, the
//! protected variants when a key was given, the quantized samples and the
//! fault-free predictions faulty runs are compared with.

use super::batch::Batch;
use super::layers::{weight_layers, WeightLayer};
use crate::meta::Meta;
use anyhow::{anyhow, Result};
use sturdy_runtime::protect::Key;

/// The protected forms of the plain artifact.
#[derive(Debug, Clone)]
pub struct Protected {
    /// The protected artifact (coded, tagged, reparameterized).
    pub bytes: Vec<u8>,
    /// Its key.
    pub key: Key,
    /// The plain artifact reparameterized with the same key and nonce, not
    /// coded: what reparameterization alone buys.
    pub reparam_only: Vec<u8>,
}

impl Protected {
    /// The runtime's recovery of `bytes` (a possibly damaged copy of the
    /// protected artifact): the inner plain artifact, or `None` when the
    /// loader refuses it.
    pub fn recover(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        crate::protect::recover(bytes, &self.key).0.ok()
    }
}

/// Everything a campaign needs, built once per run.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The plain artifact.
    pub plain: Vec<u8>,
    /// Its metadata.
    pub meta: Meta,
    /// Its Conv/FC layers.
    pub layers: Vec<WeightLayer>,
    /// The protected variants (with `--key`).
    pub protected: Option<Protected>,
    /// All analysed samples, quantized.
    pub batch: Batch,
    /// Classes of the model output (1 for a non-classifier).
    pub classes: usize,
}

impl Subject {
    /// Builds the subject; `protected` is checked to recover.
    pub fn new(
        plain: Vec<u8>,
        meta: Meta,
        protected: Option<Protected>,
        batch: Batch,
    ) -> Result<Self> {
        let layers = weight_layers(&plain, &meta)?;
        if let Some(p) = &protected {
            p.recover(&p.bytes)
                .ok_or_else(|| anyhow!("the protected artifact does not load with this key"))?;
        }
        let classes = meta.output.onnx_shape.iter().product::<usize>().max(1);
        Ok(Subject {
            plain,
            meta,
            layers,
            protected,
            batch,
            classes,
        })
    }

    /// Whether accuracy and attacks make sense: labels are there.
    pub fn labelled(&self) -> bool {
        self.batch.labels.is_some()
    }
}
