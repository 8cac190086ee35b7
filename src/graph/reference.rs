//! The f64 host reference: an interpreter over a [`Graph`] with its own plain-loop kernels,
//! sharing no code with the StableHLO emitter, so that compiled programs (forward and
//! gradients) are checked against something independent.
//!
//! Values are `ArrayD<f64>` with the batch axis first: `[n, h, w, c]` maps, `[n, f]` flat
//! features. Tensors follow the graph's parameter table (HWIO kernels, `[in, out]` dense).

use ndarray::{Array2, Array4, ArrayD, Axis, Ix2, Ix4};

use super::build::{Graph, NodeId};
use super::op::{ConvSpec, Op, PoolSpec, Role, BN_EPS};

/// Which statistics batch norm uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// The running statistics (inference).
    Running,
    /// The batch's own mean and biased variance over `n, h, w` (training).
    Batch,
}

fn map4(v: &ArrayD<f64>) -> Array4<f64> {
    v.clone().into_dimensionality::<Ix4>().expect("a feature map [n, h, w, c]")
}

/// Convolution of NHWC `x` with HWIO `k` `[kh, kw, in/groups, out]`, stride, zero padding
/// and groups of `spec`, plus `bias` when given.
pub fn conv(x: &Array4<f64>, k: &Array4<f64>, bias: Option<&[f64]>, spec: &ConvSpec) -> Array4<f64> {
    let (n, h, w, cin) = x.dim();
    let (kh, kw, cg, cout) = k.dim();
    let (s, p) = (spec.stride as isize, spec.pad as isize);
    let oh = (h + 2 * spec.pad - kh) / spec.stride + 1;
    let ow = (w + 2 * spec.pad - kw) / spec.stride + 1;
    let og = cout / spec.groups;
    assert_eq!(cg * spec.groups, cin, "kernel input channels times groups");
    let mut y = Array4::<f64>::zeros((n, oh, ow, cout));
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..cout {
                    let first = (o / og) * cg;
                    let mut acc = bias.map_or(0.0, |bs| bs[o]);
                    for dy in 0..kh {
                        let yy = i as isize * s + dy as isize - p;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for dx in 0..kw {
                            let xx = j as isize * s + dx as isize - p;
                            if xx < 0 || xx >= w as isize {
                                continue;
                            }
                            for c in 0..cg {
                                acc += x[[b, yy as usize, xx as usize, first + c]] * k[[dy, dx, c, o]];
                            }
                        }
                    }
                    y[[b, i, j, o]] = acc;
                }
            }
        }
    }
    y
}

/// Max (padding with -inf) or mean (no padding) over each `k x k` window.
pub fn pool(x: &Array4<f64>, p: &PoolSpec, max: bool) -> Array4<f64> {
    let (n, h, w, c) = x.dim();
    let oh = (h + 2 * p.pad - p.k) / p.stride + 1;
    let ow = (w + 2 * p.pad - p.k) / p.stride + 1;
    Array4::from_shape_fn((n, oh, ow, c), |(b, i, j, ch)| {
        let mut m = f64::NEG_INFINITY;
        let mut sum = 0.0;
        for dy in 0..p.k {
            for dx in 0..p.k {
                let yy = (i * p.stride + dy) as isize - p.pad as isize;
                let xx = (j * p.stride + dx) as isize - p.pad as isize;
                if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                    continue;
                }
                let v = x[[b, yy as usize, xx as usize, ch]];
                m = m.max(v);
                sum += v;
            }
        }
        if max { m } else { sum / (p.k * p.k) as f64 }
    })
}

/// Batch norm of NHWC `x` with per-channel `gamma`, `beta` and, in [`BnMode::Running`], the
/// running `mean`, `var`; in [`BnMode::Batch`] the batch's mean and biased variance.
pub fn batch_norm(x: &Array4<f64>, gamma: &[f64], beta: &[f64], mean: &[f64], var: &[f64], mode: BnMode) -> Array4<f64> {
    let (n, h, w, c) = x.dim();
    let (mean, var): (Vec<f64>, Vec<f64>) = match mode {
        BnMode::Running => (mean.to_vec(), var.to_vec()),
        BnMode::Batch => {
            let m = (n * h * w) as f64;
            let mu: Vec<f64> = (0..c).map(|ch| x.index_axis(Axis(3), ch).sum() / m).collect();
            let v = (0..c).map(|ch| x.index_axis(Axis(3), ch).iter().map(|t| (t - mu[ch]).powi(2)).sum::<f64>() / m).collect();
            (mu, v)
        }
    };
    let mut y = x.clone();
    for ((_, _, _, ch), t) in y.indexed_iter_mut() {
        *t = (*t - mean[ch]) / (var[ch] + BN_EPS).sqrt() * gamma[ch] + beta[ch];
    }
    y
}

/// Every node's output for the batch `x` `[n, h, w, c]`, in node order (the last is the
/// network's output). `params` follows `g.params()`.
///
/// Panics on tensors or inputs of other shapes (it is a test oracle; callers build both from
/// the same graph).
pub fn forward(g: &Graph, params: &[ArrayD<f64>], x: &ArrayD<f64>, bn: BnMode) -> Vec<ArrayD<f64>> {
    forward_with(g, params, x, bn, |_, _| {})
}

/// [`forward`] with `hook(node, value)` called on every node's output before its consumers
/// read it (e.g. to zero channels: an intervention the emitter has no counterpart of).
pub fn forward_with(g: &Graph, params: &[ArrayD<f64>], x: &ArrayD<f64>, bn: BnMode, mut hook: impl FnMut(NodeId, &mut ArrayD<f64>)) -> Vec<ArrayD<f64>> {
    assert_eq!(params.len(), g.params().len(), "one tensor per parameter");
    assert_eq!(&x.shape()[1..], &g.input().dims[..], "input shape");
    let tensor = |node, role| g.param_index(node, role).map(|i| &params[i]);
    let flat = |a: &ArrayD<f64>| a.iter().copied().collect::<Vec<f64>>();
    let mut values: Vec<ArrayD<f64>> = Vec::with_capacity(g.nodes().len());
    for node in g.nodes() {
        let input = |k: usize| &values[node.inputs[k].0];
        let y = match &node.op {
            Op::Input => x.clone(),
            Op::Conv(spec) => {
                let k = tensor(node.id, Role::Kernel).expect("conv kernel").clone().into_dimensionality::<Ix4>().expect("HWIO");
                let bias = tensor(node.id, Role::Bias).map(flat);
                conv(&map4(input(0)), &k, bias.as_deref(), spec).into_dyn()
            }
            Op::BatchNorm => {
                let t = |r| flat(tensor(node.id, r).expect("BN tensor"));
                let (ga, be, mu, va) = (t(Role::Gamma), t(Role::Beta), t(Role::RunningMean), t(Role::RunningVar));
                batch_norm(&map4(input(0)), &ga, &be, &mu, &va, bn).into_dyn()
            }
            Op::Relu => input(0).mapv(|t| t.max(0.0)),
            Op::Relu6 => input(0).mapv(|t| t.clamp(0.0, 6.0)),
            Op::MaxPool(p) => pool(&map4(input(0)), p, true).into_dyn(),
            Op::AvgPool(p) => pool(&map4(input(0)), p, false).into_dyn(),
            Op::GlobalAvgPool => {
                let m = map4(input(0));
                let (n, h, w, c) = m.dim();
                Array2::from_shape_fn((n, c), |(b, ch)| {
                    let mut s = 0.0;
                    for i in 0..h {
                        for j in 0..w {
                            s += m[[b, i, j, ch]];
                        }
                    }
                    s / (h * w) as f64
                })
                .into_dyn()
            }
            Op::Add => input(0) + input(1),
            Op::Flatten => {
                // NHWC order: feature (y * W + x) * C + c is the row-major order of [h, w, c].
                let v = input(0);
                let n = v.shape()[0];
                let f = node.dims[0];
                ArrayD::from_shape_vec(vec![n, f], v.iter().copied().collect()).expect("flatten")
            }
            Op::Dense { out, .. } => {
                let a = input(0).clone().into_dimensionality::<Ix2>().expect("[n, f]");
                let wt = tensor(node.id, Role::Weight).expect("dense weight").clone().into_dimensionality::<Ix2>().expect("[in, out]");
                let mut y = Array2::<f64>::zeros((a.nrows(), *out));
                for b in 0..a.nrows() {
                    for o in 0..*out {
                        let mut s = 0.0;
                        for i in 0..a.ncols() {
                            s += a[[b, i]] * wt[[i, o]];
                        }
                        y[[b, o]] = s;
                    }
                }
                if let Some(bias) = tensor(node.id, Role::Bias) {
                    for mut row in y.rows_mut() {
                        row.iter_mut().zip(bias.iter()).for_each(|(t, b)| *t += b);
                    }
                }
                y.into_dyn()
            }
        };
        let mut y = y;
        hook(node.id, &mut y);
        values.push(y);
    }
    values
}

/// The network's output (logits `[n, classes]`) for `x`.
pub fn logits(g: &Graph, params: &[ArrayD<f64>], x: &ArrayD<f64>, bn: BnMode) -> ArrayD<f64> {
    forward(g, params, x, bn).pop().expect("a graph has nodes")
}

/// Mean softmax cross-entropy of `logits` `[n, k]` against class indices `labels`.
pub fn softmax_xent(logits: &ArrayD<f64>, labels: &[usize]) -> f64 {
    let l = logits.view().into_dimensionality::<Ix2>().expect("[n, k] logits");
    assert_eq!(l.nrows(), labels.len(), "one label per row");
    let mut total = 0.0;
    for (row, &y) in l.rows().into_iter().zip(labels) {
        let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let lse = m + row.iter().map(|t| (t - m).exp()).sum::<f64>().ln();
        total += lse - row[y];
    }
    total / labels.len() as f64
}

/// Converts an f32 tensor list to f64.
pub fn to_f64(t: &[ArrayD<f32>]) -> Vec<ArrayD<f64>> {
    t.iter().map(|a| a.mapv(f64::from)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{s, Array4};

    fn ramp(shape: (usize, usize, usize, usize), seed: usize) -> Array4<f64> {
        Array4::from_shape_fn(shape, |(a, b, c, d)| (((a * 31 + b * 17 + c * 7 + d * 3 + seed) % 23) as f64 - 11.0) / 7.0)
    }

    #[test]
    fn grouped_conv_is_separate_convs_on_channel_slices() {
        let x = ramp((2, 5, 6, 4), 1);
        let k = ramp((3, 3, 2, 6), 2);
        let spec = ConvSpec { groups: 2, ..ConvSpec::new(6, 3, 1, 1, false) };
        let y = conv(&x, &k, None, &spec);
        let one = ConvSpec::new(3, 3, 1, 1, false);
        for g in 0..2 {
            let xs = x.slice(s![.., .., .., 2 * g..2 * g + 2]).to_owned();
            let ks = k.slice(s![.., .., .., 3 * g..3 * g + 3]).to_owned();
            let part = conv(&xs, &ks, None, &one);
            assert_eq!(part, y.slice(s![.., .., .., 3 * g..3 * g + 3]));
        }
    }

    #[test]
    fn strided_conv_is_the_stride_one_conv_subsampled() {
        let x = ramp((1, 7, 8, 3), 3);
        let k = ramp((3, 3, 3, 2), 4);
        let full = conv(&x, &k, Some(&[0.5, -1.0]), &ConvSpec::new(2, 3, 1, 1, true));
        let strided = conv(&x, &k, Some(&[0.5, -1.0]), &ConvSpec::new(2, 3, 2, 1, true));
        assert_eq!(strided.dim(), (1, 4, 4, 2));
        assert_eq!(strided, full.slice(s![.., ..;2, ..;2, ..]));
        // One hand-computed value: output (0, 0) of channel 0 sees x[0..2, 0..2] through
        // kernel taps (1..3, 1..3).
        let mut want = 0.5;
        for dy in 0..2 {
            for dx in 0..2 {
                for c in 0..3 {
                    want += x[[0, dy, dx, c]] * k[[dy + 1, dx + 1, c, 0]];
                }
            }
        }
        assert!((strided[[0, 0, 0, 0]] - want).abs() < 1e-12);
    }

    #[test]
    fn pools_and_batch_norm() {
        let x = ramp((1, 4, 4, 2), 5);
        let m = pool(&x, &PoolSpec::new(3, 2, 1), true);
        assert_eq!(m.dim(), (1, 2, 2, 2));
        let corner = x.slice(s![0, 0..2, 0..2, 1]).iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(m[[0, 0, 0, 1]], corner, "padding never wins a max");
        let a = pool(&x, &PoolSpec::new(2, 2, 0), false);
        assert!((a[[0, 1, 1, 0]] - x.slice(s![0, 2..4, 2..4, 0]).sum() / 4.0).abs() < 1e-12);
        let y = batch_norm(&x, &[2.0, 0.5], &[1.0, -1.0], &[0.0; 2], &[1.0; 2], BnMode::Batch);
        for ch in 0..2 {
            let v = y.index_axis(Axis(3), ch);
            let mean = v.sum() / 16.0;
            assert!((mean - [1.0, -1.0][ch]).abs() < 1e-12, "batch mean goes to beta");
        }
        let r = batch_norm(&x, &[2.0, 0.5], &[1.0, -1.0], &[0.25, 0.0], &[3.0, 1.0], BnMode::Running);
        assert!((r[[0, 1, 2, 0]] - ((x[[0, 1, 2, 0]] - 0.25) / (3.0 + BN_EPS).sqrt() * 2.0 + 1.0)).abs() < 1e-12);
    }

    #[test]
    fn cross_entropy_of_uniform_logits_is_ln_k() {
        let l = ArrayD::zeros(vec![3, 5]);
        assert!((softmax_xent(&l, &[0, 4, 2]) - 5f64.ln()).abs() < 1e-12);
        let mut l = ArrayD::zeros(vec![1, 2]);
        l[[0, 0]] = 1000.0;
        assert!(softmax_xent(&l, &[0]).abs() < 1e-12, "stable for large logits");
    }
}
