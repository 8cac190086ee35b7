//! The parameter table: every tensor of a network, in one order. Program arguments, trainer
//! state, BN statistics, checkpoints and import mappings all iterate it, so the order is
//! written once: nodes in graph order, each node's roles in [`Op::roles`](super::Op::roles)
//! order.

use serde::{Deserialize, Serialize};

use super::op::Role;
use super::NodeId;

/// How tensor names are made from a node's name and a role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Naming {
    /// torchvision's `state_dict` keys: `{node}.weight` for conv kernels, BN gamma and dense
    /// weights; `{node}.bias` for biases and BN beta; `{node}.running_mean`, `.running_var`.
    Torchvision,
    /// prunebench's VGG-16 checkpoints (`vgg16/1`): as torchvision, except BN affine
    /// parameters are `{node}.gamma` and `{node}.beta`.
    Vgg16,
}

impl Naming {
    /// The suffix of `role` under this naming.
    pub fn suffix(self, role: Role) -> &'static str {
        match (self, role) {
            (_, Role::Kernel | Role::Weight) => "weight",
            (_, Role::Bias) => "bias",
            (Naming::Torchvision, Role::Gamma) => "weight",
            (Naming::Torchvision, Role::Beta) => "bias",
            (Naming::Vgg16, Role::Gamma) => "gamma",
            (Naming::Vgg16, Role::Beta) => "beta",
            (_, Role::RunningMean) => "running_mean",
            (_, Role::RunningVar) => "running_var",
        }
    }
}

/// One tensor of the network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    /// The node that owns it.
    pub node: NodeId,
    pub role: Role,
    /// Its name in checkpoints, e.g. `layer1.0.conv1.weight`, `features.3.bn.running_var`.
    pub name: String,
    /// Its shape (see [`Role`] for each role's layout).
    pub dims: Vec<usize>,
}

impl Param {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.dims.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a gradient trains it (everything but BN running statistics).
    pub fn is_trainable(&self) -> bool {
        !self.role.is_statistic()
    }
}
