//! A trained classifier as shipped: frozen EfficientNet-Lite0 front (ImageNet weights, checked by
//! sha256) + trained tail, with its label names. Turns image files into class probabilities.

use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tinycats_data::pixels::{self, ResizeMode};
use tinycats_models::classifier::{Tail, POOLED};
use tinycats_models::efficientnet::EfficientNetLite0;
use tinycats_models::weights::TensorMap;
use tinycats_models::Cpu;

/// `model.json` next to `tail.safetensors`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelManifest {
    pub arch: String,
    pub cut: usize,
    /// The tail's BatchNorms are folded into its convolutions (trained with frozen BN).
    pub bn_folded: bool,
    pub size: u32,
    pub classes: Vec<String>,
    /// sha256 of the ImageNet backbone file the tail was trained on.
    pub backbone_sha256: String,
    pub normalisation: String,
    pub version: String,
    pub run_id: String,
}

pub struct Predictor {
    pub manifest: ModelManifest,
    /// Frozen ImageNet front, BatchNorm folded.
    pub front: EfficientNetLite0<Cpu>,
    pub tail: Tail<Cpu>,
}

/// The repository's default model folder (`$TINYCATS_MODELS/classifier` or `models/classifier`).
pub fn default_model_dir() -> PathBuf {
    std::env::var_os("TINYCATS_MODELS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("models")).join("classifier")
}

pub fn default_backbone() -> PathBuf {
    std::env::var_os("TINYCATS_WEIGHTS").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data/weights/efficientnet-lite0.safetensors"))
}

impl Predictor {
    pub fn load(dir: &Path, backbone: &Path) -> Result<Predictor> {
        let mp = dir.join("model.json");
        let manifest: ModelManifest = serde_json::from_slice(&std::fs::read(&mp).with_context(|| format!("cannot read {} (is {} a tinycats classifier folder?)", mp.display(), dir.display()))?)
            .with_context(|| format!("{} is not a valid model manifest", mp.display()))?;
        if manifest.arch != "efficientnet-lite0" {
            bail!("{}: field `arch` = {} is not supported (expected efficientnet-lite0)", mp.display(), manifest.arch);
        }
        let sha = tinycats_data::hashing::sha256_file(backbone).with_context(|| format!("backbone weights {} (run scripts/setup.sh)", backbone.display()))?;
        if sha != manifest.backbone_sha256 {
            bail!("{}: sha256 {sha} differs from the backbone this model was trained on ({})", backbone.display(), manifest.backbone_sha256);
        }
        let dev = Default::default();
        let front = EfficientNetLite0::<Cpu>::from_pretrained(TensorMap::read(backbone)?, &dev)?.fold_bn();
        let tail = crate::classifier::load_tail(&dir.join("tail.safetensors"), manifest.cut, manifest.classes.len(), manifest.bn_folded)?;
        Ok(Predictor { manifest, front, tail })
    }

    /// Class probabilities for a batch of NCHW images in [0,1] at the model's size.
    pub fn probs(&self, x: Vec<f32>, n: usize) -> Result<Vec<f32>> {
        let s = self.manifest.size as usize;
        let dev = Default::default();
        let t = Tensor::<Cpu, 4>::from_data(TensorData::new(x, [n, 3, s, s]), &dev);
        let t = EfficientNetLite0::<Cpu>::normalize(t);
        let h = if self.manifest.cut >= POOLED {
            let p = self.front.pooled(t);
            let [b, c] = p.dims();
            p.reshape([b, c, 1, 1])
        } else {
            self.front.front(t, self.manifest.cut)
        };
        softmax(self.tail.forward(h), 1).into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))
    }

    /// Probabilities and the backbone's pooled ImageNet embedding (1280-d, for FID-like scores)
    /// of NCHW images in [0,1], sharing one pass through the frozen front.
    pub fn probs_and_embedding(&self, x: Vec<f32>, n: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        let s = self.manifest.size as usize;
        if self.manifest.cut >= POOLED {
            bail!("embeddings need a classifier with a block tail (cut < {POOLED}); this one is a linear probe");
        }
        let dev = Default::default();
        let t = EfficientNetLite0::<Cpu>::normalize(Tensor::<Cpu, 4>::from_data(TensorData::new(x, [n, 3, s, s]), &dev));
        let h = self.front.front(t, self.manifest.cut);
        let p = softmax(self.tail.forward(h.clone()), 1).into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
        let e = self.front.back_pooled(h, self.manifest.cut).into_data().to_vec::<f32>().map_err(|e| anyhow!("{e:?}"))?;
        Ok((p, e))
    }

    /// Decodes (any supported format, by content), centre-crops and resizes one file's bytes.
    pub fn preprocess(&self, bytes: &[u8]) -> Result<Vec<f32>> {
        let s = self.manifest.size;
        let mut rz = fast_image_resize::Resizer::new();
        let hwc = pixels::load_square(bytes, s, ResizeMode::Crop, &mut rz)?;
        Ok(hwc_to_chw(&hwc, s as usize))
    }
}

pub fn hwc_to_chw(hwc: &[u8], s: usize) -> Vec<f32> {
    let plane = s * s;
    let mut out = vec![0f32; 3 * plane];
    for (i, px) in hwc.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = px[c] as f32 / 255.0;
        }
    }
    out
}
