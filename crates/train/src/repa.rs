//! REPA (Yu et al. 2024, "Representation Alignment for Generation Made Easier"): while the DiT
//! trains, a small MLP projects its hidden tokens after block `repa.block`, and an extra loss
//! rewards their cosine similarity with a frozen pretrained encoder's features of the clean
//! image at the same grid position. The paper reports far faster convergence. Our encoder is
//! EfficientNet-Lite0 (the one pretrained network the project ships): its 16 blocks at 32×grid px
//! give a grid×grid map of 320-d features, computed once per training image and cached.
//!
//! Caveat: `eval-gen` scores with the same backbone (FID-like embeddings, the classifier), so a
//! REPA run's scores are not independent of its alignment target. Only the DiT is saved and
//! exported; the projector lives in the resume checkpoints.

use crate::config::range;
use anyhow::{anyhow, bail, Context, Result};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::silu;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use tinycats_data::cache::Cache;
use tinycats_models::efficientnet::{shape_after, EfficientNetLite0};
use tinycats_models::weights::TensorMap;
use tinycats_models::Cpu;

/// Lite0 blocks run for the targets (all 16: stride 32, 320 channels).
pub const CUT: usize = 16;
pub const FEATURE_DIM: usize = 320;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RepaConfig {
    /// Weight of the alignment loss (the paper's λ = 0.5); 0 turns REPA off.
    pub weight: f64,
    /// Align the tokens after this many DiT blocks (1..=depth).
    pub block: usize,
    /// Projector MLP width.
    pub hidden: usize,
    /// EfficientNet-Lite0 weights (scripts/setup.sh fetches them).
    pub weights: PathBuf,
}

impl Default for RepaConfig {
    fn default() -> Self {
        Self { weight: 0.0, block: 2, hidden: 512, weights: PathBuf::from("data/weights/efficientnet-lite0.safetensors") }
    }
}

impl RepaConfig {
    pub fn enabled(&self) -> bool {
        self.weight > 0.0
    }

    pub fn validate(&self, depth: usize) -> Result<()> {
        range("repa.weight", self.weight, 0.0, 10.0)?;
        if self.enabled() {
            if self.block < 1 || self.block > depth {
                bail!("config key `repa.block` must be in 1..={depth} (the network's depth), got {}", self.block);
            }
            range("repa.hidden", self.hidden as f64, 8.0, 8192.0)?;
        }
        Ok(())
    }
}

/// Token projector h → z (three linears with SiLU, as in REPA).
#[derive(Module, Debug)]
pub struct Projector<B: Backend> {
    pub l1: Linear<B>,
    pub l2: Linear<B>,
    pub l3: Linear<B>,
}

impl<B: Backend> Projector<B> {
    pub fn new(input: usize, hidden: usize, output: usize, device: &B::Device) -> Self {
        Projector { l1: LinearConfig::new(input, hidden).init(device), l2: LinearConfig::new(hidden, hidden).init(device), l3: LinearConfig::new(hidden, output).init(device) }
    }

    /// [M, input] → [M, output].
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        self.l3.forward(silu(self.l2.forward(silu(self.l1.forward(x)))))
    }
}

/// −mean cosine similarity between projected tokens [N, T, D] and unit-norm targets [N·T, F].
pub fn repa_loss<B: Backend>(proj: &Projector<B>, tokens: Tensor<B, 3>, targets: Tensor<B, 2>) -> Tensor<B, 1> {
    let [n, t, d] = tokens.dims();
    let z = proj.forward(tokens.reshape([n * t, d]));
    let norm = (z.clone().powi_scalar(2).sum_dim(1) + 1e-12).sqrt();
    (z / norm * targets).sum_dim(1).mean().neg()
}

/// L2-normalises each token (row of length f) in place.
pub fn normalise_rows(x: &mut [f32], f: usize) {
    for row in x.chunks_mut(f) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
}

/// Unit-norm Lite0 features of the training images, token-major [grid·grid, 320] per image and
/// view (0 = as stored, 1 = mirrored). The mirrored view is computed from mirrored pixels, not by
/// mirroring the map: Lite0's TensorFlow "SAME" padding is asymmetric, so its features are not
/// exactly mirror-equivariant (the grid is offset by about half a token).
pub struct Targets {
    pub grid: usize,
    /// Cache entry → row of view 0 (view 1 follows it).
    pos: HashMap<usize, usize>,
    data: Vec<f32>,
}

#[derive(Serialize, Deserialize)]
struct TargetsMeta {
    key: String,
    grid: usize,
    idx: Vec<usize>,
}

impl Targets {
    fn row_len(&self) -> usize {
        self.grid * self.grid * FEATURE_DIM
    }

    /// Target of cache entry `i`, view 0 (as stored) or 1 (mirrored).
    pub fn get(&self, i: usize, mirrored: bool) -> Option<&[f32]> {
        let r = 2 * self.pos.get(&i)? + mirrored as usize;
        Some(&self.data[r * self.row_len()..(r + 1) * self.row_len()])
    }

    /// Loads `<cache>/features/repa-lite0-g<grid>-<key>/` or computes it (Lite0 on each image
    /// and its mirror image, upscaled to 32·grid px). The key covers the cache, the image list
    /// and the weights, so a folder never holds another run's targets.
    pub fn load_or_compute(cache: &Cache, idx: &[usize], grid: usize, weights: &Path, progress: &mut dyn FnMut(usize, usize)) -> Result<Targets> {
        let side = 32 * grid;
        if shape_after(CUT, side) != [FEATURE_DIM, grid, grid] {
            bail!("REPA: Lite0 at {side} px does not give a {grid}×{grid} map");
        }
        let wsha = crate::features::weights_sha(weights).with_context(|| "config key `repa.weights`")?;
        let key = tinycats_data::hashing::sha256_hex(format!("{} {wsha} {grid} {idx:?}", cache.index.key).as_bytes());
        let dir = cache.dir.join("features").join(format!("repa-lite0-g{grid}-{}", &key[..16]));
        let pos: HashMap<usize, usize> = idx.iter().enumerate().map(|(r, &i)| (i, r)).collect();
        let want = 2 * idx.len() * grid * grid * FEATURE_DIM;
        if let Ok(m) = serde_json::from_slice::<TargetsMeta>(&std::fs::read(dir.join("meta.json")).unwrap_or_default()) {
            if m.key == key && m.idx == idx {
                let data = crate::features::read_f32(&dir.join("targets.f32"))?;
                if data.len() == want {
                    return Ok(Targets { grid, pos, data });
                }
            }
        }
        let dev = Default::default();
        let net = EfficientNetLite0::<Cpu>::from_pretrained(TensorMap::read(weights).with_context(|| "config key `repa.weights`")?, &dev)?.fold_bn();
        let s = cache.size();
        let mut rz = fast_image_resize::Resizer::new();
        let mut data = Vec::with_capacity(want);
        for (k, chunk) in idx.chunks(16).enumerate() {
            let mut x = Vec::with_capacity(2 * chunk.len() * 3 * side * side);
            for &i in chunk {
                let rgb = image::RgbImage::from_raw(s, s, cache.image(i).to_vec()).ok_or_else(|| anyhow!("cache image {i} does not match {s} px"))?;
                for view in [rgb.clone(), image::imageops::flip_horizontal(&rgb)] {
                    let big = tinycats_data::pixels::resize_square(&view, side as u32, tinycats_data::pixels::ResizeMode::Crop, &mut rz)?;
                    x.extend(crate::predictor::hwc_to_chw(&big, side));
                }
            }
            let n = 2 * chunk.len();
            let t = EfficientNetLite0::<Cpu>::normalize(Tensor::<Cpu, 4>::from_data(TensorData::new(x, [n, 3, side, side]), &dev));
            // [n, 320, g, g] → token-major [n, g·g, 320], the DiT's token order.
            let f = net.front(t, CUT).reshape([n, FEATURE_DIM, grid * grid]).swap_dims(1, 2);
            let mut v: Vec<f32> = f.into_data().to_vec().map_err(|e| anyhow!("{e:?}"))?;
            normalise_rows(&mut v, FEATURE_DIM);
            data.extend(v);
            progress(((k + 1) * 16).min(idx.len()), idx.len());
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        crate::features::write_f32(&dir.join("targets.f32"), &data)?;
        tinycats_data::hashing::write_atomic(&dir.join("meta.json"), &serde_json::to_vec(&TargetsMeta { key, grid, idx: idx.to_vec() })?)?;
        Ok(Targets { grid, pos, data })
    }

    /// Targets [N·T, 320] for a batch: cache entries `indices`, whose augmented pixels (CHW in
    /// [0,1]) are `images`. The generator's loader only flips (no crops, no colour jitter), so
    /// each image is either the stored one or its mirror image.
    pub fn batch(&self, cache: &Cache, indices: &[usize], images: &[f32]) -> Result<Vec<f32>> {
        let s = cache.size() as usize;
        let per = 3 * s * s;
        let mut out = Vec::with_capacity(indices.len() * self.row_len());
        for (k, &i) in indices.iter().enumerate() {
            let m = is_mirrored(cache.image(i), &images[k * per..(k + 1) * per], s);
            out.extend_from_slice(self.get(i, m).ok_or_else(|| anyhow!("REPA: cache entry {i} has no target"))?);
        }
        Ok(out)
    }
}

/// Whether `chw` (floats in [0,1]) is the HWC u8 image `src` mirrored rather than as stored:
/// whichever of the two it is closer to.
pub fn is_mirrored(src: &[u8], chw: &[f32], s: usize) -> bool {
    let (mut same, mut flip) = (0f32, 0f32);
    for y in 0..s {
        for x in 0..s {
            for c in 0..3 {
                let v = chw[c * s * s + y * s + x];
                same += (v - src[(y * s + x) * 3 + c] as f32 / 255.0).abs();
                flip += (v - src[(y * s + s - 1 - x) * 3 + c] as f32 / 255.0).abs();
            }
        }
    }
    flip < same
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use tinycats_models::CpuTrain;

    #[test]
    fn flip_detection_tells_the_two_apart() {
        let s = 4;
        let src: Vec<u8> = (0..s * s * 3).map(|v| (v * 5 % 256) as u8).collect();
        let chw = |mirror: bool| -> Vec<f32> {
            let mut out = vec![0f32; 3 * s * s];
            for y in 0..s {
                for x in 0..s {
                    let sx = if mirror { s - 1 - x } else { x };
                    for c in 0..3 {
                        out[c * s * s + y * s + x] = src[(y * s + sx) * 3 + c] as f32 / 255.0;
                    }
                }
            }
            out
        };
        assert!(!is_mirrored(&src, &chw(false), s));
        assert!(is_mirrored(&src, &chw(true), s));
    }

    #[test]
    fn projector_learns_to_align_tokens_with_targets() {
        // Tokens and targets related by a fixed linear map: the loss (−cos) must fall from ~0
        // towards −1 as the projector learns it.
        let dev = Default::default();
        let (n, t, d, f) = (4, 8, 16, 12);
        let tokens: Vec<f32> = (0..n * t * d).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
        let mut tg = vec![0f32; n * t * f];
        for r in 0..n * t {
            for j in 0..f {
                tg[r * f + j] = (0..d).map(|k| tokens[r * d + k] * (((j * 7 + k * 3) % 5) as f32 - 2.0)).sum();
            }
        }
        normalise_rows(&mut tg, f);
        let tok = Tensor::<CpuTrain, 3>::from_data(TensorData::new(tokens, [n, t, d]), &dev);
        let tgt = Tensor::<CpuTrain, 2>::from_data(TensorData::new(tg, [n * t, f]), &dev);
        let mut proj = Projector::<CpuTrain>::new(d, 32, f, &dev);
        let mut opt = AdamWConfig::new().init::<CpuTrain, Projector<CpuTrain>>();
        let first: f32 = repa_loss(&proj, tok.clone(), tgt.clone()).into_scalar().elem();
        for _ in 0..300 {
            let l = repa_loss(&proj, tok.clone(), tgt.clone());
            let g = GradientsParams::from_grads(l.backward(), &proj);
            proj = opt.step(3e-3, proj, g);
        }
        let last: f32 = repa_loss(&proj, tok, tgt).into_scalar().elem();
        assert!(first > -0.5, "an untrained projector is not already aligned: {first}");
        assert!(last < -0.9, "alignment after training: {last} (from {first})");
    }
}
