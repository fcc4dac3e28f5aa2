//! The generator's commands: `train generator` (flow-matching DiT on the shared engine pieces),
//! `generate` (sample PNGs of a breed) and `eval-gen` (FID-like score and breed agreement).

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tinycats_models::Cpu;
use tinycats_train::generator::{self, GenOptions, GeneratorConfig, Guidance, SampleOptions, Solver};
use tinycats_train::sink::{JsonlSink, Sink, Sinks, StepEvent};

pub const SHIPPED_GENERATOR: &str = "models/generator/generator.safetensors";

#[derive(Args)]
pub struct GeneratorArgs {
    #[command(flatten)]
    run: crate::train_cmd::RunArgs,
    #[command(flatten)]
    tracking: crate::train_cmd::TrackingArgs,
    /// Continue the run in --run-dir from its last checkpoint (its saved config is used).
    #[arg(long, requires = "run_dir")]
    resume: bool,
    /// Stop after this many optimizer steps in this call (continue later with --resume).
    #[arg(long)]
    steps_this_run: Option<usize>,
    /// Initialise a new run from these generator weights (same network shape).
    #[arg(long, conflicts_with = "resume")]
    init_from: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Loss lines on stderr with throughput and an ETA.
struct StepConsole {
    total: usize,
    /// Time and step of the previous report (the rate is measured between reports).
    last: (Instant, Option<usize>),
}

impl Sink for StepConsole {
    fn on_step(&mut self, e: &StepEvent) -> Result<()> {
        let (t, prev) = self.last;
        let per = prev.map(|p| t.elapsed().as_secs_f64() / (e.step - p).max(1) as f64).unwrap_or(0.0);
        self.last = (Instant::now(), Some(e.step));
        eprintln!("step {:>6}/{} loss {:.4} lr {:.2e} | {:.2} s/step eta {:.0}s", e.step, self.total, e.loss, e.lr, per, per * self.total.saturating_sub(e.step) as f64);
        Ok(())
    }
}

pub fn train(a: GeneratorArgs) -> Result<ExitCode> {
    let (text, source, run_dir) = a.run.setup("generator", a.resume)?;
    let cfg = GeneratorConfig::load(&text, &source, &a.run.set)?;
    std::fs::create_dir_all(&run_dir).with_context(|| format!("cannot create {}", run_dir.display()))?;
    if !a.resume {
        let cache = tinycats_data::cache::Cache::open(&cfg.data.cache)?;
        let run_meta = serde_json::json!({"kind": "generator", "git_commit": crate::train_cmd::git_commit(), "split_hash": cache.index.split_hash(), "config_source": source, "overrides": a.run.set, "init_from": a.init_from});
        tinycats_data::hashing::write_atomic(&run_dir.join("run.json"), &serde_json::to_vec_pretty(&run_meta)?)?;
    }
    if let Ok(mut d) = cfg.dit(12) {
        // A latent generator's DiT takes the autoencoder's latent shape (train_generator checks it).
        let space = if cfg.data.autoencoder.as_os_str().is_empty() {
            "px".to_string()
        } else {
            match tinycats_train::autoencoder::read_autoencoder_meta(&cfg.data.autoencoder) {
                Ok(m) => {
                    (d.image_size, d.channels) = (m.ae.latent_size(), m.ae.latent_channels);
                    format!("latent ×{} channels", d.channels)
                }
                Err(_) => "latent".to_string(),
            }
        };
        let (params, flops) = d.params_and_flops();
        eprintln!("DiT {}: {} {space}, patch {} ({} tokens), hidden {}, depth {}, heads {}: {:.2} M params, {:.3} GFLOP per image forward", cfg.model.preset, d.image_size, d.patch, d.tokens(), d.hidden, d.depth, d.heads, params as f64 / 1e6, flops as f64 / 1e9);
    }
    let mut sinks = Sinks::default();
    sinks.sinks.push(Box::new(StepConsole { total: cfg.train.steps, last: (Instant::now(), None) }));
    sinks.sinks.push(Box::new(JsonlSink { path: run_dir.join("events.jsonl") }));
    let store = crate::runs_cmd::store_path(a.tracking.store.as_deref());
    let tracking = crate::runs_cmd::start_tracking(&store, "generator", &run_dir, &serde_json::to_value(&cfg)?, &crate::train_cmd::git_commit(), None, a.tracking.mlflow_uri.as_deref(), &mut sinks)?;
    let res = generator::train_generator(&cfg, &run_dir, &mut sinks, &GenOptions { resume: a.resume, stop_after_steps: a.steps_this_run, init_from: a.init_from.clone() });
    tracking.finish(res.is_ok())?;
    let r = res?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let last = r.losses.last().map(|l| l.1).unwrap_or(f64::NAN);
        println!("{} steps, last loss {last:.4}, {:.1} img/s; EMA weights {}", r.steps, r.images_per_s, r.ema_weights.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct AutoencoderArgs {
    /// The weights are the run folder's autoencoder.safetensors.
    #[command(flatten)]
    run: crate::train_cmd::RunArgs,
    #[arg(long)]
    json: bool,
}

pub fn train_autoencoder(a: AutoencoderArgs) -> Result<ExitCode> {
    let (text, source, run_dir) = a.run.setup("autoencoder", false)?;
    let cfg = tinycats_train::autoencoder::AeTrainConfig::load(&text, &source, &a.run.set)?;
    let mut sinks = Sinks::default();
    sinks.sinks.push(Box::new(StepConsole { total: cfg.train.steps, last: (Instant::now(), None) }));
    sinks.sinks.push(Box::new(JsonlSink { path: run_dir.join("events.jsonl") }));
    let r = tinycats_train::autoencoder::train_autoencoder(&cfg, &run_dir, &mut sinks)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        let last = r.losses.last().map(|l| l.1).unwrap_or(f64::NAN);
        if let Some((_, p)) = r.perceptual_losses.last() {
            println!("last perceptual distance {p:.4}");
        }
        if let Some(c) = r.adversarial_losses.last() {
            println!("critic, last window: score gap decoded − photo {:.3}, hinge loss {:.3} (2 = cannot tell them apart), adversarial scale {:.4}", c.gap, c.hinge, c.scale);
        }
        println!(
            "{} steps, last L1 {last:.4}, {:.1} img/s; held-out reconstruction: L1 {:.4}, PSNR {:.2} dB; decoder {:.2} M params, {:.3} GFLOP per image; weights {}",
            r.steps,
            r.images_per_s,
            r.meta.held_out_l1,
            r.meta.held_out_psnr,
            r.decoder_params as f64 / 1e6,
            r.decoder_gflops,
            r.weights.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Args)]
pub struct EvalAeArgs {
    /// Autoencoder weights (a run's or models/autoencoder's autoencoder.safetensors).
    #[arg(long)]
    autoencoder: PathBuf,
    /// Prepared images at the autoencoder's size; its cats of the test split are reconstructed.
    #[arg(long, default_value = DEFAULT_GEN_DATA)]
    data: PathBuf,
    /// PNG: 8 test photos (top row) over their reconstructions.
    #[arg(long, default_value = "reconstructions.png")]
    out: PathBuf,
    /// Also classify the photos and their reconstructions with this classifier folder (e.g.
    /// models/classifier), through eval-gen's path: breed agreement on the reconstructions is the
    /// most a generator painting through this decoder can score.
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// With --refine-model (a refiner conditioned on this autoencoder's latents), the photos'
    /// latents are refined instead of decoded: what the cascade can show at best.
    #[command(flatten)]
    refine: RefineArgs,
    #[arg(long)]
    json: bool,
}

/// The second stage of a cascade (`data.condition` in a generator config trains one).
#[derive(Args)]
pub struct RefineArgs {
    /// A refiner: a latent generator that redraws each image in a sharper latent space,
    /// conditioned on the first stage's latent (or, without conditioning, from --refine-from).
    #[arg(long)]
    refine_model: Option<PathBuf>,
    /// Time the refiner starts from (0 = noise, 1 = the image): above 0 it starts from the first
    /// stage's image re-encoded and noised to that time, which keeps more of it.
    #[arg(long, default_value_t = 0.0)]
    refine_from: f32,
    /// Refiner steps over [--refine-from, 1].
    #[arg(long, default_value_t = 10)]
    refine_steps: usize,
    /// Refiner guidance scale (every step).
    #[arg(long, default_value_t = 3.0)]
    refine_cfg: f64,
}

impl RefineArgs {
    fn options(&self) -> Result<SampleOptions> {
        if self.refine_steps == 0 || self.refine_steps > 1000 {
            bail!("--refine-steps must be 1..=1000 (got {})", self.refine_steps);
        }
        if !(0.0..=50.0).contains(&self.refine_cfg) {
            bail!("--refine-cfg must be in 0..=50 (got {})", self.refine_cfg);
        }
        Ok(SampleOptions::new(self.refine_steps, self.refine_cfg, Solver::Euler))
    }

    /// The refiner for the generator whose metadata is `first`, if one was named.
    fn load(&self, first: &generator::GeneratorMeta) -> Result<Option<generator::Refiner>> {
        self.refine_model.as_deref().map(|p| generator::Refiner::load(p, first, self.refine_from, self.options()?)).transpose()
    }

    /// The refiner for latents of the autoencoder `coarse`, if one was named.
    fn load_for(&self, coarse: &tinycats_train::autoencoder::AeMeta) -> Result<Option<generator::Refiner>> {
        self.refine_model.as_deref().map(|p| generator::Refiner::load_for(p, Some(coarse), self.refine_from, self.options()?)).transpose()
    }
}

/// `eval-ae`: how much of held-out photos an autoencoder keeps (L1, PSNR, a picture).
pub fn eval_ae(a: EvalAeArgs) -> Result<ExitCode> {
    let (ae, meta) = tinycats_train::autoencoder::load_autoencoder(&a.autoencoder)?;
    let cache = tinycats_data::cache::Cache::open(&a.data)?;
    if cache.size() as usize != meta.ae.image_size {
        bail!("--data {}: images are {} px but the autoencoder takes {} px", a.data.display(), cache.size(), meta.ae.image_size);
    }
    // Loaded before anything is written, so a wrong folder fails at once.
    let pred = a.classifier.as_deref().map(|dir| tinycats_train::predictor::Predictor::load(dir, &tinycats_train::predictor::default_backbone())).transpose()?;
    let refiner = a.refine.load_for(&meta)?;
    let idx = tinycats_train::autoencoder::held_out(&cache, &["other".to_string()]);
    if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    let mut rec = tinycats_train::autoencoder::reconstruction_report(&ae, &meta.classes, &cache, &idx, &a.out)?;
    if let Some(r) = &refiner {
        rec.images = refine_photos(r, &ae, &meta, &cache, &idx)?;
        let side = cache.size() as usize;
        let show: Vec<Vec<u8>> = idx.iter().take(8).map(|&i| cache.image(i).to_vec()).chain(rec.images.iter().take(8).cloned()).collect();
        generator::grid_png(&show, side, show.len() / 2, &a.out)?;
        eprintln!("refined with {} (from t = {}, {} steps, CFG {}); the grid shows photos over refinements", r.path.display(), r.from, r.opts.steps, r.opts.cfg);
    }
    let (l1, psnr) = (rec.l1, rec.psnr_db);
    let agreement = pred.as_ref().map(|pred| reconstruction_agreement(pred, &cache, &idx, &rec.images)).transpose()?;
    if a.json {
        let refiner = refiner.as_ref().map(tinycats_train::gen_eval::RefinerUsed::of);
        println!("{}", serde_json::json!({"images": idx.len(), "l1": l1, "psnr_db": psnr, "grid": a.out, "agreement": agreement, "refiner": refiner}));
    } else {
        println!("{} test-split cats: L1 {l1:.4}, PSNR {psnr:.2} dB (pixels in [0, 1]); grid {}", idx.len(), a.out.display());
        if let Some(g) = &agreement {
            let what = if refiner.is_some() { "refinements" } else { "reconstructions" };
            println!("breed agreement at {} px: photos {:.1}%, {what} {:.1}%", cache.size(), 100.0 * g.photos, 100.0 * g.reconstructions);
            for b in &g.per_breed {
                println!("  {:<20} photos {:>5.1}%  {what} {:>5.1}%  (of {})", b.breed, 100.0 * b.photos, 100.0 * b.reconstructions, b.n);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The photos `idx` → `ae`'s latents → the refiner → images (RGB8), in chunks of 50.
fn refine_photos(r: &generator::Refiner, ae: &tinycats_models::autoencoder::Autoencoder<Cpu>, meta: &tinycats_train::autoencoder::AeMeta, cache: &tinycats_data::cache::Cache, idx: &[usize]) -> Result<Vec<Vec<u8>>> {
    let (c, l) = (meta.ae.latent_channels, meta.ae.latent_size());
    let mut out = Vec::new();
    for chunk in idx.chunks(50) {
        let breeds = chunk.iter().map(|&i| breed_index(&r.meta.classes, &cache.index.classes[cache.index.entries[i].label])).collect::<Result<Vec<_>>>()?;
        let z = tinycats_train::autoencoder::encode(ae, meta, cache, chunk, false)?;
        let z = burn::tensor::Tensor::<Cpu, 4>::from_data(burn::tensor::TensorData::new(z, [chunk.len(), c, l, l]), &Default::default());
        let seeds: Vec<u64> = chunk.iter().map(|&i| i as u64).collect();
        let coarse = tinycats_train::autoencoder::classes_of(cache, &meta.classes, chunk)?;
        out.extend(generator::to_rgb8(r.refine(z, &|z| tinycats_train::autoencoder::decode(&ae.decoder, meta, z, &coarse), &breeds, &seeds))?);
    }
    Ok(out)
}

#[derive(serde::Serialize)]
struct BreedKept {
    breed: String,
    n: usize,
    photos: f64,
    reconstructions: f64,
}

#[derive(serde::Serialize)]
struct AgreementKept {
    photos: f64,
    reconstructions: f64,
    per_breed: Vec<BreedKept>,
}

/// The classifier's breed agreement on `idx`'s photos and on `recs`, their reconstructions.
fn reconstruction_agreement(pred: &tinycats_train::predictor::Predictor, cache: &tinycats_data::cache::Cache, idx: &[usize], recs: &[Vec<u8>]) -> Result<AgreementKept> {
    use tinycats_train::gen_eval::{agreement_counts, features};
    let side = cache.size() as usize;
    let name = |i: usize| &cache.index.classes[cache.index.entries[i].label];
    // The breeds present, sorted, so the report lists them alphabetically.
    let mut breeds: Vec<String> = idx.iter().map(|&i| name(i).clone()).collect();
    breeds.sort();
    breeds.dedup();
    let labels: Vec<usize> = idx.iter().map(|&i| breeds.binary_search(name(i)).unwrap_or_else(|at| at)).collect();
    let photos: Vec<Vec<u8>> = idx.iter().map(|&i| cache.image(i).to_vec()).collect();
    let clf = &pred.manifest.classes;
    let p = agreement_counts(&breeds, clf, &labels, &features(pred, &photos, side)?.0);
    let r = agreement_counts(&breeds, clf, &labels, &features(pred, recs, side)?.0);
    let share = |c: &[(usize, usize, String)]| c.iter().map(|x| x.1).sum::<usize>() as f64 / idx.len().max(1) as f64;
    let per_breed: Vec<BreedKept> = breeds
        .iter()
        .zip(p.iter().zip(&r))
        .map(|(b, (p, r))| BreedKept { breed: b.clone(), n: p.0, photos: p.1 as f64 / p.0.max(1) as f64, reconstructions: r.1 as f64 / r.0.max(1) as f64 })
        .collect();
    Ok(AgreementKept { photos: share(&p), reconstructions: share(&r), per_breed })
}

#[derive(Clone, Copy, ValueEnum)]
pub enum SolverArg {
    Euler,
    Heun,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum GuidanceArg {
    /// Classifier-free guidance.
    Cfg,
    /// Adaptive projected guidance: only the guidance update orthogonal to the conditional
    /// estimate is scaled (meant to curb over-saturation; on the shipped model it scored worse
    /// than CFG at the same scale, docs/RESULTS.md).
    Apg,
}

/// Guidance flags shared by `generate` and `eval-gen`.
#[derive(Args, Clone)]
pub struct GuidanceArgs {
    #[arg(long, value_enum, default_value_t = GuidanceArg::Cfg)]
    guidance: GuidanceArg,
    /// Apply guidance only for t ≥ this (t = 0 is noise, 1 the image); before it the conditional
    /// prediction alone is used.
    #[arg(long, default_value_t = 0.0)]
    guidance_from: f32,
    /// Apply guidance only for t ≤ this; the later steps, which add detail rather than layout,
    /// run the conditional pass alone. 1 = guidance on every step.
    #[arg(long, default_value_t = 0.6)]
    guidance_to: f32,
    /// Time-grid shift: step k starts at u / (s − (s − 1)·u), u = k / steps. Above 1 it spends
    /// more of the steps near the noise end, where layout and breed are decided; 1 = uniform
    /// steps. Default 4: on the shipped model at 20 steps, FID-like 168.7 vs 173.6 and breed
    /// agreement 32.7% vs 28.0% against uniform steps (n = 1,008, docs/RESULTS.md).
    #[arg(long, default_value_t = 4.0)]
    time_shift: f32,
    /// Stochastic sampling, η in 0..=1 (Euler only): each step keeps √(1 − η²) of the noise the
    /// model's prediction implies and adds η fresh seeded noise. 0 = the deterministic ODE.
    /// Default 0.6: on the shipped model, FID-like 165.8 vs 168.7 and breed agreement 33.7% vs
    /// 32.7% against η = 0 at the same passes (n = 1,008, docs/RESULTS.md).
    #[arg(long, default_value_t = 0.6)]
    eta: f32,
}

/// Checks the shared sampling flags and builds the sampler's options.
fn sample_options(steps: usize, cfg: f64, solver: SolverArg, g: &GuidanceArgs) -> Result<SampleOptions> {
    if steps == 0 || steps > 1000 {
        bail!("--steps must be 1..=1000 (got {steps})");
    }
    if !(0.0..=50.0).contains(&cfg) {
        bail!("--cfg must be in 0..=50 (got {cfg})");
    }
    if !(0.0..=1.0).contains(&g.guidance_from) || !(0.0..=1.0).contains(&g.guidance_to) || g.guidance_from > g.guidance_to {
        bail!("--guidance-from and --guidance-to must satisfy 0 <= from <= to <= 1 (got {} and {})", g.guidance_from, g.guidance_to);
    }
    if !(g.time_shift.is_finite() && (0.1..=10.0).contains(&g.time_shift)) {
        bail!("--time-shift must be in 0.1..=10 (got {})", g.time_shift);
    }
    if !(0.0..=1.0).contains(&g.eta) {
        bail!("--eta must be in 0..=1 (got {})", g.eta);
    }
    if g.eta > 0.0 && matches!(solver, SolverArg::Heun) {
        bail!("--eta applies to --solver euler only (a stochastic step has no Heun correction)");
    }
    let solver = match solver {
        SolverArg::Euler => Solver::Euler,
        SolverArg::Heun => Solver::Heun,
    };
    let guidance = match g.guidance {
        GuidanceArg::Cfg => Guidance::Cfg,
        GuidanceArg::Apg => Guidance::Apg,
    };
    Ok(SampleOptions { steps, cfg, solver, guidance, interval: (g.guidance_from, g.guidance_to), shift: g.time_shift, eta: g.eta })
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Breed name (e.g. "Bengal"; case-insensitive; see --list).
    #[arg(long, required_unless_present = "list")]
    breed: Option<String>,
    /// Number of images.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Sampling steps. Default 20: with the default time shift, 20 steps beat 50 uniform ones on
    /// the shipped model (docs/RESULTS.md).
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Guidance scale (1 = no guidance), applied until t = 0.6 (`--guidance-to`). Default 5: on
    /// the shipped latent model, against CFG 8, FID-like 123.1 vs 140.7 and breed agreement
    /// 39.3% vs 36.4% (n = 1,008, docs/RESULTS.md).
    #[arg(long, default_value_t = 5.0)]
    cfg: f64,
    /// Seed of the first image; image k uses seed + k.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = SolverArg::Euler)]
    solver: SolverArg,
    #[command(flatten)]
    guidance: GuidanceArgs,
    /// A folder (one PNG per image) or a FILE.png (a grid of all images).
    #[arg(long, default_value = "generated")]
    out: PathBuf,
    /// Generator weights (default: the shipped model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Print the breeds this model knows and exit.
    #[arg(long)]
    list: bool,
    #[command(flatten)]
    refine: RefineArgs,
}

pub fn breed_index(classes: &[String], name: &str) -> Result<usize> {
    classes.iter().position(|c| c.eq_ignore_ascii_case(name) || c.replace('_', " ").eq_ignore_ascii_case(name)).ok_or_else(|| anyhow::anyhow!("unknown breed `{name}`; this model knows: {}", classes.join(", ")))
}

pub fn generate(a: GenerateArgs) -> Result<ExitCode> {
    let path = a.model.clone().unwrap_or_else(|| PathBuf::from(SHIPPED_GENERATOR));
    let (model, meta) = generator::load_generator(&path)?;
    if a.list {
        println!("{}", meta.classes.join("\n"));
        return Ok(ExitCode::SUCCESS);
    }
    // After --list, which needs only the breeds, not a latent generator's decoder.
    let painter = generator::Painter::for_generator(&path, &meta)?;
    let breed = breed_index(&meta.classes, a.breed.as_deref().unwrap_or_default())?;
    if a.n == 0 || a.n > 1024 {
        bail!("--n must be 1..=1024 (got {})", a.n);
    }
    let opts = sample_options(a.steps, a.cfg, a.solver, &a.guidance)?;
    let refiner = a.refine.load(&meta)?;
    let t0 = Instant::now();
    let seeds: Vec<u64> = (0..a.n as u64).map(|k| a.seed + k).collect();
    let mut images = Vec::new();
    for chunk in seeds.chunks(64) {
        let breeds = vec![breed; chunk.len()];
        let x = generator::sample::<Cpu>(&model, &meta, &breeds, chunk, &opts, &mut |_, _| {});
        images.extend(generator::to_rgb8(painter.paint_refined(refiner.as_ref(), x, &breeds, chunk))?);
    }
    let side = refiner.as_ref().map_or(meta.image_size(), |r| r.meta.image_size());
    let is_file = a.out.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_file {
        if let Some(p) = a.out.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        generator::grid_png(&images, side, (a.n as f64).sqrt().ceil() as usize, &a.out)?;
        println!("{} image(s) of {} in {:.2}s → {}", a.n, meta.classes[breed], t0.elapsed().as_secs_f64(), a.out.display());
    } else {
        std::fs::create_dir_all(&a.out).with_context(|| format!("cannot create {}", a.out.display()))?;
        for (k, im) in images.iter().enumerate() {
            let img = image_of(im, side);
            let p = a.out.join(format!("{}-seed{}.png", meta.classes[breed], seeds[k]));
            generator::write_png(&img, &p)?;
            println!("{}", p.display());
        }
        eprintln!("{} image(s) in {:.2}s", a.n, t0.elapsed().as_secs_f64());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn image_of(rgb: &[u8], side: usize) -> image::RgbImage {
    image::RgbImage::from_raw(side as u32, side as u32, rgb.to_vec()).expect("buffer matches side")
}

#[derive(Args)]
pub struct EvalGenArgs {
    /// Generator weights (default: the shipped model).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Classifier folder used for breed agreement and embeddings (default: the shipped one).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Prepared real images at the generator's resolution (default: the cache the model was
    /// trained on, from its run's config.toml or its model.json, else the 64-px crop cache).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Generated images in total (spread evenly over the breeds).
    #[arg(long, default_value_t = 1008)]
    n: usize,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Guidance scale; the same default as `generate`.
    #[arg(long, default_value_t = 5.0)]
    cfg: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = SolverArg::Euler)]
    solver: SolverArg,
    #[command(flatten)]
    guidance: GuidanceArgs,
    /// Folder for per-breed sample grids (PNG) and report.json.
    #[arg(long, default_value = "eval-gen")]
    out: PathBuf,
    /// Evaluate the weights as an ONNX export stores them: none, fp16 or int8 (Linear weights).
    #[arg(long, default_value = "none")]
    quantize: String,
    #[arg(long)]
    json: bool,
    /// Autoguidance: a weaker generator of the same breeds whose conditional prediction takes
    /// the null class's place in the guidance formula.
    #[arg(long)]
    guide_model: Option<PathBuf>,
    #[command(flatten)]
    refine: RefineArgs,
}

pub fn eval_gen(a: EvalGenArgs) -> Result<ExitCode> {
    let path = a.model.clone().unwrap_or_else(|| PathBuf::from(SHIPPED_GENERATOR));
    let q = tinycats_export::Quantize::parse(&a.quantize)?;
    if q == tinycats_export::Quantize::Int8Dynamic {
        // The burn model can round its weights but not its activations as the ONNX graph does.
        bail!("--quantize int8-dynamic quantizes activations at run time, which eval-gen cannot simulate; evaluate the exported file with scripts/onnx_eval.py instead");
    }
    let (model, meta) = generator::load_generator(&path)?;
    let painter = generator::Painter::for_generator(&path, &meta)?;
    let model = tinycats_export::fake_quantize_linears(model, q);
    // Checked before the classifier and data load, so a wrong path fails at once.
    let guide = match &a.guide_model {
        Some(p) => {
            let (g, gm) = generator::load_generator(p)?;
            if gm.classes != meta.classes || gm.dit.image_size != meta.dit.image_size || gm.latent != meta.latent {
                bail!("--guide-model {}: its breeds or image size differ from the generator's", p.display());
            }
            Some((g, gm))
        }
        None => None,
    };
    let refiner = a.refine.load(&meta)?;
    let data = match a.data.clone() {
        Some(d) => d,
        None => training_cache(&path)?,
    };
    let cache = tinycats_data::cache::Cache::open(&data).with_context(|| format!("real images for eval-gen ({}; pick others with --data)", data.display()))?;
    let clf_dir = a.classifier.clone().unwrap_or_else(tinycats_train::predictor::default_model_dir);
    let pred = tinycats_train::predictor::Predictor::load(&clf_dir, &tinycats_train::predictor::default_backbone())?;
    if a.n < meta.classes.len() {
        bail!("--n must be at least the number of breeds ({})", meta.classes.len());
    }
    let opts = sample_options(a.steps, a.cfg, a.solver, &a.guidance)?;
    let pb = crate::progress::bar(0, "");
    let mut report = |what: &str, k: usize, n: usize| {
        pb.set_message(what.to_string());
        pb.set_length(n as u64);
        pb.set_position(k as u64);
    };
    let r = tinycats_train::gen_eval::evaluate(&model, &meta, &painter, guide.as_ref().map(|(g, m)| (g, m)), refiner.as_ref(), &pred, &cache, a.n, &opts, a.seed, Some(&a.out), &mut report)?;
    pb.finish_and_clear();
    tinycats_data::hashing::write_atomic(&a.out.join("report.json"), &serde_json::to_vec_pretty(&r)?)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{} generated vs {} real: FID-like {:.2} (real-vs-real floor {:.2}); breed agreement {:.1}%", r.generated, r.real, r.fid_like, r.fid_like_real_halves, 100.0 * r.agreement);
        if let Some(rf) = &r.refiner {
            println!("second stage: refiner {} (step {}), from t = {}, {} steps, CFG {}", rf.model.display(), rf.step, rf.from, rf.steps, rf.cfg);
        }
        match r.real_agreement {
            Some(v) => println!("ceiling: the classifier on {} real test photos at {} px: {:.1}%", r.real_test, meta.image_size(), 100.0 * v),
            None => println!("ceiling: not measured ({} has no test split)", data.display()),
        }
        for b in &r.per_breed {
            println!("  {:<20} {:>5.1}%  (most often seen as {}; real photos {} of {})", b.breed, 100.0 * b.agreement, b.top_confusion, pct_or_dash(b.real_agreement), b.real_n);
        }
        println!("grids and report.json in {}", a.out.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a generator's real images are: `data.cache` in the run's config.toml (a run folder),
/// or `data_cache` in model.json (a shipped model), else the unzoomed 64-px crop cache, so the
/// FID-like reference and the ceiling use the framing the model learned.
fn training_cache(model: &std::path::Path) -> Result<PathBuf> {
    let dir = model.parent().unwrap_or(std::path::Path::new("."));
    if let Ok(text) = std::fs::read_to_string(dir.join("config.toml")) {
        let t: toml::Table = toml::from_str(&text).with_context(|| format!("{} is not valid TOML", dir.join("config.toml").display()))?;
        if let Some(c) = t.get("data").and_then(|d| d.get("cache")).and_then(|c| c.as_str()) {
            return Ok(PathBuf::from(c));
        }
    }
    if let Ok(b) = std::fs::read(dir.join("model.json")) {
        let m: serde_json::Value = serde_json::from_slice(&b).with_context(|| format!("{} is not valid JSON", dir.join("model.json").display()))?;
        if let Some(c) = m.get("data_cache").and_then(|c| c.as_str()) {
            return Ok(PathBuf::from(c));
        }
    }
    Ok(PathBuf::from(DEFAULT_GEN_DATA))
}

/// The real images older generators (no recorded cache) were trained on.
const DEFAULT_GEN_DATA: &str = "data/pets/prepared/64-cats_other-crop";

/// A share as "12.3%", or "—" when it was not measured (no test photos, or an older report.json).
fn pct_or_dash(v: Option<f64>) -> String {
    v.map(|x| format!("{:.1}%", 100.0 * x)).unwrap_or_else(|| "—".to_string())
}

/// A generator run → `models/generator`: EMA weights, model.json and a model card with the
/// training record and (when `<run>/eval/report.json` exists) the evaluation.
pub fn ship(run: &std::path::Path, out: &std::path::Path, run_meta: &serde_json::Value) -> Result<ExitCode> {
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("result.json")).with_context(|| format!("{}: no result.json (did the run finish?)", run.display()))?)?;
    let cfg_text = std::fs::read_to_string(run.join("config.toml")).with_context(|| format!("{}: no config.toml", run.display()))?;
    let (_, meta) = generator::load_generator(&run.join("ema.safetensors"))?;
    // Checked before anything is written: the card quotes this evaluation.
    let report_path = run.join("eval/report.json");
    let report: Option<serde_json::Value> = match std::fs::read(&report_path) {
        Ok(b) => Some(serde_json::from_slice(&b).with_context(|| format!("{} is not valid JSON", report_path.display()))?),
        Err(_) => None,
    };
    if report.as_ref().is_some_and(|e| !e["refiner"].is_null()) {
        bail!("{}: this evaluation ran through a refiner (--refine-model), which ship does not carry; evaluate the generator alone for its card", report_path.display());
    }
    let commit = run_meta["git_commit"].as_str().unwrap_or("unknown");
    let run_id = run.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let version = format!("{}-{}-step{}", env!("CARGO_PKG_VERSION"), commit.get(..7).unwrap_or(commit), meta.step);
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let bytes = tinycats_models::weights::read_sharded(&run.join("ema.safetensors"))?;
    tinycats_models::weights::write_sharded(&out.join("generator.safetensors"), &bytes, tinycats_models::weights::SHARD_LIMIT, &|p, b| tinycats_data::hashing::write_atomic(p, b))?;
    if meta.latent.is_some() {
        // A latent generator paints through its autoencoder's decoder, which must travel with it.
        let ae = run.join(generator::AUTOENCODER_FILE);
        let b = std::fs::read(&ae).with_context(|| format!("{}: a latent generator's run must hold its {}", run.display(), generator::AUTOENCODER_FILE))?;
        tinycats_data::hashing::write_atomic(&out.join(generator::AUTOENCODER_FILE), &b)?;
    }
    let cfg_table = toml::from_str::<toml::Table>(&cfg_text).ok();
    let data_cache = cfg_table.as_ref().and_then(|t| Some(t.get("data")?.get("cache")?.as_str()?.to_string()));
    let manifest = serde_json::json!({"arch": "dit", "version": version, "run_id": run_id, "classes": meta.classes, "null_class": meta.null_class(), "image_size": meta.image_size(), "target": meta.target, "ema": meta.ema, "step": meta.step, "dit": meta.dit, "data_cache": data_cache, "latent": meta.latent.as_ref().map(|l| serde_json::json!({"channels": l.ae.latent_channels, "size": l.ae.latent_size(), "autoencoder": generator::AUTOENCODER_FILE}))});
    tinycats_data::hashing::write_atomic(&out.join("model.json"), &serde_json::to_vec_pretty(&manifest)?)?;
    let d = meta.dit;
    let (params, flops) = d.params_and_flops();
    // Zoomed caches keep only the middle of the shorter side; say so, since it changes what the model paints.
    let zoom = data_cache.as_ref().and_then(|c| tinycats_data::cache::Cache::open(std::path::Path::new(c)).ok()).map(|c| c.index.zoom).unwrap_or(1.0);
    let framing = if zoom == 1.0 { String::new() } else { format!(" (the middle {:.0}% of the shorter side, `data prepare --zoom {zoom}`)", 100.0 * zoom) };
    let losses = result["losses"].as_array().cloned().unwrap_or_default();
    let last_loss = losses.last().and_then(|l| l[1].as_f64()).unwrap_or(f64::NAN);
    // The autoencoder shipped beside the weights (its decoder may be a fine-tuned one).
    let shipped_ae = generator::latent_autoencoder(&out.join("generator.safetensors"), &meta)?.map(|(_, m)| m);
    let space = match &shipped_ae {
        None => format!("{} px", d.image_size),
        Some(l) => {
            let (_, dec_params, dec_flops) = l.ae.params_and_decoder_flops();
            format!(
                "the {0}×{0}×{1} latent of the {2}-px image (autoencoder in `{3}`, held-out PSNR {4:.1} dB; the decoder paints: width {5}, {6:.2} M parameters, {7:.2} GFLOP per image)",
                d.image_size,
                d.channels,
                l.ae.image_size,
                generator::AUTOENCODER_FILE,
                l.held_out_psnr,
                l.ae.decoder_width_at(0),
                dec_params as f64 / 1e6,
                dec_flops as f64 / 1e9
            )
        }
    };
    let mut card = format!(
        "# tinycats cat generator\n\n\
         Class-conditional DiT (adaLN-Zero, fixed 2D sin-cos position embedding) trained with flow matching \
         (x_t = (1 − t)·noise + t·image, t = 0 noise → t = 1 image; target: {}), on the 12 cat breeds of the \
         Oxford-IIIT Pet photos (CC BY-SA 4.0, Parkhi et al. 2012), train + val splits, centre-cropped{framing} to {s}×{s}.\n\n\
         - Network: {space}, patch {} ({} tokens), hidden {}, depth {}, heads {}: {:.2} M parameters, {:.3} GFLOP per forward.\n\
         - Classes: {} (null class for guidance: {}).\n\
         - Training: {} steps, batch {}, {:.1} images/s on the training machine, {:.0} s; last logged loss {last_loss:.4}.\n\
         - Weights: EMA (`generator.safetensors`), fp32. Run `{run_id}`, git {commit}, version `{version}`.\n\
         - Sampling: Euler or Heun from t = 0 to 1, classifier-free guidance applied once per step (by default CFG 5 on the steps with t ≤ 0.6 only, on a time grid shifted towards the noise end, `--time-shift 4`, with stochastic steps, `--eta 0.6`).\n\n\
         Config:\n\n```toml\n{cfg_text}```\n\nReproduce: `scripts/train_generator.sh` (see docs/RESULTS.md).\n",
        meta.target,
        d.patch,
        d.tokens(),
        d.hidden,
        d.depth,
        d.heads,
        params as f64 / 1e6,
        flops as f64 / 1e9,
        meta.classes.join(", "),
        meta.null_class(),
        meta.step,
        cfg_table.as_ref().and_then(|t| t.get("train")?.get("batch_size")?.as_integer()).unwrap_or(0),
        result["images_per_s"].as_f64().unwrap_or(0.0),
        result["train_seconds"].as_f64().unwrap_or(0.0),
        s = meta.image_size(),
    );
    if let Some(e) = report {
        let agree = e["agreement"].as_f64().unwrap_or(0.0);
        if agree < 0.6 {
            card.insert_str(card.find('\n').map(|i| i + 1).unwrap_or(0), &format!("\n**Status: below the quality bar** — breed agreement {:.1}% (goal ≥ 60%); the samples are not recognisable cats yet. Train longer (`--resume`) before relying on it.\n", 100.0 * agree));
        }
        card.push_str(&format!(
            "\n## Evaluation (`tinycats eval-gen`, {} steps, CFG {})\n\n- FID-like (EfficientNet-Lite0 embeddings, not comparable with Inception FID): **{:.2}** ({} generated vs {} real; real-vs-real floor {:.2}).\n- Breed agreement with the shipped classifier: **{:.1}%** (the same classifier on real test photos at this size: {}).\n\n| breed | agreement | most often classified as | real photos at this size |\n|---|---|---|---|\n",
            e["steps"], e["cfg"], e["fid_like"].as_f64().unwrap_or(f64::NAN), e["generated"], e["real"], e["fid_like_real_halves"].as_f64().unwrap_or(f64::NAN), 100.0 * e["agreement"].as_f64().unwrap_or(0.0),
            pct_or_dash(e["real_agreement"].as_f64())
        ));
        for b in e["per_breed"].as_array().cloned().unwrap_or_default() {
            card.push_str(&format!("| {} | {:.1}% | {} | {} |\n", b["breed"].as_str().unwrap_or(""), 100.0 * b["agreement"].as_f64().unwrap_or(0.0), b["top_confusion"].as_str().unwrap_or(""), pct_or_dash(b["real_agreement"].as_f64())));
        }
    }
    tinycats_data::hashing::write_atomic(&out.join("MODEL_CARD.md"), card.as_bytes())?;
    println!("shipped {} → {}", run.display(), out.display());
    Ok(ExitCode::SUCCESS)
}
