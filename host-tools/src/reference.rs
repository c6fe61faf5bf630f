//! An independent float reference: the ONNX model run by tract.
//!
//! The importer walks the protobuf itself; this runs the same file through
//! tract's own ONNX translation and optimizer, so comparing the two checks
//! the import (layouts, folding, fusion) against code we did not write.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, ensure, Context, Result};
use tract_onnx::prelude::*;

use crate::onnx::proto::{self, Dim};

/// A loaded, optimized tract plan for one ONNX model, batch 1.
pub struct TractReference {
    plan: Arc<TypedRunnableModel>,
    input_shape: Vec<usize>,
}

impl TractReference {
    /// Loads `path` with tract, fixes the input to batch 1 (a symbolic batch
    /// becomes 1) and optimizes it.
    pub fn load(path: &Path) -> Result<Self> {
        let file = path.display();
        let model = proto::load_model(path)?;
        let graph = model
            .graph
            .as_ref()
            .ok_or_else(|| anyhow!("{file}: no graph"))?;
        let inits: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
        let inputs: Vec<_> = graph
            .input
            .iter()
            .filter(|v| !inits.contains(&v.name.as_str()))
            .collect();
        ensure!(
            inputs.len() == 1,
            "{file}: expected exactly one input, found {}",
            inputs.len()
        );
        let (_, dims) = proto::value_type(inputs[0])?;
        let dims = dims.ok_or_else(|| anyhow!("{file}: the input has no declared shape"))?;
        let input_shape: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| match d {
                Dim::Known(n) => Ok(*n),
                Dim::Symbolic if i == 0 => Ok(1),
                Dim::Symbolic => Err(anyhow!("{file}: input dimension {i} is symbolic")),
            })
            .collect::<Result<_>>()?;
        // Intermediate shape annotations (`value_info`, written by shape
        // inference such as onnxruntime's quant_pre_process) may carry the
        // symbolic batch, which tract then refuses to unify with batch 1:
        // drop them, tract infers every shape itself.
        let mut stripped = model.clone();
        if let Some(g) = stripped.graph.as_mut() {
            g.value_info.clear();
        }
        let dir = path.parent().and_then(|p| p.to_str());
        let load = || -> Result<_> {
            let parsed = tract_onnx::onnx()
                .parse(&stripped, dir)
                .with_context(|| format!("{file}: tract could not load the model"))?;
            ensure!(
                parsed.unresolved_inputs.is_empty(),
                "{file}: tract could not resolve inputs {:?}",
                parsed.unresolved_inputs
            );
            parsed
                .model
                .with_input_fact(0, f32::fact(&input_shape).into())
                .with_context(|| format!("{file}: tract rejected the input shape"))
        };
        // tract's optimizer has bugs on some valid graphs: tf2onnx's
        // separable Conv1D fails to declutter ("Invalid axis"), and on QDQ
        // graphs decluttering a Softmax → QuantizeLinear yields all-ones
        // probabilities. The merely typed model computes what the graph
        // says (on QDQ graphs exactly as onnxruntime does), only slower: it
        // is used for QDQ graphs and whenever optimizing fails.
        let qdq = graph.node.iter().any(|n| n.op_type == "QuantizeLinear");
        let optimized = if qdq {
            Err(anyhow!("QDQ graph: tract's optimizer skipped"))
        } else {
            load()?.into_optimized()
        };
        let plan = match optimized {
            Ok(optimized) => optimized.into_runnable()?,
            Err(optimize_err) => load()?
                .into_typed()
                .map_err(|e| {
                    anyhow!("{file}: tract could not optimize ({optimize_err:#}) nor type the model: {e:#}")
                })?
                .into_runnable()?,
        };
        Ok(TractReference { plan, input_shape })
    }

    /// The input shape tract runs (ONNX layout, batch 1).
    pub fn input_shape(&self) -> &[usize] {
        &self.input_shape
    }

    /// Runs one sample (ONNX layout, flattened) and returns the first
    /// output, flattened.
    pub fn run(&self, sample: &[f32]) -> Result<Vec<f32>> {
        let n: usize = self.input_shape.iter().product();
        ensure!(
            sample.len() == n,
            "sample has {} values, the model expects {n}",
            sample.len()
        );
        let input = Tensor::from_shape(&self.input_shape, sample)?;
        let outputs = self.plan.run(tvec!(input.into()))?;
        let out = outputs
            .first()
            .ok_or_else(|| anyhow!("the model produced no output"))?;
        let out = out.cast_to::<f32>()?;
        Ok(out.to_plain_array_view::<f32>()?.iter().copied().collect())
    }
}
