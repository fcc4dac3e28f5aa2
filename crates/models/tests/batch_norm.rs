//! Our layout-friendly training BatchNorm must be burn's BatchNorm in every observable way:
//! output, input gradient, γ/β gradients and the running statistics it leaves behind.
use burn::backend::Autodiff;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use tinycats_models::norm::batch_norm_train;
use tinycats_models::Cpu;

type Ad = Autodiff<Cpu>;

fn max_diff<const D: usize>(a: Tensor<Cpu, D>, b: Tensor<Cpu, D>) -> f32 {
    (a - b).abs().max().into_scalar()
}

/// Runs our BatchNorm and burn's on `x0` (optionally through a transposed, non-contiguous view,
/// which takes the backend's generic formula instead of the fused kernels) and compares output,
/// input gradient, γ/β gradients and running statistics.
fn check(name: &str, x0: Tensor<Cpu, 4>, transposed_view: bool) {
    let device = Default::default();
    let x0 = if transposed_view { x0.swap_dims(1, 2) } else { x0 };
    let [n, c, h, w] = x0.dims();
    let upstream = Tensor::<Cpu, 4>::random([n, c, h, w], Distribution::Normal(0.0, 1.0), &device);
    let make = || {
        let mut bn: BatchNorm<Ad> = BatchNormConfig::new(c).with_epsilon(1e-3).with_momentum(0.1).init(&device);
        // Non-trivial γ/β so a swapped or dropped affine term shows up; momentum 0.1 moves the
        // running statistics far enough from their 0/1 start to catch a wrong convention.
        bn.gamma = burn::module::Param::from_tensor(Tensor::random([c], Distribution::Uniform(0.5, 1.5), &device));
        bn.beta = burn::module::Param::from_tensor(Tensor::random([c], Distribution::Uniform(-1.0, 1.0), &device));
        bn
    };
    let (ours, theirs) = (make(), make());
    let theirs = BatchNorm { gamma: ours.gamma.clone(), beta: ours.beta.clone(), ..theirs };

    let run = |bn: &BatchNorm<Ad>, f: &dyn Fn(&BatchNorm<Ad>, Tensor<Ad, 4>) -> Tensor<Ad, 4>| {
        let x = Tensor::<Ad, 4>::from_inner(x0.clone()).require_grad();
        let y = f(bn, x.clone());
        let grads = (y.clone() * Tensor::from_inner(upstream.clone())).sum().backward();
        (
            y.inner(),
            x.grad(&grads).expect("x grad"),
            bn.gamma.val().grad(&grads).expect("gamma grad"),
            bn.beta.val().grad(&grads).expect("beta grad"),
        )
    };
    let a = run(&ours, &|bn, x| batch_norm_train(bn, x));
    let b = run(&theirs, &|bn, x| bn.forward(x));
    // γ/β gradients are sums over N·H·W terms: tolerance scales with that count.
    let sum_tol = 1e-5 * (n * h * w) as f32;
    assert!(max_diff(a.0.clone(), b.0) < 1e-4, "{name}: output differs");
    assert!(a.0.clone().abs().max().into_scalar() > 0.5, "{name}: output is not trivially zero");
    assert!(max_diff(a.1.clone(), b.1) < 1e-4, "{name}: input gradient differs");
    assert!(a.1.abs().max().into_scalar() > 1e-3, "{name}: input gradient is trivially zero");
    assert!(max_diff(a.2, b.2) < sum_tol, "{name}: gamma gradient differs");
    assert!(max_diff(a.3, b.3) < sum_tol, "{name}: beta gradient differs");
    let rm = |bn: &BatchNorm<Ad>| (bn.running_mean.value_sync().inner(), bn.running_var.value_sync().inner());
    let ((m1, v1), (m2, v2)) = (rm(&ours), rm(&theirs));
    assert!(max_diff(m1.clone(), m2) < 1e-5 && max_diff(v1, v2) < 1e-4, "{name}: running statistics differ");
    assert!(m1.abs().max().into_scalar() > 0.01, "{name}: running mean was not updated");
}

#[test]
fn layout_friendly_batch_norm_equals_burns() {
    let device = Default::default();
    let small = || Tensor::<Cpu, 4>::random([4, 5, 3, 6], Distribution::Normal(0.7, 2.0), &device);
    check("small, generic", small(), true);
    check("small, fused", small(), false);
    // 8·16·24·24 = 73,728 values: above burn-flex's split size, so planes go to several threads;
    // an odd plane size (575) leaves a remainder after the eight-lane sums.
    let large = Tensor::<Cpu, 4>::random([8, 16, 23, 25], Distribution::Normal(3.0, 0.5), &device);
    check("large, fused, threaded", large, false);
}
