//! The exported graphs (classifier, DiT, latent decoder), written op by op to mirror the burn
//! forward passes.

use crate::graph::{model, value_info, Attr, Builder};
use crate::onnx::tensor_proto::DataType;
use crate::onnx::ModelProto;
use anyhow::{anyhow, bail, Result};
use burn::nn::Linear;
use burn::prelude::*;
use std::collections::BTreeMap;
use burn::nn::conv::Conv2d;
use tinycats_models::autoencoder::Decoder;
use tinycats_models::classifier::{Tail, POOLED};
use tinycats_models::dit::{pos_embed_2d, Dit, T_FREQ, T_SCALE};
use tinycats_models::efficientnet::{ConvBn, EfficientNetLite0, MbConv};
use tinycats_models::Cpu;

/// An exported graph and the per-channel axis of each quantizable weight.
pub struct Exported {
    pub model: ModelProto,
    pub weight_axis: BTreeMap<String, i64>,
}

fn vec_of<const D: usize>(t: Tensor<Cpu, D>) -> Result<Vec<f32>> {
    t.into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))
}

// ---- classifier ------------------------------------------------------------------------------

/// TensorFlow "SAME" padding for input side `n`: (pad before, pad after, output side).
fn same_pad(n: usize, k: usize, s: usize) -> (usize, usize, usize) {
    let out = n.div_ceil(s);
    let total = ((out - 1) * s + k).saturating_sub(n);
    (total / 2, total - total / 2, out)
}

fn conv_bn(b: &mut Builder, x: &str, c: &ConvBn<Cpu>, name: &str, side: &mut usize) -> Result<String> {
    if c.bn.is_some() {
        bail!("{name}: BatchNorm must be folded before export");
    }
    let dims = c.conv.weight.dims();
    let (k, stride, groups) = (dims[2], c.conv.stride[0], c.conv.groups);
    let w = b.weight(&format!("{name}.weight"), &dims, &vec_of(c.conv.weight.val())?, Some(0));
    let bias = match &c.conv.bias {
        Some(p) => vec_of(p.val())?,
        None => vec![0.0; dims[0]],
    };
    let bias = b.weight(&format!("{name}.bias"), &[dims[0]], &bias, None);
    let (lo, hi, out) = same_pad(*side, k, stride);
    *side = out;
    let y = b.node(
        "Conv",
        &[x, &w, &bias],
        vec![
            ("kernel_shape", Attr::Ints(vec![k as i64, k as i64])),
            ("strides", Attr::Ints(vec![stride as i64, stride as i64])),
            ("pads", Attr::Ints(vec![lo as i64, lo as i64, hi as i64, hi as i64])),
            ("group", Attr::Int(groups as i64)),
        ],
    );
    Ok(if c.relu6 {
        let (lo, hi) = (b.scalar(0.0), b.scalar(6.0));
        b.op("Clip", &[&y, &lo, &hi])
    } else {
        y
    })
}

fn mbconv(b: &mut Builder, x: &str, m: &MbConv<Cpu>, name: &str, side: &mut usize) -> Result<String> {
    let h = match &m.expand {
        Some(e) => conv_bn(b, x, e, &format!("{name}.expand"), side)?,
        None => x.to_string(),
    };
    let h = conv_bn(b, &h, &m.depthwise, &format!("{name}.depthwise"), side)?;
    let h = conv_bn(b, &h, &m.project, &format!("{name}.project"), side)?;
    Ok(if m.skip { b.op("Add", &[&h, x]) } else { h })
}

/// Classifier graph: `image` float32 [N,3,S,S], RGB in [0,1] (normalisation inside the graph:
/// (x·255 − 127)/128, as the ImageNet weights expect) → `probs` [N,C] (softmax).
/// `front` and `tail` must have BatchNorm folded.
pub fn classifier(front: &EfficientNetLite0<Cpu>, tail: &Tail<Cpu>, cut: usize, size: usize, meta: &[(String, String)]) -> Result<Exported> {
    if cut >= POOLED {
        bail!("linear-probe classifiers (cut {cut}) are not exportable yet; export a block-tail model");
    }
    let mut b = Builder::default();
    let (k255, k127, k128) = (b.scalar(255.0), b.scalar(127.0), b.scalar(128.0));
    let x = b.op("Mul", &["image", &k255]);
    let x = b.op("Sub", &[&x, &k127]);
    let mut h = b.op("Div", &[&x, &k128]);
    let mut side = size;
    h = conv_bn(&mut b, &h, &front.stem, "stem", &mut side)?;
    for (i, blk) in front.blocks[..cut].iter().enumerate() {
        h = mbconv(&mut b, &h, blk, &format!("blocks.{i}"), &mut side)?;
    }
    for (i, blk) in tail.blocks.iter().enumerate() {
        h = mbconv(&mut b, &h, blk, &format!("blocks.{}", cut + i), &mut side)?;
    }
    let head = tail.head.as_ref().ok_or_else(|| anyhow!("tail has no head conv"))?;
    h = conv_bn(&mut b, &h, head, "head", &mut side)?;
    let p = b.op("GlobalAveragePool", &[&h]);
    let p = b.node("Flatten", &[&p], vec![("axis", Attr::Int(1))]);
    let logits = linear(&mut b, &p, &tail.fc, "fc")?;
    b.node("Softmax", &[&logits], vec![("axis", Attr::Int(-1))]);
    b.name_last_output("probs");
    let classes = tail.fc.weight.dims()[1];
    let weight_axis = b.weight_axis.clone();
    let m = model(b, "tinycats_classifier", vec![value_info("image", DataType::Float, &[None, Some(3), Some(size), Some(size)])], vec![value_info("probs", DataType::Float, &[None, Some(classes)])], meta);
    Ok(Exported { model: m, weight_axis })
}

// ---- DiT -------------------------------------------------------------------------------------

/// x·W + b with burn's [in, out] weight layout (MatMul broadcasts over leading dims).
fn linear(b: &mut Builder, x: &str, l: &Linear<Cpu>, name: &str) -> Result<String> {
    let dims = l.weight.dims();
    let w = b.weight(&format!("{name}.weight"), &dims, &vec_of(l.weight.val())?, Some(1));
    let y = b.op("MatMul", &[x, &w]);
    Ok(match &l.bias {
        Some(bias) => {
            let bn = b.weight(&format!("{name}.bias"), &[dims[1]], &vec_of(bias.val())?, None);
            b.op("Add", &[&y, &bn])
        }
        None => y,
    })
}

fn silu(b: &mut Builder, x: &str) -> String {
    let s = b.op("Sigmoid", &[x]);
    b.op("Mul", &[x, &s])
}

/// Exact GELU: x·½·(1 + erf(x/√2)) (opset 17 has no Gelu op).
fn gelu(b: &mut Builder, x: &str) -> String {
    let (r2, one, half) = (b.scalar(std::f32::consts::SQRT_2), b.scalar(1.0), b.scalar(0.5));
    let e = b.op("Div", &[x, &r2]);
    let e = b.op("Erf", &[&e]);
    let e = b.op("Add", &[&e, &one]);
    let y = b.op("Mul", &[x, &e]);
    b.op("Mul", &[&y, &half])
}

/// Parameter-free LayerNorm over the last dim (eps 1e-6), as `dit::layer_norm`.
fn layer_norm(b: &mut Builder, x: &str, hidden: usize) -> String {
    let (ones, zeros) = (b.const_f32(&[hidden], &vec![1.0; hidden]), b.const_f32(&[hidden], &vec![0.0; hidden]));
    b.node("LayerNormalization", &[x, &ones, &zeros], vec![("axis", Attr::Int(-1)), ("epsilon", Attr::Float(1e-6))])
}

/// Splits [N, k·h] into k chunks, each unsqueezed to [N, 1, h] to broadcast over tokens.
fn chunks(b: &mut Builder, x: &str, k: usize, h: usize) -> Vec<String> {
    let sizes = b.const_i64(&vec![h as i64; k]);
    let parts = b.node_n("Split", &[x, &sizes], vec![("axis", Attr::Int(1))], k);
    let ax = b.const_i64(&[1]);
    parts.iter().map(|p| b.op("Unsqueeze", &[p, &ax])).collect()
}

fn modulate(b: &mut Builder, x: &str, shift: &str, scale: &str) -> String {
    let one = b.scalar(1.0);
    let s = b.op("Add", &[scale, &one]);
    let y = b.op("Mul", &[x, &s]);
    b.op("Add", &[&y, shift])
}

fn c_target(meta: &[(String, String)]) -> String {
    meta.iter().find(|(k, _)| k == "target").map(|(_, v)| v.clone()).unwrap_or_else(|| "velocity".into())
}

/// The generator graph's output name for a training target: `velocity` or `x_hat`.
pub fn output_name(target: &str) -> &'static str {
    if target == "x" { "x_hat" } else { "velocity" }
}

/// Generator graph: `x_t` float32 [N,3,S,S], `t` float32 [N] in [0,1], `breed` int64 [N]
/// (null class = number of breeds, for the unconditional half of CFG) → `velocity` [N,3,S,S]
/// (target "velocity"), or `x_hat`, the clean-image estimate (target "x", per the `target`
/// metadata). No guidance inside: the caller runs cond + null and mixes once. A refiner
/// (`cond_channels` > 0) also takes `cond` [N,cc,S,S]: the coarse latent, upsampled (nearest)
/// to the refined latent's side S.
pub fn dit(m: &Dit<Cpu>, meta: &[(String, String)]) -> Result<Exported> {
    let c = m.config();
    let (h, g, p, ch, tk) = (c.hidden as i64, c.grid() as i64, c.patch as i64, c.channels as i64, c.tokens() as i64);
    let ch_in = ch + c.cond_channels as i64;
    let mut b = Builder::default();
    // A refiner's input is x_t followed by its conditioning image on the channel axis.
    let x_in = if c.cond_channels > 0 { b.node("Concat", &["x_t", "cond"], vec![("axis", Attr::Int(1))]) } else { "x_t".to_string() };
    // Patchify: [N,C,g·p,g·p] → [N,C,g,p,g,p] → [N,g,g,p,p,C] → [N,T,p·p·C].
    let s1 = b.const_i64(&[0, ch_in, g, p, g, p]);
    let x = b.op("Reshape", &[&x_in, &s1]);
    let x = b.node("Transpose", &[&x], vec![("perm", Attr::Ints(vec![0, 2, 4, 3, 5, 1]))]);
    let s2 = b.const_i64(&[0, tk, p * p * ch_in]);
    let x = b.op("Reshape", &[&x, &s2]);
    let x = linear(&mut b, &x, &m.x_embed, "x_embed")?;
    let pe = b.const_f32(&[1, c.tokens(), c.hidden], &pos_embed_2d(c.hidden, c.grid()));
    let mut hs = b.op("Add", &[&x, &pe]);
    // Timestep: [cos(t·1000·f), sin(t·1000·f)] → MLP (SiLU).
    let half = T_FREQ / 2;
    let freqs: Vec<f32> = (0..half).map(|i| (-(10000f32).ln() * i as f32 / half as f32).exp()).collect();
    let (ts, fr, ax1) = (b.scalar(T_SCALE), b.const_f32(&[1, half], &freqs), b.const_i64(&[1]));
    let t = b.op("Mul", &["t", &ts]);
    let t = b.op("Unsqueeze", &[&t, &ax1]);
    let args = b.op("Mul", &[&t, &fr]);
    let (cos, sin) = (b.op("Cos", &[&args]), b.op("Sin", &[&args]));
    let temb = b.node("Concat", &[&cos, &sin], vec![("axis", Attr::Int(1))]);
    let te = linear(&mut b, &temb, &m.t_mlp1, "t_mlp1")?;
    let te = silu(&mut b, &te);
    let te = linear(&mut b, &te, &m.t_mlp2, "t_mlp2")?;
    let table = m.y_embed.weight.dims();
    let yw = b.weight("y_embed.weight", &table, &vec_of(m.y_embed.weight.val())?, None);
    let ye = b.node("Gather", &[&yw, "breed"], vec![("axis", Attr::Int(0))]);
    let cond = b.op("Add", &[&te, &ye]);
    let sc = silu(&mut b, &cond);
    let hd = h / c.heads as i64;
    for (i, blk) in m.blocks.iter().enumerate() {
        let n = format!("blocks.{i}");
        let ada = linear(&mut b, &sc, &blk.ada_ln, &format!("{n}.ada_ln"))?;
        let mods = chunks(&mut b, &ada, 6, c.hidden);
        // Attention branch.
        let xn = layer_norm(&mut b, &hs, c.hidden);
        let xm = modulate(&mut b, &xn, &mods[0], &mods[1]);
        let qkv = linear(&mut b, &xm, &blk.attn.qkv, &format!("{n}.attn.qkv"))?;
        let s = b.const_i64(&[0, tk, 3, c.heads as i64, hd]);
        let qkv = b.op("Reshape", &[&qkv, &s]);
        let qkv = b.node("Transpose", &[&qkv], vec![("perm", Attr::Ints(vec![2, 0, 3, 1, 4]))]);
        let ones = b.const_i64(&[1, 1, 1]);
        let parts = b.node_n("Split", &[&qkv, &ones], vec![("axis", Attr::Int(0))], 3);
        let ax0 = b.const_i64(&[0]);
        let q = b.op("Squeeze", &[&parts[0], &ax0]);
        let k = b.op("Squeeze", &[&parts[1], &ax0]);
        let v = b.op("Squeeze", &[&parts[2], &ax0]);
        let kt = b.node("Transpose", &[&k], vec![("perm", Attr::Ints(vec![0, 1, 3, 2]))]);
        let att = b.op("MatMul", &[&q, &kt]);
        let scale = b.scalar(1.0 / (hd as f32).sqrt());
        let att = b.op("Mul", &[&att, &scale]);
        let att = b.node("Softmax", &[&att], vec![("axis", Attr::Int(-1))]);
        let o = b.op("MatMul", &[&att, &v]);
        let o = b.node("Transpose", &[&o], vec![("perm", Attr::Ints(vec![0, 2, 1, 3]))]);
        let s = b.const_i64(&[0, tk, h]);
        let o = b.op("Reshape", &[&o, &s]);
        let a = linear(&mut b, &o, &blk.attn.proj, &format!("{n}.attn.proj"))?;
        let a = b.op("Mul", &[&mods[2], &a]);
        hs = b.op("Add", &[&hs, &a]);
        // MLP branch.
        let xn = layer_norm(&mut b, &hs, c.hidden);
        let xm = modulate(&mut b, &xn, &mods[3], &mods[4]);
        let f = linear(&mut b, &xm, &blk.mlp.fc1, &format!("{n}.mlp.fc1"))?;
        let f = gelu(&mut b, &f);
        let f = linear(&mut b, &f, &blk.mlp.fc2, &format!("{n}.mlp.fc2"))?;
        let f = b.op("Mul", &[&mods[5], &f]);
        hs = b.op("Add", &[&hs, &f]);
    }
    let ada = linear(&mut b, &sc, &m.final_layer.ada_ln, "final.ada_ln")?;
    let mods = chunks(&mut b, &ada, 2, c.hidden);
    let xn = layer_norm(&mut b, &hs, c.hidden);
    let xm = modulate(&mut b, &xn, &mods[0], &mods[1]);
    let out = linear(&mut b, &xm, &m.final_layer.linear, "final.linear")?;
    // Unpatchify: [N,T,p·p·C] → [N,g,g,p,p,C] → [N,C,g,p,g,p] → [N,C,S,S].
    let s3 = b.const_i64(&[0, g, g, p, p, ch]);
    let out = b.op("Reshape", &[&out, &s3]);
    let out = b.node("Transpose", &[&out], vec![("perm", Attr::Ints(vec![0, 5, 1, 3, 2, 4]))]);
    let s4 = b.const_i64(&[0, ch, g * p, g * p]);
    b.op("Reshape", &[&out, &s4]);
    let out_name = output_name(&c_target(meta));
    b.name_last_output(out_name);
    let sz = Some(c.image_size);
    let weight_axis = b.weight_axis.clone();
    let mut inputs = vec![value_info("x_t", DataType::Float, &[None, Some(c.channels), sz, sz]), value_info("t", DataType::Float, &[None]), value_info("breed", DataType::Int64, &[None])];
    if c.cond_channels > 0 {
        inputs.push(value_info("cond", DataType::Float, &[None, Some(c.cond_channels), sz, sz]));
    }
    let model = model(
        b,
        "tinycats_generator",
        inputs,
        vec![value_info(out_name, DataType::Float, &[None, Some(c.channels), sz, sz])],
        meta,
    );
    Ok(Exported { model, weight_axis })
}

// ---- latent decoder --------------------------------------------------------------------------

/// A 3×3 convolution with symmetric padding 1 (the autoencoder's only convolution).
fn conv3(b: &mut Builder, x: &str, c: &Conv2d<Cpu>, name: &str) -> Result<String> {
    let dims = c.weight.dims();
    let stride = c.stride[0] as i64;
    let w = b.weight(&format!("{name}.weight"), &dims, &vec_of(c.weight.val())?, Some(0));
    let bias = match &c.bias {
        Some(p) => vec_of(p.val())?,
        None => vec![0.0; dims[0]],
    };
    let bias = b.weight(&format!("{name}.bias"), &[dims[0]], &bias, None);
    Ok(b.node(
        "Conv",
        &[x, &w, &bias],
        vec![("kernel_shape", Attr::Ints(vec![3, 3])), ("strides", Attr::Ints(vec![stride, stride])), ("pads", Attr::Ints(vec![1, 1, 1, 1])), ("group", Attr::Int(1))],
    ))
}

/// Latent decoder graph: `latent` float32 [N,C,L,L], the generator's normalised latent →
/// `image` [N,3,S,S] in [-1,1], as `autoencoder::decode` (de-normalise, decode, clamp).
pub fn decoder(d: &Decoder<Cpu>, mean: &[f32], std: &[f32], meta: &[(String, String)]) -> Result<Exported> {
    let c = d.cfg;
    if mean.len() != c.latent_channels || std.len() != c.latent_channels {
        bail!("latent statistics have {} / {} channels, the decoder {}", mean.len(), std.len(), c.latent_channels);
    }
    let mut b = Builder::default();
    let (s, m) = (b.const_f32(&[1, c.latent_channels, 1, 1], std), b.const_f32(&[1, c.latent_channels, 1, 1], mean));
    let z = b.op("Mul", &["latent", &s]);
    let z = b.op("Add", &[&z, &m]);
    let h = conv3(&mut b, &z, &d.conv_in, "decoder.conv_in")?;
    let mut h = film(&mut b, d, 0, &h)?;
    let mut side = c.latent_size();
    for (i, l) in d.up.iter().enumerate().rev() {
        let name = format!("decoder.up.{i}");
        let a = silu(&mut b, &h);
        let a = conv3(&mut b, &a, &l.res.conv1, &format!("{name}.res.conv1"))?;
        let a = silu(&mut b, &a);
        let a = conv3(&mut b, &a, &l.res.conv2, &format!("{name}.res.conv2"))?;
        h = b.op("Add", &[&h, &a]);
        let a = silu(&mut b, &h);
        // Nearest ×2: [N,C,H,W] → [N,C,H,1,W,1] → expand [N,C,H,2,W,2] → [N,C,2H,2W].
        let ch = l.res.conv1.weight.dims()[0] as i64;
        let (s6, e6, s4) = (b.const_i64(&[0, ch, side as i64, 1, side as i64, 1]), b.const_i64(&[1, 1, 1, 2, 1, 2]), b.const_i64(&[0, ch, 2 * side as i64, 2 * side as i64]));
        let a = b.op("Reshape", &[&a, &s6]);
        let a = b.op("Expand", &[&a, &e6]);
        let a = b.op("Reshape", &[&a, &s4]);
        side *= 2;
        h = conv3(&mut b, &a, &l.conv, &format!("{name}.conv"))?;
        h = film(&mut b, d, 1 + i, &h)?;
    }
    let a = silu(&mut b, &h);
    let y = conv3(&mut b, &a, &d.conv_out, "decoder.conv_out")?;
    let (lo, hi) = (b.scalar(-1.0), b.scalar(1.0));
    b.op("Clip", &[&y, &lo, &hi]);
    b.name_last_output("image");
    let (l, sz) = (Some(c.latent_size()), Some(c.image_size));
    let weight_axis = b.weight_axis.clone();
    let mut inputs = vec![value_info("latent", DataType::Float, &[None, Some(c.latent_channels), l, l])];
    if d.conditioned() {
        inputs.push(value_info("breed", DataType::Int64, &[None]));
    }
    let model = model(b, "tinycats_decoder", inputs, vec![value_info("image", DataType::Float, &[None, Some(c.channels), sz, sz])], meta);
    Ok(Exported { model, weight_axis })
}

/// A breed-conditioned decoder's modulation `k` of `h`: h·(1 + γ[breed]) + β[breed], as
/// `Decoder::modulate`, with the tables split (and 1 added to γ) at export time. Unconditioned
/// decoders pass `h` through and have no `breed` input.
fn film(b: &mut Builder, d: &Decoder<Cpu>, k: usize, h: &str) -> Result<String> {
    let Some(table) = d.film.get(k) else { return Ok(h.to_string()) };
    let [rows, two_c] = table.weight.dims();
    let c = two_c / 2;
    let w = vec_of(table.weight.val())?;
    let gamma: Vec<f32> = (0..rows).flat_map(|r| w[r * two_c..r * two_c + c].iter().map(|g| 1.0 + g)).collect();
    let beta: Vec<f32> = (0..rows).flat_map(|r| w[r * two_c + c..(r + 1) * two_c].to_vec()).collect();
    let (gw, bw) = (b.weight(&format!("decoder.film.{k}.scale"), &[rows, c], &gamma, None), b.weight(&format!("decoder.film.{k}.shift"), &[rows, c], &beta, None));
    let shape = b.const_i64(&[-1, c as i64, 1, 1]);
    let g = b.node("Gather", &[&gw, "breed"], vec![("axis", Attr::Int(0))]);
    let g = b.op("Reshape", &[&g, &shape]);
    let be = b.node("Gather", &[&bw, "breed"], vec![("axis", Attr::Int(0))]);
    let be = b.op("Reshape", &[&be, &shape]);
    let h = b.op("Mul", &[h, &g]);
    Ok(b.op("Add", &[&h, &be]))
}
