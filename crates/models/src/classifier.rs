//! The breed classifier on EfficientNet-Lite0: a frozen front (stem + blocks `0..cut`, run once
//! over the data and cached) and a trainable tail (blocks `cut..16` + head + dropout + linear).
//! `cut = 16` leaves only the head conv and the linear layer; `LinearProbe` trains the linear
//! layer alone on pooled features.

use crate::efficientnet::{ConvBn, EfficientNetLite0, MbConv, BLOCKS, FEATURES};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;

/// `cut` value meaning "features are the pooled 1280-d embedding" (linear probe).
pub const POOLED: usize = 17;

#[derive(Module, Debug)]
pub struct Tail<B: Backend> {
    pub blocks: Vec<MbConv<B>>,
    /// None for a linear probe (input is already the pooled embedding).
    pub head: Option<ConvBn<B>>,
    pub dropout: Dropout,
    pub fc: Linear<B>,
}

impl<B: Backend> Tail<B> {
    /// Tail initialised from the pretrained network's blocks `cut..` and head; a fresh classifier.
    /// `cut = POOLED` (17) gives a linear probe on the pooled embedding.
    pub fn from_pretrained(net: &EfficientNetLite0<B>, cut: usize, classes: usize, dropout: f64, device: &B::Device) -> Self {
        let probe = cut >= POOLED;
        Tail {
            blocks: if probe { vec![] } else { net.blocks[cut..].to_vec() },
            head: (!probe).then(|| net.head.clone()),
            dropout: DropoutConfig::new(dropout).init(),
            fc: LinearConfig::new(FEATURES, classes).init(device),
        }
    }

    /// Randomly initialised tail with the same shapes (used when loading a saved one).
    pub fn new(cut: usize, classes: usize, device: &B::Device) -> Self {
        let probe = cut >= POOLED;
        Tail {
            blocks: if probe { vec![] } else { BLOCKS[cut..].iter().map(|&b| MbConv::new(b, device)).collect() },
            head: (!probe).then(|| ConvBn::new(320, FEATURES, 1, 1, 1, true, device)),
            dropout: DropoutConfig::new(0.0).init(),
            fc: LinearConfig::new(FEATURES, classes).init(device),
        }
    }

    /// Frozen-BatchNorm form: each BN (with its ImageNet running statistics) folded into the
    /// preceding convolution, which then trains with a bias. Fine-tuning with frozen BN is
    /// standard practice for small batches, and burn-flex's BN ops cost more than the convs.
    pub fn fold_bn(self) -> Self {
        Tail {
            blocks: self.blocks.into_iter().map(MbConv::fold_bn).collect(),
            head: self.head.map(ConvBn::fold_bn),
            dropout: self.dropout,
            fc: self.fc,
        }
    }

    /// Staged unfreezing: the pretrained blocks (not the head or the new linear layer) stop or
    /// start receiving gradients.
    pub fn set_blocks_trainable(mut self, trainable: bool) -> Self {
        struct SetGrad(bool);
        impl<B: Backend> burn::module::ModuleMapper<B> for SetGrad {
            fn map_float<const D: usize>(&mut self, param: burn::module::Param<Tensor<B, D>>) -> burn::module::Param<Tensor<B, D>> {
                let (id, tensor, mapper) = param.consume();
                burn::module::Param::from_mapped_value(id, tensor.set_require_grad(self.0), mapper)
            }
        }
        self.blocks = self.blocks.map(&mut SetGrad(trainable));
        self
    }

    pub fn pooled(&self, h: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut h = h;
        for b in &self.blocks {
            h = b.forward(h);
        }
        let h = match &self.head {
            Some(head) => head.forward(h),
            None => h,
        };
        let [n, c, _, _] = h.dims();
        adaptive_avg_pool2d(h, [1, 1]).reshape([n, c])
    }

    /// Cached front activations → class logits.
    pub fn forward(&self, h: Tensor<B, 4>) -> Tensor<B, 2> {
        self.fc.forward(self.dropout.forward(self.pooled(h)))
    }
}
