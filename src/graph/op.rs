//! The operations a network is made of, as data: what each node computes and the parameters
//! it owns. Nothing here knows how an op is emitted, differentiated or run: the forward
//! emitter, the backward rules, the f64 interpreter and the pruning code each match on
//! [`Op`] in one place of their own.
//!
//! Layouts (per image, the batch axis is added by whoever runs the graph): feature maps
//! `[h, w, c]` (NHWC without N), flat features `[f]`; conv kernels HWIO
//! `[kh, kw, in / groups, out]`; dense weights `[in, out]`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A convolution: `out` filters of `kh x kw` over `in / groups` channels each, with
/// `stride` and symmetric zero padding `pad` on both spatial axes; output side
/// `(side + 2 pad - k) / stride + 1` (floor). `groups == in == out` is a depthwise conv.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvSpec {
    pub out: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub pad: usize,
    pub groups: usize,
    /// Whether the conv has a bias (VGG: yes; ResNet and MobileNetV2, followed by BN: no).
    pub bias: bool,
}

impl ConvSpec {
    /// A square `k x k` conv with one group.
    pub fn new(out: usize, k: usize, stride: usize, pad: usize, bias: bool) -> Self {
        ConvSpec { out, kh: k, kw: k, stride, pad, groups: 1, bias }
    }

    /// Whether every output channel reads exactly its own input channel (`groups == out`
    /// with one input channel per group, checked against the input when the graph is built).
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.out
    }

    /// Output side of an input side `n`, or `None` when the window does not fit.
    pub fn out_side(&self, n: usize, k: usize) -> Option<usize> {
        (n + 2 * self.pad).checked_sub(k).map(|r| r / self.stride + 1)
    }
}

impl fmt::Display for ConvSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conv {}x{}/{} pad {} -> {}", self.kh, self.kw, self.stride, self.pad, self.out)?;
        if self.groups > 1 {
            write!(f, " groups {}", self.groups)?;
        }
        Ok(())
    }
}

/// A pooling window: `k x k`, `stride`, symmetric padding `pad` (max-pool pads with -inf;
/// average pools here never pad).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolSpec {
    pub k: usize,
    pub stride: usize,
    pub pad: usize,
}

impl PoolSpec {
    pub fn new(k: usize, stride: usize, pad: usize) -> Self {
        PoolSpec { k, stride, pad }
    }

    /// Output side of an input side `n` (floor, as PyTorch with `ceil_mode=False`).
    pub fn out_side(&self, n: usize) -> Option<usize> {
        (n + 2 * self.pad).checked_sub(self.k).map(|r| r / self.stride + 1)
    }
}

/// What one node computes from its inputs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// The network input `[h, w, c]`; always node 0, no inputs.
    Input,
    /// Convolution of one `[h, w, c]` input (+ bias when the spec says so).
    Conv(ConvSpec),
    /// Per-channel batch norm of one `[h, w, c]` input, eps [`BN_EPS`]: affine `gamma`,
    /// `beta` and running statistics `running_mean`, `running_var`.
    BatchNorm,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)` (MobileNetV2).
    Relu6,
    /// Max over each window of one `[h, w, c]` input.
    MaxPool(PoolSpec),
    /// Mean over each window (no padding) of one `[h, w, c]` input.
    AvgPool(PoolSpec),
    /// Mean over `h, w`: `[h, w, c] -> [c]`.
    GlobalAvgPool,
    /// Elementwise sum of two inputs of the same shape (a residual connection).
    Add,
    /// `[h, w, c] -> [h * w * c]`, NHWC order: feature `(y * w + x) * c + ch`.
    Flatten,
    /// `[in] -> [out]`: `y = x W + b` (W `[in, out]`).
    Dense { out: usize, bias: bool },
}

/// Epsilon of every batch norm (PyTorch's default).
pub const BN_EPS: f64 = 1e-5;

impl Op {
    /// Short name of the op kind, e.g. `conv`, `bn`, `add`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Input => "input",
            Op::Conv(_) => "conv",
            Op::BatchNorm => "bn",
            Op::Relu => "relu",
            Op::Relu6 => "relu6",
            Op::MaxPool(_) => "maxpool",
            Op::AvgPool(_) => "avgpool",
            Op::GlobalAvgPool => "gap",
            Op::Add => "add",
            Op::Flatten => "flatten",
            Op::Dense { .. } => "dense",
        }
    }

    /// The parameter roles this op owns, in table order.
    pub fn roles(&self) -> &'static [Role] {
        match self {
            Op::Conv(c) if c.bias => &[Role::Kernel, Role::Bias],
            Op::Conv(_) => &[Role::Kernel],
            Op::BatchNorm => &[Role::Gamma, Role::Beta, Role::RunningMean, Role::RunningVar],
            Op::Dense { bias: true, .. } => &[Role::Weight, Role::Bias],
            Op::Dense { bias: false, .. } => &[Role::Weight],
            _ => &[],
        }
    }
}

/// What a parameter tensor is to the node that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    /// Conv kernel, HWIO `[kh, kw, in / groups, out]`.
    Kernel,
    /// Conv or dense bias `[out]`.
    Bias,
    /// BN scale `[c]`.
    Gamma,
    /// BN shift `[c]`.
    Beta,
    /// BN running mean `[c]` (a statistic, not trained by gradient).
    RunningMean,
    /// BN running variance `[c]` (a statistic, not trained by gradient).
    RunningVar,
    /// Dense weight `[in, out]`.
    Weight,
}

impl Role {
    /// Whether the tensor is a running statistic (updated by the step, not by a gradient).
    pub fn is_statistic(self) -> bool {
        matches!(self, Role::RunningMean | Role::RunningVar)
    }

    /// Whether weight decay applies (conv kernels and dense weights).
    pub fn decays(self) -> bool {
        matches!(self, Role::Kernel | Role::Weight)
    }
}
