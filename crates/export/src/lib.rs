//! ONNX export of the shipped models, in pure Rust: onnx.proto compiled by protox + prost at
//! build time (no protoc), graphs written op by op (opset 17) to mirror the burn forward passes,
//! optional fp16 / int8 weight quantization. Files are written atomically: an error leaves no
//! partial .onnx behind.

pub mod graph;
pub mod nets;

pub mod onnx {
    #![allow(clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
}

use anyhow::{bail, Result};
use graph::{f32_tensor, node_proto, Attr, Builder};
use std::collections::{BTreeMap, BTreeSet};
use nets::Exported;
use onnx::tensor_proto::DataType;
use onnx::{ModelProto, NodeProto, TensorProto};
use prost::Message;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Quantize {
    None,
    Fp16,
    Int8,
    /// int8 weights as `Int8`, and the MatMuls of Linear layers run in integers: activations
    /// are quantized at run time (DynamicQuantizeLinear, uint8 per tensor) and multiplied with
    /// MatMulInteger. About 1.5× faster per generator step in ONNX Runtime Web's WASM backend.
    #[serde(rename = "int8-dynamic")]
    Int8Dynamic,
}

impl Quantize {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "none" => Quantize::None,
            "fp16" => Quantize::Fp16,
            "int8" => Quantize::Int8,
            "int8-dynamic" => Quantize::Int8Dynamic,
            _ => bail!("--quantize `{s}` is not supported; use none, fp16, int8 or int8-dynamic"),
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            Quantize::None => "none",
            Quantize::Fp16 => "fp16",
            Quantize::Int8 => "int8",
            Quantize::Int8Dynamic => "int8-dynamic",
        }
    }
}

fn floats(t: &TensorProto) -> Vec<f32> {
    t.raw_data.as_deref().unwrap_or_default().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Symmetric per-channel int8 of a row-major tensor whose channel index is `(i / inner) % c`:
/// (scale per channel = max|w| / 127, quantized values). The one rounding rule shared by the
/// int8 graphs and `fake_quantize_linears`, so both see exactly the same weights.
fn int8_per_channel(w: &[f32], c: usize, inner: usize) -> (Vec<f32>, Vec<i8>) {
    let mut maxabs = vec![0f32; c];
    for (i, v) in w.iter().enumerate() {
        let ch = (i / inner) % c;
        maxabs[ch] = maxabs[ch].max(v.abs());
    }
    let scale: Vec<f32> = maxabs.iter().map(|&m| if m > 0.0 { m / 127.0 } else { 1.0 }).collect();
    let q = w.iter().enumerate().map(|(i, v)| (v / scale[(i / inner) % c]).round().clamp(-127.0, 127.0) as i8).collect();
    (scale, q)
}

/// Weight quantization. fp16: weights stored as float16 and Cast back to float32. int8:
/// symmetric per-output-channel int8 with a DequantizeLinear in front of each consumer; every op
/// still computes in float32 (LayerNorm, Softmax, the timestep sinusoid and all activations stay
/// exact), only stored weights lose precision. int8-dynamic: the same int8 weights, and each
/// MatMul of a Linear layer becomes DynamicQuantizeLinear → MatMulInteger → Cast → Mul (the
/// pattern onnxruntime fuses into one integer kernel); other weight consumers keep the
/// DequantizeLinear of `Int8`.
pub fn quantize(e: Exported, q: Quantize) -> ModelProto {
    let mut m = e.model;
    if q == Quantize::None {
        return m;
    }
    let g = m.graph.as_mut().expect("graph");
    // Linear weights ([in, out], channel axis 1) whose every consumer is a MatMul taking them as
    // its right operand: those MatMuls can run in integers.
    let integer: BTreeSet<String> = if q == Quantize::Int8Dynamic {
        let mut uses: BTreeMap<&str, (usize, usize)> = BTreeMap::new(); // (all uses, MatMul right operand)
        for n in &g.node {
            for (i, input) in n.input.iter().enumerate() {
                let u = uses.entry(input.as_str()).or_default();
                u.0 += 1;
                u.1 += usize::from(i == 1 && n.op_type.as_deref() == Some("MatMul"));
            }
        }
        let dims = |name: &str| g.initializer.iter().find(|t| t.name.as_deref() == Some(name)).map(|t| t.dims.len());
        e.weight_axis
            .iter()
            .filter(|(name, &axis)| axis == 1 && dims(name) == Some(2) && uses.get(name.as_str()).is_some_and(|&(all, mm)| all > 0 && all == mm))
            .map(|(name, _)| name.clone())
            .collect()
    } else {
        BTreeSet::new()
    };
    let mut b = Builder::default();
    let mut kept = Vec::new();
    for t in std::mem::take(&mut g.initializer) {
        let name = t.name.clone().unwrap_or_default();
        let Some(&axis) = e.weight_axis.get(&name) else {
            kept.push(t);
            continue;
        };
        let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
        let w = floats(&t);
        let qname = format!("{name}_q");
        match q {
            Quantize::Fp16 => {
                let raw: Vec<u8> = w.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect();
                kept.push(TensorProto { name: Some(qname.clone()), dims: t.dims.clone(), data_type: Some(DataType::Float16 as i32), raw_data: Some(raw), ..Default::default() });
                b.node("Cast", &[&qname], vec![("to", Attr::Int(DataType::Float as i64))]);
            }
            Quantize::Int8 | Quantize::Int8Dynamic => {
                let ax = axis as usize;
                let c = dims[ax];
                let (scale, q) = int8_per_channel(&w, c, dims[ax + 1..].iter().product());
                let sname = format!("{name}_scale");
                let zname = format!("{name}_zero");
                kept.push(f32_tensor(&sname, &[c], &scale));
                if integer.contains(&name) {
                    // The same int8 values stored as uint8 with zero point 128: onnxruntime's
                    // uint8×int8 kernels on x86 without VNNI saturate 16-bit pair sums (wrong
                    // outputs); uint8×uint8 is exact everywhere and as fast in WASM.
                    let raw: Vec<u8> = q.iter().map(|&v| (v as i16 + 128) as u8).collect();
                    kept.push(TensorProto { name: Some(qname.clone()), dims: t.dims.clone(), data_type: Some(DataType::Uint8 as i32), raw_data: Some(raw), ..Default::default() });
                    kept.push(TensorProto { name: Some(zname.clone()), dims: vec![c as i64], data_type: Some(DataType::Uint8 as i32), raw_data: Some(vec![128u8; c]), ..Default::default() });
                    continue; // consumed by MatMulInteger below, never as float
                }
                let raw: Vec<u8> = q.iter().map(|&v| v as u8).collect();
                kept.push(TensorProto { name: Some(qname.clone()), dims: t.dims.clone(), data_type: Some(DataType::Int8 as i32), raw_data: Some(raw), ..Default::default() });
                kept.push(TensorProto { name: Some(zname.clone()), dims: vec![c as i64], data_type: Some(DataType::Int8 as i32), raw_data: Some(vec![0u8; c]), ..Default::default() });
                b.node("DequantizeLinear", &[&qname, &sname, &zname], vec![("axis", Attr::Int(axis))]);
            }
            Quantize::None => unreachable!(),
        }
        b.name_last_output(&name);
    }
    g.initializer = kept;
    let mut nodes: Vec<NodeProto> = b.nodes;
    nodes.extend(integer_matmuls(std::mem::take(&mut g.node), &integer));
    g.node = nodes;
    m.metadata_props.push(onnx::StringStringEntryProto { key: Some("quantization".into()), value: Some(q.name().into()) });
    m
}

/// Rewrites each `MatMul(x, W)` with W in `integer` (stored as uint8, zero point 128) as
/// DynamicQuantizeLinear(x) → MatMulInteger(x_q, W_q, x_zero, W_zero) → Cast → Mul(x_scale · W_scale),
/// the order onnxruntime's MatMulIntegerToFloat fusion expects. One DynamicQuantizeLinear per
/// activation, shared by the MatMuls that read it (the adaLN projections all read c). New names
/// derive from the (unique) names they replace, so they cannot clash with the graph's own.
fn integer_matmuls(nodes: Vec<NodeProto>, integer: &BTreeSet<String>) -> Vec<NodeProto> {
    let mut out = Vec::with_capacity(nodes.len());
    let mut quantized: BTreeSet<String> = BTreeSet::new();
    for n in nodes {
        let w = n.input.get(1).filter(|w| n.op_type.as_deref() == Some("MatMul") && integer.contains(*w)).cloned();
        let Some(w) = w else {
            out.push(n);
            continue;
        };
        let (x, y) = (n.input[0].clone(), n.output[0].clone());
        let (xq, xs, xz) = (format!("{x}_u8"), format!("{x}_u8_scale"), format!("{x}_u8_zero"));
        if quantized.insert(x.clone()) {
            out.push(node_proto("DynamicQuantizeLinear", &format!("{x}_dql"), &[&x], &[xq.clone(), xs.clone(), xz.clone()], vec![]));
        }
        let (acc, accf, scale) = (format!("{y}_i32"), format!("{y}_i32_f"), format!("{y}_scale"));
        out.push(node_proto("Mul", &format!("{y}_scale_mul"), &[&xs, &format!("{w}_scale")], &[scale.clone()], vec![]));
        out.push(node_proto("MatMulInteger", &format!("{y}_mmi"), &[&xq, &format!("{w}_q"), &xz, &format!("{w}_zero")], &[acc.clone()], vec![]));
        out.push(node_proto("Cast", &format!("{y}_cast"), &[&acc], &[accf.clone()], vec![("to", Attr::Int(DataType::Float as i64))]));
        out.push(node_proto("Mul", &format!("{y}_mul"), &[&accf, &scale], &[y], vec![]));
    }
    out
}

pub fn encode(m: &ModelProto) -> Vec<u8> {
    m.encode_to_vec()
}

pub fn decode(bytes: &[u8]) -> Result<ModelProto> {
    Ok(ModelProto::decode(bytes)?)
}

/// Metadata value of a decoded model.
pub fn metadata(m: &ModelProto, key: &str) -> Option<String> {
    m.metadata_props.iter().find(|p| p.key.as_deref() == Some(key)).and_then(|p| p.value.clone())
}

/// The burn model with its Linear weights rounded exactly as `quantize` stores them (fp16, or
/// int8 per output column), so quality metrics of a quantized export can be measured with the
/// burn evaluation code. Like the ONNX graphs, only Linear weights change; int8-dynamic's run-time
/// activation rounding is not simulated (its weights are those of int8).
pub fn fake_quantize_linears<B: burn::prelude::Backend, M: burn::module::Module<B>>(m: M, q: Quantize) -> M {
    use burn::module::{ModuleMapper, Param};
    use burn::prelude::*;
    struct Fq {
        stack: Vec<String>,
        q: Quantize,
    }
    impl<B: Backend> ModuleMapper<B> for Fq {
        fn enter_module(&mut self, _name: &str, container_type: &str) {
            self.stack.push(container_type.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.stack.pop();
        }
        fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
            if D != 2 || self.stack.last().map(String::as_str) != Some("Struct:Linear") || self.q == Quantize::None {
                return p;
            }
            let q = self.q;
            p.map(|t| {
                let dims = t.dims();
                let cols = dims[1];
                let dev = t.device();
                let w: Vec<f32> = t.into_data().to_vec().expect("f32 weights");
                let out: Vec<f32> = match q {
                    Quantize::Fp16 => w.iter().map(|v| half::f16::from_f32(*v).to_f32()).collect(),
                    _ => {
                        // [in, out] weights: the channel (axis 1) is the innermost index.
                        let (s, q) = int8_per_channel(&w, cols, 1);
                        q.iter().enumerate().map(|(i, &v)| v as f32 * s[i % cols]).collect()
                    }
                };
                Tensor::<B, D>::from_data(TensorData::new(out, dims), &dev)
            })
        }
    }
    m.map(&mut Fq { stack: vec![], q })
}
