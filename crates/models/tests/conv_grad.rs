//! Our burn-flex carries direct backward kernels for pointwise and depthwise convolutions
//! (vendor/burn-flex/src/ops/conv_backward.rs) and burn's generic path for every other shape.
//! Both must give the gradients of the convolution's definition: this test computes them with
//! plain loops in f64 and compares the output (fourteenth session: the stride-1 depthwise
//! forward has a direct kernel too) and the input, weight and bias gradients for each kind of
//! shape.
use burn::backend::Autodiff;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::Distribution;
use tinycats_models::Cpu;

mod common;
use common::{flat, max_rel_err, pool};

type Ad = Autodiff<Cpu>;

struct Case {
    name: &'static str,
    batch: usize,
    c_in: usize,
    c_out: usize,
    size: [usize; 2],
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
}

struct Grads {
    y: Vec<f64>,
    x: Vec<f64>,
    w: Vec<f64>,
    b: Vec<f64>,
}

fn out_size(c: &Case, d: usize) -> usize {
    (c.size[d] + 2 * c.padding[d] - c.dilation[d] * (c.kernel[d] - 1) - 1) / c.stride[d] + 1
}

/// y = conv(x, w, b) and the gradients of L = Σ y · r, straight from the definition of a
/// grouped convolution.
fn reference(c: &Case, x: &[f32], w: &[f32], b: &[f32], r: &[f32]) -> Grads {
    let [h, wd] = c.size;
    let [kh, kw] = c.kernel;
    let (oh_n, ow_n) = (out_size(c, 0), out_size(c, 1));
    let cin_g = c.c_in / c.groups;
    let cout_g = c.c_out / c.groups;
    let mut g = Grads { y: vec![0.0; r.len()], x: vec![0.0; x.len()], w: vec![0.0; w.len()], b: vec![0.0; c.c_out] };
    for n in 0..c.batch {
        for co in 0..c.c_out {
            let group = co / cout_g;
            for oh in 0..oh_n {
                for ow in 0..ow_n {
                    let yi = ((n * c.c_out + co) * oh_n + oh) * ow_n + ow;
                    let rv = r[yi] as f64;
                    g.b[co] += rv;
                    g.y[yi] += b[co] as f64;
                    for cl in 0..cin_g {
                        let ci = group * cin_g + cl;
                        for i in 0..kh {
                            for j in 0..kw {
                                let ih = (oh * c.stride[0] + i * c.dilation[0]) as isize - c.padding[0] as isize;
                                let iw = (ow * c.stride[1] + j * c.dilation[1]) as isize - c.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= wd as isize {
                                    continue;
                                }
                                let xi = ((n * c.c_in + ci) * h + ih as usize) * wd + iw as usize;
                                let wi = ((co * cin_g + cl) * kh + i) * kw + j;
                                g.y[yi] += x[xi] as f64 * w[wi] as f64;
                                g.w[wi] += rv * x[xi] as f64;
                                g.x[xi] += rv * w[wi] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    g
}

fn check(c: Case) {
    let device = Default::default();
    let conv: Conv2d<Ad> = Conv2dConfig::new([c.c_in, c.c_out], c.kernel)
        .with_stride(c.stride)
        .with_padding(PaddingConfig2d::Explicit(c.padding[0], c.padding[1], c.padding[0], c.padding[1]))
        .with_dilation(c.dilation)
        .with_groups(c.groups)
        .with_bias(true)
        .init(&device);
    // A non-zero bias so its gradient path runs with real numbers.
    let conv = Conv2d {
        bias: Some(Param::from_tensor(Tensor::random([c.c_out], Distribution::Normal(0.0, 1.0), &device))),
        ..conv
    };
    let x0 = Tensor::<Cpu, 4>::random([c.batch, c.c_in, c.size[0], c.size[1]], Distribution::Normal(0.0, 1.0), &device);
    let r = Tensor::<Cpu, 4>::random([c.batch, c.c_out, out_size(&c, 0), out_size(&c, 1)], Distribution::Normal(0.0, 1.0), &device);
    let x = Tensor::<Ad, 4>::from_inner(x0.clone()).require_grad();
    let y = conv.forward(x.clone());
    assert_eq!(y.dims(), r.dims(), "{}: output shape", c.name);
    let y_got = flat(y.clone().inner());
    let grads = (y * Tensor::from_inner(r.clone())).sum().backward();

    let bias = flat(conv.bias.as_ref().unwrap().val().inner());
    let want = reference(&c, &flat(x0), &flat(conv.weight.val().inner()), &bias, &flat(r));
    let gx = flat(x.grad(&grads).expect("x grad"));
    let gw = flat(conv.weight.val().grad(&grads).expect("weight grad"));
    let gb = conv.bias.as_ref().unwrap().val().grad(&grads).expect("bias grad").into_data().to_vec::<f32>().unwrap();
    for (what, err) in [("output", max_rel_err(&y_got, &want.y)), ("input gradient", max_rel_err(&gx, &want.x)), ("weight gradient", max_rel_err(&gw, &want.w)), ("bias gradient", max_rel_err(&gb, &want.b))] {
        assert!(err < 1e-5, "{}: {what} differs from the definition by {err:.2e} (relative to its largest entry)", c.name);
    }
}

fn base(name: &'static str) -> Case {
    Case { name, batch: 3, c_in: 6, c_out: 6, size: [7, 7], kernel: [1, 1], stride: [1, 1], padding: [0, 0], dilation: [1, 1], groups: 1 }
}

#[test]
fn pointwise_conv_gradients_match_the_definition() {
    // EfficientNet's expand/project/head convolutions (direct GEMM kernel).
    check(Case { c_in: 5, c_out: 9, size: [4, 6], ..base("pointwise 1x1") });
    // One image only: the batch split across workers must still cover it exactly once.
    check(Case { batch: 1, c_in: 8, c_out: 3, ..base("pointwise 1x1, batch 1") });
    // Large enough (75 K output elements) that the bias gradient splits its channels across
    // two threads.
    pool().install(|| check(Case { batch: 8, c_in: 64, c_out: 192, ..base("pointwise 1x1, threaded bias gradient") }));
}

#[test]
fn depthwise_conv_gradients_match_the_definition() {
    // EfficientNet's 5x5 and 3x3 depthwise convolutions: stride 1 (padded planes), stride 2 and
    // dilation 2 (direct loops).
    check(Case { kernel: [5, 5], padding: [2, 2], groups: 6, ..base("depthwise 5x5") });
    check(Case { kernel: [3, 3], padding: [1, 1], stride: [2, 2], size: [8, 7], groups: 6, ..base("depthwise 3x3 stride 2") });
    check(Case { kernel: [3, 3], padding: [2, 2], dilation: [2, 2], groups: 6, ..base("depthwise 3x3 dilation 2") });
    // Stride 1 runs the padded-plane kernels: no padding, a non-square plane, and enough planes
    // to split across two threads.
    check(Case { kernel: [3, 3], padding: [0, 0], size: [6, 9], groups: 6, ..base("depthwise 3x3 no padding") });
    // A non-square kernel with unequal padding: the tap offsets (i·wp + j) differ per axis.
    check(Case { kernel: [3, 5], padding: [1, 2], size: [5, 8], groups: 6, ..base("depthwise 3x5 padding 1x2") });
    pool().install(|| {
        check(Case { batch: 8, c_in: 64, c_out: 64, kernel: [3, 3], padding: [1, 1], groups: 64, ..base("depthwise 3x3, 512 planes, 2 threads") })
    });
}

#[test]
fn other_conv_gradients_match_the_definition() {
    // Shapes the direct kernels decline: burn's generic path (copied into our burn-flex).
    check(Case { c_in: 4, kernel: [3, 3], padding: [1, 1], ..base("3x3 dense") });
    check(Case { kernel: [3, 3], stride: [2, 2], padding: [1, 1], groups: 2, ..base("3x3 grouped stride 2") });
    check(Case { c_in: 3, c_out: 6, kernel: [3, 3], padding: [1, 1], groups: 3, ..base("depthwise multiplier 2") });
    check(Case { stride: [2, 2], ..base("1x1 stride 2") });
}
