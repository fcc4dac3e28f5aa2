//! The from-scratch baseline: `SmallCnn` trained on augmented pixels from the prepared cache
//! (random resized crop, flip, colour jitter), same optimizer, schedule, loss and metrics as
//! the pretrained classifier. (Resume is implemented for the feature-cached classifier only.)

use crate::classifier::FitResult;
use crate::config::ClassifierConfig;
use crate::metrics;
use crate::schedule::lr_at;
use crate::sink::{EpochEvent, EpochTotals, Sinks};
use anyhow::{anyhow, Context, Result};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use std::path::Path;
use std::time::Instant;
use tinycats_data::cache::{Cache, Split};
use tinycats_data::loader::{Augment, Loader, LoaderConfig};
use tinycats_models::cnn::SmallCnn;
use tinycats_models::{Cpu, CpuTrain};

fn probs(model: &SmallCnn<Cpu>, cache: &Cache, idx: &[usize]) -> Result<Vec<f32>> {
    let loader = Loader::new(cache, idx.to_vec(), LoaderConfig { batch_size: 128, shuffle: false, augment: Augment::none(), ..Default::default() });
    let dev = Default::default();
    let mut out = Vec::new();
    for b in loader.epoch(0) {
        let s = b.size as usize;
        let x = Tensor::<Cpu, 4>::from_data(TensorData::new(b.images, [b.labels.len(), 3, s, s]), &dev);
        out.extend(softmax(model.forward(x), 1).into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?);
    }
    Ok(out)
}

pub fn train_scratch(cfg: &ClassifierConfig, width: usize, run_dir: &Path, sinks: &mut Sinks) -> Result<FitResult> {
    let cache = Cache::open(&cfg.data.cache)?;
    let classes = cache.index.classes.clone();
    std::fs::create_dir_all(run_dir.join("checkpoints")).with_context(|| format!("cannot create {}", run_dir.display()))?;
    let (train_idx, val_idx, test_idx) = (cache.split(Split::Train), cache.split(Split::Val), cache.split(Split::Test));
    let dev = Default::default();
    let mut model = SmallCnn::<CpuTrain>::new(classes.len(), width, &dev);
    let mut ocfg = AdamWConfig::new().with_weight_decay(cfg.optim.weight_decay as f32);
    if cfg.train.grad_clip > 0.0 {
        ocfg = ocfg.with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.train.grad_clip as f32)));
    }
    let mut optim = ocfg.init::<CpuTrain, SmallCnn<CpuTrain>>();
    let loader = Loader::new(&cache, train_idx.clone(), LoaderConfig { batch_size: cfg.train.batch_size, seed: cfg.train.seed, ..Default::default() });
    let spe = loader.batches_per_epoch();
    let total = spe * cfg.train.epochs;
    let mut counts = vec![0usize; classes.len()];
    for &i in &train_idx {
        counts[cache.index.entries[i].label] += 1;
    }
    let weights = cfg.class_weights(&counts)?;
    let (mut step, mut best, mut history) = (0usize, (0usize, f64::MIN), Vec::new());
    let best_path = run_dir.join("checkpoints/best-scratch.mpk");
    let t_train = Instant::now();
    for epoch in 0..cfg.train.epochs {
        let te = Instant::now();
        <CpuTrain as Backend>::seed(&dev, cfg.train.seed ^ epoch as u64);
        let (mut loss_sum, mut correct, mut seen, mut lr) = (0f64, 0usize, 0usize, cfg.optim.lr);
        for b in loader.epoch(epoch as u64) {
            let s = b.size as usize;
            let x = Tensor::<CpuTrain, 4>::from_data(TensorData::new(b.images, [b.labels.len(), 3, s, s]), &dev);
            let logits = model.forward(x);
            let preds: Vec<i64> = logits.clone().argmax(1).into_data().convert::<i64>().to_vec().map_err(|e| anyhow!("{e:?}"))?;
            correct += preds.iter().zip(&b.labels).filter(|(p, y)| **p as usize == **y).count();
            let loss = crate::classifier::loss_fn(logits, &b.labels, &weights, cfg.train.label_smoothing);
            loss_sum += loss.clone().into_scalar().elem::<f32>() as f64 * b.labels.len() as f64;
            seen += b.labels.len();
            lr = lr_at(&cfg.schedule, cfg.optim.lr, step, total, spe, 1.0);
            let g = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(lr, model, g);
            step += 1;
        }
        let secs = te.elapsed().as_secs_f64();
        let valid = model.valid();
        let vy: Vec<usize> = val_idx.iter().map(|&i| cache.index.entries[i].label).collect();
        let vr = metrics::report(&probs(&valid, &cache, &val_idx)?, &vy, &classes);
        let ev = EpochEvent::new(epoch, step, EpochTotals { loss_sum, correct, seen }, &vr, lr, secs, secs);
        sinks.emit(|s| s.on_epoch(&ev));
        history.push(ev);
        if vr.accuracy > best.1 {
            best = (epoch, vr.accuracy);
            use burn::record::Recorder;
            let bytes = Recorder::<Cpu>::record(&burn::record::NamedMpkBytesRecorder::<burn::record::FullPrecisionSettings>::default(), valid.into_record(), ()).map_err(|e| anyhow!("{e:?}"))?;
            tinycats_data::hashing::write_atomic(&best_path, &bytes)?;
        }
    }
    use burn::record::Recorder;
    let rec = Recorder::<Cpu>::load(&burn::record::NamedMpkBytesRecorder::<burn::record::FullPrecisionSettings>::default(), std::fs::read(&best_path)?, &Default::default()).map_err(|e| anyhow!("{e:?}"))?;
    let bm = SmallCnn::<Cpu>::new(classes.len(), width, &Default::default()).load_record(rec);
    let y = |idx: &[usize]| idx.iter().map(|&i| cache.index.entries[i].label).collect::<Vec<_>>();
    let val = metrics::report(&probs(&bm, &cache, &val_idx)?, &y(&val_idx), &classes);
    let test = metrics::report(&probs(&bm, &cache, &test_idx)?, &y(&test_idx), &classes);
    let r = FitResult {
        run_dir: run_dir.to_path_buf(),
        best_epoch: best.0,
        best_metric: best.1,
        epochs_run: cfg.train.epochs,
        history,
        test,
        val,
        best_weights: best_path,
        feature_seconds: 0.0,
        train_seconds: t_train.elapsed().as_secs_f64(),
        classes,
        cut: 0,
        bn_folded: false,
        split_hash: cache.index.split_hash(),
    };
    tinycats_data::hashing::write_atomic(&run_dir.join("result.json"), &serde_json::to_vec_pretty(&r)?)?;
    Ok(r)
}
