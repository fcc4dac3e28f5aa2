//! Fused backward passes of softmax and layer norm (tinycats patch).
//!
//! Why: autodiff differentiated both step by step (softmax: max, subtract, exp, sum, divide;
//! layer norm: mean, subtract, square, mean, add, sqrt, divide), about a dozen passes over
//! the activation each. The patched burn-autodiff calls `softmax_backward` and
//! `layer_norm_backward` instead, and here each is one pass per row that stays in cache.
//! Layouts or dtypes these kernels do not cover take burn's generic formula.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;
use burn_backend::DType;
use burn_backend::TensorMetadata;
use burn_backend::tensor::FloatTensor;

use crate::ops::conv_backward::f32_tensor;
use crate::ops::par;
use crate::{Flex, FlexTensor};

#[cfg(feature = "rayon")]
use rayon::prelude::*;

/// The f32 slice of a contiguous tensor, or `None` for other layouts and dtypes.
pub(crate) fn contiguous_f32(t: &FlexTensor) -> Option<&[f32]> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let (start, end) = t.layout().contiguous_offsets()?;
    Some(&t.storage::<f32>()[start..end])
}

/// Σ a·b with eight partial sums, so the loop vectorises (one running sum is a serial chain:
/// the compiler may not reorder float additions). Also used by the depthwise gradients.
#[inline]
pub(crate) fn dot8(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Σ f(a[i]) with eight partial sums (see `dot8`).
#[inline]
pub(crate) fn sum_map(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0.0f32; 8];
    let ca = a.chunks_exact(8);
    let tail: f32 = ca.remainder().iter().map(|&x| f(x)).sum();
    for x in ca {
        for l in 0..8 {
            acc[l] += f(x[l]);
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `y · (g − Σ_dim g·y)` along the last dim, one pass per row.
pub fn softmax_backward(output: FloatTensor<Flex>, grad: FloatTensor<Flex>, dim: usize) -> FloatTensor<Flex> {
    let shape = output.shape();
    let fused = dim + 1 == shape.num_dims() && grad.shape() == shape && shape[dim] > 0;
    let (true, Some(y), Some(g)) = (fused, contiguous_f32(&output), contiguous_f32(&grad)) else {
        return burn_backend::ops::softmax_backward_generic::<Flex>(output, grad, dim);
    };
    let row = shape[dim];
    let dx = par::fill_new_units(y.len(), row, |start, out: &mut [MaybeUninit<f32>]| {
        let (y, g) = (&y[start..start + out.len()], &g[start..start + out.len()]);
        for ((o, y), g) in out.chunks_exact_mut(row).zip(y.chunks_exact(row)).zip(g.chunks_exact(row)) {
            let s = dot8(y, g);
            for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
                o.write(y * (g - s));
            }
        }
    });
    f32_tensor(dx, &shape)
}

/// Layer norm's input, gamma and beta gradients over the last dim. Each row's mean and
/// 1/std are recomputed from x in cache; dγ and dβ are summed per task, then across tasks.
pub fn layer_norm_backward(
    tensor: FloatTensor<Flex>,
    gamma: FloatTensor<Flex>,
    grad: FloatTensor<Flex>,
    epsilon: f64,
) -> (FloatTensor<Flex>, FloatTensor<Flex>, FloatTensor<Flex>) {
    let shape = tensor.shape();
    let d = shape[shape.num_dims() - 1];
    let fused = d > 0 && grad.shape() == shape && gamma.shape().num_elements() == d;
    let (true, Some(x), Some(g), Some(gm)) =
        (fused, contiguous_f32(&tensor), contiguous_f32(&grad), contiguous_f32(&gamma))
    else {
        return burn_backend::ops::layer_norm_backward_generic::<Flex>(tensor, gamma, grad, epsilon);
    };
    let eps = epsilon as f32;
    let n = x.len();
    let task = par::units_per_task(d) * d;
    let mut dx: Vec<f32> = Vec::with_capacity(n);

    // One task: rows [start, start + out.len()), writing dx and returning its (dγ, dβ) partials.
    let rows = |start: usize, out: &mut [MaybeUninit<f32>]| -> (Vec<f32>, Vec<f32>) {
        let (x, g) = (&x[start..start + out.len()], &g[start..start + out.len()]);
        let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
        let inv_d = 1.0 / d as f32;
        let mut xhat = vec![0.0f32; d];
        let mut gg = vec![0.0f32; d];
        for ((o, x), g) in out.chunks_exact_mut(d).zip(x.chunks_exact(d)).zip(g.chunks_exact(d)) {
            let mean = sum_map(x, |v| v) * inv_d;
            let var = sum_map(x, |v| (v - mean) * (v - mean)) * inv_d;
            let r = 1.0 / (var + eps).sqrt();
            for i in 0..d {
                xhat[i] = (x[i] - mean) * r;
                gg[i] = g[i] * gm[i];
                dgamma[i] += g[i] * xhat[i];
                dbeta[i] += g[i];
            }
            // m1 = mean(g·γ), m2 = mean(g·γ·x̂)
            let m1 = sum_map(&gg, |v| v) * inv_d;
            let m2 = dot8(&gg, &xhat) * inv_d;
            for i in 0..d {
                o[i].write(r * (gg[i] - m1 - xhat[i] * m2));
            }
        }
        (dgamma, dbeta)
    };

    let spare = &mut dx.spare_capacity_mut()[..n];
    #[cfg(feature = "rayon")]
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if par::worth_splitting(n) {
        spare.par_chunks_mut(task).enumerate().map(|(i, out)| rows(i * task, out)).collect()
    } else {
        vec![rows(0, spare)]
    };
    #[cfg(not(feature = "rayon"))]
    let partials: Vec<(Vec<f32>, Vec<f32>)> = vec![rows(0, spare)];
    // SAFETY: `rows` wrote every element of every chunk, and the chunks cover 0..n.
    unsafe { dx.set_len(n) };

    let (mut dgamma, mut dbeta) = (vec![0.0f32; d], vec![0.0f32; d]);
    for (pg, pb) in &partials {
        dgamma.iter_mut().zip(pg).for_each(|(a, b)| *a += b);
        dbeta.iter_mut().zip(pb).for_each(|(a, b)| *a += b);
    }
    (f32_tensor(dx, &shape), f32_tensor(dgamma, &[d]), f32_tensor(dbeta, &[d]))
}
