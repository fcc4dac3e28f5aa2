//! `tinycats data prepare`: decode, resize to N×N, split (stratified, seeded), label, and write the
//! cache plus a dataset card. Output is built in a scratch folder and swapped in by rename, so a
//! failure (bad image, full disk) leaves any earlier preparation untouched.

use crate::cache::{CacheEntry, Index, Split, FORMAT_VERSION, INDEX, PIXELS};
use crate::hashing::{sha256_hex, write_atomic};
use crate::labels::LabelSet;
use crate::layout::Dataset;
use crate::pixels::{self, ResizeMode};
use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct PrepareOptions {
    pub size: u32,
    pub labels: LabelSet,
    pub split: [f64; 3],
    pub seed: u64,
    pub mode: ResizeMode,
    /// Crop mode only: the centre square keeps this share of the shorter side (1 = all of it).
    pub zoom: f64,
    /// Output folder; default `<dataset>/prepared/<size>-<labels>-<mode>[-zoom<Z>]`.
    pub out: Option<PathBuf>,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self { size: 128, labels: LabelSet::CatsOther, split: [0.8, 0.1, 0.1], seed: 42, mode: ResizeMode::Crop, zoom: 1.0, out: None }
    }
}

/// Parses `0.8,0.1,0.1`; fractions must be ≥ 0 and sum to 1.
pub fn parse_split(s: &str) -> Result<[f64; 3]> {
    let parts: Vec<&str> = s.split(',').collect();
    if parts.len() != 3 {
        bail!("field `split` = `{s}`: expected three fractions train,val,test such as 0.8,0.1,0.1");
    }
    let mut v = [0.0; 3];
    for (i, p) in parts.iter().enumerate() {
        v[i] = p.trim().parse().with_context(|| format!("field `split`: `{p}` is not a number"))?;
        if !(0.0..=1.0).contains(&v[i]) {
            bail!("field `split`: {} is outside 0..1", v[i]);
        }
    }
    if (v.iter().sum::<f64>() - 1.0).abs() > 1e-6 || v[0] <= 0.0 {
        bail!("field `split` = `{s}`: fractions must sum to 1 and train must be > 0");
    }
    Ok(v)
}

#[derive(Debug, Clone, Serialize)]
pub struct PrepareSummary {
    pub out: PathBuf,
    /// True when the cache already matched the inputs and nothing was written.
    pub unchanged: bool,
    pub images: usize,
    pub classes: Vec<String>,
    /// counts[class][split]
    pub counts: BTreeMap<String, BTreeMap<String, usize>>,
    /// Annotated images with no file (e.g. quarantined by verify).
    pub missing: usize,
}

pub fn default_out(root: &Path, o: &PrepareOptions) -> PathBuf {
    let mode = match o.mode {
        ResizeMode::Crop => "crop",
        ResizeMode::Letterbox => "letterbox",
    };
    let zoom = if o.zoom == 1.0 { String::new() } else { format!("-zoom{}", o.zoom) };
    root.join("prepared").join(format!("{}-{}-{mode}{zoom}", o.size, o.labels.name().replace('+', "_")))
}

/// Stratified seeded split: each class is shuffled on its own and cut by the fractions,
/// so every split keeps the class balance and the same seed gives the same split.
pub fn stratified_split(labels: &[usize], fractions: [f64; 3], seed: u64) -> Vec<Split> {
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut out = vec![Split::Train; labels.len()];
    for (class, mut idx) in by_class {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (class as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        idx.shuffle(&mut rng);
        let n = idx.len();
        let mut n_val = (n as f64 * fractions[1]).round() as usize;
        let mut n_test = (n as f64 * fractions[2]).round() as usize;
        // Small classes still get one val/test image when asked for, as long as train keeps one.
        if fractions[1] > 0.0 && n_val == 0 && n >= 3 {
            n_val = 1;
        }
        if fractions[2] > 0.0 && n_test == 0 && n >= 3 {
            n_test = 1;
        }
        while n_val + n_test >= n && (n_val > 0 || n_test > 0) {
            if n_test >= n_val && n_test > 0 { n_test -= 1 } else { n_val -= 1 }
        }
        for (k, &i) in idx.iter().enumerate() {
            out[i] = if k < n_test { Split::Test } else if k < n_test + n_val { Split::Val } else { Split::Train };
        }
    }
    out
}

pub fn prepare(root: &Path, o: &PrepareOptions, progress: &(dyn Fn(usize, usize) + Sync)) -> Result<PrepareSummary> {
    if o.size < 8 || o.size > 1024 {
        bail!("field `size` = {}: must be within 8..=1024 pixels", o.size);
    }
    if !(pixels::MIN_ZOOM..=1.0).contains(&o.zoom) {
        bail!("field `zoom` = {}: must be within {}..=1 (the share of the shorter side the centre crop keeps)", o.zoom, pixels::MIN_ZOOM);
    }
    if o.zoom != 1.0 && o.mode != ResizeMode::Crop {
        bail!("field `zoom` = {}: only the crop mode can zoom (letterbox keeps the whole picture)", o.zoom);
    }
    let ds = Dataset::open(root)?;
    let classes = o.labels.classes();
    let out = o.out.clone().unwrap_or_else(|| default_out(root, o));
    let mut items: Vec<(String, String, usize, PathBuf)> = Vec::new(); // stem, breed, label, path
    for (e, p) in ds.present() {
        if let Some(l) = o.labels.label_of(&e.breed) {
            items.push((e.stem.clone(), e.breed.clone(), l, p.clone()));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let mut per_class = vec![0usize; classes.len()];
    for it in &items {
        per_class[it.2] += 1;
    }
    if let Some(c) = per_class.iter().position(|&n| n == 0) {
        bail!(
            "class `{}` has zero images in {} (label set `{}` needs every class; check annotations/list.txt or pick another --labels)",
            classes[c],
            root.display(),
            o.labels.name()
        );
    }
    let n = items.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Hash every source (ids + no-op key), then decode and resize, all in parallel.
    let decoded: Vec<Result<(String, Vec<u8>)>> = items
        .par_iter()
        .map_init(fast_image_resize::Resizer::new, |rz, (_, _, _, path)| {
            let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
            let id = sha256_hex(&bytes);
            let px = pixels::load_square_zoom(&bytes, o.size, o.mode, o.zoom, rz).with_context(|| format!("{}", path.display()))?;
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1, n);
            Ok((id, px))
        })
        .collect();
    let bad: Vec<String> = decoded.iter().filter_map(|r| r.as_ref().err().map(|e| format!("{e:#}"))).collect();
    if !bad.is_empty() {
        let shown: Vec<&str> = bad.iter().take(10).map(|s| s.as_str()).collect();
        bail!(
            "{} image(s) cannot be decoded (run `tinycats data verify {}` to convert or quarantine them):\n  {}",
            bad.len(),
            root.display(),
            shown.join("\n  ")
        );
    }
    let decoded: Vec<(String, Vec<u8>)> = decoded.into_iter().map(|r| r.expect("errors handled above")).collect();
    let labels: Vec<usize> = items.iter().map(|i| i.2).collect();
    let splits = stratified_split(&labels, o.split, o.seed);
    let mut key_src = format!("v{FORMAT_VERSION} size={} labels={} mode={:?} split={:?} seed={}\n", o.size, o.labels.name(), o.mode, o.split, o.seed);
    if o.zoom != 1.0 {
        // Only zoomed caches add the field, so caches prepared before zoom existed keep their key.
        key_src.push_str(&format!("zoom={}\n", o.zoom));
    }
    for (it, (id, _)) in items.iter().zip(&decoded) {
        key_src.push_str(&format!("{} {}\n", it.0, id));
    }
    let key = sha256_hex(key_src.as_bytes());
    let entries: Vec<CacheEntry> = items
        .iter()
        .zip(&decoded)
        .zip(&splits)
        .map(|((it, (id, _)), &split)| CacheEntry { id: id.clone(), stem: it.0.clone(), breed: it.1.clone(), label: it.2, split })
        .collect();
    let mut counts: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for e in &entries {
        *counts.entry(classes[e.label].clone()).or_default().entry(e.split.name().to_string()).or_insert(0) += 1;
    }
    let summary = PrepareSummary { out: out.clone(), unchanged: false, images: n, classes: classes.clone(), counts, missing: ds.missing().len() };

    if let Ok(text) = std::fs::read_to_string(out.join(INDEX)) {
        if let Ok(old) = serde_json::from_str::<Index>(&text) {
            let pix_ok = std::fs::metadata(out.join(PIXELS)).map(|m| m.len() as usize == n * (o.size * o.size * 3) as usize).unwrap_or(false);
            if old.key == key && pix_ok {
                return Ok(PrepareSummary { unchanged: true, ..summary });
            }
        }
    }
    let index = Index {
        version: FORMAT_VERSION,
        size: o.size,
        channels: 3,
        label_set: o.labels.name().to_string(),
        mode: o.mode,
        zoom: o.zoom,
        classes: classes.clone(),
        seed: o.seed,
        split: o.split,
        key,
        entries,
    };
    write_output(&out, &index, &decoded, &summary, root)?;
    Ok(summary)
}

fn write_output(out: &Path, index: &Index, decoded: &[(String, Vec<u8>)], s: &PrepareSummary, root: &Path) -> Result<()> {
    use std::io::Write;
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    let name = out.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "prepared".into());
    let tmp = parent.join(format!(".{name}.tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let res = (|| -> Result<()> {
        std::fs::create_dir_all(&tmp).with_context(|| format!("cannot create {} (is the output folder writable?)", tmp.display()))?;
        let pp = tmp.join(PIXELS);
        let mut f = std::io::BufWriter::new(std::fs::File::create(&pp).with_context(|| format!("cannot create {}", pp.display()))?);
        for (_, px) in decoded {
            f.write_all(px).with_context(|| format!("cannot write {} (disk full?)", pp.display()))?;
        }
        let f = f.into_inner().map_err(|e| e.into_error()).with_context(|| format!("cannot write {}", pp.display()))?;
        f.sync_all().with_context(|| format!("cannot sync {}", pp.display()))?;
        write_atomic(&tmp.join(INDEX), &serde_json::to_vec(index)?)?;
        write_atomic(&tmp.join("labels.json"), &serde_json::to_vec_pretty(&index.classes)?)?;
        let card = serde_json::json!({
            "source": root.display().to_string(),
            "images": s.images,
            "missing_annotated": s.missing,
            "size": index.size,
            "mode": index.mode,
            "zoom": index.zoom,
            "label_set": index.label_set,
            "classes": index.classes,
            "split_fractions": index.split,
            "seed": index.seed,
            "counts": s.counts,
            "split_hash": index.split_hash(),
            "key": index.key,
            "sources": index.entries.iter().map(|e| (e.stem.clone(), e.id.clone())).collect::<BTreeMap<_, _>>(),
        });
        write_atomic(&tmp.join("card.json"), &serde_json::to_vec_pretty(&card)?)?;
        write_atomic(&tmp.join("CARD.md"), card_markdown(index, s, root).as_bytes())?;
        Ok(())
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    // Swap in: old output aside, new in place, old removed; a crash in between keeps one complete copy.
    let old = parent.join(format!(".{name}.old-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(out, &old).with_context(|| format!("cannot move aside {}", out.display()))?;
    }
    if let Err(e) = std::fs::rename(&tmp, out) {
        let _ = std::fs::rename(&old, out);
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e).with_context(|| format!("cannot create {}", out.display()));
    }
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn card_markdown(index: &Index, s: &PrepareSummary, root: &Path) -> String {
    let mut m = format!(
        "# Dataset card\n\nSource: `{}` (Oxford-IIIT Pet layout; CC BY-SA 4.0, Parkhi et al., CVPR 2012).\n\n\
         {} images, {}x{} RGB ({:?}, zoom {}), label set `{}`, split {:?} (seed {}), split hash `{}`.\n\
         Annotated images without a file (skipped): {}.\n\n| class | train | val | test | total |\n|---|---|---|---|---|\n",
        root.display(), s.images, index.size, index.size, index.mode, index.zoom, index.label_set, index.split, index.seed, index.split_hash(), s.missing
    );
    for c in &index.classes {
        let g = |k: &str| s.counts.get(c).and_then(|m| m.get(k)).copied().unwrap_or(0);
        m.push_str(&format!("| {c} | {} | {} | {} | {} |\n", g("train"), g("val"), g("test"), g("train") + g("val") + g("test")));
    }
    m.push_str("\nPer-file source SHA-256 hashes are in card.json (`sources`).\n");
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_stratified_and_seeded() {
        let labels: Vec<usize> = (0..160).map(|i| i % 4).collect();
        let a = stratified_split(&labels, [0.8, 0.1, 0.1], 1);
        assert_eq!(a, stratified_split(&labels, [0.8, 0.1, 0.1], 1));
        assert_ne!(a, stratified_split(&labels, [0.8, 0.1, 0.1], 2));
        for c in 0..4 {
            let n = |s| labels.iter().zip(&a).filter(|(l, x)| **l == c && **x == s).count();
            assert_eq!((n(Split::Train), n(Split::Val), n(Split::Test)), (32, 4, 4), "class {c}");
        }
        // Tiny classes keep at least one training image.
        let t = stratified_split(&[0, 0, 1], [0.34, 0.33, 0.33], 3);
        assert!(t.iter().filter(|s| **s == Split::Train).count() >= 2);
    }

    #[test]
    fn split_parse_errors_name_the_field() {
        assert_eq!(parse_split("0.7,0.2,0.1").unwrap(), [0.7, 0.2, 0.1]);
        for bad in ["0.5,0.5", "0.9,0.2,0.1", "a,0.5,0.5", "0,0.5,0.5"] {
            assert!(parse_split(bad).unwrap_err().to_string().contains("split"), "{bad}");
        }
    }
}
