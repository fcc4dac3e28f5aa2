//! Our patched burn-autodiff differentiates softmax and layer norm as single ops, with fused
//! backward kernels in burn-flex (vendor/burn-flex/src/ops/norm_backward.rs). This test checks
//! their outputs and gradients against plain f64 loops written from the definitions, for the
//! fused layouts (last dim, contiguous, large enough to split across two threads, a row length
//! that is not a multiple of 8) and for layouts that take the generic formula (softmax over a
//! middle dim, a transposed input). The clamp test below covers the fused ReLU6 gradient.
use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::ops::ModuleOps;
use burn::tensor::{Distribution, TensorPrimitive};
use tinycats_models::Cpu;

mod common;
use common::{flat, max_rel_err, pool};

type Ad = Autodiff<Cpu>;

/// Softmax over the last dim of [rows, d] rows (row-major) and the gradient of L = Σ y ∘ r.
fn softmax_ref(x: &[f32], r: &[f32], d: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    for (row, (yr, dr)) in y.chunks_mut(d).zip(dx.chunks_mut(d)).enumerate() {
        let xs = &x[row * d..(row + 1) * d];
        let rs = &r[row * d..(row + 1) * d];
        let m = xs.iter().fold(f64::MIN, |m, v| m.max(*v as f64));
        let z: f64 = xs.iter().map(|v| (*v as f64 - m).exp()).sum();
        for i in 0..d {
            yr[i] = (xs[i] as f64 - m).exp() / z;
        }
        // dL/dx_i = Σ_j r_j · ∂y_j/∂x_i = y_i·(r_i − Σ_j r_j·y_j)
        let s: f64 = (0..d).map(|j| rs[j] as f64 * yr[j]).sum();
        for i in 0..d {
            dr[i] = yr[i] * (rs[i] as f64 - s);
        }
    }
    (y, dx)
}

/// Layer norm over the last dim of [rows, d] and the gradients of L = Σ y ∘ r for x, γ, β,
/// by the chain rule through mean and variance written out in f64.
fn layer_norm_ref(x: &[f32], gamma: &[f32], beta: &[f32], r: &[f32], d: usize, eps: f64) -> [Vec<f64>; 4] {
    let (mut y, mut dx, mut dg, mut db) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; d], vec![0.0; d]);
    for row in 0..x.len() / d {
        let xs: Vec<f64> = x[row * d..(row + 1) * d].iter().map(|v| *v as f64).collect();
        let rs: Vec<f64> = r[row * d..(row + 1) * d].iter().map(|v| *v as f64).collect();
        let mean = xs.iter().sum::<f64>() / d as f64;
        let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / d as f64;
        let std = (var + eps).sqrt();
        let xhat: Vec<f64> = xs.iter().map(|v| (v - mean) / std).collect();
        // dL/dx̂_j = r_j γ_j; dx̂_j/dx_i = (δ_ij − 1/d)/std − x̂_j x̂_i /(d·std)
        let gh: Vec<f64> = (0..d).map(|j| rs[j] * gamma[j] as f64).collect();
        for i in 0..d {
            y[row * d + i] = xhat[i] * gamma[i] as f64 + beta[i] as f64;
            dg[i] += rs[i] * xhat[i];
            db[i] += rs[i];
            let mut acc = 0.0;
            for j in 0..d {
                let delta = if i == j { 1.0 } else { 0.0 };
                acc += gh[j] * ((delta - 1.0 / d as f64) / std - xhat[j] * xhat[i] / (d as f64 * std));
            }
            dx[row * d + i] = acc;
        }
    }
    [y, dx, dg, db]
}

fn check_softmax<const D: usize>(name: &str, x0: Tensor<Cpu, D>, dim: usize) {
    let device = Default::default();
    let r0 = Tensor::<Cpu, D>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &device);
    let x = Tensor::<Ad, D>::from_inner(x0.clone()).require_grad();
    let y = softmax(x.clone(), dim);
    let grads = (y.clone() * Tensor::from_inner(r0.clone())).sum().backward();
    let dx = x.grad(&grads).expect("x grad");

    // Reference on the softmax dim moved last, made contiguous.
    let last = D - 1;
    let d = x0.dims()[dim];
    let xs = flat(x0.swap_dims(dim, last));
    let rs = flat(r0.swap_dims(dim, last));
    let (y_ref, dx_ref) = softmax_ref(&xs, &rs, d);
    let e_y = max_rel_err(&flat(y.inner().swap_dims(dim, last)), &y_ref);
    let e_dx = max_rel_err(&flat(dx.swap_dims(dim, last)), &dx_ref);
    assert!(e_y < 1e-5, "{name}: softmax output off by {e_y:.2e}");
    assert!(e_dx < 1e-4, "{name}: softmax gradient off by {e_dx:.2e}");
}

fn backend_layer_norm<const D: usize>(x: Tensor<Ad, D>, gamma: Tensor<Ad, 1>, beta: Option<Tensor<Ad, 1>>, eps: f64) -> Tensor<Ad, D> {
    let y = Ad::layer_norm(x.into_primitive().tensor(), gamma.into_primitive().tensor(), beta.map(|b| b.into_primitive().tensor()), eps);
    Tensor::from_primitive(TensorPrimitive::Float(y))
}

fn check_layer_norm<const D: usize>(name: &str, x0: Tensor<Cpu, D>, with_beta: bool) {
    let device = Default::default();
    let d = x0.dims()[D - 1];
    let eps = 1e-5;
    let g0 = Tensor::<Cpu, 1>::random([d], Distribution::Normal(1.0, 0.5), &device);
    let b0 = if with_beta { Tensor::<Cpu, 1>::random([d], Distribution::Normal(0.0, 1.0), &device) } else { Tensor::zeros([d], &device) };
    let r0 = Tensor::<Cpu, D>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &device);
    let x = Tensor::<Ad, D>::from_inner(x0.clone()).require_grad();
    let g = Tensor::<Ad, 1>::from_inner(g0.clone()).require_grad();
    let b = Tensor::<Ad, 1>::from_inner(b0.clone()).require_grad();
    let y = backend_layer_norm(x.clone(), g.clone(), with_beta.then(|| b.clone()), eps);
    let grads = (y.clone() * Tensor::from_inner(r0.clone())).sum().backward();

    let [y_ref, dx_ref, dg_ref, db_ref] = layer_norm_ref(&flat(x0), &flat(g0), &flat(b0), &flat(r0), d, eps);
    let e = |got: Vec<f32>, want: &[f64]| max_rel_err(&got, want);
    let e_y = e(flat(y.inner()), &y_ref);
    let e_dx = e(flat(x.grad(&grads).expect("x grad")), &dx_ref);
    let e_dg = e(flat(g.grad(&grads).expect("gamma grad")), &dg_ref);
    assert!(e_y < 1e-5, "{name}: layer norm output off by {e_y:.2e}");
    assert!(e_dx < 1e-4, "{name}: layer norm x gradient off by {e_dx:.2e}");
    assert!(e_dg < 1e-4, "{name}: layer norm gamma gradient off by {e_dg:.2e}");
    if with_beta {
        let e_db = e(flat(b.grad(&grads).expect("beta grad")), &db_ref);
        assert!(e_db < 1e-4, "{name}: layer norm beta gradient off by {e_db:.2e}");
    } else {
        assert!(b.grad(&grads).is_none(), "{name}: beta was not an input, yet has a gradient");
    }
}

#[test]
fn softmax_gradients_match_the_definition() {
    let device = Default::default();
    let n = |dims: [usize; 4]| Tensor::<Cpu, 4>::random(dims, Distribution::Normal(0.0, 2.0), &device);
    // Attention-score shape, above the split size (2·3·64·256 = 98 Ki elements).
    pool().install(|| check_softmax("last dim, split", n([2, 3, 64, 256]), 3));
    check_softmax("last dim, row of 13", n([2, 3, 5, 13]), 3);
    check_softmax("middle dim (generic)", n([2, 7, 5, 6]), 1);
    check_softmax("transposed input (generic)", n([2, 3, 9, 11]).swap_dims(2, 3), 3);
}

/// burn-flex's softmax computes exp with a branch-free polynomial (`fast_exp_f32`). Rows
/// [0, x] give p = eˣ/(1 + eˣ) and 1 − p, so every element's relative error tests the
/// exponential across its whole normal range, not only relative to the row's largest entry.
#[test]
fn softmax_exponential_is_accurate_per_element() {
    let device = Default::default();
    let xs: Vec<f32> = (0..=23_000).map(|i| -87.0 + i as f32 * 0.005).collect();
    let rows: Vec<f32> = xs.iter().flat_map(|&x| [0.0, x]).collect();
    let y = flat(softmax(Tensor::<Cpu, 2>::from_data(TensorData::new(rows, [xs.len(), 2]), &device), 1));
    for (i, &x) in xs.iter().enumerate() {
        let e = (x as f64).exp();
        let (p0, p1) = (1.0 / (1.0 + e), e / (1.0 + e));
        for (got, want) in [(y[2 * i], p0), (y[2 * i + 1], p1)] {
            let rel = (got as f64 - want).abs() / want;
            assert!(rel < 1e-6, "softmax([0, {x}]): {got} vs {want} (relative error {rel:.2e})");
        }
    }
    // Edge cases: an underflowing entry is exactly 0, −∞ is 0, NaN propagates, rows of 1 and 9.
    let t = |v: Vec<f32>, d: usize| flat(softmax(Tensor::<Cpu, 2>::from_data(TensorData::new(v.clone(), [v.len() / d, d]), &device), 1));
    assert_eq!(t(vec![0.0, -100.0], 2), vec![1.0, 0.0]);
    assert_eq!(t(vec![0.0, f32::NEG_INFINITY], 2), vec![1.0, 0.0]);
    assert!(t(vec![0.0, f32::NAN], 2).iter().all(|v| v.is_nan()), "NaN must not be hidden");
    assert_eq!(t(vec![3.5, -2.0], 1), vec![1.0, 1.0]);
    let nine: Vec<f32> = (0..9).map(|i| i as f32 * 0.25).collect();
    let (want, _) = softmax_ref(&nine, &[0.0; 9], 9);
    assert!(max_rel_err(&t(nine, 9), &want) < 1e-6, "row of 9 (one SIMD chunk + tail)");
}

#[test]
fn layer_norm_gradients_match_the_definition() {
    let device = Default::default();
    let n = |dims: [usize; 3]| Tensor::<Cpu, 3>::random(dims, Distribution::Normal(0.5, 2.0), &device);
    // DiT token shape, above the split size (8·64·192 = 96 Ki elements).
    pool().install(|| check_layer_norm("tokens, split, with beta", n([8, 64, 192]), true));
    pool().install(|| check_layer_norm("tokens, split, no beta", n([8, 64, 192]), false));
    check_layer_norm("row of 13", n([3, 5, 13]), true);
    check_layer_norm("transposed input (generic)", n([4, 13, 6]).swap_dims(1, 2), true);
}

/// ReLU6 (`clamp(0, 6)`) is one op in our patched autodiff, with a one-pass backward in
/// burn-flex (`float_clamp_backward`): the gradient passes where 0 <= x <= 6, boundaries
/// included, as the release's clamp-max-then-clamp-min decomposition gives.
#[test]
fn clamp_gradient_passes_inside_the_range_only() {
    let device = Default::default();
    let check = |name: &str, x0: Tensor<Cpu, 2>| {
        let r0 = Tensor::<Cpu, 2>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &device);
        let x = Tensor::<Ad, 2>::from_inner(x0.clone()).require_grad();
        let y = x.clone().clamp(0.0, 6.0);
        let grads = (y.clone() * Tensor::from_inner(r0.clone())).sum().backward();
        let (xs, rs) = (flat(x0), flat(r0));
        let (ys, gs) = (flat(y.inner()), flat(x.grad(&grads).expect("x grad")));
        for i in 0..xs.len() {
            let inside = (0.0..=6.0).contains(&xs[i]);
            assert_eq!(ys[i], xs[i].clamp(0.0, 6.0), "{name}: clamp({}) at {i}", xs[i]);
            assert_eq!(gs[i], if inside { rs[i] } else { 0.0 }, "{name}: gradient at x = {} ({i})", xs[i]);
        }
    };
    // Values on both sides of the range and exactly on its ends.
    let edges = Tensor::<Cpu, 2>::from_floats([[-1.0, 0.0, 0.5, 6.0, 6.5, 3.0]], &device);
    check("edges", edges);
    // Large enough to split across two threads (256 Ki elements).
    let big = Tensor::<Cpu, 2>::random([512, 512], Distribution::Uniform(-2.0, 8.0), &device);
    pool().install(|| check("split", big));
}
