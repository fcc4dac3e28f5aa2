//! Model definitions, generic over the burn backend. They know nothing of files or HTTP:
//! weights come in as a name → tensor map (see `weights`), images as tensors.

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
