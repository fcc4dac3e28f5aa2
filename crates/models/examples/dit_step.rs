//! Quick timing of one DiT training step on the CPU backend: `cargo run --release --example dit_step -- small 32`.
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use tinycats_models::dit::DitConfig;
use tinycats_models::CpuTrain;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let preset = args.get(1).map(String::as_str).unwrap_or("small");
    let bs: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(32);
    let mut cfg = DitConfig::preset(preset, 12).unwrap();
    if let Some(h) = args.get(3).and_then(|s| s.parse().ok()) { cfg.hidden = h; }
    if let Some(d) = args.get(4).and_then(|s| s.parse().ok()) { cfg.depth = d; }
    if let Some(p) = args.get(5).and_then(|s| s.parse().ok()) { cfg.patch = p; }
    let (p, f) = cfg.params_and_flops();
    println!("{preset} {cfg:?} params {p} fwd GFLOP/img {:.3}", f as f64 / 1e9);
    let dev = Default::default();
    let mut model = cfg.init::<CpuTrain>(&dev);
    let mut optim = AdamWConfig::new().init::<CpuTrain, tinycats_models::dit::Dit<CpuTrain>>();
    let s = cfg.image_size;
    for i in 0..6 {
        let t0 = std::time::Instant::now();
        let x = Tensor::<CpuTrain, 4>::random([bs, 3, s, s], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
        let t = Tensor::<CpuTrain, 1>::random([bs], burn::tensor::Distribution::Uniform(0.0, 1.0), &dev);
        let y = Tensor::<CpuTrain, 1, Int>::from_data(TensorData::new((0..bs as i64).map(|k| k % 13).collect::<Vec<_>>(), [bs]), &dev);
        let out = model.forward(x.clone(), t, y);
        let loss = (out - x).powi_scalar(2).mean();
        let g = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(1e-4, model, g);
        let dt = t0.elapsed().as_secs_f64();
        println!("step {i}: {dt:.3}s  {:.1} img/s  {:.1} GFLOP/s", bs as f64 / dt, 3.0 * f as f64 * bs as f64 / dt / 1e9);
    }
    let m = model.valid();
    let t0 = std::time::Instant::now();
    let x = Tensor::<tinycats_models::Cpu, 4>::random([bs, 3, s, s], burn::tensor::Distribution::Normal(0.0, 1.0), &dev);
    let t = Tensor::<tinycats_models::Cpu, 1>::random([bs], burn::tensor::Distribution::Uniform(0.0, 1.0), &dev);
    let y = Tensor::<tinycats_models::Cpu, 1, Int>::zeros([bs], &dev);
    let _ = m.forward(x, t, y).into_data();
    println!("inference fwd {:.3}s", t0.elapsed().as_secs_f64());
}
