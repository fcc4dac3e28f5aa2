//! Our burn-flex computes `linear` and its gradients as single GEMMs over every leading index
//! (vendor/burn-flex/src/ops/linear.rs). This test checks the output and the input, weight and
//! bias gradients against plain f64 loops written from y = x·W + b, for ranks 2 to 4, with and
//! without bias, for a non-contiguous input, and for a size large enough to split the GEMM
//! across threads.
use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::module::linear;
use burn::tensor::Distribution;
use tinycats_models::Cpu;

mod common;
use common::{flat, max_rel_err};

type Ad = Autodiff<Cpu>;

/// x: [rows, k] (all leading indices flattened), w: [k, n], r = dL/dy: [rows, n].
/// Returns (y, dx, dW, db) of L = Σ (x·W + b) ∘ r.
fn reference(rows: usize, k: usize, n: usize, x: &[f32], w: &[f32], b: &[f32], r: &[f32]) -> [Vec<f64>; 4] {
    let (mut y, mut dx, mut dw, mut db) = (vec![0.0; rows * n], vec![0.0; rows * k], vec![0.0; k * n], vec![0.0; n]);
    for i in 0..rows {
        for j in 0..n {
            let mut acc = b.get(j).map_or(0.0, |v| *v as f64);
            let rv = r[i * n + j] as f64;
            db[j] += rv;
            for l in 0..k {
                acc += x[i * k + l] as f64 * w[l * n + j] as f64;
                dx[i * k + l] += rv * w[l * n + j] as f64;
                dw[l * n + j] += rv * x[i * k + l] as f64;
            }
            y[i * n + j] = acc;
        }
    }
    [y, dx, dw, db]
}

/// Runs one case; `x0` is the input as the layer sees it (possibly a strided view).
fn check<const D: usize>(name: &str, x0: Tensor<Cpu, D>, n: usize, with_bias: bool) {
    let device = Default::default();
    let dims = x0.dims();
    let k = dims[D - 1];
    let rows: usize = dims[..D - 1].iter().product();
    let w0 = Tensor::<Cpu, 2>::random([k, n], Distribution::Normal(0.0, 1.0), &device);
    let b0 = Tensor::<Cpu, 1>::random([n], Distribution::Normal(0.0, 1.0), &device);
    let mut out_dims = dims;
    out_dims[D - 1] = n;
    let r = Tensor::<Cpu, D>::random(out_dims, Distribution::Normal(0.0, 1.0), &device);

    let x = Tensor::<Ad, D>::from_inner(x0.clone()).require_grad();
    let w = Tensor::<Ad, 2>::from_inner(w0.clone()).require_grad();
    let b = Tensor::<Ad, 1>::from_inner(b0.clone()).require_grad();
    let y = linear(x.clone(), w.clone(), with_bias.then(|| b.clone()));
    assert_eq!(y.dims(), out_dims, "{name}: output shape");
    let grads = (y.clone() * Tensor::from_inner(r.clone())).sum().backward();

    let bias_vals = if with_bias { flat(b0) } else { Vec::new() };
    let [wy, wdx, wdw, wdb] = reference(rows, k, n, &flat(x0), &flat(w0), &bias_vals, &flat(r));
    let mut checks = vec![
        ("output", max_rel_err(&flat(y.inner()), &wy)),
        ("input gradient", max_rel_err(&flat(x.grad(&grads).expect("x grad")), &wdx)),
        ("weight gradient", max_rel_err(&flat(w.grad(&grads).expect("weight grad")), &wdw)),
    ];
    if with_bias {
        checks.push(("bias gradient", max_rel_err(&flat(b.grad(&grads).expect("bias grad")), &wdb)));
    }
    for (what, err) in checks {
        assert!(err < 1e-5, "{name}: {what} differs from the definition by {err:.2e} (relative to its largest entry)");
    }
}

#[test]
fn linear_and_its_gradients_match_the_definition() {
    let device = Default::default();
    let normal = Distribution::Normal(0.0, 1.0);
    // The DiT's token layout: [batch, tokens, hidden].
    check("rank 3 with bias", Tensor::<Cpu, 3>::random([3, 5, 7], normal, &device), 4, true);
    check("rank 3 without bias", Tensor::<Cpu, 3>::random([2, 6, 4], normal, &device), 9, false);
    // The classifier head and the DiT's conditioning MLP: [batch, features].
    check("rank 2 with bias", Tensor::<Cpu, 2>::random([5, 8], normal, &device), 3, true);
    check("rank 4 with bias", Tensor::<Cpu, 4>::random([2, 3, 2, 5], normal, &device), 6, true);
    // A transposed view: the kernel must read the logical layout, not the buffer order.
    let strided = Tensor::<Cpu, 3>::random([3, 7, 5], normal, &device).swap_dims(1, 2);
    check("rank 3, non-contiguous input", strided, 4, true);
}

#[test]
fn linear_large_enough_to_split_across_threads_matches_the_definition() {
    // M·N·K = 512·160·192 is above the threshold where the GEMM runs on every thread, and the
    // 512×160 output is above the one where its bias rows are written by every thread.
    let x = Tensor::<Cpu, 3>::random([8, 64, 192], Distribution::Normal(0.0, 1.0), &Default::default());
    check("rank 3, threaded GEMM", x, 160, true);
}
