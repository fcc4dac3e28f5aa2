//! A small ONNX graph builder: named initializers, nodes with attributes, graph inputs/outputs
//! with dynamic batch, and a model wrapper with opset and metadata. Weight initializers remember
//! their output-channel axis so quantization can work per channel.

use crate::onnx::{
    attribute_proto::AttributeType, tensor_proto::DataType, tensor_shape_proto::dimension::Value as DimValue, tensor_shape_proto::Dimension, type_proto, AttributeProto,
    GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use std::collections::BTreeMap;

pub const OPSET: i64 = 17;
/// ONNX IR version 8 goes with opset 17 (ONNX 1.12+); accepted by every runtime we test with.
pub const IR_VERSION: i64 = 8;

pub enum Attr {
    Int(i64),
    Ints(Vec<i64>),
    Float(f32),
    Str(&'static str),
}

#[derive(Default)]
pub struct Builder {
    pub nodes: Vec<NodeProto>,
    pub initializers: Vec<TensorProto>,
    /// Initializer name → output-channel axis, for the weights quantization may touch.
    pub weight_axis: BTreeMap<String, i64>,
    counter: usize,
}

pub fn f32_tensor(name: &str, dims: &[usize], data: &[f32]) -> TensorProto {
    assert_eq!(dims.iter().product::<usize>(), data.len(), "initializer {name}: shape {dims:?} vs {} values", data.len());
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Float as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

pub fn i64_tensor(name: &str, dims: &[usize], data: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.into()),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: Some(DataType::Int64 as i32),
        raw_data: Some(data.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

impl Builder {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// A float initializer; `axis` marks a weight quantizable per output channel.
    pub fn weight(&mut self, name: &str, dims: &[usize], data: &[f32], axis: Option<i64>) -> String {
        self.initializers.push(f32_tensor(name, dims, data));
        if let Some(a) = axis {
            self.weight_axis.insert(name.to_string(), a);
        }
        name.to_string()
    }

    pub fn const_f32(&mut self, dims: &[usize], data: &[f32]) -> String {
        let n = self.fresh("const");
        self.initializers.push(f32_tensor(&n, dims, data));
        n
    }

    pub fn const_i64(&mut self, data: &[i64]) -> String {
        let n = self.fresh("shape");
        self.initializers.push(i64_tensor(&n, &[data.len()], data));
        n
    }

    pub fn scalar(&mut self, v: f32) -> String {
        self.const_f32(&[], &[v])
    }

    /// Adds a node with `outputs` fresh outputs; returns their names.
    pub fn node_n(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>, outputs: usize) -> Vec<String> {
        let outs: Vec<String> = (0..outputs).map(|_| self.fresh(&op.to_lowercase())).collect();
        let name = self.fresh(op);
        self.nodes.push(node_proto(op, &name, inputs, &outs, attrs));
        outs
    }

    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<(&str, Attr)>) -> String {
        self.node_n(op, inputs, attrs, 1).remove(0)
    }

    pub fn op(&mut self, op: &str, inputs: &[&str]) -> String {
        self.node(op, inputs, vec![])
    }

    /// Renames the last node's output (for graph outputs with fixed names).
    pub fn name_last_output(&mut self, name: &str) {
        let n = self.nodes.last_mut().expect("a node");
        n.output[0] = name.to_string();
    }
}

/// One node with explicit output names (the builder's `node_n` picks fresh ones).
pub fn node_proto(op: &str, name: &str, inputs: &[&str], outputs: &[String], attrs: Vec<(&str, Attr)>) -> NodeProto {
    let attribute = attrs
        .into_iter()
        .map(|(name, a)| {
            let mut p = AttributeProto { name: Some(name.into()), ..Default::default() };
            match a {
                Attr::Int(i) => {
                    p.r#type = Some(AttributeType::Int as i32);
                    p.i = Some(i);
                }
                Attr::Ints(v) => {
                    p.r#type = Some(AttributeType::Ints as i32);
                    p.ints = v;
                }
                Attr::Float(f) => {
                    p.r#type = Some(AttributeType::Float as i32);
                    p.f = Some(f);
                }
                Attr::Str(s) => {
                    p.r#type = Some(AttributeType::String as i32);
                    p.s = Some(s.as_bytes().to_vec());
                }
            }
            p
        })
        .collect();
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.to_vec(),
        name: Some(name.into()),
        op_type: Some(op.into()),
        attribute,
        ..Default::default()
    }
}

/// Graph input/output type: `dims` with `None` for the dynamic batch (named "N").
pub fn value_info(name: &str, elem: DataType, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension { value: Some(match d { Some(v) => DimValue::DimValue(*v as i64), None => DimValue::DimParam("N".into()) }), ..Default::default() })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto { value: Some(type_proto::Value::TensorType(type_proto::Tensor { elem_type: Some(elem as i32), shape: Some(TensorShapeProto { dim }) })), ..Default::default() }),
        ..Default::default()
    }
}

pub fn model(b: Builder, name: &str, inputs: Vec<ValueInfoProto>, outputs: Vec<ValueInfoProto>, meta: &[(String, String)]) -> ModelProto {
    ModelProto {
        ir_version: Some(IR_VERSION),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        producer_name: Some("tinycats".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        graph: Some(GraphProto { node: b.nodes, name: Some(name.into()), initializer: b.initializers, input: inputs, output: outputs, ..Default::default() }),
        metadata_props: meta.iter().map(|(k, v)| StringStringEntryProto { key: Some(k.clone()), value: Some(v.clone()) }).collect(),
        ..Default::default()
    }
}
