//! Direct f32 kernels for `linear` and its three gradients. tinycats addition
//! to burn-flex 0.21.0 (see vendor/README.md).
//!
//! burn-backend's default `linear` reshapes the weight to [1, .., K, N] and runs
//! a batched matmul: one small GEMM per leading index (M = tokens per image).
//! Its weight gradient is worse: one [K, N] product per leading index, written
//! out whole and then summed, so a batch of 32 writes and re-reads 32 weight-
//! sized buffers. A linear layer treats every leading index alike, so here the
//! leading dimensions fold into the GEMM's M: one [M, K] x [K, N] product each
//! for the output, the input gradient and the weight gradient, and one pass of
//! row sums for the bias gradient. Anything not f32 returns `None` and the
//! caller keeps the generic path.

use alloc::vec;
use alloc::vec::Vec;

use burn_backend::DType;

use crate::FlexTensor;
use crate::ops::conv_backward::f32_tensor;
use crate::ops::matmul::get_parallelism;

fn dims(t: &FlexTensor) -> Vec<usize> {
    let s = t.layout().shape();
    (0..s.num_dims()).map(|i| s[i]).collect()
}

fn all_f32(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

/// C[m, n] (= C + if `read_dst`) A · B, every matrix given by its column and
/// row strides, as gemm takes them.
///
/// SAFETY: the caller guarantees each pointer with its strides stays inside
/// its buffer for the given m, n, k.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_f32(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    read_dst: bool,
    lhs: *const f32,
    lhs_cs: isize,
    lhs_rs: isize,
    rhs: *const f32,
    rhs_cs: isize,
    rhs_rs: isize,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            read_dst,
            lhs,
            lhs_cs,
            lhs_rs,
            rhs,
            rhs_cs,
            rhs_rs,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            get_parallelism(m, n, k),
        );
    }
}

/// y[.., N] = x[.., K] · W[K, N] (+ b[N]).
pub(crate) fn linear_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> Option<FlexTensor> {
    let mut ts = vec![x, weight];
    ts.extend(bias);
    let xs = dims(x);
    let ws = dims(weight);
    if !all_f32(&ts) || xs.is_empty() || ws.len() != 2 || xs[xs.len() - 1] != ws[0] {
        return None;
    }
    let (k, n) = (ws[0], ws[1]);
    let m: usize = xs[..xs.len() - 1].iter().product();
    let x = x.to_contiguous();
    let w = weight.to_contiguous();
    let xd: &[f32] = x.storage();
    let wd: &[f32] = w.storage();

    // With a bias the output starts as the bias in every row and the GEMM adds onto it;
    // without one the GEMM writes every element (nothing to zero first unless k = 0).
    let out = match bias {
        Some(b) => {
            let b = b.to_contiguous();
            let bd: &[f32] = b.storage();
            if bd.len() != n {
                return None;
            }
            let mut out: Vec<f32> = if n == 0 {
                Vec::new()
            } else {
                crate::ops::par::fill_new_units(m * n, n, |_, rows: &mut [core::mem::MaybeUninit<f32>]| {
                    for r in rows.chunks_exact_mut(n) {
                        r.iter_mut().zip(bd).for_each(|(o, v)| {
                            o.write(*v);
                        });
                    }
                })
            };
            if m > 0 && n > 0 && k > 0 {
                // SAFETY: x is [m, k], w is [k, n] and out is [m, n], all row-major.
                unsafe { gemm_f32(m, n, k, out.as_mut_ptr(), true, xd.as_ptr(), 1, k as isize, wd.as_ptr(), 1, n as isize) };
            }
            out
        }
        None if m > 0 && n > 0 && k > 0 => {
            // SAFETY: as above; the GEMM writes all m·n outputs without reading them.
            unsafe {
                crate::ops::par::written_by(m * n, |o| gemm_f32(m, n, k, o, false, xd.as_ptr(), 1, k as isize, wd.as_ptr(), 1, n as isize))
            }
        }
        None => crate::ops::par::zeroed::<f32>(m * n),
    };
    let mut shape = xs;
    *shape.last_mut().unwrap() = n;
    Some(f32_tensor(out, &shape))
}

/// dx[.., K] = dy[.., N] · Wᵀ.
pub(crate) fn linear_x_backward_f32(
    weight: &FlexTensor,
    output_grad: &FlexTensor,
) -> Option<FlexTensor> {
    let ws = dims(weight);
    let gs = dims(output_grad);
    if !all_f32(&[weight, output_grad]) || gs.is_empty() || ws.len() != 2 || gs[gs.len() - 1] != ws[1] {
        return None;
    }
    let (k, n) = (ws[0], ws[1]);
    let m: usize = gs[..gs.len() - 1].iter().product();
    let w = weight.to_contiguous();
    let g = output_grad.to_contiguous();
    let wd: &[f32] = w.storage();
    let gd: &[f32] = g.storage();
    let out = if m > 0 && n > 0 && k > 0 {
        // SAFETY: g is [m, n]; rhs[r, c] = W[c, r] reads the [k, n] weight
        // transposed (column step n, row step 1); out is [m, k], all written, none read.
        unsafe {
            crate::ops::par::written_by(m * k, |o| gemm_f32(m, k, n, o, false, gd.as_ptr(), 1, n as isize, wd.as_ptr(), n as isize, 1))
        }
    } else {
        crate::ops::par::zeroed::<f32>(m * k)
    };
    let mut shape = gs;
    *shape.last_mut().unwrap() = k;
    Some(f32_tensor(out, &shape))
}

/// dW[K, N] = xᵀ · dy, summed over every leading index in the one GEMM.
pub(crate) fn linear_weight_backward_f32(
    x: &FlexTensor,
    output_grad: &FlexTensor,
) -> Option<FlexTensor> {
    let xs = dims(x);
    let gs = dims(output_grad);
    if !all_f32(&[x, output_grad]) || xs.is_empty() || xs.len() != gs.len() || xs[..xs.len() - 1] != gs[..gs.len() - 1] {
        return None;
    }
    let k = xs[xs.len() - 1];
    let n = gs[gs.len() - 1];
    let m: usize = xs[..xs.len() - 1].iter().product();
    let x = x.to_contiguous();
    let g = output_grad.to_contiguous();
    let xd: &[f32] = x.storage();
    let gd: &[f32] = g.storage();
    let mut out = vec![0f32; k * n];
    if m > 0 && n > 0 && k > 0 {
        // SAFETY: lhs[r, c] = X[c, r] reads the [m, k] input transposed
        // (column step k, row step 1); g is [m, n]; out is [k, n].
        unsafe {
            gemm_f32(k, n, m, out.as_mut_ptr(), false, xd.as_ptr(), k as isize, 1, gd.as_ptr(), 1, n as isize);
        }
    }
    Some(f32_tensor(out, &[k, n]))
}

/// db[N] = the sum of dy over every leading index.
pub(crate) fn linear_bias_backward_f32(output_grad: &FlexTensor) -> Option<FlexTensor> {
    let gs = dims(output_grad);
    if !all_f32(&[output_grad]) || gs.is_empty() {
        return None;
    }
    let n = gs[gs.len() - 1];
    let g = output_grad.to_contiguous();
    let gd: &[f32] = g.storage();
    let mut out = vec![0f32; n];
    if n > 0 {
        for row in gd.chunks_exact(n) {
            for (o, v) in out.iter_mut().zip(row) {
                *o += v;
            }
        }
    }
    Some(f32_tensor(out, &[n]))
}

// ----------------------------------------------------------------------------
// The generic paths, copied from burn-backend 0.21.0 (`ops/modules/linear.rs`,
// crate-private there), for dtypes the kernels above do not take.
// ----------------------------------------------------------------------------

pub(crate) mod generic {
    use alloc::vec;
    use burn_backend::TensorMetadata;
    use burn_backend::ops::FloatTensorOps;
    use burn_std::Shape;

    use crate::{Flex, FlexTensor};

    fn unsqueeze_leading(tensor: FlexTensor, target_ndims: usize) -> FlexTensor {
        let shape = tensor.shape();
        let ndims = shape.num_dims();
        if ndims >= target_ndims {
            return tensor;
        }
        let mut new_dims = vec![1usize; target_ndims - ndims];
        for i in 0..ndims {
            new_dims.push(shape[i]);
        }
        Flex::float_reshape(tensor, Shape::from(new_dims))
    }

    pub(crate) fn linear(x: FlexTensor, weight: FlexTensor, bias: Option<FlexTensor>) -> FlexTensor {
        let x_ndims = x.shape().num_dims();
        let weight = unsqueeze_leading(weight, x_ndims);
        let output = Flex::float_matmul(x, weight);
        match bias {
            Some(bias) => Flex::float_add(output, unsqueeze_leading(bias, x_ndims)),
            None => output,
        }
    }

    pub(crate) fn linear_x_backward(weight: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let weight = Flex::float_swap_dims(weight, 0, 1);
        let weight = unsqueeze_leading(weight, output_grad.shape().num_dims());
        Flex::float_matmul(output_grad, weight)
    }

    pub(crate) fn linear_weight_backward(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        let ndims = x.shape().num_dims();
        let x = Flex::float_swap_dims(x, ndims - 2, ndims - 1);
        let mut grad = Flex::float_matmul(x, output_grad);
        let ndims = grad.shape().num_dims();
        if ndims > 2 {
            for dim in 0..ndims - 2 {
                grad = Flex::float_sum_dim(grad, dim);
            }
            let shape = grad.shape();
            let (d0, d1) = (shape[ndims - 2], shape[ndims - 1]);
            Flex::float_reshape(grad, Shape::new([d0, d1]))
        } else {
            grad
        }
    }

    pub(crate) fn linear_bias_backward(output_grad: FlexTensor) -> FlexTensor {
        let ndims = output_grad.shape().num_dims();
        let mut grad = output_grad;
        for dim in 0..ndims - 1 {
            grad = Flex::float_sum_dim(grad, dim);
        }
        let d_output = grad.shape()[ndims - 1];
        Flex::float_reshape(grad, Shape::new([d_output]))
    }
}
