//! Named f32 tensors read from / written to safetensors, with strict name and shape checks.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Tensors by name. Loaders `take` what they need and then call `finish`, so both missing and
/// unexpected names are reported.
#[derive(Debug, Default)]
pub struct TensorMap {
    pub source: String,
    pub map: BTreeMap<String, NamedTensor>,
}

impl TensorMap {
    pub fn read(path: &Path) -> Result<TensorMap> {
        let bytes = std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    pub fn from_bytes(bytes: &[u8], source: &str) -> Result<TensorMap> {
        let st = safetensors::SafeTensors::deserialize(bytes).with_context(|| format!("{source}: not a safetensors file"))?;
        let mut map = BTreeMap::new();
        for (name, view) in st.tensors() {
            let data: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
                d => bail!("{source}: tensor `{name}` has dtype {d:?}; only F32 is supported"),
            };
            map.insert(name.to_string(), NamedTensor { shape: view.shape().to_vec(), data });
        }
        Ok(TensorMap { source: source.to_string(), map })
    }

    /// Removes and returns tensor `name`, checking its shape.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<NamedTensor> {
        let Some(t) = self.map.remove(name) else {
            bail!("{}: missing tensor `{name}` (expected shape {shape:?})", self.source);
        };
        if t.shape != shape {
            bail!("{}: tensor `{name}` has shape {:?}, expected {shape:?}", self.source, t.shape);
        }
        Ok(t)
    }

    /// Errors if tensors were left over (a different architecture or a renamed layer).
    pub fn finish(self) -> Result<()> {
        if !self.map.is_empty() {
            let names: Vec<&String> = self.map.keys().take(8).collect();
            bail!("{}: {} unexpected tensor(s), e.g. {names:?}", self.source, self.map.len());
        }
        Ok(())
    }

    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) {
        self.map.insert(name.into(), NamedTensor { shape, data });
    }

    /// Serialises to safetensors bytes (with optional string metadata).
    pub fn to_bytes(&self, metadata: Option<std::collections::HashMap<String, String>>) -> Result<Vec<u8>> {
        let raw: Vec<(String, Vec<u8>, Vec<usize>)> = self
            .map
            .iter()
            .map(|(n, t)| (n.clone(), t.data.iter().flat_map(|v| v.to_le_bytes()).collect(), t.shape.clone()))
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = raw
            .iter()
            .map(|(n, b, s)| Ok((n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)?)))
            .collect::<Result<_, safetensors::SafeTensorError>>()?;
        Ok(safetensors::serialize(views, &metadata)?)
    }
}

/// Largest file a checkpoint writes (the device tool returns files up to 16 MiB; small files are
/// also kinder to git and HTTP).
pub const SHARD_LIMIT: usize = 16 * 1024 * 1024;

/// `<path>.index.json`: the index that lists a sharded file's parts.
pub fn index_path(path: &Path) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".index.json");
    s.into()
}

/// Writes a safetensors file, or — when it would exceed `limit` bytes — shards named
/// `<stem>-00001-of-0000N.safetensors` plus `<path>.index.json` (the Hugging Face layout:
/// `{"metadata": {...}, "weight_map": {tensor: shard}}`). Returns the files written.
pub fn write_sharded(path: &Path, bytes: &[u8], limit: usize, write: &dyn Fn(&Path, &[u8]) -> Result<()>) -> Result<Vec<std::path::PathBuf>> {
    if bytes.len() <= limit {
        write(path, bytes)?;
        let _ = std::fs::remove_file(index_path(path));
        return Ok(vec![path.to_path_buf()]);
    }
    let st = safetensors::SafeTensors::deserialize(bytes).context("not a safetensors buffer")?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes).context("bad safetensors header")?;
    let metadata = meta.metadata().clone();
    let mut names: Vec<String> = st.names().into_iter().cloned().collect();
    names.sort();
    // Greedy packing in name order; header overhead is small next to 16 MiB.
    let mut groups: Vec<Vec<String>> = vec![vec![]];
    let mut size = 0usize;
    for n in names {
        let len = st.tensor(&n)?.data().len();
        if len + 4096 > limit {
            bail!("tensor `{n}` alone is {len} bytes, over the {limit}-byte shard limit");
        }
        if size + len + 4096 > limit && !groups.last().is_some_and(|g| g.is_empty()) {
            groups.push(vec![]);
            size = 0;
        }
        size += len;
        groups.last_mut().expect("non-empty").push(n);
    }
    let stem = path.file_stem().map(|s| s.to_string_lossy().to_string()).unwrap_or_else(|| "model".into());
    let dir = path.parent().unwrap_or(Path::new("."));
    let total = groups.len();
    let mut files = Vec::new();
    let mut weight_map = BTreeMap::new();
    for (i, g) in groups.iter().enumerate() {
        let name = format!("{stem}-{:05}-of-{total:05}.safetensors", i + 1);
        let views: Vec<(String, safetensors::tensor::TensorView)> = g.iter().map(|n| Ok((n.clone(), st.tensor(n)?))).collect::<Result<_, safetensors::SafeTensorError>>()?;
        let shard = safetensors::serialize(views, &metadata)?;
        write(&dir.join(&name), &shard)?;
        for n in g {
            weight_map.insert(n.clone(), name.clone());
        }
        files.push(dir.join(name));
    }
    let index = serde_json::json!({"metadata": metadata, "weight_map": weight_map});
    write(&index_path(path), &serde_json::to_vec_pretty(&index)?)?;
    let _ = std::fs::remove_file(path); // a stale unsharded file must not shadow the shards
    files.push(index_path(path));
    Ok(files)
}

/// Reads what `write_sharded` wrote (one file, or the index and its shards) back into one buffer.
pub fn read_sharded(path: &Path) -> Result<Vec<u8>> {
    // The index itself (`X.safetensors.index.json`) stands for the sharded `X.safetensors`.
    if let Some(base) = path.to_str().and_then(|s| s.strip_suffix(".index.json")).filter(|b| b.ends_with(".safetensors")) {
        return read_sharded(Path::new(base));
    }
    if path.is_file() {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let ip = index_path(path);
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(&ip).with_context(|| format!("neither {} nor {} exists", path.display(), ip.display()))?)
        .with_context(|| format!("{} is not a valid shard index", ip.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let map = index["weight_map"].as_object().with_context(|| format!("{}: no `weight_map`", ip.display()))?;
    let mut shards: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
    shards.sort();
    shards.dedup();
    let mut raw: Vec<(String, Vec<u8>, Vec<usize>, safetensors::Dtype)> = Vec::new();
    for s in shards {
        if s.contains('/') || s.contains("..") {
            bail!("{}: shard name `{s}` is not a plain file name", ip.display());
        }
        let bytes = std::fs::read(dir.join(s)).with_context(|| format!("missing shard {}", dir.join(s).display()))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).with_context(|| format!("{s}: not a safetensors file"))?;
        for (n, v) in st.tensors() {
            raw.push((n, v.data().to_vec(), v.shape().to_vec(), v.dtype()));
        }
    }
    if raw.len() != map.len() {
        bail!("{}: index lists {} tensors, shards hold {}", ip.display(), map.len(), raw.len());
    }
    let metadata: Option<std::collections::HashMap<String, String>> = serde_json::from_value(index["metadata"].clone()).ok();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(n, b, s, d)| Ok((n.clone(), safetensors::tensor::TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_, safetensors::SafeTensorError>>()?;
    Ok(safetensors::serialize(views, &metadata)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_stay_under_the_limit_and_round_trip() {
        let mut m = TensorMap::default();
        for i in 0..10 {
            m.insert(format!("layer{i}.weight"), vec![100, 10], (0..1000).map(|v| (v + i) as f32).collect());
        }
        let bytes = m.to_bytes(Some([("k".to_string(), "v".to_string())].into())).unwrap();
        let t = std::env::temp_dir().join(format!("tc-shard-{}", std::process::id()));
        std::fs::create_dir_all(&t).unwrap();
        let path = t.join("model.safetensors");
        let write = |p: &Path, b: &[u8]| -> Result<()> { Ok(std::fs::write(p, b)?) };
        let files = write_sharded(&path, &bytes, 12_000, &write).unwrap();
        assert!(files.len() > 3, "{files:?}");
        for f in &files[..files.len() - 1] {
            assert!(std::fs::metadata(f).unwrap().len() <= 12_000, "{}", f.display());
        }
        let back = TensorMap::from_bytes(&read_sharded(&path).unwrap(), "shards").unwrap();
        assert_eq!(back.map, m.map);
        // Naming the index file reads the same weights.
        assert_eq!(read_sharded(&index_path(&path)).unwrap(), read_sharded(&path).unwrap());
        // Small enough → one plain file, and the stale index is gone.
        let one = write_sharded(&path, &bytes, 1 << 20, &write).unwrap();
        assert_eq!(one, vec![path.clone()]);
        assert!(!index_path(&path).exists());
        assert_eq!(read_sharded(&path).unwrap(), bytes);
        // A missing shard is named.
        write_sharded(&path, &bytes, 12_000, &write).unwrap();
        std::fs::remove_file(t.join("model-00002-of-00010.safetensors")).ok();
        let e = format!("{:#}", read_sharded(&path).unwrap_err());
        assert!(e.contains("missing shard"), "{e}");
        std::fs::remove_dir_all(&t).ok();
    }
}

/// Any byte blob (optimizer / resume records) stored as parts of at most `limit` bytes:
/// `<path>` itself when it fits, else `<path>.part-K-of-N` files. Parts are written first and the
/// previous single file (if any) removed last, so a crash leaves either old or new complete data.
pub fn write_chunked(path: &Path, bytes: &[u8], limit: usize, write: &dyn Fn(&Path, &[u8]) -> Result<()>) -> Result<()> {
    let parts: Vec<&[u8]> = bytes.chunks(limit.max(1)).collect();
    if parts.len() <= 1 {
        return write(path, bytes);
    }
    let n = parts.len();
    for (k, p) in parts.iter().enumerate() {
        write(&chunk_path(path, k + 1, n), p)?;
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

fn chunk_path(path: &Path, k: usize, n: usize) -> std::path::PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".part-{k}-of-{n}"));
    std::path::PathBuf::from(s)
}

/// Reads what `write_chunked` wrote (single file or all of its parts, in order).
pub fn read_chunked(path: &Path) -> Result<Vec<u8>> {
    if path.is_file() {
        return std::fs::read(path).with_context(|| format!("cannot read {}", path.display()));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().map(|s| s.to_string_lossy().to_string()).unwrap_or_default();
    let prefix = format!("{name}.part-1-of-");
    let n: usize = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix(&prefix)?.parse().ok())
        .max()
        .with_context(|| format!("{} is missing (no file and no parts)", path.display()))?;
    let mut out = Vec::new();
    for k in 1..=n {
        let p = chunk_path(path, k, n);
        out.extend(std::fs::read(&p).with_context(|| format!("checkpoint part {} is missing", p.display()))?);
    }
    Ok(out)
}

/// Removes a blob written by `write_chunked` (the file or its parts).
pub fn remove_chunked(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|s| s.to_str())) {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.file_name().to_str().is_some_and(|f| f.starts_with(&format!("{name}.part-"))) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;

    #[test]
    fn chunked_blobs_round_trip_and_stay_under_the_limit() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("resume.optim.mpk");
        let w = |p: &Path, b: &[u8]| -> Result<()> { Ok(std::fs::write(p, b)?) };
        let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        write_chunked(&p, &big, 4096, &w).unwrap();
        assert!(!p.exists());
        let parts: Vec<_> = std::fs::read_dir(d.path()).unwrap().flatten().collect();
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|e| e.metadata().unwrap().len() <= 4096));
        assert_eq!(read_chunked(&p).unwrap(), big);
        std::fs::remove_file(d.path().join("resume.optim.mpk.part-2-of-3")).unwrap();
        let e = read_chunked(&p).unwrap_err().to_string();
        assert!(e.contains("part-2-of-3"), "{e}");
        remove_chunked(&p);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0);
        write_chunked(&p, b"small", 4096, &w).unwrap();
        assert_eq!(read_chunked(&p).unwrap(), b"small");
    }
}
