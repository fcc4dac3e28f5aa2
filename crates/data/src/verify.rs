//! `tinycats data verify`: decode every image, classify problems, convert what can be
//! converted, quarantine what cannot. Never deletes: originals and quarantined files are moved aside.

use crate::hashing::{sha256_hex, write_atomic};
use crate::layout::{self, IMAGES, ORIGINALS, QUARANTINE, VERIFY_REPORT};
use crate::pixels::{self, Sniffed};
use anyhow::{Context, Result};
use image::DynamicImage;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Empty,
    NotAnImage,
    Truncated,
    Corrupt,
    GifDisguisedAsJpg,
    PngDisguisedAsJpg,
    WrongExtension,
    Grayscale,
    Cmyk,
    Rgba,
    TooSmall,
    Duplicate,
    NotInAnnotations,
    MissingFile,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Converted,
    Quarantined,
    /// An annotation whose image is absent: reported, the entry is skipped by prepare.
    Skipped,
    WouldConvert,
    WouldQuarantine,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub file: String,
    pub kind: Kind,
    pub action: Action,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub images: usize,
    pub ok: usize,
    pub converted: usize,
    pub quarantined: usize,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Smallest accepted side in pixels.
    pub min_side: u32,
    /// Report only; change nothing on disk.
    pub check_only: bool,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { min_side: 32, check_only: false }
    }
}

/// What inspecting one file concluded.
enum Verdict {
    Ok,
    Convert(Vec<(Kind, Option<String>)>, DynamicImage),
    Quarantine(Kind, Option<String>),
}

fn inspect(bytes: &[u8], path: &Path, min_side: u32) -> (Verdict, Vec<(Kind, Option<String>)>) {
    if bytes.is_empty() {
        return (Verdict::Quarantine(Kind::Empty, None), vec![]);
    }
    let fmt = pixels::sniff(bytes);
    if fmt == Sniffed::Unknown {
        return (Verdict::Quarantine(Kind::NotAnImage, Some("unrecognised file signature".into())), vec![]);
    }
    if fmt == Sniffed::Jpeg && pixels::jpeg_truncated(bytes) {
        return (Verdict::Quarantine(Kind::Truncated, Some("no JPEG end-of-image marker".into())), vec![]);
    }
    let img = match pixels::decode(bytes) {
        Ok(i) => i,
        Err(e) => return (Verdict::Quarantine(Kind::Corrupt, Some(e.to_string())), vec![]),
    };
    if img.width().min(img.height()) < min_side {
        let d = format!("{}x{} < {min_side}", img.width(), img.height());
        return (Verdict::Quarantine(Kind::TooSmall, Some(d)), vec![]);
    }
    let ext = path.extension().map(|e| e.to_string_lossy().to_lowercase()).unwrap_or_default();
    let named_jpeg = ext == "jpg" || ext == "jpeg";
    let mut fixes = Vec::new();
    match (fmt, named_jpeg) {
        (Sniffed::Gif, true) => fixes.push((Kind::GifDisguisedAsJpg, Some("first frame kept".into()))),
        (Sniffed::Png, true) => fixes.push((Kind::PngDisguisedAsJpg, None)),
        (Sniffed::Jpeg, true) => {}
        (f, false) if ext != f.name() => {
            fixes.push((Kind::WrongExtension, Some(format!("`.{ext}` holds {}", f.name()))))
        }
        (f, _) if f != Sniffed::Jpeg => {
            // Non-JPEG with a matching extension: still rewritten as JPEG so the whole set is uniform.
            fixes.push((Kind::WrongExtension, Some(format!("{} stored as .{ext}; rewritten as .jpg", f.name()))))
        }
        _ => {}
    }
    if fmt == Sniffed::Jpeg && pixels::jpeg_components(bytes) == Some(4) {
        fixes.push((Kind::Cmyk, None));
    }
    let color = img.color();
    if color.has_alpha() {
        fixes.push((Kind::Rgba, Some("alpha dropped".into())));
    }
    if matches!(color, image::ColorType::L8 | image::ColorType::La8 | image::ColorType::L16 | image::ColorType::La16) {
        fixes.push((Kind::Grayscale, Some("expanded to RGB".into())));
    }
    if fixes.is_empty() {
        (Verdict::Ok, vec![])
    } else {
        (Verdict::Convert(fixes.clone(), img), fixes)
    }
}

fn move_aside(root: &Path, from: &Path, folder: &str) -> Result<PathBuf> {
    let dir = root.join(folder);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let name = from.file_name().unwrap_or_default();
    let mut to = dir.join(name);
    // Never overwrite something already set aside by an earlier run.
    let mut k = 1;
    while to.exists() {
        to = dir.join(format!("{}.{k}", name.to_string_lossy()));
        k += 1;
    }
    std::fs::rename(from, &to).with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
    Ok(to)
}

/// Verifies (and, unless `check_only`, repairs) the dataset at `root`. Writes `verify-report.json`.
pub fn verify(root: &Path, opts: &VerifyOptions, progress: &(dyn Fn(usize) + Sync)) -> Result<Report> {
    let files = layout::image_files(root)?;
    let list_path = root.join(layout::LIST);
    let annotated: Option<HashSet<String>> = if list_path.is_file() {
        Some(layout::read_list(&list_path)?.into_iter().map(|e| e.stem).collect())
    } else {
        None
    };
    let all: Vec<(String, PathBuf)> = files.into_iter().collect();
    let all_stems: HashSet<String> = all.iter().map(|(s, _)| s.clone()).collect();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Decode in parallel; the moves and writes below happen in a fixed order.
    let results: Vec<(String, PathBuf, Result<(Verdict, String)>)> = all
        .par_iter()
        .map(|(stem, path)| {
            let r = std::fs::read(path)
                .with_context(|| format!("cannot read {}", path.display()))
                .map(|b| {
                    let (v, _) = inspect(&b, path, opts.min_side);
                    (v, sha256_hex(&b))
                });
            progress(done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1);
            (stem.clone(), path.clone(), r)
        })
        .collect();

    let mut report = Report { images: results.len(), ok: 0, converted: 0, quarantined: 0, problems: vec![] };
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    let q_action = if opts.check_only { Action::WouldQuarantine } else { Action::Quarantined };
    let c_action = if opts.check_only { Action::WouldConvert } else { Action::Converted };
    for (stem, path, res) in results {
        let file = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().to_string();
        let (verdict, hash) = res?;
        let quarantine = |kind: Kind, detail: Option<String>, report: &mut Report| -> Result<()> {
            if !opts.check_only {
                move_aside(root, &path, QUARANTINE)?;
            }
            report.quarantined += 1;
            report.problems.push(Problem { file: file.clone(), kind, action: q_action, detail });
            Ok(())
        };
        if let Some(first) = seen.get(&hash) {
            quarantine(Kind::Duplicate, Some(format!("same bytes as {first}")), &mut report)?;
            continue;
        }
        seen.insert(hash, file.clone());
        if let Some(ann) = &annotated {
            if !ann.contains(&stem) {
                quarantine(Kind::NotInAnnotations, Some("no label in annotations/list.txt".into()), &mut report)?;
                continue;
            }
        }
        match verdict {
            Verdict::Ok => report.ok += 1,
            Verdict::Quarantine(kind, detail) => quarantine(kind, detail, &mut report)?,
            Verdict::Convert(fixes, img) => {
                if !opts.check_only {
                    let rgb = pixels::to_rgb(img);
                    let mut buf = Vec::new();
                    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 95)
                        .encode_image(&rgb)
                        .with_context(|| format!("cannot re-encode {}", path.display()))?;
                    // Original first, so a failure in between never loses the picture.
                    let orig = move_aside(root, &path, ORIGINALS)?;
                    let dest = root.join(IMAGES).join(format!("{stem}.jpg"));
                    if let Err(e) = write_atomic(&dest, &buf) {
                        let _ = std::fs::rename(&orig, &path);
                        return Err(e);
                    }
                }
                report.converted += 1;
                for (kind, detail) in fixes {
                    report.problems.push(Problem { file: file.clone(), kind, action: c_action, detail });
                }
            }
        }
    }
    if let Some(ann) = &annotated {
        // Only stems that never had a file; quarantined ones were already reported above.
        let mut missing: Vec<&String> = ann.iter().filter(|s| !all_stems.contains(*s)).collect();
        missing.sort();
        for s in missing {
            let detail = Some("listed in annotations/list.txt, no image".into());
            report.problems.push(Problem { file: format!("{IMAGES}/{s}.jpg"), kind: Kind::MissingFile, action: Action::Skipped, detail });
        }
    }
    if !opts.check_only {
        let json = serde_json::to_vec_pretty(&report)?;
        write_atomic(&root.join(VERIFY_REPORT), &json)?;
    }
    Ok(report)
}

