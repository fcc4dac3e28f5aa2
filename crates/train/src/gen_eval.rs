//! Generator evaluation: an FID-like score and breed agreement.
//!
//! FID-like: the Fréchet distance between Gaussians fitted to EfficientNet-Lite0's pooled 1280-d
//! ImageNet embeddings of generated and real images. Both sets go through the same path (64 px →
//! bilinear 224 px → Lite0), so the number compares runs of this project only; it is NOT
//! comparable with Inception-v3 FID from papers. A real-vs-real floor (two disjoint halves of the
//! real images) is reported next to it for scale.
//!
//! Breed agreement: the share of generated images that the shipped classifier puts in the
//! requested breed (argmax over its 13 classes, so "other" counts as a miss). The same count on
//! the real test-split photos, shrunk to the generator's size and upscaled the same way, is the
//! ceiling a perfect generator would reach: it says what the goal means at 64 px.

use crate::generator::{self, GeneratorMeta, SampleOptions};
use crate::predictor::{hwc_to_chw, Predictor};
use anyhow::{anyhow, bail, Result};
use nalgebra::{DMatrix, DVector, SymmetricEigen};
use serde::Serialize;
use std::path::Path;
use tinycats_data::cache::{Cache, Split};
use tinycats_models::dit::Dit;
use tinycats_models::Cpu;

#[derive(Debug, Clone, Serialize)]
pub struct BreedScore {
    pub breed: String,
    pub n: usize,
    pub agreement: f64,
    /// Most frequent classifier label for this breed's images.
    pub top_confusion: String,
    /// The same classifier on this breed's real test-split photos at the generator's size
    /// (None: the cache has no test photos of this breed).
    pub real_agreement: Option<f64>,
    pub real_n: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct GenEval {
    pub generated: usize,
    pub real: usize,
    pub fid_like: f64,
    /// Real-vs-real (two disjoint halves of the real set): the floor to read fid_like against.
    pub fid_like_real_halves: f64,
    pub agreement: f64,
    /// Agreement on real test-split photos at the generator's size: a perfect generator's score
    /// (None: the cache has no test split).
    pub real_agreement: Option<f64>,
    pub real_test: usize,
    pub per_breed: Vec<BreedScore>,
    pub steps: usize,
    pub cfg: f64,
    pub guidance: crate::generator::Guidance,
    /// The t interval in which guidance was applied.
    pub guidance_interval: (f32, f32),
    /// The sampling grid's time shift (1 = uniform steps).
    pub time_shift: f32,
    /// Sampling stochasticity (0 = deterministic).
    pub eta: f32,
    pub seconds_generate: f64,
    pub seconds_features: f64,
    /// The second stage the images went through, if any (a cascade; see `generator::Refiner`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refiner: Option<RefinerUsed>,
}

/// Which refiner redrew the evaluated images, and how.
#[derive(Debug, Clone, Serialize)]
pub struct RefinerUsed {
    pub model: std::path::PathBuf,
    /// Its training step.
    pub step: usize,
    pub from: f32,
    pub steps: usize,
    pub cfg: f64,
}

impl RefinerUsed {
    pub fn of(r: &generator::Refiner) -> Self {
        RefinerUsed { model: r.path.clone(), step: r.meta.step, from: r.from, steps: r.opts.steps, cfg: r.opts.cfg }
    }
}

/// Mean and covariance (unbiased) of row vectors.
pub fn gaussian(rows: &[Vec<f32>]) -> (DVector<f64>, DMatrix<f64>) {
    let d = rows[0].len();
    let n = rows.len() as f64;
    let mut mu = DVector::<f64>::zeros(d);
    for r in rows {
        for (m, &v) in mu.iter_mut().zip(r) {
            *m += v as f64 / n;
        }
    }
    let x = DMatrix::<f64>::from_fn(rows.len(), d, |i, j| rows[i][j] as f64 - mu[j]);
    let cov = x.transpose() * &x / (n - 1.0).max(1.0);
    (mu, cov)
}

fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let s = DMatrix::from_diagonal(&e.eigenvalues.map(|l| l.max(0.0).sqrt()));
    &e.eigenvectors * s * e.eigenvectors.transpose()
}

/// ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½), via symmetric eigendecompositions.
pub fn frechet(a: &(DVector<f64>, DMatrix<f64>), b: &(DVector<f64>, DMatrix<f64>)) -> f64 {
    let dm = (&a.0 - &b.0).norm_squared();
    let s1h = sqrt_psd(&a.1);
    let m = &s1h * &b.1 * &s1h;
    let m = (&m + m.transpose()) * 0.5;
    let tr_sqrt: f64 = SymmetricEigen::new(m).eigenvalues.iter().map(|l| l.max(0.0).sqrt()).sum();
    (dm + a.1.trace() + b.1.trace() - 2.0 * tr_sqrt).max(0.0)
}

/// Upscales HWC u8 images to the classifier's size and returns (probs, pooled embedding) rows.
pub fn features(pred: &Predictor, images: &[Vec<u8>], side: usize) -> Result<(Vec<Vec<f32>>, Vec<Vec<f32>>)> {
    let s = pred.manifest.size;
    let mut rz = fast_image_resize::Resizer::new();
    let (mut probs, mut emb) = (Vec::new(), Vec::new());
    for chunk in images.chunks(32) {
        let mut x = Vec::with_capacity(chunk.len() * 3 * (s * s) as usize);
        for im in chunk {
            let rgb = image::RgbImage::from_raw(side as u32, side as u32, im.clone()).ok_or_else(|| anyhow!("image buffer does not match {side} px"))?;
            let big = tinycats_data::pixels::resize_square(&rgb, s, tinycats_data::pixels::ResizeMode::Crop, &mut rz)?;
            x.extend(hwc_to_chw(&big, s as usize));
        }
        let (p, e) = pred.probs_and_embedding(x, chunk.len())?;
        let (c, d) = (p.len() / chunk.len(), e.len() / chunk.len());
        probs.extend(p.chunks(c).map(|r| r.to_vec()));
        emb.extend(e.chunks(d).map(|r| r.to_vec()));
    }
    Ok((probs, emb))
}

/// Per requested class (index into `classes`): how many images, how many the classifier put in
/// that class (argmax), and its most frequent label. `labels[i]` is image i's requested class.
pub fn agreement_counts(classes: &[String], clf: &[String], labels: &[usize], probs: &[Vec<f32>]) -> Vec<(usize, usize, String)> {
    classes
        .iter()
        .enumerate()
        .map(|(b, name)| {
            let want = clf.iter().position(|c| c == name);
            let mut counts = vec![0usize; clf.len()];
            let mut n = 0;
            for (_, p) in labels.iter().zip(probs).filter(|(l, _)| **l == b) {
                n += 1;
                let arg = p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|x| x.0).unwrap_or(0);
                counts[arg] += 1;
            }
            let hits = want.map(|w| counts[w]).unwrap_or(0);
            let top = if n == 0 { String::new() } else { counts.iter().enumerate().max_by_key(|x| x.1).map(|x| clf[x.0].clone()).unwrap_or_default() };
            (n, hits, top)
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
pub fn evaluate(
    model: &Dit<Cpu>,
    meta: &GeneratorMeta,
    painter: &generator::Painter,
    guide: Option<(&Dit<Cpu>, &GeneratorMeta)>,
    refiner: Option<&generator::Refiner>,
    pred: &Predictor,
    cache: &Cache,
    total: usize,
    opts: &SampleOptions,
    seed: u64,
    grid_dir: Option<&Path>,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<GenEval> {
    let side = meta.image_size();
    if cache.size() as usize != side {
        bail!("real images in {} are {} px; the generator paints {side} px (prepare the data at {side})", cache.index.classes.join(","), cache.size());
    }
    let k = meta.classes.len();
    let per = total.div_ceil(k).max(1);
    let t0 = std::time::Instant::now();
    let mut generated: Vec<(usize, Vec<u8>)> = Vec::new();
    for b in 0..k {
        let mut imgs = Vec::new();
        for chunk in (0..per as u64).collect::<Vec<_>>().chunks(50) {
            let seeds: Vec<u64> = chunk.iter().map(|s| seed + (b as u64) * 1_000_000 + s).collect();
            let x = generator::sample_guided_by::<Cpu>(model, guide.map(|(g, m)| (g, m.target.as_str())), meta, &vec![b; seeds.len()], &seeds, opts, &mut |_, _| {});
            imgs.extend(generator::to_rgb8(painter.paint_refined(refiner, x, &vec![b; seeds.len()], &seeds))?);
            progress("generate", b * per + imgs.len(), k * per);
        }
        if let Some(dir) = grid_dir {
            std::fs::create_dir_all(dir)?;
            let show: Vec<Vec<u8>> = imgs.iter().take(16).cloned().collect();
            generator::grid_png(&show, side, 8, &dir.join(format!("{}.png", meta.classes[b])))?;
        }
        generated.extend(imgs.into_iter().map(|im| (b, im)));
    }
    let seconds_generate = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let gen_imgs: Vec<Vec<u8>> = generated.iter().map(|g| g.1.clone()).collect();
    let (probs, gen_emb) = features(pred, &gen_imgs, side)?;
    progress("features", gen_imgs.len(), gen_imgs.len());
    // Real images of the generator's classes, all splits.
    let real_idx: Vec<usize> = (0..cache.len()).filter(|&i| meta.classes.contains(&cache.index.classes[cache.index.entries[i].label])).collect();
    let real_imgs: Vec<Vec<u8>> = real_idx.iter().map(|&i| cache.image(i).to_vec()).collect();
    let (real_probs, real_emb) = features(pred, &real_imgs, side)?;
    let seconds_features = t1.elapsed().as_secs_f64();
    let fid_like = frechet(&gaussian(&gen_emb), &gaussian(&real_emb));
    let (even, odd): (Vec<_>, Vec<_>) = real_emb.iter().cloned().enumerate().partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, Vec<f32>)>| v.into_iter().map(|x| x.1).collect::<Vec<_>>();
    let fid_like_real_halves = frechet(&gaussian(&strip(even)), &gaussian(&strip(odd)));

    let clf = &pred.manifest.classes;
    let gen_labels: Vec<usize> = generated.iter().map(|g| g.0).collect();
    let gen_counts = agreement_counts(&meta.classes, clf, &gen_labels, &probs);
    // Ceiling: real test-split photos only (neither network trained on them).
    let (mut test_labels, mut test_probs) = (Vec::new(), Vec::new());
    for (&i, p) in real_idx.iter().zip(&real_probs) {
        let e = &cache.index.entries[i];
        if e.split == Split::Test {
            if let Some(b) = meta.classes.iter().position(|c| *c == cache.index.classes[e.label]) {
                test_labels.push(b);
                test_probs.push(p.clone());
            }
        }
    }
    let real_counts = agreement_counts(&meta.classes, clf, &test_labels, &test_probs);
    let per_breed: Vec<BreedScore> = meta
        .classes
        .iter()
        .zip(gen_counts.iter().zip(&real_counts))
        .map(|(name, (g, r))| BreedScore {
            breed: name.clone(),
            n: g.0,
            agreement: g.1 as f64 / g.0.max(1) as f64,
            top_confusion: g.2.clone(),
            real_agreement: (r.0 > 0).then(|| r.1 as f64 / r.0 as f64),
            real_n: r.0,
        })
        .collect();
    let hits_all: usize = gen_counts.iter().map(|c| c.1).sum();
    let real_hits: usize = real_counts.iter().map(|c| c.1).sum();
    Ok(GenEval {
        generated: generated.len(),
        real: real_imgs.len(),
        fid_like,
        fid_like_real_halves,
        agreement: hits_all as f64 / generated.len().max(1) as f64,
        real_agreement: (!test_labels.is_empty()).then(|| real_hits as f64 / test_labels.len() as f64),
        real_test: test_labels.len(),
        per_breed,
        steps: opts.steps,
        cfg: opts.cfg,
        guidance: opts.guidance,
        guidance_interval: opts.interval,
        time_shift: opts.shift,
        eta: opts.eta,
        seconds_generate,
        seconds_features,
        refiner: refiner.map(RefinerUsed::of),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frechet_of_known_gaussians() {
        // Identical sets → 0; shifted mean by δ in every dim → d·δ².
        let rows: Vec<Vec<f32>> = (0..200).map(|i| (0..4).map(|j| (((i * 7 + j * 13) % 17) as f32) / 17.0).collect()).collect();
        let g = gaussian(&rows);
        assert!(frechet(&g, &g).abs() < 1e-6);
        let shifted: Vec<Vec<f32>> = rows.iter().map(|r| r.iter().map(|v| v + 0.5).collect()).collect();
        let d = frechet(&g, &gaussian(&shifted));
        assert!((d - 4.0 * 0.25).abs() < 1e-6, "{d}");
        // Scaled covariance: tr(S) + tr(4S) − 2 tr(2S) = tr(S).
        let scaled: Vec<Vec<f32>> = rows.iter().map(|r| r.iter().map(|v| v * 2.0).collect()).collect();
        let (mu2, s2) = gaussian(&scaled);
        let d = frechet(&(g.0.clone() * 2.0, g.1.clone()), &(mu2, s2));
        assert!((d - g.1.trace()).abs() < 1e-6, "{d} vs {}", g.1.trace());
    }

    #[test]
    fn agreement_counts_argmax_per_requested_class() {
        let classes: Vec<String> = ["A", "B"].iter().map(|s| s.to_string()).collect();
        let clf: Vec<String> = ["A", "other", "B"].iter().map(|s| s.to_string()).collect();
        // A: argmax A, other, A → 2 of 3; B: argmax A → 0 of 1, seen as A.
        let probs = vec![vec![0.6, 0.3, 0.1], vec![0.1, 0.8, 0.1], vec![0.5, 0.0, 0.4], vec![0.7, 0.1, 0.2]];
        let c = agreement_counts(&classes, &clf, &[0, 0, 0, 1], &probs);
        assert_eq!(c[0], (3, 2, "A".to_string()));
        assert_eq!(c[1], (1, 0, "A".to_string()));
        // A class with no images counts nothing and names no confusion.
        assert_eq!(agreement_counts(&classes, &clf, &[0], &probs[..1])[1], (0, 0, String::new()));
    }
}
