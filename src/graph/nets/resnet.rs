//! ResNets (He et al. 2016) as graphs: the CIFAR ResNets of depth `6n + 2` (section 4.2) and
//! torchvision's ImageNet ResNet-18 and ResNet-50.
//!
//! Layout (torchvision's `resnet.py`, whose `state_dict` keys name the nodes, naming
//! [`Naming::Torchvision`]): a stem `conv1` + `bn1` + ReLU (ImageNet: then a 3x3/2 pad-1
//! max-pool), stages `layer1..` of residual blocks, a global average pool and `fc` (with
//! bias). Block `b` of stage `s` is `layer{s}.{b}`: its convs `conv1`, `conv2` (and `conv3`
//! for a bottleneck), each followed by its BN `bn1`, `bn2`, `bn3`, ReLU between them; the
//! shortcut is the block's input, or where the stride is not 1 or the channels change a 1x1
//! conv with the block's stride + BN (`downsample.0`, `downsample.1`: option B of the
//! paper); then the add and a ReLU. The first block of every stage but the first has stride
//! 2. Convs have no bias. Graph order within a block is torchvision's forward order: the
//! main path, then the projection, then the add.
//!
//! The CIFAR nets have a 3x3/1 pad-1 stem of 16 channels and three stages of `n` basic blocks
//! of 16, 32 and 64 channels (ResNet-20: n = 3, ResNet-56: n = 9). The paper's CIFAR nets use
//! option A (identity shortcuts padded with zeros, no parameters); prunebench uses the
//! projection, which adds 2,752 parameters to each (ResNet-56: 855,770 against the 853,018
//! usually quoted).

use super::{check_len, conv_bn, scale_width};
use crate::error::Result;
use crate::graph::{ConvSpec, Graph, GraphBuilder, Naming, PoolSpec};

/// The residual block a ResNet is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// Two 3x3 pad-1 convs to `planes` channels, the stride on `conv1`; expansion 1.
    Basic,
    /// A 1x1 `conv1` to `planes`, a 3x3 pad-1 `conv2` to `planes` with the stride
    /// (torchvision's v1.5; the paper's v1 strides the 1x1), a 1x1 `conv3` to `4 planes`;
    /// expansion 4.
    Bottleneck,
}

impl Block {
    /// Output channels of a block over its `planes`.
    pub fn expansion(self) -> usize {
        match self {
            Block::Basic => 1,
            Block::Bottleneck => 4,
        }
    }

    /// Published output channels of the block's main-path convs, in graph order.
    fn published(self, planes: usize) -> Vec<usize> {
        match self {
            Block::Basic => vec![planes, planes],
            Block::Bottleneck => vec![planes, planes, 4 * planes],
        }
    }
}

/// What comes before the first stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stem {
    /// `conv1` 3x3/1 pad 1 to 16 channels, `bn1`, ReLU (CIFAR ResNets).
    Cifar,
    /// `conv1` 7x7/2 pad 3 to 64 channels, `bn1`, ReLU, 3x3/2 pad-1 max-pool (ImageNet).
    Imagenet,
}

impl Stem {
    /// Published output channels of the stem.
    fn channels(self) -> usize {
        match self {
            Stem::Cifar => 16,
            Stem::Imagenet => 64,
        }
    }
}

/// A ResNet's published layout: stem, block kind, blocks and planes per stage. The graph
/// comes from [`ResNet::graph`] with any per-conv channel counts; its nodes and tensor names
/// depend on the layout only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResNet {
    /// Display name, e.g. `ResNet-20` (used in errors).
    pub name: String,
    pub stem: Stem,
    pub block: Block,
    /// Blocks per stage.
    pub blocks: Vec<usize>,
    /// Planes per stage (inner width; a block's output is `planes * expansion`).
    pub planes: Vec<usize>,
}

/// One residual block of the published layout.
struct Unit {
    /// Module path, `layer{s}.{b}`.
    name: String,
    stride: usize,
    planes: usize,
    /// Whether the shortcut is a 1x1 conv + BN projection.
    downsample: bool,
}

impl ResNet {
    /// The CIFAR ResNet of depth `6n + 2`: three stages of `n` basic blocks of 16, 32, 64.
    pub fn cifar(n: usize) -> ResNet {
        ResNet {
            name: format!("ResNet-{}", 6 * n + 2),
            stem: Stem::Cifar,
            block: Block::Basic,
            blocks: vec![n; 3],
            planes: vec![16, 32, 64],
        }
    }

    /// ResNet-20 for CIFAR (n = 3).
    pub fn resnet20() -> ResNet {
        ResNet::cifar(3)
    }

    /// ResNet-56 for CIFAR (n = 9).
    pub fn resnet56() -> ResNet {
        ResNet::cifar(9)
    }

    /// torchvision's ResNet-18: basic blocks [2, 2, 2, 2] of 64, 128, 256, 512.
    pub fn resnet18() -> ResNet {
        ResNet::imagenet("ResNet-18", Block::Basic, vec![2, 2, 2, 2])
    }

    /// torchvision's ResNet-50: bottlenecks [3, 4, 6, 3] of 64, 128, 256, 512 planes.
    pub fn resnet50() -> ResNet {
        ResNet::imagenet("ResNet-50", Block::Bottleneck, vec![3, 4, 6, 3])
    }

    fn imagenet(name: &str, block: Block, blocks: Vec<usize>) -> ResNet {
        ResNet { name: name.into(), stem: Stem::Imagenet, block, blocks, planes: vec![64, 128, 256, 512] }
    }

    /// The blocks in graph order, with their stride and whether they project.
    fn units(&self) -> Vec<Unit> {
        let mut out = Vec::new();
        let mut cin = self.stem.channels();
        for (s, (&n, &planes)) in self.blocks.iter().zip(&self.planes).enumerate() {
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                let cout = planes * self.block.expansion();
                out.push(Unit { name: format!("layer{}.{b}", s + 1), stride, planes, downsample: stride != 1 || cin != cout });
                cin = cout;
            }
        }
        out
    }

    /// Output channels of every conv in graph order at width multiplier `width` (each
    /// published count through [`scale_width`]); at width 1 the published network.
    pub fn channels(&self, width: f64) -> Vec<usize> {
        let mut out = vec![self.stem.channels()];
        for u in self.units() {
            out.extend(self.block.published(u.planes));
            if u.downsample {
                out.push(u.planes * self.block.expansion());
            }
        }
        out.into_iter().map(|c| scale_width(c, width)).collect()
    }

    /// The network on an `input` `[h, w, c]` with `channels` (one output count per conv, in
    /// graph order, see [`ResNet::channels`]) and `classes` outputs.
    ///
    /// Errors: a channel list of another length (naming the count expected); a block whose
    /// last conv and shortcut disagree in channels (the add refuses, naming both nodes); an
    /// input too small for a window (naming the conv or pool).
    pub fn graph(&self, input: [usize; 3], channels: &[usize], classes: usize) -> Result<Graph> {
        let units = self.units();
        let convs = 1 + units.iter().map(|u| self.block.published(u.planes).len() + usize::from(u.downsample)).sum::<usize>();
        check_len(&self.name, channels, convs)?;
        let mut ch = channels.iter().copied();
        let mut next = || ch.next().expect("the length is checked");
        let mut b = GraphBuilder::new(input, Naming::Torchvision)?;
        let mut x = b.input();
        x = match self.stem {
            Stem::Cifar => conv_bn(&mut b, "conv1", "bn1", x, ConvSpec::new(next(), 3, 1, 1, false))?,
            Stem::Imagenet => conv_bn(&mut b, "conv1", "bn1", x, ConvSpec::new(next(), 7, 2, 3, false))?,
        };
        x = b.relu(x)?;
        if self.stem == Stem::Imagenet {
            x = b.max_pool(x, PoolSpec::new(3, 2, 1))?;
        }
        for u in &units {
            let p = &u.name;
            // (kernel, stride, pad) of each main-path conv.
            let shapes: &[(usize, usize, usize)] = match self.block {
                Block::Basic => &[(3, u.stride, 1), (3, 1, 1)],
                Block::Bottleneck => &[(1, 1, 0), (3, u.stride, 1), (1, 1, 0)],
            };
            let mut y = x;
            for (i, &(k, stride, pad)) in shapes.iter().enumerate() {
                if i > 0 {
                    y = b.relu(y)?;
                }
                let (conv, bn) = (format!("{p}.conv{}", i + 1), format!("{p}.bn{}", i + 1));
                y = conv_bn(&mut b, &conv, &bn, y, ConvSpec::new(next(), k, stride, pad, false))?;
            }
            let shortcut = if u.downsample {
                let spec = ConvSpec::new(next(), 1, u.stride, 0, false);
                conv_bn(&mut b, &format!("{p}.downsample.0"), &format!("{p}.downsample.1"), x, spec)?
            } else {
                x
            };
            let sum = b.add(y, shortcut)?;
            x = b.relu(sum)?;
        }
        let pooled = b.global_avg_pool(x)?;
        b.dense("fc", pooled, classes, true)?;
        b.finish()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::graph::{counts, Op};

    /// `x` (MACs or params) in units of `unit`, rounded to `digits` decimals.
    pub(crate) fn rounded(x: u64, unit: f64, digits: i32) -> f64 {
        let s = 10f64.powi(digits);
        (x as f64 / unit * s).round() / s
    }

    /// What fvcore adds to the conv and dense MACs: 2 per BN output element (inference, with
    /// affine) and 1 per input element of the global average pool.
    pub(crate) fn fvcore_extra(g: &Graph) -> u64 {
        let elems = |d: &[usize]| d.iter().product::<usize>() as u64;
        g.nodes()
            .iter()
            .map(|n| match n.op {
                Op::BatchNorm => 2 * elems(&n.dims),
                Op::GlobalAvgPool => elems(&g.node(n.inputs[0]).dims),
                _ => 0,
            })
            .sum()
    }

    /// Shape of the tensor called `name`.
    pub(crate) fn dims<'a>(g: &'a Graph, name: &str) -> &'a [usize] {
        &g.params()[g.param_named(name).unwrap_or_else(|| panic!("no tensor {name}"))].dims
    }

    #[test]
    fn torchvision_resnets_have_the_published_counts() {
        let r18 = ResNet::resnet18();
        let g = r18.graph([224, 224, 3], &r18.channels(1.0), 1000).unwrap();
        assert_eq!(counts::params(&g), 11_689_512);
        // torchvision's documented 1.81 "GFLOPS" are these conv + dense MACs; the 1.82 G
        // often quoted is fvcore's count, which adds BN and the pool.
        assert_eq!(counts::macs(&g), 1_814_073_344);
        assert_eq!(rounded(counts::macs(&g), 1e9, 2), 1.81);
        assert_eq!(rounded(counts::macs(&g) + fvcore_extra(&g), 1e9, 2), 1.82);
        let r50 = ResNet::resnet50();
        let g = r50.graph([224, 224, 3], &r50.channels(1.0), 1000).unwrap();
        assert_eq!(counts::params(&g), 25_557_032);
        assert_eq!(rounded(counts::macs(&g), 1e9, 2), 4.09);
        assert_eq!(rounded(counts::macs(&g) + fvcore_extra(&g), 1e9, 2), 4.11);
    }

    /// ResNet-(6n+2) with projections, counted block by block from the paper's layout.
    fn cifar_formula(n: u64, classes: u64) -> (u64, u64) {
        let (mut params, mut macs) = (9 * 3 * 16 + 2 * 16, 32 * 32 * 9 * 3 * 16);
        let (mut cin, mut side) = (16u64, 32u64);
        for (s, p) in [16u64, 32, 64].into_iter().enumerate() {
            for b in 0..n {
                let stride = if s > 0 && b == 0 { 2 } else { 1 };
                side /= stride;
                let hw = side * side;
                params += 9 * cin * p + 2 * p + 9 * p * p + 2 * p;
                macs += hw * 9 * cin * p + hw * 9 * p * p;
                if cin != p {
                    params += cin * p + 2 * p;
                    macs += hw * cin * p;
                }
                cin = p;
            }
        }
        (params + 64 * classes + classes, macs + 64 * classes)
    }

    #[test]
    fn cifar_resnets_count_as_the_formula_and_the_usual_figures() {
        for (net, n, params_m, macs_m) in [(ResNet::resnet20(), 3, 0.27, 41.0), (ResNet::resnet56(), 9, 0.86, 126.0)] {
            let g = net.graph([32, 32, 3], &net.channels(1.0), 10).unwrap();
            let (p, m) = cifar_formula(n, 10);
            assert_eq!((counts::params(&g), counts::macs(&g)), (p, m), "{}", net.name);
            assert_eq!(rounded(p, 1e6, 2), params_m, "{}", net.name);
            assert_eq!(rounded(m, 1e6, 0), macs_m, "{}", net.name);
            // The usual 0.27 M / 0.85 M are option A's: without the two projections.
            let proj: u64 = counts::nodes(&g).iter().filter(|c| c.name.contains("downsample")).map(|c| c.params).sum();
            assert_eq!(proj, 16 * 32 + 2 * 32 + 32 * 64 + 2 * 64);
            assert_eq!(rounded(p - proj, 1e6, 2), if n == 3 { 0.27 } else { 0.85 });
        }
        assert_eq!(ResNet::resnet20().channels(1.0).len(), 21);
        assert_eq!(ResNet::resnet56().channels(1.0).len(), 57);
        assert_eq!((ResNet::resnet18().channels(1.0).len(), ResNet::resnet50().channels(1.0).len()), (20, 53));
    }

    #[test]
    fn tensor_names_and_shapes_are_torchvisions() {
        let r18 = ResNet::resnet18();
        let g = r18.graph([224, 224, 3], &r18.channels(1.0), 1000).unwrap();
        assert_eq!(dims(&g, "conv1.weight"), [7, 7, 3, 64]);
        assert_eq!(dims(&g, "bn1.running_var"), [64]);
        assert_eq!(dims(&g, "layer1.0.conv1.weight"), [3, 3, 64, 64]);
        assert_eq!(dims(&g, "layer2.0.downsample.0.weight"), [1, 1, 64, 128]);
        assert_eq!(dims(&g, "layer2.0.downsample.1.bias"), [128]);
        assert_eq!(dims(&g, "fc.weight"), [512, 1000]);
        assert_eq!(dims(&g, "fc.bias"), [1000]);
        assert!(g.param_named("layer1.0.downsample.0.weight").is_none(), "64 -> 64 at stride 1 needs no projection");
        assert_eq!(g.params()[..6].iter().map(|p| p.name.as_str()).collect::<Vec<_>>(), [
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "layer1.0.conv1.weight"
        ]);
        let r50 = ResNet::resnet50();
        let g = r50.graph([224, 224, 3], &r50.channels(1.0), 1000).unwrap();
        assert_eq!(dims(&g, "layer1.0.downsample.0.weight"), [1, 1, 64, 256], "64 -> 256 projects at stride 1");
        assert_eq!(dims(&g, "layer2.0.conv1.weight"), [1, 1, 256, 128]);
        assert_eq!(dims(&g, "layer2.0.conv3.weight"), [1, 1, 128, 512]);
        assert_eq!(dims(&g, "fc.weight"), [2048, 1000]);
        let stride = |n: &str| g.find(n).unwrap().conv().unwrap().stride;
        assert_eq!((stride("layer2.0.conv1"), stride("layer2.0.conv2"), stride("layer2.0.downsample.0")), (1, 2, 2), "v1.5");
        assert_eq!(g.find("layer4.2.conv3").unwrap().dims, [7, 7, 2048]);
    }

    fn gap_input(g: &Graph) -> Vec<usize> {
        let gap = g.nodes().iter().find(|n| n.op == Op::GlobalAvgPool).unwrap();
        g.node(gap.inputs[0]).dims.clone()
    }

    #[test]
    fn final_maps_for_small_inputs() {
        let r20 = ResNet::resnet20();
        assert_eq!(gap_input(&r20.graph([32, 32, 1], &r20.channels(1.0), 10).unwrap()), [8, 8, 64]);
        assert_eq!(gap_input(&r20.graph([28, 28, 1], &r20.channels(1.0), 10).unwrap()), [7, 7, 64]);
        let r18 = ResNet::resnet18();
        assert_eq!(gap_input(&r18.graph([64, 64, 3], &r18.channels(1.0), 10).unwrap()), [2, 2, 512]);
        let r50 = ResNet::resnet50();
        assert_eq!(gap_input(&r50.graph([32, 32, 3], &r50.channels(0.25), 10).unwrap()), [1, 1, 512]);
    }

    #[test]
    fn width_scales_every_conv_and_keeps_the_blocks() {
        let r56 = ResNet::resnet56();
        let ch = r56.channels(0.5);
        assert_eq!((ch[0], ch[1], ch[ch.len() - 1]), (8, 8, 32));
        let g = r56.graph([32, 32, 3], &ch, 10).unwrap();
        let full = r56.graph([32, 32, 3], &r56.channels(1.0), 10).unwrap();
        let names = |g: &Graph| g.params().iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(&g), names(&full));
        assert_eq!(g.convs().map(|(n, _)| n.channels()).collect::<Vec<_>>(), ch);
        let r50 = ResNet::resnet50();
        let g = r50.graph([64, 64, 3], &r50.channels(0.125), 10).unwrap();
        assert_eq!(dims(&g, "fc.weight"), [256, 10]);
    }

    #[test]
    fn bad_channel_lists_are_refused_naming_the_node() {
        let r20 = ResNet::resnet20();
        let e = r20.graph([32, 32, 3], &[16; 20], 10).unwrap_err().to_string();
        assert!(e.contains("ResNet-20 has 21 conv layers"), "{e}");
        let mut ch = r20.channels(1.0);
        ch[2] = 12; // layer1.0.conv2 must match its identity shortcut (16)
        let e = r20.graph([32, 32, 3], &ch, 10).unwrap_err().to_string();
        assert!(e.contains("'layer1.0.bn2' [32, 32, 12]") && e.contains("[32, 32, 16]"), "{e}");
        let mut ch = r20.channels(1.0);
        ch[0] = 0;
        let e = r20.graph([32, 32, 3], &ch, 10).unwrap_err().to_string();
        assert!(e.contains("'conv1'"), "{e}");
    }
}
