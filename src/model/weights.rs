//! Weights of a VGG-16 in host memory (`ndarray`, f32), seeded initialisation and BN folding.
//!
//! Layouts: conv kernels HWIO `[3, 3, in, out]`; dense weights `[in, out]`; the first dense
//! layer reads the last feature map flattened in NHWC order, i.e. feature index
//! `(y * W + x) * C + c`.

use ndarray::{Array1, Array2, Array4, Axis};

use super::arch::Arch;

/// Epsilon of every batch norm (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// A batch norm's parameters and running statistics, one entry per channel.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    pub gamma: Array1<f32>,
    pub beta: Array1<f32>,
    pub mean: Array1<f32>,
    pub var: Array1<f32>,
}

impl BatchNorm {
    pub fn identity(n: usize) -> Self {
        BatchNorm {
            gamma: Array1::ones(n),
            beta: Array1::zeros(n),
            mean: Array1::zeros(n),
            var: Array1::ones(n),
        }
    }

    /// Per-channel `(scale, shift)` with `bn(x) = x * scale + shift`.
    pub fn scale_shift(&self) -> (Array1<f32>, Array1<f32>) {
        let scale = &self.gamma / &self.var.mapv(|v| (v + BN_EPS).sqrt());
        let shift = &self.beta - &(&self.mean * &scale);
        (scale, shift)
    }
}

/// One 3x3 pad-1 convolution, its bias and its optional batch norm.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv {
    /// HWIO `[3, 3, in, out]`.
    pub kernel: Array4<f32>,
    pub bias: Array1<f32>,
    pub bn: Option<BatchNorm>,
}

impl Conv {
    pub fn out_channels(&self) -> usize {
        self.kernel.shape()[3]
    }

    /// Kernel and bias with the batch norm folded in (inference form).
    pub fn folded(&self) -> (Array4<f32>, Array1<f32>) {
        match &self.bn {
            None => (self.kernel.clone(), self.bias.clone()),
            Some(bn) => {
                let (scale, shift) = bn.scale_shift();
                let kernel = &self.kernel * &scale.view().insert_axis(Axis(0)).insert_axis(Axis(0)).insert_axis(Axis(0));
                let bias = &self.bias * &scale + &shift;
                (kernel, bias)
            }
        }
    }
}

/// A dense layer `y = x W + b`.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense {
    /// `[in, out]`.
    pub weight: Array2<f32>,
    pub bias: Array1<f32>,
}

/// A whole network: its architecture and its weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Vgg {
    pub arch: Arch,
    pub convs: Vec<Conv>,
    pub dense: Vec<Dense>,
}

impl Vgg {
    /// The tensors in the order and shapes of the VGG graph's parameter table
    /// ([`crate::graph::nets::vgg`]): per conv its kernel, bias and (with BN) gamma, beta,
    /// running mean and variance; per dense layer its weight and bias.
    pub fn to_tensors(&self) -> Vec<ndarray::ArrayD<f32>> {
        let mut t = Vec::new();
        for c in &self.convs {
            t.push(c.kernel.clone().into_dyn());
            t.push(c.bias.clone().into_dyn());
            if let Some(bn) = &c.bn {
                for a in [&bn.gamma, &bn.beta, &bn.mean, &bn.var] {
                    t.push(a.clone().into_dyn());
                }
            }
        }
        for d in &self.dense {
            t.push(d.weight.clone().into_dyn());
            t.push(d.bias.clone().into_dyn());
        }
        t
    }

    /// The network of `arch` from tensors in [`Vgg::to_tensors`] order.
    ///
    /// Errors: a count or shape that differs from `arch`'s graph, naming the tensor.
    pub fn from_tensors(arch: &Arch, t: Vec<ndarray::ArrayD<f32>>) -> crate::error::Result<Vgg> {
        use crate::error::Error;
        let g = Vgg::graph(arch)?;
        if t.len() != g.params().len() {
            return Err(Error::invalid("tensor list", format!("{} tensors", t.len()), format!("{} has {} tensors", arch.describe(), g.params().len())));
        }
        if let Some((p, a)) = g.params().iter().zip(&t).find(|(p, a)| a.shape() != p.dims.as_slice()) {
            return Err(Error::invalid(&format!("tensor '{}'", p.name), format!("{:?}", a.shape()), format!("{} needs {:?}", arch.describe(), p.dims)));
        }
        let mut it = t.into_iter();
        let mut next = || it.next().expect("counted above");
        let convs = (0..arch.channels.len())
            .map(|_| {
                let kernel = next().into_dimensionality().expect("checked shape");
                let bias = next().into_dimensionality().expect("checked shape");
                let bn = arch.batch_norm.then(|| {
                    let mut v = || next().into_dimensionality().expect("checked shape");
                    BatchNorm { gamma: v(), beta: v(), mean: v(), var: v() }
                });
                Conv { kernel, bias, bn }
            })
            .collect();
        let dense = (0..arch.dense_dims().len())
            .map(|_| Dense { weight: next().into_dimensionality().expect("checked shape"), bias: next().into_dimensionality().expect("checked shape") })
            .collect();
        Ok(Vgg { arch: arch.clone(), convs, dense })
    }

    /// The VGG graph of `arch`, whose parameter table orders [`Vgg::to_tensors`].
    pub fn graph(arch: &Arch) -> crate::error::Result<crate::graph::Graph> {
        crate::graph::nets::vgg::vgg16(arch.input, &arch.channels, arch.batch_norm, &arch.hidden, arch.classes)
    }

    /// Seeded initial weights: [`crate::graph::init::init`] on the VGG graph (He-normal convs
    /// over their fan-in, zero biases, identity batch norms, dense std `sqrt(2 / in)`, the
    /// classifier `sqrt(1 / in)`).
    pub fn init(arch: &Arch, seed: u64) -> Vgg {
        let g = Vgg::graph(arch).expect("a validated Arch builds its graph");
        Vgg::from_tensors(arch, crate::graph::init::init(&g, seed)).expect("init follows the table")
    }

    /// Gives every bias and batch norm non-trivial values (seeded), so that tests catch a
    /// wrong BN: [`crate::graph::init::randomize_bn`]. Not used on real networks.
    pub fn randomize_bn(&mut self, seed: u64) {
        let g = Vgg::graph(&self.arch).expect("a validated Arch builds its graph");
        let mut t = self.to_tensors();
        crate::graph::init::randomize_bn(&g, &mut t, seed);
        *self = Vgg::from_tensors(&self.arch, t).expect("same shapes");
    }

    /// Inference weights in program-argument order: per conv the BN-folded kernel and bias,
    /// then per dense layer its weight and bias. Each is (dims, row-major data).
    pub fn inference_weights(&self) -> Vec<(Vec<i64>, Vec<f32>)> {
        let mut out = Vec::with_capacity(2 * (self.convs.len() + self.dense.len()));
        for c in &self.convs {
            let (k, b) = c.folded();
            out.push((k.shape().iter().map(|&d| d as i64).collect(), k.iter().copied().collect()));
            out.push((vec![b.len() as i64], b.to_vec()));
        }
        for d in &self.dense {
            out.push((d.weight.shape().iter().map(|&x| x as i64).collect(), d.weight.iter().copied().collect()));
            out.push((vec![d.bias.len() as i64], d.bias.to_vec()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_is_seeded_and_shaped() {
        let a = Arch::cifar(0.125, 1, 10, vec![16]).unwrap();
        let v = Vgg::init(&a, 7);
        assert_eq!(v, Vgg::init(&a, 7));
        assert_ne!(v, Vgg::init(&a, 8));
        assert_eq!(v.convs[0].kernel.shape(), &[3, 3, 1, 8]);
        assert_eq!(v.convs[12].kernel.shape(), &[3, 3, 64, 64]);
        assert_eq!(v.dense[0].weight.shape(), &[64, 16]);
        assert_eq!(v.dense[1].weight.shape(), &[16, 10]);
        let std = (v.convs[5].kernel.mapv(|x| x * x).mean().unwrap()).sqrt();
        let want = (2.0f32 / (9.0 * 32.0)).sqrt();
        assert!((std / want - 1.0).abs() < 0.1, "{std} vs {want}");
    }

    #[test]
    fn folding_matches_bn_formula() {
        let a = Arch::cifar(0.0625, 1, 10, vec![]).unwrap();
        let mut v = Vgg::init(&a, 1);
        v.randomize_bn(2);
        let c = &v.convs[3];
        let (k, b) = c.folded();
        let bn = c.bn.as_ref().unwrap();
        let o = 2;
        let s = bn.gamma[o] / (bn.var[o] + BN_EPS).sqrt();
        assert!((k[[1, 2, 0, o]] - c.kernel[[1, 2, 0, o]] * s).abs() < 1e-6);
        assert!((b[o] - ((c.bias[o] - bn.mean[o]) * s + bn.beta[o])).abs() < 1e-6);
    }

    #[test]
    fn graph_tensors_are_the_vgg_tensors() {
        use crate::graph::{init, nets::vgg::vgg16, reference};
        let a = Arch::cifar(0.0625, 1, 10, vec![8]).unwrap();
        let g = vgg16(a.input, &a.channels, a.batch_norm, &a.hidden, a.classes).unwrap();
        let mut v = Vgg::init(&a, 3);
        v.randomize_bn(4);
        let t = v.to_tensors();
        assert_eq!(Vgg::from_tensors(&a, t.clone()).unwrap(), v);
        let folded: Vec<Vec<f32>> = init::fold(&g, &t).unwrap().iter().map(|x| x.iter().copied().collect()).collect();
        let old: Vec<Vec<f32>> = v.inference_weights().into_iter().map(|(_, d)| d).collect();
        assert_eq!(folded, old, "bit-identical inference arguments");
        // The graph interpreter and the VGG reference agree.
        let x = ndarray::Array4::from_shape_fn((2, 32, 32, 1), |(b, i, j, _)| ((b * 7 + i * 3 + j) % 11) as f64 / 5.0 - 1.0);
        let want = crate::model::reference::forward(&v, &x);
        let got = reference::logits(&g, &reference::to_f64(&t), &x.into_dyn(), reference::BnMode::Running);
        let err = (&got - &want.into_dyn()).mapv(f64::abs).fold(0.0f64, |m, &e| m.max(e));
        assert!(err < 1e-10, "max abs difference {err}");
        let mut bad = t.clone();
        bad[4] = ndarray::ArrayD::zeros(vec![3]);
        let e = Vgg::from_tensors(&a, bad).unwrap_err().to_string();
        assert!(e.contains("features.0.bn.running_mean") && e.contains("[3]"), "{e}");
    }
}
