//! The on-disk dataset layout shared with the official Oxford-IIIT Pet archives:
//! `images/<Breed>_<n>.jpg` and `annotations/list.txt` (`Image CLASS-ID SPECIES BREED-ID`).

use crate::labels::{canonical_breed, is_cat};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const IMAGES: &str = "images";
pub const LIST: &str = "annotations/list.txt";
/// Files verify could not repair are moved here (never deleted).
pub const QUARANTINE: &str = "quarantine";
/// Originals of files verify converted are kept here.
pub const ORIGINALS: &str = "originals";
pub const VERIFY_REPORT: &str = "verify-report.json";

/// One annotated image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// File stem, e.g. `Abyssinian_34`.
    pub stem: String,
    /// Official 1-based CLASS-ID (1-37).
    pub class_id: u32,
    /// 1 = cat, 2 = dog.
    pub species: u8,
    /// Canonical breed name (derived from the stem, checked against CLASS-ID and SPECIES).
    pub breed: String,
}

/// Breed encoded in an official file stem: everything before the last `_`.
pub fn breed_of_stem(stem: &str) -> Option<&'static str> {
    let (b, n) = stem.rsplit_once('_')?;
    if n.is_empty() {
        return None;
    }
    canonical_breed(b)
}

/// Parses `annotations/list.txt`. Errors name the file, line and field.
pub fn read_list(path: &Path) -> Result<Vec<Entry>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read annotation list {}", path.display()))?;
    parse_list(&text, path)
}

pub fn parse_list(text: &str, path: &Path) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            bail!("{}: expected `Image CLASS-ID SPECIES BREED-ID`, found {} field(s): `{line}`", at(), f.len());
        }
        let num = |idx: usize, name: &str, max: u32| -> Result<u32> {
            let v: u32 = f[idx].parse().with_context(|| format!("{}: field {name} `{}` is not a number", at(), f[idx]))?;
            if v == 0 || v > max {
                bail!("{}: field {name} = {v} is out of range 1..={max}", at());
            }
            Ok(v)
        };
        let class_id = num(1, "CLASS-ID", 37)?;
        let species = num(2, "SPECIES", 2)? as u8;
        num(3, "BREED-ID", 25)?;
        let stem = f[0].to_string();
        let Some(breed) = breed_of_stem(&stem) else {
            bail!("{}: image name `{stem}` does not start with a known Oxford-IIIT Pet breed", at());
        };
        if is_cat(breed) != (species == 1) {
            bail!("{}: SPECIES {species} contradicts breed `{breed}` of `{stem}`", at());
        }
        let want = crate::labels::all_breeds().iter().position(|b| *b == breed).unwrap_or(0) as u32 + 1;
        if class_id != want {
            bail!("{}: CLASS-ID {class_id} contradicts breed `{breed}` (official id {want})", at());
        }
        out.push(Entry { stem, class_id, species, breed: breed.to_string() });
    }
    Ok(out)
}

/// Serialises entries back to the official list format.
pub fn format_list(entries: &[Entry]) -> String {
    let mut s = String::from("# Image CLASS-ID SPECIES BREED-ID\n");
    for e in entries {
        let breed_id = if e.species == 1 {
            crate::labels::CAT_BREEDS.iter().position(|b| *b == e.breed).unwrap_or(0) + 1
        } else {
            crate::labels::DOG_BREEDS.iter().position(|b| *b == e.breed).unwrap_or(0) + 1
        };
        s.push_str(&format!("{} {} {} {}\n", e.stem, e.class_id, e.species, breed_id));
    }
    s
}

/// Builds an entry for a breed and stem (used by imports of class folders and by fixtures).
pub fn entry_for(stem: &str, breed: &'static str) -> Entry {
    let class_id = crate::labels::all_breeds().iter().position(|b| *b == breed).unwrap_or(0) as u32 + 1;
    Entry { stem: stem.to_string(), class_id, species: if is_cat(breed) { 1 } else { 2 }, breed: breed.to_string() }
}

/// An official-layout dataset folder.
#[derive(Debug)]
pub struct Dataset {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
    /// Files in `images/` by stem.
    pub files: BTreeMap<String, PathBuf>,
}

impl Dataset {
    pub fn open(root: &Path) -> Result<Dataset> {
        if !root.is_dir() {
            bail!("dataset folder {} does not exist", root.display());
        }
        let list = root.join(LIST);
        if !list.is_file() {
            bail!(
                "missing annotations: {} not found (expected the official layout: images/ + annotations/list.txt; `tinycats data import` creates it)",
                list.display()
            );
        }
        let entries = read_list(&list)?;
        let files = image_files(root)?;
        Ok(Dataset { root: root.to_path_buf(), entries, files })
    }

    /// Entries whose image file is present, with its path.
    pub fn present(&self) -> Vec<(&Entry, &PathBuf)> {
        self.entries.iter().filter_map(|e| self.files.get(&e.stem).map(|p| (e, p))).collect()
    }

    /// Annotated stems without an image file.
    pub fn missing(&self) -> Vec<&str> {
        self.entries.iter().filter(|e| !self.files.contains_key(&e.stem)).map(|e| e.stem.as_str()).collect()
    }
}

/// Every regular file in `root/images`, keyed by stem (sorted, so runs are reproducible).
/// The official archive also holds a few `.mat` files there; they are listed too so verify can report them.
pub fn image_files(root: &Path) -> Result<BTreeMap<String, PathBuf>> {
    let dir = root.join(IMAGES);
    let rd = std::fs::read_dir(&dir).with_context(|| format!("cannot list images folder {}", dir.display()))?;
    let mut out = BTreeMap::new();
    for ent in rd {
        let ent = ent.with_context(|| format!("cannot list {}", dir.display()))?;
        let p = ent.path();
        if !p.is_file() {
            continue;
        }
        let Some(stem) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else { continue };
        if stem.starts_with('.') {
            continue;
        }
        // Two files with one stem (x.jpg, x.png): keep the first by name, verify reports the other.
        out.entry(stem).or_insert(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_official_lines_and_names_bad_fields() {
        let p = Path::new("list.txt");
        let ok = parse_list("# c\nAbyssinian_1 1 1 1\nbeagle_3 5 2 4\n\n", p).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[1].breed, "beagle");
        assert_eq!(ok[1].class_id, 5);
        let e = parse_list("Abyssinian_1 1 3 1\n", p).unwrap_err().to_string();
        assert!(e.contains("list.txt:1") && e.contains("SPECIES"), "{e}");
        let e = parse_list("Abyssinian_1 x 1 1\n", p).unwrap_err().to_string();
        assert!(e.contains("CLASS-ID"), "{e}");
        let e = parse_list("Lion_1 1 1 1\n", p).unwrap_err().to_string();
        assert!(e.contains("Lion_1"), "{e}");
        let e = parse_list("Bengal_1 1 1 2\n", p).unwrap_err().to_string();
        assert!(e.contains("CLASS-ID 1 contradicts"), "{e}");
        assert_eq!(parse_list(&format_list(&ok), p).unwrap(), ok);
    }
}
