//! The latent path: the autoencoder (shapes, upsampling, learning, saving) and a DiT trained on
//! its latents that paints pixels through the decoder, on tiny generated data.

use burn::prelude::*;
use std::path::{Path, PathBuf};
use tinycats_data::fixtures::{write_fixture, FixtureSpec};
use tinycats_data::prepare::{prepare, PrepareOptions};
use tinycats_models::autoencoder::{upsample2, AeConfig, Autoencoder};
use tinycats_models::Cpu;
use tinycats_train::autoencoder::{self as ae, AeTrainConfig};
use tinycats_train::generator::{self, GenOptions, GeneratorConfig, Painter, SampleOptions, Solver};
use tinycats_train::sink::Sinks;

/// burn-flex has one process-wide RNG (see tests/generator.rs): these tests do not interleave.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A 16-px cache of Bengal and Sphynx (plus the other breeds and a dog, excluded by the configs).
fn tiny_cache(dir: &Path) -> PathBuf {
    let mut b: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().map(|s| s.to_string()).collect();
    b.push("beagle".into());
    write_fixture(&dir.join("ds"), &FixtureSpec { breeds: b, per_class: 6, size: 32, quirks: false, seed: 11 }).unwrap();
    prepare(&dir.join("ds"), &PrepareOptions { size: 16, split: [0.5, 0.0, 0.5], ..Default::default() }, &|_, _| {}).unwrap().out
}

fn two_breeds() -> String {
    let ex: Vec<String> = tinycats_data::labels::CAT_BREEDS.iter().filter(|b| !["Bengal", "Sphynx"].contains(b)).map(|b| format!("\"{b}\"")).chain(["\"other\"".to_string()]).collect();
    format!("data.exclude=[{}]", ex.join(","))
}

/// Overrides for a tiny latent generator (patch 2) on `cache`'s Bengals and Sphynxes, in the
/// latent space of the autoencoder `ae`, then `extra`.
fn latent_gen_sets(cache: &Path, ae: &Path, extra: &[&str]) -> Vec<String> {
    let mut o = vec![
        two_breeds(),
        format!("data.cache=\"{}\"", cache.display()),
        "data.splits=[\"train\"]".into(),
        format!("data.autoencoder=\"{}\"", ae.display()),
        "model.preset=tiny".into(),
        "model.patch=2".into(),
        "schedule.warmup_epochs=0".into(),
        "schedule.kind=constant".into(),
        "optim.lr=0.002".into(),
        "train.batch_size=6".into(),
        "train.log_every=1".into(),
        "train.checkpoint_every=1000".into(),
    ];
    o.extend(extra.iter().map(|s| s.to_string()));
    o
}

fn ae_cfg(cache: &Path, extra: &[&str]) -> AeTrainConfig {
    let mut o = vec![two_breeds(), format!("data.cache=\"{}\"", cache.display()), "data.splits=[\"train\"]".into(), "model.width=8".into(), "model.levels=1".into(), "train.batch_size=6".into(), "train.crop=0".into(), "train.warmup_steps=10".into(), "train.log_every=10".into(), "train.lr=0.005".into()];
    o.extend(extra.iter().map(|s| s.to_string()));
    AeTrainConfig::load("", "test", &o).unwrap()
}

#[test]
fn upsampling_repeats_each_pixel_and_shapes_follow_the_levels() {
    let _serial = serial();
    let dev = Default::default();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(vec![1f32, 2., 3., 4.], [1, 1, 2, 2]), &dev);
    let up: Vec<f32> = upsample2(x).into_data().to_vec().unwrap();
    assert_eq!(up, vec![1., 1., 2., 2., 1., 1., 2., 2., 3., 3., 4., 4., 3., 3., 4., 4.]);

    let cfg = AeConfig { image_size: 32, channels: 3, latent_channels: 4, width: 8, levels: 2, decoder_width: 0, classes: 0 };
    let m = Autoencoder::<Cpu>::new(cfg, &dev);
    let img = Tensor::<Cpu, 4>::random([2, 3, 32, 32], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    let z = m.encoder.forward(img);
    assert_eq!(z.dims(), [2, 4, 8, 8]);
    assert_eq!(m.decoder.forward(z).dims(), [2, 3, 32, 32]);
    let (enc, dec, flops) = cfg.params_and_decoder_flops();
    assert_eq!(enc + dec, m.num_params(), "parameter count formula");
    assert!(flops > 0);
    assert!(AeConfig { image_size: 30, ..cfg }.check().unwrap_err().contains("2^levels"));
    assert!(AeConfig { levels: 0, ..cfg }.check().unwrap_err().contains("levels"));
}

#[test]
fn autoencoder_learns_to_reconstruct_and_round_trips_through_its_file() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let cache = tinycats_data::cache::Cache::open(&cache_dir).unwrap();
    let untrained = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=1"]), &t.path().join("ae0"), &mut Sinks::default()).unwrap();
    let r = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=300"]), &t.path().join("ae"), &mut Sinks::default()).unwrap();
    // Held out: the test split, which training never saw.
    assert!(r.meta.held_out_l1 < 0.6 * untrained.meta.held_out_l1, "held-out L1 {:.4} vs untrained {:.4}", r.meta.held_out_l1, untrained.meta.held_out_l1);
    assert!(r.meta.held_out_psnr > untrained.meta.held_out_psnr + 3.0);
    assert_eq!(r.meta.mean.len(), 4);
    assert!(t.path().join("ae/reconstructions.png").exists(), "the run shows held-out reconstructions");

    let (m, meta) = ae::load_autoencoder(&r.weights).unwrap();
    assert_eq!(meta, r.meta);
    // Normalised latents of the training images have about zero mean and unit spread per channel.
    let gen_cfg = GeneratorConfig::load("", "t", &[two_breeds(), format!("data.cache=\"{}\"", cache_dir.display()), "data.splits=[\"train\"]".into()]).unwrap();
    let (train_idx, _, _) = generator::training_set(&gen_cfg, &cache).unwrap();
    let z = ae::encode(&m, &meta, &cache, &train_idx, false).unwrap();
    let plane = 8 * 8;
    for c in 0..4 {
        let v: Vec<f32> = z.chunks(plane).skip(c).step_by(4).flatten().copied().collect();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 1e-3 && (var - 1.0).abs() < 1e-2, "channel {c}: mean {mean}, var {var}");
    }
    // decode(encode(x)) with the stored statistics reproduces the direct reconstruction.
    let dev = Default::default();
    let zt = Tensor::<Cpu, 4>::from_data(TensorData::new(z, [train_idx.len(), 4, 8, 8]), &dev);
    let via_norm: Vec<f32> = ae::decode(&m.decoder, &meta, zt, &[]).into_data().to_vec().unwrap();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(ae::images_nchw(&cache, &train_idx, false), [train_idx.len(), 3, 16, 16]), &dev);
    let direct: Vec<f32> = m.decoder.forward(m.encoder.forward(x)).clamp(-1.0, 1.0).into_data().to_vec().unwrap();
    let worst = via_norm.iter().zip(&direct).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "normalise + decode differs from the plain round trip by {worst}");
    // Mirrored images encode differently (the generator keeps both orientations).
    assert_ne!(ae::encode(&m, &meta, &cache, &train_idx[..1], true).unwrap(), ae::encode(&m, &meta, &cache, &train_idx[..1], false).unwrap());

    // Not an autoencoder file → the error names the file.
    let bad = t.path().join("bad.safetensors");
    std::fs::write(&bad, b"not safetensors").unwrap();
    let e = ae::load_autoencoder(&bad).unwrap_err().to_string();
    assert!(e.contains("bad.safetensors"), "{e}");
}

#[test]
fn latent_generator_trains_on_latents_and_paints_pixels() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let a = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=60"]), &t.path().join("ae"), &mut Sinks::default()).unwrap();
    let other_ae = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5", "train.seed=99"]), &t.path().join("ae-other"), &mut Sinks::default()).unwrap();
    let sets = |extra: &[&str]| latent_gen_sets(&cache_dir, &a.weights, &[&["predictions.every=40"], extra].concat());
    let cfg = GeneratorConfig::load("", "t", &sets(&["train.steps=40"])).unwrap();
    let run = t.path().join("gen");
    let r = generator::train_generator(&cfg, &run, &mut Sinks::default(), &GenOptions::default()).unwrap();
    let l = &r.losses;
    let first: f64 = l[..5].iter().map(|x| x.1).sum::<f64>() / 5.0;
    let last: f64 = l[l.len() - 5..].iter().map(|x| x.1).sum::<f64>() / 5.0;
    assert!(last < 0.9 * first, "loss did not fall: {first:.4} → {last:.4}");
    // The DiT works on the 8×8×4 latent; the painted images are the autoencoder's 16 px.
    let (m, meta) = generator::load_generator(&r.ema_weights).unwrap();
    assert_eq!((meta.dit.image_size, meta.dit.channels), (8, 4));
    assert_eq!(meta.latent.as_ref(), Some(&a.meta));
    assert_eq!(meta.image_size(), 16);
    assert!(run.join(generator::AUTOENCODER_FILE).exists(), "the run keeps its autoencoder");
    assert!(run.join("samples/step-0000040.png").exists(), "predictions are painted through the decoder");
    let painter = Painter::for_generator(&r.ema_weights, &meta).unwrap();
    let opts = SampleOptions::new(4, 2.0, Solver::Euler);
    let x = painter.paint(generator::sample::<Cpu>(&m, &meta, &[0, 1], &[1, 2], &opts, &mut |_, _| {}), &[0, 1]);
    assert_eq!(x.dims(), [2, 3, 16, 16]);
    let px: Vec<f32> = x.into_data().to_vec().unwrap();
    assert!(px.iter().all(|v| (-1.0..=1.0).contains(v)));

    // Resuming keeps the run's own autoencoder even when the configured file was replaced since:
    // 20 + 20 steps equal 40 in one go, and the metadata names the original autoencoder.
    let resumed = t.path().join("gen-resumed");
    let ae_file = t.path().join("ae-moving.safetensors");
    std::fs::copy(&a.weights, &ae_file).unwrap();
    let mut moving = cfg.clone();
    moving.data.autoencoder = ae_file.clone();
    generator::train_generator(&moving, &resumed, &mut Sinks::default(), &GenOptions { resume: false, stop_after_steps: Some(20), init_from: None }).unwrap();
    std::fs::copy(&other_ae.weights, &ae_file).unwrap();
    let r2 = generator::train_generator(&moving, &resumed, &mut Sinks::default(), &GenOptions { resume: true, stop_after_steps: None, init_from: None }).unwrap();
    let (m2, meta2) = generator::load_generator(&r2.raw_weights).unwrap();
    let (m1, _) = generator::load_generator(&r.raw_weights).unwrap();
    assert_eq!(meta2.latent.as_ref(), Some(&a.meta), "the resumed run switched autoencoders");
    let w = |m: &tinycats_models::dit::Dit<Cpu>| m.x_embed.weight.val().into_data().to_vec::<f32>().unwrap();
    assert_eq!(w(&m1), w(&m2), "resumed latent run differs from the uninterrupted one");

    // A decoder fine-tuned with a frozen encoder keeps the latent space: the encoder's weights
    // and the latent statistics are unchanged, the decoder's weights are not, and the generator
    // paints through it.
    let init = format!("train.init=\"{}\"", a.weights.display());
    let ft = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5", &init, "train.freeze_encoder=true"]), &t.path().join("ae-ft"), &mut Sinks::default()).unwrap();
    let (m_a, _) = ae::load_autoencoder(&a.weights).unwrap();
    let (m_ft, meta_ft) = ae::load_autoencoder(&ft.weights).unwrap();
    assert!(meta_ft.same_latents(&a.meta) && meta_ft != a.meta, "fine-tuned metadata {meta_ft:?}");
    let v = |p: &burn::module::Param<Tensor<Cpu, 4>>| p.val().into_data().to_vec::<f32>().unwrap();
    assert_eq!(v(&m_a.encoder.conv_in.weight), v(&m_ft.encoder.conv_in.weight), "the frozen encoder changed");
    assert_eq!(v(&m_a.encoder.conv_out.weight), v(&m_ft.encoder.conv_out.weight), "the frozen encoder changed");
    assert_ne!(v(&m_a.decoder.conv_out.weight), v(&m_ft.decoder.conv_out.weight), "the decoder did not train");
    std::fs::copy(&ft.weights, run.join(generator::AUTOENCODER_FILE)).unwrap();
    Painter::for_generator(&r.ema_weights, &meta).expect("a fine-tuned decoder of the same latents is refused");
    // A wider decoder on the same frozen encoder: a fresh decoder of another shape, the same latents.
    let wide = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5", &init, "train.freeze_encoder=true", "model.decoder_width=12"]), &t.path().join("ae-wide"), &mut Sinks::default()).unwrap();
    let (m_w, meta_w) = ae::load_autoencoder(&wide.weights).unwrap();
    assert!(meta_w.same_latents(&a.meta) && meta_w.ae.decoder_width == 12);
    assert_eq!(v(&m_a.encoder.conv_out.weight), v(&m_w.encoder.conv_out.weight), "the frozen encoder changed");
    assert_eq!(m_w.decoder.conv_out.weight.dims(), [3, 12, 3, 3]);
    let (enc_p, dec_p, _) = meta_w.ae.params_and_decoder_flops();
    assert_eq!(enc_p + dec_p, m_w.num_params(), "parameter count formula with a wider decoder");
    std::fs::copy(&wide.weights, run.join(generator::AUTOENCODER_FILE)).unwrap();
    let painter = Painter::for_generator(&r.ema_weights, &meta).expect("a wider decoder of the same latents is refused");
    let x = painter.paint(generator::sample::<Cpu>(&m, &meta, &[0], &[1], &opts, &mut |_, _| {}), &[0]);
    assert_eq!(x.dims(), [1, 3, 16, 16]);
    // Without the freeze, the encoder moves and its statistics with it: a new latent space.
    let moved = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5", &init]), &t.path().join("ae-moved"), &mut Sinks::default()).unwrap();
    assert!(!moved.meta.same_latents(&a.meta));
    // `train.init` of another shape is refused by key, before anything is written.
    let e = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5", &init, "model.levels=2"]), &t.path().join("ae-bad"), &mut Sinks::default()).unwrap_err().to_string();
    assert!(e.contains("train.init"), "{e}");
    assert!(!t.path().join("ae-bad/autoencoder.safetensors").exists());

    // A different autoencoder beside the weights is refused by name.
    std::fs::copy(&other_ae.weights, run.join(generator::AUTOENCODER_FILE)).unwrap();
    let e = Painter::for_generator(&r.ema_weights, &meta).err().expect("mismatched autoencoder accepted").to_string();
    assert!(e.contains(generator::AUTOENCODER_FILE) && e.contains("not the one"), "{e}");
    // No autoencoder beside the weights: the error says it must be there.
    std::fs::remove_file(run.join(generator::AUTOENCODER_FILE)).unwrap();
    let e = format!("{:#}", Painter::for_generator(&r.ema_weights, &meta).err().expect("missing autoencoder accepted"));
    assert!(e.contains("latent generator") && e.contains(generator::AUTOENCODER_FILE), "{e}");

    // REPA cannot be combined with latents; a patch that fits the 16-px preset but not the 8-px
    // latent is named.
    let e = generator::train_generator(&GeneratorConfig::load("", "t", &sets(&["repa.weight=0.5"])).unwrap(), &t.path().join("g2"), &mut Sinks::default(), &GenOptions::default()).unwrap_err().to_string();
    assert!(e.contains("repa.weight") && e.contains("data.autoencoder"), "{e}");
    let e = generator::train_generator(&GeneratorConfig::load("", "t", &sets(&["model.patch=16"])).unwrap(), &t.path().join("g3"), &mut Sinks::default(), &GenOptions::default()).unwrap_err().to_string();
    assert!(e.contains("model.patch"), "{e}");
}

#[test]
fn autoencoder_config_errors_name_the_key() {
    for (set, key) in [("train.freeze_encoder=true", "train.init"), ("loss.perceptual=-1", "loss.perceptual"), ("train.crop=6", "train.crop"), ("model.levels=0", "model.levels"), ("loss.latent_noise=-1", "loss.latent_noise"), ("data.autoencoder=\"x\"", "data.autoencoder"), ("train.stepz=3", "stepz"), ("loss.adversarial=-1", "loss.adversarial"), ("loss.disc_width=0", "loss.disc_width"), ("loss.critic_breed=true", "loss.critic_breed")] {
        let e = AeTrainConfig::load("", "t", &[set.to_string()]).unwrap_err().to_string();
        assert!(e.contains(key), "{set} → {e}");
    }
}

#[test]
fn perceptual_distance_is_zero_for_equal_images_and_trains_the_decoder() {
    let _serial = serial();
    use burn::backend::Autodiff;
    use tinycats_models::efficientnet::EfficientNetLite0;
    type B = Autodiff<Cpu>;
    let dev = Default::default();
    // Any Lite0 weights show the distance's properties; the trained ones are tested below.
    let net = EfficientNetLite0::<B>::new(10, &dev).no_grad();
    let x = Tensor::<B, 4>::random([2, 3, 16, 16], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev);
    let same: f32 = ae::perceptual_distance(&net, x.clone(), x.clone()).into_scalar();
    assert!(same.abs() < 1e-6, "distance of an image to itself: {same}");
    let y = Tensor::<B, 4>::random([2, 3, 16, 16], burn::tensor::Distribution::Uniform(-1.0, 1.0), &dev).require_grad();
    let d = ae::perceptual_distance(&net, y.clone(), x);
    assert!(d.clone().into_scalar() > 1e-3);
    let g = y.grad(&d.backward()).expect("no gradient reaches the image");
    assert!(g.abs().sum().into_scalar() > 0.0, "zero gradient");

    // With the ImageNet weights: a decoder fine-tuned on the perceptual term logs it.
    let w = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/efficientnet-lite0.safetensors");
    if !w.is_file() {
        eprintln!("SKIPPED perceptual fine-tuning: run scripts/setup.sh for the EfficientNet-Lite0 weights");
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let a = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5"]), &t.path().join("ae"), &mut Sinks::default()).unwrap();
    let sets = [format!("train.init=\"{}\"", a.weights.display()), "train.freeze_encoder=true".into(), "loss.perceptual=1.0".into(), format!("loss.perceptual_weights=\"{}\"", w.display()), "train.steps=10".into()];
    let r = ae::train_autoencoder(&ae_cfg(&cache_dir, &sets.iter().map(|s| s.as_str()).collect::<Vec<_>>()), &t.path().join("ae-p"), &mut Sinks::default()).unwrap();
    assert_eq!(r.perceptual_losses.len(), 1);
    assert!(r.perceptual_losses[0].1.is_finite() && r.perceptual_losses[0].1 > 0.0, "{:?}", r.perceptual_losses);
    assert!(r.meta.same_latents(&a.meta));
    // A missing weights file is named with its key.
    let mut bad = sets.to_vec();
    bad[3] = "loss.perceptual_weights=\"nowhere.safetensors\"".into();
    let e = format!("{:#}", ae::train_autoencoder(&ae_cfg(&cache_dir, &bad.iter().map(|s| s.as_str()).collect::<Vec<_>>()), &t.path().join("ae-q"), &mut Sinks::default()).unwrap_err());
    assert!(e.contains("loss.perceptual_weights"), "{e}");
}

#[test]
fn an_adversarial_critic_learns_beside_the_decoder_and_only_its_term_changes_the_decoder() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let a = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5"]), &t.path().join("ae"), &mut Sinks::default()).unwrap();
    let init = format!("train.init=\"{}\"", a.weights.display());
    let run = |name: &str, extra: &[&str]| {
        let mut sets = vec![init.as_str(), "train.freeze_encoder=true", "train.steps=40", "train.log_every=20"];
        sets.extend(extra);
        ae::train_autoencoder(&ae_cfg(&cache_dir, &sets), &t.path().join(name), &mut Sinks::default())
    };
    let plain = run("plain", &[]).unwrap();
    assert!(plain.adversarial_losses.is_empty());
    // The critic trains from step 0 but the decoder feels it only from `adversarial_start`: a
    // start past the last step leaves the decoder exactly as without a critic.
    let late = run("late", &["loss.adversarial=0.5", "loss.adversarial_start=1000"]).unwrap();
    assert_eq!(late.meta.held_out_l1, plain.meta.held_out_l1, "a critic the decoder never hears changed the decoder");
    let (w0, w1) = (late.adversarial_losses[0], late.adversarial_losses[1]);
    let (gap0, hinge0, gap1, hinge1) = (w0.gap, w0.hinge, w1.gap, w1.hinge);
    assert_eq!((w0.scale, w1.scale), (0.0, 0.0), "no adversarial scale before the start");
    // At random initialisation the hinge loss is about 2 (no separation); the critic learns to
    // score photos above these poor reconstructions.
    assert!((hinge0 - 2.0).abs() < 0.5, "first window's hinge loss {hinge0}");
    assert!(hinge1 < hinge0 && hinge1 < 1.5, "critic did not learn: hinge {hinge0} → {hinge1}");
    assert!(gap1 < gap0 && gap1 < 0.0, "decoded windows should score below photos: gap {gap0} → {gap1}");
    let gan = run("gan", &["loss.adversarial=0.5"]).unwrap();
    assert_eq!(gan.adversarial_losses.len(), 2);
    // The adaptive scale was measured (a finite, positive multiple of loss.adversarial).
    assert!(gan.adversarial_losses.iter().all(|w| w.scale.is_finite() && w.scale > 0.0), "{:?}", gan.adversarial_losses);
    assert_ne!(gan.meta.held_out_l1, plain.meta.held_out_l1, "the adversarial term did not reach the decoder");
    assert!(gan.meta.same_latents(&a.meta), "a decoder-only run must keep the latents");
    // The critic needs windows of 16 px or more; the error names the key and the limit.
    let e = format!("{:#}", run("small", &["loss.adversarial=0.5", "train.crop=8"]).unwrap_err());
    assert!(e.contains("loss.adversarial") && e.contains("16 px"), "{e}");
}

#[test]
fn a_breed_conditioned_decoder_starts_as_its_init_learns_per_breed_and_must_match_the_generator() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let a = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=5"]), &t.path().join("ae"), &mut Sinks::default()).unwrap();
    let (base, _) = ae::load_autoencoder(&a.weights).unwrap();
    let dev = Default::default();
    let z = Tensor::<Cpu, 4>::random([2, 4, 8, 8], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let out = |d: &tinycats_models::autoencoder::Decoder<Cpu>, y: &[usize]| ae::decode(d, &a.meta, z.clone(), y).into_data().to_vec::<f32>().unwrap();

    // Zero FiLM tables: a conditioned copy paints exactly what its init painted, for any breed.
    let mut cond = base.decoder.clone();
    cond.cfg.classes = 2;
    cond.film = tinycats_models::autoencoder::film_tables(&cond.cfg, &dev);
    assert!(cond.conditioned() && !base.decoder.conditioned());
    assert_eq!(out(&cond, &[0, 1]), out(&base.decoder, &[0, 1]), "zero modulation changed the decoder");

    // Fine-tuned with `model.conditional`: the encoder and latents stay, the breeds are named in
    // the file, and the same latent now paints differently per breed.
    let init = format!("train.init=\"{}\"", a.weights.display());
    let c = ae::train_autoencoder(&ae_cfg(&cache_dir, &[&init, "train.freeze_encoder=true", "model.conditional=true", "train.steps=30"]), &t.path().join("ae-cond"), &mut Sinks::default()).unwrap();
    let (m_c, meta_c) = ae::load_autoencoder(&c.weights).unwrap();
    assert_eq!(meta_c.classes, ["Bengal", "Sphynx"]);
    assert!(meta_c.same_latents(&a.meta) && meta_c.ae.classes == 2);
    let (p0, p1) = (out(&m_c.decoder, &[0, 0]), out(&m_c.decoder, &[1, 1]));
    let diff = p0.iter().zip(&p1).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff > 1e-3, "the breed does not reach the decoder (max difference {diff})");
    let (enc_p, dec_p, _) = meta_c.ae.params_and_decoder_flops();
    assert_eq!(enc_p + dec_p, m_c.num_params(), "parameter count formula with FiLM tables");

    // A critic that also sees the breed (one-hot planes) trains beside it.
    let g = ae::train_autoencoder(&ae_cfg(&cache_dir, &[&init, "train.freeze_encoder=true", "model.conditional=true", "loss.adversarial=0.5", "loss.critic_breed=true", "train.steps=20"]), &t.path().join("ae-cgan"), &mut Sinks::default()).unwrap();
    assert!(!g.adversarial_losses.is_empty() && g.adversarial_losses.iter().all(|w| w.hinge.is_finite() && w.scale > 0.0), "{:?}", g.adversarial_losses);

    // A generator of the same breeds paints through it, per breed.
    let gen = GeneratorConfig::load("", "test", &latent_gen_sets(&cache_dir, &c.weights, &["train.steps=2"])).unwrap();
    let r = generator::train_generator(&gen, &t.path().join("gen"), &mut Sinks::default(), &GenOptions::default()).unwrap();
    let (m, meta) = generator::load_generator(&r.ema_weights).unwrap();
    let painter = Painter::for_generator(&r.ema_weights, &meta).unwrap();
    let opts = SampleOptions::new(2, 1.0, Solver::Euler);
    let draw = |b: usize| painter.paint(generator::sample::<Cpu>(&m, &meta, &[0], &[1], &opts, &mut |_, _| {}), &[b]).into_data().to_vec::<f32>().unwrap();
    assert_ne!(draw(0), draw(1), "the painter ignores the breed");
    // Other breeds: refused by key before training, and the decoder refuses photos it cannot name.
    let mut other = latent_gen_sets(&cache_dir, &c.weights, &["train.steps=2"]);
    other[0] = "data.exclude=[\"other\"]".into();
    let e = format!("{:#}", generator::train_generator(&GeneratorConfig::load("", "test", &other).unwrap(), &t.path().join("gen2"), &mut Sinks::default(), &GenOptions::default()).unwrap_err());
    assert!(e.contains("data.autoencoder") && e.contains("conditioned"), "{e}");
    assert!(!t.path().join("gen2").join("checkpoints").exists(), "a refused run wrote checkpoints");
    let cache = tinycats_data::cache::Cache::open(&cache_dir).unwrap();
    let aby = (0..cache.len()).find(|&i| cache.index.classes[cache.index.entries[i].label] == "Abyssinian").unwrap();
    let e = ae::classes_of(&cache, &meta_c.classes, &[aby]).unwrap_err().to_string();
    assert!(e.contains("Abyssinian") && e.contains("does not know"), "{e}");
}

#[test]
fn committed_autoencoder_configs_load_and_stage_two_keeps_stage_one_encoder() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let load = |f: &str| AeTrainConfig::load(&std::fs::read_to_string(root.join(f)).unwrap(), f, &[]).unwrap_or_else(|e| panic!("{f}: {e:#}"));
    let (one, two) = (load("configs/autoencoder.toml"), load("configs/autoencoder-decoder.toml"));
    assert!(!one.train.freeze_encoder && two.train.freeze_encoder);
    assert_eq!((one.model.latent_channels, one.model.width, one.model.levels), (two.model.latent_channels, two.model.width, two.model.levels), "stage 2 must take stage 1's encoder shape");
    assert_eq!(two.data, one.data);
}

#[test]
fn sampling_from_a_start_time_mixes_the_start_with_the_seed_noise() {
    let _serial = serial();
    // A fresh DiT outputs zero velocity (zero-initialised final layer), so the path stays where
    // it starts: x = t0·x1 + (1 − t0)·ε, ε from the seed.
    let cfg = tinycats_models::dit::DitConfig { image_size: 8, patch: 2, channels: 4, hidden: 32, depth: 1, heads: 2, mlp_ratio: 2, num_classes: 2, cond_channels: 0 };
    let dev = Default::default();
    let m = cfg.init::<Cpu>(&dev);
    let meta = generator::GeneratorMeta { dit: cfg, classes: vec!["A".into(), "B".into()], target: "velocity".into(), step: 0, ema: true, latent: None, condition: None };
    let x1: Vec<f32> = (0..256).map(|i| (i as f32 / 64.0).sin()).collect();
    let start = Tensor::<Cpu, 4>::from_data(TensorData::new(x1.clone(), [1, 4, 8, 8]), &dev);
    let out: Vec<f32> = generator::sample_from::<Cpu>(&m, None, &meta, &[0], &[7], &SampleOptions::new(3, 2.0, Solver::Euler), None, Some((start, 0.75)), &mut |_, _| {}).into_data().to_vec().unwrap();
    let eps = generator::seed_noise(7, 256);
    let worst = out.iter().zip(x1.iter().zip(&eps)).map(|(o, (x, e))| (o - (0.75 * x + 0.25 * e)).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "start mix off by {worst}");
}

#[test]
fn refiner_learns_a_sharp_latent_from_the_coarse_one() {
    let _serial = serial();
    let t = tempfile::tempdir().unwrap();
    let cache_dir = tiny_cache(t.path());
    let cache = tinycats_data::cache::Cache::open(&cache_dir).unwrap();
    // Fine: 16 px → 8×8×4; coarse: 16 px → 4×4×4.
    let fine = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=30"]), &t.path().join("fine"), &mut Sinks::default()).unwrap();
    let coarse = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=30", "model.levels=2"]), &t.path().join("coarse"), &mut Sinks::default()).unwrap();
    let sets = |ae_file: &Path, extra: &[&str]| latent_gen_sets(&cache_dir, ae_file, &[&["predictions.every=150"], extra].concat());
    let cond = format!("data.condition=\"{}\"", coarse.weights.display());
    let cfg = GeneratorConfig::load("", "t", &sets(&fine.weights, &["train.steps=150", &cond])).unwrap();
    let run = t.path().join("refiner");
    let r = generator::train_generator(&cfg, &run, &mut Sinks::default(), &GenOptions::default()).unwrap();
    let (m, meta) = generator::load_generator(&r.ema_weights).unwrap();
    assert!(meta.condition.as_ref().is_some_and(|c| c.same_latents(&coarse.meta)), "{:?}", meta.condition);
    assert_eq!((meta.dit.image_size, meta.dit.channels, meta.dit.cond_channels), (8, 4, 4));
    // Each input token holds a 2×2 patch of x_t and of the upsampled coarse latent.
    assert_eq!(m.x_embed.weight.dims(), [2 * 2 * 8, 64]);
    assert_eq!(tinycats_models::dit::DitConfig::params_and_flops(&meta.dit).0, m.num_params(), "parameter count formula with conditioning");
    assert!(run.join("samples/step-0000150.png").exists(), "a refiner's previews refine training images");

    // It uses the conditioning: on its training images the flow loss with each image's own
    // coarse latent is lower than with another image's.
    let (idx, _, _) = generator::training_set(&cfg, &cache).unwrap();
    let n = idx.len();
    let dev = Default::default();
    let (fm, cm) = (ae::load_autoencoder(&fine.weights).unwrap(), ae::load_autoencoder(&coarse.weights).unwrap());
    let x1 = Tensor::<Cpu, 4>::from_data(TensorData::new(ae::encode(&fm.0, &fm.1, &cache, &idx, false).unwrap(), [n, 4, 8, 8]), &dev);
    let c = Tensor::<Cpu, 4>::from_data(TensorData::new(ae::encode(&cm.0, &cm.1, &cache, &idx, false).unwrap(), [n, 4, 4, 4]), &dev);
    let own = generator::upsample_nearest(c.clone(), 2);
    assert_eq!(own.dims(), [n, 4, 8, 8]);
    let shuffled = generator::upsample_nearest(Tensor::cat(vec![c.clone().narrow(0, 1, n - 1), c.narrow(0, 0, 1)], 0), 2);
    let labels: Vec<usize> = idx.iter().map(|&i| if cache.index.classes[cache.index.entries[i].label] == "Bengal" { 0 } else { 1 }).collect();
    let loss = |cond: &Tensor<Cpu, 4>| -> f32 {
        (0..8)
            .map(|s| {
                let d = generator::draw_step(&cfg.objective, 5, s, &labels, 4 * 8 * 8, 2);
                generator::flow_loss_with_tokens(&m, x1.clone(), Some(cond.clone()), &d, "velocity", 0).0.into_scalar()
            })
            .sum()
    };
    let (l_own, l_other) = (loss(&own), loss(&shuffled));
    assert!(l_own < 0.9 * l_other, "conditioning unused: loss {l_own:.4} with the own coarse latent, {l_other:.4} with another's");

    // As the second stage of a cascade: a generator in the coarse latent space, then the refiner.
    let first = generator::train_generator(&GeneratorConfig::load("", "t", &sets(&coarse.weights, &["train.steps=5", "model.patch=1", "predictions.enabled=false"])).unwrap(), &t.path().join("first"), &mut Sinks::default(), &GenOptions::default()).unwrap();
    let (fmodel, fmeta) = generator::load_generator(&first.ema_weights).unwrap();
    let refiner = generator::Refiner::load(&r.ema_weights, &fmeta, 0.0, SampleOptions::new(4, 2.0, Solver::Euler)).unwrap();
    let z = generator::sample::<Cpu>(&fmodel, &fmeta, &[0, 1], &[1, 2], &SampleOptions::new(3, 2.0, Solver::Euler), &mut |_, _| {});
    let painter = Painter::for_generator(&first.ema_weights, &fmeta).unwrap();
    let out = painter.paint_refined(Some(&refiner), z.clone(), &[0, 1], &[1, 2]);
    assert_eq!(out.dims(), [2, 3, 16, 16]);
    let px: Vec<f32> = out.into_data().to_vec().unwrap();
    assert!(px.iter().all(|v| v.is_finite() && (-1.0..=1.0).contains(v)));
    // Another coarse latent, another refinement (same seeds).
    let again: Vec<f32> = refiner.refine(z.clone() * 0.0, &|z| painter.paint(z, &[0, 1]), &[0, 1], &[1, 2]).into_data().to_vec().unwrap();
    assert_ne!(px, again, "the refinement ignores the coarse latent");

    // A refiner of another latent space, or an unconditioned one started from noise, is refused.
    let e = generator::Refiner::load(&r.ema_weights, &meta, 0.0, SampleOptions::new(4, 2.0, Solver::Euler)).err().expect("wrong latent space accepted").to_string();
    assert!(e.contains("conditioned on another latent space"), "{e}");
    let e = generator::Refiner::load(&first.ema_weights, &fmeta, 0.0, SampleOptions::new(4, 2.0, Solver::Euler)).err().expect("unconditioned refiner from noise accepted").to_string();
    assert!(e.contains("above 0"), "{e}");
    // A resumed refiner keeps the conditioning autoencoder it started with (its copy in the run
    // folder), even when the configured file was replaced since.
    let moving = t.path().join("coarse-moving.safetensors");
    std::fs::copy(&coarse.weights, &moving).unwrap();
    let cond_moving = format!("data.condition=\"{}\"", moving.display());
    let rcfg = GeneratorConfig::load("", "t", &sets(&fine.weights, &["train.steps=4", &cond_moving, "predictions.enabled=false"])).unwrap();
    let rrun = t.path().join("refiner-resumed");
    generator::train_generator(&rcfg, &rrun, &mut Sinks::default(), &GenOptions { resume: false, stop_after_steps: Some(2), init_from: None }).unwrap();
    assert!(rrun.join(generator::CONDITION_FILE).is_file(), "the run keeps its conditioning autoencoder");
    let other = ae::train_autoencoder(&ae_cfg(&cache_dir, &["train.steps=3", "model.levels=2", "train.seed=99"]), &t.path().join("coarse-other"), &mut Sinks::default()).unwrap();
    std::fs::copy(&other.weights, &moving).unwrap();
    let rr = generator::train_generator(&rcfg, &rrun, &mut Sinks::default(), &GenOptions { resume: true, stop_after_steps: None, init_from: None }).unwrap();
    assert!(rr.meta.condition.as_ref().is_some_and(|c| c.same_latents(&coarse.meta)), "the resumed refiner switched conditioning: {:?}", rr.meta.condition);
    // `data.condition` needs `data.autoencoder`.
    let e = GeneratorConfig::load("", "t", &[cond.clone()]).unwrap_err().to_string();
    assert!(e.contains("data.condition") && e.contains("data.autoencoder"), "{e}");
}
