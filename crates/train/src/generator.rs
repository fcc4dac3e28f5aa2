//! Class-conditional flow matching (rectified flow) for the DiT.
//!
//! Direction: `x_t = (1 − t)·noise + t·image`, so t = 0 is pure noise and t = 1 is the data; the
//! velocity is `v = image − noise` (never zero unless image = noise, which a guard test checks).
//! The network predicts either v directly (`target = "velocity"`) or the clean image x̂ (JiT,
//! `target = "x"`), in which case `v̂ = (x̂ − x_t) / (1 − t)` and the loss is still on velocity.
//! Sampling integrates dx/dt = v̂ from t = 0 to 1 (Euler or Heun), with classifier-free guidance
//! applied once per evaluation: `v = v_null + s·(v_cond − v_null)`, optionally projected (APG:
//! `v_cond + (s − 1)·Δ⊥`) and limited to a t interval.

use crate::config::{one_of, range, OptimConfig};
use crate::schedule::{lr_at, ScheduleConfig};
use crate::sink::{Sinks, StepEvent};
use anyhow::{anyhow, bail, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, ModuleMapper, ModuleVisitor, Param};
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tinycats_data::cache::{Cache, Split};
use tinycats_data::loader::{Augment, Loader, LoaderConfig};
use crate::autoencoder::{load_autoencoder, AeMeta};
use tinycats_models::autoencoder::{Autoencoder, Decoder};
use tinycats_models::dit::{Dit, DitConfig};
use tinycats_models::{Cpu, CpuTrain};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenDataConfig {
    /// A folder made by `tinycats data prepare` at the generator's resolution.
    pub cache: PathBuf,
    /// Labels left out of training (the generator paints cats, not dogs).
    pub exclude: Vec<String>,
    /// Splits trained on (the test split stays untouched for the classifier).
    pub splits: Vec<String>,
    /// A latent autoencoder (`tinycats train autoencoder`): when set, the DiT learns the
    /// autoencoder's normalised latents of the images instead of their pixels, and its decoder
    /// paints the result. Empty: pixel space.
    pub autoencoder: PathBuf,
    /// A refiner (the second stage of a cascade): the latents of this coarser autoencoder,
    /// upsampled to `autoencoder`'s latent size, condition the DiT, which learns the sharper
    /// latent of the same image. Needs `autoencoder`. Empty: a plain generator.
    pub condition: PathBuf,
}

impl Default for GenDataConfig {
    fn default() -> Self {
        Self { cache: PathBuf::from("data/pets/prepared/64-cats_other-crop"), exclude: vec!["other".into()], splits: vec!["train".into(), "val".into()], autoencoder: PathBuf::new(), condition: PathBuf::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenModelConfig {
    /// tiny | small | base; the fields below override the preset when non-zero.
    pub preset: String,
    pub patch: usize,
    pub hidden: usize,
    pub depth: usize,
    pub heads: usize,
}

impl Default for GenModelConfig {
    fn default() -> Self {
        Self { preset: "small".into(), patch: 0, hidden: 0, depth: 0, heads: 0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ObjectiveConfig {
    /// velocity | x  (x: the network predicts the clean image, loss on velocity — JiT)
    pub target: String,
    /// logit-normal | uniform
    pub t_sampling: String,
    pub t_mean: f64,
    pub t_std: f64,
    /// Share of labels replaced by the null class (for classifier-free guidance).
    pub label_dropout: f64,
    pub hflip: bool,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self { target: "velocity".into(), t_sampling: "logit-normal".into(), t_mean: 0.0, t_std: 1.0, label_dropout: 0.1, hflip: true }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmaConfig {
    pub decay: f64,
    /// Effective decay is min(decay, (1 + step) / (warmup + step)), so early EMA follows the model.
    pub warmup_steps: usize,
}

impl Default for EmaConfig {
    fn default() -> Self {
        Self { decay: 0.999, warmup_steps: 10 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenTrainSection {
    /// Optimizer steps in total (training may stop earlier with --steps-this-run and resume).
    pub steps: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub grad_clip: f64,
    pub accum_steps: usize,
    /// Resume checkpoint and EMA export every N steps.
    pub checkpoint_every: usize,
    /// Loss is reported every N steps (averaged).
    pub log_every: usize,
}

impl Default for GenTrainSection {
    fn default() -> Self {
        Self { steps: 8000, batch_size: 32, seed: 42, grad_clip: 1.0, accum_steps: 1, checkpoint_every: 250, log_every: 25 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GenPredictions {
    pub enabled: bool,
    /// Render the fixed (breed, seed) pairs every N steps.
    pub every: usize,
    /// One image per breed for each of these seeds.
    pub seeds: Vec<u64>,
    pub sample_steps: usize,
    pub cfg: f64,
}

impl Default for GenPredictions {
    fn default() -> Self {
        Self { enabled: true, every: 500, seeds: vec![1], sample_steps: 20, cfg: 3.0 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    pub data: GenDataConfig,
    pub model: GenModelConfig,
    pub objective: ObjectiveConfig,
    pub ema: EmaConfig,
    pub optim: OptimConfig,
    /// `warmup_epochs` counts optimizer steps here.
    pub schedule: ScheduleConfig,
    pub train: GenTrainSection,
    pub predictions: GenPredictions,
    /// Representation alignment (off unless `repa.weight` > 0).
    pub repa: crate::repa::RepaConfig,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            data: Default::default(),
            model: Default::default(),
            objective: Default::default(),
            ema: Default::default(),
            optim: OptimConfig { lr: 4e-4, weight_decay: 0.0, beta1: 0.9, beta2: 0.99 },
            schedule: ScheduleConfig { kind: "cosine".into(), warmup_epochs: 200.0, min_lr: 1e-5, ..Default::default() },
            train: Default::default(),
            predictions: Default::default(),
            repa: Default::default(),
        }
    }
}

impl GeneratorConfig {
    pub fn load(text: &str, source: &str, overrides: &[String]) -> Result<Self> {
        let c: Self = crate::config::load_toml(text, source, overrides)?;
        c.validate()?;
        Ok(c)
    }

    pub fn validate(&self) -> Result<()> {
        one_of("model.preset", &self.model.preset, &DitConfig::PRESETS)?;
        one_of("objective.target", &self.objective.target, &["velocity", "x"])?;
        one_of("objective.t_sampling", &self.objective.t_sampling, &["logit-normal", "uniform"])?;
        range("objective.t_std", self.objective.t_std, 0.01, 10.0)?;
        range("objective.t_mean", self.objective.t_mean, -10.0, 10.0)?;
        range("objective.label_dropout", self.objective.label_dropout, 0.0, 1.0)?;
        range("ema.decay", self.ema.decay, 0.0, 0.999999)?;
        range("optim.lr", self.optim.lr, 1e-8, 1.0)?;
        range("optim.weight_decay", self.optim.weight_decay, 0.0, 1.0)?;
        range("optim.beta1", self.optim.beta1, 0.0, 0.9999)?;
        range("optim.beta2", self.optim.beta2, 0.0, 0.99999)?;
        one_of("schedule.kind", &self.schedule.kind, &["constant", "cosine"])?;
        range("train.steps", self.train.steps as f64, 1.0, 1e9)?;
        range("train.batch_size", self.train.batch_size as f64, 1.0, 4096.0)?;
        range("train.accum_steps", self.train.accum_steps as f64, 1.0, 1024.0)?;
        range("train.grad_clip", self.train.grad_clip, 0.0, 1e6)?;
        range("train.checkpoint_every", self.train.checkpoint_every as f64, 1.0, 1e9)?;
        range("train.log_every", self.train.log_every as f64, 1.0, 1e9)?;
        range("predictions.every", self.predictions.every as f64, 1.0, 1e9)?;
        range("predictions.sample_steps", self.predictions.sample_steps as f64, 1.0, 1000.0)?;
        range("predictions.cfg", self.predictions.cfg, 0.0, 50.0)?;
        for s in &self.data.splits {
            one_of("data.splits", s, &["train", "val", "test"])?;
        }
        if self.data.splits.is_empty() {
            bail!("config key `data.splits` must name at least one split (train, val, test)");
        }
        if !self.data.condition.as_os_str().is_empty() && self.data.autoencoder.as_os_str().is_empty() {
            bail!("config key `data.condition` needs `data.autoencoder`: a refiner learns a latent conditioned on a coarser one");
        }
        let d = self.dit(1).map_err(|e| anyhow!("{e}"))?;
        self.repa.validate(d.depth)?;
        Ok(())
    }

    /// The network shape for `classes` real classes (preset + overrides), checked.
    pub fn dit(&self, classes: usize) -> Result<DitConfig, String> {
        let mut d = DitConfig::preset(&self.model.preset, classes).ok_or_else(|| format!("config key `model.preset`: unknown {}", self.model.preset))?;
        let m = &self.model;
        for (v, f) in [(m.patch, &mut d.patch), (m.hidden, &mut d.hidden), (m.depth, &mut d.depth), (m.heads, &mut d.heads)] {
            if v > 0 {
                *f = v;
            }
        }
        d.check()?;
        Ok(d)
    }
}

/// What a saved generator carries besides tensors (stored in the safetensors metadata).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GeneratorMeta {
    pub dit: DitConfig,
    pub classes: Vec<String>,
    pub target: String,
    pub step: usize,
    pub ema: bool,
    /// Latent generators: the autoencoder whose latents the DiT learned (its weights are the
    /// file `AUTOENCODER_FILE` beside the generator's). None: the DiT paints pixels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent: Option<AeMeta>,
    /// Refiners: the coarser latent space they are conditioned on (`data.condition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<AeMeta>,
}

impl GeneratorMeta {
    pub fn null_class(&self) -> usize {
        self.classes.len()
    }

    /// Side of the images this generator paints (the DiT's own side for pixel generators).
    pub fn image_size(&self) -> usize {
        self.latent.as_ref().map_or(self.dit.image_size, |l| l.ae.image_size)
    }
}

/// The file beside a latent generator's weights that holds its autoencoder.
pub const AUTOENCODER_FILE: &str = "autoencoder.safetensors";
/// The copy of a refiner's conditioning autoencoder (`data.condition`) kept in its run folder.
pub const CONDITION_FILE: &str = "condition.safetensors";

/// The autoencoder a latent generator saved at `path` was trained with (the file beside it),
/// checked against its metadata `meta`; None for a pixel generator.
pub fn latent_autoencoder(path: &Path, meta: &GeneratorMeta) -> Result<Option<(Autoencoder<Cpu>, AeMeta)>> {
    let Some(want) = &meta.latent else { return Ok(None) };
    let ae_path = path.parent().unwrap_or(Path::new(".")).join(AUTOENCODER_FILE);
    let (ae, got) = load_autoencoder(&ae_path).with_context(|| format!("{} is a latent generator; its autoencoder must lie beside it", path.display()))?;
    // The decoder may differ (a fine-tuned one); the latent space may not.
    if !got.same_latents(want) {
        bail!("{}: this autoencoder is not the one {} was trained with (its shape or latent statistics differ)", ae_path.display(), path.display());
    }
    if !got.paints_breeds(&meta.classes) {
        bail!("{}: its decoder is conditioned on the breeds {:?}, but {} paints {:?}", ae_path.display(), got.classes, path.display(), meta.classes);
    }
    Ok(Some((ae, got)))
}

/// Turns what the sampler returns into images in [-1, 1]: unchanged for a pixel generator,
/// through the autoencoder's decoder for a latent one.
pub struct Painter {
    decoder: Option<(Decoder<Cpu>, AeMeta)>,
}

impl Painter {
    /// For pixel generators.
    pub fn pixels() -> Self {
        Painter { decoder: None }
    }

    /// The painter of the generator saved at `path` (whose metadata is `meta`).
    pub fn for_generator(path: &Path, meta: &GeneratorMeta) -> Result<Self> {
        Ok(Painter { decoder: latent_autoencoder(path, meta)?.map(|(ae, m)| (ae.decoder, m)) })
    }

    /// Images in [-1, 1] of what was sampled for `breeds` (a breed-conditioned decoder uses them).
    pub fn paint(&self, x: Tensor<Cpu, 4>, breeds: &[usize]) -> Tensor<Cpu, 4> {
        match &self.decoder {
            Some((d, m)) => crate::autoencoder::decode(d, m, x, breeds),
            None => x,
        }
    }

    /// Paints what a generator sampled for `breeds`/`seeds`, or, with a `refiner`, lets the
    /// refiner redraw it (which paints through its own decoder).
    pub fn paint_refined(&self, refiner: Option<&Refiner>, x: Tensor<Cpu, 4>, breeds: &[usize], seeds: &[u64]) -> Tensor<Cpu, 4> {
        match refiner {
            Some(r) => r.refine(x, &|z| self.paint(z, breeds), breeds, seeds),
            None => self.paint(x, breeds),
        }
    }
}

/// The second stage of a cascade: a latent generator in a sharper latent space that redraws a
/// first generator's images. A refiner trained with `data.condition` is conditioned on the first
/// model's latent (it learns p(sharp latent | coarse latent, breed)); any latent generator can
/// also redraw from time `from` (SDEdit): image → its encoder → noised to `from` → its DiT over
/// [from, 1] → its decoder. The first model decides the layout; the refiner, the detail.
pub struct Refiner {
    /// The weights file it was loaded from.
    pub path: PathBuf,
    pub model: Dit<Cpu>,
    pub meta: GeneratorMeta,
    ae: Autoencoder<Cpu>,
    ae_meta: AeMeta,
    pub from: f32,
    pub opts: SampleOptions,
}

impl Refiner {
    /// The latent generator saved at `path` as a refiner for the generator whose metadata is
    /// `first`.
    pub fn load(path: &Path, first: &GeneratorMeta, from: f32, opts: SampleOptions) -> Result<Self> {
        let r = Self::load_for(path, first.latent.as_ref(), from, opts)?;
        if r.meta.classes != first.classes {
            bail!("refiner {}: its breeds {:?} differ from the generator's {:?}", path.display(), r.meta.classes, first.classes);
        }
        Ok(r)
    }

    /// The refiner at `path` for coarse latents of the autoencoder `coarse` (None: pixels).
    pub fn load_for(path: &Path, coarse: Option<&AeMeta>, from: f32, opts: SampleOptions) -> Result<Self> {
        let (model, meta) = load_generator(path)?;
        if !(0.0..1.0).contains(&from) {
            bail!("refiner start time must be in [0, 1), got {from}");
        }
        if let Some(c) = &meta.condition {
            if !coarse.is_some_and(|l| l.same_latents(c)) {
                bail!("refiner {} is conditioned on another latent space than the one the generator paints in", path.display());
            }
            if meta.dit.image_size % c.ae.latent_size() != 0 {
                bail!("refiner {}: its latent side {} is not a multiple of the coarse side {}", path.display(), meta.dit.image_size, c.ae.latent_size());
            }
        } else if from == 0.0 {
            bail!("refiner {} has no conditioning input, so it must start from a time above 0 (it would ignore the image)", path.display());
        }
        let Some((ae, ae_meta)) = latent_autoencoder(path, &meta)? else {
            bail!("refiner {}: a pixel generator cannot refine (it needs an autoencoder)", path.display());
        };
        Ok(Refiner { path: path.to_path_buf(), model, meta, ae, ae_meta, from, opts })
    }

    /// Refines `latent`, what the first generator sampled for `breeds`; `paint` turns it into
    /// the first stage's image in [-1, 1], needed only when starting above t = 0. Returns images
    /// in [-1, 1].
    pub fn refine(&self, latent: Tensor<Cpu, 4>, paint: &dyn Fn(Tensor<Cpu, 4>) -> Tensor<Cpu, 4>, breeds: &[usize], seeds: &[u64]) -> Tensor<Cpu, 4> {
        let start = (self.from > 0.0).then(|| (crate::autoencoder::encode_images(&self.ae.encoder, &self.ae_meta, paint(latent.clone())), self.from));
        let cond = self.meta.condition.as_ref().map(|_| {
            let f = self.meta.dit.image_size / latent.dims()[2];
            upsample_nearest(latent, f)
        });
        // Its own noise streams, not the first model's.
        let seeds: Vec<u64> = seeds.iter().map(|s| s ^ 0x5EED_0000_0000).collect();
        let z = sample_from(&self.model, None, &self.meta, breeds, &seeds, &self.opts, cond, start, &mut |_, _| {});
        crate::autoencoder::decode(&self.ae.decoder, &self.ae_meta, z, breeds)
    }
}

/// The safetensors metadata entry that holds a generator's `GeneratorMeta`.
const META_KEY: &str = "tinycats_generator";

pub fn save_generator(model: &Dit<Cpu>, meta: &GeneratorMeta, path: &Path) -> Result<()> {
    let bytes = crate::weights::to_bytes(model, &[(META_KEY, serde_json::to_string(meta)?)], "generator")?;
    tinycats_models::weights::write_sharded(path, &bytes, tinycats_models::weights::SHARD_LIMIT, &|p, b| tinycats_data::hashing::write_atomic(p, b))?;
    Ok(())
}

/// Reads the metadata of a saved generator (any shard layout).
pub fn read_generator_meta(bytes: &[u8], path: &Path) -> Result<GeneratorMeta> {
    crate::weights::read_meta(bytes, path, META_KEY, "generator")
}

pub fn load_generator(path: &Path) -> Result<(Dit<Cpu>, GeneratorMeta)> {
    let bytes = tinycats_models::weights::read_sharded(path).with_context(|| format!("cannot read generator {}", path.display()))?;
    let meta = read_generator_meta(&bytes, path)?;
    meta.dit.check().map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut model = Dit::<Cpu>::new(meta.dit, &Default::default());
    crate::weights::load_strict(&mut model, bytes, path, "generator")?;
    Ok((model, meta))
}

// ---- EMA -------------------------------------------------------------------------------------

/// Collects every float parameter, flattened, in visiting order.
struct Collect<B: Backend>(Vec<Tensor<B, 1>>);
impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, p: &Param<Tensor<B, D>>) {
        self.0.push(p.val().flatten::<1>(0, D - 1));
    }
}

/// ema ← decay·ema + (1 − decay)·src, parameter by parameter in the same visiting order.
struct Blend<B: Backend> {
    src: std::vec::IntoIter<Tensor<B, 1>>,
    decay: f64,
}
impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let src = self.src.next().expect("EMA and model have the same parameters");
        let d = self.decay;
        p.map(|t| {
            let shape = t.shape();
            t * d + src.reshape(shape) * (1.0 - d)
        })
    }
}

pub fn ema_update(ema: Dit<Cpu>, model: &Dit<Cpu>, decay: f64) -> Dit<Cpu> {
    let mut c = Collect(Vec::new());
    model.visit(&mut c);
    ema.map(&mut Blend { src: c.0.into_iter(), decay })
}

pub fn ema_decay(cfg: &EmaConfig, step: usize) -> f64 {
    cfg.decay.min((1 + step) as f64 / (cfg.warmup_steps + step).max(1) as f64)
}

// ---- objective -------------------------------------------------------------------------------

/// The random draws of one training step (noise, t, dropped labels), from a step-seeded RNG so a
/// resumed run repeats them exactly.
pub struct StepDraws {
    pub noise: Vec<f32>,
    pub t: Vec<f32>,
    pub labels: Vec<i64>,
}

pub fn draw_step(obj: &ObjectiveConfig, seed: u64, step: usize, labels: &[usize], per_image: usize, null: usize) -> StepDraws {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (step as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let n = labels.len();
    let noise = (0..n * per_image).map(|_| StandardNormal.sample(&mut rng)).collect();
    let t = (0..n)
        .map(|_| match obj.t_sampling.as_str() {
            "uniform" => rng.gen_range(0.0f32..1.0),
            _ => {
                let z: f64 = StandardNormal.sample(&mut rng);
                (1.0 / (1.0 + (-(obj.t_mean + obj.t_std * z)).exp())) as f32
            }
        })
        .collect();
    let labels = labels.iter().map(|&y| if rng.gen_bool(obj.label_dropout) { null as i64 } else { y as i64 }).collect();
    StepDraws { noise, t, labels }
}

/// Floor on 1 − t when turning x̂ into v̂ (x-prediction), so t → 1 does not blow up.
pub const X_PRED_MIN_GAP: f64 = 0.05;

/// Velocity from the network output for either target.
pub fn velocity<B: Backend>(out: Tensor<B, 4>, x_t: Tensor<B, 4>, t: Tensor<B, 1>, target: &str) -> Tensor<B, 4> {
    if target == "x" {
        let gap = (t.neg() + 1.0).clamp_min(X_PRED_MIN_GAP).reshape([-1, 1, 1, 1]);
        (out - x_t) / gap
    } else {
        out
    }
}

/// Flow-matching loss of one batch of images in [-1,1]; returns (loss, target velocity).
pub fn flow_loss<B: Backend>(model: &Dit<B>, x1: Tensor<B, 4>, draws: &StepDraws, target: &str) -> (Tensor<B, 1>, Tensor<B, 4>) {
    let (loss, v, _) = flow_loss_with_tokens(model, x1, None, draws, target, 0);
    (loss, v)
}

/// `flow_loss`, also returning the hidden tokens after `at` blocks (for REPA); `cond` is a
/// refiner's clean conditioning image, appended to x_t on the channel axis.
pub fn flow_loss_with_tokens<B: Backend>(model: &Dit<B>, x1: Tensor<B, 4>, cond: Option<Tensor<B, 4>>, draws: &StepDraws, target: &str, at: usize) -> (Tensor<B, 1>, Tensor<B, 4>, Tensor<B, 3>) {
    let dev = x1.device();
    let shape = x1.dims();
    let noise = Tensor::<B, 4>::from_data(TensorData::new(draws.noise.clone(), shape), &dev);
    let t = Tensor::<B, 1>::from_data(TensorData::new(draws.t.clone(), [shape[0]]), &dev);
    let y = Tensor::<B, 1, Int>::from_data(TensorData::new(draws.labels.clone(), [shape[0]]), &dev);
    let tb = t.clone().reshape([-1, 1, 1, 1]);
    let x_t = noise.clone() * (tb.clone().neg() + 1.0) + x1.clone() * tb;
    let v = x1 - noise;
    let input = match cond {
        Some(c) => Tensor::cat(vec![x_t.clone(), c], 1),
        None => x_t.clone(),
    };
    let (out, tokens) = model.forward_with_tokens(input, t.clone(), y, at);
    let v_hat = velocity(out, x_t, t, target);
    ((v_hat - v.clone()).powi_scalar(2).mean(), v, tokens)
}

/// Training image `row`'s coarse latent (mirrored or not) among a refiner's pre-encoded pair.
fn coarse_row<'a>(z: &'a [Vec<f32>; 2], cm: &AeMeta, flip: bool, row: usize) -> &'a [f32] {
    let per = cm.ae.latent_channels * cm.ae.latent_size() * cm.ae.latent_size();
    &z[flip as usize][row * per..][..per]
}

/// Coarse latents laid out `[N, C, s, s]` → a refiner's conditioning at the refined side.
fn coarse_condition<B: Backend>(rows: Vec<f32>, cm: &AeMeta, side: usize, dev: &B::Device) -> Tensor<B, 4> {
    let (c, s) = (cm.ae.latent_channels, cm.ae.latent_size());
    let n = rows.len() / (c * s * s);
    upsample_nearest(Tensor::from_data(TensorData::new(rows, [n, c, s, s]), dev), side / s)
}

/// Nearest-neighbour upsampling by an integer factor: a coarse latent laid over a finer grid.
pub fn upsample_nearest<B: Backend>(x: Tensor<B, 4>, f: usize) -> Tensor<B, 4> {
    if f == 1 {
        return x;
    }
    let [n, c, h, w] = x.dims();
    x.reshape([n, c, h, 1, w, 1]).repeat_dim(3, f).repeat_dim(5, f).reshape([n, c, h * f, w * f])
}

// ---- sampling --------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Solver {
    Euler,
    Heun,
}

/// How the conditional and unconditional predictions are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Guidance {
    /// Classifier-free guidance: `v = v_null + s·(v_cond − v_null)`.
    Cfg,
    /// Adaptive projected guidance (Sadat et al. 2024): per image, the part of the guidance
    /// update parallel to the conditional x̂ is dropped, because that part mostly raises
    /// saturation and contrast at high scales; only the orthogonal part is scaled.
    Apg,
}

#[derive(Debug, Clone)]
pub struct SampleOptions {
    pub steps: usize,
    pub cfg: f64,
    pub solver: Solver,
    pub guidance: Guidance,
    /// Guidance is applied only for t in [from, to] (Kynkäänniemi et al. 2024); elsewhere the
    /// conditional prediction alone is used, which also skips the null-class pass.
    pub interval: (f32, f32),
    /// Time-grid shift (Esser et al. 2024, in this t = 0 noise convention): step k starts at
    /// u / (s − (s − 1)·u) with u = k / steps. s > 1 puts more of the steps near the noise end,
    /// where layout and breed are decided; 1 is the uniform grid.
    pub shift: f32,
    /// Stochasticity η in [0, 1] (Euler only): each step lands on t' as x' = t'·x̂ +
    /// (1 − t')·(√(1 − η²)·ε̂ + η·z), with ε̂ the noise the prediction implies and z fresh
    /// noise seeded from the image's seed and the step. 0 is the deterministic ODE step; above
    /// it, part of the accumulated error is replaced by fresh noise at every step (the flow
    /// analogue of DDIM's η).
    pub eta: f32,
}

impl SampleOptions {
    /// Plain classifier-free guidance over the whole path.
    pub fn new(steps: usize, cfg: f64, solver: Solver) -> Self {
        Self { steps, cfg, solver, guidance: Guidance::Cfg, interval: (0.0, 1.0), shift: 1.0, eta: 0.0 }
    }
}

/// The `steps + 1` times of the sampling grid, from 0 (noise) to 1 (image), warped by `shift`
/// (see [`SampleOptions::shift`]); increasing for any shift > 0.
pub fn time_grid(steps: usize, shift: f32) -> Vec<f32> {
    let steps = steps.max(1);
    let du = 1.0 / steps as f32;
    (0..=steps)
        .map(|k| {
            let u = k as f32 * du;
            if k == steps { 1.0 } else { u / (shift - (shift - 1.0) * u) }
        })
        .collect()
}

/// Standard-normal noise from stream `stream` of the ChaCha8 generator seeded with `seed`.
fn noise_stream(seed: u64, stream: u64, per_image: usize) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream);
    (0..per_image).map(|_| StandardNormal.sample(&mut rng)).collect()
}

/// Initial noise for one image from its seed (the same seed gives the same image): stream 0,
/// the generator's default.
pub fn seed_noise(seed: u64, per_image: usize) -> Vec<f32> {
    noise_stream(seed, 0, per_image)
}

/// Fresh noise for step `step` of the image with `seed` (stochastic sampling): stream step + 1,
/// so every step draws its own noise, reproducible from the seed alone.
fn step_noise(seed: u64, step: usize, per_image: usize) -> Vec<f32> {
    noise_stream(seed, step as u64 + 1, per_image)
}

/// Velocity of one forward of `model` at time t, one row of `x` per label.
/// A refiner's conditioning image follows x on the channel axis.
fn predict<B: Backend>(model: &Dit<B>, x: Tensor<B, 4>, cond: Option<Tensor<B, 4>>, t: f32, labels: Vec<i64>, target: &str) -> Tensor<B, 4> {
    let dev = x.device();
    let m = labels.len();
    let tt = Tensor::<B, 1>::from_data(TensorData::new(vec![t; m], [m]), &dev);
    let yt = Tensor::<B, 1, Int>::from_data(TensorData::new(labels, [m]), &dev);
    let input = match cond {
        Some(c) => Tensor::cat(vec![x.clone(), c], 1),
        None => x.clone(),
    };
    velocity(model.forward(input, tt.clone(), yt), x, tt, target)
}

/// Guided velocity at (x, t) for labels `y`. Guidance moves away from a reference prediction:
/// the null class's (one batched forward over [cond; null]) or, with `guide`, a weaker model's
/// conditional one (autoguidance, Karras et al. 2024).
#[allow(clippy::too_many_arguments)]
fn guided<B: Backend>(model: &Dit<B>, guide: Option<(&Dit<B>, &str)>, x: &Tensor<B, 4>, cond: Option<&Tensor<B, 4>>, t: f32, y: &[i64], null: usize, opts: &SampleOptions, target: &str) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let n = y.len();
    // The tolerance keeps k·dt, which may round just past a typed bound, inside it.
    let cfg = if t >= opts.interval.0 - 1e-6 && t <= opts.interval.1 + 1e-6 { opts.cfg } else { 1.0 };
    let use_cfg = (cfg - 1.0).abs() > 1e-9;
    let v = if !use_cfg {
        predict(model, x.clone(), cond.cloned(), t, y.to_vec(), target)
    } else {
        let (c, u) = match guide {
            Some((bad, bad_target)) => (predict(model, x.clone(), cond.cloned(), t, y.to_vec(), target), predict(bad, x.clone(), cond.cloned(), t, y.to_vec(), bad_target)),
            None => {
                let labels = y.iter().copied().chain(std::iter::repeat(null as i64).take(n)).collect();
                let cond2 = cond.map(|c| Tensor::cat(vec![c.clone(), c.clone()], 0));
                let v = predict(model, Tensor::cat(vec![x.clone(), x.clone()], 0), cond2, t, labels, target);
                (v.clone().narrow(0, 0, n), v.narrow(0, n, n))
            }
        };
        match opts.guidance {
            Guidance::Cfg => u.clone() + (c - u) * cfg,
            Guidance::Apg => {
                // v = v_c + (s − 1)·Δ⊥, Δ = v_c − v_ref minus its part along x̂_c = x + (1 − t)·v_c
                // (the factor 1 − t cancels in the projection).
                let diff = c.clone() - u;
                let xc = x.clone() + c.clone() * (1.0 - t as f64);
                let dot = (diff.clone() * xc.clone()).sum_dim(3).sum_dim(2).sum_dim(1);
                let norm2 = (xc.clone() * xc.clone()).sum_dim(3).sum_dim(2).sum_dim(1).clamp_min(1e-12);
                c + (diff - xc * (dot / norm2)) * (cfg - 1.0)
            }
        }
    };
    // x̂ = x + (1 − t)·v: the current estimate of the final image (for previews).
    let x_hat = x.clone() + v.clone() * (1.0 - t as f64);
    (v, x_hat)
}

/// Integrates from noise (t = 0) to an image (t = 1). `preview(step, x̂)` sees the running
/// estimate of the final image after every step. Returns images in [-1, 1], NCHW.
pub fn sample<B: Backend>(
    model: &Dit<B>,
    meta: &GeneratorMeta,
    breeds: &[usize],
    seeds: &[u64],
    opts: &SampleOptions,
    preview: &mut dyn FnMut(usize, &Tensor<B, 4>),
) -> Tensor<B, 4> {
    sample_guided_by(model, None, meta, breeds, seeds, opts, preview)
}

/// [`sample`] with an optional weaker model `(guide, its target)` in place of the null class.
pub fn sample_guided_by<B: Backend>(
    model: &Dit<B>,
    guide: Option<(&Dit<B>, &str)>,
    meta: &GeneratorMeta,
    breeds: &[usize],
    seeds: &[u64],
    opts: &SampleOptions,
    preview: &mut dyn FnMut(usize, &Tensor<B, 4>),
) -> Tensor<B, 4> {
    sample_from(model, guide, meta, breeds, seeds, opts, None, None, preview)
}

/// [`sample_guided_by`], optionally starting part-way (SDEdit, Meng et al. 2022): with
/// `start = Some((x1, t0))` the path begins at `x_t0 = t0·x1 + (1 − t0)·ε` (ε from the seed's
/// stream 0) and the `opts.steps` steps cover [t0, 1] only, so the model keeps `x1`'s layout
/// and redraws the detail that noise at t0 hides. `cond` is a refiner's conditioning image.
#[allow(clippy::too_many_arguments)]
pub fn sample_from<B: Backend>(
    model: &Dit<B>,
    guide: Option<(&Dit<B>, &str)>,
    meta: &GeneratorMeta,
    breeds: &[usize],
    seeds: &[u64],
    opts: &SampleOptions,
    cond: Option<Tensor<B, 4>>,
    start: Option<(Tensor<B, 4>, f32)>,
    preview: &mut dyn FnMut(usize, &Tensor<B, 4>),
) -> Tensor<B, 4> {
    let d = meta.dit;
    let dev = Default::default();
    let per = d.channels * d.image_size * d.image_size;
    let n = breeds.len();
    let noise: Vec<f32> = seeds.iter().flat_map(|&s| seed_noise(s, per)).collect();
    let mut x = Tensor::<B, 4>::from_data(TensorData::new(noise, [n, d.channels, d.image_size, d.image_size]), &dev);
    let t0 = start.as_ref().map(|s| s.1.clamp(0.0, 1.0)).unwrap_or(0.0);
    if let Some((x1, _)) = start {
        x = x1 * t0 as f64 + x * (1.0 - t0 as f64);
    }
    let y: Vec<i64> = breeds.iter().map(|&b| b as i64).collect();
    let steps = opts.steps.max(1);
    let grid: Vec<f32> = time_grid(steps, opts.shift).into_iter().map(|g| t0 + (1.0 - t0) * g).collect();
    for k in 0..steps {
        // The uniform grid keeps the constant 1/steps step (and Heun's t + dt), as before the
        // shift existed, so earlier seeds reproduce bit for bit.
        let (t, dt, t_next) = if opts.shift == 1.0 && t0 == 0.0 {
            let dt = 1.0 / steps as f32;
            (grid[k], dt, grid[k] + dt)
        } else {
            (grid[k], grid[k + 1] - grid[k], grid[k + 1])
        };
        let (v, x_hat) = guided(model, guide, &x, cond.as_ref(), t, &y, meta.null_class(), opts, &meta.target);
        x = if opts.eta > 0.0 && k + 1 < steps {
            // x = (1 − t)·ε + t·x̂ and v = x̂ − ε, so ε̂ = x − t·v.
            let eps = x.clone() - v.clone() * t as f64;
            let z: Vec<f32> = seeds.iter().flat_map(|&s| step_noise(s, k, per)).collect();
            let z = Tensor::<B, 4>::from_data(TensorData::new(z, [n, d.channels, d.image_size, d.image_size]), &dev);
            let eta = opts.eta as f64;
            x_hat.clone() * t_next as f64 + (eps * (1.0 - eta * eta).sqrt() + z * eta) * (1.0 - t_next as f64)
        } else if opts.solver == Solver::Heun && k + 1 < steps {
            let next = x.clone() + v.clone() * dt as f64;
            let (v2, _) = guided(model, guide, &next, cond.as_ref(), t_next, &y, meta.null_class(), opts, &meta.target);
            x + (v + v2) * (dt as f64 / 2.0)
        } else {
            x + v * dt as f64
        };
        preview(k, &if k + 1 == steps { x.clone() } else { x_hat });
    }
    x
}

/// [-1,1] NCHW → one RGB8 HWC buffer per image.
pub fn to_rgb8<B: Backend>(x: Tensor<B, 4>) -> Result<Vec<Vec<u8>>> {
    let [n, c, h, w] = x.dims();
    let v: Vec<f32> = x.into_data().to_vec().map_err(|e| anyhow!("{e:?}"))?;
    Ok((0..n)
        .map(|i| {
            let mut out = vec![0u8; h * w * 3];
            for y in 0..h {
                for xx in 0..w {
                    for ch in 0..3 {
                        let src = if c == 1 { 0 } else { ch };
                        let val = v[((i * c + src) * h + y) * w + xx];
                        out[(y * w + xx) * 3 + ch] = (((val + 1.0) * 0.5).clamp(0.0, 1.0) * 255.0).round() as u8;
                    }
                }
            }
            out
        })
        .collect())
}

/// Images side by side in a grid of `cols` columns with a 2-px gap.
pub fn grid_png(images: &[Vec<u8>], side: usize, cols: usize, path: &Path) -> Result<()> {
    let cols = cols.max(1).min(images.len().max(1));
    let rows = images.len().div_ceil(cols);
    let gap = 2;
    let (w, h) = (cols * (side + gap) + gap, rows * (side + gap) + gap);
    let mut img = image::RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
    for (k, im) in images.iter().enumerate() {
        let (ox, oy) = (gap + (k % cols) * (side + gap), gap + (k / cols) * (side + gap));
        for y in 0..side {
            for x in 0..side {
                let p = &im[(y * side + x) * 3..][..3];
                img.put_pixel((ox + x) as u32, (oy + y) as u32, image::Rgb([p[0], p[1], p[2]]));
            }
        }
    }
    write_png(&img, path)
}

pub fn write_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    tinycats_data::hashing::write_atomic(path, &bytes)
}

// ---- training --------------------------------------------------------------------------------

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GenState {
    step: usize,
    losses: Vec<(usize, f64)>,
    /// REPA: mean cosine similarity of projected tokens and targets, per logging window.
    #[serde(default)]
    repa_cos: Vec<(usize, f64)>,
    train_seconds: f64,
    images_seen: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenResult {
    pub run_dir: PathBuf,
    pub steps: usize,
    pub losses: Vec<(usize, f64)>,
    pub repa_cos: Vec<(usize, f64)>,
    pub train_seconds: f64,
    pub images_per_s: f64,
    pub ema_weights: PathBuf,
    pub raw_weights: PathBuf,
    pub meta: GeneratorMeta,
    pub params: usize,
    pub gflops_per_image: f64,
}

#[derive(Debug, Clone, Default)]
pub struct GenOptions {
    pub resume: bool,
    pub stop_after_steps: Option<usize>,
    /// Start a new run from these weights (same network shape), e.g. to switch the objective
    /// without relearning the trunk. Ignored with `resume`.
    pub init_from: Option<PathBuf>,
}

type Rec = burn::record::NamedMpkBytesRecorder<burn::record::FullPrecisionSettings>;

/// The cats the generator learns: (cache indices, class names, cache label → generator label).
pub fn training_set(cfg: &GeneratorConfig, cache: &Cache) -> Result<(Vec<usize>, Vec<String>, Vec<Option<usize>>)> {
    let classes: Vec<String> = cache.index.classes.iter().filter(|c| !cfg.data.exclude.contains(c)).cloned().collect();
    if classes.is_empty() {
        bail!("config key `data.exclude` leaves no classes in {}", cfg.data.cache.display());
    }
    let map: Vec<Option<usize>> = cache.index.classes.iter().map(|c| classes.iter().position(|k| k == c)).collect();
    let splits: Vec<Split> = cfg.data.splits.iter().map(|s| Split::ALL.into_iter().find(|x| x.name() == s).expect("validated")).collect();
    let idx: Vec<usize> = (0..cache.len()).filter(|&i| splits.contains(&cache.index.entries[i].split) && map[cache.index.entries[i].label].is_some()).collect();
    if idx.is_empty() {
        bail!("{}: no training images left after `data.exclude` and `data.splits`", cfg.data.cache.display());
    }
    Ok((idx, classes, map))
}

pub fn train_generator(cfg: &GeneratorConfig, run_dir: &Path, sinks: &mut Sinks, opts: &GenOptions) -> Result<GenResult> {
    let cache = Cache::open(&cfg.data.cache)?;
    let (idx, classes, map) = training_set(cfg, &cache)?;
    let mut dit = cfg.dit(classes.len()).map_err(|e| anyhow!("{e}"))?;
    // A refiner's conditioning autoencoder; like the autoencoder, a resumed run keeps its own copy.
    let cond_ae = if cfg.data.condition.as_os_str().is_empty() {
        None
    } else {
        let kept = run_dir.join(CONDITION_FILE);
        let src = if opts.resume && kept.is_file() { kept } else { cfg.data.condition.clone() };
        let (cae, cm) = load_autoencoder(&src).with_context(|| format!("config key `data.condition` ({})", src.display()))?;
        Some((cae, cm, src))
    };
    // Latent space: the DiT takes the autoencoder's latent shape, and every training image is
    // encoded once, in both orientations (a mirrored image's latent is not the mirrored latent).
    let latent = if cfg.data.autoencoder.as_os_str().is_empty() {
        None
    } else {
        if cfg.repa.enabled() {
            bail!("config keys `repa.weight` and `data.autoencoder`: REPA aligns pixel-space tokens and cannot be used with a latent generator");
        }
        // A resumed run keeps the autoencoder it started with (its copy in the run folder), even
        // if the file the config names was retrained since.
        let kept = run_dir.join(AUTOENCODER_FILE);
        let src = if opts.resume && kept.is_file() { kept } else { cfg.data.autoencoder.clone() };
        let (ae, am) = load_autoencoder(&src).with_context(|| format!("config key `data.autoencoder` ({})", src.display()))?;
        if cache.size() as usize != am.ae.image_size {
            bail!("config key `data.cache`: images are {} px but the autoencoder {} takes {} px", cache.size(), cfg.data.autoencoder.display(), am.ae.image_size);
        }
        if !am.paints_breeds(&classes) {
            bail!("config key `data.autoencoder`: {} has a decoder conditioned on the breeds {:?}, but this generator's data gives {:?}", src.display(), am.classes, classes);
        }
        dit.image_size = am.ae.latent_size();
        dit.channels = am.ae.latent_channels;
        if let Some((_, cm, _)) = &cond_ae {
            dit.cond_channels = cm.ae.latent_channels;
        }
        dit.check().map_err(|e| anyhow!("model.patch with the latent {0}×{0}×{1}: {e}", dit.image_size, dit.channels))?;
        Some((ae, am, src))
    };
    if latent.is_none() && cache.size() as usize != dit.image_size {
        bail!("config key `data.cache`: images are {} px but model.preset `{}` is {} px; prepare the data at {} (tinycats data prepare --size {})", cache.size(), cfg.model.preset, dit.image_size, dit.image_size, dit.image_size);
    }
    let ckpt = run_dir.join("checkpoints");
    std::fs::create_dir_all(&ckpt).with_context(|| format!("cannot create run folder {}", run_dir.display()))?;
    let (latent_meta, latents, painter) = match latent {
        Some((ae, am, src)) => {
            let copy = run_dir.join(AUTOENCODER_FILE);
            if std::fs::canonicalize(&src).ok() != std::fs::canonicalize(&copy).ok() {
                let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
                tinycats_data::hashing::write_atomic(&copy, &bytes)?;
            }
            let z = [crate::autoencoder::encode(&ae, &am, &cache, &idx, false)?, crate::autoencoder::encode(&ae, &am, &cache, &idx, true)?];
            // Cache index → row of `z`.
            let mut row = vec![usize::MAX; cache.len()];
            for (k, &i) in idx.iter().enumerate() {
                row[i] = k;
            }
            (Some(am.clone()), Some((z, row)), Painter { decoder: Some((ae.decoder, am)) })
        }
        None => (None, None, Painter::pixels()),
    };
    // A refiner's conditioning: the coarse autoencoder's latents of the same images (both
    // orientations), upsampled to the DiT's latent side when a batch is built.
    let condition = match cond_ae {
        None => None,
        Some((cae, cm, src)) => {
            if cm.ae.image_size != cache.size() as usize {
                bail!("config key `data.condition`: {} takes {} px images but the cache holds {} px", src.display(), cm.ae.image_size, cache.size());
            }
            let side = cm.ae.latent_size();
            if side == 0 || dit.image_size % side != 0 || side > dit.image_size {
                bail!("config key `data.condition`: its latent side {side} must divide the refined latent side {}", dit.image_size);
            }
            let kept = run_dir.join(CONDITION_FILE);
            if std::fs::canonicalize(&src).ok() != std::fs::canonicalize(&kept).ok() {
                let bytes = std::fs::read(&src).with_context(|| format!("cannot read {}", src.display()))?;
                tinycats_data::hashing::write_atomic(&kept, &bytes)?;
            }
            let z = [crate::autoencoder::encode(&cae, &cm, &cache, &idx, false)?, crate::autoencoder::encode(&cae, &cm, &cache, &idx, true)?];
            Some((z, cm))
        }
    };
    tinycats_data::hashing::write_atomic(&run_dir.join("config.toml"), toml::to_string(cfg)?.as_bytes())?;
    let cfg_json = serde_json::to_value(cfg)?;
    sinks.emit(|s| s.on_start(&cfg_json));

    let dev = Default::default();
    // REPA targets first: building Lite0 draws from the backend RNG, and burn initialises
    // parameters lazily, so doing it after seeding would make a run depend on whether the
    // targets were computed or loaded from the cache.
    let targets = if cfg.repa.enabled() {
        Some(crate::repa::Targets::load_or_compute(&cache, &idx, dit.grid(), &cfg.repa.weights, &mut |_, _| {})?)
    } else {
        None
    };
    <CpuTrain as Backend>::seed(&dev, cfg.train.seed);
    let mut model = Dit::<CpuTrain>::new(dit, &dev);
    let mut ocfg = AdamWConfig::new().with_beta_1(cfg.optim.beta1 as f32).with_beta_2(cfg.optim.beta2 as f32).with_weight_decay(cfg.optim.weight_decay as f32);
    if cfg.train.grad_clip > 0.0 {
        ocfg = ocfg.with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.train.grad_clip as f32)));
    }
    let mut optim = ocfg.init::<CpuTrain, Dit<CpuTrain>>();
    if let (Some(p), false) = (&opts.init_from, opts.resume) {
        let bytes = tinycats_models::weights::read_sharded(p).with_context(|| format!("--init-from: cannot read {}", p.display()))?;
        let from = read_generator_meta(&bytes, p)?;
        if from.dit != dit {
            bail!("--init-from {}: its network {:?} differs from this config's {:?}", p.display(), from.dit, dit);
        }
        let r = model.load_from(&mut SafetensorsStore::from_bytes(Some(bytes))).map_err(|e| anyhow!("--init-from {}: {e:?}", p.display()))?;
        if !r.errors.is_empty() || !r.missing.is_empty() {
            bail!("--init-from {}: weights do not match (missing {:?}, errors {:?})", p.display(), r.missing, r.errors);
        }
    }
    let mut ema = model.valid();
    let mut st = GenState { step: 0, losses: vec![], repa_cos: vec![], train_seconds: 0.0, images_seen: 0 };
    let repa_on = targets.is_some();
    let mut proj = crate::repa::Projector::<CpuTrain>::new(dit.hidden, cfg.repa.hidden, crate::repa::FEATURE_DIM, &dev);
    let mut popt = ocfg.init::<CpuTrain, crate::repa::Projector<CpuTrain>>();
    if opts.resume {
        use burn::record::Recorder;
        let sp = ckpt.join("state.json");
        st = serde_json::from_slice(&std::fs::read(&sp).with_context(|| format!("--resume: no checkpoint in {} ({} missing)", run_dir.display(), sp.display()))?)
            .with_context(|| format!("{} is damaged", sp.display()))?;
        let read = |ext: &str| tinycats_models::weights::read_chunked(&ckpt.join(format!("resume-{:07}.{ext}.mpk", st.step))).context("--resume");
        model = model.load_record(Recorder::<CpuTrain>::load(&Rec::default(), read("model")?, &dev).map_err(|e| anyhow!("--resume: model: {e:?}"))?);
        optim = optim.load_record(Recorder::<CpuTrain>::load(&Rec::default(), read("optim")?, &dev).map_err(|e| anyhow!("--resume: optimizer: {e:?}"))?);
        ema = ema.load_record(Recorder::<Cpu>::load(&Rec::default(), read("ema")?, &dev).map_err(|e| anyhow!("--resume: EMA: {e:?}"))?);
        if repa_on {
            proj = proj.load_record(Recorder::<CpuTrain>::load(&Rec::default(), read("proj")?, &dev).map_err(|e| anyhow!("--resume: REPA projector: {e:?}"))?);
            popt = popt.load_record(Recorder::<CpuTrain>::load(&Rec::default(), read("projoptim")?, &dev).map_err(|e| anyhow!("--resume: REPA optimizer: {e:?}"))?);
        }
    }
    // Latent runs pick the orientation themselves (below), from the pre-encoded pair.
    let aug = Augment { random_resized_crop: false, hflip: cfg.objective.hflip && latents.is_none(), color_jitter: 0.0, ..Augment::default() };
    let bs = cfg.train.batch_size;
    // Row (in `idx` order) of each class's first training image: a refiner's preview input.
    let preview_rows: Vec<Option<usize>> = (0..classes.len()).map(|c| idx.iter().position(|&i| map[cache.index.entries[i].label] == Some(c))).collect();
    let loader = Loader::new(&cache, idx, LoaderConfig { batch_size: bs, shuffle: true, drop_last: true, seed: cfg.train.seed, augment: aug, ..Default::default() });
    let per_epoch = loader.batches_per_epoch().max(1);
    let per_image = dit.channels * dit.image_size * dit.image_size;
    let meta = |step: usize, is_ema: bool| GeneratorMeta { dit, classes: classes.clone(), target: cfg.objective.target.clone(), step, ema: is_ema, latent: latent_meta.clone(), condition: condition.as_ref().map(|c| c.1.clone()) };
    let (ema_path, raw_path) = (run_dir.join("ema.safetensors"), run_dir.join("raw.safetensors"));
    let end = opts.stop_after_steps.map(|k| (st.step + k).min(cfg.train.steps)).unwrap_or(cfg.train.steps);
    let t0 = Instant::now();
    let t_before = st.train_seconds;
    let mut window = (0f64, 0usize);
    let mut cos_window = 0f64;
    let sched = ScheduleConfig { ..cfg.schedule.clone() };
    while st.step < end {
        let step = st.step;
        let lr = lr_at(&sched, cfg.optim.lr, step, cfg.train.steps, 1, 1.0);
        let mut accum = GradientsAccumulator::<Dit<CpuTrain>>::new();
        let mut paccum = GradientsAccumulator::<crate::repa::Projector<CpuTrain>>::new();
        let mut loss_v = 0f64;
        for a in 0..cfg.train.accum_steps {
            let micro = step * cfg.train.accum_steps + a;
            let b = loader.batch((micro / per_epoch) as u64, micro % per_epoch);
            let labels: Vec<usize> = b.labels.iter().map(|&l| map[l].expect("filtered")).collect();
            let draws = draw_step(&cfg.objective, cfg.train.seed, micro, &labels, per_image, classes.len());
            // REPA targets before the pixels move into the tensor (flip detection reads them).
            let repa_targets = targets.as_ref().map(|tg| tg.batch(&cache, &b.indices, &b.images)).transpose()?;
            let shape = [labels.len(), dit.channels, dit.image_size, dit.image_size];
            let (x1, cond) = match &latents {
                None => (Tensor::<CpuTrain, 4>::from_data(TensorData::new(b.images, shape), &dev) * 2.0 - 1.0, None),
                Some((z, row)) => {
                    // Its own stream, so the noise, t and label draws match a pixel run's.
                    let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed ^ 0x5EED_F11D ^ (micro as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                    let mut x = Vec::with_capacity(labels.len() * per_image);
                    let mut c = Vec::new();
                    for &i in &b.indices {
                        let flip = cfg.objective.hflip && rng.gen_bool(0.5);
                        x.extend_from_slice(&z[flip as usize][row[i] * per_image..][..per_image]);
                        if let Some((cz, cm)) = &condition {
                            c.extend_from_slice(coarse_row(cz, cm, flip, row[i]));
                        }
                    }
                    let cond = condition.as_ref().map(|(_, cm)| coarse_condition::<CpuTrain>(c, cm, dit.image_size, &dev));
                    (Tensor::<CpuTrain, 4>::from_data(TensorData::new(x, shape), &dev), cond)
                }
            };
            let (loss, _, tokens) = flow_loss_with_tokens(&model, x1, cond, &draws, &cfg.objective.target, if repa_on { cfg.repa.block } else { 0 });
            let lv: f32 = loss.clone().into_scalar().elem();
            if !lv.is_finite() {
                bail!("training diverged at step {step}: loss is {lv} (lower optim.lr or raise train.grad_clip)");
            }
            loss_v += lv as f64 / cfg.train.accum_steps as f64;
            let total = match repa_targets {
                Some(tt) => {
                    let rows = tt.len() / crate::repa::FEATURE_DIM;
                    let rl = crate::repa::repa_loss(&proj, tokens, Tensor::from_data(TensorData::new(tt, [rows, crate::repa::FEATURE_DIM]), &dev));
                    let rv: f32 = rl.clone().into_scalar().elem();
                    cos_window -= rv as f64 / cfg.train.accum_steps as f64;
                    loss + rl * cfg.repa.weight
                }
                None => loss,
            };
            let mut grads = total.backward();
            accum.accumulate(&model, GradientsParams::from_module(&mut grads, &model));
            if repa_on {
                paccum.accumulate(&proj, GradientsParams::from_module(&mut grads, &proj));
            }
            st.images_seen += labels.len();
        }
        model = optim.step(lr, model, accum.grads());
        if repa_on {
            proj = popt.step(lr, proj, paccum.grads());
        }
        ema = ema_update(ema, &model.valid(), ema_decay(&cfg.ema, step));
        st.step += 1;
        window = (window.0 + loss_v, window.1 + 1);
        if st.step % cfg.train.log_every == 0 || st.step == end {
            let l = window.0 / window.1.max(1) as f64;
            st.losses.push((st.step, l));
            if repa_on {
                st.repa_cos.push((st.step, cos_window / window.1.max(1) as f64));
            }
            cos_window = 0.0;
            let ev = StepEvent { epoch: step / per_epoch, step: st.step, loss: l, lr };
            sinks.emit(|s| s.on_step(&ev));
            window = (0.0, 0);
        }
        let last = st.step == end;
        if st.step % cfg.train.checkpoint_every == 0 || last {
            use burn::record::Recorder;
            st.train_seconds = t_before + t0.elapsed().as_secs_f64();
            // Resume records are split into ≤ 16 MiB parts like the weights.
            let w = |ext: &str, bytes: Vec<u8>| {
                tinycats_models::weights::write_chunked(&ckpt.join(format!("resume-{:07}.{ext}.mpk", st.step)), &bytes, tinycats_models::weights::SHARD_LIMIT, &|p, b| tinycats_data::hashing::write_atomic(p, b))
            };
            w("model", Recorder::<CpuTrain>::record(&Rec::default(), model.clone().into_record(), ()).map_err(|e| anyhow!("{e:?}"))?)?;
            w("optim", Recorder::<CpuTrain>::record(&Rec::default(), optim.to_record(), ()).map_err(|e| anyhow!("{e:?}"))?)?;
            w("ema", Recorder::<Cpu>::record(&Rec::default(), ema.clone().into_record(), ()).map_err(|e| anyhow!("{e:?}"))?)?;
            if repa_on {
                w("proj", Recorder::<CpuTrain>::record(&Rec::default(), proj.clone().into_record(), ()).map_err(|e| anyhow!("{e:?}"))?)?;
                w("projoptim", Recorder::<CpuTrain>::record(&Rec::default(), popt.to_record(), ()).map_err(|e| anyhow!("{e:?}"))?)?;
            }
            // state.json last: it names the step, so a crash before it leaves the previous one valid.
            let prev: Option<usize> = serde_json::from_slice::<GenState>(&std::fs::read(ckpt.join("state.json")).unwrap_or_default()).ok().map(|s| s.step);
            tinycats_data::hashing::write_atomic(&ckpt.join("state.json"), &serde_json::to_vec(&st)?)?;
            if let Some(p) = prev.filter(|&p| p != st.step) {
                for ext in ["model", "optim", "ema", "proj", "projoptim"] {
                    tinycats_models::weights::remove_chunked(&ckpt.join(format!("resume-{p:07}.{ext}.mpk")));
                }
            }
            save_generator(&ema, &meta(st.step, true), &ema_path)?;
            save_generator(&model.valid(), &meta(st.step, false), &raw_path)?;
            sinks.emit(|s| s.on_checkpoint(&ema_path, false));
        }
        if cfg.predictions.enabled && (st.step % cfg.predictions.every == 0 || last) {
            let m = meta(st.step, true);
            let pairs: Vec<(usize, u64)> = cfg.predictions.seeds.iter().flat_map(|&s| (0..classes.len()).map(move |b| (b, s))).collect();
            let (breeds, seeds): (Vec<usize>, Vec<u64>) = pairs.iter().copied().unzip();
            let t_sample = Instant::now();
            // A refiner's previews refine the coarse latent of each breed's first training image.
            let pcond = condition.as_ref().map(|(cz, cm)| {
                let empty = vec![0.0; cm.ae.latent_channels * cm.ae.latent_size() * cm.ae.latent_size()];
                let c: Vec<f32> = breeds.iter().flat_map(|&b| preview_rows[b].map_or(&empty[..], |k| coarse_row(cz, cm, false, k)).to_vec()).collect();
                coarse_condition::<Cpu>(c, cm, dit.image_size, &dev)
            });
            let opts = SampleOptions::new(cfg.predictions.sample_steps, cfg.predictions.cfg, Solver::Euler);
            let x = painter.paint(sample_from(&ema, None, &m, &breeds, &seeds, &opts, pcond, None, &mut |_, _| {}), &breeds);
            let latency_ms = 1e3 * t_sample.elapsed().as_secs_f64() / pairs.len().max(1) as f64;
            let imgs = to_rgb8(x)?;
            let path = run_dir.join(format!("samples/step-{:07}.png", st.step));
            std::fs::create_dir_all(path.parent().expect("has parent"))?;
            let side = m.image_size();
            grid_png(&imgs, side, classes.len(), &path)?;
            // One thumbnail per (breed, seed) pair, so each pair can be followed across steps.
            let thumbs = format!("samples/step-{:07}", st.step);
            std::fs::create_dir_all(run_dir.join(&thumbs))?;
            let mut preds = Vec::with_capacity(pairs.len());
            for (k, &(b, s)) in pairs.iter().enumerate() {
                let rel = format!("{thumbs}/{}-seed{s}.png", classes[b]);
                grid_png(&imgs[k..k + 1], side, 1, &run_dir.join(&rel))?;
                preds.push(crate::sink::Prediction { epoch: st.step, step: st.step, sample_id: format!("{}#seed{s}", classes[b]), label: b, top: vec![], image: Some(rel), latency_ms });
            }
            sinks.emit(|s| s.on_predictions(&preds));
        }
    }
    st.train_seconds = t_before + t0.elapsed().as_secs_f64();
    let (params, flops) = dit.params_and_flops();
    let r = GenResult {
        run_dir: run_dir.to_path_buf(),
        steps: st.step,
        losses: st.losses.clone(),
        repa_cos: st.repa_cos.clone(),
        train_seconds: st.train_seconds,
        images_per_s: st.images_seen as f64 / st.train_seconds.max(1e-9),
        ema_weights: ema_path,
        raw_weights: raw_path,
        meta: meta(st.step, true),
        params,
        gflops_per_image: flops as f64 / 1e9,
    };
    tinycats_data::hashing::write_atomic(&run_dir.join("result.json"), &serde_json::to_vec_pretty(&r)?)?;
    Ok(r)
}
