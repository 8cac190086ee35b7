//! A network's tensors in host memory (`Vec<ArrayD<f32>>` aligned with
//! [`Graph::params`](super::Graph::params)): seeded initialisation, and the BN-folded
//! argument list of inference programs.

use ndarray::{ArrayD, Axis, IxDyn};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::build::Graph;
use super::op::{Op, Role, BN_EPS};
use crate::error::{Error, Result};

fn normal(rng: &mut ChaCha8Rng, std: f64, n: usize) -> Vec<f32> {
    let d = Normal::new(0.0, std).expect("std is finite and positive");
    (0..n).map(|_| d.sample(rng) as f32).collect()
}

/// Seeded initial tensors: conv kernels He-normal over their fan-in (`kh * kw * in /
/// groups`), dense weights normal with std `sqrt(2 / in)` (`sqrt(1 / in)` for the output
/// layer), biases and BN beta and running mean 0, BN gamma and running variance 1. Random
/// draws are taken in table order from one ChaCha8 stream, so a VGG-16 gets exactly the
/// weights the VGG-only initialiser of earlier versions gave it with the same seed (every
/// seeded result in `results/` stays reproducible).
pub fn init(g: &Graph, seed: u64) -> Vec<ArrayD<f32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let output = g.output().id;
    g.params()
        .iter()
        .map(|p| {
            let shape = IxDyn(&p.dims);
            match p.role {
                Role::Kernel => {
                    let fan_in = p.dims[0] * p.dims[1] * p.dims[2];
                    ArrayD::from_shape_vec(shape, normal(&mut rng, (2.0 / fan_in as f64).sqrt(), p.len())).expect("sizes")
                }
                Role::Weight => {
                    let gain = if p.node == output { 1.0 } else { 2.0 };
                    ArrayD::from_shape_vec(shape, normal(&mut rng, (gain / p.dims[0] as f64).sqrt(), p.len())).expect("sizes")
                }
                Role::Gamma | Role::RunningVar => ArrayD::ones(shape),
                Role::Bias | Role::Beta | Role::RunningMean => ArrayD::zeros(shape),
            }
        })
        .collect()
}

/// Gives every bias and batch norm non-trivial values (seeded), so that tests catch a wrong
/// BN or bias: biases and beta `N(0, 0.1)`, gamma `1 + N(0, 0.2)`, running mean `N(0, 0.1)`,
/// running variance `1 + |N(0, 0.3)|`. Not used on real networks.
pub fn randomize_bn(g: &Graph, t: &mut [ArrayD<f32>], seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (p, a) in g.params().iter().zip(t.iter_mut()) {
        let n = p.len();
        let v = match p.role {
            Role::Bias | Role::Beta | Role::RunningMean => normal(&mut rng, 0.1, n),
            Role::Gamma => normal(&mut rng, 0.2, n).into_iter().map(|x| 1.0 + x).collect(),
            Role::RunningVar => normal(&mut rng, 0.3, n).into_iter().map(|x| 1.0 + x.abs()).collect(),
            Role::Kernel | Role::Weight => continue,
        };
        *a = ArrayD::from_shape_vec(IxDyn(&p.dims), v).expect("sizes");
    }
}

/// The BN that a conv's output goes through and nothing else reads, if any.
fn folded_bn(g: &Graph, conv: &super::Node) -> Option<super::NodeId> {
    match g.consumers(conv.id) {
        [only] if g.node(*only).op == Op::BatchNorm => Some(*only),
        _ => None,
    }
}

/// Shapes of the inference argument list that [`fold`] makes: per conv node in graph order
/// its kernel `[kh, kw, in/groups, out]` and bias `[out]`, per dense node its weight
/// `[in, out]` and bias `[out]`.
pub fn folded_dims(g: &Graph) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    for node in g.nodes() {
        if matches!(node.op, Op::Conv(_) | Op::Dense { .. }) {
            let role = if node.conv().is_some() { Role::Kernel } else { Role::Weight };
            out.push(g.params()[g.param_index(node.id, role).expect("kernel or weight")].dims.clone());
            out.push(vec![node.channels()]);
        }
    }
    out
}

/// Checks that every BN of `g` can fold into the conv before it (what [`fold`] and the
/// inference emitter need).
///
/// Errors: a BN that does not directly follow a conv read by nothing else, naming both.
pub fn check_foldable(g: &Graph) -> Result<()> {
    for n in g.nodes().iter().filter(|n| n.op == Op::BatchNorm) {
        let src = g.node(n.inputs[0]);
        if src.conv().is_none() || folded_bn(g, src) != Some(n.id) {
            return Err(Error::invalid(
                "batch norm",
                format!("'{}' reads '{}' ({}, read by {} nodes)", n.name, src.name, src.op.kind(), g.consumers(src.id).len()),
                "only a BN right after a conv that nothing else reads folds into it; emit with Mode::Running",
            ));
        }
    }
    Ok(())
}

/// The inference argument list (see [`folded_dims`]): each conv's kernel and bias with the
/// BN that follows it folded in (`k * s`, `b * s + (beta - mean * s)` with `s = gamma /
/// sqrt(var + eps)`), a zero bias where a layer has none; dense layers as they are.
///
/// Errors: a BN that does not directly follow a conv read by nothing else (it cannot fold).
pub fn fold(g: &Graph, t: &[ArrayD<f32>]) -> Result<Vec<ArrayD<f32>>> {
    let get = |node, role| g.param_index(node, role).map(|i| &t[i]);
    check_foldable(g)?;
    let mut out = Vec::new();
    for node in g.nodes() {
        let (weight_role, is_conv) = match node.op {
            Op::Conv(_) => (Role::Kernel, true),
            Op::Dense { .. } => (Role::Weight, false),
            _ => continue,
        };
        let c = node.channels();
        let mut w = get(node.id, weight_role).expect("kernel or weight").clone();
        let mut b = get(node.id, Role::Bias).cloned().unwrap_or_else(|| ArrayD::zeros(IxDyn(&[c])));
        if let Some(bn) = is_conv.then(|| folded_bn(g, node)).flatten() {
            let v = |r| get(bn, r).expect("BN tensor");
            let (gamma, beta, mean, var) = (v(Role::Gamma), v(Role::Beta), v(Role::RunningMean), v(Role::RunningVar));
            for o in 0..c {
                let s = gamma[o] / (var[o] + BN_EPS as f32).sqrt();
                w.index_axis_mut(Axis(3), o).mapv_inplace(|k| k * s);
                // The order of operations of `model::Conv::folded`: b * s + (beta - mean * s).
                b[o] = b[o] * s + (beta[o] - mean[o] * s);
            }
        }
        out.push(w);
        out.push(b);
    }
    Ok(out)
}
