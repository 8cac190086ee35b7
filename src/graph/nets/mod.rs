//! The architectures, each a function from its sizes (input, per-conv output channels,
//! classes) to a checked [`Graph`](super::Graph). A pruned network is the same function with
//! other channel counts.
//!
//! Every net takes one output-channel count per conv node, in graph order (the order of
//! [`Graph::convs`](super::Graph::convs)), and has a function giving that list for a width
//! multiplier (each published count through [`scale_width`]). The structure (which blocks
//! have a projection, which have a residual add) is the published one whatever the counts,
//! so a pruned network has the same nodes and tensor names as the network it came from.

pub mod mobilenet;
pub mod resnet;
pub mod vgg;

use crate::error::{Error, Result};
use crate::graph::{ConvSpec, GraphBuilder, NodeId};

/// `c` channels scaled by a width multiplier: `round(c * width)`, at least 1. At width 1
/// every net is exactly the published one. (torchvision's MobileNetV2 rounds its widths to
/// multiples of 8 for other multipliers; prunebench does not, see [`mobilenet`].)
pub fn scale_width(c: usize, width: f64) -> usize {
    crate::util::count_of(width, c, crate::util::Rounding::Nearest).max(1)
}

/// Refuses a channel list whose length is not the net's number of convs, naming the net.
pub(crate) fn check_len(net: &str, channels: &[usize], convs: usize) -> Result<()> {
    if channels.len() != convs {
        return Err(Error::invalid(
            "channel list",
            format!("{} counts {channels:?}", channels.len()),
            format!("{net} has {convs} conv layers; give one output-channel count per conv, in graph order"),
        ));
    }
    Ok(())
}

/// A conv named `conv` of `x`, then a batch norm named `bn` of it; returns the BN.
pub(crate) fn conv_bn(b: &mut GraphBuilder, conv: &str, bn: &str, x: NodeId, spec: ConvSpec) -> Result<NodeId> {
    let c = b.conv(conv, x, spec)?;
    b.batch_norm(bn, c)
}
