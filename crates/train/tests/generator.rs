//! Guards for the DiT flow-matching generator (the failure modes of the project we replace: a zero
//! target, a wrong unpatchify, a model that never learns) on tiny generated data.

use burn::prelude::*;
use std::path::{Path, PathBuf};
use tinycats_data::fixtures::{write_fixture, FixtureSpec};
use tinycats_data::prepare::{prepare, PrepareOptions};
use tinycats_models::dit::{Dit, DitConfig};
use tinycats_models::Cpu;
use tinycats_train::generator::{self, GenOptions, GeneratorConfig, Guidance, SampleOptions, Solver};
use tinycats_train::sink::Sinks;

mod common;
use common::lite0_weights;

/// burn-flex keeps one process-wide RNG and burn initialises weights lazily, so a test drawing
/// weights while another trains between its seed and its first forward changes that run. The
/// resume tests compare two runs bit for bit; every test here takes this lock so none interleave.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 16-px cache with all cat breeds and one dog breed (`other`, which the generator leaves out).
fn tiny_cache(dir: &Path, per_class: usize, split: [f64; 3]) -> PathBuf {
    let mut b: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    b.push("beagle".into());
    write_fixture(&dir.join("ds"), &FixtureSpec { breeds: b, per_class, size: 32, quirks: false, seed: 5 }).unwrap();
    prepare(&dir.join("ds"), &PrepareOptions { size: 16, split, ..Default::default() }, &|_, _| {}).unwrap().out
}

/// Tiny-preset config that trains on Bengal and Sphynx only (a 2-class toy set).
fn tiny_cfg(cache: &Path, extra: &[&str]) -> GeneratorConfig {
    let exclude: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().filter(|b| !["Bengal", "Sphynx"].contains(b)).map(|b| format!("\"{b}\"")).chain(["\"other\"".to_string()]).collect();
    let mut o = vec![
        format!("data.exclude=[{}]", exclude.join(",")),
        format!("data.cache=\"{}\"", cache.display()),
        "model.preset=tiny".into(),
        "schedule.warmup_epochs=0".into(),
        "schedule.kind=constant".into(),
        "optim.lr=0.002".into(),
        "train.batch_size=8".into(),
        "train.log_every=1".into(),
        "train.checkpoint_every=1000".into(),
        "predictions.enabled=false".into(),
    ];
    o.extend(extra.iter().map(|s| s.to_string()));
    GeneratorConfig::load("", "test", &o).unwrap()
}

#[test]
fn patchify_then_unpatchify_is_identity_and_tokens_map_to_their_patch() {
    let _serial = serial();
    let cfg = DitConfig::preset("tiny", 2).unwrap();
    let dev = Default::default();
    let m = Dit::<Cpu>::new(cfg, &dev);
    let x = Tensor::<Cpu, 4>::random([2, 3, 16, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let back = m.unpatchify(m.patchify(x.clone()));
    back.into_data().assert_eq(&x.into_data(), true);
    // Image whose patch (r, c) holds the value r·grid + c: token k must be all k.
    let (g, p) = (cfg.grid(), cfg.patch);
    let v: Vec<f32> = (0..3 * 16 * 16).map(|i| {
        let (y, x) = ((i % 256) / 16, i % 16);
        ((y / p) * g + x / p) as f32
    }).collect();
    let tok: Vec<f32> = m.patchify(Tensor::from_data(TensorData::new(v, [1, 3, 16, 16]), &dev)).into_data().to_vec().unwrap();
    for (k, chunk) in tok.chunks(cfg.patch_dim()).enumerate() {
        assert!(chunk.iter().all(|&a| a == k as f32), "token {k} holds {chunk:?}");
    }
}

#[test]
fn class_rows_start_as_large_as_a_trained_timestep_embedding() {
    let _serial = serial();
    // Guards the failure where every breed painted the same image: the timestep MLP's output grows
    // to a norm of 20–60 in a few thousand steps (small preset, hidden 192) while Adam barely moves
    // the class rows, so the rows must start near √hidden ≈ 14, not at DiT's 0.02·√hidden ≈ 0.3.
    let cfg = DitConfig::preset("small", 12).unwrap();
    let dev = Default::default();
    let m = Dit::<Cpu>::new(cfg, &dev);
    let w: Vec<f32> = m.y_embed.weight.val().into_data().to_vec().unwrap();
    let floor = 0.5 * (cfg.hidden as f32).sqrt();
    for (k, row) in w.chunks(cfg.hidden).enumerate() {
        let norm = row.iter().map(|a| a * a).sum::<f32>().sqrt();
        assert!(norm > floor, "class row {k} has norm {norm:.2}, below {floor:.2}");
    }
    // And the conditioning really changes with the class at a fixed t.
    let t = Tensor::<Cpu, 1>::from_data(TensorData::new(vec![0.3f32; 12], [12]), &dev);
    let c: Vec<f32> = m.condition(t, Tensor::<Cpu, 1, Int>::arange(0..12, &dev)).into_data().to_vec().unwrap();
    let rows: Vec<&[f32]> = c.chunks(cfg.hidden).collect();
    let norm = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>().sqrt();
    for k in 1..rows.len() {
        let diff: Vec<f32> = rows[k].iter().zip(rows[0]).map(|(a, b)| a - b).collect();
        assert!(norm(&diff) > 0.5 * norm(rows[0]), "class {k}: conditioning barely differs from class 0");
    }
}

#[test]
fn fresh_model_outputs_zero_and_target_is_never_zero() {
    let _serial = serial();
    let cfg = DitConfig::preset("tiny", 2).unwrap();
    let dev = Default::default();
    let m = Dit::<Cpu>::new(cfg, &dev);
    let x = Tensor::<Cpu, 4>::random([4, 3, 16, 16], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    let t = Tensor::<Cpu, 1>::from_data(TensorData::new(vec![0.1f32, 0.4, 0.7, 0.95], [4]), &dev);
    let y = Tensor::<Cpu, 1, Int>::from_data(TensorData::new(vec![0i64, 1, 2, 0], [4]), &dev);
    let out: Vec<f32> = m.forward(x.clone(), t, y).into_data().to_vec().unwrap();
    assert!(out.iter().all(|&v| v == 0.0), "adaLN-Zero: a fresh model must output exactly zero");
    let obj = generator::ObjectiveConfig::default();
    let draws = generator::draw_step(&obj, 1, 0, &[0, 1, 0, 1], 3 * 16 * 16, 2);
    let (loss, v) = generator::flow_loss(&m, x, &draws, "velocity");
    let v: Vec<f32> = v.into_data().to_vec().unwrap();
    let mean_abs = v.iter().map(|a| a.abs()).sum::<f32>() / v.len() as f32;
    assert!(mean_abs > 0.3, "velocity target is (nearly) zero: mean |v| = {mean_abs}");
    let l: f32 = loss.into_scalar().elem();
    assert!(l > 0.5, "a zero-output model must have a large loss against a real target, got {l}");
    assert!(draws.t.iter().all(|t| (0.0..1.0).contains(t)));
}

#[test]
fn loss_falls_ema_differs_and_resume_is_exact() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache = tiny_cache(t.path(), 8, [0.75, 0.25, 0.0]);
    let cfg = tiny_cfg(&cache, &["train.steps=60", "ema.decay=0.9"]);
    let run = t.path().join("run");
    let r = generator::train_generator(&cfg, &run, &mut Sinks::default(), &GenOptions::default()).unwrap();
    assert_eq!(r.meta.classes, vec!["Bengal".to_string(), "Sphynx".to_string()], "the dog class is excluded");
    let l = &r.losses;
    let first: f64 = l[..10].iter().map(|x| x.1).sum::<f64>() / 10.0;
    let last: f64 = l[l.len() - 10..].iter().map(|x| x.1).sum::<f64>() / 10.0;
    assert!(last < 0.8 * first, "loss did not fall: first 10 steps {first:.4}, last 10 {last:.4}");

    let (ema, meta) = generator::load_generator(&r.ema_weights).unwrap();
    let (raw, raw_meta) = generator::load_generator(&r.raw_weights).unwrap();
    assert!(meta.ema && !raw_meta.ema);
    let w = |m: &Dit<Cpu>| m.x_embed.weight.val().into_data().to_vec::<f32>().unwrap();
    let diff: f32 = w(&ema).iter().zip(w(&raw)).map(|(a, b)| (a - b).abs()).sum();
    assert!(diff > 1e-3, "EMA weights equal the raw weights after training");

    // 30 + resume 30 gives the same weights as 60 in one go.
    let run2 = t.path().join("run2");
    generator::train_generator(&cfg, &run2, &mut Sinks::default(), &GenOptions { resume: false, stop_after_steps: Some(30), init_from: None }).unwrap();
    let r2 = generator::train_generator(&cfg, &run2, &mut Sinks::default(), &GenOptions { resume: true, stop_after_steps: None, init_from: None }).unwrap();
    assert_eq!(r2.steps, 60);
    let (raw2, _) = generator::load_generator(&r2.raw_weights).unwrap();
    let (ema2, _) = generator::load_generator(&r2.ema_weights).unwrap();
    assert_eq!(w(&raw), w(&raw2), "resumed run differs from the uninterrupted one");
    assert_eq!(w(&ema), w(&ema2), "resumed EMA differs from the uninterrupted one");
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-9)).log10()
}

#[test]
fn tiny_model_overfits_two_images_and_sampling_is_seeded() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    // One training image per class: the conditional model must reproduce each.
    let cache = tiny_cache(t.path(), 1, [1.0, 0.0, 0.0]);
    let cfg = tiny_cfg(&cache, &["train.steps=1500", "train.batch_size=2", "data.splits=[\"train\"]", "objective.label_dropout=0.0", "objective.hflip=false", "ema.decay=0.0", "objective.t_sampling=uniform", "objective.target=velocity", "optim.lr=0.001", "model.hidden=128"]);
    let c = tinycats_data::cache::Cache::open(&cache).unwrap();
    let (idx, classes, map) = generator::training_set(&cfg, &c).unwrap();
    assert_eq!(idx.len(), 2, "expected one training image per class");
    let r = generator::train_generator(&cfg, &t.path().join("run"), &mut Sinks::default(), &GenOptions::default()).unwrap();
    let (m, meta) = generator::load_generator(&r.ema_weights).unwrap();
    let opts = SampleOptions::new(20, 1.0, Solver::Heun);
    for &i in &idx {
        let label = map[c.index.entries[i].label].unwrap();
        let x = generator::sample::<Cpu>(&m, &meta, &[label], &[7], &opts, &mut |_, _| {});
        let img = &generator::to_rgb8(x).unwrap()[0];
        let p = psnr(img, c.image(i));
        assert!(p > 20.0, "class {} ({}): PSNR {p:.1} dB against its only training image", label, classes[label]);
    }
    // Same seed → identical pixels; another seed → different ones; previews are delivered.
    let mut previews = 0;
    let a = generator::to_rgb8(generator::sample::<Cpu>(&m, &meta, &[0, 1], &[3, 4], &opts, &mut |_, _| previews += 1)).unwrap();
    let b = generator::to_rgb8(generator::sample::<Cpu>(&m, &meta, &[0, 1], &[3, 4], &opts, &mut |_, _| {})).unwrap();
    let cfg_opts = SampleOptions::new(20, 3.0, Solver::Euler);
    let c1 = generator::to_rgb8(generator::sample::<Cpu>(&m, &meta, &[0], &[3], &cfg_opts, &mut |_, _| {})).unwrap();
    let c2 = generator::to_rgb8(generator::sample::<Cpu>(&m, &meta, &[0], &[99], &cfg_opts, &mut |_, _| {})).unwrap();
    assert_eq!(a, b);
    assert_eq!(previews, 20);
    assert_ne!(c1, c2, "different seeds gave identical images");
    check_guidance_options(&m, &meta);
}

/// Guidance interval and APG on a trained conditional model (the null class differs from it).
fn check_guidance_options(m: &Dit<Cpu>, meta: &generator::GeneratorMeta) {
    let run = |o: &SampleOptions| -> Vec<f32> { generator::sample::<Cpu>(m, meta, &[0, 1], &[3, 4], o, &mut |_, _| {}).into_data().to_vec().unwrap() };
    // An interval that no step's t reaches (t < 1 on every step) is plain conditional sampling.
    let cond = run(&SampleOptions::new(10, 1.0, Solver::Euler));
    let never = run(&SampleOptions { interval: (1.0, 1.0), ..SampleOptions::new(10, 3.0, Solver::Euler) });
    assert_eq!(cond, never, "guidance outside its interval changed the samples");
    let full = run(&SampleOptions::new(10, 3.0, Solver::Euler));
    let early = run(&SampleOptions { interval: (0.0, 0.5), ..SampleOptions::new(10, 3.0, Solver::Euler) });
    assert_ne!(full, early);
    assert_ne!(cond, early);
    // Autoguidance with the model itself as the weaker guide cancels to conditional sampling
    // at any scale; a different guide (the untrained init) moves the samples.
    let auto = |g: &Dit<Cpu>| -> Vec<f32> {
        generator::sample_guided_by::<Cpu>(m, Some((g, meta.target.as_str())), meta, &[0, 1], &[3, 4], &SampleOptions::new(10, 3.0, Solver::Euler), &mut |_, _| {}).into_data().to_vec().unwrap()
    };
    assert_eq!(cond, auto(m), "self-autoguidance changed the samples");
    let untrained: Dit<Cpu> = meta.dit.init(&Default::default());
    let other = auto(&untrained);
    assert_ne!(cond, other);
    assert!(other.iter().all(|v| v.is_finite()));
    // Shift 1 is the uniform grid; another shift changes the samples but keeps them finite.
    let uniform = run(&SampleOptions { shift: 1.0, ..SampleOptions::new(10, 3.0, Solver::Euler) });
    assert_eq!(full, uniform);
    let shifted = run(&SampleOptions { shift: 3.0, ..SampleOptions::new(10, 3.0, Solver::Euler) });
    assert_ne!(full, shifted, "the time shift had no effect");
    assert!(shifted.iter().all(|v| v.is_finite()));
    // η = 0 is the deterministic step; η > 0 draws seeded noise: the same seeds give the same
    // samples, and the samples move with η.
    assert_eq!(full, run(&SampleOptions { eta: 0.0, ..SampleOptions::new(10, 3.0, Solver::Euler) }));
    let sto = |eta: f32| run(&SampleOptions { eta, ..SampleOptions::new(10, 3.0, Solver::Euler) });
    let (s1, s2, s3) = (sto(0.5), sto(0.5), sto(0.9));
    assert_eq!(s1, s2, "stochastic sampling is not reproducible from the seed");
    assert_ne!(s1, full, "η = 0.5 had no effect");
    assert_ne!(s1, s3);
    assert!(s1.iter().chain(&s3).all(|v| v.is_finite()));
    // APG, one Euler step from t = 0: x1 = x0 + v_c + (s − 1)·Δ⊥ with Δ = v_c − v_null and
    // Δ⊥ orthogonal (per image) to x̂_c = x0 + v_c, which is the cfg = 1 result.
    let one = |cfg: f64, g: Guidance| run(&SampleOptions { guidance: g, ..SampleOptions::new(1, cfg, Solver::Euler) });
    let (xc, xu, xa) = (one(1.0, Guidance::Cfg), one(0.0, Guidance::Cfg), one(4.0, Guidance::Apg));
    let per = xc.len() / 2;
    let f64s = |v: &[f32]| -> Vec<f64> { v.iter().map(|x| *x as f64).collect() };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    for i in 0..2 {
        let r = i * per..(i + 1) * per;
        let (hat, u, a) = (f64s(&xc[r.clone()]), f64s(&xu[r.clone()]), f64s(&xa[r]));
        let delta: Vec<f64> = hat.iter().zip(&u).map(|(c, u)| c - u).collect();
        let k = dot(&delta, &hat) / dot(&hat, &hat);
        let want: Vec<f64> = delta.iter().zip(&hat).map(|(d, h)| 3.0 * (d - k * h)).collect();
        let got: Vec<f64> = a.iter().zip(&hat).map(|(a, c)| a - c).collect();
        let scale = dot(&want, &want).sqrt();
        assert!(scale > 1e-3, "image {i}: the guidance term vanished");
        let err = want.iter().zip(&got).map(|(w, g)| (w - g).powi(2)).sum::<f64>().sqrt();
        assert!(err < 1e-3 * scale.max(1.0), "image {i}: APG update off by {err} (norm {scale})");
        let cos = dot(&got, &hat) / (scale * dot(&hat, &hat).sqrt());
        assert!(cos.abs() < 1e-3, "image {i}: APG update not orthogonal to x̂_c (cos {cos})");
    }
}

#[test]
fn time_grid_runs_from_noise_to_image() {
    for steps in [1, 2, 7, 20] {
        for shift in [0.5f32, 1.0, 2.0, 3.0] {
            let g = generator::time_grid(steps, shift);
            assert_eq!(g.len(), steps + 1);
            assert_eq!((g[0], g[steps]), (0.0, 1.0), "steps {steps}, shift {shift}");
            assert!(g.windows(2).all(|w| w[1] > w[0]), "steps {steps}, shift {shift}: not increasing: {g:?}");
            for (k, t) in g.iter().enumerate().take(steps).skip(1) {
                let u = k as f32 / steps as f32;
                // Above 1 the grid lags the uniform one (more steps near noise), below 1 it leads.
                match shift.partial_cmp(&1.0).unwrap() {
                    std::cmp::Ordering::Greater => assert!(*t < u),
                    std::cmp::Ordering::Less => assert!(*t > u),
                    std::cmp::Ordering::Equal => assert!((t - u).abs() < 1e-6),
                }
            }
        }
    }
    // Shift 3 at the midpoint: 0.5 / (3 − 2·0.5) = 0.25.
    assert!((generator::time_grid(2, 3.0)[1] - 0.25).abs() < 1e-7);
}

#[test]
fn repa_aligns_tokens_and_resume_is_exact() {
    let _serial = serial();
    let Some(wt) = lite0_weights() else {
        eprintln!("SKIPPED repa_aligns_tokens_and_resume_is_exact: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let cache = tiny_cache(t.path(), 8, [0.75, 0.25, 0.0]);
    let wset = format!("repa.weights=\"{}\"", wt.display());
    let cfg = tiny_cfg(&cache, &["train.steps=40", "repa.weight=0.5", "repa.block=1", "repa.hidden=64", &wset]);
    let run = t.path().join("run");
    let r = generator::train_generator(&cfg, &run, &mut Sinks::default(), &GenOptions::default()).unwrap();
    // The projected tokens learn to point along the encoder's features.
    let c = &r.repa_cos;
    assert_eq!(c.len(), 40, "one alignment value per logged step");
    let first: f64 = c[..5].iter().map(|x| x.1).sum::<f64>() / 5.0;
    let last: f64 = c[c.len() - 5..].iter().map(|x| x.1).sum::<f64>() / 5.0;
    assert!(last > first + 0.1, "alignment did not rise: first 5 steps {first:.3}, last 5 {last:.3}");
    // The targets were cached next to the prepared images.
    let cached: Vec<_> = std::fs::read_dir(cache.join("features")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("repa-lite0-g4-") && e.path().join("targets.f32").exists()).collect();
    assert_eq!(cached.len(), 1, "one keyed target folder");

    // 20 + resume 20 = 40 in one go: the projector and its optimizer state are restored too. This
    // run loads the targets that the first one computed, so it also checks that the two agree.
    let run2 = t.path().join("run2");
    generator::train_generator(&cfg, &run2, &mut Sinks::default(), &GenOptions { resume: false, stop_after_steps: Some(20), init_from: None }).unwrap();
    let r2 = generator::train_generator(&cfg, &run2, &mut Sinks::default(), &GenOptions { resume: true, stop_after_steps: None, init_from: None }).unwrap();
    let w = |m: &Dit<Cpu>| m.x_embed.weight.val().into_data().to_vec::<f32>().unwrap();
    let (raw, _) = generator::load_generator(&r.raw_weights).unwrap();
    let (raw2, _) = generator::load_generator(&r2.raw_weights).unwrap();
    assert_eq!(w(&raw), w(&raw2), "resumed REPA run differs from the uninterrupted one");
    assert_eq!(r.repa_cos, r2.repa_cos);

    // REPA changes the training: the same config without it ends elsewhere.
    let off = tiny_cfg(&cache, &["train.steps=40"]);
    let r3 = generator::train_generator(&off, &t.path().join("run3"), &mut Sinks::default(), &GenOptions::default()).unwrap();
    assert!(r3.repa_cos.is_empty());
    let (raw3, _) = generator::load_generator(&r3.raw_weights).unwrap();
    assert_ne!(w(&raw), w(&raw3));
}

#[test]
fn repa_targets_are_lite0_features_per_token_and_view() {
    let _serial = serial();
    let Some(wt) = lite0_weights() else {
        eprintln!("SKIPPED repa_targets_are_lite0_features_per_token_and_view: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    };
    use tinycats_models::efficientnet::EfficientNetLite0;
    use tinycats_train::repa::{Targets, FEATURE_DIM};
    let t = tempfile::tempdir().unwrap();
    let dir = tiny_cache(t.path(), 2, [0.5, 0.5, 0.0]);
    let cache = tinycats_data::cache::Cache::open(&dir).unwrap();
    let idx = vec![0usize, 3, 5];
    let (g, s) = (4usize, 16usize);
    let tg = Targets::load_or_compute(&cache, &idx, g, &wt, &mut |_, _| {}).unwrap();
    let net = EfficientNetLite0::<Cpu>::from_pretrained(tinycats_models::weights::TensorMap::read(&wt).unwrap(), &Default::default()).unwrap().fold_bn();
    let mut rz = fast_image_resize::Resizer::new();
    for &i in &idx {
        let src = cache.image(i);
        for mirrored in [false, true] {
            // Independent path: mirror the u8 pixels by hand, upscale, run Lite0, read one column.
            let px: Vec<u8> = (0..s * s).flat_map(|p| {
                let (y, x) = (p / s, p % s);
                let q = y * s + if mirrored { s - 1 - x } else { x };
                src[3 * q..3 * q + 3].to_vec()
            }).collect();
            let big = tinycats_data::pixels::resize_square(&image::RgbImage::from_raw(s as u32, s as u32, px).unwrap(), 128, tinycats_data::pixels::ResizeMode::Crop, &mut rz).unwrap();
            let x = Tensor::<Cpu, 4>::from_data(TensorData::new(tinycats_train::predictor::hwc_to_chw(&big, 128), [1, 3, 128, 128]), &Default::default());
            let f = net.front(EfficientNetLite0::<Cpu>::normalize(x), 16);
            let row = tg.get(i, mirrored).unwrap();
            for (r, c) in [(0, 0), (1, 2), (3, 1)] {
                let col: Vec<f32> = f.clone().slice([0..1, 0..FEATURE_DIM, r..r + 1, c..c + 1]).into_data().to_vec().unwrap();
                let n = col.iter().map(|v| v * v).sum::<f32>().sqrt();
                let got = &row[(r * g + c) * FEATURE_DIM..(r * g + c + 1) * FEATURE_DIM];
                let d = col.iter().zip(got).map(|(a, b)| (a / n - b).abs()).fold(0f32, f32::max);
                assert!(d < 1e-4, "entry {i}, mirrored {mirrored}, token ({r},{c}): max diff {d}");
            }
            // A batch holding the (mirrored) pixels gets this view's targets.
            let chw: Vec<f32> = (0..3).flat_map(|ch| {
                let src = src.to_vec();
                (0..s * s).map(move |p| {
                    let (y, x) = (p / s, p % s);
                    src[3 * (y * s + if mirrored { s - 1 - x } else { x }) + ch] as f32 / 255.0
                })
            }).collect();
            assert_eq!(tg.batch(&cache, &[i], &chw).unwrap(), row.to_vec());
        }
    }
    assert!(tg.get(1, false).is_none(), "entry 1 was not in the list");
}

#[test]
fn config_errors_name_the_key() {
    let _serial = serial();
    for (set, key) in [
        ("objective.target=\"noise\"", "objective.target"),
        ("model.preset=\"huge\"", "model.preset"),
        ("objective.label_dropout=1.5", "objective.label_dropout"),
        ("model.heads=5", "model.hidden"),
        ("data.splits=[\"holdout\"]", "data.splits"),
        ("train.stepz=3", "stepz"),
    ] {
        let e = GeneratorConfig::load("", "t", &[set.to_string()]).unwrap_err().to_string();
        assert!(e.contains(key), "{set} → {e}");
    }
    for (sets, key) in [(vec!["repa.weight=0.5", "repa.block=7"], "repa.block"), (vec!["repa.weight=-1"], "repa.weight"), (vec!["repa.weight=0.5", "repa.hidden=2"], "repa.hidden")] {
        let sets: Vec<String> = sets.into_iter().map(String::from).collect();
        let e = GeneratorConfig::load("", "t", &sets).unwrap_err().to_string();
        assert!(e.contains(key), "{sets:?} → {e}");
    }
    let t = tempfile::tempdir().unwrap();
    let cache = tiny_cache(t.path(), 2, [0.5, 0.5, 0.0]);
    let cfg = GeneratorConfig::load("", "t", &[format!("data.cache=\"{}\"", cache.display())]).unwrap();
    let e = generator::train_generator(&cfg, &t.path().join("r"), &mut Sinks::default(), &GenOptions::default()).unwrap_err().to_string();
    assert!(e.contains("16 px") && e.contains("64 px"), "{e}");
}
