//! Direct f32 backward kernels for the two convolution shapes of an
//! inverted-residual (MobileNet / EfficientNet) block: pointwise (1x1) and
//! depthwise. tinycats addition to burn-flex 0.21.0 (see vendor/README.md).
//!
//! burn-backend's generic `conv2d_weight_backward` swaps the batch and channel
//! axes and runs a forward convolution whose "images" are input channels. For
//! a 1x1 conv that is one skinny GEMM per input channel, each re-packing the
//! whole gradient; for a depthwise conv it loops over every group with a
//! slice, a convolution and a slice-assign. Here the 1x1 weight gradient is
//! one accumulated GEMM over the batch (K = height x width per image) and the
//! depthwise gradients are plain loops over each (image, channel) plane.
//! Anything else (other dtypes, groups, kernel shapes) returns `None` and the
//! caller keeps the generic path.

use alloc::vec;
use alloc::vec::Vec;
use core::mem::MaybeUninit;

use burn_backend::DType;
use burn_backend::ops::ConvOptions;
use burn_std::{Bytes, Shape};

use crate::ops::conv::valid_out_range;
use crate::ops::norm_backward::{dot8, sum_map};
use crate::ops::par::{split_chunks, units_per_task};
use crate::{FlexTensor, Layout};

fn dims4(t: &FlexTensor) -> [usize; 4] {
    let s = t.layout().shape();
    [s[0], s[1], s[2], s[3]]
}

/// A contiguous f32 tensor owning `data` (shared with the linear kernels).
pub(crate) fn f32_tensor(data: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::new(
        Bytes::from_elems(data),
        Layout::contiguous(Shape::from(shape.to_vec())),
        DType::F32,
    )
}

fn is_pointwise(w: [usize; 4], options: &ConvOptions<2>) -> bool {
    options.groups == 1
        && w[2] == 1
        && w[3] == 1
        && options.stride == [1, 1]
        && options.padding == [0, 0]
        && options.dilation == [1, 1]
}

fn is_depthwise(x: [usize; 4], w: [usize; 4], options: &ConvOptions<2>) -> bool {
    options.groups == x[1] && w[0] == x[1] && w[1] == 1
}

/// Weight gradient of a 2-D convolution, when the shape has a direct kernel.
pub(crate) fn conv2d_weight_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if x.dtype() != DType::F32 || output_grad.dtype() != DType::F32 {
        return None;
    }
    let (xs, ws, gs) = (dims4(x), dims4(weight), dims4(output_grad));
    if is_pointwise(ws, options) {
        return Some(pointwise_weight_grad(x, output_grad, xs, gs));
    }
    if is_depthwise(xs, ws, options) {
        return Some(depthwise_weight_grad(x, output_grad, xs, ws, gs, options));
    }
    None
}

/// Input gradient of a 2-D convolution, when the shape has a direct kernel.
pub(crate) fn conv2d_x_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if x.dtype() != DType::F32 || output_grad.dtype() != DType::F32 || weight.dtype() != DType::F32
    {
        return None;
    }
    let (xs, ws, gs) = (dims4(x), dims4(weight), dims4(output_grad));
    if is_pointwise(ws, options) {
        return Some(pointwise_x_grad(weight, output_grad, xs, gs));
    }
    if is_depthwise(xs, ws, options) {
        return Some(depthwise_x_grad(weight, output_grad, xs, ws, gs, options));
    }
    None
}

/// dX_b[ci, :] = sum over co of W[co, ci] · G_b[co, :], one GEMM per image, images split
/// across threads (ninth session). burn's generic path runs a transposed convolution whose
/// im2col-style bookkeeping stayed on one thread: 10% of the classifier step.
fn pointwise_x_grad(weight: &FlexTensor, output_grad: &FlexTensor, xs: [usize; 4], gs: [usize; 4]) -> FlexTensor {
    let w = weight.to_contiguous();
    let g = output_grad.to_contiguous();
    let wd: &[f32] = w.storage();
    let gd: &[f32] = g.storage();
    let (batch, ci, co) = (xs[0], xs[1], gs[1]);
    let spatial = xs[2] * xs[3];
    let image = ci * spatial;
    // Not zeroed first: each GEMM overwrites its image's block (read_dst = false).
    let mut out: Vec<f32> = Vec::with_capacity(batch * image);
    let one = |b: usize, dst: &mut [MaybeUninit<f32>]| {
        // SAFETY: lhs[i = c_in, k = c_out] = W[c_out, c_in] reads the [co, ci] weight (column
        // step ci, row step 1); rhs is image b's [co, spatial] gradient; dst is [ci, spatial],
        // written without being read.
        unsafe {
            gemm::gemm(
                ci,
                spatial,
                co,
                dst.as_mut_ptr().cast::<f32>(),
                1,
                spatial as isize,
                false,
                wd.as_ptr(),
                ci as isize,
                1,
                gd.as_ptr().add(b * co * spatial),
                1,
                spatial as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                gemm::Parallelism::None,
            );
        }
    };
    if image > 0 {
        split_chunks(&mut out.spare_capacity_mut()[..batch * image], image, |start, dst| one(start / image, dst));
    }
    // SAFETY: the GEMMs above wrote all `batch` images (nothing to write when `image` is 0).
    unsafe { out.set_len(batch * image) };
    f32_tensor(out, &[batch, ci, xs[2], xs[3]])
}

/// Bias gradient: the per-channel sum of the output gradient, read in place.
pub(crate) fn conv2d_bias_backward_f32(output_grad: &FlexTensor) -> Option<FlexTensor> {
    if output_grad.dtype() != DType::F32 {
        return None;
    }
    let [n, c, h, w] = dims4(output_grad);
    let g = output_grad.to_contiguous();
    let gd: &[f32] = g.storage();
    let plane = h * w;
    // Each (image, channel) plane summed with eight partial sums (one running sum is a serial
    // chain of adds), planes split across threads; then the images added per channel.
    let sums = crate::ops::par::per_plane(n * c, plane, |p| sum_map(&gd[p * plane..(p + 1) * plane], |v| v));
    let mut out = vec![0f32; c];
    for img in sums.chunks_exact(c.max(1)) {
        out.iter_mut().zip(img).for_each(|(o, s)| *o += s);
    }
    Some(FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(Shape::from(vec![c])),
        DType::F32,
    ))
}

/// dW[co, ci] = sum over images b of G_b[co, :] · X_b[ci, :] (each [C, H·W]).
/// Each worker accumulates a run of images into its own buffer with gemm's
/// read-dst mode; the buffers are summed at the end.
fn pointwise_weight_grad(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    xs: [usize; 4],
    gs: [usize; 4],
) -> FlexTensor {
    let x = x.to_contiguous();
    let g = output_grad.to_contiguous();
    let xd: &[f32] = x.storage();
    let gd: &[f32] = g.storage();
    let (batch, ci, co) = (xs[0], xs[1], gs[1]);
    let spatial = xs[2] * xs[3];
    let size = co * ci;

    let accumulate = |images: core::ops::Range<usize>| -> Vec<f32> {
        let mut dst = vec![0f32; size];
        for (i, b) in images.enumerate() {
            // SAFETY: the pointers cover [co, spatial] and [ci, spatial] blocks of
            // contiguous buffers and dst is [co, ci]; the strides below stay inside.
            unsafe {
                gemm::gemm(
                    co,
                    ci,
                    spatial,
                    dst.as_mut_ptr(),
                    1,
                    ci as isize,
                    i > 0, // accumulate after the first image
                    gd.as_ptr().add(b * co * spatial),
                    1,
                    spatial as isize,
                    xd.as_ptr().add(b * ci * spatial),
                    spatial as isize, // rhs[k = p, n = c] = X[c, p]
                    1,
                    1.0f32,
                    1.0f32,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
        dst
    };

    #[cfg(feature = "rayon")]
    let dst = {
        use rayon::prelude::*;
        let workers = rayon::current_num_threads().clamp(1, batch.max(1));
        let per = batch.div_ceil(workers);
        let parts: Vec<Vec<f32>> = (0..workers)
            .into_par_iter()
            .map(|w| accumulate(w * per..((w + 1) * per).min(batch)))
            .collect();
        let mut parts = parts.into_iter();
        let mut dst = parts.next().unwrap_or_else(|| vec![0f32; size]);
        for p in parts {
            for (d, v) in dst.iter_mut().zip(p) {
                *d += v;
            }
        }
        dst
    };
    #[cfg(not(feature = "rayon"))]
    let dst = accumulate(0..batch);

    f32_tensor(dst, &[co, ci, 1, 1])
}

/// Shapes and the valid output range of every kernel tap of a depthwise convolution, shared by
/// its two gradient kernels.
struct Depthwise {
    batch: usize,
    channels: usize,
    in_h: usize,
    in_w: usize,
    kh: usize,
    kw: usize,
    out_h: usize,
    out_w: usize,
    /// For kernel row i: the output rows whose input row is inside the image.
    rows: Vec<(usize, usize)>,
    /// For kernel column j: the output columns whose input column is inside the image.
    cols: Vec<(usize, usize)>,
}

impl Depthwise {
    fn new(xs: [usize; 4], ws: [usize; 4], gs: [usize; 4], options: &ConvOptions<2>) -> Self {
        let [batch, channels, in_h, in_w] = xs;
        let [_, _, kh, kw] = ws;
        let [_, _, out_h, out_w] = gs;
        let (s, p, d) = (options.stride, options.padding, options.dilation);
        let rows = (0..kh).map(|i| valid_out_range(i, d[0], p[0], s[0], in_h, out_h)).collect();
        let cols = (0..kw).map(|j| valid_out_range(j, d[1], p[1], s[1], in_w, out_w)).collect();
        Self { batch, channels, in_h, in_w, kh, kw, out_h, out_w, rows, cols }
    }
}

/// Zero-padded planes for stride-1, dilation-1 depthwise gradients (the classifier's MBConv
/// blocks at 7×7). Why: the direct loops over valid output ranges run rows of 5–7 elements, too
/// short to vectorise, and were ~20% of the classifier step. With the input padded to
/// `hp × wp` and the gradient laid out `wp` wide (zeros past `out_w`), every kernel tap is one
/// contiguous dot product (weight gradient) or contiguous run of a tap sum (forward and input
/// gradient, `tap_sums`): the zero columns cancel the terms that would wrap into the next row.
struct Padded {
    in_w: usize,
    out_w: usize,
    ph: usize,
    pw: usize,
    wp: usize,
    /// `out_h · wp`: the length of every tap's dot product and of the forward's tap sums.
    len: usize,
    /// `hp · wp` plus `kw` of slack, so the last tap's slice stays in bounds.
    size: usize,
}

impl Padded {
    fn new(xs: [usize; 4], ws: [usize; 4], gs: [usize; 4], options: &ConvOptions<2>) -> Option<Self> {
        let [_, _, in_h, in_w] = xs;
        let [_, _, kh, kw] = ws;
        let [_, _, out_h, out_w] = gs;
        let [ph, pw] = options.padding;
        let ok = kh > 0
            && kw > 0
            && options.stride == [1, 1]
            && options.dilation == [1, 1]
            && out_h + kh == in_h + 2 * ph + 1
            && out_w + kw == in_w + 2 * pw + 1;
        if !ok {
            return None;
        }
        let (hp, wp) = (in_h + 2 * ph, in_w + 2 * pw);
        Some(Self { in_w, out_w, ph, pw, wp, len: out_h * wp, size: hp * wp + kw })
    }

    fn buffer(&self) -> Vec<f32> {
        vec![0f32; self.size]
    }

    /// The input plane into the interior of a zeroed `hp × wp` buffer (borders stay zero).
    fn fill_x(&self, buf: &mut [f32], x: &[f32]) {
        for (ih, row) in x.chunks_exact(self.in_w).enumerate() {
            buf[(ih + self.ph) * self.wp + self.pw..][..self.in_w].copy_from_slice(row);
        }
    }

    /// The output-gradient plane as `out_h` rows of `wp`, zeros past `out_w`.
    fn fill_g(&self, buf: &mut [f32], g: &[f32]) {
        for (oh, row) in g.chunks_exact(self.out_w).enumerate() {
            let dst = &mut buf[oh * self.wp..][..self.wp];
            dst[..self.out_w].copy_from_slice(row);
            dst[self.out_w..].fill(0.0);
        }
    }
}

/// Lanes per register block in `tap_sums`.
const LANES: usize = 16;

/// `out[t] = init + Σ over taps (i, j) of w[i·kw + j] · src[base + t ± (i·wp + j)]` for t in
/// whole `LANES` blocks of `out` (+ when `forward`, − otherwise), taps in (i, j) order.
/// Without `forward`, `base` must be at least the largest step; `src` must extend `LANES` past
/// the last read. Why: the sum over taps of one block of 16 outputs stays in registers; the
/// per-tap axpy it replaces loaded and stored the whole accumulator once per tap (fifteenth
/// session). The addition order per output is the per-tap loop's, so results are unchanged.
#[inline(always)]
fn tap_sums(out: &mut [f32], src: &[f32], base: usize, forward: bool, w: &[f32], kw: usize, wp: usize, init: f32) {
    // Whole blocks only: the fixed-size store compiles to vector moves (a call to memcpy per
    // block otherwise); `out` has room for the last block's extra lanes.
    let n = out.len() / LANES * LANES;
    let mut t0 = 0;
    while t0 < n {
        let mut a = [init; LANES];
        for (i, wrow) in w.chunks_exact(kw).enumerate() {
            let row = if forward { base + t0 + i * wp } else { base + t0 - i * wp };
            for (j, &wv) in wrow.iter().enumerate() {
                let at = if forward { row + j } else { row - j };
                let xs: &[f32; LANES] = src[at..at + LANES].try_into().expect("LANES-long slice");
                for l in 0..LANES {
                    a[l] += xs[l] * wv;
                }
            }
        }
        let o: &mut [f32; LANES] = (&mut out[t0..t0 + LANES]).try_into().expect("LANES-long slice");
        *o = a;
        t0 += LANES;
    }
}

/// Forward depthwise convolution at stride 1 (tinycats, fourteenth session), f32:
/// Y[b, c, oh, ow] = bias[c] + sum over i, j of W[c, i, j] · X[b, c, oh + i·d − p, ow + j·d − p]
/// with d = 1. Each input plane is copied into a zero-padded `hp × wp` buffer, so every kernel
/// tap reads one contiguous run of `out_h · wp` elements (the columns past `out_w` are computed
/// and dropped), summed in registers by `tap_sums` as in `depthwise_x_grad`. The release's
/// forward walked each 7-element output row per tap and split the 73,728 planes of the
/// classifier's block 15 one by one across threads: about 10% of its frozen-BN training step. Returns `None` for shapes
/// this does not take (other dtypes, strides, dilations).
pub(crate) fn depthwise_forward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    options: &ConvOptions<2>,
) -> Option<FlexTensor> {
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 || bias.is_some_and(|b| b.dtype() != DType::F32) {
        return None;
    }
    let (xs, ws) = (dims4(x), dims4(weight));
    if !is_depthwise(xs, ws, options) || options.stride != [1, 1] || options.dilation != [1, 1] {
        return None;
    }
    let [batch, channels, in_h, in_w] = xs;
    let [_, _, kh, kw] = ws;
    let [ph, pw] = options.padding;
    let (out_h, out_w) = ((in_h + 2 * ph + 1).checked_sub(kh)?, (in_w + 2 * pw + 1).checked_sub(kw)?);
    if out_h == 0 || out_w == 0 {
        return None;
    }
    let gs = [batch, channels, out_h, out_w];
    let pad = Padded::new(xs, ws, gs, options)?;
    let x = x.to_contiguous();
    let w = weight.to_contiguous();
    let b = bias.map(|b| b.to_contiguous());
    let (xd, wd): (&[f32], &[f32]) = (x.storage(), w.storage());
    let bd: Option<&[f32]> = b.as_ref().map(|b| b.storage());
    if bd.is_some_and(|b| b.len() != channels) {
        return None;
    }
    let plane = out_h * out_w;
    let mut out = vec![0f32; batch * channels * plane];
    // One task: consecutive planes, sharing two scratch buffers.
    let planes = |first: usize, dst: &mut [f32]| {
        // `LANES` of slack: `tap_sums` reads whole blocks past the last tap's end.
        let (mut xp, mut acc) = (vec![0f32; pad.size + LANES], vec![0f32; pad.len.next_multiple_of(LANES)]);
        for (k, yplane) in dst.chunks_exact_mut(plane).enumerate() {
            let bc = first + k;
            let c = bc % channels;
            let wk = &wd[c * kh * kw..][..kh * kw];
            pad.fill_x(&mut xp, &xd[bc * in_h * in_w..][..in_h * in_w]);
            tap_sums(&mut acc, &xp, 0, true, wk, kw, pad.wp, bd.map_or(0.0, |b| b[c]));
            for (oh, row) in yplane.chunks_exact_mut(out_w).enumerate() {
                row.copy_from_slice(&acc[oh * pad.wp..][..out_w]);
            }
        }
    };
    split_chunks(&mut out, units_per_task(plane) * plane, |start, dst| planes(start / plane, dst));
    Some(f32_tensor(out, &gs))
}

/// dW[c, i, j] = sum over b, oh, ow of G[b, c, oh, ow] · X[b, c, oh·s + i·d − p, ow·s + j·d − p].
fn depthwise_weight_grad(
    x: &FlexTensor,
    output_grad: &FlexTensor,
    xs: [usize; 4],
    ws: [usize; 4],
    gs: [usize; 4],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let x = x.to_contiguous();
    let g = output_grad.to_contiguous();
    let xd: &[f32] = x.storage();
    let gd: &[f32] = g.storage();
    let Depthwise { batch, channels, in_h, in_w, kh, kw, out_h, out_w, rows, cols } =
        Depthwise::new(xs, ws, gs, options);
    let ([sh, sw], [ph, pw], [dh, dw]) = (options.stride, options.padding, options.dilation);

    if let Some(pad) = Padded::new(xs, ws, gs, options) {
        let mut out = vec![0f32; channels * kh * kw];
        let channel = |c: usize, wk: &mut [f32]| {
            let (mut xp, mut gp) = (pad.buffer(), pad.buffer());
            for b in 0..batch {
                let plane = b * channels + c;
                pad.fill_x(&mut xp, &xd[plane * in_h * in_w..][..in_h * in_w]);
                pad.fill_g(&mut gp, &gd[plane * out_h * out_w..][..out_h * out_w]);
                let g = &gp[..pad.len];
                for i in 0..kh {
                    for j in 0..kw {
                        wk[i * kw + j] += dot8(g, &xp[i * pad.wp + j..][..pad.len]);
                    }
                }
            }
        };
        // One task per channel: each reads all its planes. Without threads, one call gets all.
        let taps = kh * kw;
        split_chunks(&mut out, taps, |start, wks| {
            for (k, wk) in wks.chunks_exact_mut(taps).enumerate() {
                channel(start / taps + k, wk);
            }
        });
        return f32_tensor(out, &[channels, 1, kh, kw]);
    }

    let channel = |c: usize, wk: &mut [f32]| {
        for b in 0..batch {
            let xp = &xd[(b * channels + c) * in_h * in_w..][..in_h * in_w];
            let gp = &gd[(b * channels + c) * out_h * out_w..][..out_h * out_w];
            for i in 0..kh {
                let (r0, r1) = rows[i];
                for j in 0..kw {
                    let (c0, c1) = cols[j];
                    let mut acc = 0f32;
                    for oh in r0..r1 {
                        let ih = oh * sh + i * dh - ph;
                        let grow = &gp[oh * out_w..][..out_w];
                        let xrow = &xp[ih * in_w..][..in_w];
                        if sw == 1 {
                            let x0 = c0 + j * dw - pw;
                            acc += grow[c0..c1]
                                .iter()
                                .zip(&xrow[x0..x0 + (c1 - c0)])
                                .map(|(a, b)| a * b)
                                .sum::<f32>();
                        } else {
                            for ow in c0..c1 {
                                acc += grow[ow] * xrow[ow * sw + j * dw - pw];
                            }
                        }
                    }
                    wk[i * kw + j] += acc;
                }
            }
        }
    };

    let mut out = vec![0f32; channels * kh * kw];
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(kh * kw)
            .enumerate()
            .for_each(|(c, wk)| channel(c, wk));
    }
    #[cfg(not(feature = "rayon"))]
    for (c, wk) in out.chunks_mut(kh * kw).enumerate() {
        channel(c, wk);
    }
    f32_tensor(out, &[channels, 1, kh, kw])
}

/// dX[b, c, ih, iw] = sum of G[b, c, oh, ow] · W[c, i, j] over the taps that read (ih, iw).
fn depthwise_x_grad(
    weight: &FlexTensor,
    output_grad: &FlexTensor,
    xs: [usize; 4],
    ws: [usize; 4],
    gs: [usize; 4],
    options: &ConvOptions<2>,
) -> FlexTensor {
    let w = weight.to_contiguous();
    let g = output_grad.to_contiguous();
    let wd: &[f32] = w.storage();
    let gd: &[f32] = g.storage();
    let Depthwise { batch, channels, in_h, in_w, kh, kw, out_h, out_w, rows, cols } =
        Depthwise::new(xs, ws, gs, options);
    let ([sh, sw], [ph, pw], [dh, dw]) = (options.stride, options.padding, options.dilation);

    if let Some(pad) = Padded::new(xs, ws, gs, options) {
        let mut out = vec![0f32; batch * channels * in_h * in_w];
        // Gather form: padded dX[u] = Σ over taps of W[i, j] · G[u − (i·wp + j)], with G laid
        // out `wp` wide after `front` zeros, so every tap reads one contiguous run (see
        // `tap_sums`). Only the interior rows are computed: u from `u0` over `in_h · wp`.
        let front = (kh - 1) * pad.wp + (kw - 1);
        let u0 = ph * pad.wp + pw;
        let span = in_h * pad.wp;
        // One task: consecutive planes, sharing two scratch buffers.
        let planes = |first: usize, dst: &mut [f32]| {
            let mut gp = vec![0f32; front + u0 + span + LANES];
            let mut dx = vec![0f32; span.next_multiple_of(LANES)];
            for (k, xplane) in dst.chunks_exact_mut(in_h * in_w).enumerate() {
                let bc = first + k;
                let wk = &wd[(bc % channels) * kh * kw..][..kh * kw];
                // Rows at `front`; the columns past `out_w` and everything else stay zero.
                for (oh, row) in gd[bc * out_h * out_w..][..out_h * out_w].chunks_exact(out_w).enumerate() {
                    gp[front + oh * pad.wp..][..out_w].copy_from_slice(row);
                }
                tap_sums(&mut dx, &gp, front + u0, false, wk, kw, pad.wp, 0.0);
                for (ih, row) in xplane.chunks_exact_mut(in_w).enumerate() {
                    row.copy_from_slice(&dx[ih * pad.wp..][..in_w]);
                }
            }
        };
        let plane = in_h * in_w;
        split_chunks(&mut out, units_per_task(plane) * plane, |start, dst| planes(start / plane, dst));
        return f32_tensor(out, &xs);
    }

    let plane = |bc: usize, xp: &mut [f32]| {
        let c = bc % channels;
        let gp = &gd[bc * out_h * out_w..][..out_h * out_w];
        let wk = &wd[c * kh * kw..][..kh * kw];
        for i in 0..kh {
            let (r0, r1) = rows[i];
            for j in 0..kw {
                let (c0, c1) = cols[j];
                let wv = wk[i * kw + j];
                for oh in r0..r1 {
                    let ih = oh * sh + i * dh - ph;
                    let grow = &gp[oh * out_w..][..out_w];
                    let xrow = &mut xp[ih * in_w..][..in_w];
                    if sw == 1 {
                        let x0 = c0 + j * dw - pw;
                        for (xv, gv) in xrow[x0..x0 + (c1 - c0)].iter_mut().zip(&grow[c0..c1]) {
                            *xv += gv * wv;
                        }
                    } else {
                        for ow in c0..c1 {
                            xrow[ow * sw + j * dw - pw] += grow[ow] * wv;
                        }
                    }
                }
            }
        }
    };

    let mut out = vec![0f32; batch * channels * in_h * in_w];
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(in_h * in_w)
            .enumerate()
            .for_each(|(bc, xp)| plane(bc, xp));
    }
    #[cfg(not(feature = "rayon"))]
    for (bc, xp) in out.chunks_mut(in_h * in_w).enumerate() {
        plane(bc, xp);
    }
    f32_tensor(out, &xs)
}

// ----------------------------------------------------------------------------
// The generic paths, copied from burn-backend 0.21.0 (`ops/modules/conv.rs`,
// crate-private there), for every shape the direct kernels above do not take.
// ----------------------------------------------------------------------------

pub(crate) mod generic {
    use burn_backend::TensorMetadata;
    use burn_backend::ops::conv::calculate_padding_out;
    use burn_backend::ops::{ConvOptions, ConvTransposeOptions, FloatTensorOps, ModuleOps};
    use burn_std::{Shape, Slice};

    use crate::{Flex, FlexTensor};

    pub(crate) fn conv2d_x_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let [_, _, height_in, width_in] = x.shape().dims();
        let [_, _, height_out, width_out] = output_grad.shape().dims();
        let [_, _, k1, k2] = weight.shape().dims();
        let pad_1 = calculate_padding_out(
            k1,
            options.stride[0],
            options.padding[0],
            options.dilation[0],
            height_in,
            height_out,
        );
        let pad_2 = calculate_padding_out(
            k2,
            options.stride[1],
            options.padding[1],
            options.dilation[1],
            width_in,
            width_out,
        );
        Flex::conv_transpose2d(
            output_grad,
            weight,
            None,
            ConvTransposeOptions::new(
                options.stride,
                options.padding,
                [pad_1, pad_2],
                options.dilation,
                options.groups,
            ),
        )
    }

    pub(crate) fn conv2d_weight_backward(
        x: FlexTensor,
        weight: FlexTensor,
        output_grad: FlexTensor,
        options: ConvOptions<2>,
    ) -> FlexTensor {
        let weight_shape = weight.shape();
        if options.groups == 1 {
            let x_swapped = Flex::float_swap_dims(x, 0, 1);
            let grad_swapped = Flex::float_swap_dims(output_grad, 0, 1);
            let swapped = Flex::conv2d(
                x_swapped,
                grad_swapped,
                None,
                ConvOptions::new(options.dilation, options.padding, options.stride, 1),
            );
            let mut weight_grad = Flex::float_swap_dims(swapped, 0, 1);
            if weight_grad.shape() != weight_shape {
                let slices: alloc::vec::Vec<Slice> =
                    (0..4).map(|d| Slice::from(0..weight_shape[d])).collect();
                weight_grad = Flex::float_slice(weight_grad, &slices);
            }
            return weight_grad;
        }
        let [channels_out, increment_ci, k1, k2] = weight_shape.dims();
        let increment_co = channels_out / options.groups;
        let mut weight_grad =
            Flex::float_zeros(weight_shape, &Default::default(), weight.dtype().into());
        let x_swapped = Flex::float_swap_dims(x, 0, 1);
        let grad_swapped = Flex::float_swap_dims(output_grad, 0, 1);
        for g in 0..options.groups {
            let xg = Flex::float_slice(
                x_swapped.clone(),
                &[Slice::from(g * increment_ci..(g + 1) * increment_ci)],
            );
            let gg = Flex::float_slice(
                grad_swapped.clone(),
                &[Slice::from(g * increment_co..(g + 1) * increment_co)],
            );
            let mut tmp = Flex::conv2d(
                xg,
                gg,
                None,
                ConvOptions::new(options.dilation, options.padding, options.stride, 1),
            );
            tmp = Flex::float_swap_dims(tmp, 0, 1);
            let [_, _, t1, t2] = tmp.shape().dims();
            if t1 != k1 || t2 != k2 {
                tmp = Flex::float_slice(
                    tmp,
                    &[
                        Slice::from(0..increment_co),
                        Slice::from(0..increment_ci),
                        Slice::from(0..k1),
                        Slice::from(0..k2),
                    ],
                );
            }
            weight_grad = Flex::float_slice_assign(
                weight_grad,
                &[
                    Slice::from(g * increment_co..(g + 1) * increment_co),
                    Slice::from(0..increment_ci),
                    Slice::from(0..k1),
                    Slice::from(0..k2),
                ],
                tmp,
            );
        }
        weight_grad
    }

    pub(crate) fn conv2d_bias_backward(
        x: FlexTensor,
        bias: FlexTensor,
        output_grad: FlexTensor,
    ) -> FlexTensor {
        let [batch_size, _, _, _] = x.shape().dims();
        let [_, channels_out, height_out, width_out] = output_grad.shape().dims();
        let grad = Flex::float_swap_dims(output_grad, 0, 1);
        let grad = Flex::float_reshape(
            grad,
            Shape::new([channels_out, batch_size * height_out * width_out]),
        );
        let grad = Flex::float_sum_dim(grad, 1);
        Flex::float_reshape(grad, bias.shape())
    }
}
