//! Training-mode batch norm over `[N, C, ...]` (tinycats patch).
//!
//! Why: spelled out in tensor ops, training batch norm is about five passes over the activation
//! forward (mean, centre, square, mean, scale and shift) and, through autodiff, about ten more
//! backward, each allocating. In the classifier's BN-training step this made batch norm cost
//! about as much as the convolutions. Here the statistics are one read of x, the output one
//! pass, and the backward one read of (x, grad) plus one pass for dx. Each (sample, channel)
//! plane stays in cache while it is worked on; planes are split across threads. Layouts or
//! dtypes these kernels do not cover take burn's generic formula.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use burn_backend::TensorMetadata;
use burn_backend::tensor::FloatTensor;
use burn_std::Shape;

use crate::Flex;
use crate::ops::conv_backward::f32_tensor;
use crate::ops::norm_backward::{contiguous_f32, sum_map};
use crate::ops::par;

/// (N, C, L) for `[N, C, ...]` with L the values per (sample, channel) plane; `None` if empty.
fn planes(shape: &Shape) -> Option<(usize, usize, usize)> {
    if shape.num_dims() < 2 {
        return None;
    }
    let (n, c) = (shape[0], shape[1]);
    let l = shape.num_elements() / (n * c).max(1);
    (n > 0 && c > 0 && l > 0).then_some((n, c, l))
}

/// A contiguous f32 vector of exactly `c` values, or `None`.
fn channel_vec(t: &FloatTensor<Flex>, c: usize) -> Option<&[f32]> {
    contiguous_f32(t).filter(|v| v.len() == c && t.shape().num_dims() == 1)
}

/// A new `[N, C, L]` buffer whose plane p is `f(p, out)`; planes are split across threads.
fn new_planes(c: usize, l: usize, len: usize, f: impl Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync) -> Vec<f32> {
    par::fill_new_units(len, l, |start, out: &mut [MaybeUninit<f32>]| {
        for (k, o) in out.chunks_exact_mut(l).enumerate() {
            let p = start / l + k;
            f(p, p % c, o);
        }
    })
}

/// Σ g·(x − m) with eight partial sums (see `norm_backward::dot8`).
#[inline]
fn dot_centered(g: &[f32], x: &[f32], m: f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let (cg, cx) = (g.chunks_exact(8), x.chunks_exact(8));
    let tail: f32 = cg.remainder().iter().zip(cx.remainder()).map(|(g, x)| g * (x - m)).sum();
    for (g, x) in cg.zip(cx) {
        for l in 0..8 {
            acc[l] += g[l] * (x[l] - m);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Per-channel mean and biased variance. Each plane gives its own mean and Σ(x − mean)² in
/// cache; planes are combined in f64 with Chan et al.'s pairwise formula, so a large mean does
/// not cancel the variance away as Σx² − (Σx)²/M would.
pub fn batch_norm_stats(tensor: FloatTensor<Flex>) -> (FloatTensor<Flex>, FloatTensor<Flex>) {
    let shape = tensor.shape();
    let (Some((n, c, l)), Some(x)) = (planes(&shape), contiguous_f32(&tensor)) else {
        return burn_backend::ops::batch_norm_stats_generic::<Flex>(tensor);
    };
    let inv_l = 1.0 / l as f32;
    let part = par::per_plane(n * c, l, |p| {
        let s = &x[p * l..(p + 1) * l];
        let m = sum_map(s, |v| v) * inv_l;
        (m, sum_map(s, |v| (v - m) * (v - m)))
    });
    let (mut mean, mut var) = (vec![0.0f32; c], vec![0.0f32; c]);
    for ch in 0..c {
        let plane = |i: usize| part[i * c + ch];
        let mu = (0..n).map(|i| plane(i).0 as f64).sum::<f64>() / n as f64;
        let m2: f64 = (0..n)
            .map(|i| {
                let (m, q) = plane(i);
                q as f64 + l as f64 * (m as f64 - mu) * (m as f64 - mu)
            })
            .sum();
        mean[ch] = mu as f32;
        var[ch] = (m2 / (n * l) as f64) as f32;
    }
    (f32_tensor(mean, &[c]), f32_tensor(var, &[c]))
}

/// `x·s + t` per channel with s = γ/sqrt(var + ε) and t = β − mean·s.
pub fn batch_norm_train(
    tensor: FloatTensor<Flex>,
    mean: FloatTensor<Flex>,
    var: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    beta: FloatTensor<Flex>,
    epsilon: f64,
) -> FloatTensor<Flex> {
    let shape = tensor.shape();
    let fused = planes(&shape).and_then(|(n, c, l)| {
        let x = contiguous_f32(&tensor)?;
        let (m, v) = (channel_vec(&mean, c)?, channel_vec(&var, c)?);
        let (g, b) = (channel_vec(&gamma, c)?, channel_vec(&beta, c)?);
        let scale: Vec<f32> = g.iter().zip(v).map(|(g, v)| g / (v + epsilon as f32).sqrt()).collect();
        let shift: Vec<f32> = b.iter().zip(m).zip(&scale).map(|((b, m), s)| b - m * s).collect();
        Some(new_planes(c, l, n * c * l, |p, ch, out| {
            let (s, t) = (scale[ch], shift[ch]);
            for (o, &v) in out.iter_mut().zip(&x[p * l..(p + 1) * l]) {
                o.write(v * s + t);
            }
        }))
    });
    match fused {
        Some(out) => f32_tensor(out, &shape),
        None => burn_backend::ops::batch_norm_train_generic::<Flex>(tensor, mean, var, gamma, beta, epsilon),
    }
}

/// dβ = Σ g and dγ = r·Σ g·(x − mean) from one read of each plane, then
/// dx = γ·r·(g − dβ/M − x̂·dγ/M), written as a·g + b·(x − mean) + k per channel (centred, so
/// a large mean does not cancel digits away).
pub fn batch_norm_train_backward(
    tensor: FloatTensor<Flex>,
    mean: FloatTensor<Flex>,
    var: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    epsilon: f64,
) -> (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>) {
    let shape = tensor.shape();
    let fused = planes(&shape).filter(|_| grad.shape() == shape).and_then(|(n, c, l)| {
        let (x, g) = (contiguous_f32(&tensor)?, contiguous_f32(&grad)?);
        let (mu, v, gm) = (channel_vec(&mean, c)?, channel_vec(&var, c)?, channel_vec(&gamma, c)?);
        let part = par::per_plane(n * c, l, |p| {
            let (xs, gs) = (&x[p * l..(p + 1) * l], &g[p * l..(p + 1) * l]);
            (sum_map(gs, |v| v), dot_centered(gs, xs, mu[p % c]))
        });
        let m = (n * l) as f64;
        let (mut dgamma, mut dbeta) = (vec![0.0f32; c], vec![0.0f32; c]);
        let mut coef = vec![(0.0f32, 0.0f32, 0.0f32); c];
        for ch in 0..c {
            let sg: f64 = (0..n).map(|i| part[i * c + ch].0 as f64).sum();
            let sgx: f64 = (0..n).map(|i| part[i * c + ch].1 as f64).sum();
            let r = 1.0 / (v[ch] as f64 + epsilon).sqrt();
            let (db, dg) = (sg, r * sgx);
            let a = gm[ch] as f64 * r;
            let b = -a * r * dg / m;
            let k = -a * db / m;
            dgamma[ch] = dg as f32;
            dbeta[ch] = db as f32;
            coef[ch] = (a as f32, b as f32, k as f32);
        }
        let dx = new_planes(c, l, n * c * l, |p, ch, out| {
            let (a, b, k) = coef[ch];
            let mean = mu[ch];
            let (xs, gs) = (&x[p * l..(p + 1) * l], &g[p * l..(p + 1) * l]);
            for ((o, &xv), &gv) in out.iter_mut().zip(xs).zip(gs) {
                o.write(a * gv + b * (xv - mean) + k);
            }
        });
        Some((dx, dgamma, dbeta, c))
    });
    match fused {
        Some((dx, dgamma, dbeta, c)) => (f32_tensor(dx, &shape), f32_tensor(dgamma, &[c]), f32_tensor(dbeta, &[c])),
        None => burn_backend::ops::batch_norm_train_backward_generic::<Flex>(tensor, mean, var, gamma, grad, epsilon),
    }
}
