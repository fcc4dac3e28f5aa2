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
