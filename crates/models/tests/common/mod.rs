//! Helpers shared by the tests that check our burn-flex kernels against loops.
// Each test crate includes this module and uses a subset of it.
#![allow(dead_code)]
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

/// A 2-thread pool, so the split paths run even on a 1-core machine.
pub fn pool() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new().num_threads(2).build().expect("rayon pool")
}
