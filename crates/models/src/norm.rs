//! BatchNorm for [N, C, H, W] that burn-flex runs fast. Shared by EfficientNet and the CNN.

use burn::module::RunningState;
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// burn's `BatchNorm::forward` semantics: batch statistics (and a running-average update) while
/// training under autodiff, running statistics otherwise.
pub fn batch_norm_2d<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    if B::ad_enabled(&x.device()) { batch_norm_train(bn, x) } else { bn.forward(x) }
}

/// Training-mode BatchNorm over [N, C, H, W]: the same statistics, running-average update and
/// result as burn's `BatchNorm::forward`, as two fused backend ops.
///
/// Why: burn's version broadcasts [1, C, 1, 1] views and swaps N and C to take the statistics,
/// which burn-flex walks one scalar at a time (~60% of a BN-training step under `perf`); spelled
/// out in tensor ops it is still ~15 passes over the activation with autodiff. Our patched burn
/// (vendor/README.md) has `batch_norm_stats` (one read, untracked) and `batch_norm_train` (one
/// pass, with a fused backward that accounts for the batch statistics); other backends get the
/// same maths from generic tensor ops.
pub fn batch_norm_train<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let float = |t| Tensor::<B, 1>::from_primitive(TensorPrimitive::Float(t));
    let (mean, var) = B::batch_norm_stats(x.clone().into_primitive().tensor());
    let (mean, var) = (float(mean), float(var));

    let device = x.device();
    let m = bn.momentum;
    let update = |state: &RunningState<Tensor<B, 1>>, batch: Tensor<B, 1>| {
        let running = state.value_sync().to_device(&device).mul_scalar(1.0 - m).add(batch.detach().mul_scalar(m));
        state.update(running.detach());
    };
    update(&bn.running_mean, mean.clone());
    update(&bn.running_var, var.clone());

    let prim = |t: Tensor<B, 1>| t.into_primitive().tensor();
    let y = B::batch_norm_train(
        x.into_primitive().tensor(),
        prim(mean),
        prim(var),
        prim(bn.gamma.val()),
        prim(bn.beta.val()),
        bn.epsilon,
    );
    Tensor::from_primitive(TensorPrimitive::Float(y))
}
