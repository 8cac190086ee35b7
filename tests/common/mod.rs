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

/// The f64 reference logits `[N, classes]` of `net` (BN with its running statistics) on
/// NHWC images `x`: the graph interpreter, independent of the emitter.
pub fn logits(net: &prunebench::model::Network, x: &ndarray::Array4<f64>) -> ndarray::Array2<f64> {
    use prunebench::graph::reference;
    let t = reference::to_f64(&net.tensors);
    reference::logits(&net.graph, &t, &x.clone().into_dyn(), reference::BnMode::Running).into_dimensionality().unwrap()
}

/// The f64 reference forward pass of `net` with every BN normalising by the batch's own
/// statistics: every node's value, and per batch norm (graph order) the mean and biased
/// variance of its input per channel.
pub fn batch_stats(net: &prunebench::model::Network, x: &ndarray::Array4<f64>) -> (Vec<ndarray::ArrayD<f64>>, Vec<(Vec<f64>, Vec<f64>)>) {
    use prunebench::graph::reference::{self, BnMode};
    let g = &net.graph;
    let values = reference::forward(g, &reference::to_f64(&net.tensors), &x.clone().into_dyn(), BnMode::Batch);
    let mut stats = Vec::new();
    for bn in g.nodes().iter().filter(|n| matches!(n.op, prunebench::graph::Op::BatchNorm)) {
        let y = &values[bn.inputs[0].0];
        let ch = y.shape()[3];
        let m = (y.len() / ch) as f64;
        let mean: Vec<f64> = (0..ch).map(|o| y.index_axis(ndarray::Axis(3), o).sum() / m).collect();
        let var: Vec<f64> = (0..ch).map(|o| y.index_axis(ndarray::Axis(3), o).iter().map(|t| (t - mean[o]).powi(2)).sum::<f64>() / m).collect();
        stats.push((mean, var));
    }
    (values, stats)
}

/// Writes the VGG-16 `v` the way torchvision names and lays out its tensors.
pub fn torchvision_bytes(v: &prunebench::model::Network) -> Vec<u8> {
    let mut t: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let idx = if v.arch.batch_norm { TORCHVISION_WITH_BN } else { TORCHVISION_PLAIN };
    let get = |name: String| v.tensor(&name).unwrap_or_else(|| panic!("{name}")).clone();
    for (i, &n) in idx.iter().enumerate() {
        let k = get(format!("features.{i}.weight"));
        let oihw = k.view().permuted_axes(vec![3, 2, 0, 1]);
        t.push((format!("features.{n}.weight"), oihw.shape().to_vec(), oihw.iter().copied().collect()));
        let b = get(format!("features.{i}.bias"));
        t.push((format!("features.{n}.bias"), b.shape().to_vec(), b.iter().copied().collect()));
        if v.arch.batch_norm {
            for (k, ours) in [("weight", "gamma"), ("bias", "beta"), ("running_mean", "running_mean"), ("running_var", "running_var")] {
                let a = get(format!("features.{i}.bn.{ours}"));
                t.push((format!("features.{}.{k}", n + 1), a.shape().to_vec(), a.iter().copied().collect()));
            }
        }
    }
    let (h, w) = (v.arch.input[0] / 32, v.arch.input[1] / 32);
    let c_last = *v.arch.channels.last().unwrap();
    for j in 0..3 {
        let weight: ndarray::Array2<f32> = get(format!("classifier.{j}.weight")).into_dimensionality().unwrap();
        let mut wt: ndarray::Array2<f32> = weight.t().as_standard_layout().to_owned(); // [out, in]
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
        let b = get(format!("classifier.{j}.bias"));
        t.push((format!("classifier.{n}.weight"), wt.shape().to_vec(), wt.iter().copied().collect()));
        t.push((format!("classifier.{n}.bias"), b.shape().to_vec(), b.iter().copied().collect()));
    }
    let bytes: Vec<Vec<u8>> = t.iter().map(|(_, _, d)| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        t.iter().zip(&bytes).map(|((n, s, _), b)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::tensor::Dtype::F32, s.clone(), b).unwrap())).collect();
    safetensors::serialize(views, &None).unwrap()
}
