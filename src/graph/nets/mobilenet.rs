//! MobileNetV2 (Sandler et al. 2018) as a graph, in torchvision's layout
//! (`torchvision/models/mobilenetv2.py`, whose `state_dict` keys name the nodes, naming
//! [`Naming::Torchvision`]).
//!
//! - Stem `features.0`: 3x3/2 pad-1 conv to 32 (`features.0.0`), BN (`features.0.1`), ReLU6.
//! - Blocks `features.1..17`, inverted residuals from the settings [`SETTINGS`] (expansion t,
//!   output channels c, repeats n, stride s of the first repeat). Block `k` with t != 1:
//!   `features.k.conv.0.0` 1x1 expansion + `.conv.0.1` BN + ReLU6, `.conv.1.0` 3x3 depthwise
//!   (the stride) + `.conv.1.1` BN + ReLU6, `.conv.2` 1x1 projection + `.conv.3` BN. With
//!   t = 1 there is no expansion: `.conv.0.0` depthwise + `.conv.0.1` BN + ReLU6, `.conv.1`
//!   projection + `.conv.2` BN. A block adds its input when its stride is 1 and its published
//!   input and output channels are equal.
//! - `features.18`: 1x1 conv to 1280 (`features.18.0`), BN (`.1`), ReLU6; global average
//!   pool; `classifier.1` dense with bias (torchvision's `classifier.0` is dropout).
//! - Convs have no bias; 3x3 convs pad 1, 1x1 convs pad 0.
//!
//! The CIFAR variant ([`Variant::Cifar`], as kuangliu/pytorch-cifar) has stride 1 in the stem
//! and in the first 24-channel block, so a 32x32 input ends at 4x4; nodes and tensors are
//! the same as the ImageNet variant's.
//!
//! Widths: the expansion of a block is `round(in * t)` of its actual input channels, and the
//! depthwise conv keeps its input's channels. At width multipliers other than 1 torchvision
//! rounds every width to a multiple of 8 and keeps the last conv at 1280 for widths below 1;
//! prunebench scales every published count (the 1280 too) with [`scale_width`] and does not
//! round to 8, so only width 1 equals torchvision's network.

use super::{check_len, conv_bn, scale_width};
use crate::error::{Error, Result};
use crate::graph::{ConvSpec, Graph, GraphBuilder, Naming, NodeId};

/// The inverted-residual settings `[t, c, n, s]` (expansion, output channels, repeats,
/// stride of the first repeat) of torchvision's MobileNetV2.
pub const SETTINGS: [[usize; 4]; 7] =
    [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]];
/// Output channels of the stem conv.
pub const STEM: usize = 32;
/// Output channels of the last conv (`features.18.0`).
pub const LAST: usize = 1280;

/// Which strides the network uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// torchvision's: stem stride 2, a 224x224 input ends at 7x7.
    Imagenet,
    /// Stem and the first 24-channel block at stride 1: a 32x32 input ends at 4x4.
    Cifar,
}

/// One inverted-residual block of the published layout.
struct Unit {
    /// Index in `features`.
    index: usize,
    expansion: usize,
    stride: usize,
    /// Published output channels.
    out: usize,
    residual: bool,
}

fn units(variant: Variant) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut cin = STEM;
    for (stage, &[t, c, n, s]) in SETTINGS.iter().enumerate() {
        for i in 0..n {
            let stride = match (variant, stage, i) {
                (_, _, 1..) => 1,
                (Variant::Cifar, 1, 0) => 1,
                _ => s,
            };
            out.push(Unit { index: out.len() + 1, expansion: t, stride, out: c, residual: stride == 1 && cin == c });
            cin = c;
        }
    }
    out
}

/// Output channels of every conv in graph order at width multiplier `width`: the stem, per
/// block the expansion (`round(in * t)` of the scaled input, absent when t = 1), the
/// depthwise conv (its input's count) and the projection, then the last conv; every
/// published count through [`scale_width`]. At width 1 torchvision's network (52 convs).
pub fn channels(width: f64) -> Vec<usize> {
    let mut cin = scale_width(STEM, width);
    let mut out = vec![cin];
    for u in units(Variant::Imagenet) {
        let hidden = cin * u.expansion;
        if u.expansion != 1 {
            out.push(hidden);
        }
        cin = scale_width(u.out, width);
        out.extend([hidden, cin]);
    }
    out.push(scale_width(LAST, width));
    out
}

/// MobileNetV2 on an `input` `[h, w, c]` with `channels` (one output count per conv in graph
/// order, see [`channels`]) and `classes` outputs, with the strides of `variant`.
///
/// Errors: a channel list of another length; a depthwise conv whose count is not its
/// input's (naming the conv); a residual block whose projection and input disagree (the add
/// refuses, naming both nodes); an input too small for a window.
pub fn mobilenet_v2(input: [usize; 3], channels: &[usize], classes: usize, variant: Variant) -> Result<Graph> {
    let units = units(variant);
    let convs = 2 + units.iter().map(|u| if u.expansion == 1 { 2 } else { 3 }).sum::<usize>();
    check_len("MobileNetV2", channels, convs)?;
    let mut ch = channels.iter().copied();
    let mut next = || ch.next().expect("the length is checked");
    let mut b = GraphBuilder::new(input, Naming::Torchvision)?;
    let stem_stride = if variant == Variant::Cifar { 1 } else { 2 };
    let x = b.input();
    let mut x = conv_bn(&mut b, "features.0.0", "features.0.1", x, ConvSpec::new(next(), 3, stem_stride, 1, false))?;
    x = b.relu6(x)?;
    for u in &units {
        let p = format!("features.{}.conv", u.index);
        let mut y = x;
        let mut m = 0; // index of the next module in `conv`
        if u.expansion != 1 {
            y = conv_bn(&mut b, &format!("{p}.0.0"), &format!("{p}.0.1"), y, ConvSpec::new(next(), 1, 1, 0, false))?;
            y = b.relu6(y)?;
            m = 1;
        }
        y = depthwise_bn(&mut b, &format!("{p}.{m}"), y, next(), u.stride)?;
        y = b.relu6(y)?;
        let spec = ConvSpec::new(next(), 1, 1, 0, false);
        y = conv_bn(&mut b, &format!("{p}.{}", m + 1), &format!("{p}.{}", m + 2), y, spec)?;
        x = if u.residual { b.add(y, x)? } else { y };
    }
    x = conv_bn(&mut b, "features.18.0", "features.18.1", x, ConvSpec::new(next(), 1, 1, 0, false))?;
    x = b.relu6(x)?;
    let pooled = b.global_avg_pool(x)?;
    b.dense("classifier.1", pooled, classes, true)?;
    b.finish()
}

/// The 3x3 pad-1 depthwise conv `{module}.0` with `out` channels and its BN `{module}.1`;
/// refuses an `out` other than the input's channels, naming the conv.
fn depthwise_bn(b: &mut GraphBuilder, module: &str, x: NodeId, out: usize, stride: usize) -> Result<NodeId> {
    let name = format!("{module}.0");
    let cin = b.dims(x).last().copied().unwrap_or(0);
    if out != cin {
        return Err(Error::invalid(
            "channel count",
            format!("'{name}': {out}"),
            format!("'{name}' is a depthwise conv: give it its input's {cin} channels (it is pruned with the conv before it)"),
        ));
    }
    let dw = b.depthwise(&name, x, 3, stride, 1)?;
    b.batch_norm(&format!("{module}.1"), dw)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::counts;
    use crate::graph::nets::resnet::tests::{dims, fvcore_extra, rounded};
    use crate::graph::Op;

    fn imagenet() -> Graph {
        mobilenet_v2([224, 224, 3], &channels(1.0), 1000, Variant::Imagenet).unwrap()
    }

    #[test]
    fn published_counts() {
        let g = imagenet();
        assert_eq!(counts::params(&g), 3_504_872);
        // The paper's 300 M multiply-adds and torchvision's documented 0.30; fvcore, which
        // adds BN and the pool, says 0.31.
        assert_eq!(counts::macs(&g), 300_774_272);
        assert_eq!(rounded(counts::macs(&g), 1e9, 2), 0.30);
        assert_eq!(rounded(counts::macs(&g) + fvcore_extra(&g), 1e9, 2), 0.31);
        assert_eq!(channels(1.0).len(), 52);
    }

    #[test]
    fn tensor_names_and_shapes_are_torchvisions() {
        let g = imagenet();
        assert_eq!(dims(&g, "features.0.0.weight"), [3, 3, 3, 32]);
        assert_eq!(dims(&g, "features.0.1.running_mean"), [32]);
        assert_eq!(dims(&g, "features.1.conv.0.0.weight"), [3, 3, 1, 32]);
        assert_eq!(dims(&g, "features.1.conv.1.weight"), [1, 1, 32, 16]);
        assert_eq!(dims(&g, "features.1.conv.2.weight"), [16]);
        assert_eq!(dims(&g, "features.2.conv.0.0.weight"), [1, 1, 16, 96]);
        assert_eq!(dims(&g, "features.2.conv.1.0.weight"), [3, 3, 1, 96]);
        assert_eq!(dims(&g, "features.2.conv.2.weight"), [1, 1, 96, 24]);
        assert_eq!(dims(&g, "features.2.conv.3.bias"), [24]);
        assert_eq!(dims(&g, "features.17.conv.2.weight"), [1, 1, 960, 320]);
        assert_eq!(dims(&g, "features.18.0.weight"), [1, 1, 320, 1280]);
        assert_eq!(dims(&g, "classifier.1.weight"), [1280, 1000]);
        assert_eq!(dims(&g, "classifier.1.bias"), [1000]);
        assert_eq!(g.find("features.2.conv.1.0").unwrap().conv().unwrap().stride, 2);
        // Residual adds: blocks 3, 5, 6, 8-10, 12, 13, 15, 16 (stride 1, in == out).
        let adds = g.nodes().iter().filter(|n| n.op == Op::Add).count();
        assert_eq!(adds, 10);
        assert_eq!(g.find("features.18.0").unwrap().dims, [7, 7, 1280]);
    }

    #[test]
    fn cifar_variant_ends_at_4x4_with_the_same_tensors() {
        let g = mobilenet_v2([32, 32, 3], &channels(1.0), 10, Variant::Cifar).unwrap();
        assert_eq!(g.find("features.18.0").unwrap().dims, [4, 4, 1280]);
        assert_eq!(g.find("features.2.conv.1.0").unwrap().dims, [32, 32, 96]);
        let i = mobilenet_v2([32, 32, 3], &channels(1.0), 10, Variant::Imagenet).unwrap();
        assert_eq!(i.find("features.18.0").unwrap().dims, [1, 1, 1280]);
        let names = |g: &Graph| g.params().iter().map(|p| (p.name.clone(), p.dims.clone())).collect::<Vec<_>>();
        assert_eq!(names(&g), names(&i));
    }

    #[test]
    fn width_scales_from_the_actual_input() {
        let ch = channels(0.5);
        // stem 16; block 1: dw 16, project 8; block 2: expand 8 * 6 = 48, dw 48, project 12.
        assert_eq!(ch[..6], [16, 16, 8, 48, 48, 12]);
        assert_eq!(ch[ch.len() - 1], 640);
        let g = mobilenet_v2([32, 32, 1], &ch, 10, Variant::Cifar).unwrap();
        assert_eq!(g.convs().map(|(n, _)| n.channels()).collect::<Vec<_>>(), ch);
        // 0.35: stem round(11.2) = 11, block-1 project round(5.6) = 6, block 2 expands 6 * 6.
        assert_eq!(channels(0.35)[..4], [11, 11, 6, 36]);
        mobilenet_v2([32, 32, 3], &channels(0.35), 10, Variant::Cifar).unwrap();
    }

    #[test]
    fn bad_channel_lists_are_refused_naming_the_node() {
        let mut ch = channels(1.0);
        ch[4] = 90; // features.2.conv.1.0, depthwise after a 96-channel expansion
        let e = mobilenet_v2([224, 224, 3], &ch, 10, Variant::Imagenet).unwrap_err().to_string();
        assert!(e.contains("'features.2.conv.1.0': 90") && e.contains("input's 96"), "{e}");
        let mut ch = channels(1.0);
        ch[3] = 90; // the expansion may shrink when its depthwise conv follows
        ch[4] = 90;
        mobilenet_v2([224, 224, 3], &ch, 10, Variant::Imagenet).unwrap();
        let mut ch = channels(1.0);
        ch[8] = 20; // features.3 projects to 20, its input (features.2) has 24
        let e = mobilenet_v2([224, 224, 3], &ch, 10, Variant::Imagenet).unwrap_err().to_string();
        assert!(e.contains("'features.3.conv.3'") && e.contains("[56, 56, 20]"), "{e}");
        let e = mobilenet_v2([224, 224, 3], &channels(1.0)[1..], 10, Variant::Imagenet).unwrap_err().to_string();
        assert!(e.contains("MobileNetV2 has 52 conv layers"), "{e}");
    }
}
