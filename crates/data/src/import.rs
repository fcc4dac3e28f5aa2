//! `tinycats data import`: bring a dataset into the official layout under DEST, from
//! an official-layout folder, a .tar / .tar.gz of one (compression detected from the bytes,
//! since the official archives are sometimes plain tar despite the name), or class folders
//! (`<breed>/<image>`). Existing files in DEST are never overwritten with different content.

use crate::labels::canonical_breed;
use crate::layout::{self, entry_for, Entry, IMAGES};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportSummary {
    pub images: usize,
    pub annotated: usize,
    /// Files already in DEST with identical bytes.
    pub unchanged: usize,
    pub sources: Vec<String>,
}

const IMAGE_EXTS: [&str; 6] = ["jpg", "jpeg", "png", "gif", "webp", "bmp"];

/// Copies `from` to `to` unless an identical file is there; refuses to replace a different one.
fn copy_new(from: &Path, to: &Path, summary: &mut ImportSummary) -> Result<()> {
    if to.exists() {
        let a = std::fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        let b = std::fs::read(to).with_context(|| format!("cannot read {}", to.display()))?;
        if a == b {
            summary.unchanged += 1;
            return Ok(());
        }
        bail!("{} already exists with different content; import never overwrites (choose another --dest)", to.display());
    }
    if let Some(p) = to.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn sorted_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// Finds the folder holding `images/` or `annotations/` (an archive may wrap them in one top folder).
fn official_root(dir: &Path) -> Option<PathBuf> {
    if dir.join(IMAGES).is_dir() || dir.join("annotations").is_dir() {
        return Some(dir.to_path_buf());
    }
    let subs: Vec<PathBuf> = sorted_dir(dir).ok()?.into_iter().filter(|p| p.is_dir()).collect();
    if subs.len() == 1 {
        return official_root(&subs[0]);
    }
    None
}

fn import_official(root: &Path, dest: &Path, s: &mut ImportSummary) -> Result<()> {
    let img = root.join(IMAGES);
    if img.is_dir() {
        for p in sorted_dir(&img)? {
            if p.is_file() {
                copy_new(&p, &dest.join(IMAGES).join(p.file_name().unwrap_or_default()), s)?;
                s.images += 1;
            }
        }
    }
    let ann = root.join("annotations");
    if ann.is_dir() {
        // Everything in annotations/ (list.txt, trainval.txt, trimaps...) comes along.
        copy_tree(&ann, &dest.join("annotations"), s)?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path, s: &mut ImportSummary) -> Result<()> {
    for p in sorted_dir(from)? {
        let t = to.join(p.file_name().unwrap_or_default());
        if p.is_dir() {
            copy_tree(&p, &t, s)?;
        } else if p.is_file() {
            copy_new(&p, &t, s)?;
        }
    }
    Ok(())
}

fn import_class_folders(root: &Path, dest: &Path, s: &mut ImportSummary) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let classes: Vec<PathBuf> = sorted_dir(root)?.into_iter().filter(|p| p.is_dir()).collect();
    if classes.is_empty() {
        bail!(
            "{}: no images/ + annotations/list.txt and no class folders; expected the official layout or `<breed>/<image>` folders",
            root.display()
        );
    }
    for cdir in classes {
        let name = cdir.file_name().unwrap_or_default().to_string_lossy().to_string();
        let Some(breed) = canonical_breed(&name) else {
            bail!(
                "class folder `{}` is not an Oxford-IIIT Pet breed; allowed: {}",
                cdir.display(),
                crate::labels::all_breeds().join(", ")
            );
        };
        let mut k = 0;
        for p in sorted_dir(&cdir)? {
            let ext = p.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
            if !p.is_file() || !IMAGE_EXTS.contains(&ext.as_str()) {
                continue;
            }
            k += 1;
            let stem = format!("{breed}_{k}");
            copy_new(&p, &dest.join(IMAGES).join(format!("{stem}.{ext}")), s)?;
            s.images += 1;
            entries.push(entry_for(&stem, breed));
        }
        if k == 0 {
            bail!("class folder {} holds no images ({})", cdir.display(), IMAGE_EXTS.join(", "));
        }
    }
    Ok(entries)
}

/// Unpacks a tar or gzip'd tar into `to`, refusing absolute paths and `..` (path traversal).
pub fn unpack_archive(archive: &Path, to: &Path) -> Result<()> {
    let mut f = std::fs::File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    drop(f);
    let file = std::fs::File::open(archive)?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1F, 0x8B] {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut ar = tar::Archive::new(reader);
    let entries = ar.entries().with_context(|| format!("{} is not a tar archive", archive.display()))?;
    let mut count = 0;
    for e in entries {
        let mut e = e.with_context(|| format!("{}: corrupt tar archive (truncated or not tar)", archive.display()))?;
        let path = e.path()?.to_path_buf();
        if path.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_))) {
            bail!("{}: refusing unsafe path `{}` in archive", archive.display(), path.display());
        }
        let kind = e.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            continue; // links and devices are never needed for a dataset
        }
        let out = to.join(&path);
        if let Some(p) = out.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
        }
        e.unpack(&out).with_context(|| format!("{}: cannot unpack `{}`", archive.display(), path.display()))?;
        count += 1;
    }
    if count == 0 {
        bail!("{} is empty or not a tar archive", archive.display());
    }
    Ok(())
}

/// Imports every source into `dest` (merged), then checks the result is a usable dataset.
pub fn import(srcs: &[PathBuf], dest: &Path) -> Result<ImportSummary> {
    if srcs.is_empty() {
        bail!("no source given: pass a folder, a .tar/.tar.gz, or several of them");
    }
    std::fs::create_dir_all(dest).with_context(|| format!("cannot create destination {}", dest.display()))?;
    let mut s = ImportSummary::default();
    let mut folder_entries: Vec<Entry> = Vec::new();
    for src in srcs {
        s.sources.push(src.display().to_string());
        let tmp;
        let dir = if src.is_file() {
            tmp = tempdir_in(dest)?;
            unpack_archive(src, &tmp.0)?;
            tmp.0.clone()
        } else if src.is_dir() {
            src.clone()
        } else {
            bail!("source {} does not exist", src.display());
        };
        match official_root(&dir) {
            Some(root) => import_official(&root, dest, &mut s)?,
            None => folder_entries.extend(import_class_folders(&dir, dest, &mut s)?),
        }
    }
    let list = dest.join(layout::LIST);
    if !folder_entries.is_empty() {
        if list.exists() {
            bail!("{} already exists; import class folders into a new --dest", list.display());
        }
        std::fs::create_dir_all(dest.join("annotations"))?;
        crate::hashing::write_atomic(&list, layout::format_list(&folder_entries).as_bytes())?;
    }
    if !list.is_file() {
        bail!(
            "missing annotations: no annotations/list.txt after importing {} (for the official download import both images.tar.gz and annotations.tar.gz)",
            s.sources.join(", ")
        );
    }
    s.annotated = layout::read_list(&list)?.len();
    let imgs = layout::image_files(dest)?;
    s.images = imgs.len();
    Ok(s)
}

/// A scratch folder inside DEST (same filesystem, removed on drop).
struct TmpDir(PathBuf);
impl Drop for TmpDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
fn tempdir_in(dest: &Path) -> Result<TmpDir> {
    for i in 0..1000 {
        let p = dest.join(format!(".import-{}-{i}", std::process::id()));
        if std::fs::create_dir(&p).is_ok() {
            return Ok(TmpDir(p));
        }
    }
    bail!("cannot create a scratch folder in {}", dest.display())
}

