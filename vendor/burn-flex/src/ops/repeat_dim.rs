//! Repeat a tensor along a dimension.

use alloc::vec::Vec;
use burn_std::{Bytes, Shape};

use crate::{FlexTensor, Layout};

/// Repeat `tensor` along `dim` by `times`.
pub fn repeat_dim(tensor: FlexTensor, dim: usize, times: usize) -> FlexTensor {
    if times == 1 {
        return tensor;
    }

    let ndims = tensor.layout().num_dims();
    assert!(
        dim < ndims,
        "repeat_dim: dim {} out of bounds for tensor with {} dimensions",
        dim,
        ndims
    );

    let tensor = tensor.to_contiguous();
    let shape = tensor.layout().shape().clone();
    let dtype = tensor.dtype();
    let elem_size = crate::tensor::dtype_size(dtype);

    let mut new_dims: Vec<usize> = shape.iter().cloned().collect();
    new_dims[dim] *= times;
    let new_shape = Shape::from(new_dims);

    let inner: usize = shape.iter().skip(dim + 1).product();
    let block = shape[dim] * inner; // elements copied `times` times per outer index
    let src: &[u8] = tensor.bytes();
    // tinycats patch: copy in words of the element size, split across threads. The release
    // built a `Vec<u8>`, which `Bytes` then copies once more to align it, on one thread.
    let bytes = match elem_size {
        8 => Bytes::from_elems(repeat_words::<u64>(bytemuck::cast_slice(src), block, times)),
        4 => Bytes::from_elems(repeat_words::<u32>(bytemuck::cast_slice(src), block, times)),
        2 => Bytes::from_elems(repeat_words::<u16>(bytemuck::cast_slice(src), block, times)),
        _ => Bytes::from_bytes_vec(repeat_words::<u8>(&src[..shape.num_elements() * elem_size], block * elem_size, times)),
    };
    FlexTensor::new(bytes, Layout::contiguous(new_shape), dtype)
}

/// `src` is a sequence of blocks of `block` words; each block is written `times` times in a
/// row. Tasks cover whole blocks, split across threads for large outputs.
fn repeat_words<W: bytemuck::Pod + Send + Sync>(src: &[W], block: usize, times: usize) -> Vec<W> {
    let n = src.len() * times;
    if n == 0 || block == 0 {
        return Vec::new();
    }
    crate::ops::par::fill_new_units(n, block, |start, dst: &mut [core::mem::MaybeUninit<W>]| {
        for (i, b) in dst.chunks_mut(block).enumerate() {
            let o = (start / block + i) / times;
            let s = &src[o * block..(o + 1) * block];
            // SAFETY: `b` has `block` slots and `s` is a bounds-checked slice of that length.
            unsafe { core::ptr::copy_nonoverlapping(s.as_ptr(), b.as_mut_ptr() as *mut W, block) };
        }
    })
}
