//! A module ↔ safetensors bytes as tinycats writes them: serialising with JSON metadata entries
//! that describe the network, reading such an entry back, and a strict load (every tensor
//! present, none left over). Shared by the classifier, generator and autoencoder, so each names
//! its file in errors the same way.

use anyhow::{anyhow, bail, Context, Result};
use burn::prelude::*;
use burn_store::{ModuleSnapshot, SafetensorsStore};
use serde::de::DeserializeOwned;
use std::path::Path;

/// `model`'s tensors as safetensors bytes with the metadata entries `meta`; `what` names the
/// kind of network in errors.
pub fn to_bytes<B: Backend, M: ModuleSnapshot<B>>(model: &M, meta: &[(&str, String)], what: &str) -> Result<Vec<u8>> {
    let mut store = SafetensorsStore::from_bytes(None);
    for (k, v) in meta {
        store = store.metadata(*k, v.clone());
    }
    model.save_into(&mut store).map_err(|e| anyhow!("cannot serialise {what}: {e:?}"))?;
    store.get_bytes().map_err(|e| anyhow!("cannot serialise {what}: {e:?}"))
}

/// The JSON metadata entry `key` of a safetensors file; `what` names the kind of file in errors
/// ("generator", "autoencoder").
pub fn read_meta<T: DeserializeOwned>(bytes: &[u8], path: &Path, key: &str, what: &str) -> Result<T> {
    let (_, st) = safetensors::SafeTensors::read_metadata(bytes).map_err(|e| anyhow!("{}: not a safetensors file ({e})", path.display()))?;
    let m = st.metadata().as_ref().and_then(|m| m.get(key)).ok_or_else(|| anyhow!("{}: not a tinycats {what} (no `{key}` metadata)", path.display()))?;
    serde_json::from_str(m).with_context(|| format!("{}: damaged {what} metadata", path.display()))
}

/// Loads `bytes` into `model`, refusing missing, unexpected or mismatched tensors: a file for
/// another network shape must fail by name rather than leave freshly initialised weights behind.
pub fn load_strict<B: Backend, M: ModuleSnapshot<B>>(model: &mut M, bytes: Vec<u8>, path: &Path, what: &str) -> Result<()> {
    let r = model.load_from(&mut SafetensorsStore::from_bytes(Some(bytes))).map_err(|e| anyhow!("{}: {e:?}", path.display()))?;
    if !r.errors.is_empty() || !r.missing.is_empty() || !r.unused.is_empty() {
        bail!("{}: weights do not match the {what} (missing {:?}, unexpected {:?}, errors {:?})", path.display(), r.missing, r.unused, r.errors);
    }
    Ok(())
}
