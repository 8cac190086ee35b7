//! The masked control of a fine-tuned network: fine-tuning a masked network would bring its
//! silenced channels back, so the control after fine-tuning is the fine-tuned physical
//! network written back into the original shapes, the removed channels silenced exactly as
//! [`prune::mask`] silences them ([`prune::embed`]). It computes the same function as the
//! physical network.

use crate::error::{Error, Result};
use crate::model::Network;
use crate::prune;

/// `original`'s shapes holding `pruned`'s weights (`pruned` = `original` cut to `keep`, one
/// kept list per pruned group, then possibly trained); every channel not in `keep` outputs
/// exactly 0.
///
/// Errors: `pruned` does not have the channel counts of `keep`.
pub fn masked_like(original: &Network, keep: &[Vec<usize>], pruned: &Network) -> Result<Network> {
    if prune::group_channels(pruned) != keep.iter().map(|k| k.len()).collect::<Vec<_>>() {
        return Err(Error::invalid(
            "pruned network",
            pruned.describe(),
            "its channel counts must be those of the keep sets",
        ));
    }
    let sel = prune::full_selection(original, keep)?;
    let t = prune::embed(&original.graph, &original.tensors, &sel, &pruned.tensors)?;
    Network::new(original.arch.clone(), t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::reference::{logits, to_f64, BnMode};
    use crate::model::{Arch, Form};

    #[test]
    fn masked_like_computes_the_pruned_function() {
        for (form, side) in [(Form::Cifar, 32), (Form::Resnet20Cifar, 16), (Form::Mobilenetv2Cifar, 16)] {
            let mut arch = Arch::new(form, 0.25, 1, 10).unwrap();
            if !form.is_vgg() {
                arch = arch.with_input(side, side).unwrap();
            }
            let mut v = Network::init(&arch, 3);
            v.randomize_bn(4);
            let keep: Vec<Vec<usize>> = prune::group_channels(&v).iter().map(|&n| (0..n).filter(|j| j % 2 == 0).collect()).collect();
            let mut p = prune::surgery(&v, &keep).unwrap();
            // "Training" changes the kept weights.
            for t in p.tensors.iter_mut() {
                t.mapv_inplace(|x| x * 1.01 + 0.001);
            }
            let m = masked_like(&v, &keep, &p).unwrap();
            assert_eq!(m.arch, v.arch);
            let x = ndarray::Array4::from_shape_fn((2, side, side, 1), |(n, y, x, _)| ((n * 7 + y * 37 + x * 11) % 101) as f64 / 50.0 - 1.0).into_dyn();
            let a = logits(&p.graph, &to_f64(&p.tensors), &x, BnMode::Running);
            let b = logits(&m.graph, &to_f64(&m.tensors), &x, BnMode::Running);
            let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f64, f64::max);
            assert!(err < 1e-9, "{form}: max difference {err}");
        }
    }
}
