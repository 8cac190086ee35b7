//! A plain Rust forward pass in f64: the independent reference that compiled programs are
//! checked against. Deliberately simple loops, unfolded BN, no shared code with the emitter.

use ndarray::{Array2, Array4};

use super::arch::Arch;
use super::weights::{Vgg, BN_EPS};

/// 3x3, stride 1, pad 1 convolution of NHWC `x` with HWIO `k`, plus `bias`.
pub fn conv3x3(x: &Array4<f64>, k: &Array4<f64>, bias: &[f64]) -> Array4<f64> {
    let (n, h, w, cin) = x.dim();
    let cout = k.shape()[3];
    let mut y = Array4::<f64>::zeros((n, h, w, cout));
    for b in 0..n {
        for i in 0..h {
            for j in 0..w {
                for o in 0..cout {
                    let mut s = bias[o];
                    for dy in 0..3 {
                        let yy = i as isize + dy as isize - 1;
                        if yy < 0 || yy >= h as isize {
                            continue;
                        }
                        for dx in 0..3 {
                            let xx = j as isize + dx as isize - 1;
                            if xx < 0 || xx >= w as isize {
                                continue;
                            }
                            for c in 0..cin {
                                s += x[[b, yy as usize, xx as usize, c]] * k[[dy, dx, c, o]];
                            }
                        }
                    }
                    y[[b, i, j, o]] = s;
                }
            }
        }
    }
    y
}

/// 2x2 stride-2 max-pool of NHWC `x`.
pub fn max_pool2(x: &Array4<f64>) -> Array4<f64> {
    let (n, h, w, c) = x.dim();
    Array4::from_shape_fn((n, h / 2, w / 2, c), |(b, i, j, ch)| {
        let mut m = f64::NEG_INFINITY;
        for dy in 0..2 {
            for dx in 0..2 {
                m = m.max(x[[b, 2 * i + dy, 2 * j + dx, ch]]);
            }
        }
        m
    })
}

/// Feature maps after conv `i` (post BN and ReLU, before any pool) are passed to `hook`,
/// which may change them (e.g. zero channels); returns the logits `[N, classes]`.
pub fn forward_with(v: &Vgg, x: &Array4<f64>, mut hook: impl FnMut(usize, &mut Array4<f64>)) -> Array2<f64> {
    let arch: &Arch = &v.arch;
    assert_eq!(&x.shape()[1..], &arch.input[..], "input shape");
    let mut a = x.clone();
    for (i, c) in v.convs.iter().enumerate() {
        let k = c.kernel.mapv(f64::from);
        let bias: Vec<f64> = c.bias.iter().map(|&b| b as f64).collect();
        let mut y = conv3x3(&a, &k, &bias);
        if let Some(bn) = &c.bn {
            for ((_, _, _, o), val) in y.indexed_iter_mut() {
                let (g, be, m, var) = (bn.gamma[o] as f64, bn.beta[o] as f64, bn.mean[o] as f64, bn.var[o] as f64);
                *val = (*val - m) / (var + BN_EPS as f64).sqrt() * g + be;
            }
        }
        y.mapv_inplace(|t| t.max(0.0));
        hook(i, &mut y);
        a = if Arch::pools_after(i) { max_pool2(&y) } else { y };
    }
    let n = a.shape()[0];
    // NHWC flatten: feature index (y * W + x) * C + c.
    let flat = a.into_shape_with_order((n, arch.flat_features())).expect("contiguous");
    let mut h = flat;
    let last = v.dense.len() - 1;
    for (j, d) in v.dense.iter().enumerate() {
        let w = d.weight.mapv(f64::from);
        let mut y = h.dot(&w);
        for mut row in y.rows_mut() {
            for (o, val) in row.iter_mut().enumerate() {
                *val += d.bias[o] as f64;
                if j != last {
                    *val = val.max(0.0);
                }
            }
        }
        h = y;
    }
    h
}

/// Logits of `v` on NHWC input `x`.
pub fn forward(v: &Vgg, x: &Array4<f64>) -> Array2<f64> {
    forward_with(v, x, |_, _| {})
}
