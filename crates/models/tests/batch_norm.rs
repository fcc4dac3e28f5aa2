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

#[test]
fn layout_friendly_batch_norm_equals_burns() {
    let device = Default::default();
    let x0 = Tensor::<Cpu, 4>::random([4, 5, 3, 6], Distribution::Normal(0.7, 2.0), &device);
    let upstream = Tensor::<Cpu, 4>::random([4, 5, 3, 6], Distribution::Normal(0.0, 1.0), &device);
    let make = || {
        let mut bn: BatchNorm<Ad> = BatchNormConfig::new(5).with_epsilon(1e-3).with_momentum(0.1).init(&device);
        // Non-trivial γ/β so a swapped or dropped affine term shows up; momentum 0.1 moves the
        // running statistics far enough from their 0/1 start to catch a wrong convention.
        bn.gamma = burn::module::Param::from_tensor(Tensor::random([5], Distribution::Uniform(0.5, 1.5), &device));
        bn.beta = burn::module::Param::from_tensor(Tensor::random([5], Distribution::Uniform(-1.0, 1.0), &device));
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
    assert!(max_diff(a.0.clone(), b.0) < 1e-4, "output differs");
    assert!(a.0.clone().abs().max().into_scalar() > 0.5, "output is not trivially zero");
    assert!(max_diff(a.1, b.1) < 1e-4, "input gradient differs");
    assert!(max_diff(a.2, b.2) < 1e-3, "gamma gradient differs");
    assert!(max_diff(a.3, b.3) < 1e-3, "beta gradient differs");
    let rm = |bn: &BatchNorm<Ad>| (bn.running_mean.value_sync().inner(), bn.running_var.value_sync().inner());
    let ((m1, v1), (m2, v2)) = (rm(&ours), rm(&theirs));
    assert!(max_diff(m1.clone(), m2) < 1e-5 && max_diff(v1, v2) < 1e-5, "running statistics differ");
    assert!(m1.abs().max().into_scalar() > 0.01, "running mean was not updated");
}
