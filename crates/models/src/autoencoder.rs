//! A small convolutional autoencoder: 64×64 RGB ↔ a 16×16×4 latent (downsampling f = 4).
//!
//! Why: the DiT paper diffuses in an autoencoder's latent space, not on pixels. With f = 4 and
//! patch 2 the DiT sees 64 tokens instead of the 256 of pixel patch 4, so a step costs about a
//! quarter, and the fine detail (fur, edges) comes from the decoder's convolutions instead of
//! one linear unpatchify per token. Only the decoder ships; the encoder prepares training data.
//!
//! Layout (widths for `width` = 32, `levels` = 2):
//! encoder: conv 3→32 @64 → down 32→64 @32 → res 64 → down 64→64 @16 → res 64 → conv 64→4;
//! decoder: conv 4→64 @16 → res 64 → up + conv 64→64 @32 → res 64 → up + conv 64→32 @64 → conv 32→3.
//! Residual blocks are pre-activation (SiLU, 3×3, SiLU, 3×3) without normalisation, which keeps
//! the graph to Conv/Sigmoid/Mul/Add for the ONNX export and makes every image independent of
//! its batch. Upsampling is nearest-neighbour (a reshape and two repeats).
//!
//! A decoder may also know the breed (`classes` > 0): after its first convolution and after each
//! upsampling convolution, every channel is modulated per class, h ← h·(1 + γ[y]) + β[y] (FiLM,
//! Perez et al. 2018), with γ and β zero at the start so a conditioned decoder begins as the
//! one it was fine-tuned from. Why: L1 makes a decoder paint the average of what the latent
//! leaves open, and at f = 4 that is the fur; knowing the breed, it can paint that breed's
//! average instead of all cats'. The generator always knows the breed it was asked for.

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Embedding, EmbeddingConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::silu;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AeConfig {
    pub image_size: usize,
    pub channels: usize,
    pub latent_channels: usize,
    /// Channels at full resolution; every lower level has twice this.
    pub width: usize,
    /// Stride-2 steps: the latent is `image_size / 2^levels` on a side.
    pub levels: usize,
    /// The decoder's channels at full resolution (0 = `width`). A wider decoder can be trained
    /// on a frozen encoder's latents, so generators trained on them keep working.
    #[serde(default)]
    pub decoder_width: usize,
    /// Classes the decoder is conditioned on (0 = none): rows of its FiLM tables.
    #[serde(default)]
    pub classes: usize,
}

impl Default for AeConfig {
    fn default() -> Self {
        Self { image_size: 64, channels: 3, latent_channels: 4, width: 32, levels: 2, decoder_width: 0, classes: 0 }
    }
}

impl AeConfig {
    pub fn latent_size(&self) -> usize {
        self.image_size >> self.levels
    }

    /// Encoder channels at level `l` (0 = full resolution).
    pub fn width_at(&self, l: usize) -> usize {
        if l == 0 { self.width } else { 2 * self.width }
    }

    /// Decoder channels at level `l`.
    pub fn decoder_width_at(&self, l: usize) -> usize {
        let w = if self.decoder_width == 0 { self.width } else { self.decoder_width };
        if l == 0 { w } else { 2 * w }
    }

    /// The same encoder shape (so possibly the same latents), whatever the decoders.
    pub fn same_encoder(&self, other: &AeConfig) -> bool {
        AeConfig { decoder_width: 0, classes: 0, ..*self } == AeConfig { decoder_width: 0, classes: 0, ..*other }
    }

    /// Problems with the shape parameters, each naming the field.
    pub fn check(&self) -> Result<(), String> {
        if !(1..=4).contains(&self.levels) {
            return Err(format!("autoencoder.levels ({}) must be 1..=4", self.levels));
        }
        if self.image_size == 0 || self.image_size % (1 << self.levels) != 0 {
            return Err(format!("autoencoder image size ({}) must be a positive multiple of 2^levels ({})", self.image_size, 1 << self.levels));
        }
        if self.width == 0 || self.latent_channels == 0 || self.channels == 0 {
            return Err("autoencoder.width, autoencoder.latent_channels and the image channels must be ≥ 1".into());
        }
        Ok(())
    }

    /// (encoder parameters, decoder parameters, decoder forward FLOPs per image; multiply-add = 2).
    pub fn params_and_decoder_flops(&self) -> (usize, usize, usize) {
        let conv = |i: usize, o: usize| 9 * i * o + o;
        let res = |c: usize| 2 * conv(c, c);
        let (w, l, z) = (self.width, self.levels, self.latent_channels);
        let d = |lv: usize| self.decoder_width_at(lv);
        let mut enc = conv(self.channels, w) + conv(self.width_at(l), z);
        let mut dec = conv(z, d(l)) + conv(d(0), self.channels) + 2 * self.classes * (0..=l).map(d).sum::<usize>();
        let mut flops = 0usize;
        let px = |lv: usize| (self.image_size >> lv) * (self.image_size >> lv);
        flops += 2 * 9 * z * d(l) * px(l) + 2 * 9 * d(0) * self.channels * px(0);
        for lv in 0..l {
            enc += conv(self.width_at(lv), self.width_at(lv + 1)) + res(self.width_at(lv + 1));
            dec += conv(d(lv + 1), d(lv)) + res(d(lv + 1));
            let c = d(lv + 1);
            flops += 2 * 9 * c * d(lv) * px(lv) + 2 * 2 * 9 * c * c * px(lv + 1);
        }
        (enc, dec, flops)
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Autoencoder<B> {
        Autoencoder::new(*self, device)
    }
}

fn conv3<B: Backend>(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [3, 3]).with_stride([stride, stride]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device)
}

/// `x + conv(silu(conv(silu(x))))`.
#[derive(Module, Debug)]
pub struct Res<B: Backend> {
    pub conv1: Conv2d<B>,
    pub conv2: Conv2d<B>,
}

impl<B: Backend> Res<B> {
    fn new(c: usize, device: &B::Device) -> Self {
        Res { conv1: conv3(c, c, 1, device), conv2: conv3(c, c, 1, device) }
    }
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        x.clone() + self.conv2.forward(silu(self.conv1.forward(silu(x))))
    }
}

/// One resolution step: a stride-2 convolution (encoder) or nearest ×2 + convolution (decoder),
/// then a residual block at the lower-resolution width.
#[derive(Module, Debug)]
pub struct Level<B: Backend> {
    pub conv: Conv2d<B>,
    pub res: Res<B>,
}

/// Nearest-neighbour ×2 upsampling.
pub fn upsample2<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1]).repeat_dim(3, 2).repeat_dim(5, 2).reshape([n, c, 2 * h, 2 * w])
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    /// Level `l` goes from resolution `l` to `l + 1`.
    pub down: Vec<Level<B>>,
    pub conv_out: Conv2d<B>,
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub conv_in: Conv2d<B>,
    /// Applied in reverse: `up[l]` goes from resolution `l + 1` to `l` (its residual block runs
    /// first, at the lower resolution).
    pub up: Vec<Level<B>>,
    pub conv_out: Conv2d<B>,
    /// Per class γ‖β for each modulated stage (empty without `classes`): `film[0]` after
    /// `conv_in`, `film[1 + l]` after `up[l]`'s convolution.
    pub film: Vec<Embedding<B>>,
    #[module(skip)]
    pub cfg: AeConfig,
}

#[derive(Module, Debug)]
pub struct Autoencoder<B: Backend> {
    pub encoder: Encoder<B>,
    pub decoder: Decoder<B>,
}

impl<B: Backend> Encoder<B> {
    /// Images in [-1, 1], NCHW → latents [N, latent_channels, S/2^L, S/2^L] (unscaled).
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = self.conv_in.forward(x);
        for l in &self.down {
            h = l.res.forward(l.conv.forward(silu(h)));
        }
        self.conv_out.forward(silu(h))
    }
}

impl<B: Backend> Decoder<B> {
    /// Latents → images (about [-1, 1]; callers clamp). A conditioned decoder paints without its
    /// modulation here (what it painted before it learned the classes).
    pub fn forward(&self, z: Tensor<B, 4>) -> Tensor<B, 4> {
        self.forward_with(z, None)
    }

    /// [`Self::forward`] for images of classes `y` ([N]; ignored by an unconditioned decoder).
    pub fn forward_with(&self, z: Tensor<B, 4>, y: Option<Tensor<B, 1, Int>>) -> Tensor<B, 4> {
        let mut h = self.modulate(0, self.conv_in.forward(z), &y);
        for (l, lv) in self.up.iter().enumerate().rev() {
            h = self.modulate(1 + l, lv.conv.forward(upsample2(silu(lv.res.forward(h)))), &y);
        }
        self.conv_out.forward(silu(h))
    }

    /// Whether the decoder paints per class.
    pub fn conditioned(&self) -> bool {
        !self.film.is_empty()
    }

    fn modulate(&self, k: usize, h: Tensor<B, 4>, y: &Option<Tensor<B, 1, Int>>) -> Tensor<B, 4> {
        let (Some(y), Some(table)) = (y, self.film.get(k)) else { return h };
        let [n, c, _, _] = h.dims();
        let p = table.forward(y.clone().reshape([n, 1])).reshape([n, 2 * c, 1, 1]);
        h.clone() + h * p.clone().narrow(1, 0, c) + p.narrow(1, c, c)
    }
}

/// Zero FiLM tables for a decoder of `cfg` (none without classes): γ = β = 0 leaves a
/// decoder's output as it was, so conditioning can be added to a trained one.
pub fn film_tables<B: Backend>(cfg: &AeConfig, device: &B::Device) -> Vec<Embedding<B>> {
    if cfg.classes == 0 {
        return Vec::new();
    }
    (0..=cfg.levels)
        .map(|k| {
            // k = 0: the latent-side stage (level `levels`); k = 1 + l: after up[l] (level l).
            let c = if k == 0 { cfg.decoder_width_at(cfg.levels) } else { cfg.decoder_width_at(k - 1) };
            EmbeddingConfig::new(cfg.classes, 2 * c).with_initializer(Initializer::Zeros).init(device)
        })
        .collect()
}

impl<B: Backend> Autoencoder<B> {
    pub fn new(cfg: AeConfig, device: &B::Device) -> Self {
        let levels = 0..cfg.levels;
        let down = levels.clone().map(|l| Level { conv: conv3(cfg.width_at(l), cfg.width_at(l + 1), 2, device), res: Res::new(cfg.width_at(l + 1), device) }).collect();
        let up = levels.map(|l| Level { conv: conv3(cfg.decoder_width_at(l + 1), cfg.decoder_width_at(l), 1, device), res: Res::new(cfg.decoder_width_at(l + 1), device) }).collect();
        let top = cfg.width_at(cfg.levels);
        Autoencoder {
            encoder: Encoder { conv_in: conv3(cfg.channels, cfg.width, 1, device), down, conv_out: conv3(top, cfg.latent_channels, 1, device) },
            decoder: Decoder { conv_in: conv3(cfg.latent_channels, cfg.decoder_width_at(cfg.levels), 1, device), up, conv_out: conv3(cfg.decoder_width_at(0), cfg.channels, 1, device), film: film_tables(&cfg, device), cfg },
        }
    }

    pub fn config(&self) -> AeConfig {
        self.decoder.cfg
    }
}

/// A PatchGAN discriminator (Isola et al. 2017, as in VQGAN's and Stable Diffusion's
/// autoencoders): it scores every ~34-px window of an image as photo-like (> 0) or decoded
/// (< 0). It exists only to train a decoder: L1 makes a decoder paint the mean of what the
/// latent leaves open (soft fur); this critic asks for texture that looks real instead. Never
/// exported. Layout for `width` w: conv 4×4/2 3→w, LeakyReLU, conv 4×4/2 w→2w, GroupNorm,
/// LeakyReLU, conv 4×4/1 2w→4w, GroupNorm, LeakyReLU, conv 4×4/1 4w→1.
#[derive(Module, Debug)]
pub struct PatchDiscriminator<B: Backend> {
    pub convs: Vec<Conv2d<B>>,
    pub norms: Vec<burn::nn::GroupNorm<B>>,
    pub out: Conv2d<B>,
}

impl<B: Backend> PatchDiscriminator<B> {
    pub fn new(channels: usize, width: usize, device: &B::Device) -> Self {
        let conv4 = |i: usize, o: usize, s: usize| Conv2dConfig::new([i, o], [4, 4]).with_stride([s, s]).with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)).init(device);
        let groups = |c: usize| (1..=8).rev().find(|g| c % g == 0).unwrap_or(1);
        PatchDiscriminator {
            convs: vec![conv4(channels, width, 2), conv4(width, 2 * width, 2), conv4(2 * width, 4 * width, 1)],
            norms: [2 * width, 4 * width].iter().map(|&c| burn::nn::GroupNormConfig::new(groups(c), c).init(device)).collect(),
            out: conv4(4 * width, 1, 1),
        }
    }

    /// Images in [-1, 1], NCHW → one logit per window, [N, 1, H', W'].
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let mut h = x;
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(h);
            if i > 0 {
                h = self.norms[i - 1].forward(h);
            }
            h = burn::tensor::activation::leaky_relu(h, 0.2);
        }
        self.out.forward(h)
    }
}
