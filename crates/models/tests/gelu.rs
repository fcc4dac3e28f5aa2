//! Our burn-flex computes GELU's erf with a branch-free rational approximation
//! (vendor/burn-flex/src/ops/unary.rs, `fast_erf_f32`) so the loop vectorises. GELU and its
//! gradient must still equal the exact-erf definition to f32 rounding: this test compares them
//! on a dense grid with an f64 series for erf.
use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::gelu;
use tinycats_models::Cpu;

type Ad = Autodiff<Cpu>;

/// erf by its Taylor series in f64 (accurate to ~1e-11 on |x| ≤ 4; ±1 beyond, where
/// erfc < 1.6e-8 is below f32 resolution next to 1).
fn erf(x: f64) -> f64 {
    if x.abs() > 4.0 {
        return x.signum();
    }
    let (mut term, mut sum) = (x, x);
    for n in 1..200 {
        term *= -x * x / n as f64;
        let add = term / (2 * n + 1) as f64;
        sum += add;
        if add.abs() < 1e-17 {
            break;
        }
    }
    sum * 2.0 / std::f64::consts::PI.sqrt()
}

#[test]
fn gelu_and_its_gradient_equal_the_exact_erf_definition() {
    let device = Default::default();
    let xs: Vec<f32> = (-8000..=8000).map(|i| i as f32 * 1e-3).collect();
    let x = Tensor::<Ad, 1>::from_floats(xs.as_slice(), &device).require_grad();
    let y = gelu(x.clone());
    let grads = y.clone().sum().backward();
    let y = y.inner().into_data().to_vec::<f32>().unwrap();
    let dy = x.grad(&grads).expect("x grad").into_data().to_vec::<f32>().unwrap();

    let (mut worst_y, mut worst_dy) = (0f64, 0f64);
    for ((&xv, &yv), &dv) in xs.iter().zip(&y).zip(&dy) {
        let x = xv as f64;
        let cdf = 0.5 * (1.0 + erf(x / std::f64::consts::SQRT_2));
        let pdf = (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
        // Relative to max(1, |value|): f32 rounding of values up to 8 is ~5e-7.
        worst_y = worst_y.max((yv as f64 - x * cdf).abs() / (x * cdf).abs().max(1.0));
        worst_dy = worst_dy.max((dv as f64 - (cdf + x * pdf)).abs() / (cdf + x * pdf).abs().max(1.0));
    }
    assert!(worst_y < 1e-6, "GELU differs from x·Φ(x) by {worst_y:.2e}");
    assert!(worst_dy < 1e-6, "GELU's gradient differs from Φ(x) + x·φ(x) by {worst_dy:.2e}");
}
