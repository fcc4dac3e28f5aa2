//! DiT (Peebles & Xie, "Scalable Diffusion Models with Transformers") for class-conditional flow
//! matching, written to read like the paper:
//! patchify → + 2D sin-cos position embedding → N × adaLN-Zero blocks → final layer → unpatchify.
//!
//! Conditioning `c = t_embed(t) + y_embed(y)`; `y = num_classes` is the null class used for
//! classifier-free guidance. Every adaLN modulation and the final projection start at zero, so a
//! fresh model is the identity on the residual stream and outputs zero.

use burn::nn::{Embedding, EmbeddingConfig, Initializer, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{gelu, silu, softmax};
use burn::tensor::TensorPrimitive;
use burn::tensor::module::linear;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DitConfig {
    pub image_size: usize,
    pub patch: usize,
    pub channels: usize,
    pub hidden: usize,
    pub depth: usize,
    pub heads: usize,
    pub mlp_ratio: usize,
    /// Real classes; the null class is index `num_classes`.
    pub num_classes: usize,
    /// Channels of a clean conditioning image (same size as x) that follow x_t's channels in the
    /// input: a refiner learns p(sharp latent | coarse latent, class). 0 for a plain generator.
    #[serde(default)]
    pub cond_channels: usize,
}

/// Frequencies of the sinusoidal timestep embedding (DiT uses 256).
pub const T_FREQ: usize = 256;
/// t ∈ [0,1] is multiplied by this before the sinusoid, so the whole frequency range is used
/// (as DiT's integer timesteps 0..1000 do).
pub const T_SCALE: f32 = 1000.0;

impl DitConfig {
    /// Preset by name: `tiny` (tests, 16 px), `small` (64 px), `base` (128 px).
    pub fn preset(name: &str, num_classes: usize) -> Option<Self> {
        let c = |image_size, patch, hidden, depth, heads| DitConfig { image_size, patch, channels: 3, hidden, depth, heads, mlp_ratio: 4, num_classes, cond_channels: 0 };
        Some(match name {
            "tiny" => c(16, 4, 64, 2, 2),
            "small" => c(64, 8, 192, 6, 3),
            "base" => c(128, 8, 384, 12, 6),
            _ => return None,
        })
    }
    pub const PRESETS: [&'static str; 3] = ["tiny", "small", "base"];

    pub fn grid(&self) -> usize {
        self.image_size / self.patch
    }
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }
    /// Values per output token (one p×p patch of x).
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }
    /// Values per input token: the patch of x_t and of the conditioning image.
    pub fn in_patch_dim(&self) -> usize {
        self.patch * self.patch * (self.channels + self.cond_channels)
    }

    /// Problems with the shape parameters, each naming the field.
    pub fn check(&self) -> Result<(), String> {
        if self.patch == 0 || self.image_size == 0 || self.image_size % self.patch != 0 {
            return Err(format!("model.image_size ({}) must be a positive multiple of model.patch ({})", self.image_size, self.patch));
        }
        if self.heads == 0 || self.hidden % self.heads != 0 {
            return Err(format!("model.hidden ({}) must be a multiple of model.heads ({})", self.hidden, self.heads));
        }
        if self.hidden % 4 != 0 {
            return Err(format!("model.hidden ({}) must be a multiple of 4 (2D sin-cos position embedding)", self.hidden));
        }
        if self.depth == 0 || self.mlp_ratio == 0 || self.channels == 0 || self.num_classes == 0 {
            return Err("model.depth, model.mlp_ratio, model.channels and model.num_classes must be ≥ 1".into());
        }
        Ok(())
    }

    /// (parameters, forward FLOPs per image) counting multiply-adds as 2 FLOPs.
    pub fn params_and_flops(&self) -> (usize, usize) {
        let (h, t, pd, m) = (self.hidden, self.tokens(), self.patch_dim(), self.hidden * self.mlp_ratio);
        let lin = |i: usize, o: usize| i * o + o;
        let block = lin(h, 3 * h) + lin(h, h) + lin(h, m) + lin(m, h) + lin(h, 6 * h);
        let ipd = self.in_patch_dim();
        let params = lin(ipd, h) + lin(T_FREQ, h) + lin(h, h) + (self.num_classes + 1) * h + self.depth * block + lin(h, 2 * h) + lin(h, pd);
        let block_flops = 2 * t * (h * 3 * h + h * h + 2 * h * m) + 2 * 2 * t * t * h + 2 * h * 6 * h;
        let flops = 2 * t * ipd * h + 2 * (T_FREQ * h + h * h) + self.depth * block_flops + 2 * h * 2 * h + 2 * t * h * pd;
        (params, flops)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Dit<B> {
        Dit::new(*self, device)
    }
}

/// Fixed 2D sin-cos position embedding (MAE/DiT): half the channels encode the row, half the
/// column. Returned row-major, `tokens × hidden`.
pub fn pos_embed_2d(hidden: usize, grid: usize) -> Vec<f32> {
    let quarter = hidden / 4;
    let mut out = vec![0f32; grid * grid * hidden];
    for gy in 0..grid {
        for gx in 0..grid {
            let row = &mut out[(gy * grid + gx) * hidden..][..hidden];
            // First half from the x (column) coordinate, second from y, as in the MAE reference.
            for (half, pos) in [(0usize, gx), (1, gy)] {
                for i in 0..quarter {
                    let omega = 1.0 / 10000f64.powf(i as f64 / quarter as f64);
                    let a = pos as f64 * omega;
                    row[half * 2 * quarter + i] = a.sin() as f32;
                    row[half * 2 * quarter + quarter + i] = a.cos() as f32;
                }
            }
        }
    }
    out
}

/// Sinusoidal embedding of t ∈ [0,1] (scaled by `T_SCALE`): `[cos(t·f), sin(t·f)]`.
pub fn timestep_embedding<B: Backend>(t: Tensor<B, 1>) -> Tensor<B, 2> {
    let half = T_FREQ / 2;
    let device = t.device();
    let freqs: Vec<f32> = (0..half).map(|i| (-(10000f32).ln() * i as f32 / half as f32).exp()).collect();
    let freqs = Tensor::<B, 1>::from_data(TensorData::new(freqs, [half]), &device).unsqueeze_dim::<2>(0);
    let args = (t * T_SCALE).unsqueeze_dim::<2>(1) * freqs;
    Tensor::cat(vec![args.clone().cos(), args.sin()], 1)
}

/// LayerNorm without affine parameters over the last dim (adaLN supplies scale and shift):
/// `(x − mean) / sqrt(var + 1e-6)`.
///
/// Why the backend op with γ = 1 rather than the formula in tensor ops: the backend's layer norm
/// is one fused pass, and our patched autodiff gives it a one-pass backward; the formula costs a
/// dozen passes over the activation per call (docs/RESULTS.md, tenth session).
pub fn layer_norm<B: Backend>(x: Tensor<B, 3>) -> Tensor<B, 3> {
    let gamma = Tensor::<B, 1>::ones([x.dims()[2]], &x.device());
    let y = B::layer_norm(x.into_primitive().tensor(), gamma.into_primitive().tensor(), None, 1e-6);
    Tensor::from_primitive(TensorPrimitive::Float(y))
}

/// A per-sample vector [N, D] repeated over `tokens` → [N, tokens, D], contiguous.
///
/// Why not broadcast a [N, 1, D] view: burn-flex runs that broadcast pattern through a scalar
/// strided iterator, ~10x slower than its SIMD path, and it was the largest non-GEMM cost of a
/// training step (`perf` on `tinycats bench dit-step`). A memcpy repeat keeps both operands
/// contiguous; the backward pass is one sum over tokens either way.
fn per_token<B: Backend>(v: Tensor<B, 2>, tokens: usize) -> Tensor<B, 3> {
    v.unsqueeze_dim::<3>(1).repeat_dim(1, tokens)
}

/// A linear layer applied to every token of [N, T, D], as one [N·T, D] matrix.
///
/// Why: for a 3-D input burn computes the weight gradient as N separate [D, T]·[T, O] products
/// (K = T = 64) and then sums them; on [N·T, D] it is one GEMM with K = N·T, which keeps the
/// GEMM kernels busy and skips the N partial results.
fn linear_tokens<B: Backend>(l: &Linear<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let [n, t, d] = x.dims();
    let y = l.forward(x.reshape([n * t, d]));
    let o = y.dims()[1];
    y.reshape([n, t, o])
}

/// `x·(1 + scale) + shift` with per-sample scale/shift applied to every token.
fn modulate<B: Backend>(x: Tensor<B, 3>, shift: Tensor<B, 2>, scale: Tensor<B, 2>) -> Tensor<B, 3> {
    let t = x.dims()[1];
    x * per_token(scale + 1.0, t) + per_token(shift, t)
}

fn zero_linear<B: Backend>(i: usize, o: usize, device: &B::Device) -> Linear<B> {
    LinearConfig::new(i, o).with_initializer(Initializer::Zeros).init(device)
}

fn xavier_linear<B: Backend>(i: usize, o: usize, device: &B::Device) -> Linear<B> {
    // DiT initialises transformer linears with Xavier-uniform and zero bias.
    let mut l = LinearConfig::new(i, o).with_initializer(Initializer::XavierUniform { gain: 1.0 }).init(device);
    l.bias = l.bias.map(|b| b.map(|t| t.zeros_like()));
    l
}

#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    pub qkv: Linear<B>,
    pub proj: Linear<B>,
    pub heads: usize,
}

impl<B: Backend> Attention<B> {
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [b, t, d] = x.dims();
        let hd = d / self.heads;
        // q, k, v = x·W_q, x·W_k, x·W_v, the three column blocks of the fused qkv weight, each
        // as [B, H, T, hd]. Why slice the weight rather than the [B, T, 3·D] output: each
        // projection comes out contiguous (no copy before the heads split), and the slice's
        // gradient is weight-sized instead of three activation-sized zero tensors.
        let x = x.reshape([b * t, d]);
        let head = |i: usize| {
            let w = self.qkv.weight.val().narrow(1, i * d, d);
            let bias = self.qkv.bias.as_ref().map(|bias| bias.val().narrow(0, i * d, d));
            linear(x.clone(), w, bias).reshape([b, t, self.heads, hd]).swap_dims(1, 2)
        };
        let (q, k, v) = (head(0), head(1), head(2));
        let att = softmax(q.matmul(k.swap_dims(2, 3)) * (1.0 / (hd as f64).sqrt()), 3);
        let o = att.matmul(v).swap_dims(1, 2).reshape([b, t, d]);
        linear_tokens(&self.proj, o)
    }
}

#[derive(Module, Debug)]
pub struct Mlp<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
}

#[derive(Module, Debug)]
pub struct DitBlock<B: Backend> {
    pub attn: Attention<B>,
    pub mlp: Mlp<B>,
    /// SiLU(c) → 6 × hidden: shift/scale/gate for attention and for the MLP.
    pub ada_ln: Linear<B>,
}

impl<B: Backend> DitBlock<B> {
    fn new(cfg: &DitConfig, device: &B::Device) -> Self {
        let (h, m) = (cfg.hidden, cfg.hidden * cfg.mlp_ratio);
        DitBlock {
            attn: Attention { qkv: xavier_linear(h, 3 * h, device), proj: xavier_linear(h, h, device), heads: cfg.heads },
            mlp: Mlp { fc1: xavier_linear(h, m, device), fc2: xavier_linear(m, h, device) },
            ada_ln: zero_linear(h, 6 * h, device),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>, c: Tensor<B, 2>) -> Tensor<B, 3> {
        let mods = self.ada_ln.forward(silu(c)).chunk(6, 1);
        let [shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp]: [Tensor<B, 2>; 6] = mods.try_into().expect("6 chunks");
        let a = self.attn.forward(modulate(layer_norm(x.clone()), shift_msa, scale_msa));
        let t = x.dims()[1];
        let x = x + per_token(gate_msa, t) * a;
        let m = linear_tokens(&self.mlp.fc2, gelu(linear_tokens(&self.mlp.fc1, modulate(layer_norm(x.clone()), shift_mlp, scale_mlp))));
        x + per_token(gate_mlp, t) * m
    }
}

#[derive(Module, Debug)]
pub struct FinalLayer<B: Backend> {
    pub ada_ln: Linear<B>,
    pub linear: Linear<B>,
}

#[derive(Module, Debug)]
pub struct Dit<B: Backend> {
    /// Patch embedding: a linear map of each flattened p×p×C patch (= a stride-p convolution).
    pub x_embed: Linear<B>,
    pub t_mlp1: Linear<B>,
    pub t_mlp2: Linear<B>,
    pub y_embed: Embedding<B>,
    pub blocks: Vec<DitBlock<B>>,
    pub final_layer: FinalLayer<B>,
    #[module(skip)]
    pub cfg: DitConfig,
}

impl<B: Backend> Dit<B> {
    pub fn new(cfg: DitConfig, device: &B::Device) -> Self {
        let h = cfg.hidden;
        // Class rows start at N(0, 1) (row norm ≈ √hidden), not DiT's 0.02: Adam moves each row by
        // ~lr per step and only when its class is drawn, while the timestep MLP's output grows to a
        // norm of 20–60 within a few thousand steps. With 0.02 the conditioning was ~1% class signal
        // after 3,600 CPU steps and every breed got the same image (docs/RESULTS.md).
        let y_embed = EmbeddingConfig::new(cfg.num_classes + 1, h).with_initializer(Initializer::Normal { mean: 0.0, std: 1.0 }).init(device);
        Dit {
            x_embed: xavier_linear(cfg.in_patch_dim(), h, device),
            t_mlp1: LinearConfig::new(T_FREQ, h).with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 }).init(device),
            t_mlp2: LinearConfig::new(h, h).with_initializer(Initializer::Normal { mean: 0.0, std: 0.02 }).init(device),
            y_embed,
            blocks: (0..cfg.depth).map(|_| DitBlock::new(&cfg, device)).collect(),
            final_layer: FinalLayer { ada_ln: zero_linear(h, 2 * h, device), linear: zero_linear(h, cfg.patch_dim(), device) },
            cfg,
        }
    }

    pub fn config(&self) -> DitConfig {
        self.cfg
    }

    /// [N, C, H, W] → [N, T, p·p·C]; token k covers patch (k / grid, k % grid), features in
    /// (row-in-patch, col-in-patch, channel) order.
    pub fn patchify(&self, x: Tensor<B, 4>) -> Tensor<B, 3> {
        let c = self.cfg;
        let (n, ch, g, p) = (x.dims()[0], x.dims()[1], c.grid(), c.patch);
        x.reshape([n, ch, g, p, g, p]).permute([0, 2, 4, 3, 5, 1]).reshape([n, g * g, p * p * ch])
    }

    /// Exact inverse of `patchify`: each token goes back to its own patch.
    pub fn unpatchify(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        let c = self.cfg;
        let (n, g, p) = (x.dims()[0], c.grid(), c.patch);
        x.reshape([n, g, g, p, p, c.channels]).permute([0, 5, 1, 3, 2, 4]).reshape([n, c.channels, g * p, g * p])
    }

    pub fn pos_embed(&self, device: &B::Device) -> Tensor<B, 3> {
        let c = self.cfg;
        Tensor::from_data(TensorData::new(pos_embed_2d(c.hidden, c.grid()), [1, c.tokens(), c.hidden]), device)
    }

    /// Conditioning vector for timesteps `t` ∈ [0,1] and class ids `y` (null = num_classes).
    pub fn condition(&self, t: Tensor<B, 1>, y: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let te = self.t_mlp2.forward(silu(self.t_mlp1.forward(timestep_embedding(t))));
        let n = y.dims()[0];
        let ye = self.y_embed.forward(y.reshape([n, 1])).reshape([n, self.cfg.hidden]);
        te + ye
    }

    /// x_t [N,C,H,W], t [N], y [N] → network output [N,C,H,W] (velocity or x̂, per objective).
    /// With `cond_channels` > 0 the input is x_t followed by the conditioning image on the
    /// channel axis, [N, C + cond_channels, H, W]; the output still has C channels.
    pub fn forward(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, y: Tensor<B, 1, Int>) -> Tensor<B, 4> {
        self.forward_with_tokens(x, t, y, 0).0
    }

    /// `forward`, also returning the hidden tokens [N, T, hidden] after the first `at` blocks
    /// (REPA aligns them with a pretrained encoder's features during training).
    pub fn forward_with_tokens(&self, x: Tensor<B, 4>, t: Tensor<B, 1>, y: Tensor<B, 1, Int>, at: usize) -> (Tensor<B, 4>, Tensor<B, 3>) {
        let device = x.device();
        let c = self.condition(t, y);
        let n = x.dims()[0];
        // Repeated, not broadcast, for the same burn-flex reason as `per_token`.
        let mut h = linear_tokens(&self.x_embed, self.patchify(x)) + self.pos_embed(&device).repeat_dim(0, n);
        let mut tokens = h.clone();
        for (i, block) in self.blocks.iter().enumerate() {
            h = block.forward(h, c.clone());
            if i + 1 == at {
                tokens = h.clone();
            }
        }
        let [shift, scale]: [Tensor<B, 2>; 2] = self.final_layer.ada_ln.forward(silu(c)).chunk(2, 1).try_into().expect("2 chunks");
        let out = linear_tokens(&self.final_layer.linear, modulate(layer_norm(h), shift, scale));
        (self.unpatchify(out), tokens)
    }
}
