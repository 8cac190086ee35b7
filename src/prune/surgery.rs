//! Surgery: cut channels out of a network for real, and the masked control of the same
//! choice.
//!
//! Removing output channel `j` of conv `i` removes its filter and bias, the gamma, beta,
//! running mean and variance of its batch norm, input channel `j` of conv `i + 1`, and after
//! the last conv every row of the first dense layer that reads channel `j` (rows
//! `(y * W + x) * C + j` of the NHWC flatten over the final `H x W` map). Kept channels stay
//! in their original order.

use ndarray::{Array1, Axis};

use crate::error::{Error, Result};
use crate::model::{BatchNorm, Conv, Dense, Vgg};

/// Checks `keep` is one strictly increasing, non-empty, in-range index list per conv.
pub fn check_keep(v: &Vgg, keep: &[Vec<usize>]) -> Result<()> {
    let n = v.convs.len();
    if keep.len() != n {
        return Err(Error::invalid(
            "keep sets",
            format!("{} lists", keep.len()),
            format!("give one list per conv ({n})"),
        ));
    }
    for (i, k) in keep.iter().enumerate() {
        let c = v.convs[i].out_channels();
        if k.is_empty() {
            return Err(Error::invalid(
                "keep set",
                format!("conv {i}: []"),
                "every conv must keep at least one channel",
            ));
        }
        if k.windows(2).any(|w| w[0] >= w[1]) || k[k.len() - 1] >= c {
            return Err(Error::invalid(
                "keep set",
                format!("conv {i}: {k:?}"),
                format!("give strictly increasing channel indices below {c}"),
            ));
        }
    }
    Ok(())
}

fn take(a: &Array1<f32>, idx: &[usize]) -> Array1<f32> {
    a.select(Axis(0), idx)
}

/// The network with only the channels in `keep[i]` of each conv `i`: genuinely smaller
/// tensors, architecture `arch.with_channels(..)`.
pub fn surgery(v: &Vgg, keep: &[Vec<usize>]) -> Result<Vgg> {
    check_keep(v, keep)?;
    let arch = v.arch.with_channels(keep.iter().map(|k| k.len()).collect())?;
    let convs = v
        .convs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let k = &keep[i];
            let mut kernel = c.kernel.select(Axis(3), k);
            if i > 0 {
                kernel = kernel.select(Axis(2), &keep[i - 1]);
            }
            let bn = c.bn.as_ref().map(|bn| BatchNorm {
                gamma: take(&bn.gamma, k),
                beta: take(&bn.beta, k),
                mean: take(&bn.mean, k),
                var: take(&bn.var, k),
            });
            Conv { kernel, bias: take(&c.bias, k), bn }
        })
        .collect();
    let last = &keep[keep.len() - 1];
    let (h, w) = v.arch.final_hw();
    let c = v.convs[v.convs.len() - 1].out_channels();
    let rows: Vec<usize> = (0..h * w).flat_map(|p| last.iter().map(move |&j| p * c + j)).collect();
    let mut dense = v.dense.clone();
    dense[0] = Dense { weight: v.dense[0].weight.select(Axis(0), &rows), bias: v.dense[0].bias.clone() };
    Ok(Vgg { arch, convs, dense })
}

/// The masked control: same shapes as `v`, every channel not in `keep` silenced so its
/// post-ReLU output is exactly 0 — filter and bias zeroed and, with BN, gamma = beta = 0
/// (then BN outputs 0 whatever its input and running statistics).
pub fn mask(v: &Vgg, keep: &[Vec<usize>]) -> Result<Vgg> {
    check_keep(v, keep)?;
    let mut out = v.clone();
    for (c, k) in out.convs.iter_mut().zip(keep) {
        for j in (0..c.out_channels()).filter(|j| k.binary_search(j).is_err()) {
            c.kernel.index_axis_mut(Axis(3), j).fill(0.0);
            c.bias[j] = 0.0;
            if let Some(bn) = &mut c.bn {
                bn.gamma[j] = 0.0;
                bn.beta[j] = 0.0;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    fn net(arch: Arch) -> Vgg {
        let mut v = Vgg::init(&arch, 5);
        v.randomize_bn(6);
        v
    }

    #[test]
    fn cuts_every_affected_tensor() {
        let v = net(Arch::imagenet(1.0 / 16.0, 3, 5, true).unwrap().with_input(64, 64).unwrap());
        let keep: Vec<Vec<usize>> = v.arch.channels.iter().map(|&n| (0..n).filter(|j| j % 3 != 1).collect()).collect();
        let p = surgery(&v, &keep).unwrap();
        let c12 = v.arch.channels[12];
        let k12 = keep[12].len();
        assert_eq!(p.arch.channels, keep.iter().map(|k| k.len()).collect::<Vec<_>>());
        assert_eq!(p.convs[3].kernel.shape(), &[3, 3, keep[2].len(), keep[3].len()]);
        assert_eq!(p.convs[0].kernel.shape(), &[3, 3, 3, keep[0].len()]);
        assert_eq!(p.convs[4].bn.as_ref().unwrap().var.len(), keep[4].len());
        assert_eq!(p.dense[0].weight.shape(), &[4 * k12, v.arch.hidden[0]]);
        // Kept weights are the original ones, in order.
        let (a, b) = (keep[2][1], keep[3][2]);
        assert_eq!(p.convs[3].kernel[[1, 0, 1, 2]], v.convs[3].kernel[[1, 0, a, b]]);
        assert_eq!(p.convs[3].bias[2], v.convs[3].bias[b]);
        // Dense row for position p = 3 (y=1, x=1), kept channel index 1.
        assert_eq!(p.dense[0].weight.row(3 * k12 + 1), v.dense[0].weight.row(3 * c12 + keep[12][1]));
        assert_eq!(p.dense[1..], v.dense[1..]);
    }

    #[test]
    fn rejects_bad_keep_sets() {
        let v = net(Arch::cifar(0.0625, 3, 10, vec![]).unwrap());
        let mut keep: Vec<Vec<usize>> = v.arch.channels.iter().map(|&n| (0..n).collect()).collect();
        keep[2] = vec![];
        assert!(surgery(&v, &keep).unwrap_err().to_string().contains("conv 2"));
        keep[2] = vec![1, 0];
        assert!(mask(&v, &keep).unwrap_err().to_string().contains("increasing"));
        keep[2] = vec![0, 99];
        assert!(surgery(&v, &keep).is_err());
        assert!(surgery(&v, &keep[..12]).unwrap_err().to_string().contains("12 lists"));
    }

    #[test]
    fn mask_keeps_shapes_and_silences_channels() {
        let v = net(Arch::cifar(0.0625, 3, 10, vec![]).unwrap());
        let keep: Vec<Vec<usize>> = v.arch.channels.iter().map(|&n| (1..n).collect()).collect();
        let m = mask(&v, &keep).unwrap();
        assert_eq!(m.arch, v.arch);
        let (k, b) = m.convs[5].folded();
        assert!(k.index_axis(Axis(3), 0).iter().all(|&x| x == 0.0) && b[0] == 0.0);
        assert_eq!(m.convs[5].kernel.index_axis(Axis(3), 1), v.convs[5].kernel.index_axis(Axis(3), 1));
    }
}
