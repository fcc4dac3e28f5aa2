//! Frozen-front feature cache: EfficientNet-Lite0's stem and blocks `0..cut` run once over a
//! prepared dataset (BatchNorm folded, no autodiff), and the activations are stored so the tail
//! trains in seconds per epoch on 2 cores. Training images get several augmented views
//! (0 = as prepared, 1 = mirrored, 2.. = random resized crops); val/test get view 0 only.

use anyhow::{bail, Context, Result};
use burn::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tinycats_data::cache::{Cache, Split};
use tinycats_data::loader::{augment_into, Augment};
use tinycats_models::efficientnet::{shape_after, EfficientNetLite0};
use tinycats_models::Cpu;

pub use tinycats_models::classifier::POOLED;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureMeta {
    pub cut: usize,
    pub shape: [usize; 3],
    pub views: usize,
    /// Fingerprint of the prepared cache and the weights file these came from.
    pub key: String,
    /// Per cache entry: (first row, number of views).
    pub rows: Vec<(usize, usize)>,
}

pub struct Features {
    pub meta: FeatureMeta,
    pub data: Vec<f32>,
}

impl Features {
    pub fn row_len(&self) -> usize {
        self.meta.shape.iter().product()
    }
    /// Activations of cache entry `i`, view `v` (wrapped to the views it has).
    pub fn get(&self, i: usize, v: usize) -> &[f32] {
        let (first, n) = self.meta.rows[i];
        let r = first + v % n;
        &self.data[r * self.row_len()..(r + 1) * self.row_len()]
    }
}

pub fn feature_dir(cache: &Cache, cut: usize, views: usize) -> PathBuf {
    let what = if cut == POOLED { "pooled".to_string() } else { format!("cut{cut}") };
    cache.dir.join("features").join(format!("lite0-{what}-v{views}"))
}

fn flip_chw(x: &mut [f32], s: usize) {
    for plane in x.chunks_mut(s * s) {
        for row in plane.chunks_mut(s) {
            row.reverse();
        }
    }
}

/// Loads the cached features or computes and stores them.
pub fn load_or_compute(
    cache: &Cache,
    net: &EfficientNetLite0<Cpu>,
    weights_sha: &str,
    cut: usize,
    views: usize,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Features> {
    if cut > POOLED {
        bail!("feature cut {cut} is out of range 0..={POOLED}");
    }
    let dir = feature_dir(cache, cut, views);
    let key = tinycats_data::hashing::sha256_hex(format!("{} {weights_sha} {seed}", cache.index.key).as_bytes());
    if let Ok(text) = std::fs::read_to_string(dir.join("meta.json")) {
        if let Ok(meta) = serde_json::from_str::<FeatureMeta>(&text) {
            if meta.key == key {
                let data = read_f32(&dir.join("features.f32"))?;
                let rows: usize = meta.rows.iter().map(|r| r.1).sum();
                if data.len() == rows * meta.shape.iter().product::<usize>() {
                    return Ok(Features { meta, data });
                }
            }
        }
    }
    let s = cache.size() as usize;
    let shape = if cut == POOLED { [tinycats_models::efficientnet::FEATURES, 1, 1] } else { shape_after(cut, s) };
    // Work list: (entry, view).
    let mut work = Vec::new();
    let mut rows = Vec::with_capacity(cache.len());
    for (i, e) in cache.index.entries.iter().enumerate() {
        let n = if e.split == Split::Train { views } else { 1 };
        rows.push((work.len(), n));
        for v in 0..n {
            work.push((i, v));
        }
    }
    let dev = Default::default();
    let per = 3 * s * s;
    let row_len: usize = shape.iter().product();
    let mut data = Vec::with_capacity(work.len() * row_len);
    let aug = Augment { random_resized_crop: true, crop_scale: (0.5, 1.0), hflip: true, color_jitter: 0.1, ..Augment::default() };
    for (bi, chunk) in work.chunks(32).enumerate() {
        let mut x = vec![0f32; chunk.len() * per];
        for (k, &(i, v)) in chunk.iter().enumerate() {
            let dst = &mut x[k * per..(k + 1) * per];
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ ((i as u64) << 8) ^ v as u64);
            let a = if v >= 2 { aug.clone() } else { Augment::none() };
            augment_into(cache.image(i), s, s, &a, &mut rng, dst);
            if v == 1 {
                flip_chw(dst, s);
            }
        }
        let t = Tensor::<Cpu, 4>::from_data(TensorData::new(x, [chunk.len(), 3, s, s]), &dev);
        let t = EfficientNetLite0::<Cpu>::normalize(t);
        let out: Vec<f32> = if cut == POOLED {
            net.pooled(t).into_data().to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?
        } else {
            net.front(t, cut).into_data().to_vec().map_err(|e| anyhow::anyhow!("{e:?}"))?
        };
        data.extend_from_slice(&out);
        progress(((bi + 1) * 32).min(work.len()), work.len());
    }
    let meta = FeatureMeta { cut, shape, views, key, rows };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_f32(&dir.join("features.f32"), &data)?;
    tinycats_data::hashing::write_atomic(&dir.join("meta.json"), &serde_json::to_vec(&meta)?)?;
    Ok(Features { meta, data })
}

/// A cached activation file: raw little-endian f32 values.
pub fn read_f32(path: &Path) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

/// Writes `data` as raw little-endian f32 values (atomically).
pub fn write_f32(path: &Path, data: &[f32]) -> Result<()> {
    let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
    tinycats_data::hashing::write_atomic(path, &bytes)
}

pub fn weights_sha(path: &Path) -> Result<String> {
    tinycats_data::hashing::sha256_file(path).with_context(|| format!("weights {} (run scripts/setup.sh to fetch them)", path.display()))
}
