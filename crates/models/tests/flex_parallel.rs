//! Our burn-flex splits element-wise maps, zips, strided copies, repeats, zero fills, row and
//! middle-dim sums and the global-pooling gradient across rayon threads from 64 Ki elements on
//! (vendor/burn-flex/src/ops/par.rs). Each case here is above that size and runs in a 2-thread
//! pool, so the split paths run even on a 1-core machine; every result is compared with values
//! computed index by index from the definition.
use burn::prelude::*;
use tinycats_models::Cpu;

mod common;
use common::{flat, pool};

/// Deterministic, non-repeating test values.
fn values(n: usize) -> Vec<f32> {
    (0..n).map(|i| ((i as f32) * 0.37).sin() * 3.0 + (i % 7) as f32 * 0.01).collect()
}

fn tensor<const D: usize>(shape: [usize; D]) -> (Tensor<Cpu, D>, Vec<f32>) {
    let v = values(shape.iter().product());
    (Tensor::from_data(TensorData::new(v.clone(), shape), &Default::default()), v)
}

fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{what}: element {i} is {g}, expected {w}");
    }
}

#[test]
fn strided_copies_keep_the_logical_order() {
    pool().install(|| {
        // Attention's head split: [B, T, H, hd] → [B, H, T, hd], made contiguous by a reshape.
        let (b, t, h, d) = (4, 96, 3, 64);
        let (x, v) = tensor([b, t, h, d]);
        let got = flat(x.swap_dims(1, 2).reshape([b * h, t * d]));
        let mut want = Vec::with_capacity(v.len());
        for bi in 0..b {
            for hi in 0..h {
                for ti in 0..t {
                    for di in 0..d {
                        want.push(v[((bi * t + ti) * h + hi) * d + di]);
                    }
                }
            }
        }
        assert_close("4-D permuted copy", &got, &want);

        // A column block of a wider matrix (rows with a gap): the middle third of [512, 576].
        let (rows, cols) = (512, 576);
        let (m, v) = tensor([rows, cols]);
        let got = flat(m.narrow(1, 192, 192).reshape([rows * 192]));
        let want: Vec<f32> = (0..rows).flat_map(|r| v[r * cols + 192..r * cols + 384].to_vec()).collect();
        assert_close("row-block copy", &got, &want);
    });
}

#[test]
fn repeat_dim_copies_every_block() {
    pool().install(|| {
        let (n, t, d) = (32, 64, 192);
        let (x, v) = tensor([n, 1, d]);
        let got = flat(x.repeat_dim(1, t));
        let want: Vec<f32> = (0..n).flat_map(|i| (0..t).flat_map(|_| v[i * d..(i + 1) * d].to_vec()).collect::<Vec<_>>()).collect();
        assert_close("f32 repeat over tokens", &got, &want);

        // 8-byte elements take the u64 word path.
        let ints: Vec<i64> = (0..70_000).map(|i| i * 3 - 5).collect();
        let x = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ints.clone(), [2, 35_000]), &Default::default());
        let got = x.repeat_dim(1, 2).into_data().convert::<i64>().to_vec::<i64>().expect("i64 data");
        let want: Vec<i64> = ints[..35_000].iter().chain(&ints[..35_000]).chain(&ints[35_000..]).chain(&ints[35_000..]).copied().collect();
        assert_eq!(got, want, "i64 repeat along the last dim (each row tiled twice)");
    });
}

#[test]
fn element_wise_ops_match_scalar_loops() {
    pool().install(|| {
        let shape = [400, 300];
        let (a, va) = tensor(shape);
        let vb: Vec<f32> = values(va.len()).iter().map(|x| x * 0.5 + 1.25).collect();
        let b = Tensor::<Cpu, 2>::from_data(TensorData::new(vb.clone(), shape), &Default::default());
        let zip = |f: fn(f32, f32) -> f32| va.iter().zip(&vb).map(|(x, y)| f(*x, *y)).collect::<Vec<_>>();

        // Unique, contiguous operands: the in-place paths.
        assert_close("add", &flat(a.clone() + b.clone()), &zip(|x, y| x + y));
        assert_close("exp", &flat(a.clone().exp()), &va.iter().map(|x| x.exp()).collect::<Vec<_>>());
        assert_close("mul_scalar", &flat(a.clone() * 2.5), &va.iter().map(|x| x * 2.5).collect::<Vec<_>>());
        // A custom binary op (no SIMD kernel): the generic zip.
        assert_close("powf", &flat(a.clone().abs().powf(b.clone())), &zip(|x, y| x.abs().powf(y)));

        // Shared operands (the clone keeps the buffer alive): the allocating paths.
        let keep = a.clone();
        assert_close("shared sub", &flat(a.clone() - b.clone()), &zip(|x, y| x - y));
        assert_close("shared sqrt", &flat(a.clone().abs().sqrt()), &va.iter().map(|x| x.abs().sqrt()).collect::<Vec<_>>());
        assert_close("shared add_scalar", &flat(keep.clone() + 1.5), &va.iter().map(|x| x + 1.5).collect::<Vec<_>>());
        // A transposed view: the map runs over the buffer and keeps the layout.
        let got = flat(keep.clone().transpose().exp());
        let want: Vec<f32> = (0..shape[1]).flat_map(|c| (0..shape[0]).map(move |r| (r, c))).map(|(r, c)| va[r * shape[1] + c].exp()).collect();
        assert_close("transposed exp", &got, &want);

        // Per-row scalar broadcast (layer norm's `x - mean`).
        let mean = keep.clone().mean_dim(1);
        let means: Vec<f32> = va.chunks(shape[1]).map(|r| r.iter().sum::<f32>() / shape[1] as f32).collect();
        let want: Vec<f32> = va.iter().enumerate().map(|(i, x)| x - means[i / shape[1]]).collect();
        let got = flat(keep - mean);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-4, "row-centred element {i} is {g}, expected {w}");
        }
    });
}

#[test]
fn sums_over_a_middle_dim_match_loops() {
    pool().install(|| {
        // The per-token modulation's backward: [N, T, D] summed over the tokens.
        let (n, t, d) = (32, 64, 192);
        let (x, v) = tensor([n, t, d]);
        let got = flat(x.sum_dim(1));
        let mut want = vec![0f32; n * d];
        for i in 0..n {
            for j in 0..t {
                for k in 0..d {
                    want[i * d + k] += v[(i * t + j) * d + k];
                }
            }
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-3, "sum over tokens, element {i}: {g}, expected {w}");
        }
    });
}

#[test]
fn row_sums_match_loops() {
    pool().install(|| {
        // Layer norm's statistics: [N·T, D] summed over the last dim, rows split across threads.
        let (rows, d) = (2048, 192);
        let (x, v) = tensor([rows, d]);
        let got = flat(x.sum_dim(1));
        let want: Vec<f32> = v.chunks(d).map(|r| r.iter().sum()).collect();
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() < 1e-3, "row {i} sums to {g}, expected {w}");
        }
    });
}

#[test]
fn global_average_pool_gradient_spreads_evenly() {
    use burn::backend::Autodiff;
    use burn::tensor::module::adaptive_avg_pool2d;
    pool().install(|| {
        // The classifier head's pooling: d/dx of Σ pool(x)·r is r[n, c] / (H·W) on every pixel.
        let (n, c, h, w) = (32, 64, 7, 7);
        let (x, _) = tensor([n, c, h, w]);
        let (r, rv) = tensor([n, c, 1, 1]);
        let x = Tensor::<Autodiff<Cpu>, 4>::from_inner(x).require_grad();
        let y = adaptive_avg_pool2d(x.clone(), [1, 1]);
        let grads = (y * Tensor::from_inner(r)).sum().backward();
        let got = flat(x.grad(&grads).expect("x grad"));
        let want: Vec<f32> = rv.iter().flat_map(|g| std::iter::repeat_n(g / (h * w) as f32, h * w)).collect();
        assert_close("pooling gradient", &got, &want);
    });
}

#[test]
fn global_average_pool_is_the_plane_mean() {
    use burn::tensor::module::adaptive_avg_pool2d;
    pool().install(|| {
        // The classifier head's pooling forward: planes of 7×7 averaged, planes split across threads.
        let (n, c, h, w) = (32, 320, 7, 7);
        let (x, v) = tensor([n, c, h, w]);
        let y = adaptive_avg_pool2d(x.clone(), [1, 1]);
        assert_eq!(y.dims(), [n, c, 1, 1]);
        let want: Vec<f32> = v.chunks(h * w).map(|p| p.iter().sum::<f32>() / (h * w) as f32).collect();
        assert_close("global average pool", &flat(y), &want);
        // A transposed (non-contiguous) input pools the same logical planes.
        let xt = x.clone().swap_dims(2, 3);
        assert_close("pool of a transposed view", &flat(adaptive_avg_pool2d(xt, [1, 1])), &want);
        // Other output sizes still take the general path: 2×2 cells of a 4×4 plane.
        let (x4, v4) = tensor([2, 3, 4, 4]);
        let got = flat(adaptive_avg_pool2d(x4, [2, 2]));
        let mut want4 = Vec::new();
        for p in v4.chunks(16) {
            for (r, c) in [(0, 0), (0, 2), (2, 0), (2, 2)] {
                want4.push((p[r * 4 + c] + p[r * 4 + c + 1] + p[(r + 1) * 4 + c] + p[(r + 1) * 4 + c + 1]) / 4.0);
            }
        }
        assert_close("2×2 adaptive pool", &got, &want4);
    });
}

#[test]
fn clamp_matches_the_definition_and_keeps_nan() {
    pool().install(|| {
        // ReLU6's forward on both paths: a unique buffer (in place) and a shared one (allocating).
        let shape = [400, 300];
        let va = values(shape.iter().product());
        let mut vn = va.clone();
        vn[12_345] = f32::NAN;
        vn[100_001] = f32::NAN;
        let a_nan = Tensor::<Cpu, 2>::from_data(TensorData::new(vn.clone(), shape), &Default::default());
        let want: Vec<f32> = vn.iter().map(|x| x.clamp(0.0, 2.4)).collect();
        let check = |what: &str, got: Vec<f32>| {
            assert_eq!(got.len(), want.len(), "{what}: length");
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(g == w || (g.is_nan() && w.is_nan()), "{what}: element {i} is {g}, expected {w}");
            }
        };
        let keep = a_nan.clone();
        check("shared clamp", flat(a_nan.clamp(0.0, 2.4)));
        check("in-place clamp", flat(keep.clamp(0.0, 2.4)));
        assert!(va.iter().any(|x| *x < 0.0) && va.iter().any(|x| *x > 2.4), "test values cover both bounds");
    });
}

/// C[b] = A[b or 0] · B[b], computed index by index.
fn matmul_ref(a: &[f32], b: &[f32], batch: usize, a_batched: bool, m: usize, k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![0f32; batch * m * n];
    for bi in 0..batch {
        let ab = if a_batched { bi } else { 0 };
        for i in 0..m {
            for j in 0..n {
                c[(bi * m + i) * n + j] = (0..k).map(|t| a[(ab * m + i) * k + t] * b[(bi * k + t) * n + j]).sum();
            }
        }
    }
    c
}

#[test]
fn matmul_writes_every_output_on_each_path() {
    pool().install(|| {
        // Outputs are no longer zero-filled before the GEMM, so free a large non-zero buffer
        // first: a missed element would show the old values.
        drop(flat(tensor([600, 600]).0 * 3.0));
        // (batch, m, k, n): batch-parallel small matrices (attention), one large matrix split
        // inside gemm, a batch too small to split, and the 2-D path.
        for (batch, m, k, n) in [(8, 64, 48, 40), (2, 200, 200, 200), (3, 5, 7, 6)] {
            let (a, va) = tensor([batch, m, k]);
            let vb: Vec<f32> = values(batch * k * n).iter().map(|x| x * 0.5 - 0.25).collect();
            let b = Tensor::<Cpu, 3>::from_data(TensorData::new(vb.clone(), [batch, k, n]), &Default::default());
            let got = flat(a.matmul(b.clone()));
            let want = matmul_ref(&va, &vb, batch, true, m, k, n);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "matmul {batch}x{m}x{k}x{n}: element {i} is {g}, expected {w}");
            }
            // The left matrix broadcast over the batch.
            let (a1, va1) = tensor([1, m, k]);
            let got = flat(a1.matmul(b));
            let want = matmul_ref(&va1, &vb, batch, false, m, k, n);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "broadcast matmul {batch}x{m}x{k}x{n}: element {i} is {g}, expected {w}");
            }
        }
        let (a, va) = tensor([70, 90]);
        let (b, vb) = tensor([90, 50]);
        let got = flat(a.matmul(b));
        let want = matmul_ref(&va, &vb, 1, true, 70, 90, 50);
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert!((g - w).abs() <= 1e-4 * w.abs().max(1.0), "2-D matmul element {i} is {g}, expected {w}");
        }
        // An empty inner dimension gives zeros, not leftover memory.
        let z = Tensor::<Cpu, 3>::zeros([4, 30, 0], &Default::default()).matmul(Tensor::zeros([4, 0, 20], &Default::default()));
        assert!(flat(z).iter().all(|v| *v == 0.0), "k = 0 matmul returned a non-zero element");
    });
}

#[test]
fn large_zero_tensors_are_zero_after_heap_reuse() {
    pool().install(|| {
        // Free a large non-zero buffer first so the allocator hands the same memory back.
        for _ in 0..3 {
            let (x, _) = tensor([300, 400]);
            drop(flat(x * 7.0));
            let z = Tensor::<Cpu, 2>::zeros([300, 400], &Default::default());
            assert!(flat(z).iter().all(|v| *v == 0.0), "zeros() returned a non-zero element");
        }
    });
}
