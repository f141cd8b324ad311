//! The network as an ONNX model (`export --format onnx`): the forward of the design
//! notes in ONNX's row-per-image layout,
//!
//! ```text
//! image (batch, 784) ─ Gemm(W1, b1, transB=1) ─ Relu ─ Gemm(W2, b2, transB=1) ─ logits (batch, 10)
//!                                                                              └ Softmax(axis=1) ─ probabilities (batch, 10)
//! ```
//!
//! `Gemm` with `transB = 1` computes `image · W1ᵀ + b1`, which is `(W1·X + b1)ᵀ` for
//! `X = imageᵀ`: the parameters keep the design notes' shapes (`W1` is hidden × 784).
//! The batch dimension is symbolic (`batch`). Opset 13, IR version 7, which
//! `onnxruntime` and PyTorch's `onnx` tools read.
//!
//! Burn 0.22 imports ONNX (`burn-import`) but does not export it, so the few messages
//! are declared here by hand with their field numbers from `onnx.proto` and encoded by
//! `prost`.

use prost::Message;

use crate::model::HostParams;
use crate::{IMAGE_PIXELS, NUM_CLASSES};

/// ONNX's opset this graph uses.
pub const OPSET: i64 = 13;

/// `params` as the bytes of an ONNX `ModelProto`.
pub fn model_bytes(params: &HostParams) -> Vec<u8> {
    let h = params.hidden as i64;
    let initializer = vec![
        tensor("W1", &[h, IMAGE_PIXELS as i64], &params.w1),
        tensor("b1", &[h], &params.b1),
        tensor("W2", &[NUM_CLASSES as i64, h], &params.w2),
        tensor("b2", &[NUM_CLASSES as i64], &params.b2),
    ];
    let node = vec![
        gemm("gemm1", ["image", "W1", "b1"], "Z1"),
        node("relu", "Relu", &["Z1"], "A1", vec![]),
        gemm("gemm2", ["A1", "W2", "b2"], "logits"),
        node(
            "softmax",
            "Softmax",
            &["logits"],
            "probabilities",
            vec![int_attribute("axis", 1)],
        ),
    ];
    let model = ModelProto {
        ir_version: 7,
        producer_name: "mnist-nn".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node,
            name: "two_layer_net".into(),
            initializer,
            input: vec![value_info("image", IMAGE_PIXELS as i64)],
            output: vec![
                value_info("logits", NUM_CLASSES as i64),
                value_info("probabilities", NUM_CLASSES as i64),
            ],
            doc_string: "A2 = softmax(W2·ReLU(W1·X + b1) + b2), one row per image, \
                         pixels / 255 in [0, 1]"
                .into(),
        }),
        opset_import: vec![OperatorSetId {
            domain: String::new(),
            version: OPSET,
        }],
    };
    model.encode_to_vec()
}

fn gemm(name: &str, inputs: [&str; 3], output: &str) -> NodeProto {
    node(
        name,
        "Gemm",
        &inputs,
        output,
        vec![int_attribute("transB", 1)],
    )
}

fn node(
    name: &str,
    op: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        attribute,
    }
}

fn int_attribute(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: value,
        r#type: 2, // INT
    }
}

fn tensor(name: &str, dims: &[i64], values: &[f32]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: 1, // FLOAT
        name: name.into(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
    }
}

/// A float tensor `(batch, width)` with a symbolic batch.
fn value_info(name: &str, width: i64) -> ValueInfoProto {
    let dim = |d: Dimension| TensorShapeDimension { value: Some(d) };
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeTensor {
                elem_type: 1, // FLOAT
                shape: Some(TensorShapeProto {
                    dim: vec![
                        dim(Dimension::DimParam("batch".into())),
                        dim(Dimension::DimValue(width)),
                    ],
                }),
            }),
        }),
    }
}

/// `onnx.ModelProto` (the fields used).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetId>,
}

/// `onnx.OperatorSetIdProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetId {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `onnx.GraphProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `onnx.NodeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `onnx.AttributeProto` (integer attributes only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// `AttributeType`: 2 = INT.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// `onnx.TensorProto` (float data as raw little-endian bytes).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// `DataType`: 1 = FLOAT.
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// `onnx.ValueInfoProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
}

/// `onnx.TypeProto` (tensors only).
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TypeTensor>,
}

/// `onnx.TypeProto.Tensor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeTensor {
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `onnx.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<TensorShapeDimension>,
}

/// `onnx.TensorShapeProto.Dimension`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeDimension {
    #[prost(oneof = "Dimension", tags = "1, 2")]
    pub value: Option<Dimension>,
}

/// A fixed or a named (symbolic) size.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Dimension {
    #[prost(int64, tag = "1")]
    DimValue(i64),
    #[prost(string, tag = "2")]
    DimParam(String),
}
