//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::OnceLock;

use ndarray::Array4;
use prunebench::pjrt::DeviceChoice;
use prunebench::runtime::Session;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One CPU-plugin session shared by the tests of a binary.
pub fn cpu() -> &'static Session {
    static S: OnceLock<Session> = OnceLock::new();
    S.get_or_init(|| {
        Session::open(DeviceChoice::Cpu, None)
            .expect("the CPU plugin must be installed for the tests: run `bash scripts/setup.sh`")
    })
}

/// Seeded uniform(-1, 1) NHWC images.
pub fn images(n: usize, h: usize, w: usize, c: usize, seed: u64) -> Array4<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array4::from_shape_simple_fn((n, h, w, c), || rng.random_range(-1.0f32..1.0))
}

/// A few coordinates of an `n`-element tensor: the first, the last and 4 seeded ones.
pub fn coords(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut v = vec![0, n - 1];
    v.extend((0..4).map(|_| rng.random_range(0..n)));
    v.sort_unstable();
    v.dedup();
    v
}

/// Largest |a - b| divided by the largest |b| (at least 1e-12).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

/// torchvision's conv indices in `features` (`vgg16`, then `vgg16_bn`).
const TORCHVISION_PLAIN: [usize; 13] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
const TORCHVISION_WITH_BN: [usize; 13] = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40];

/// Writes `v` the way torchvision names and lays out its tensors.
pub fn torchvision_bytes(v: &prunebench::model::Vgg) -> Vec<u8> {
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let idx = if v.arch.batch_norm { TORCHVISION_WITH_BN } else { TORCHVISION_PLAIN };
    for (i, c) in v.convs.iter().enumerate() {
        let n = idx[i];
        let oihw = c.kernel.view().permuted_axes([3, 2, 0, 1]);
        t.push((format!("features.{n}.weight"), oihw.shape().to_vec(), oihw.iter().copied().collect()));
        t.push((format!("features.{n}.bias"), vec![c.bias.len()], c.bias.to_vec()));
        if let Some(bn) = &c.bn {
            for (k, a) in [("weight", &bn.gamma), ("bias", &bn.beta), ("running_mean", &bn.mean), ("running_var", &bn.var)] {
                t.push((format!("features.{}.{k}", n + 1), vec![a.len()], a.to_vec()));
            }
        }
    }
    let (h, w) = v.arch.final_hw();
    let c_last = *v.arch.channels.last().unwrap();
    for (j, d) in v.dense.iter().enumerate() {
        let mut wt: ndarray::Array2<f32> = d.weight.t().to_owned(); // [out, in]
        if j == 0 {
            // NHWC feature order -> torchvision's CHW order.
            let mut chw = wt.clone();
            for c in 0..c_last {
                for p in 0..h * w {
                    chw.column_mut(c * h * w + p).assign(&wt.column(p * c_last + c));
                }
            }
            wt = chw;
        }
        let n = [0, 3, 6][j];
        t.push((format!("classifier.{n}.weight"), wt.shape().to_vec(), wt.iter().copied().collect()));
        t.push((format!("classifier.{n}.bias"), vec![d.bias.len()], d.bias.to_vec()));
    }
    let bytes: Vec<Vec<u8>> = t.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        t.iter().zip(&bytes).map(|((n, s, _), b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::tensor::Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, &None).unwrap()
}
