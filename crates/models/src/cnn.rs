//! A small ResNet-style CNN trained from scratch (the baseline next to the pretrained
//! EfficientNet): stem conv → 4 stages of two residual blocks (stride 2 between stages) →
//! global average pool → linear. BatchNorm + ReLU, as in He et al. 2016.

use crate::norm::batch_norm_2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::adaptive_avg_pool2d;

#[derive(Module, Debug)]
pub struct ResBlock<B: Backend> {
    conv1: Conv2d<B>,
    bn1: BatchNorm<B>,
    conv2: Conv2d<B>,
    bn2: BatchNorm<B>,
    /// 1×1 projection when the shape changes.
    down: Option<Conv2d<B>>,
}

fn conv<B: Backend>(cin: usize, cout: usize, k: usize, stride: usize, device: &B::Device) -> Conv2d<B> {
    Conv2dConfig::new([cin, cout], [k, k])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(k / 2, k / 2, k / 2, k / 2))
        .with_bias(false)
        .init(device)
}

impl<B: Backend> ResBlock<B> {
    pub fn new(cin: usize, cout: usize, stride: usize, device: &B::Device) -> Self {
        ResBlock {
            conv1: conv(cin, cout, 3, stride, device),
            bn1: BatchNormConfig::new(cout).init(device),
            conv2: conv(cout, cout, 3, 1, device),
            bn2: BatchNormConfig::new(cout).init(device),
            down: (stride != 1 || cin != cout).then(|| conv(cin, cout, 1, stride, device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = relu(batch_norm_2d(&self.bn1, self.conv1.forward(x.clone())));
        let h = batch_norm_2d(&self.bn2, self.conv2.forward(h));
        let skip = match &self.down {
            Some(d) => d.forward(x),
            None => x,
        };
        relu(h + skip)
    }
}

#[derive(Module, Debug)]
pub struct SmallCnn<B: Backend> {
    stem: Conv2d<B>,
    stem_bn: BatchNorm<B>,
    blocks: Vec<ResBlock<B>>,
    fc: Linear<B>,
}

impl<B: Backend> SmallCnn<B> {
    /// `width` channels in the first stage, doubling per stage.
    pub fn new(classes: usize, width: usize, device: &B::Device) -> Self {
        let w = [width, width * 2, width * 4, width * 8];
        let mut blocks = Vec::new();
        let mut cin = width;
        for (i, &c) in w.iter().enumerate() {
            blocks.push(ResBlock::new(cin, c, if i == 0 { 1 } else { 2 }, device));
            blocks.push(ResBlock::new(c, c, 1, device));
            cin = c;
        }
        SmallCnn {
            stem: conv(3, width, 3, 2, device),
            stem_bn: BatchNormConfig::new(width).init(device),
            blocks,
            fc: LinearConfig::new(cin, classes).init(device),
        }
    }

    /// Pixels in [0,1], NCHW → logits.
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut h = relu(batch_norm_2d(&self.stem_bn, self.stem.forward((x - 0.5) / 0.25)));
        for b in &self.blocks {
            h = b.forward(h);
        }
        let [n, c, _, _] = h.dims();
        self.fc.forward(adaptive_avg_pool2d(h, [1, 1]).reshape([n, c]))
    }
}
