//! Model definitions, generic over the burn backend. They know nothing of files or HTTP:
//! weights come in as a name → tensor map (see `weights`), images as tensors.

pub mod classifier;
pub mod cnn;
pub mod dit;
pub mod efficientnet;
pub mod norm;
pub mod weights;

/// CPU backend used by the CLI and tests (burn-flex).
pub type Cpu = burn::backend::Flex;
/// CPU backend with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
