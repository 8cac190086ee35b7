//! Exact parameter and MAC counts per node.
//!
//! Params count what a framework trains: conv kernels and biases, BN gamma and beta, dense
//! weights and biases (BN running statistics are buffers, not parameters: torchvision's
//! published counts are made the same way). MACs count the multiply-accumulates of convs
//! (`out_h * out_w * kh * kw * in / groups * out`) and dense layers (`in * out`) for one
//! image; BN, activations, pools and adds are not counted (BN folds into the conv at
//! inference; the rest is a few percent at most). FLOPs are about twice the MACs.

use super::build::{Graph, Node};
use super::op::Op;

/// Params and MACs of one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCount {
    pub name: String,
    pub params: u64,
    pub macs: u64,
}

/// MACs of `node` for one image (0 for ops other than conv and dense).
pub fn node_macs(g: &Graph, node: &Node) -> u64 {
    match &node.op {
        Op::Conv(c) => {
            let cin = g.node(node.inputs[0]).channels() as u64;
            let (oh, ow) = (node.dims[0] as u64, node.dims[1] as u64);
            oh * ow * (c.kh * c.kw) as u64 * (cin / c.groups as u64) * c.out as u64
        }
        Op::Dense { out, .. } => g.node(node.inputs[0]).dims[0] as u64 * *out as u64,
        _ => 0,
    }
}

/// Trainable parameters owned by `node`.
pub fn node_params(g: &Graph, node: &Node) -> u64 {
    g.params().iter().filter(|p| p.node == node.id && p.is_trainable()).map(|p| p.len() as u64).sum()
}

/// Counts of every node that has parameters or MACs, in graph order.
pub fn nodes(g: &Graph) -> Vec<NodeCount> {
    g.nodes()
        .iter()
        .map(|n| NodeCount { name: n.name.clone(), params: node_params(g, n), macs: node_macs(g, n) })
        .filter(|c| c.params > 0 || c.macs > 0)
        .collect()
}

/// Total trainable parameters.
pub fn params(g: &Graph) -> u64 {
    g.nodes().iter().map(|n| node_params(g, n)).sum()
}

/// Total MACs for one image.
pub fn macs(g: &Graph) -> u64 {
    g.nodes().iter().map(|n| node_macs(g, n)).sum()
}

/// MACs of the convolutions only, for one image.
pub fn conv_macs(g: &Graph) -> u64 {
    g.nodes().iter().filter(|n| n.conv().is_some()).map(|n| node_macs(g, n)).sum()
}
