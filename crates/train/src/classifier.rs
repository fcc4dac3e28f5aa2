//! Breed-classifier training on cached EfficientNet-Lite0 features: AdamW, warm-up + schedule,
//! label smoothing, class weights, gradient clipping and accumulation, per-epoch validation,
//! best/last checkpoints, early stopping, and a final test evaluation of the best weights.

use crate::config::ClassifierConfig;
use crate::features::{self, Features, POOLED};
use crate::metrics::{self, Report};
use crate::schedule::lr_at;
use crate::sink::{EpochEvent, EpochTotals, Prediction, Sinks, StepEvent};
use anyhow::{anyhow, bail, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tinycats_data::cache::{Cache, Split};
use tinycats_models::classifier::Tail;
use tinycats_models::efficientnet::EfficientNetLite0;
use tinycats_models::weights::TensorMap;
use tinycats_models::{Cpu, CpuTrain};

#[derive(Debug, Clone, Serialize)]
pub struct FitResult {
    pub run_dir: PathBuf,
    pub best_epoch: usize,
    pub best_metric: f64,
    pub epochs_run: usize,
    pub history: Vec<EpochEvent>,
    pub test: Report,
    pub val: Report,
    pub best_weights: PathBuf,
    pub feature_seconds: f64,
    pub train_seconds: f64,
    pub classes: Vec<String>,
    pub cut: usize,
    pub bn_folded: bool,
    pub split_hash: String,
}

/// How one call of `fit` runs: resume from the run folder's last epoch checkpoint, and/or stop
/// after a number of epochs (training in chunks: the next call resumes).
#[derive(Debug, Clone, Default)]
pub struct FitOptions {
    pub resume: bool,
    pub stop_after_epochs: Option<usize>,
}

/// Everything besides weights and optimizer moments that the loop carries across epochs.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
struct LoopState {
    /// Last completed epoch.
    epoch: usize,
    step: usize,
    best_epoch: usize,
    best_metric: f64,
    since_best: usize,
    plateau: (f64, f64, usize),
    history: Vec<EpochEvent>,
    stopped_early: bool,
}

type Rec = burn::record::NamedMpkBytesRecorder<burn::record::FullPrecisionSettings>;

/// Writes the resume checkpoint of `epoch`: model and optimizer records (with parameter ids, so
/// the optimizer state re-attaches), then `state.json` last, which names the epoch — a crash at
/// any point leaves the previous complete checkpoint in charge.
fn save_resume<O: Optimizer<Tail<CpuTrain>, CpuTrain>>(dir: &Path, model: &Tail<CpuTrain>, optim: &O, st: &LoopState) -> Result<()> {
    use burn::record::Recorder;
    let m = Recorder::<CpuTrain>::record(&Rec::default(), model.clone().into_record(), ()).map_err(|e| anyhow!("{e:?}"))?;
    let o = Recorder::<CpuTrain>::record(&Rec::default(), optim.to_record(), ()).map_err(|e| anyhow!("{e:?}"))?;
    tinycats_data::hashing::write_atomic(&dir.join(format!("resume-{:04}.model.mpk", st.epoch)), &m)?;
    tinycats_data::hashing::write_atomic(&dir.join(format!("resume-{:04}.optim.mpk", st.epoch)), &o)?;
    tinycats_data::hashing::write_atomic(&dir.join("state.json"), &serde_json::to_vec(st)?)?;
    if st.epoch > 0 {
        for ext in ["model", "optim"] {
            let _ = std::fs::remove_file(dir.join(format!("resume-{:04}.{ext}.mpk", st.epoch - 1)));
        }
    }
    Ok(())
}

pub fn cut_of(cfg: &ClassifierConfig) -> usize {
    if cfg.model.mode == "linear-probe" { POOLED } else { cfg.model.cut }
}

/// Label-smoothed, class-weighted cross-entropy (weighted mean over the batch).
pub fn loss_fn<B: Backend>(logits: Tensor<B, 2>, labels: &[usize], weights: &[f32], smoothing: f64) -> Tensor<B, 1> {
    let [n, c] = logits.dims();
    let dev = logits.device();
    let off = smoothing as f32 / c as f32;
    let mut target = vec![off; n * c];
    let mut w = vec![0f32; n];
    for (i, &y) in labels.iter().enumerate() {
        target[i * c + y] += 1.0 - smoothing as f32;
        w[i] = weights[y];
    }
    let wsum: f32 = w.iter().sum::<f32>().max(1e-12);
    let target = Tensor::<B, 2>::from_data(TensorData::new(target, [n, c]), &dev);
    let w = Tensor::<B, 1>::from_data(TensorData::new(w, [n]), &dev);
    let per = (log_softmax(logits, 1) * target).sum_dim(1).reshape([n]).neg();
    (per * w).sum() / wsum
}

fn batch_tensor<B: Backend>(f: &Features, items: &[(usize, usize)], dev: &B::Device) -> Tensor<B, 4> {
    let [c, h, w] = f.meta.shape;
    let mut buf = Vec::with_capacity(items.len() * c * h * w);
    for &(i, v) in items {
        buf.extend_from_slice(f.get(i, v));
    }
    Tensor::from_data(TensorData::new(buf, [items.len(), c, h, w]), dev)
}

/// Class probabilities of `model` for cache entries `idx` (view 0), row-major [n, classes].
pub fn predict_probs(model: &Tail<Cpu>, f: &Features, idx: &[usize]) -> Result<Vec<f32>> {
    let dev = Default::default();
    let mut out = Vec::new();
    for chunk in idx.chunks(256) {
        let items: Vec<(usize, usize)> = chunk.iter().map(|&i| (i, 0)).collect();
        let p = softmax(model.forward(batch_tensor::<Cpu>(f, &items, &dev)), 1);
        out.extend(p.into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?);
    }
    Ok(out)
}

pub fn save_tail(model: &Tail<Cpu>, path: &Path, meta: &[(&str, String)]) -> Result<()> {
    let bytes = crate::weights::to_bytes(model, meta, "weights")?;
    tinycats_models::weights::write_sharded(path, &bytes, tinycats_models::weights::SHARD_LIMIT, &|p, b| tinycats_data::hashing::write_atomic(p, b))?;
    Ok(())
}

pub fn load_tail(path: &Path, cut: usize, classes: usize, bn_folded: bool) -> Result<Tail<Cpu>> {
    let dev = Default::default();
    let fresh = Tail::<Cpu>::new(cut, classes, &dev);
    let mut model = if bn_folded { fresh.fold_bn() } else { fresh };
    let bytes = tinycats_models::weights::read_sharded(path).with_context(|| format!("cannot read model {}", path.display()))?;
    crate::weights::load_strict(&mut model, bytes, path, "classifier")?;
    Ok(model)
}

fn better(metric: &str, new: f64, old: f64) -> bool {
    if metric == "val_loss" { new < old } else { new > old }
}

/// Opens the prepared data and loads (or computes) the frozen-front features for `cfg`.
pub fn load_data(cfg: &ClassifierConfig, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<(Cache, Features, f64)> {
    let cache = Cache::open(&cfg.data.cache)?;
    if cache.size() < 32 {
        bail!("config key `data.cache`: images are {} px; EfficientNet-Lite0 needs at least 32 (224 recommended)", cache.size());
    }
    let wsha = features::weights_sha(&cfg.model.weights)?;
    let dev = Default::default();
    let net = EfficientNetLite0::<Cpu>::from_pretrained(TensorMap::read(&cfg.model.weights)?, &dev)?;
    let t0 = Instant::now();
    let feats = features::load_or_compute(&cache, &net.fold_bn(), &wsha, cut_of(cfg), cfg.features.views, cfg.train.seed, &mut |k, n| progress("features", k, n))?;
    Ok((cache, feats, t0.elapsed().as_secs_f64()))
}

/// Trains on the prepared split (train / val), evaluates the best weights on test.
pub fn train(cfg: &ClassifierConfig, run_dir: &Path, sinks: &mut Sinks, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<FitResult> {
    train_with(cfg, run_dir, sinks, progress, &FitOptions::default())
}

/// `train` with resume / chunking options.
pub fn train_with(cfg: &ClassifierConfig, run_dir: &Path, sinks: &mut Sinks, progress: &mut dyn FnMut(&str, usize, usize), opts: &FitOptions) -> Result<FitResult> {
    let (cache, feats, feature_seconds) = load_data(cfg, progress)?;
    let split = [cache.split(Split::Train), cache.split(Split::Val), cache.split(Split::Test)];
    let mut r = fit(cfg, &cache, &feats, &split, run_dir, sinks, progress, opts)?;
    r.feature_seconds = feature_seconds;
    tinycats_data::hashing::write_atomic(&run_dir.join("result.json"), &serde_json::to_vec_pretty(&r)?)?;
    Ok(r)
}

/// The validation samples whose predictions are followed: explicit ids (each must be in the
/// validation split), or `n` chosen once, stratified (round-robin over classes, each class's
/// order shuffled with the configured seed).
pub fn select_watch(cache: &Cache, val_idx: &[usize], p: &crate::config::PredictionsConfig) -> Result<Vec<usize>> {
    match &p.samples {
        crate::config::PredSamples::Ids(ids) => ids
            .iter()
            .map(|id| val_idx.iter().copied().find(|&i| cache.index.entries[i].id == *id).with_context(|| format!("config key `predictions.samples`: `{id}` is not an image id of the validation split")))
            .collect(),
        crate::config::PredSamples::Count(n) => {
            let c = cache.index.classes.len();
            let mut by_class: Vec<Vec<usize>> = vec![vec![]; c];
            for &i in val_idx {
                by_class[cache.index.entries[i].label].push(i);
            }
            let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
            for v in by_class.iter_mut() {
                v.shuffle(&mut rng);
            }
            let rounds = by_class.iter().map(Vec::len).max().unwrap_or(0);
            Ok((0..rounds).flat_map(|k| by_class.iter().filter_map(move |v| v.get(k).copied())).take(*n).collect())
        }
    }
}

/// Predicts the followed samples with the current weights and hands them to the sinks.
#[allow(clippy::too_many_arguments)]
fn emit_predictions(model: &Tail<Cpu>, feats: &Features, cache: &Cache, watch: &[usize], epoch: usize, step: usize, top_k: usize, sinks: &mut Sinks) -> Result<()> {
    let c = cache.index.classes.len();
    let t0 = std::time::Instant::now();
    let probs = predict_probs(model, feats, watch)?;
    let latency_ms = 1e3 * t0.elapsed().as_secs_f64() / watch.len().max(1) as f64;
    let preds: Vec<Prediction> = watch
        .iter()
        .enumerate()
        .map(|(k, &i)| {
            let mut top: Vec<(usize, f32)> = probs[k * c..(k + 1) * c].iter().copied().enumerate().collect();
            top.sort_by(|a, b| b.1.total_cmp(&a.1));
            top.truncate(top_k);
            Prediction { epoch, step, sample_id: cache.index.entries[i].id.clone(), label: cache.index.entries[i].label, top, image: None, latency_ms }
        })
        .collect();
    sinks.emit(|s| s.on_predictions(&preds));
    Ok(())
}

/// One training run on explicit train / val / test index lists (a fresh model and optimizer).
pub fn fit(
    cfg: &ClassifierConfig,
    cache: &Cache,
    feats: &Features,
    split: &[Vec<usize>; 3],
    run_dir: &Path,
    sinks: &mut Sinks,
    progress: &mut dyn FnMut(&str, usize, usize),
    opts: &FitOptions,
) -> Result<FitResult> {
    let classes = cache.index.classes.clone();
    let c = classes.len();
    let cut = cut_of(cfg);
    std::fs::create_dir_all(run_dir.join("checkpoints")).with_context(|| format!("cannot create run folder {}", run_dir.display()))?;
    let cfg_json = serde_json::to_value(cfg)?;
    sinks.emit(|s| s.on_start(&cfg_json));
    let [train_idx, val_idx, test_idx] = split;
    if train_idx.is_empty() || val_idx.is_empty() {
        bail!("{}: the split has {} training and {} validation images; both must be > 0", cfg.data.cache.display(), train_idx.len(), val_idx.len());
    }
    let mut counts = vec![0usize; c];
    for &i in train_idx {
        counts[cache.index.entries[i].label] += 1;
    }
    let class_w = cfg.class_weights(&counts)?;

    let tdev = Default::default();
    let net_t = EfficientNetLite0::<CpuTrain>::from_pretrained(TensorMap::read(&cfg.model.weights)?, &tdev)?;
    let mut model = Tail::<CpuTrain>::from_pretrained(&net_t, cut, c, cfg.model.dropout, &tdev);
    if cfg.model.freeze_bn {
        model = model.fold_bn();
    }
    drop(net_t);
    let mut ocfg = AdamWConfig::new()
        .with_beta_1(cfg.optim.beta1 as f32)
        .with_beta_2(cfg.optim.beta2 as f32)
        .with_weight_decay(cfg.optim.weight_decay as f32);
    if cfg.train.grad_clip > 0.0 {
        ocfg = ocfg.with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.train.grad_clip as f32)));
    }
    let mut optim = ocfg.init::<CpuTrain, Tail<CpuTrain>>();

    let bs = cfg.train.batch_size;
    let batches = train_idx.len().div_ceil(bs);
    let steps_per_epoch = batches.div_ceil(cfg.train.accum_steps);
    let total_steps = steps_per_epoch * cfg.train.epochs;
    let metric = cfg.early_stopping.metric.as_str();
    let mut best = (usize::MAX, if metric == "val_loss" { f64::MAX } else { f64::MIN });
    let mut since_best = 0usize;
    let mut plateau = (1.0f64, f64::MAX, 0usize); // (scale, best val loss, epochs since)
    let mut history = Vec::new();
    let mut step = 0usize;
    let best_path = run_dir.join("checkpoints/best.safetensors");
    // Fixed validation samples followed across intervals; none (and no hook calls) when disabled.
    let watch: Vec<usize> = if cfg.predictions.enabled { select_watch(cache, val_idx, &cfg.predictions)? } else { vec![] };
    let pred_every = cfg.predictions.every_steps();
    let ckpt_dir = run_dir.join("checkpoints");
    let mut first_epoch = 0;
    if opts.resume {
        use burn::record::Recorder;
        let sp = ckpt_dir.join("state.json");
        let st: LoopState = serde_json::from_slice(&std::fs::read(&sp).with_context(|| format!("--resume: no checkpoint in {} ({} missing)", run_dir.display(), sp.display()))?)
            .with_context(|| format!("{} is damaged", sp.display()))?;
        let read = |ext: &str| {
            let p = ckpt_dir.join(format!("resume-{:04}.{ext}.mpk", st.epoch));
            std::fs::read(&p).with_context(|| format!("--resume: cannot read {}", p.display()))
        };
        let mrec = Recorder::<CpuTrain>::load(&Rec::default(), read("model")?, &tdev).map_err(|e| anyhow!("--resume: model checkpoint: {e:?}"))?;
        let orec = Recorder::<CpuTrain>::load(&Rec::default(), read("optim")?, &tdev).map_err(|e| anyhow!("--resume: optimizer checkpoint: {e:?}"))?;
        model = model.load_record(mrec);
        optim = optim.load_record(orec);
        step = st.step;
        best = (st.best_epoch, st.best_metric);
        since_best = st.since_best;
        plateau = st.plateau;
        history = st.history;
        first_epoch = st.epoch + 1;
        if st.stopped_early {
            first_epoch = cfg.train.epochs;
        }
    }
    let t_train = Instant::now();
    let mut epochs_run = first_epoch;
    let last_epoch = opts.stop_after_epochs.map(|k| (first_epoch + k).min(cfg.train.epochs)).unwrap_or(cfg.train.epochs);
    for epoch in first_epoch..last_epoch {
        let te = Instant::now();
        if cfg.model.unfreeze_epoch > 0 {
            model = model.set_blocks_trainable(epoch >= cfg.model.unfreeze_epoch);
        }
        // Dropout masks come from the backend RNG: reseed per epoch so a resumed epoch repeats exactly.
        <CpuTrain as Backend>::seed(&tdev, cfg.train.seed ^ (epoch as u64 + 1).wrapping_mul(0x51_7CC1_B727_220A));
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.train.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9));
        let mut order = train_idx.clone();
        order.shuffle(&mut rng);
        let (mut loss_sum, mut correct, mut seen) = (0f64, 0usize, 0usize);
        let mut accum = GradientsAccumulator::<Tail<CpuTrain>>::new();
        let mut lr = cfg.optim.lr;
        for (b, chunk) in order.chunks(bs).enumerate() {
            let items: Vec<(usize, usize)> = chunk.iter().map(|&i| (i, rng.gen_range(0..feats.meta.rows[i].1))).collect();
            let labels: Vec<usize> = chunk.iter().map(|&i| cache.index.entries[i].label).collect();
            let x = batch_tensor::<CpuTrain>(feats, &items, &tdev);
            let logits = model.forward(x);
            let preds: Vec<i64> = logits.clone().argmax(1).into_data().convert::<i64>().to_vec().map_err(|e| anyhow!("{e:?}"))?;
            correct += preds.iter().zip(&labels).filter(|(p, y)| **p as usize == **y).count();
            let loss = loss_fn(logits, &labels, &class_w, cfg.train.label_smoothing);
            let lv: f32 = loss.clone().into_scalar().elem();
            if !lv.is_finite() {
                bail!("training diverged at epoch {epoch} batch {b} (loss {lv}); lower optim.lr");
            }
            loss_sum += lv as f64 * chunk.len() as f64;
            seen += chunk.len();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            accum.accumulate(&model, grads);
            if (b + 1) % cfg.train.accum_steps == 0 || b + 1 == batches {
                lr = lr_at(&cfg.schedule, cfg.optim.lr, step, total_steps, steps_per_epoch, plateau.0);
                model = optim.step(lr, model, accum.grads());
                step += 1;
                let ev = StepEvent { epoch, step, loss: lv as f64, lr };
                sinks.emit(|s| s.on_step(&ev));
                if pred_every.is_some_and(|n| !watch.is_empty() && step % n == 0) {
                    emit_predictions(&model.valid(), feats, cache, &watch, epoch, step, cfg.predictions.top_k, sinks)?;
                }
            }
            progress("train", b + 1, batches);
        }
        let train_secs = te.elapsed().as_secs_f64();
        let valid = model.valid();
        let vp = predict_probs(&valid, feats, val_idx)?;
        let vy: Vec<usize> = val_idx.iter().map(|&i| cache.index.entries[i].label).collect();
        let vr = metrics::report(&vp, &vy, &classes);
        let ev = EpochEvent::new(epoch, step, EpochTotals { loss_sum, correct, seen }, &vr, lr, te.elapsed().as_secs_f64(), train_secs);
        sinks.emit(|s| s.on_epoch(&ev));
        if !watch.is_empty() && pred_every.is_none() {
            emit_predictions(&valid, feats, cache, &watch, epoch, step, cfg.predictions.top_k, sinks)?;
        }
        history.push(ev.clone());
        epochs_run = epoch + 1;

        let score = match metric {
            "val_loss" => vr.loss,
            "val_macro_f1" => vr.macro_f1,
            _ => vr.accuracy,
        };
        let meta = [("epoch", epoch.to_string()), ("cut", cut.to_string()), ("classes", classes.join(","))];
        if best.0 == usize::MAX || better(metric, score, best.1) {
            best = (epoch, score);
            since_best = 0;
            save_tail(&valid, &best_path, &meta)?;
            sinks.emit(|s| s.on_checkpoint(&best_path, true));
        } else {
            since_best += 1;
        }
        if cfg.checkpoint.keep_last > 0 {
            let p = run_dir.join(format!("checkpoints/epoch-{epoch:04}.safetensors"));
            save_tail(&valid, &p, &meta)?;
            sinks.emit(|s| s.on_checkpoint(&p, false));
            if epoch >= cfg.checkpoint.keep_last {
                let _ = std::fs::remove_file(run_dir.join(format!("checkpoints/epoch-{:04}.safetensors", epoch - cfg.checkpoint.keep_last)));
            }
        }
        if cfg.schedule.kind == "plateau" {
            if vr.loss < plateau.1 {
                plateau.1 = vr.loss;
                plateau.2 = 0;
            } else {
                plateau.2 += 1;
                if plateau.2 >= cfg.schedule.patience {
                    plateau.0 *= cfg.schedule.factor;
                    plateau.2 = 0;
                }
            }
        }
        let stop = cfg.early_stopping.patience > 0 && since_best >= cfg.early_stopping.patience;
        let st = LoopState { epoch, step, best_epoch: best.0, best_metric: best.1, since_best, plateau, history: history.clone(), stopped_early: stop };
        save_resume(&ckpt_dir, &model, &optim, &st)?;
        if stop {
            tracing::info!("early stopping at epoch {epoch}: {metric} has not improved for {since_best} epochs");
            break;
        }
    }
    let train_seconds = t_train.elapsed().as_secs_f64();
    let best_model = load_tail(&best_path, cut, c, cfg.model.freeze_bn)?;
    let vp = predict_probs(&best_model, feats, val_idx)?;
    let val = metrics::report(&vp, &val_idx.iter().map(|&i| cache.index.entries[i].label).collect::<Vec<_>>(), &classes);
    let tp = predict_probs(&best_model, feats, test_idx)?;
    let test = metrics::report(&tp, &test_idx.iter().map(|&i| cache.index.entries[i].label).collect::<Vec<_>>(), &classes);
    let result = FitResult {
        run_dir: run_dir.to_path_buf(),
        best_epoch: best.0,
        best_metric: best.1,
        epochs_run,
        history,
        test,
        val,
        best_weights: best_path,
        feature_seconds: 0.0,
        train_seconds,
        classes,
        cut,
        bn_folded: cfg.model.freeze_bn,
        split_hash: cache.index.split_hash(),
    };
    Ok(result)
}

#[derive(Debug, Clone, Serialize)]
pub struct CvResult {
    pub folds: Vec<FitResult>,
    pub val_acc_mean: f64,
    pub val_acc_std: f64,
    pub test_acc_mean: f64,
    pub test_acc_std: f64,
    /// The fold models' averaged probabilities on the test split.
    pub ensemble_test: Report,
}

/// Stratified k-fold assignment (fold per index) of `idx`, seeded.
pub fn stratified_folds(cache: &Cache, idx: &[usize], k: usize, seed: u64) -> Vec<usize> {
    let mut by_class: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
    for (pos, &i) in idx.iter().enumerate() {
        by_class.entry(cache.index.entries[i].label).or_default().push(pos);
    }
    let mut fold = vec![0; idx.len()];
    let mut next = 0;
    for (_, mut v) in by_class {
        v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        for pos in v {
            fold[pos] = next % k;
            next += 1;
        }
    }
    fold
}

/// k-fold cross-validation over train ∪ val (the test split never enters a fold): a fresh model
/// and optimizer per fold, per-fold history in `run_dir/fold-N`, mean ± std, and the fold
/// ensemble evaluated on test.
pub fn cross_validate(cfg: &ClassifierConfig, k: usize, run_dir: &Path, sinks: &mut Sinks, progress: &mut dyn FnMut(&str, usize, usize)) -> Result<CvResult> {
    if !(2..=20).contains(&k) {
        bail!("--folds {k}: use 2..=20");
    }
    let (cache, feats, _) = load_data(cfg, progress)?;
    let pool: Vec<usize> = cache.split(Split::Train).into_iter().chain(cache.split(Split::Val)).collect();
    let test = cache.split(Split::Test);
    let fold_of = stratified_folds(&cache, &pool, k, cfg.train.seed);
    let mut folds = Vec::new();
    let mut ens = vec![0f32; test.len() * cache.index.classes.len()];
    for f in 0..k {
        let tr: Vec<usize> = pool.iter().zip(&fold_of).filter(|(_, &g)| g != f).map(|(&i, _)| i).collect();
        let va: Vec<usize> = pool.iter().zip(&fold_of).filter(|(_, &g)| g == f).map(|(&i, _)| i).collect();
        let dir = run_dir.join(format!("fold-{f}"));
        let r = fit(cfg, &cache, &feats, &[tr, va, test.clone()], &dir, sinks, progress, &FitOptions::default())?;
        let m = load_tail(&r.best_weights, r.cut, cache.index.classes.len(), r.bn_folded)?;
        for (e, p) in ens.iter_mut().zip(predict_probs(&m, &feats, &test)?) {
            *e += p / k as f32;
        }
        folds.push(r);
    }
    let stats = |v: Vec<f64>| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        (mean, (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt())
    };
    let (vm, vs) = stats(folds.iter().map(|r| r.val.accuracy).collect());
    let (tm, ts) = stats(folds.iter().map(|r| r.test.accuracy).collect());
    let labels: Vec<usize> = test.iter().map(|&i| cache.index.entries[i].label).collect();
    let ensemble_test = metrics::report(&ens, &labels, &cache.index.classes);
    let cv = CvResult { folds, val_acc_mean: vm, val_acc_std: vs, test_acc_mean: tm, test_acc_std: ts, ensemble_test };
    tinycats_data::hashing::write_atomic(&run_dir.join("cv.json"), &serde_json::to_vec_pretty(&cv)?)?;
    Ok(cv)
}
