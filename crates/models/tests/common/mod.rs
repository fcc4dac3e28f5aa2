//! Helpers shared by the gradient tests that compare burn-flex with f64 loops.
use burn::prelude::*;
use tinycats_models::Cpu;

/// A tensor's values in logical (row-major) order.
pub fn flat<const D: usize>(t: Tensor<Cpu, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

/// The largest absolute difference, relative to the reference's largest entry.
pub fn max_rel_err(got: &[f32], want: &[f64]) -> f64 {
    assert_eq!(got.len(), want.len(), "sizes differ");
    let scale = want.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
    got.iter().zip(want).map(|(a, b)| (*a as f64 - b).abs() / scale).fold(0.0, f64::max)
}
