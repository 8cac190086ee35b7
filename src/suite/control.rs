//! The masked control of a fine-tuned network: fine-tuning a masked network would bring its
//! silenced channels back, so the control after fine-tuning is the fine-tuned physical
//! network written back into the original shapes, the removed channels silenced exactly as
//! [`prune::mask`] silences them. It computes the same function as the physical network.

use ndarray::s;

use crate::error::{Error, Result};
use crate::model::Vgg;
use crate::prune;

/// `original`'s shapes holding `pruned`'s weights (`pruned` = `original` cut to `keep`, then
/// possibly trained); every channel not in `keep` outputs exactly 0.
pub fn masked_like(original: &Vgg, keep: &[Vec<usize>], pruned: &Vgg) -> Result<Vgg> {
    let mut out = prune::mask(original, keep)?;
    if pruned.arch.channels != keep.iter().map(|k| k.len()).collect::<Vec<_>>() {
        return Err(Error::invalid(
            "pruned network",
            pruned.arch.describe(),
            "its channel counts must be those of the keep sets",
        ));
    }
    for (i, k) in keep.iter().enumerate() {
        let (pc, oc) = (&pruned.convs[i], &mut out.convs[i]);
        oc.kernel.fill(0.0);
        for (a, &jo) in k.iter().enumerate() {
            if i == 0 {
                oc.kernel.slice_mut(s![.., .., .., jo]).assign(&pc.kernel.slice(s![.., .., .., a]));
            } else {
                for (b, &ji) in keep[i - 1].iter().enumerate() {
                    oc.kernel.slice_mut(s![.., .., ji, jo]).assign(&pc.kernel.slice(s![.., .., b, a]));
                }
            }
            oc.bias[jo] = pc.bias[a];
            if let (Some(ob), Some(pb)) = (oc.bn.as_mut(), pc.bn.as_ref()) {
                ob.gamma[jo] = pb.gamma[a];
                ob.beta[jo] = pb.beta[a];
                ob.mean[jo] = pb.mean[a];
                ob.var[jo] = pb.var[a];
            }
        }
    }
    let last = &keep[keep.len() - 1];
    let (h, w) = original.arch.final_hw();
    let c = original.arch.channels[original.arch.channels.len() - 1];
    let k = last.len();
    let d0 = &mut out.dense[0];
    d0.weight.fill(0.0);
    for p in 0..h * w {
        for (a, &j) in last.iter().enumerate() {
            d0.weight.row_mut(p * c + j).assign(&pruned.dense[0].weight.row(p * k + a));
        }
    }
    d0.bias.assign(&pruned.dense[0].bias);
    for (o, p) in out.dense.iter_mut().zip(&pruned.dense).skip(1) {
        *o = p.clone();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{reference, Arch};

    #[test]
    fn masked_like_computes_the_pruned_function() {
        let mut v = Vgg::init(&Arch::cifar(0.0625, 1, 10, vec![8]).unwrap(), 3);
        v.randomize_bn(4);
        let keep: Vec<Vec<usize>> = v.arch.channels.iter().map(|&n| (0..n).filter(|j| j % 2 == 0).collect()).collect();
        let mut p = prune::surgery(&v, &keep).unwrap();
        // "Training" changes the kept weights.
        p.convs[3].kernel.mapv_inplace(|x| x * 1.5 + 0.01);
        p.dense[0].weight.mapv_inplace(|x| x - 0.02);
        let m = masked_like(&v, &keep, &p).unwrap();
        assert_eq!(m.arch, v.arch);
        let x = ndarray::Array4::from_shape_fn((2, 32, 32, 1), |(n, y, x, _)| ((n * 7 + y * 37 + x * 11) % 101) as f64 / 50.0 - 1.0);
        let a = reference::forward(&p, &x);
        let b = reference::forward(&m, &x);
        let err = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0f64, f64::max);
        assert!(err < 1e-9, "max difference {err}");
    }
}
