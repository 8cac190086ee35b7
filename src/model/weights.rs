//! Weights of a VGG-16 in host memory (`ndarray`, f32), seeded initialisation and BN folding.
//!
//! Layouts: conv kernels HWIO `[3, 3, in, out]`; dense weights `[in, out]`; the first dense
//! layer reads the last feature map flattened in NHWC order, i.e. feature index
//! `(y * W + x) * C + c`.

use ndarray::{Array1, Array2, Array4, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

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

fn normal(rng: &mut ChaCha8Rng, std: f64, n: usize) -> Vec<f32> {
    let d = Normal::new(0.0, std).expect("std is finite and positive");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

impl Vgg {
    /// He-normal convs (fan-in), zero biases, identity batch norms, dense layers with
    /// std `sqrt(2 / in)` (hidden) and `sqrt(1 / in)` (classifier); reproducible from `seed`.
    pub fn init(arch: &Arch, seed: u64) -> Vgg {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let convs = (0..arch.channels.len())
            .map(|i| {
                let (cin, cout) = (arch.conv_in(i), arch.channels[i]);
                let std = (2.0 / (9 * cin) as f64).sqrt();
                let k = normal(&mut rng, std, 9 * cin * cout);
                Conv {
                    kernel: Array4::from_shape_vec((3, 3, cin, cout), k).expect("sizes match"),
                    bias: Array1::zeros(cout),
                    bn: arch.batch_norm.then(|| BatchNorm::identity(cout)),
                }
            })
            .collect();
        let dims = arch.dense_dims();
        let last = dims.len() - 1;
        let dense = dims
            .iter()
            .enumerate()
            .map(|(j, &(i, o))| {
                let std = ((if j == last { 1.0 } else { 2.0 }) / i as f64).sqrt();
                Dense {
                    weight: Array2::from_shape_vec((i, o), normal(&mut rng, std, i * o)).expect("sizes match"),
                    bias: Array1::zeros(o),
                }
            })
            .collect();
        Vgg { arch: arch.clone(), convs, dense }
    }

    /// Gives every batch norm non-trivial statistics and affine parameters (seeded), so that
    /// tests catch a wrong BN. Not used on real networks.
    pub fn randomize_bn(&mut self, seed: u64) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for c in &mut self.convs {
            let n = c.out_channels();
            c.bias = Array1::from(normal(&mut rng, 0.1, n));
            if let Some(bn) = &mut c.bn {
                bn.gamma = Array1::from(normal(&mut rng, 0.2, n)).mapv(|g| 1.0 + g);
                bn.beta = Array1::from(normal(&mut rng, 0.1, n));
                bn.mean = Array1::from(normal(&mut rng, 0.1, n));
                bn.var = Array1::from(normal(&mut rng, 0.3, n)).mapv(|v| 1.0 + v.abs());
            }
        }
        for d in &mut self.dense {
            let n = d.bias.len();
            d.bias = Array1::from(normal(&mut rng, 0.1, n));
        }
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
}
