//! BatchNorm for [N, C, H, W] that burn-flex runs fast. Shared by EfficientNet and the CNN.

use burn::module::RunningState;
use burn::nn::BatchNorm;
use burn::prelude::*;

/// burn's `BatchNorm::forward` semantics: batch statistics (and a running-average update) while
/// training under autodiff, running statistics otherwise.
pub fn batch_norm_2d<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    if B::ad_enabled(&x.device()) { batch_norm_train(bn, x) } else { bn.forward(x) }
}

/// Training-mode BatchNorm over [N, C, H, W]: the same statistics, running-average update and
/// result as burn's `BatchNorm::forward`, laid out for burn-flex.
///
/// Why: burn's version broadcasts [1, C, 1, 1] views and swaps N and C to take the statistics.
/// burn-flex has no SIMD path for either (a scalar strided walk: ~60% of a BN-training step under
/// `perf`). Here the statistics are row means over [N, C, H·W] and the per-channel affine map is
/// repeated to [N, C, 1, 1], a layout burn-flex runs with SIMD ("one scalar per row").
pub fn batch_norm_train<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [n, c, h, w] = x.dims();
    let per_row = |v: Tensor<B, 1>| v.reshape([1, c, 1]).repeat_dim(0, n);
    let rows = x.clone().reshape([n, c, h * w]);
    // Every sample has H·W values per channel, so the mean of per-sample means is the mean.
    let mean = rows.clone().mean_dim(2).mean_dim(0).reshape([c]);
    let var = (rows - per_row(mean.clone())).powi_scalar(2).mean_dim(2).mean_dim(0).reshape([c]);

    let device = x.device();
    let m = bn.momentum;
    let update = |state: &RunningState<Tensor<B, 1>>, batch: Tensor<B, 1>| {
        let running = state.value_sync().to_device(&device).mul_scalar(1.0 - m).add(batch.detach().mul_scalar(m));
        state.update(running.detach());
    };
    update(&bn.running_mean, mean.clone());
    update(&bn.running_var, var.clone());

    // (x − μ)/σ·γ + β written as x·s + t with s = γ/σ, t = β − μ·s.
    let scale = bn.gamma.val() / (var + bn.epsilon).sqrt();
    let shift = bn.beta.val() - mean * scale.clone();
    x * per_row(scale).reshape([n, c, 1, 1]) + per_row(shift).reshape([n, c, 1, 1])
}
