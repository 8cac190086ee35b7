//! Exact parameter and MAC counts of an architecture, from its graph: the one counting code
//! is [`crate::graph::counts`] (what is counted and what is not is written there).

use super::arch::Arch;
use crate::graph::{counts, Graph, Op};

/// Params and MACs of one layer: a conv or dense node with the batch norm that reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCount {
    /// `conv{i}` for the `i`-th conv in graph order (its count is `Arch::channels[i]`),
    /// `dense{j}` for the `j`-th dense layer.
    pub name: String,
    /// The graph node, e.g. `features.3`, `layer2.0.downsample.0`, `fc`.
    pub node: String,
    pub params: u64,
    pub macs: u64,
}

/// The graph of a validated `arch`.
///
/// Panics if `arch` does not build; every constructor of [`Arch`] and checkpoint loading
/// validate it first, so only an `Arch` edited by hand into an invalid one does.
fn graph(arch: &Arch) -> Graph {
    arch.graph().unwrap_or_else(|e| panic!("counts of an architecture that does not build ({}): {e}", arch.describe()))
}

/// Per-layer counts in graph order: every conv (`conv0..`) and dense layer (`dense0..`), the
/// params of a batch norm counted in the layer it follows. They sum to [`params`] and
/// [`macs`].
pub fn layers(arch: &Arch) -> Vec<LayerCount> {
    let g = graph(arch);
    let (mut convs, mut dense) = (0, 0);
    let mut out = Vec::new();
    for n in g.nodes() {
        let name = match n.op {
            Op::Conv(_) => {
                convs += 1;
                format!("conv{}", convs - 1)
            }
            Op::Dense { .. } => {
                dense += 1;
                format!("dense{}", dense - 1)
            }
            _ => continue,
        };
        let bn: u64 = g.consumers(n.id).iter().map(|&c| g.node(c)).filter(|c| c.op == Op::BatchNorm).map(|c| counts::node_params(&g, c)).sum();
        out.push(LayerCount { name, node: n.name.clone(), params: counts::node_params(&g, n) + bn, macs: counts::node_macs(&g, n) });
    }
    out
}

/// Total trainable parameters.
pub fn params(arch: &Arch) -> u64 {
    counts::params(&graph(arch))
}

/// Total MACs for one image.
pub fn macs(arch: &Arch) -> u64 {
    counts::macs(&graph(arch))
}

/// MACs of the convolutions only, for one image.
pub fn conv_macs(arch: &Arch) -> u64 {
    counts::conv_macs(&graph(arch))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Form;

    #[test]
    fn imagenet_counts_match_torchvision() {
        let a = Arch::imagenet(1.0, 3, 1000, false).unwrap();
        assert_eq!(params(&a), 138_357_544);
        // 15.47 G MACs as usually quoted (convs 15.35 G + dense 0.12 G).
        assert_eq!((macs(&a) as f64 / 1e7).round() / 100.0, 15.47);
        let bn = Arch::imagenet(1.0, 3, 1000, true).unwrap();
        assert_eq!(params(&bn), 138_365_992); // torchvision vgg16_bn
    }

    #[test]
    fn cifar_conv_macs() {
        let a = Arch::cifar(1.0, 3, 10, vec![512]).unwrap();
        assert_eq!((conv_macs(&a) as f64 / 1e4).round() / 100.0, 313.20);
        // conv weights + biases = 14.715 M (the usual CIFAR VGG-16 figure without the head)
        let with_bn: u64 = layers(&a).iter().take(13).map(|l| l.params).sum();
        let conv_params = with_bn - 2 * a.channels.iter().sum::<usize>() as u64;
        assert_eq!(conv_params, 14_714_688);
        let no_bn = Arch { batch_norm: false, ..a };
        assert_eq!(params(&no_bn), 14_714_688 + 512 * 512 + 512 + 512 * 10 + 10);
    }

    #[test]
    fn layers_sum_to_the_totals_for_every_form() {
        for form in Form::all() {
            let a = Arch::new(form, 0.25, 3, 10).unwrap();
            let l = layers(&a);
            assert_eq!(l.iter().map(|l| l.params).sum::<u64>(), params(&a), "{form}");
            assert_eq!(l.iter().map(|l| l.macs).sum::<u64>(), macs(&a), "{form}");
            let convs: Vec<&LayerCount> = l.iter().filter(|l| l.name.starts_with("conv")).collect();
            assert_eq!(convs.len(), a.channels.len(), "{form}");
            assert_eq!(convs.last().unwrap().name, format!("conv{}", a.channels.len() - 1));
        }
        let a = Arch::new(Form::Resnet20Cifar, 1.0, 3, 10).unwrap();
        let l = layers(&a);
        // layer1.0.conv1: 3x3 16 -> 16 on 32x32, with its BN.
        assert_eq!((l[1].node.as_str(), l[1].params, l[1].macs), ("layer1.0.conv1", 9 * 16 * 16 + 2 * 16, 32 * 32 * 9 * 16 * 16));
        assert_eq!((l[21].name.as_str(), l[21].node.as_str(), l[21].params), ("dense0", "fc", 64 * 10 + 10));
    }
}
