//! Element-wise loops split across rayon threads (tinycats patch).
//!
//! Why: the release runs element-wise maps, zips and strided copies on the calling thread
//! unless a tensor has 4 M elements or more. A DiT or classifier training step is made of
//! thousands of such ops on 0.1–2 M element tensors, so on 2 cores one core sat idle for
//! about half of every step (`perf` on `tinycats bench dit-step`). These helpers split at a
//! much lower size; below it the loops run inline exactly as before.

use alloc::vec::Vec;
use core::mem::MaybeUninit;

#[cfg(feature = "rayon")]
use rayon::prelude::*;

/// Element count from which a loop is split across threads. At 64 Ki f32 (256 KiB) a
/// memory-bound pass takes tens of microseconds, well above rayon's few-microsecond fork cost.
pub(crate) const PAR_MIN_ELEMS: usize = 64 * 1024;

/// Elements per rayon task: large enough to amortise the task, small enough to balance.
const PAR_CHUNK: usize = 16 * 1024;

/// For work in whole units (rows, planes, blocks) of `unit` elements: the units per task, so
/// that a task holds about `PAR_CHUNK` elements and at least one unit.
pub(crate) fn units_per_task(unit: usize) -> usize {
    (PAR_CHUNK / unit.max(1)).max(1)
}

/// Whether a loop over `n` elements should be split (always false without rayon).
#[inline]
pub(crate) fn worth_splitting(n: usize) -> bool {
    cfg!(feature = "rayon") && n >= PAR_MIN_ELEMS && rayon_threads() > 1
}

#[inline]
fn rayon_threads() -> usize {
    #[cfg(feature = "rayon")]
    {
        rayon::current_num_threads()
    }
    #[cfg(not(feature = "rayon"))]
    {
        1
    }
}

/// `x[i] = f(x[i])` for every element.
pub(crate) fn map_inplace<E, F>(x: &mut [E], f: F)
where
    E: Copy + Send,
    F: Fn(E) -> E + Sync,
{
    #[cfg(feature = "rayon")]
    if worth_splitting(x.len()) {
        x.par_chunks_mut(PAR_CHUNK).for_each(|c| c.iter_mut().for_each(|v| *v = f(*v)));
        return;
    }
    x.iter_mut().for_each(|v| *v = f(*v));
}

/// `a[i] = f(a[i], b[i])` for every element; `b` is at least as long as `a`.
pub(crate) fn zip_inplace<E, F>(a: &mut [E], b: &[E], f: F)
where
    E: Copy + Send + Sync,
    F: Fn(E, E) -> E + Sync,
{
    let b = &b[..a.len()];
    #[cfg(feature = "rayon")]
    if worth_splitting(a.len()) {
        a.par_chunks_mut(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK)).for_each(|(ca, cb)| {
            ca.iter_mut().zip(cb).for_each(|(x, &y)| *x = f(*x, y))
        });
        return;
    }
    a.iter_mut().zip(b).for_each(|(x, &y)| *x = f(*x, y));
}

/// A new vector with `f(src[i])`.
pub(crate) fn map_collect<E, R, F>(src: &[E], f: F) -> Vec<R>
where
    E: Copy + Sync,
    R: Send,
    F: Fn(E) -> R + Sync,
{
    fill_new(src.len(), |start, out: &mut [MaybeUninit<R>]| {
        let src = &src[start..start + out.len()];
        for (o, &s) in out.iter_mut().zip(src) {
            o.write(f(s));
        }
    })
}

/// A new vector with `f(a[i], b[i])`; `a` and `b` have the same length.
pub(crate) fn zip_collect<E, R, F>(a: &[E], b: &[E], f: F) -> Vec<R>
where
    E: Copy + Sync,
    R: Send,
    F: Fn(E, E) -> R + Sync,
{
    debug_assert_eq!(a.len(), b.len());
    let n = a.len().min(b.len());
    fill_new(n, |start, out: &mut [MaybeUninit<R>]| {
        let end = start + out.len();
        for ((o, &x), &y) in out.iter_mut().zip(&a[start..end]).zip(&b[start..end]) {
            o.write(f(x, y));
        }
    })
}

/// A vector of `n` elements whose chunks are written by `fill(start, chunk)`, split across
/// threads when large. `fill` must write every element of the chunk it is given.
pub(crate) fn fill_new<R, F>(n: usize, fill: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &mut [MaybeUninit<R>]) + Sync,
{
    new_in_chunks(n, PAR_CHUNK_OR_ALL, fill)
}

/// `fill_new` for work in whole units of `unit` elements (rows, planes, blocks): every chunk
/// starts at a unit boundary and holds whole units (`units_per_task`).
pub(crate) fn fill_new_units<R, F>(n: usize, unit: usize, fill: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &mut [MaybeUninit<R>]) + Sync,
{
    new_in_chunks(n, units_per_task(unit) * unit, fill)
}

fn new_in_chunks<R, F>(n: usize, chunk: usize, fill: F) -> Vec<R>
where
    R: Send,
    F: Fn(usize, &mut [MaybeUninit<R>]) + Sync,
{
    let mut v: Vec<R> = Vec::with_capacity(n);
    let spare = &mut v.spare_capacity_mut()[..n];
    fill_chunks(spare, chunk, |start, c| fill(start, c));
    // SAFETY: `fill` initialised every element of every chunk, and the chunks cover 0..n.
    unsafe { v.set_len(n) };
    v
}

/// `n` zeros. Large buffers are zeroed by all threads: the heap reuses freed blocks, so a
/// large `calloc` is a single-threaded `memset`.
pub(crate) fn zeroed<W: bytemuck::Zeroable + Copy + Send>(n: usize) -> Vec<W> {
    if !worth_splitting(n) {
        return alloc::vec![W::zeroed(); n];
    }
    fill_new(n, |_, c: &mut [MaybeUninit<W>]| {
        c.iter_mut().for_each(|w| {
            w.write(W::zeroed());
        })
    })
}

/// Marker for `fill_chunks`: use the default chunk size.
const PAR_CHUNK_OR_ALL: usize = 0;

/// Calls `f(start, chunk)` over `dst` split into chunks of `chunk` elements (0 = default),
/// in parallel when large. `start` is the chunk's first index in `dst`.
pub(crate) fn fill_chunks<T, F>(dst: &mut [T], chunk: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    if worth_splitting(dst.len()) {
        split_chunks(dst, chunk, f);
    } else {
        f(0, dst);
    }
}

/// `fill_chunks` for callers that judged the work large themselves (e.g. few outputs, each
/// reading many inputs): always splits when there is more than one thread.
pub(crate) fn split_chunks<T, F>(dst: &mut [T], chunk: usize, f: F)
where
    T: Send,
    F: Fn(usize, &mut [T]) + Sync,
{
    #[cfg(feature = "rayon")]
    if rayon_threads() > 1 {
        let chunk = if chunk == 0 { PAR_CHUNK } else { chunk };
        dst.par_chunks_mut(chunk).enumerate().for_each(|(i, c)| f(i * chunk, c));
        return;
    }
    let _ = chunk;
    f(0, dst);
}

/// A vector of `n` elements that `write` fills in full through the pointer it is given: GEMM
/// outputs (read_dst = false), which were zeroed first only to be overwritten (memsets of
/// 2–5% of the classifier and DiT steps).
///
/// # Safety
/// `write` must initialise all `n` elements starting at the pointer.
pub(crate) unsafe fn written_by<T>(n: usize, write: impl FnOnce(*mut T)) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(n);
    write(v.as_mut_ptr());
    // SAFETY: the caller's `write` initialised elements 0..n.
    unsafe { v.set_len(n) };
    v
}

/// `f(p)` for each plane p of `l` values (per-plane sums and statistics), planes split across
/// threads when the tensor is large.
pub(crate) fn per_plane<T: Send + Copy + Default>(planes: usize, l: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let mut out = alloc::vec![T::default(); planes];
    let body = |start: usize, o: &mut [T]| {
        for (k, o) in o.iter_mut().enumerate() {
            *o = f(start + k);
        }
    };
    if worth_splitting(planes * l) {
        split_chunks(&mut out, units_per_task(l), body);
    } else {
        body(0, &mut out);
    }
    out
}

#[cfg(all(test, feature = "rayon"))]
mod tests {
    use super::*;

    fn big() -> Vec<f32> {
        (0..PAR_MIN_ELEMS * 3 + 17).map(|i| i as f32 * 0.5).collect()
    }

    #[test]
    fn helpers_match_sequential_loops() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            for src in [big(), vec![1.0, 2.0, 3.0]] {
                let other: Vec<f32> = src.iter().map(|x| x * 3.0 + 1.0).collect();
                let mut m = src.clone();
                map_inplace(&mut m, |x| x * 2.0);
                assert_eq!(m, src.iter().map(|x| x * 2.0).collect::<Vec<_>>());
                let mut z = src.clone();
                zip_inplace(&mut z, &other, |x, y| x - y);
                assert_eq!(z, src.iter().zip(&other).map(|(x, y)| x - y).collect::<Vec<_>>());
                assert_eq!(map_collect(&src, |x| x + 1.0), src.iter().map(|x| x + 1.0).collect::<Vec<_>>());
                assert_eq!(
                    zip_collect(&src, &other, |x, y| x * y),
                    src.iter().zip(&other).map(|(x, y)| x * y).collect::<Vec<_>>()
                );
            }
        });
    }
}
