//! Model definitions, generic over the burn backend. They know nothing of files or HTTP:
//! weights come in as a name → tensor map (see `weights`), images as tensors.

pub mod autoencoder;
pub mod classifier;
pub mod cnn;
pub mod dit;
pub mod efficientnet;
pub mod norm;
pub mod weights;

/// The backend the CLI and tests compute on: burn-flex on the CPU. The name predates the GPU
/// build: with `--features cuda` (runs on a lent GPU) it is burn's CUDA backend instead, in fp32
/// (burn 0.21 has no autocast). Model code stays generic; only binaries pick this alias.
#[cfg(not(feature = "cuda"))]
pub type Cpu = burn::backend::Flex;
#[cfg(feature = "cuda")]
pub type Cpu = burn::backend::Cuda;
/// `Cpu` with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// What `Cpu` is, for logs and benchmark reports.
pub const BACKEND_NAME: &str = if cfg!(feature = "cuda") { "burn-cuda" } else { "burn-flex" };

/// Makes this thread's f32/f64 arithmetic treat subnormal numbers as zero (x86 MXCSR FTZ + DAZ).
///
/// Why: as a DiT trains, attention sharpens and many softmax outputs fall below f32's smallest
/// normal (1.2e-38). Every GEMM that reads or produces such values then takes a microcode assist
/// per element on x86, and the patch-4 training step slowed from 0.88 to 1.2 s/step over a run
/// (`perf`: the GEMM kernel went from 47% to 61% of the samples for the same work). Values that
/// small change no result we measure. Call it on every thread that does tensor math; the CLI does
/// so for rayon's pool and the main thread. A no-op on other architectures.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: only sets the FTZ (bit 15) and DAZ (bit 6) mode bits of this thread's MXCSR.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

/// Keeps freed tensor buffers in the process heap instead of handing them back to the kernel.
///
/// Why: glibc's malloc serves large blocks with a fresh `mmap` and unmaps them on free (from
/// 128 KiB; its threshold only grows as such blocks are freed). A training step allocates and frees
/// hundreds of 1–16 MB activations, so each one came back as zeroed pages, one page fault per
/// 4 KiB: `perf` showed 5–8% of the classifier step in the kernel's page-fault and page-clear
/// paths. With blocks up to 32 MiB (mallopt's maximum) taken from the heap, a 1 GiB trim
/// threshold and 256 MiB of top padding, the step reuses warm memory: classifier tail
/// 481–505 → 576–597 images/s (BatchNorm) and 530–578 → 613–624 (frozen BN) on the 2-vCPU dev
/// machine (docs/RESULTS.md). The price is that the peak heap stays mapped until exit, which
/// a training or serving process reaches again anyway. Call it once, before threads start.
/// Returns whether every setting was accepted; a no-op (false) off glibc.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1
                && libc::mallopt(libc::M_TOP_PAD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    #[test]
    fn flush_denormals_turns_subnormal_results_into_zero() {
        use std::hint::black_box;
        // Each test runs on its own thread, so the mode set here does not leak into other tests.
        let tiny = black_box(f32::MIN_POSITIVE);
        assert!(black_box(tiny) * black_box(0.5f32) > 0.0, "IEEE default keeps subnormals");
        super::flush_denormals();
        assert_eq!(black_box(tiny) * black_box(0.5f32), 0.0, "FTZ flushes a subnormal product");
        let sub = f32::from_bits(1); // the smallest subnormal, as an input (DAZ)
        assert_eq!(black_box(sub) * black_box(2.0f32), 0.0, "DAZ reads a subnormal input as zero");
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn keep_freed_memory_is_accepted_by_glibc() {
        // mallopt returns 0 for a value out of range (e.g. an mmap threshold above 32 MiB).
        assert!(super::keep_freed_memory(), "glibc refused a malloc setting");
    }
}
