//! Helpers shared by the training-engine test files.

use std::path::PathBuf;

/// The EfficientNet-Lite0 weights scripts/setup.sh fetches; tests that need them skip without.
pub fn lite0_weights() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/weights/efficientnet-lite0.safetensors");
    p.is_file().then_some(p)
}
