//! `tinycats data fetch`: downloads the Oxford-IIIT Pet archives, resumably, and verifies
//! each one by SHA-256 before anything downstream is allowed to unpack it.
//!
//! On-disk protocol for one file `NAME` in `dir`:
//! - `dir/NAME.part` holds the bytes received so far; a rerun resumes it with an HTTP Range request.
//! - `dir/NAME` only ever appears through an atomic rename of a `.part` whose hash matched,
//!   so a file with the final name is always complete and verified.

use crate::hashing::sha256_file;
use anyhow::{anyhow, bail, Context, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Base URL of the official Oxford-IIIT Pet release.
const OFFICIAL_BASE: &str = "https://www.robots.ox.ac.uk/~vgg/data/pets/data/";

/// One file to download.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct RemoteFile {
    pub name: String,
    pub url: String,
    pub size: Option<u64>,
    pub sha256: String,
}

/// The set of files `fetch` downloads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Manifest {
    pub files: Vec<RemoteFile>,
}

impl Manifest {
    /// The official archives.
    pub fn official() -> Manifest {
        let file = |name: &str, size: u64, sha256: &str| RemoteFile {
            name: name.to_string(),
            url: format!("{OFFICIAL_BASE}{name}"),
            size: Some(size),
            sha256: sha256.to_string(),
        };
        Manifest {
            files: vec![
                file(
                    "images.tar.gz",
                    791_918_971,
                    "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d",
                ),
                file(
                    "annotations.tar.gz",
                    19_173_078,
                    "52425fb6de5c424942b7626b428656fcbd798db970a937df61750c0f1d358e91",
                ),
            ],
        }
    }

    /// Same files, fetched from `base` instead (base + "/" + name; trailing slash on base tolerated).
    pub fn with_mirror(self, base: &str) -> Manifest {
        let base = base.trim_end_matches('/');
        Manifest {
            files: self
                .files
                .into_iter()
                .map(|f| RemoteFile { url: format!("{base}/{}", f.name), ..f })
                .collect(),
        }
    }

    /// Reads a JSON manifest file {"files":[{"name","url","size","sha256"}]}; errors name the file
    /// and the bad field (e.g. sha256 not 64 hex chars, empty name, name containing '/' or "..").
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = fs::read_to_string(path)
            .with_context(|| format!("cannot read manifest {}", path.display()))?;
        let mut manifest: Manifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "manifest {} is not valid JSON of the form {{\"files\":[{{\"name\",\"url\",\"size\",\"sha256\"}}]}}",
                path.display()
            )
        })?;
        if manifest.files.is_empty() {
            bail!("manifest {}: \"files\" is empty; nothing to fetch", path.display());
        }
        let mut seen = std::collections::HashSet::new();
        for (i, f) in manifest.files.iter_mut().enumerate() {
            let at = || format!("manifest {}: files[{i}]", path.display());
            validate_name(&f.name).map_err(|e| anyhow!("{}: field \"name\": {e}", at()))?;
            validate_url(&f.url)
                .map_err(|e| anyhow!("{} ({}): field \"url\": {e}", at(), f.name))?;
            validate_sha256(&f.sha256)
                .map_err(|e| anyhow!("{} ({}): field \"sha256\": {e}", at(), f.name))?;
            // Two entries with the same name would overwrite each other's download.
            if !seen.insert(f.name.clone()) {
                bail!("{}: field \"name\": {:?} is listed twice", at(), f.name);
            }
            // Hashes are compared as strings; normalise case so "ABC..." from a checksum tool matches.
            f.sha256 = f.sha256.to_ascii_lowercase();
        }
        Ok(manifest)
    }
}

/// Rejects names that could escape the destination folder or collide with our temp files.
fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.contains('/') || name.contains('\\') || name.contains("..") || name.contains('\0') {
        return Err(format!("{name:?} must be a plain file name (no '/', '\\', \"..\" or NUL)"));
    }
    if name.ends_with(".part") {
        return Err(format!("{name:?} must not end in .part (reserved for partial downloads)"));
    }
    Ok(())
}

fn validate_url(url: &str) -> std::result::Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} must start with http:// or https://"))
    }
}

fn validate_sha256(sha: &str) -> std::result::Result<(), String> {
    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!("{sha:?} must be 64 hex characters"))
    }
}

/// Progress callback: (file name, bytes so far, total if known).
pub type Progress<'a> = &'a mut dyn FnMut(&str, u64, Option<u64>);

/// Downloads one file into `dir` (created if missing) and returns the final path `dir/<name>`.
pub fn download_verified(file: &RemoteFile, dir: &Path, progress: Progress) -> Result<PathBuf> {
    // RemoteFile can be built by hand, not only via Manifest::load, so re-check what keeps us safe.
    validate_name(&file.name).map_err(|e| anyhow!("file name {e}"))?;
    validate_sha256(&file.sha256).map_err(|e| anyhow!("{}: expected sha256 {e}", file.name))?;
    let expected = file.sha256.to_ascii_lowercase();
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let final_path = dir.join(&file.name);
    let part_path = dir.join(format!("{}.part", file.name));

    // An existing final file is the user's: verify it, never overwrite or delete it.
    if final_path.exists() {
        let actual = sha256_file(&final_path)?;
        if actual != expected {
            bail!(
                "{} already exists but its sha256 does not match: expected {expected}, actual {actual}; \
                 move it away to download it again",
                final_path.display()
            );
        }
        let len = fs::metadata(&final_path).map(|m| m.len()).unwrap_or(0);
        progress(&file.name, len, Some(len));
        return Ok(final_path);
    }

    transfer(file, &part_path, progress)?;

    let len = fs::metadata(&part_path)
        .with_context(|| format!("cannot stat {}", part_path.display()))?
        .len();
    if let Some(size) = file.size {
        if len != size {
            // Too long can never become right; too short may still be resumed by a rerun.
            if len > size {
                let _ = fs::remove_file(&part_path);
            }
            bail!(
                "{}: received {len} bytes but expected {size}; {}",
                file.name,
                if len > size { "deleted the partial download" } else { "re-running resumes the download" }
            );
        }
    }
    let actual = sha256_file(&part_path)?;
    if actual != expected {
        // Never leave behind a full-length file with the wrong content: a rerun would trust it.
        let _ = fs::remove_file(&part_path);
        bail!(
            "{}: sha256 mismatch after download from {}: expected {expected}, actual {actual}; \
             deleted the download",
            file.name,
            file.url
        );
    }
    fs::rename(&part_path, &final_path).with_context(|| {
        format!("cannot rename {} to {}", part_path.display(), final_path.display())
    })?;
    sync_dir(dir);
    progress(&file.name, len, Some(len));
    Ok(final_path)
}

/// Downloads every file of the manifest into `dir`; returns the final paths in manifest order.
pub fn fetch_all(manifest: &Manifest, dir: &Path, progress: Progress) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(manifest.files.len());
    for file in &manifest.files {
        paths.push(download_verified(file, dir, &mut *progress)?);
    }
    Ok(paths)
}

/// Makes the rename durable on filesystems that need the directory itself fsynced (best effort).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

fn agent() -> ureq::Agent {
    // A stalled mirror must turn into an error (and a resumable .part), not a hang.
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(30))
        .timeout_read(Duration::from_secs(60))
        .timeout_write(Duration::from_secs(60))
        .build()
}

/// Brings `part` to the end of the remote body, resuming from its current length.
/// Returns once the server says the body is complete; the caller checks size and hash.
fn transfer(file: &RemoteFile, part: &Path, progress: Progress) -> Result<()> {
    let agent = agent();
    // One restart from zero is allowed (416 or a bad Content-Range); more means the server is broken.
    let mut restarted = false;
    loop {
        let mut have = match fs::metadata(part) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("cannot stat {}", part.display())),
        };
        if let Some(size) = file.size {
            if have == size {
                // Everything already arrived in an earlier run; only verification is left.
                return Ok(());
            }
            if have > size {
                // Cannot be a prefix of the right file; start over.
                fs::remove_file(part)
                    .with_context(|| format!("cannot remove {}", part.display()))?;
                have = 0;
            }
        }

        // Identity encoding: we hash the bytes on the wire, and byte ranges refer to them.
        let mut req = agent.get(&file.url).set("Accept-Encoding", "identity");
        if have > 0 {
            req = req.set("Range", &format!("bytes={have}-"));
        }
        let resp = match req.call() {
            Ok(r) => r,
            Err(ureq::Error::Status(416, _)) if have > 0 && !restarted => {
                // The server cannot serve our offset (e.g. the file changed): restart from zero once.
                fs::remove_file(part)
                    .with_context(|| format!("cannot remove {}", part.display()))?;
                restarted = true;
                continue;
            }
            Err(ureq::Error::Status(code, r)) => {
                bail!("{}: GET {} failed: HTTP {code} {}", file.name, file.url, r.status_text())
            }
            Err(ureq::Error::Transport(t)) => {
                bail!("{}: cannot download {}: {t}", file.name, file.url)
            }
        };

        let offset = match resp.status() {
            206 => {
                let start = resp.header("Content-Range").and_then(content_range_start);
                if start != Some(have) {
                    if restarted {
                        bail!(
                            "{}: {} answered 206 with Content-Range {:?}, expected start {have}",
                            file.name,
                            file.url,
                            resp.header("Content-Range")
                        );
                    }
                    // Appending at the wrong offset would corrupt the file; start over instead.
                    drop(resp);
                    let _ = fs::remove_file(part);
                    restarted = true;
                    continue;
                }
                have
            }
            200 => 0, // full body: the server ignored or did not get a Range
            code => bail!(
                "{}: GET {} answered unexpected HTTP {code} {}",
                file.name,
                file.url,
                resp.status_text()
            ),
        };
        let total = file.size.or_else(|| {
            resp.header("Content-Length")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|n| n + offset)
        });

        let mut out = if offset > 0 {
            OpenOptions::new().append(true).open(part)
        } else {
            File::create(part) // truncates any stale partial download
        }
        .with_context(|| format!("cannot open {}", part.display()))?;

        let mut reader = resp.into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = offset;
        progress(&file.name, got, total);
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Keep what arrived so that a rerun resumes instead of starting over.
                    let _ = out.flush();
                    let _ = out.sync_all();
                    bail!(
                        "{}: transfer from {} interrupted after {got}{} bytes ({e}); \
                         the partial download is kept in {} and re-running resumes it",
                        file.name,
                        file.url,
                        total.map(|t| format!(" of {t}")).unwrap_or_default(),
                        part.display()
                    );
                }
            };
            if let Some(size) = file.size {
                if got + n as u64 > size {
                    drop(out);
                    let _ = fs::remove_file(part);
                    bail!(
                        "{}: {} sent more than the expected {size} bytes; deleted the download",
                        file.name,
                        file.url
                    );
                }
            }
            out.write_all(&buf[..n])
                .with_context(|| format!("cannot write {}", part.display()))?;
            got += n as u64;
            progress(&file.name, got, total);
        }
        out.sync_all().with_context(|| format!("cannot fsync {}", part.display()))?;
        return Ok(());
    }
}

/// Start offset of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(v: &str) -> Option<u64> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "67195c5e1c01f1ab5f9b6a5d22b8c27a580d896ece458917e61d459337fa318d";

    fn write_manifest(json: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        fs::write(&path, json).unwrap();
        (dir, path)
    }

    fn load_err(json: &str) -> String {
        let (_dir, path) = write_manifest(json);
        let err = Manifest::load(&path).expect_err("manifest should be rejected");
        let msg = format!("{err:#}");
        assert!(msg.contains("manifest.json"), "error should name the file: {msg}");
        msg
    }

    #[test]
    fn official_manifest_is_valid() {
        let m = Manifest::official();
        assert_eq!(m.files.len(), 2);
        for f in &m.files {
            assert!(validate_name(&f.name).is_ok());
            assert!(validate_sha256(&f.sha256).is_ok());
            assert_eq!(f.url, format!("{OFFICIAL_BASE}{}", f.name));
        }
        assert_eq!(m.files[0].size, Some(791_918_971));
        assert_eq!(m.files[1].name, "annotations.tar.gz");
    }

    #[test]
    fn with_mirror_rewrites_urls_only() {
        let official = Manifest::official();
        for base in ["http://mirror.example/pets", "http://mirror.example/pets/", "http://mirror.example/pets//"] {
            let m = official.clone().with_mirror(base);
            assert_eq!(m.files.len(), official.files.len());
            for (a, b) in m.files.iter().zip(&official.files) {
                assert_eq!(a.url, format!("http://mirror.example/pets/{}", b.name));
                assert_eq!((&a.name, a.size, &a.sha256), (&b.name, b.size, &b.sha256));
            }
        }
    }

    #[test]
    fn load_accepts_valid_manifest_and_lowercases_sha() {
        let (_d, path) = write_manifest(&format!(
            r#"{{"files":[{{"name":"a.tar.gz","url":"http://x/a.tar.gz","size":3,"sha256":"{}"}},
                          {{"name":"b.bin","url":"https://x/b.bin","sha256":"{SHA}"}}]}}"#,
            SHA.to_uppercase()
        ));
        let m = Manifest::load(&path).unwrap();
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].sha256, SHA);
        assert_eq!(m.files[0].size, Some(3));
        assert_eq!(m.files[1].size, None);
    }

    #[test]
    fn load_rejects_bad_sha256() {
        let msg = load_err(r#"{"files":[{"name":"a","url":"http://x/a","size":1,"sha256":"abc"}]}"#);
        assert!(msg.contains("sha256") && msg.contains("64 hex"), "{msg}");
        let bad = format!("{}zz", &SHA[..62]);
        let msg = load_err(&format!(r#"{{"files":[{{"name":"a","url":"http://x/a","sha256":"{bad}"}}]}}"#));
        assert!(msg.contains("sha256"), "{msg}");
    }

    #[test]
    fn load_rejects_bad_names() {
        for name in ["", "sub/a", "..", "a..b", "..\\a", "a.part"] {
            let msg = load_err(&format!(
                r#"{{"files":[{{"name":{},"url":"http://x/a","sha256":"{SHA}"}}]}}"#,
                serde_json::to_string(name).unwrap()
            ));
            assert!(msg.contains("\"name\""), "{name:?}: {msg}");
        }
    }

    #[test]
    fn load_rejects_bad_url_duplicates_empty_and_malformed() {
        let msg = load_err(&format!(r#"{{"files":[{{"name":"a","url":"ftp://x/a","sha256":"{SHA}"}}]}}"#));
        assert!(msg.contains("\"url\""), "{msg}");
        let one = format!(r#"{{"name":"a","url":"http://x/a","sha256":"{SHA}"}}"#);
        let msg = load_err(&format!(r#"{{"files":[{one},{one}]}}"#));
        assert!(msg.contains("twice"), "{msg}");
        let msg = load_err(r#"{"files":[]}"#);
        assert!(msg.contains("empty"), "{msg}");
        let msg = load_err(r#"{"files":[{"name":"a"}]}"#);
        assert!(msg.contains("not valid JSON") || msg.contains("missing"), "{msg}");
        let msg = load_err("not json");
        assert!(msg.contains("JSON"), "{msg}");
    }

    #[test]
    fn load_names_missing_file() {
        let err = Manifest::load(Path::new("/nonexistent/m.json")).unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/m.json"));
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes 0-9/*"), Some(0));
        assert_eq!(content_range_start("items 1-2/3"), None);
        assert_eq!(content_range_start("bytes */200"), None);
    }
}
