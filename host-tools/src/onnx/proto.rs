//! Reading the raw ONNX protobuf: the model file, node attributes, tensor
//! payloads and declared value shapes.
//!
//! The importer walks the protobuf itself (not tract's optimized model) so it
//! keeps exact control over every node; this module is the only place that
//! touches the `prost` structures, so the rest of the importer sees plain
//! Rust values.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use tract_onnx::pb::{
    self, attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension,
    type_proto, AttributeProto, NodeProto, TensorProto, ValueInfoProto,
};
use tract_onnx::prelude::{DatumType, Framework};

use super::fold::{Const, Dt};

/// Decodes the ONNX protobuf at `path` (no graph translation). A file that
/// does not decode is described by its first bytes: it may be an artifact
/// given where an ONNX model belongs, or neither.
pub fn load_model(path: &Path) -> Result<pb::ModelProto> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if bytes.starts_with(&sturdy_runtime::format::MAGIC) {
        bail!(
            "{}: this is a sturdy artifact, not an ONNX model; this step needs the ONNX model it was quantized from",
            path.display()
        );
    }
    tract_onnx::onnx()
        .proto_model_for_read(&mut bytes.as_slice())
        .map_err(|e| {
            anyhow!(
                "{}: neither a sturdy artifact nor an ONNX model (no artifact magic, and protobuf decoding failed: {e}); {}",
                path.display(),
                crate::file_kind::describe_head(&bytes)
            )
        })
}

/// The opset version of the default (`ai.onnx`) domain, which decides how
/// several ops take their parameters (attributes vs inputs).
pub fn default_opset(model: &pb::ModelProto) -> i64 {
    model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(1)
}

/// A node's printable identity: its name, or `op_type#index` when the export
/// left the name empty (error messages and IR node names need one).
pub fn node_name(node: &NodeProto, index: usize) -> String {
    if node.name.is_empty() {
        format!("{}#{index}", node.op_type)
    } else {
        node.name.clone()
    }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_type(a: &AttributeProto) -> Option<AttributeType> {
    AttributeType::try_from(a.r#type).ok()
}

/// Integer attribute `name`, if present.
pub fn attr_int(node: &NodeProto, name: &str) -> Result<Option<i64>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if attr_type(a) == Some(AttributeType::Int) || a.r#type == 0 => Ok(Some(a.i)),
        Some(_) => bail!("attribute '{name}' is not an integer"),
    }
}

/// Float attribute `name`, if present.
pub fn attr_float(node: &NodeProto, name: &str) -> Result<Option<f32>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if attr_type(a) == Some(AttributeType::Float) || a.r#type == 0 => Ok(Some(a.f)),
        Some(_) => bail!("attribute '{name}' is not a float"),
    }
}

/// Integer-list attribute `name`, if present.
pub fn attr_ints(node: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if attr_type(a) == Some(AttributeType::Ints) || a.r#type == 0 => {
            Ok(Some(a.ints.clone()))
        }
        Some(_) => bail!("attribute '{name}' is not a list of integers"),
    }
}

/// Float-list attribute `name`, if present.
pub fn attr_floats(node: &NodeProto, name: &str) -> Result<Option<Vec<f32>>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if attr_type(a) == Some(AttributeType::Floats) || a.r#type == 0 => {
            Ok(Some(a.floats.clone()))
        }
        Some(_) => bail!("attribute '{name}' is not a list of floats"),
    }
}

/// String attribute `name`, if present.
pub fn attr_string(node: &NodeProto, name: &str) -> Result<Option<String>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if attr_type(a) == Some(AttributeType::String) || a.r#type == 0 => {
            Ok(Some(String::from_utf8_lossy(&a.s).into_owned()))
        }
        Some(_) => bail!("attribute '{name}' is not a string"),
    }
}

/// Tensor attribute `name` (e.g. `Constant.value`), if present.
pub fn attr_tensor<'a>(node: &'a NodeProto, name: &str) -> Result<Option<&'a TensorProto>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) => match &a.t {
            Some(t) => Ok(Some(t)),
            None => bail!("attribute '{name}' is not a tensor"),
        },
    }
}

/// Whether the node carries attribute `name` at all.
pub fn has_attr(node: &NodeProto, name: &str) -> bool {
    attr(node, name).is_some()
}

/// The numeric class of an ONNX element type, or an error for types sturdy
/// cannot fold (strings, complex, 8-bit floats…).
pub fn dt_of(data_type: i32) -> Result<Dt> {
    let dt = DataType::try_from(data_type)
        .map_err(|_| anyhow!("unknown ONNX element type {data_type}"))?;
    Ok(match dt {
        DataType::Float | DataType::Double | DataType::Float16 => Dt::Float,
        DataType::Int8 => Dt::I8,
        DataType::Uint8 => Dt::U8,
        DataType::Uint16
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Uint32
        | DataType::Uint64
        | DataType::Bool => Dt::Int,
        other => bail!("unsupported ONNX element type {other:?}"),
    })
}

/// Converts an initializer or `Constant` payload to a [`Const`], reusing
/// tract's decoder (raw_data, typed fields, external data next to `dir`).
pub fn load_tensor(t: &TensorProto, dir: Option<&str>) -> Result<Const> {
    let dt = dt_of(t.data_type).with_context(|| format!("tensor '{}'", t.name))?;
    let resolver = tract_onnx::data_resolver::default();
    let tensor = tract_onnx::tensor::load_tensor(&*resolver, t, dir)
        .with_context(|| format!("decoding tensor '{}'", t.name))?;
    let dims = tensor.shape().to_vec();
    let data: Vec<f64> = if tensor.datum_type() == DatumType::Bool {
        let t = tensor.cast_to::<u8>()?;
        t.to_plain_array_view::<u8>()?
            .iter()
            .map(|&v| v as f64)
            .collect()
    } else {
        let t = tensor.cast_to::<f64>()?;
        t.to_plain_array_view::<f64>()?.iter().copied().collect()
    };
    let n: usize = dims.iter().product();
    if data.len() != n {
        bail!(
            "tensor '{}': {} values for shape {dims:?}",
            t.name,
            data.len()
        );
    }
    Ok(Const::new(dt, dims, data))
}

/// A declared dimension: known size, or symbolic (`N`, `batch`, unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Known(usize),
    /// A named or unknown size.
    Symbolic,
}

/// The element type and declared dims of a graph input/output, if declared.
pub fn value_type(v: &ValueInfoProto) -> Result<(i32, Option<Vec<Dim>>)> {
    let ty = v
        .r#type
        .as_ref()
        .and_then(|t| t.value.as_ref())
        .ok_or_else(|| anyhow!("value '{}' has no type", v.name))?;
    let type_proto::Value::TensorType(tt) = ty;
    let dims = tt.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match &d.value {
                Some(dimension::Value::DimValue(v)) if *v >= 0 => Dim::Known(*v as usize),
                _ => Dim::Symbolic,
            })
            .collect()
    });
    Ok((tt.elem_type, dims))
}
