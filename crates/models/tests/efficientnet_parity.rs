//! The burn EfficientNet-Lite0 reproduces an independent numpy forward pass (scripts/efficientnet_weights.py
//! --reference) on a real photo: same input tensor, pooled features within 1e-3, same top-5 ImageNet classes.

use burn::prelude::*;
use std::path::PathBuf;
use tinycats_models::efficientnet::EfficientNetLite0;
use tinycats_models::weights::TensorMap;
use tinycats_models::Cpu;

fn weights() -> Option<PathBuf> {
    let p = std::env::var_os("TINYCATS_WEIGHTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/weights/efficientnet-lite0.safetensors"));
    p.is_file().then_some(p)
}

#[test]
fn matches_numpy_reference_on_bengal_1() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED matches_numpy_reference_on_bengal_1: run scripts/setup.sh to fetch the EfficientNet-Lite0 weights");
        return;
    };
    let dev = Default::default();
    let model = EfficientNetLite0::<Cpu>::from_pretrained(TensorMap::read(&w).unwrap(), &dev).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let raw = std::fs::read(dir.join("bengal1_input_224.f32")).unwrap();
    let input: Vec<f32> = raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let x = Tensor::<Cpu, 4>::from_data(TensorData::new(input, [1, 3, 224, 224]), &dev);
    let reference: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("efficientnet_ref_bengal1.json")).unwrap()).unwrap();

    let pooled = model.pooled(x.clone());
    let got: Vec<f32> = pooled.clone().into_data().to_vec().unwrap();
    let want: Vec<f32> = reference["pooled"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
    assert_eq!(got.len(), 1280);
    let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max_diff < 1e-3, "pooled features differ by {max_diff}");

    // Folding BatchNorm into the convolutions (the fast inference form) keeps the numbers.
    let folded: Vec<f32> = model.clone().fold_bn().pooled(x).into_data().to_vec().unwrap();
    let fold_diff = got.iter().zip(&folded).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(fold_diff < 1e-3, "folded BN differs by {fold_diff}");

    let logits: Vec<f32> = model.fc.forward(pooled).into_data().to_vec().unwrap();
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|a, b| logits[*b].total_cmp(&logits[*a]));
    let want_top: Vec<usize> = reference["top5"].as_array().unwrap().iter().map(|p| p[0].as_u64().unwrap() as usize).collect();
    assert_eq!(&idx[..5], &want_top[..], "top-5 ImageNet classes");
    assert!((logits[285] - 9.354064).abs() < 1e-2, "Egyptian cat logit {}", logits[285]);
}

#[test]
fn loader_rejects_wrong_shapes_and_leftovers() {
    let Some(w) = weights() else {
        eprintln!("SKIPPED loader_rejects_wrong_shapes_and_leftovers: weights not fetched");
        return;
    };
    let dev = Default::default();
    let mut m = TensorMap::read(&w).unwrap();
    m.insert("_blocks.99.extra", vec![1], vec![0.0]);
    let e = EfficientNetLite0::<Cpu>::from_pretrained(m, &dev).unwrap_err().to_string();
    assert!(e.contains("unexpected tensor") && e.contains("_blocks.99.extra"), "{e}");
    let mut m = TensorMap::read(&w).unwrap();
    m.insert("_conv_head.weight", vec![1280, 320], vec![0.0; 1280 * 320]);
    let e = EfficientNetLite0::<Cpu>::from_pretrained(m, &dev).unwrap_err().to_string();
    assert!(e.contains("_conv_head.weight") && e.contains("expected [1280, 320, 1, 1]"), "{e}");
    let mut m = TensorMap::read(&w).unwrap();
    m.map.remove("_bn1.running_var");
    let e = EfficientNetLite0::<Cpu>::from_pretrained(m, &dev).unwrap_err().to_string();
    assert!(e.contains("missing tensor `_bn1.running_var`"), "{e}");
}
