//! VGG-16 (configuration "D", Simonyan & Zisserman 2015) as a graph, in both forms: 13 3x3
//! pad-1 convs with bias (each followed by BN when `batch_norm`, then ReLU), a 2x2/2 max-pool
//! after convs 1, 3, 6, 9 and 12, a flatten (NHWC order) and dense layers, ReLU between them.
//!
//! Node names follow prunebench's `vgg16/1` checkpoints (naming [`Naming::Vgg16`]): conv `i`
//! is `features.{i}`, its BN `features.{i}.bn`, dense `j` is `classifier.{j}`.

use super::check_len;
use crate::error::Result;
use crate::graph::{ConvSpec, Graph, GraphBuilder, Naming, PoolSpec};

/// Output channels of VGG-16's 13 convolutions.
pub const CHANNELS: [usize; 13] = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
/// Indices of the convs followed by a 2x2/2 max-pool.
pub const POOL_AFTER: [usize; 5] = [1, 3, 6, 9, 12];

/// VGG-16 on an `input` `[h, w, c]` with conv widths `channels` (13), dense hidden widths
/// `hidden` and `classes` outputs.
///
/// Errors: a channel list of another length, or shapes the graph refuses.
pub fn vgg16(input: [usize; 3], channels: &[usize], batch_norm: bool, hidden: &[usize], classes: usize) -> Result<Graph> {
    check_len("VGG-16", channels, CHANNELS.len())?;
    let mut b = GraphBuilder::new(input, Naming::Vgg16)?;
    let mut x = b.input();
    for (i, &c) in channels.iter().enumerate() {
        let name = format!("features.{i}");
        x = b.conv(&name, x, ConvSpec::new(c, 3, 1, 1, true))?;
        if batch_norm {
            x = b.batch_norm(&format!("{name}.bn"), x)?;
        }
        x = b.relu(x)?;
        if POOL_AFTER.contains(&i) {
            x = b.max_pool(x, PoolSpec::new(2, 2, 0))?;
        }
    }
    x = b.flatten(x)?;
    for (j, &h) in hidden.iter().chain(std::iter::once(&classes)).enumerate() {
        x = b.dense(&format!("classifier.{j}"), x, h, true)?;
        if j < hidden.len() {
            x = b.relu(x)?;
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::counts;

    /// Params and MACs of VGG-16 written out layer by layer: 3x3 convs with bias (+ BN gamma,
    /// beta), a map halved after each pool, dense layers with bias.
    fn formula(input: [usize; 3], channels: &[usize], bn: bool, hidden: &[usize], classes: usize) -> (u64, u64) {
        let (mut params, mut macs, mut cin, mut side) = (0u64, 0u64, input[2] as u64, input[0] as u64);
        for (i, &c) in channels.iter().enumerate() {
            let c = c as u64;
            params += 9 * cin * c + c + if bn { 2 * c } else { 0 };
            macs += side * side * 9 * cin * c;
            if POOL_AFTER.contains(&i) {
                side /= 2;
            }
            cin = c;
        }
        let mut fin = side * side * cin;
        for &o in hidden.iter().chain([classes].iter()) {
            params += fin * o as u64 + o as u64;
            macs += fin * o as u64;
            fin = o as u64;
        }
        (params, macs)
    }

    #[test]
    fn counts_equal_the_layer_by_layer_formula() {
        let quarter: Vec<usize> = CHANNELS.iter().map(|&c| c / 4).collect();
        for (input, channels, bn, hidden) in [
            ([32, 32, 3], &CHANNELS[..], true, vec![512]),
            ([32, 32, 1], &quarter[..], true, vec![]),
            ([224, 224, 3], &CHANNELS[..], true, vec![4096, 4096]),
            ([224, 224, 3], &CHANNELS[..], false, vec![4096, 4096]),
        ] {
            let g = vgg16(input, channels, bn, &hidden, 10).unwrap();
            assert_eq!((counts::params(&g), counts::macs(&g)), formula(input, channels, bn, &hidden, 10));
        }
        let g = vgg16([224, 224, 3], &CHANNELS, false, &[4096, 4096], 1000).unwrap();
        assert_eq!(counts::params(&g), 138_357_544);
    }

    #[test]
    fn tensor_names_are_the_checkpoint_names() {
        let g = vgg16([32, 32, 1], &[4; 13], true, &[], 10).unwrap();
        let names: Vec<&str> = g.params().iter().take(6).map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["features.0.weight", "features.0.bias", "features.0.bn.gamma", "features.0.bn.beta", "features.0.bn.running_mean", "features.0.bn.running_var"]
        );
        assert_eq!(g.params().last().unwrap().name, "classifier.0.bias");
        assert_eq!(g.params()[g.params().len() - 2].dims, [4, 10]);
    }
}
