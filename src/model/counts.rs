//! Exact parameter and MAC counts from an architecture.
//!
//! Params count what a framework trains: conv kernels and biases, BN gamma and beta (running
//! statistics are buffers, not parameters), dense weights and biases. MACs count
//! multiply-accumulates of convs and dense layers (FLOPs are about twice that).

use super::arch::Arch;

/// Params and MACs of one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerCount {
    pub name: String,
    pub params: u64,
    pub macs: u64,
}

/// Per-layer counts: `conv0..conv12`, then `dense0..`.
pub fn layers(arch: &Arch) -> Vec<LayerCount> {
    let mut out = Vec::new();
    for i in 0..arch.channels.len() {
        let (cin, cout) = (arch.conv_in(i) as u64, arch.channels[i] as u64);
        let (h, w) = arch.conv_hw(i);
        let bn = if arch.batch_norm { 2 * cout } else { 0 };
        out.push(LayerCount {
            name: format!("conv{i}"),
            params: 9 * cin * cout + cout + bn,
            macs: (h * w) as u64 * 9 * cin * cout,
        });
    }
    for (j, (i, o)) in arch.dense_dims().into_iter().enumerate() {
        let (i, o) = (i as u64, o as u64);
        out.push(LayerCount { name: format!("dense{j}"), params: i * o + o, macs: i * o });
    }
    out
}

/// Total trainable parameters.
pub fn params(arch: &Arch) -> u64 {
    layers(arch).iter().map(|l| l.params).sum()
}

/// Total MACs for one image.
pub fn macs(arch: &Arch) -> u64 {
    layers(arch).iter().map(|l| l.macs).sum()
}

/// MACs of the convolutions only, for one image.
pub fn conv_macs(arch: &Arch) -> u64 {
    layers(arch).iter().filter(|l| l.name.starts_with("conv")).map(|l| l.macs).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
