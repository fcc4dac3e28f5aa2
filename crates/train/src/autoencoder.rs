//! Training the latent autoencoder (`tinycats_models::autoencoder`) that a latent generator
//! diffuses in, and encoding a dataset into its latent space.
//!
//! Loss: mean |decoder(z + σ·ε) − x| + λ·mean(z²), with z = encoder(x). The fixed noise σ makes
//! the decoder tolerate the small errors a generator leaves in its latents, and λ keeps z from
//! growing until σ no longer matters (a VAE with a fixed posterior variance). Training runs on
//! random crops (the network is fully convolutional), which costs less per step and shows the
//! decoder more positions. After training, the per-channel mean and standard deviation of the
//! training latents are stored with the weights, so the generator sees unit-variance latents.

use crate::config::range;
use crate::generator::GenDataConfig;
use crate::schedule::{lr_at, ScheduleConfig};
use crate::sink::{Sinks, StepEvent};
use anyhow::{anyhow, bail, Context, Result};
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::relu;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tinycats_data::cache::Cache;
use tinycats_data::loader::{Augment, Loader, LoaderConfig};
use tinycats_models::autoencoder::{AeConfig, Autoencoder, Decoder, Encoder, PatchDiscriminator};
use tinycats_models::efficientnet::EfficientNetLite0;
use tinycats_models::weights::TensorMap;
use tinycats_models::{Cpu, CpuTrain};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AeModelSection {
    pub latent_channels: usize,
    pub width: usize,
    pub levels: usize,
    /// The decoder's width (0 = `width`).
    pub decoder_width: usize,
    /// The decoder knows each image's breed (FiLM per class, zero-initialised): it can paint a
    /// breed's fur where the latent has lost it. Generators pass the breed they paint.
    pub conditional: bool,
}

impl Default for AeModelSection {
    fn default() -> Self {
        let d = AeConfig::default();
        Self { latent_channels: d.latent_channels, width: d.width, levels: d.levels, decoder_width: 0, conditional: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AeLossSection {
    /// λ: weight of mean(z²).
    pub latent_penalty: f64,
    /// σ: standard deviation of the noise added to z before decoding (training only).
    pub latent_noise: f64,
    /// Weight of the perceptual term (0 = off): an LPIPS-like distance on EfficientNet-Lite0's
    /// early feature maps. L1 alone makes a decoder paint the mean of what the latent leaves
    /// open (blur); this term asks for texture the ImageNet network recognises.
    pub perceptual: f64,
    /// EfficientNet-Lite0 weights for the perceptual term (scripts/setup.sh fetches them).
    pub perceptual_weights: PathBuf,
    /// Weight of the adversarial term (0 = off): a PatchGAN critic trained beside the decoder
    /// (hinge loss) scores its output; the decoder is pushed towards windows the critic takes
    /// for photos. Where the latent has lost the fur, L1 paints its average (blur); a critic
    /// asks for a texture that looks real, as in VQGAN's and Stable Diffusion's autoencoders.
    /// As there (VQGAN's adaptive weight), the term is rescaled so that its gradient at the
    /// decoder's last layer is this many times the reconstruction term's; a fixed scale either
    /// wrecked the reconstructions (0.1: 28.4 → 23.1 dB in 150 steps) or would do nothing.
    pub adversarial: f64,
    /// Step from which the decoder feels the adversarial term; the critic trains from step 0,
    /// so it has learned something by then.
    pub adversarial_start: usize,
    /// The critic's width (channels of its first convolution).
    pub disc_width: usize,
    /// The critic also sees each image's breed (one-hot planes beside the pixels), so it can
    /// reject fur of the wrong breed, not only fur that looks painted. Needs `model.conditional`.
    pub critic_breed: bool,
}

impl Default for AeLossSection {
    fn default() -> Self {
        Self { latent_penalty: 1e-3, latent_noise: 0.1, perceptual: 0.0, perceptual_weights: PathBuf::from("data/weights/efficientnet-lite0.safetensors"), adversarial: 0.0, adversarial_start: 0, disc_width: 64, critic_breed: false }
    }
}

/// Lite0 blocks whose outputs the perceptual term compares (after the stem and after blocks 0,
/// 2 and 4: strides 2, 2, 4 and 8 on the ×2-upsampled image). Early layers only: they describe
/// texture and edges, not breeds (the classifier reads the last blocks).
pub const PERCEPTUAL_TAPS: [usize; 4] = [0, 1, 3, 5];

/// The smallest training window the critic scores (its two stride-2 and two 4×4 stride-1
/// convolutions leave 2×2 logits at 16 px).
pub const MIN_CRITIC_SIDE: usize = 16;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AeTrainSection {
    pub steps: usize,
    pub batch_size: usize,
    /// Side of the random training crop (a multiple of 2^levels, at most the image size; 0 = whole image).
    pub crop: usize,
    pub lr: f64,
    pub warmup_steps: usize,
    pub seed: u64,
    pub log_every: usize,
    /// Start from this autoencoder's weights (empty = random initialisation).
    pub init: PathBuf,
    /// Train only the decoder (needs `init`): the latents, and so every generator trained on
    /// them, stay valid; the latent statistics are kept from `init`.
    pub freeze_encoder: bool,
}

impl Default for AeTrainSection {
    fn default() -> Self {
        Self { steps: 3000, batch_size: 32, crop: 32, lr: 1e-3, warmup_steps: 100, seed: 7, log_every: 50, init: PathBuf::new(), freeze_encoder: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AeTrainConfig {
    pub data: GenDataConfig,
    pub model: AeModelSection,
    pub loss: AeLossSection,
    pub train: AeTrainSection,
}

impl AeTrainConfig {
    pub fn load(text: &str, source: &str, overrides: &[String]) -> Result<Self> {
        let c: Self = crate::config::load_toml(text, source, overrides)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        range("model.latent_channels", self.model.latent_channels as f64, 1.0, 64.0)?;
        range("model.width", self.model.width as f64, 1.0, 512.0)?;
        range("model.decoder_width", self.model.decoder_width as f64, 0.0, 512.0)?;
        range("model.levels", self.model.levels as f64, 1.0, 4.0)?;
        range("loss.latent_penalty", self.loss.latent_penalty, 0.0, 10.0)?;
        range("loss.latent_noise", self.loss.latent_noise, 0.0, 10.0)?;
        range("loss.perceptual", self.loss.perceptual, 0.0, 100.0)?;
        range("loss.adversarial", self.loss.adversarial, 0.0, 100.0)?;
        range("loss.disc_width", self.loss.disc_width as f64, 1.0, 512.0)?;
        if self.loss.critic_breed && !(self.model.conditional && self.loss.adversarial > 0.0) {
            bail!("config key `loss.critic_breed` needs a critic (`loss.adversarial` > 0) and a breed-conditioned decoder (`model.conditional = true`)");
        }
        if self.train.freeze_encoder && self.train.init.as_os_str().is_empty() {
            bail!("config key `train.freeze_encoder` needs `train.init` (the autoencoder whose encoder is kept)");
        }
        range("train.steps", self.train.steps as f64, 1.0, 1e9)?;
        range("train.batch_size", self.train.batch_size as f64, 1.0, 4096.0)?;
        range("train.lr", self.train.lr, 1e-8, 1.0)?;
        range("train.log_every", self.train.log_every as f64, 1.0, 1e9)?;
        if self.train.crop % (1 << self.model.levels) != 0 {
            bail!("config key `train.crop` ({}) must be 0 or a multiple of 2^model.levels ({})", self.train.crop, 1 << self.model.levels);
        }
        if self.data.splits.is_empty() {
            bail!("config key `data.splits` must name at least one split (train, val, test)");
        }
        if !self.data.autoencoder.as_os_str().is_empty() {
            bail!("config key `data.autoencoder` belongs to generator configs; an autoencoder's config leaves it out");
        }
        Ok(())
    }

    fn ae(&self, image_size: usize, classes: usize) -> Result<AeConfig> {
        let classes = if self.model.conditional { classes } else { 0 };
        let a = AeConfig { image_size, channels: 3, latent_channels: self.model.latent_channels, width: self.model.width, levels: self.model.levels, decoder_width: self.model.decoder_width, classes };
        a.check().map_err(|e| anyhow!("{e}"))?;
        if self.train.crop > image_size {
            bail!("config key `train.crop` ({}) exceeds the images' size ({image_size} px in {})", self.train.crop, self.data.cache.display());
        }
        let side = if self.train.crop == 0 { image_size } else { self.train.crop };
        if self.loss.adversarial > 0.0 && side < MIN_CRITIC_SIDE {
            bail!("config key `loss.adversarial` needs training windows of at least {MIN_CRITIC_SIDE} px for the critic (`train.crop` gives {side} px)");
        }
        Ok(a)
    }
}

/// What a saved autoencoder carries besides tensors (safetensors metadata).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AeMeta {
    pub ae: AeConfig,
    /// Per latent channel, over the training images: the generator works on (z − mean) / std.
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub step: usize,
    /// Mean absolute error and PSNR (dB) of reconstructions of held-out images, pixels in [0, 1].
    pub held_out_l1: f64,
    pub held_out_psnr: f64,
    /// The breeds of a conditioned decoder, in the order of its class rows (empty otherwise).
    #[serde(default)]
    pub classes: Vec<String>,
}

impl AeMeta {
    /// Whether `other` gives the same latents: same shape and the same latent statistics. A
    /// decoder fine-tuned with `train.freeze_encoder` keeps both, so a generator trained on the
    /// original latents paints through it; any retrained encoder changes the statistics.
    pub fn same_latents(&self, other: &AeMeta) -> bool {
        self.ae.same_encoder(&other.ae) && self.mean == other.mean && self.std == other.std
    }

    /// Whether a generator of `breeds` can paint through this decoder: any generator through an
    /// unconditioned one; a breed-conditioned one is told the generator's class index, so the
    /// breed lists must agree.
    pub fn paints_breeds(&self, breeds: &[String]) -> bool {
        self.classes.is_empty() || self.classes == breeds
    }
}

const META_KEY: &str = "tinycats_autoencoder";

pub fn save_autoencoder(model: &Autoencoder<Cpu>, meta: &AeMeta, path: &Path) -> Result<()> {
    let bytes = crate::weights::to_bytes(model, &[(META_KEY, serde_json::to_string(meta)?)], "autoencoder")?;
    tinycats_data::hashing::write_atomic(path, &bytes)
}

/// The checked metadata of the autoencoder file whose bytes are `bytes`.
fn meta_of(bytes: &[u8], path: &Path) -> Result<AeMeta> {
    let meta: AeMeta = crate::weights::read_meta(bytes, path, META_KEY, "autoencoder")?;
    meta.ae.check().map_err(|e| anyhow!("{}: {e}", path.display()))?;
    if meta.mean.len() != meta.ae.latent_channels || meta.std.len() != meta.ae.latent_channels || meta.std.iter().any(|s| !(*s > 0.0)) {
        bail!("{}: latent statistics do not match {} latent channels", path.display(), meta.ae.latent_channels);
    }
    if meta.classes.len() != meta.ae.classes {
        bail!("{}: the decoder has {} class rows but names {} classes", path.display(), meta.ae.classes, meta.classes.len());
    }
    Ok(meta)
}

/// Only the metadata of a saved autoencoder (shape, latent statistics, held-out scores), without
/// building the network.
pub fn read_autoencoder_meta(path: &Path) -> Result<AeMeta> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read autoencoder {}", path.display()))?;
    meta_of(&bytes, path)
}

pub fn load_autoencoder(path: &Path) -> Result<(Autoencoder<Cpu>, AeMeta)> {
    load_autoencoder_on::<Cpu>(path, &Default::default())
}

/// [`load_autoencoder`] on any backend (training starts from a saved one on the autodiff backend).
pub fn load_autoencoder_on<B: Backend>(path: &Path, dev: &B::Device) -> Result<(Autoencoder<B>, AeMeta)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read autoencoder {}", path.display()))?;
    let meta = meta_of(&bytes, path)?;
    let mut model = Autoencoder::<B>::new(meta.ae, dev);
    crate::weights::load_strict(&mut model, bytes, path, "autoencoder")?;
    Ok((model, meta))
}

/// The photos an autoencoder is judged on: the test split's images of the classes not in
/// `exclude` (the cats), which the shipped configs never train on. Training's report and
/// `eval-ae` both use it, so their numbers are comparable.
pub fn held_out(cache: &Cache, exclude: &[String]) -> Vec<usize> {
    cache.split(tinycats_data::cache::Split::Test).into_iter().filter(|&i| !exclude.contains(&cache.index.classes[cache.index.entries[i].label])).collect()
}

/// Per-channel [1, C, 1, 1] tensor of `v`.
fn per_channel<B: Backend>(v: &[f32], dev: &B::Device) -> Tensor<B, 4> {
    Tensor::from_data(TensorData::new(v.to_vec(), [1, v.len(), 1, 1]), dev)
}

/// [N] class indices for a conditioned decoder (None for an unconditioned one).
pub fn class_tensor<B: Backend>(decoder: &Decoder<B>, classes: &[usize], dev: &B::Device) -> Option<Tensor<B, 1, Int>> {
    decoder.conditioned().then(|| Tensor::from_data(TensorData::new(classes.iter().map(|&c| c as i64).collect::<Vec<_>>(), [classes.len()]), dev))
}

/// Generator latents (unit variance) of images of `classes` (indices into `meta.classes`; used
/// only by a conditioned decoder) → images in [-1, 1].
pub fn decode<B: Backend>(decoder: &Decoder<B>, meta: &AeMeta, z: Tensor<B, 4>, classes: &[usize]) -> Tensor<B, 4> {
    let dev = z.device();
    // A caller bug, not user input: every caller knows the breed of each image it paints.
    assert!(!decoder.conditioned() || classes.len() == z.dims()[0], "a breed-conditioned decoder needs one breed per latent ({} for {})", classes.len(), z.dims()[0]);
    let y = class_tensor(decoder, classes, &dev);
    decoder.forward_with(z * per_channel::<B>(&meta.std, &dev) + per_channel::<B>(&meta.mean, &dev), y).clamp(-1.0, 1.0)
}

/// The class rows a conditioned decoder (whose breeds are `classes`) uses for the cache images
/// `idx`; empty when `classes` is. An image of another class is an error naming it.
pub fn classes_of(cache: &Cache, classes: &[String], idx: &[usize]) -> Result<Vec<usize>> {
    if classes.is_empty() {
        return Ok(Vec::new());
    }
    idx.iter()
        .map(|&i| {
            let e = &cache.index.entries[i];
            let name = &cache.index.classes[e.label];
            classes.iter().position(|c| c == name).ok_or_else(|| anyhow!("{}: image {} is a {name}, which the breed-conditioned decoder does not know (it knows {classes:?})", cache.dir.display(), e.stem))
        })
        .collect()
}

/// Images in [-1, 1] → generator latents (unit variance): the inverse of [`decode`].
pub fn encode_images<B: Backend>(encoder: &Encoder<B>, meta: &AeMeta, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let dev = x.device();
    (encoder.forward(x) - per_channel::<B>(&meta.mean, &dev)) / per_channel::<B>(&meta.std, &dev)
}

/// Cache images (HWC u8) → NCHW f32 in [-1, 1], optionally mirrored left-right.
pub fn images_nchw(cache: &Cache, idx: &[usize], flip: bool) -> Vec<f32> {
    let s = cache.size() as usize;
    let mut out = vec![0f32; idx.len() * 3 * s * s];
    for (k, &i) in idx.iter().enumerate() {
        let px = cache.image(i);
        for y in 0..s {
            for x in 0..s {
                let sx = if flip { s - 1 - x } else { x };
                for c in 0..3 {
                    out[((k * 3 + c) * s + y) * s + x] = px[(y * s + sx) * 3 + c] as f32 / 127.5 - 1.0;
                }
            }
        }
    }
    out
}

/// Latents of `idx` (raw, before normalisation), `[idx.len() × C × L × L]`, in chunks of 64.
pub fn encode_raw(ae: &Autoencoder<Cpu>, cache: &Cache, idx: &[usize], flip: bool) -> Result<Vec<f32>> {
    let s = cache.size() as usize;
    let dev = Default::default();
    let mut out = Vec::new();
    for chunk in idx.chunks(64) {
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(images_nchw(cache, chunk, flip), [chunk.len(), 3, s, s]), &dev);
        out.extend(ae.encoder.forward(x).into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?);
    }
    Ok(out)
}

/// Normalised latents of `idx` for the generator: (z − mean) / std per channel.
pub fn encode(ae: &Autoencoder<Cpu>, meta: &AeMeta, cache: &Cache, idx: &[usize], flip: bool) -> Result<Vec<f32>> {
    if cache.size() as usize != meta.ae.image_size {
        bail!("{}: images are {} px but the autoencoder takes {} px", cache.dir.display(), cache.size(), meta.ae.image_size);
    }
    let mut z = encode_raw(ae, cache, idx, flip)?;
    let plane = meta.ae.latent_size() * meta.ae.latent_size();
    for (k, v) in z.iter_mut().enumerate() {
        let c = (k / plane) % meta.ae.latent_channels;
        *v = (*v - meta.mean[c]) / meta.std[c];
    }
    Ok(z)
}

/// Per-channel mean and standard deviation of raw latents laid out `[N, C, plane]`.
fn channel_stats(z: &[f32], channels: usize, plane: usize) -> (Vec<f32>, Vec<f32>) {
    let mut sum = vec![0f64; channels];
    let mut sq = vec![0f64; channels];
    for (k, &v) in z.iter().enumerate() {
        let c = (k / plane) % channels;
        sum[c] += v as f64;
        sq[c] += (v as f64) * (v as f64);
    }
    let n = (z.len() / channels).max(1) as f64;
    let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
    let std = sq.iter().zip(&sum).map(|(q, s)| ((q / n - (s / n).powi(2)).max(1e-12)).sqrt() as f32).collect();
    (mean, std)
}

/// How well an autoencoder reconstructs some photos (without latent noise).
#[derive(Debug, Clone)]
pub struct Reconstructions {
    /// Mean |x̂ − x|, pixels in [0, 1].
    pub l1: f64,
    pub psnr_db: f64,
    /// The reconstructions as HWC u8 images, in the photos' order, so a classifier can say how
    /// much breed detail the decoder keeps: that bounds what any generator in this latent space
    /// can show.
    pub images: Vec<Vec<u8>>,
}

/// `x`, the photos of the cache images `idx` in [-1, 1], encoded and decoded (clamped); a
/// conditioned decoder (whose breeds are `classes`) is told each photo's breed.
fn round_trip(ae: &Autoencoder<Cpu>, classes: &[String], cache: &Cache, idx: &[usize], x: Tensor<Cpu, 4>) -> Result<Tensor<Cpu, 4>> {
    let y = class_tensor(&ae.decoder, &classes_of(cache, classes, idx)?, &x.device());
    Ok(ae.decoder.forward_with(ae.encoder.forward(x), y).clamp(-1.0, 1.0))
}

/// Reconstructs `idx`'s photos and measures the error. A conditioned decoder (whose breeds are
/// `classes`) is told each photo's breed, as a generator tells it the breed it painted.
pub fn reconstruct(ae: &Autoencoder<Cpu>, classes: &[String], cache: &Cache, idx: &[usize]) -> Result<Reconstructions> {
    let s = cache.size() as usize;
    let dev = Default::default();
    let (mut abs, mut sq, mut n) = (0f64, 0f64, 0usize);
    let mut images = Vec::with_capacity(idx.len());
    for chunk in idx.chunks(64) {
        let x = images_nchw(cache, chunk, false);
        let xt = Tensor::<Cpu, 4>::from_data(TensorData::new(x.clone(), [chunk.len(), 3, s, s]), &dev);
        let yt = round_trip(ae, classes, cache, chunk, xt)?;
        images.extend(crate::generator::to_rgb8(yt.clone())?);
        let y: Vec<f32> = yt.into_data().to_vec().map_err(|e| anyhow!("{e:?}"))?;
        for (a, b) in x.iter().zip(&y) {
            let d = ((a - b) * 0.5) as f64;
            abs += d.abs();
            sq += d * d;
        }
        n += x.len();
    }
    let n = n.max(1) as f64;
    Ok(Reconstructions { l1: abs / n, psnr_db: 10.0 * (1.0 / (sq / n).max(1e-12)).log10(), images })
}

/// [`reconstruct`] of `idx`, plus a picture: 8 of the photos (top row) over their
/// reconstructions, written to `png`.
pub fn reconstruction_report(ae: &Autoencoder<Cpu>, classes: &[String], cache: &Cache, idx: &[usize], png: &Path) -> Result<Reconstructions> {
    if idx.is_empty() {
        bail!("{}: no images to reconstruct", cache.dir.display());
    }
    let s = cache.size() as usize;
    let k = idx.len().min(8);
    let pick: Vec<usize> = (0..k).map(|j| idx[j * idx.len() / k]).collect();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(images_nchw(cache, &pick, false), [k, 3, s, s]), &Default::default());
    let rec = round_trip(ae, classes, cache, &pick, x.clone())?;
    let imgs = crate::generator::to_rgb8(Tensor::cat(vec![x, rec], 0))?;
    crate::generator::grid_png(&imgs, s, k, png)?;
    reconstruct(ae, classes, cache, idx)
}

/// The critic over one logging window (means over its steps).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct CriticWindow {
    pub step: usize,
    /// Mean logit on decoded windows minus mean logit on photos: below 0 while the critic tells
    /// them apart.
    pub gap: f64,
    /// The critic's hinge loss: about 2 when it cannot tell them apart, lower as it learns.
    pub hinge: f64,
    /// The adaptive scale the decoder's adversarial term had (0 before `adversarial_start`).
    pub scale: f64,
}

/// Steps between two measurements of the adaptive adversarial scale (each costs two extra
/// decoder passes).
const ADAPT_EVERY: usize = 10;

#[derive(Debug, Clone, Serialize)]
pub struct AeResult {
    pub run_dir: PathBuf,
    pub steps: usize,
    /// Mean reconstruction L1 per logging window.
    pub losses: Vec<(usize, f64)>,
    /// Mean perceptual distance per logging window (empty when `loss.perceptual` is 0).
    pub perceptual_losses: Vec<(usize, f64)>,
    /// Per logging window (empty when `loss.adversarial` is 0).
    pub adversarial_losses: Vec<CriticWindow>,
    pub train_seconds: f64,
    pub images_per_s: f64,
    pub weights: PathBuf,
    pub meta: AeMeta,
    pub encoder_params: usize,
    pub decoder_params: usize,
    pub decoder_gflops: f64,
}

/// Random `crop`-side windows of NCHW images (one window per image), or the images as they are.
fn random_crops(x: Vec<f32>, n: usize, s: usize, crop: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, usize) {
    if crop == 0 || crop == s {
        return (x, s);
    }
    let mut out = Vec::with_capacity(n * 3 * crop * crop);
    for i in 0..n {
        let (oy, ox) = (rng.gen_range(0..=s - crop), rng.gen_range(0..=s - crop));
        for c in 0..3 {
            for y in 0..crop {
                let row = ((i * 3 + c) * s + oy + y) * s + ox;
                out.extend_from_slice(&x[row..row + crop]);
            }
        }
    }
    (out, crop)
}

/// LPIPS-like distance (Zhang et al. 2018, without the learned channel weights) between images
/// `a` and `b` in [-1, 1]: at each of [`PERCEPTUAL_TAPS`], Lite0's feature vectors are scaled
/// to unit length per position, and the squared difference is summed over channels and
/// averaged over positions and images; the taps' values are averaged. The images are upsampled
/// ×2 first, since Lite0 expects objects several times larger than 64-px photos show them.
pub fn perceptual_distance<B: Backend>(net: &EfficientNetLite0<B>, a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 1> {
    let prep = |x: Tensor<B, 4>| EfficientNetLite0::<B>::normalize(tinycats_models::autoencoder::upsample2((x + 1.0) * 0.5));
    let n = a.dims()[0];
    let h = net.front(prep(Tensor::cat(vec![a, b], 0)), 0);
    let unit = |f: Tensor<B, 4>| f.clone() / (f.powi_scalar(2).sum_dim(1) + 1e-10).sqrt();
    let mut total = Tensor::<B, 1>::zeros([1], &h.device());
    let (mut h, mut at) = (h, 0usize);
    for &tap in &PERCEPTUAL_TAPS {
        while at < tap {
            h = net.blocks[at].forward(h);
            at += 1;
        }
        let u = unit(h.clone());
        total = total + (u.clone().narrow(0, 0, n) - u.narrow(0, n, n)).powi_scalar(2).sum_dim(1).mean();
    }
    total / PERCEPTUAL_TAPS.len() as f64
}

pub fn train_autoencoder(cfg: &AeTrainConfig, run_dir: &Path, sinks: &mut Sinks) -> Result<AeResult> {
    let cache = Cache::open(&cfg.data.cache)?;
    let gen_like = crate::generator::GeneratorConfig { data: cfg.data.clone(), ..Default::default() };
    let (idx, classes, map) = crate::generator::training_set(&gen_like, &cache)?;
    let s = cache.size() as usize;
    let ae_cfg = cfg.ae(s, classes.len())?;
    let classes = if ae_cfg.classes > 0 { classes } else { Vec::new() };
    std::fs::create_dir_all(run_dir).with_context(|| format!("cannot create run folder {}", run_dir.display()))?;
    tinycats_data::hashing::write_atomic(&run_dir.join("config.toml"), toml::to_string(cfg)?.as_bytes())?;
    let cfg_json = serde_json::to_value(cfg)?;
    sinks.emit(|sk| sk.on_start(&cfg_json));
    let dev = Default::default();
    <CpuTrain as Backend>::seed(&dev, cfg.train.seed);
    let mut model = Autoencoder::<CpuTrain>::new(ae_cfg, &dev);
    // Fine-tuning: start from a saved autoencoder of the same shape.
    let init_meta = if cfg.train.init.as_os_str().is_empty() {
        None
    } else {
        let (init, m) = load_autoencoder_on::<CpuTrain>(&cfg.train.init, &dev).context("config key `train.init`")?;
        if !m.ae.same_encoder(&ae_cfg) {
            bail!("config key `train.init`: {} is a {:?}, but the config's model section and data give {:?}", cfg.train.init.display(), m.ae, ae_cfg);
        }
        // Another decoder width (`model.decoder_width`): the encoder comes from `init`, the
        // decoder starts fresh.
        if m.ae.decoder_width_at(0) == ae_cfg.decoder_width_at(0) {
            model = init;
            if m.ae.classes == 0 && ae_cfg.classes > 0 {
                // Conditioning a trained decoder: zero FiLM tables, so it starts where it was.
                model.decoder.film = tinycats_models::autoencoder::film_tables(&ae_cfg, &dev);
            } else if m.classes != classes {
                let wanted = if cfg.model.conditional { format!("this config's data gives {classes:?}") } else { "`model.conditional` is false".to_string() };
                bail!("config key `train.init`: {} is conditioned on the breeds {:?}, but {wanted}", cfg.train.init.display(), m.classes);
            }
            model.decoder.cfg = ae_cfg;
        } else {
            model.encoder = init.encoder;
        }
        Some(m)
    };
    if cfg.train.freeze_encoder {
        // No gradients reach the encoder's parameters, so the optimizer leaves them as they are.
        model.encoder = model.encoder.no_grad();
    }
    let perceptual = if cfg.loss.perceptual > 0.0 {
        let w = TensorMap::read(&cfg.loss.perceptual_weights).context("config key `loss.perceptual_weights`")?;
        Some(EfficientNetLite0::<CpuTrain>::from_pretrained(w, &dev)?.fold_bn().no_grad())
    } else {
        None
    };
    let mut optim = AdamWConfig::new().with_beta_2(0.99).init::<CpuTrain, Autoencoder<CpuTrain>>();
    let critic_classes = if cfg.loss.critic_breed { ae_cfg.classes } else { 0 };
    let mut critic = (cfg.loss.adversarial > 0.0).then(|| PatchDiscriminator::<CpuTrain>::new(3 + critic_classes, cfg.loss.disc_width, &dev));
    // GAN practice (VQGAN): a short momentum for the critic, whose target moves with the decoder.
    let mut critic_optim = AdamWConfig::new().with_beta_1(0.5).with_beta_2(0.9).init::<CpuTrain, PatchDiscriminator<CpuTrain>>();
    let bs = cfg.train.batch_size;
    let aug = Augment { random_resized_crop: false, hflip: true, color_jitter: 0.0, ..Augment::default() };
    let loader = Loader::new(&cache, idx.clone(), LoaderConfig { batch_size: bs, shuffle: true, drop_last: true, seed: cfg.train.seed, augment: aug, ..Default::default() });
    let per_epoch = loader.batches_per_epoch().max(1);
    let sched = ScheduleConfig { kind: "cosine".into(), warmup_epochs: cfg.train.warmup_steps as f64, min_lr: cfg.train.lr * 0.05, ..Default::default() };
    let (mut losses, mut window, mut seen) = (Vec::new(), (0f64, 0usize), 0usize);
    let (mut perceptual_losses, mut p_window) = (Vec::new(), 0f64);
    let (mut adversarial_losses, mut a_window) = (Vec::new(), (0f64, 0f64, 0f64));
    // 0 until `adversarial_start`, then re-measured every ADAPT_EVERY steps.
    let mut adv_scale = 0f64;
    let t0 = Instant::now();
    for step in 0..cfg.train.steps {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let b = loader.batch((step / per_epoch) as u64, step % per_epoch);
        let n = b.labels.len();
        let cls: Vec<usize> = b.labels.iter().map(|&l| map[l].expect("training_set keeps only mapped classes")).collect();
        let yc = class_tensor(&model.decoder, &cls, &dev);
        let (x, side) = random_crops(b.images, n, s, cfg.train.crop, &mut rng);
        // What the critic is shown besides an image: its breed as one-hot planes (critic_breed).
        let planes = (critic_classes > 0).then(|| {
            let plane = side * side;
            let mut v = vec![0f32; n * critic_classes * plane];
            for (i, &c) in cls.iter().enumerate() {
                v[(i * critic_classes + c) * plane..(i * critic_classes + c + 1) * plane].fill(1.0);
            }
            Tensor::<CpuTrain, 4>::from_data(TensorData::new(v, [n, critic_classes, side, side]), &dev)
        });
        let judge = |d: &PatchDiscriminator<CpuTrain>, img: Tensor<CpuTrain, 4>| match &planes {
            Some(p) => d.forward(Tensor::cat(vec![img, p.clone()], 1)),
            None => d.forward(img),
        };
        // The loader gives [0, 1]; the autoencoder works in [-1, 1] like the generator.
        let x = Tensor::<CpuTrain, 4>::from_data(TensorData::new(x, [n, 3, side, side]), &dev) * 2.0 - 1.0;
        let z = model.encoder.forward(x.clone());
        let zs = z.dims();
        let noise: Vec<f32> = (0..zs.iter().product::<usize>()).map(|_| StandardNormal.sample(&mut rng)).collect();
        let zn = z.clone() + Tensor::<CpuTrain, 4>::from_data(TensorData::new(noise, zs), &dev) * cfg.loss.latent_noise;
        let heard = step >= cfg.loss.adversarial_start;
        if let Some(d) = critic.as_ref().filter(|_| heard && (step - cfg.loss.adversarial_start) % ADAPT_EVERY == 0) {
            // VQGAN's adaptive weight: ‖∇_last L1‖ / ‖∇_last L_adv‖ at the decoder's last convolution.
            let last = |l: Tensor<CpuTrain, 1>| -> f64 {
                let g = model.decoder.conv_out.weight.val().grad(&l.backward());
                g.map_or(0.0, |g| g.powi_scalar(2).sum().sqrt().into_scalar().elem::<f32>() as f64)
            };
            let r = last((model.decoder.forward_with(zn.clone().detach(), yc.clone()) - x.clone()).abs().mean());
            let a = last(-judge(d, model.decoder.forward_with(zn.clone().detach(), yc.clone())).mean());
            adv_scale = (r / (a + 1e-4)).clamp(0.0, 1e4) * cfg.loss.adversarial;
        }
        let y = model.decoder.forward_with(zn, yc);
        let fake = y.clone().detach();
        let rec = (y.clone() - x.clone()).abs().mean();
        let mut loss = rec.clone();
        if !cfg.train.freeze_encoder {
            loss = loss + z.powi_scalar(2).mean() * cfg.loss.latent_penalty;
        }
        if let Some(d) = critic.as_ref().filter(|_| heard) {
            // Hinge GAN, the decoder's side: raise the critic's score of its output.
            loss = loss - judge(d, y.clone()).mean() * adv_scale;
        }
        if let Some(net) = &perceptual {
            let p = perceptual_distance(net, y, x.clone());
            p_window += p.clone().into_scalar().elem::<f32>() as f64;
            loss = loss + p * cfg.loss.perceptual;
        }
        let lv: f32 = rec.clone().into_scalar().elem();
        if !lv.is_finite() {
            bail!("autoencoder training diverged at step {step}: loss is {lv} (lower train.lr)");
        }
        let lr = lr_at(&sched, cfg.train.lr, step, cfg.train.steps, 1, 1.0);
        let g = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, g);
        if let Some(d) = critic.take() {
            let (real, fake) = (judge(&d, x.detach()), judge(&d, fake));
            let gap: f32 = (fake.clone().mean() - real.clone().mean()).into_scalar().elem();
            let hinge = relu(-real + 1.0).mean() + relu(fake + 1.0).mean();
            let hv: f32 = hinge.clone().into_scalar().elem();
            a_window = (a_window.0 + gap as f64, a_window.1 + hv as f64, a_window.2 + adv_scale);
            let g = GradientsParams::from_grads(hinge.backward(), &d);
            critic = Some(critic_optim.step(lr, d, g));
        }
        seen += n;
        window = (window.0 + lv as f64, window.1 + 1);
        if (step + 1) % cfg.train.log_every == 0 || step + 1 == cfg.train.steps {
            let l = window.0 / window.1.max(1) as f64;
            losses.push((step + 1, l));
            if perceptual.is_some() {
                perceptual_losses.push((step + 1, p_window / window.1.max(1) as f64));
            }
            p_window = 0.0;
            if critic.is_some() {
                let k = window.1.max(1) as f64;
                adversarial_losses.push(CriticWindow { step: step + 1, gap: a_window.0 / k, hinge: a_window.1 / k, scale: a_window.2 / k });
            }
            a_window = (0.0, 0.0, 0.0);
            let ev = StepEvent { epoch: step / per_epoch, step: step + 1, loss: l, lr };
            sinks.emit(|sk| sk.on_step(&ev));
            window = (0.0, 0);
        }
    }
    let train_seconds = t0.elapsed().as_secs_f64();
    let ae = model.valid();
    let (c, l) = (ae_cfg.latent_channels, ae_cfg.latent_size());
    // A frozen encoder gives the latents it gave before: keep their statistics exactly, so a
    // generator trained on them accepts this autoencoder.
    let (mean, std) = match (&init_meta, cfg.train.freeze_encoder) {
        (Some(m), true) => (m.mean.clone(), m.std.clone()),
        _ => channel_stats(&encode_raw(&ae, &cache, &idx, false)?, c, l * l),
    };
    let held: Vec<usize> = held_out(&cache, &cfg.data.exclude).into_iter().filter(|i| !idx.contains(i)).collect();
    let held_out = reconstruction_report(&ae, &classes, &cache, if held.is_empty() { &idx } else { &held }, &run_dir.join("reconstructions.png"))?;
    let meta = AeMeta { ae: ae_cfg, mean, std, step: cfg.train.steps, held_out_l1: held_out.l1, held_out_psnr: held_out.psnr_db, classes };
    let weights = run_dir.join("autoencoder.safetensors");
    save_autoencoder(&ae, &meta, &weights)?;
    sinks.emit(|sk| sk.on_checkpoint(&weights, false));
    let (encoder_params, decoder_params, flops) = ae_cfg.params_and_decoder_flops();
    let r = AeResult { run_dir: run_dir.to_path_buf(), steps: cfg.train.steps, losses, perceptual_losses, adversarial_losses, train_seconds, images_per_s: seen as f64 / train_seconds.max(1e-9), weights, meta, encoder_params, decoder_params, decoder_gflops: flops as f64 / 1e9 };
    tinycats_data::hashing::write_atomic(&run_dir.join("result.json"), &serde_json::to_vec_pretty(&r)?)?;
    Ok(r)
}
