//! The prepared training cache: `images.u8` (N × S × S × 3 bytes, HWC, memory-mapped) and
//! `index.json` (one entry per image: stable id, label, split, source). Written by `prepare`.

use anyhow::{bail, Context, Result};
use memmap2::Mmap;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const PIXELS: &str = "images.u8";
pub const INDEX: &str = "index.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
    Test,
}

impl Split {
    pub const ALL: [Split; 3] = [Split::Train, Split::Val, Split::Test];
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// SHA-256 of the source file: a sample id that survives renames and re-preparation.
    pub id: String,
    pub stem: String,
    pub breed: String,
    pub label: usize,
    pub split: Split,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    pub version: u32,
    pub size: u32,
    pub channels: u32,
    pub label_set: String,
    pub mode: crate::pixels::ResizeMode,
    /// Centre-crop zoom (share of the shorter side kept); absent in caches from before it existed.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub zoom: f64,
    pub classes: Vec<String>,
    pub seed: u64,
    pub split: [f64; 3],
    /// Fingerprint of the inputs and options; equal keys mean re-preparing is a no-op.
    pub key: String,
    pub entries: Vec<CacheEntry>,
}

fn one() -> f64 {
    1.0
}
fn is_one(z: &f64) -> bool {
    *z == 1.0
}

impl Index {
    pub fn image_bytes(&self) -> usize {
        (self.size * self.size * self.channels) as usize
    }
    /// Fingerprint of which sample is in which split (stored with every training run).
    pub fn split_hash(&self) -> String {
        let mut s = String::new();
        for e in &self.entries {
            s.push_str(&e.id);
            s.push_str(e.split.name());
            s.push('\n');
        }
        crate::hashing::sha256_hex(s.as_bytes())
    }
}

/// A prepared dataset opened for reading.
pub struct Cache {
    pub dir: PathBuf,
    pub index: Index,
    pixels: Mmap,
}

impl Cache {
    pub fn open(dir: &Path) -> Result<Cache> {
        let ip = dir.join(INDEX);
        let text = std::fs::read_to_string(&ip)
            .with_context(|| format!("cannot read {} (is {} a folder made by `tinycats data prepare`?)", ip.display(), dir.display()))?;
        let index: Index = serde_json::from_str(&text).with_context(|| format!("{} is not a valid cache index", ip.display()))?;
        if index.version != FORMAT_VERSION {
            bail!("{}: cache format {} is not supported (expected {FORMAT_VERSION}); re-run prepare", ip.display(), index.version);
        }
        let pp = dir.join(PIXELS);
        let f = std::fs::File::open(&pp).with_context(|| format!("cannot open {}", pp.display()))?;
        // SAFETY: the cache is written once by prepare (atomically, by folder rename) and only read afterwards.
        let pixels = unsafe { Mmap::map(&f) }.with_context(|| format!("cannot map {}", pp.display()))?;
        let want = index.entries.len() * index.image_bytes();
        if pixels.len() != want {
            bail!("{}: {} bytes, index says {want}; the cache is damaged, re-run prepare", pp.display(), pixels.len());
        }
        Ok(Cache { dir: dir.to_path_buf(), index, pixels })
    }

    pub fn len(&self) -> usize {
        self.index.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.index.entries.is_empty()
    }
    pub fn size(&self) -> u32 {
        self.index.size
    }
    /// HWC RGB bytes of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.index.image_bytes();
        &self.pixels[i * n..(i + 1) * n]
    }
    /// Positions of the images in one split, in index order.
    pub fn split(&self, split: Split) -> Vec<usize> {
        self.index.entries.iter().enumerate().filter(|(_, e)| e.split == split).map(|(i, _)| i).collect()
    }
}
