//! The classifier engine end to end on a small generated dataset: features cached, loss falls,
//! checkpoints written and reloadable, metrics consistent, the sink isolation holds.

use tinycats_data::fixtures::{write_fixture, FixtureSpec};
use tinycats_data::prepare::{prepare, PrepareOptions};
use tinycats_train::config::ClassifierConfig;
use tinycats_train::sink::{EpochEvent, Sink, Sinks};

mod common;
use common::lite0_weights as weights;

/// The 12 cat breeds plus one dog breed (`other`), generated and prepared with a 50/25/25 split.
fn fixture(t: &std::path::Path, dog: &str, per_class: usize, size: u32, seed: u64) -> tinycats_data::prepare::PrepareSummary {
    let mut breeds: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    breeds.push(dog.into());
    write_fixture(&t.join("ds"), &FixtureSpec { breeds, per_class, size, quirks: false, seed }).unwrap();
    prepare(&t.join("ds"), &PrepareOptions { size, split: [0.5, 0.25, 0.25], ..Default::default() }, &|_, _| {}).unwrap()
}

struct Recorder(std::sync::Arc<std::sync::Mutex<Vec<EpochEvent>>>);
impl Sink for Recorder {
    fn on_epoch(&mut self, e: &EpochEvent) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(e.clone());
        Ok(())
    }
}
struct Failing(usize);
impl Sink for Failing {
    fn on_epoch(&mut self, _: &EpochEvent) -> anyhow::Result<()> {
        self.0 += 1;
        anyhow::bail!("sink broke")
    }
}

#[test]
fn trains_on_fixture_and_reloads() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED trains_on_fixture_and_reloads: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let prep = fixture(t.path(), "beagle", 8, 64, 3);
    let overrides = vec![
        format!("data.cache=\"{}\"", prep.out.display()),
        format!("model.weights=\"{}\"", w.display()),
        "model.cut=16".into(),
        "train.epochs=6".into(),
        "train.batch_size=16".into(),
        "optim.lr=0.003".into(),
        "schedule.warmup_epochs=0".into(),
        "train.class_weights=\"auto\"".into(),
    ];
    let cfg = ClassifierConfig::load("", "test", &overrides).unwrap();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut sinks = Sinks::default();
    sinks.sinks.push(Box::new(Failing(0)));
    sinks.sinks.push(Box::new(Recorder(events.clone())));
    let run = t.path().join("run");
    let r = tinycats_train::classifier::train(&cfg, &run, &mut sinks, &mut |_, _, _| {}).unwrap();
    let ev = events.lock().unwrap().clone();
    assert_eq!(ev.len(), 6, "one epoch event per epoch even though another sink fails");
    assert_eq!(sinks.failures, 6);
    assert!(ev[5].train_loss < ev[0].train_loss, "train loss falls: {:?}", ev.iter().map(|e| e.train_loss).collect::<Vec<_>>());
    // Synthetic classes are easy: the pretrained features separate them.
    assert!(r.val.accuracy > 0.5, "val acc {}", r.val.accuracy);
    assert_eq!(r.test.n, prep.counts.values().map(|m| m["test"]).sum::<usize>());
    assert!(run.join("checkpoints/best.safetensors").is_file());
    assert!(run.join("result.json").is_file());
    let kept = std::fs::read_dir(run.join("checkpoints")).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("epoch-")).count();
    assert_eq!(kept, 2, "keep_last = 2");
    // The saved best weights reproduce the reported validation accuracy.
    let tail = tinycats_train::classifier::load_tail(&r.best_weights, r.cut, 13, r.bn_folded).unwrap();
    let cache = tinycats_data::cache::Cache::open(&prep.out).unwrap();
    let fz = tinycats_models::efficientnet::EfficientNetLite0::<tinycats_models::Cpu>::from_pretrained(tinycats_models::weights::TensorMap::read(&w).unwrap(), &Default::default()).unwrap().fold_bn();
    let feats = tinycats_train::features::load_or_compute(&cache, &fz, &tinycats_train::features::weights_sha(&w).unwrap(), r.cut, 2, 42, &mut |_, _| {}).unwrap();
    let val = cache.split(tinycats_data::cache::Split::Val);
    let probs = tinycats_train::classifier::predict_probs(&tail, &feats, &val).unwrap();
    let labels: Vec<usize> = val.iter().map(|&i| cache.index.entries[i].label).collect();
    let again = tinycats_train::metrics::report(&probs, &labels, &r.classes);
    assert!((again.accuracy - r.val.accuracy).abs() < 1e-9);
    // A wrong class count is refused with a clear message.
    let e = tinycats_train::classifier::load_tail(&r.best_weights, r.cut, 12, r.bn_folded).unwrap_err().to_string();
    assert!(e.contains("best.safetensors"), "{e}");
}

#[test]
fn cross_validation_keeps_test_out_and_summarises() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED cross_validation_keeps_test_out_and_summarises: weights not fetched");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let mut breeds: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    breeds.push("pug".into());
    write_fixture(&t.path().join("ds"), &FixtureSpec { breeds, per_class: 6, size: 48, quirks: false, seed: 9 }).unwrap();
    let prep = prepare(&t.path().join("ds"), &PrepareOptions { size: 48, split: [0.5, 0.17, 0.33], ..Default::default() }, &|_, _| {}).unwrap();
    let overrides = vec![
        format!("data.cache=\"{}\"", prep.out.display()),
        format!("model.weights=\"{}\"", w.display()),
        "model.mode=\"linear-probe\"".into(),
        "train.epochs=3".into(),
        "train.batch_size=8".into(),
        "optim.lr=0.01".into(),
    ];
    let cfg = ClassifierConfig::load("", "test", &overrides).unwrap();
    let cache = tinycats_data::cache::Cache::open(&prep.out).unwrap();
    let pool: Vec<usize> = cache.split(tinycats_data::cache::Split::Train).into_iter().chain(cache.split(tinycats_data::cache::Split::Val)).collect();
    let folds = tinycats_train::classifier::stratified_folds(&cache, &pool, 3, 1);
    for f in 0..3 {
        assert!(folds.iter().filter(|&&g| g == f).count() >= pool.len() / 3 - 1, "balanced folds");
    }
    let run = t.path().join("cv");
    let cv = tinycats_train::classifier::cross_validate(&cfg, 3, &run, &mut Sinks::default(), &mut |_, _, _| {}).unwrap();
    assert_eq!(cv.folds.len(), 3);
    let test_n = cache.split(tinycats_data::cache::Split::Test).len();
    for (f, r) in cv.folds.iter().enumerate() {
        assert_eq!(r.test.n, test_n, "every fold is evaluated on the same held-out test split");
        assert_eq!(r.val.n, folds.iter().filter(|&&g| g == f).count());
        assert_eq!(r.history.len(), 3);
        assert!(run.join(format!("fold-{f}/checkpoints/best.safetensors")).is_file());
    }
    let mean = cv.folds.iter().map(|r| r.val.accuracy).sum::<f64>() / 3.0;
    assert!((cv.val_acc_mean - mean).abs() < 1e-12);
    assert_eq!(cv.ensemble_test.n, test_n);
    assert!(run.join("cv.json").is_file());
    let e = tinycats_train::classifier::cross_validate(&cfg, 1, &run, &mut Sinks::default(), &mut |_, _, _| {}).unwrap_err().to_string();
    assert!(e.contains("folds"), "{e}");
}

#[test]
fn from_scratch_cnn_learns_fixture_classes() {
    let t = tempfile::tempdir().unwrap();
    let prep = fixture(t.path(), "pug", 8, 32, 5);
    let overrides = vec![
        format!("data.cache=\"{}\"", prep.out.display()),
        "model.mode=\"scratch\"".into(),
        "model.width=8".into(),
        "train.epochs=8".into(),
        "train.batch_size=16".into(),
        "optim.lr=0.005".into(),
        "schedule.warmup_epochs=0".into(),
    ];
    let cfg = ClassifierConfig::load("", "test", &overrides).unwrap();
    let run = t.path().join("run");
    let r = tinycats_train::scratch::train_scratch(&cfg, 8, &run, &mut Sinks::default()).unwrap();
    assert_eq!(r.history.len(), 8);
    assert!(r.history[7].train_loss < r.history[0].train_loss, "{:?}", r.history.iter().map(|e| e.train_loss).collect::<Vec<_>>());
    // 13 synthetic colour/stripe classes: far above chance (1/13) after a few epochs.
    assert!(r.val.accuracy > 0.3, "val acc {}", r.val.accuracy);
    assert!(run.join("result.json").is_file());
}

#[test]
fn staged_unfreezing_keeps_blocks_frozen_then_trains_them() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED staged_unfreezing_keeps_blocks_frozen_then_trains_them: weights not fetched");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let prep = fixture(t.path(), "pug", 4, 64, 11);
    let overrides = vec![
        format!("data.cache=\"{}\"", prep.out.display()),
        format!("model.weights=\"{}\"", w.display()),
        "model.cut=15".into(),
        "model.unfreeze_epoch=2".into(),
        "train.epochs=4".into(),
        "train.batch_size=16".into(),
        "checkpoint.keep_last=4".into(),
    ];
    let cfg = ClassifierConfig::load("", "test", &overrides).unwrap();
    let run = t.path().join("run");
    tinycats_train::classifier::train(&cfg, &run, &mut Sinks::default(), &mut |_, _, _| {}).unwrap();
    let ep = |e: usize| tinycats_models::weights::TensorMap::read(&run.join(format!("checkpoints/epoch-{e:04}.safetensors"))).unwrap().map;
    let (e0, e1, e3) = (ep(0), ep(1), ep(3));
    let blocks: Vec<&String> = e0.keys().filter(|k| k.starts_with("blocks.")).collect();
    assert!(!blocks.is_empty(), "{:?}", e0.keys().collect::<Vec<_>>());
    for k in &blocks {
        assert_eq!(e0[*k], e1[*k], "{k} changed while frozen");
    }
    assert!(blocks.iter().any(|k| e1[*k] != e3[*k]), "blocks never trained after unfreezing");
    let fc = e0.keys().find(|k| k.starts_with("fc.")).unwrap();
    assert_ne!(e0[fc], e1[fc], "the linear layer trains from the start");
}

/// Records predictions; optionally fails every call (a broken hook must not stop training).
struct PredRecorder(std::sync::Arc<std::sync::Mutex<Vec<Vec<tinycats_train::sink::Prediction>>>>, bool);
impl Sink for PredRecorder {
    fn on_predictions(&mut self, p: &[tinycats_train::sink::Prediction]) -> anyhow::Result<()> {
        self.0.lock().unwrap().push(p.to_vec());
        if self.1 {
            anyhow::bail!("prediction hook broke");
        }
        Ok(())
    }
}

#[test]
fn predictions_follow_fixed_samples_and_disabled_means_no_calls() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED predictions_follow_fixed_samples_and_disabled_means_no_calls: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let prep = fixture(t.path(), "beagle", 8, 64, 5);
    let base = vec![format!("data.cache=\"{}\"", prep.out.display()), format!("model.weights=\"{}\"", w.display()), "model.cut=16".into(), "train.epochs=3".into(), "train.batch_size=16".into()];
    let train = |extra: &[&str], fail: bool, name: &str| {
        let mut o = base.clone();
        o.extend(extra.iter().map(|s| s.to_string()));
        let cfg = ClassifierConfig::load("", "test", &o)?;
        let calls = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut sinks = Sinks::default();
        sinks.sinks.push(Box::new(PredRecorder(calls.clone(), fail)));
        let r = tinycats_train::classifier::train(&cfg, &t.path().join(name), &mut sinks, &mut |_, _, _| {})?;
        let c = calls.lock().unwrap().clone();
        Ok::<_, anyhow::Error>((r, c, sinks.failures))
    };

    // Per epoch: the same 5 stratified validation samples every time, top-k probabilities sorted.
    let (_, calls, _) = train(&["predictions.samples=5", "predictions.seed=7", "predictions.top_k=4"], false, "epoch").unwrap();
    assert_eq!(calls.len(), 3, "one call per epoch");
    let ids: Vec<String> = calls[0].iter().map(|p| p.sample_id.clone()).collect();
    assert_eq!(ids.len(), 5);
    assert!(calls.iter().all(|c| c.iter().map(|p| p.sample_id.clone()).collect::<Vec<_>>() == ids), "same samples every epoch");
    let labels: std::collections::HashSet<usize> = calls[0].iter().map(|p| p.label).collect();
    assert_eq!(labels.len(), 5, "stratified: 5 different classes");
    assert!(calls[2].iter().all(|p| p.top.len() == 4 && p.top.windows(2).all(|w| w[0].1 >= w[1].1) && p.latency_ms > 0.0));
    assert_eq!(calls.iter().map(|c| c[0].epoch).collect::<Vec<_>>(), vec![0, 1, 2]);

    // Every 2 optimizer steps, with explicit ids; a failing hook is counted, training finishes.
    let steps_per_epoch = prep.counts.values().map(|m| m["train"]).sum::<usize>().div_ceil(16);
    let pick = format!("predictions.samples=[\"{}\", \"{}\"]", ids[0], ids[1]);
    let (r, calls, failures) = train(&[&pick, "predictions.every=2"], true, "steps").unwrap();
    assert_eq!(calls.len(), 3 * steps_per_epoch / 2);
    assert!(calls.iter().all(|c| c.len() == 2 && c[0].sample_id == ids[0] && c[0].step % 2 == 0));
    assert_eq!(failures, calls.len(), "each failed call is counted");
    assert_eq!(r.epochs_run, 3, "training went on");

    // Disabled: the hook is never called.
    let (_, calls, _) = train(&["predictions.enabled=false"], false, "off").unwrap();
    assert!(calls.is_empty(), "disabled predictions made {} calls", calls.len());

    // Bad settings name the key.
    let e = train(&["predictions.samples=[\"no-such-image\"]"], false, "bad").unwrap_err().to_string();
    assert!(e.contains("predictions.samples") && e.contains("no-such-image"), "{e}");
    let e = ClassifierConfig::load("", "t", &["predictions.every=\"hourly\"".into()]).unwrap_err().to_string();
    assert!(e.contains("predictions.every"), "{e}");
    let e = ClassifierConfig::load("", "t", &["predictions.samples=0".into()]).unwrap_err().to_string();
    assert!(e.contains("predictions.samples"), "{e}");
}
