//! `tinycats data stats`: counts of a raw dataset folder or of a prepared cache.

use crate::cache::{Cache, Split, INDEX};
use crate::layout::Dataset;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Stats {
    Raw {
        images: usize,
        annotated: usize,
        missing: usize,
        unannotated: usize,
        cats: usize,
        dogs: usize,
        per_breed: BTreeMap<String, usize>,
    },
    Prepared {
        images: usize,
        size: u32,
        label_set: String,
        per_class: BTreeMap<String, BTreeMap<String, usize>>,
        /// Per-channel mean and std over the training split, in [0, 1].
        train_mean: [f64; 3],
        train_std: [f64; 3],
    },
}

pub fn stats(dir: &Path) -> Result<Stats> {
    if dir.join(INDEX).is_file() {
        let c = Cache::open(dir)?;
        let mut per_class: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for e in &c.index.entries {
            *per_class.entry(c.index.classes[e.label].clone()).or_default().entry(e.split.name().into()).or_insert(0) += 1;
        }
        let (mut sum, mut sq, mut n) = ([0f64; 3], [0f64; 3], 0f64);
        for i in c.split(Split::Train) {
            for px in c.image(i).chunks_exact(3) {
                for k in 0..3 {
                    let v = px[k] as f64 / 255.0;
                    sum[k] += v;
                    sq[k] += v * v;
                }
                n += 1.0;
            }
        }
        let n = n.max(1.0);
        let mean = sum.map(|s| s / n);
        let std = [0, 1, 2].map(|k| (sq[k] / n - mean[k] * mean[k]).max(0.0).sqrt());
        return Ok(Stats::Prepared { images: c.len(), size: c.size(), label_set: c.index.label_set.clone(), per_class, train_mean: mean, train_std: std });
    }
    let ds = Dataset::open(dir)?;
    let present = ds.present();
    let mut per_breed = BTreeMap::new();
    let (mut cats, mut dogs) = (0, 0);
    for (e, _) in &present {
        *per_breed.entry(e.breed.clone()).or_insert(0) += 1;
        if e.species == 1 { cats += 1 } else { dogs += 1 }
    }
    let annotated: std::collections::HashSet<&str> = ds.entries.iter().map(|e| e.stem.as_str()).collect();
    Ok(Stats::Raw {
        images: ds.files.len(),
        annotated: ds.entries.len(),
        missing: ds.missing().len(),
        unannotated: ds.files.keys().filter(|k| !annotated.contains(k.as_str())).count(),
        cats,
        dogs,
        per_breed,
    })
}
