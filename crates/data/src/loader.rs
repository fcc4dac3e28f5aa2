//! Training batches from a prepared cache: seeded shuffling, augmentation (random resized crop,
//! horizontal flip, colour jitter; each switchable), batching on all cores. Every random choice
//! comes from an RNG seeded by (seed, epoch, sample), so a batch is the same whatever the
//! thread count or the order in which threads run: runs and resumes are reproducible.

use crate::cache::Cache;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Augment {
    pub random_resized_crop: bool,
    /// Area fraction range of the crop.
    pub crop_scale: (f32, f32),
    /// Aspect ratio range of the crop.
    pub crop_ratio: (f32, f32),
    pub hflip: bool,
    /// Brightness/contrast/saturation are each scaled by a factor in [1-s, 1+s]; 0 disables.
    pub color_jitter: f32,
}

impl Default for Augment {
    fn default() -> Self {
        Self { random_resized_crop: true, crop_scale: (0.6, 1.0), crop_ratio: (0.75, 1.333), hflip: true, color_jitter: 0.2 }
    }
}

impl Augment {
    pub fn none() -> Self {
        Self { random_resized_crop: false, hflip: false, color_jitter: 0.0, ..Self::default() }
    }
}

#[derive(Debug, Clone)]
pub struct LoaderConfig {
    pub batch_size: usize,
    /// Output side; defaults to the cache size when 0.
    pub out_size: u32,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
    pub augment: Augment,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self { batch_size: 32, out_size: 0, shuffle: true, drop_last: false, seed: 0, augment: Augment::default() }
    }
}

/// A batch in NCHW float32, values in [0, 1].
#[derive(Debug, Clone)]
pub struct Batch {
    pub images: Vec<f32>,
    pub labels: Vec<usize>,
    /// Positions in the cache (index entries), to map predictions back to samples.
    pub indices: Vec<usize>,
    pub size: u32,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

pub struct Loader<'a> {
    cache: &'a Cache,
    indices: Vec<usize>,
    cfg: LoaderConfig,
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    // SplitMix-style mixing so nearby (epoch, sample) pairs give unrelated streams.
    let mut z = a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<'a> Loader<'a> {
    pub fn new(cache: &'a Cache, indices: Vec<usize>, mut cfg: LoaderConfig) -> Self {
        if cfg.out_size == 0 {
            cfg.out_size = cache.size();
        }
        cfg.batch_size = cfg.batch_size.max(1);
        Loader { cache, indices, cfg }
    }

    pub fn len_samples(&self) -> usize {
        self.indices.len()
    }

    pub fn batches_per_epoch(&self) -> usize {
        let (n, b) = (self.indices.len(), self.cfg.batch_size);
        if self.cfg.drop_last { n / b } else { n.div_ceil(b) }
    }

    /// Sample order of an epoch (a pure function of seed and epoch).
    pub fn order(&self, epoch: u64) -> Vec<usize> {
        let mut v = self.indices.clone();
        if self.cfg.shuffle {
            v.shuffle(&mut ChaCha8Rng::seed_from_u64(mix(self.cfg.seed, epoch, u64::MAX)));
        }
        v
    }

    /// Batch `b` of `epoch`; building any batch directly lets a resumed run start mid-epoch.
    pub fn batch(&self, epoch: u64, b: usize) -> Batch {
        let order = self.order(epoch);
        let bs = self.cfg.batch_size;
        let chunk: Vec<usize> = order.iter().skip(b * bs).take(bs).copied().collect();
        self.make_batch(epoch, &chunk)
    }

    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = Batch> + '_ {
        let order = self.order(epoch);
        let bs = self.cfg.batch_size;
        let n = self.batches_per_epoch();
        (0..n).map(move |b| {
            let chunk: Vec<usize> = order.iter().skip(b * bs).take(bs).copied().collect();
            self.make_batch(epoch, &chunk)
        })
    }

    fn make_batch(&self, epoch: u64, chunk: &[usize]) -> Batch {
        let s = self.cfg.out_size as usize;
        let per = 3 * s * s;
        let mut images = vec![0f32; chunk.len() * per];
        images.par_chunks_mut(per).zip(chunk.par_iter()).for_each(|(dst, &i)| {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.cfg.seed, epoch, i as u64));
            augment_into(self.cache.image(i), self.cache.size() as usize, s, &self.cfg.augment, &mut rng, dst);
        });
        let labels = chunk.iter().map(|&i| self.cache.index.entries[i].label).collect();
        Batch { images, labels, indices: chunk.to_vec(), size: self.cfg.out_size }
    }
}

/// Crops/flips/jitters one HWC u8 image of side `n` into CHW f32 of side `s`.
pub fn augment_into(src: &[u8], n: usize, s: usize, a: &Augment, rng: &mut impl Rng, dst: &mut [f32]) {
    // Crop window in source pixels.
    let (mut x0, mut y0, mut cw, mut ch) = (0.0f32, 0.0f32, n as f32, n as f32);
    if a.random_resized_crop {
        let area = (n * n) as f32;
        for _ in 0..10 {
            let target = area * rng.gen_range(a.crop_scale.0..=a.crop_scale.1);
            let logr = rng.gen_range(a.crop_ratio.0.ln()..=a.crop_ratio.1.ln());
            let r = logr.exp();
            let (w, h) = ((target * r).sqrt(), (target / r).sqrt());
            if w <= n as f32 && h <= n as f32 {
                cw = w;
                ch = h;
                x0 = rng.gen_range(0.0..=(n as f32 - w));
                y0 = rng.gen_range(0.0..=(n as f32 - h));
                break;
            }
        }
    }
    let flip = a.hflip && rng.gen_bool(0.5);
    let jit = |rng: &mut dyn rand::RngCore| if a.color_jitter > 0.0 { 1.0 + rng.gen_range(-a.color_jitter..=a.color_jitter) } else { 1.0 };
    let (bright, contrast, sat) = (jit(rng), jit(rng), jit(rng));
    let plane = s * s;
    let (sx, sy) = (cw / s as f32, ch / s as f32);
    for oy in 0..s {
        let fy = (y0 + (oy as f32 + 0.5) * sy - 0.5).clamp(0.0, (n - 1) as f32);
        let (yi, wy) = (fy as usize, fy.fract());
        let yj = (yi + 1).min(n - 1);
        for ox in 0..s {
            let tx = if flip { s - 1 - ox } else { ox };
            let fx = (x0 + (tx as f32 + 0.5) * sx - 0.5).clamp(0.0, (n - 1) as f32);
            let (xi, wx) = (fx as usize, fx.fract());
            let xj = (xi + 1).min(n - 1);
            for c in 0..3 {
                let p = |y: usize, x: usize| src[(y * n + x) * 3 + c] as f32;
                let top = p(yi, xi) * (1.0 - wx) + p(yi, xj) * wx;
                let bot = p(yj, xi) * (1.0 - wx) + p(yj, xj) * wx;
                dst[c * plane + oy * s + ox] = (top * (1.0 - wy) + bot * wy) / 255.0;
            }
        }
    }
    if a.color_jitter > 0.0 {
        let mean: f32 = dst.iter().sum::<f32>() / dst.len() as f32;
        for i in 0..plane {
            let (r, g, b) = (dst[i], dst[plane + i], dst[2 * plane + i]);
            let gray = 0.299 * r + 0.587 * g + 0.114 * b;
            for (c, v) in [r, g, b].into_iter().enumerate() {
                let v = gray + (v - gray) * sat;
                let v = mean + (v - mean) * contrast;
                dst[c * plane + i] = (v * bright).clamp(0.0, 1.0);
            }
        }
    }
}
