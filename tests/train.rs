//! Training on the CPU plugin: every backward rule against central finite differences in
//! f64, the whole step program's gradients on a tiny VGG-16, its forward loss and running
//! statistics against a plain Rust batch-stat forward pass, the SGD/Nesterov/weight-decay
//! update, the `Trainer` round trip, and a short learning run on a separable synthetic task.

mod common;

use common::coords;

use ndarray::{Array2, Array4};
use prunebench::graph::{ConvSpec, PoolSpec};
use prunebench::hlo::{Builder, ConvDims, DType, ReduceOp, Shape, Value};
use prunebench::lower::Lowering;
use prunebench::graph::{Op, Role};
use prunebench::model::{Arch, Network};
use prunebench::pjrt::{Buffer, Executable};
use prunebench::runtime::CompiledModel;
use prunebench::train::{self, grad, lr_at, LrSchedule, OptConfig, Trainer};
use prunebench::Result;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// A host argument of a test program.
#[derive(Clone)]
enum Arg {
    F64(Vec<i64>, Vec<f64>),
    I32(Vec<i64>, Vec<i32>),
    F32(Vec<i64>, Vec<f32>),
}

impl Arg {
    fn upload(&self) -> Buffer {
        let s = common::cpu();
        match self {
            Arg::F64(d, v) => s.upload_f64(v, d).unwrap(),
            Arg::I32(d, v) => s.client.upload(v, d, &s.device).unwrap(),
            Arg::F32(d, v) => s.client.upload(v, d, &s.device).unwrap(),
        }
    }
    fn shape(&self) -> Shape {
        match self {
            Arg::F64(d, _) => Shape::new(d.clone(), DType::F64),
            Arg::I32(d, _) => Shape::new(d.clone(), DType::I32),
            Arg::F32(d, _) => Shape::new(d.clone(), DType::F32),
        }
    }
}

fn run(exe: &Executable, args: &[Arg]) -> Vec<Buffer> {
    let bufs: Vec<Buffer> = args.iter().map(Arg::upload).collect();
    let refs: Vec<&Buffer> = bufs.iter().collect();
    exe.execute(&refs).unwrap()
}

fn f64s(b: &Buffer) -> Vec<f64> {
    b.to_host::<f64>().unwrap()
}

fn randn(rng: &mut ChaCha8Rng, n: usize, scale: f64) -> Vec<f64> {
    (0..n).map(|_| rng.random_range(-1.0..1.0) * scale).collect()
}

fn numel(d: &[i64]) -> usize {
    d.iter().product::<i64>() as usize
}


/// max |a - f| / max |f| over the checked coordinates (f: finite differences).
fn rel(a: &[f64], f: &[f64]) -> f64 {
    let scale = f.iter().fold(1e-8f64, |m, x| m.max(x.abs()));
    a.iter().zip(f).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}

const H: f64 = 1e-5;
/// Step for the whole network: smaller, because a perturbed first-layer kernel moves
/// thousands of pre-activations, and central differences that straddle a ReLU or max-pool
/// kink err in proportion to the step (1e-5 gave ~1e-3 relative error on conv0.kernel).
const H_NET: f64 = 1e-7;

/// Checks one backward rule. `fwd` builds `y = f(inputs)` and what the rule needs;
/// `bwd` builds the gradient of each input (None for integer inputs) given `dy`. The test
/// program returns `loss = sum(y * r)` (r fixed random) and the gradients with `dy = r`;
/// the gradients are compared with central differences of `loss` at a few coordinates.
fn check_rule<T>(
    name: &str,
    inputs: Vec<Arg>,
    fwd: impl Fn(&mut Builder, &[Value]) -> Result<(Value, T)>,
    bwd: impl Fn(&mut Builder, &[Value], &T, &Value) -> Result<Vec<Option<Value>>>,
) {
    let mut b = Builder::new();
    let xs: Vec<Value> = inputs.iter().map(|a| b.arg(a.shape())).collect();
    let (y, tape) = fwd(&mut b, &xs).unwrap();
    let r = b.arg(y.shape().clone());
    let yr = b.mul(&y, &r).unwrap();
    let loss = grad::sum_all(&mut b, &yr).unwrap();
    let grads = bwd(&mut b, &xs, &tape, &r).unwrap();
    assert_eq!(grads.len(), xs.len(), "{name}: one gradient slot per input");
    let mut outs = vec![&loss];
    let which: Vec<usize> = (0..xs.len()).filter(|&i| grads[i].is_some()).collect();
    for &i in &which {
        let g = grads[i].as_ref().unwrap();
        assert_eq!(g.shape(), xs[i].shape(), "{name}: gradient {i} shape");
        outs.push(g);
    }
    let text = b.finish(&outs);
    let exe = common::cpu().client.compile(&text).unwrap_or_else(|e| panic!("{name}: {e}\n{text}"));
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let rdims = y.dims().to_vec();
    let rvals = randn(&mut rng, numel(&rdims), 1.0);
    let mut args = inputs.clone();
    args.push(Arg::F64(rdims, rvals));
    let out = run(&exe, &args);
    let loss_at = |args: &[Arg]| f64s(&run(&exe, args)[0])[0];
    for (slot, &i) in which.iter().enumerate() {
        let analytic = f64s(&out[1 + slot]);
        let Arg::F64(dims, data) = &inputs[i] else { panic!("{name}: gradient for a non-f64 input") };
        let (mut a, mut f) = (Vec::new(), Vec::new());
        for c in coords(data.len(), 7 + i as u64) {
            let mut plus = args.clone();
            let mut minus = args.clone();
            if let (Arg::F64(_, p), Arg::F64(_, m)) = (&mut plus[i], &mut minus[i]) {
                p[c] += H;
                m[c] -= H;
            }
            f.push((loss_at(&plus) - loss_at(&minus)) / (2.0 * H));
            a.push(analytic[c]);
        }
        let e = rel(&a, &f);
        assert!(e < 1e-5, "{name}: input {i} {dims:?}: rel err {e:e}\nanalytic {a:?}\nnumeric  {f:?}");
        assert!(f.iter().any(|x| x.abs() > 1e-6), "{name}: input {i}: degenerate gradient {f:?}");
    }
}

fn rand_arg(dims: &[i64], seed: u64, scale: f64) -> Arg {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Arg::F64(dims.to_vec(), randn(&mut rng, numel(dims), scale))
}

#[test]
fn conv3x3_gradients_every_lowering() {
    let spec = ConvSpec::new(4, 3, 1, 1, false);
    for l in prunebench::lower::ALL {
        check_rule(
            &format!("conv3x3 {l}"),
            vec![rand_arg(&[2, 5, 4, 3], 1, 1.0), rand_arg(&[3, 3, 3, 4], 2, 0.5)],
            |b, x| Ok((l.emit(b, &x[0], &x[1])?, ())),
            |b, x, _, dy| {
                Ok(vec![
                    Some(grad::conv_input(b, dy, &x[1], &spec, [5, 4], l)?),
                    Some(grad::conv_kernel(b, &x[0], dy, &spec, l)?),
                ])
            },
        );
    }
}

/// The forward convolution of `spec` as JAX emits it (one `convolution` with stride,
/// padding and `feature_group_count`), for the gradient checks.
fn conv_forward(b: &mut Builder, x: &Value, k: &Value, spec: &ConvSpec) -> Result<Value> {
    let mut cd = ConvDims::same(spec.pad as i64);
    cd.stride = [spec.stride as i64; 2];
    cd.groups = spec.groups as i64;
    b.convolution(x, k, &cd)
}

/// A max-pool of `p` with -inf padding, built from `pad` and an unpadded `reduce_window`.
fn max_pool_forward(b: &mut Builder, x: &Value, p: &PoolSpec) -> Result<Value> {
    let (k, s, q) = (p.k as i64, p.stride as i64, p.pad as i64);
    let ninf = b.scalar(f64::NEG_INFINITY, x.dtype());
    let padded = b.pad(x, &ninf, &[0, q, q, 0], &[0, q, q, 0])?;
    b.reduce_window(&padded, &[1, k, k, 1], &[1, s, s, 1], ReduceOp::Max)
}

#[test]
fn conv_gradients_any_geometry() {
    // (input NHWC, spec): strided with a row left unread, 1x1 strided (negative high padding
    // in the kernel gradient), a 7x7/2 stem, grouped, depthwise strided, 1x1 pointwise, 5x3.
    let cases: Vec<([i64; 4], ConvSpec)> = vec![
        ([2, 6, 7, 3], ConvSpec::new(4, 3, 2, 1, false)),
        ([2, 6, 5, 4], ConvSpec::new(6, 1, 2, 0, false)),
        ([2, 11, 10, 3], ConvSpec::new(4, 7, 2, 3, false)),
        ([2, 5, 5, 6], ConvSpec { groups: 3, ..ConvSpec::new(9, 3, 1, 1, false) }),
        ([3, 7, 6, 5], ConvSpec { groups: 5, ..ConvSpec::new(5, 3, 2, 1, false) }),
        ([2, 4, 4, 5], ConvSpec::new(3, 1, 1, 0, false)),
        ([2, 6, 5, 2], ConvSpec { kh: 5, kw: 3, ..ConvSpec::new(3, 3, 1, 2, false) }),
    ];
    for (i, (xd, spec)) in cases.into_iter().enumerate() {
        let c = xd[3] as usize;
        let kd = [spec.kh as i64, spec.kw as i64, (c / spec.groups) as i64, spec.out as i64];
        let hw = [xd[1] as usize, xd[2] as usize];
        check_rule(
            &format!("{spec} on {xd:?}"),
            vec![rand_arg(&xd, 40 + i as u64, 1.0), rand_arg(&kd, 50 + i as u64, 0.5)],
            |b, x| Ok((conv_forward(b, &x[0], &x[1], &spec)?, ())),
            |b, x, _, dy| {
                Ok(vec![
                    Some(grad::conv_input(b, dy, &x[1], &spec, hw, Lowering::Direct)?),
                    Some(grad::conv_kernel(b, &x[0], dy, &spec, Lowering::Direct)?),
                ])
            },
        );
    }
}

#[test]
fn pool_and_relu6_gradients() {
    for (i, (xd, p)) in [([2, 4, 6, 3], PoolSpec::new(2, 2, 0)), ([2, 7, 8, 2], PoolSpec::new(3, 2, 1)), ([2, 5, 5, 2], PoolSpec::new(3, 1, 1))]
        .into_iter()
        .enumerate()
    {
        check_rule(
            &format!("max-pool {}x{}/{} pad {} on {xd:?}", p.k, p.k, p.stride, p.pad),
            vec![rand_arg(&xd, 60 + i as u64, 1.0)],
            |b, x| Ok((max_pool_forward(b, &x[0], &p)?, ())),
            |b, x, _, dy| Ok(vec![Some(grad::max_pool_backward(b, &x[0], dy, &p)?)]),
        );
    }
    for (i, (xd, p)) in [([2, 4, 6, 3], PoolSpec::new(2, 2, 0)), ([2, 7, 8, 2], PoolSpec::new(3, 2, 0))].into_iter().enumerate() {
        let (k, s) = (p.k as i64, p.stride as i64);
        let hw = [xd[1] as usize, xd[2] as usize];
        check_rule(
            &format!("avg-pool {k}x{k}/{s} on {xd:?}"),
            vec![rand_arg(&xd, 70 + i as u64, 1.0)],
            |b, x| {
                let sum = b.reduce_window(&x[0], &[1, k, k, 1], &[1, s, s, 1], ReduceOp::Sum)?;
                let inv = b.constant(1.0 / (k * k) as f64, sum.shape().clone());
                Ok((b.mul(&sum, &inv)?, ()))
            },
            |b, _, _, dy| Ok(vec![Some(grad::avg_pool_backward(b, dy, &p, hw)?)]),
        );
    }
    check_rule(
        "global average pool",
        vec![rand_arg(&[2, 3, 4, 5], 75, 1.0)],
        |b, x| {
            let s = b.reduce(&x[0], &[1, 2], ReduceOp::Sum)?;
            let inv = b.constant(1.0 / 12.0, s.shape().clone());
            Ok((b.mul(&s, &inv)?, ()))
        },
        |b, _, _, dy| Ok(vec![Some(grad::global_avg_pool_backward(b, dy, [3, 4])?)]),
    );
    check_rule(
        "relu6",
        // Scale 8: values on both sides of 0 and of 6.
        vec![rand_arg(&[2, 3, 4, 3], 76, 8.0)],
        |b, x| {
            let r = b.relu(&x[0])?;
            let six = b.constant(6.0, r.shape().clone());
            Ok((b.min(&r, &six)?, ()))
        },
        |b, x, _, dy| Ok(vec![Some(grad::relu6_backward(b, &x[0], dy)?)]),
    );
}

#[test]
fn bias_add_gradient() {
    check_rule(
        "bias add",
        vec![rand_arg(&[2, 3, 3, 4], 3, 1.0), rand_arg(&[4], 4, 1.0)],
        |b, x| Ok((grad::bias_add(b, &x[0], &x[1], 3)?, ())),
        |b, _, _, dy| Ok(vec![Some(dy.clone()), Some(grad::bias_add_backward(b, dy, 3)?)]),
    );
}

#[test]
fn batch_norm_training_gradients() {
    let gamma = {
        let mut rng = ChaCha8Rng::seed_from_u64(6);
        Arg::F64(vec![5], (0..5).map(|_| 1.0 + rng.random_range(-0.5..0.5)).collect())
    };
    check_rule(
        "batch norm",
        vec![rand_arg(&[3, 4, 2, 5], 5, 2.0), gamma, rand_arg(&[5], 7, 1.0)],
        |b, x| grad::batch_norm_train(b, &x[0], &x[1], &x[2], 1e-5),
        |b, x, cache, dy| {
            let (dx, dg, db) = grad::batch_norm_backward(b, dy, &x[1], cache)?;
            Ok(vec![Some(dx), Some(dg), Some(db)])
        },
    );
}

#[test]
fn relu_maxpool_reshape_gradients() {
    check_rule(
        "relu",
        vec![rand_arg(&[2, 3, 4, 3], 8, 1.0)],
        |b, x| Ok((b.relu(&x[0])?, ())),
        |b, x, _, dy| Ok(vec![Some(grad::relu_backward(b, &x[0], dy)?)]),
    );
    check_rule(
        "max-pool 2x2",
        vec![rand_arg(&[2, 4, 6, 3], 9, 1.0)],
        |b, x| Ok((b.max_pool2(&x[0])?, ())),
        |b, x, _, dy| Ok(vec![Some(grad::max_pool_backward(b, &x[0], dy, &PoolSpec::new(2, 2, 0))?)]),
    );
    check_rule(
        "flatten",
        vec![rand_arg(&[2, 2, 2, 3], 10, 1.0)],
        |b, x| Ok((b.reshape(&x[0], &[2, 12])?, ())),
        |b, x, _, dy| Ok(vec![Some(grad::reshape_backward(b, dy, x[0].dims())?)]),
    );
}

#[test]
fn dense_gradients() {
    check_rule(
        "dense",
        vec![rand_arg(&[3, 5], 11, 1.0), rand_arg(&[5, 4], 12, 1.0), rand_arg(&[4], 13, 1.0)],
        |b, x| {
            let y = b.matmul(&x[0], &x[1])?;
            Ok((grad::bias_add(b, &y, &x[2], 1)?, ()))
        },
        |b, x, _, dy| {
            let (dx, dw, db) = grad::dense_backward(b, &x[0], &x[1], dy)?;
            Ok(vec![Some(dx), Some(dw), Some(db)])
        },
    );
}

#[test]
fn softmax_cross_entropy_gradient() {
    check_rule(
        "softmax xent",
        vec![rand_arg(&[4, 6], 14, 3.0), Arg::I32(vec![4], vec![0, 5, 2, 2])],
        |b, x| {
            let xe = grad::softmax_xent(b, &x[0], &x[1])?;
            Ok((xe.loss.clone(), xe))
        },
        |b, _, xe, dy| {
            let s = b.splat(dy, xe.dlogits.dims())?;
            Ok(vec![Some(b.mul(&xe.dlogits, &s)?), None])
        },
    );
}

// ---- the whole step program -------------------------------------------------------------

fn tiny() -> Arch {
    Arch::cifar(0.0625, 1, 10, vec![]).unwrap()
}

/// A tiny VGG with non-trivial BN parameters and running statistics.
fn tiny_vgg() -> Network {
    let mut v = Network::init(&tiny(), 21);
    v.randomize_bn(22);
    v
}

/// Host arguments of the f64 step program: batch, labels, lr, parameters, momentum, stats.
fn step_args(v: &Network, x: &[f64], labels: &[i32], lr: f32, mom: Option<&[Vec<f64>]>, p: &train::TrainProgram) -> Vec<Arg> {
    let [h, w, c] = v.arch.input;
    let n = labels.len() as i64;
    let mut args = vec![
        Arg::F64(vec![n, h as i64, w as i64, c as i64], x.to_vec()),
        Arg::I32(vec![n], labels.to_vec()),
        Arg::F32(vec![], vec![lr]),
    ];
    let mut params = Vec::new();
    let mut stats = Vec::new();
    for (p, t) in v.graph.params().iter().zip(&v.tensors) {
        let data: Vec<f64> = t.iter().map(|&x| x as f64).collect();
        if p.is_trainable() { params.push(data) } else { stats.push(data) }
    }
    for (s, data) in p.params.iter().zip(&params) {
        args.push(Arg::F64(s.shape.dims.clone(), data.clone()));
    }
    for (k, s) in p.params.iter().enumerate() {
        let m = mom.map(|m| m[k].clone()).unwrap_or_else(|| vec![0.0; numel(&s.shape.dims)]);
        args.push(Arg::F64(s.shape.dims.clone(), m));
    }
    for (s, data) in p.stats.iter().zip(&stats) {
        args.push(Arg::F64(s.shape.dims.clone(), data.clone()));
    }
    args
}

fn batch_data(n: usize, seed: u64) -> (Vec<f64>, Vec<i32>) {
    let x = common::images(n, 32, 32, 1, seed);
    let mut rng = ChaCha8Rng::seed_from_u64(seed + 1);
    let labels = (0..n).map(|_| rng.random_range(0..10)).collect();
    (x.iter().map(|&t| t as f64).collect(), labels)
}

/// Per batch norm: (batch mean, biased batch variance) of each channel.
type BatchStats = Vec<(Vec<f64>, Vec<f64>)>;

/// The graph's f64 reference forward pass with batch-statistics BN: (mean loss, number
/// correct, batch stats of every BN input in graph order).
fn reference_train_forward(v: &Network, x: &Array4<f64>, labels: &[i32]) -> (f64, usize, BatchStats) {
    let (values, stats) = common::batch_stats(v, x);
    let logits: Array2<f64> = values.last().unwrap().clone().into_dimensionality().unwrap();
    let n = logits.nrows();
    let (mut loss, mut correct) = (0.0, 0);
    for (row, &l) in logits.rows().into_iter().zip(labels) {
        let mx = row.fold(f64::MIN, |m, &t| m.max(t));
        let lse = mx + row.iter().map(|t| (t - mx).exp()).sum::<f64>().ln();
        loss += lse - row[l as usize];
        correct += (row[l as usize] >= mx) as usize;
    }
    (loss / n as f64, correct, stats)
}

/// The f64 step program of the tiny VGG at batch 4 with momentum 0.9 and no weight decay,
/// compiled once per test binary (compiling a whole step takes several seconds). Run with
/// zero momentum buffers and lr 1, its updated momentum buffers are exactly the gradients.
fn plain_step() -> &'static (train::TrainProgram, Executable) {
    static P: OnceLock<(train::TrainProgram, Executable)> = OnceLock::new();
    P.get_or_init(|| {
        let opt = OptConfig { momentum: 0.9, weight_decay: 0.0, nesterov: false, bn_momentum: 0.1 };
        let p = train::step_program(&tiny(), 4, DType::F64, &opt).unwrap();
        let exe = common::cpu().client.compile(&p.text).unwrap();
        (p, exe)
    })
}

#[test]
fn step_program_gradients_loss_and_stats_match_references() {
    let v = tiny_vgg();
    let (p, exe) = plain_step();
    assert!(p.plan.contains(&Lowering::Direct) && p.plan.contains(&Lowering::Im2col), "{:?}", p.plan);
    let (x, labels) = batch_data(4, 31);
    let args = step_args(&v, &x, &labels, 1.0, None, p);
    let out = run(exe, &args);
    let np = p.params.len();
    assert_eq!(out.len(), 2 + 2 * np + p.stats.len());
    let loss = f64s(&out[0])[0];
    let correct = f64s(&out[1])[0];

    // Forward loss, top-1 count and running statistics against plain Rust.
    let xa = Array4::from_shape_vec((4, 32, 32, 1), x.clone()).unwrap();
    let (want_loss, want_correct, want_stats) = reference_train_forward(&v, &xa, &labels);
    assert!((loss - want_loss).abs() < 1e-9 * want_loss.abs(), "loss {loss} vs reference {want_loss}");
    assert_eq!(correct, want_correct as f64);
    let bns: Vec<_> = v.graph.nodes().iter().filter(|n| matches!(n.op, Op::BatchNorm)).collect();
    assert_eq!(bns.len(), 13);
    for (i, (mean, var)) in want_stats.iter().enumerate() {
        let d = &v.graph.node(bns[i].inputs[0]).dims;
        let m = (4 * d[0] * d[1]) as f64;
        let run = |r: Role| v.tensors[v.graph.param_index(bns[i].id, r).unwrap()].clone();
        let (rm, rv) = (run(Role::RunningMean), run(Role::RunningVar));
        let got_m = f64s(&out[2 + 2 * np + 2 * i]);
        let got_v = f64s(&out[2 + 2 * np + 2 * i + 1]);
        for o in 0..mean.len() {
            let em = 0.9 * rm[o] as f64 + 0.1 * mean[o];
            let ev = 0.9 * rv[o] as f64 + 0.1 * var[o] * m / (m - 1.0);
            assert!((got_m[o] - em).abs() < 1e-9 * (1.0 + em.abs()), "conv{i} running mean {o}: {} vs {em}", got_m[o]);
            assert!((got_v[o] - ev).abs() < 1e-9 * (1.0 + ev.abs()), "conv{i} running var {o}: {} vs {ev}", got_v[o]);
        }
    }

    // Gradients (= the new momentum buffers) against central differences of the loss.
    check_step_gradients(p, exe, &args, &out, &["features.0.weight", "features.5.bn.gamma", "features.11.weight", "features.12.bn.beta", "classifier.0.weight", "classifier.0.bias"], 1.0);
}

/// Compares the gradients a step program returned as its momentum outputs (zero momentum
/// in, lr 1, no weight decay) with central differences of its loss, for a few coordinates
/// of each named parameter; also checks `p' = p - scale * v'` (`scale` is 1, or `1 + mu`
/// with Nesterov).
fn check_step_gradients(p: &train::TrainProgram, exe: &Executable, args: &[Arg], out: &[Buffer], names: &[&str], scale: f64) {
    let np = p.params.len();
    let mut report = Vec::new();
    let mut failed = false;
    for &name in names {
        let k = p.param_index(name).unwrap_or_else(|| panic!("no parameter {name}"));
        let g = f64s(&out[2 + np + k]);
        let Arg::F64(_, old) = &args[3 + k] else { unreachable!() };
        let newp = f64s(&out[2 + k]);
        for c in 0..g.len() {
            let want = old[c] - scale * g[c];
            assert!((newp[c] - want).abs() < 1e-12 * (1.0 + old[c].abs()), "{name}: p' {} vs {want}", newp[c]);
        }
        let (mut a, mut f) = (Vec::new(), Vec::new());
        // 4 seeded coordinates and the 2 with the largest analytic gradient (ReLUs without
        // BN leave many exact zeros, which alone would make a weak check).
        let mut by_size: Vec<usize> = (0..g.len()).collect();
        by_size.sort_by(|&i, &j| g[j].abs().total_cmp(&g[i].abs()));
        let mut cs = coords(g.len(), k as u64);
        cs.truncate(4);
        cs.extend(&by_size[..2.min(g.len())]);
        for c in cs {
            let mut plus = args.to_vec();
            let mut minus = args.to_vec();
            if let (Arg::F64(_, pp), Arg::F64(_, mm)) = (&mut plus[3 + k], &mut minus[3 + k]) {
                pp[c] += H_NET;
                mm[c] -= H_NET;
            }
            let lp = f64s(&run(exe, &plus)[0])[0];
            let lm = f64s(&run(exe, &minus)[0])[0];
            f.push((lp - lm) / (2.0 * H_NET));
            a.push(g[c]);
        }
        let e = rel(&a, &f);
        assert!(f.iter().any(|t| t.abs() > 1e-7), "{name}: degenerate gradient {f:?}");
        report.push(format!("{name}: rel err {e:.2e}\n  analytic {a:?}\n  numeric  {f:?}"));
        if e >= 1e-5 {
            failed = true;
        }
    }
    eprintln!("{}", report.join("\n"));
    assert!(!failed, "gradient check failed:\n{}", report.join("\n"));
}

/// No batch norm (conv biases matter) and two hidden dense layers with ReLU (the ImageNet
/// head, scaled down and fed a 32x32 input); plain convolutions everywhere.
#[test]
fn step_program_gradients_without_bn_with_hidden_layers() {
    let arch = Arch::imagenet(1.0 / 32.0, 3, 5, false).unwrap().with_input(32, 32).unwrap();
    assert_eq!(arch.hidden.len(), 2);
    let mut v = Network::init(&arch, 61);
    v.randomize_bn(62); // random conv and dense biases
    let opt = OptConfig { momentum: 0.5, weight_decay: 0.0, nesterov: true, bn_momentum: 0.1 };
    let p = train::step_program_with(&arch, 3, DType::F64, &opt, &[Lowering::Direct; 13]).unwrap();
    assert!(p.stats.is_empty() && p.params.len() == 2 * 13 + 2 * 3);
    let exe = common::cpu().client.compile(&p.text).unwrap();
    let x = common::images(3, 32, 32, 3, 63);
    let x: Vec<f64> = x.iter().map(|&t| t as f64).collect();
    let labels = [4, 0, 2];
    let args = step_args(&v, &x, &labels, 1.0, None, &p);
    let out = run(&exe, &args);
    // Without BN the forward is the inference network: compare the loss with the reference.
    let xa = Array4::from_shape_vec((3, 32, 32, 3), x.clone()).unwrap();
    let logits = common::logits(&v, &xa);
    let want: f64 = logits
        .rows()
        .into_iter()
        .zip(&labels)
        .map(|(r, &l)| {
            let mx = r.fold(f64::MIN, |m, &t| m.max(t));
            mx + r.iter().map(|t| (t - mx).exp()).sum::<f64>().ln() - r[l as usize]
        })
        .sum::<f64>()
        / 3.0;
    let loss = f64s(&out[0])[0];
    assert!((loss - want).abs() < 1e-9 * want.abs(), "loss {loss} vs reference {want}");
    // Nesterov with zero momentum in: v' = g and p' = p - lr (g + mu g).
    let names = ["features.0.weight", "features.4.bias", "features.12.weight", "classifier.0.weight", "classifier.1.bias", "classifier.2.weight"];
    check_step_gradients(&p, &exe, &args, &out, &names, 1.5);
}

/// Weight decay (kernels and weights only), momentum and Nesterov against the host formula,
/// with the gradients taken from a program without them.
#[test]
fn sgd_nesterov_weight_decay_update() {
    let v = tiny_vgg();
    let (x, labels) = batch_data(4, 41);
    let (p0, e0) = plain_step();
    let out0 = run(e0, &step_args(&v, &x, &labels, 1.0, None, p0));
    let np = p0.params.len();
    let grads: Vec<Vec<f64>> = (0..np).map(|k| f64s(&out0[2 + np + k])).collect();

    let opt = OptConfig { momentum: 0.8, weight_decay: 0.01, nesterov: true, bn_momentum: 0.1 };
    let p1 = train::step_program(&v.arch, 4, DType::F64, &opt).unwrap();
    let e1 = common::cpu().client.compile(&p1.text).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mom: Vec<Vec<f64>> = grads.iter().map(|g| randn(&mut rng, g.len(), 0.1)).collect();
    let lr = 0.125f32;
    let args = step_args(&v, &x, &labels, lr, Some(&mom), &p1);
    let out1 = run(&e1, &args);
    assert_eq!(f64s(&out0[0]), f64s(&out1[0]), "same loss before the update");
    for (k, s) in p1.params.iter().enumerate() {
        let Arg::F64(_, old) = &args[3 + k] else { unreachable!() };
        let (newp, newm) = (f64s(&out1[2 + k]), f64s(&out1[2 + np + k]));
        let wd = if s.name.ends_with(".kernel") || s.name.ends_with(".weight") { 0.01 } else { 0.0 };
        assert_eq!(s.decay, wd > 0.0, "{}", s.name);
        for c in 0..old.len() {
            let g = grads[k][c] + wd * old[c];
            let m = 0.8 * mom[k][c] + g;
            let pn = old[c] - lr as f64 * (g + 0.8 * m);
            assert!((newm[c] - m).abs() < 1e-12 * (1.0 + m.abs()), "{} momentum {c}: {} vs {m}", s.name, newm[c]);
            assert!((newp[c] - pn).abs() < 1e-12 * (1.0 + pn.abs()), "{} param {c}: {} vs {pn}", s.name, newp[c]);
        }
    }
}

#[test]
fn trainer_round_trip_and_one_step_lowers_the_loss() {
    let s = common::cpu();
    let v = tiny_vgg();
    let opt = OptConfig::default();
    let mut t = Trainer::new(s, &v, 8, &opt).unwrap();
    assert_eq!(t.network().unwrap(), v, "upload then download is exact in f32");
    let x = common::images(8, 32, 32, 1, 51);
    let labels: Vec<i32> = (0..8).map(|i| i * 3 % 10).collect();
    let xs = x.as_slice().unwrap();
    let (l0, c0) = t.step(xs, &labels, 0.01).unwrap();
    let (l1, _) = t.step(xs, &labels, 0.01).unwrap();
    assert!(l0.is_finite() && (0.0..=8.0).contains(&c0), "loss {l0} correct {c0}");
    assert!(l1 < l0, "one SGD step on the same batch should lower its loss: {l0} -> {l1}");
    let after = t.network().unwrap();
    assert_ne!(after.tensor("features.0.weight"), v.tensor("features.0.weight"));
    assert_ne!(after.tensor("features.3.bn.running_mean"), v.tensor("features.3.bn.running_mean"));
    assert_eq!(t.param("features.0.weight").unwrap(), after.tensor("features.0.weight").unwrap().iter().copied().collect::<Vec<_>>());
    assert_eq!(t.steps, 2);
    // Momentum buffers survive a save and a load into a fresh trainer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    t.save_momentum(&path).unwrap();
    let mut t2 = Trainer::new(s, &after, 8, &opt).unwrap();
    assert!(t2.momentum().unwrap().iter().all(|m| m.iter().all(|&x| x == 0.0)));
    t2.load_momentum(&path).unwrap();
    let m = t.momentum().unwrap();
    assert!(m[0].iter().any(|&x| x != 0.0));
    assert_eq!(t2.momentum().unwrap(), m);
    let (l2a, _) = t.step(xs, &labels, 0.01).unwrap();
    let (l2b, _) = t2.step(xs, &labels, 0.01).unwrap();
    assert_eq!(l2a, l2b, "a restored trainer continues identically");
    assert_eq!(t.network().unwrap(), t2.network().unwrap());
    // A momentum file of the trainer from before the parameter table (tensors named
    // `conv{i}.kernel`, `dense{j}.weight`, ...) still resumes.
    let old_path = dir.path().join("old.safetensors");
    let m = t.momentum().unwrap();
    let bytes: Vec<Vec<u8>> = m.iter().map(|d| d.iter().flat_map(|x| x.to_le_bytes()).collect()).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = t
        .program()
        .params
        .iter()
        .zip(&bytes)
        .map(|(sp, b)| {
            let shape = sp.shape.dims.iter().map(|&d| d as usize).collect();
            (train::legacy_vgg_name(&sp.name).unwrap(), safetensors::tensor::TensorView::new(safetensors::tensor::Dtype::F32, shape, b).unwrap())
        })
        .collect();
    assert_eq!(views[0].0, "conv0.kernel");
    assert_eq!(views.last().unwrap().0, "dense0.bias");
    std::fs::write(&old_path, safetensors::serialize(views, &None).unwrap()).unwrap();
    let mut t3 = Trainer::new(s, &t.network().unwrap(), 8, &opt).unwrap();
    t3.load_momentum(&old_path).unwrap();
    assert_eq!(t3.momentum().unwrap(), m);
    // Wrong sizes and labels are reported, not sent to the device.
    assert!(t.step(&xs[1..], &labels, 0.01).is_err());
    let e = t.step(xs, &[10; 8], 0.01).unwrap_err().to_string();
    assert!(e.contains("0..10"), "{e}");
    assert!(train::step_program(&v.arch, 4, DType::BF16, &opt).is_err());
}

/// Class 1 images hold a bright 8x8 square somewhere on uniform noise, class 0 do not.
fn squares(n: usize, rng: &mut ChaCha8Rng) -> (Vec<f32>, Vec<i32>) {
    let mut x = vec![0f32; n * 32 * 32];
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let img = &mut x[i * 1024..(i + 1) * 1024];
        for p in img.iter_mut() {
            *p = rng.random_range(-1.0..1.0);
        }
        let label = rng.random_range(0..2);
        if label == 1 {
            let (r, c) = (rng.random_range(0..24), rng.random_range(0..24));
            for dy in 0..8 {
                for dx in 0..8 {
                    img[(r + dy) * 32 + c + dx] = 2.0;
                }
            }
        }
        y.push(label);
    }
    (x, y)
}

/// The tiny VGG learns a separable task; then the downloaded weights (with the learned
/// running statistics) classify fresh images through the inference program.
#[test]
fn tiny_vgg_learns_bright_squares() {
    let s = common::cpu();
    let arch = Arch::cifar(0.0625, 1, 2, vec![]).unwrap();
    let v = Network::init(&arch, 3);
    let mut t = Trainer::new(s, &v, 32, &OptConfig::default()).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let total = 150;
    let sched = LrSchedule::cosine(0.05, 10);
    let mut recent = Vec::new();
    let start = std::time::Instant::now();
    for step in 0..total {
        let (x, y) = squares(32, &mut rng);
        let (loss, correct) = t.step(&x, &y, lr_at(&sched, step, total)).unwrap();
        assert!(loss.is_finite(), "step {step}: loss {loss}");
        recent.push(correct / 32.0);
    }
    let train_acc: f32 = recent[total - 20..].iter().sum::<f32>() / 20.0;
    let trained = t.network().unwrap();
    let m = CompiledModel::new(s, &trained, 32, DType::F32, &train::default_plan(&arch)).unwrap();
    let (x, y) = squares(256, &mut rng);
    let logits = m.predict(&x, 256).unwrap();
    let hits = (0..256).filter(|&i| (logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1)).count();
    let test_acc = hits as f32 / 256.0;
    eprintln!("{total} steps in {:.1}s: train acc (last 20) {train_acc:.3}, held-out acc {test_acc:.3}", start.elapsed().as_secs_f64());
    assert!(train_acc > 0.9, "training accuracy {train_acc}");
    assert!(test_acc > 0.9, "held-out accuracy with running stats {test_acc}");
}

/// The gradient program (forward and backward without the update) returns the loss and
/// exactly the gradients the step program applies, in parameter order; a few coordinates
/// are also checked against central differences of its own loss.
#[test]
fn grad_program_matches_the_step_program() {
    let v = tiny_vgg();
    let (sp, sexe) = plain_step();
    let gp = train::grad_program(&tiny(), 4, DType::F64, &train::default_plan(&tiny())).unwrap();
    let np = gp.params.len();
    assert_eq!(gp.params, sp.params);
    assert_eq!(gp.args.len(), 2 + np);
    assert_eq!(gp.outputs.len(), 1 + np);
    assert_eq!(gp.outputs[0], Shape::scalar(DType::F64));
    for (k, s) in gp.params.iter().enumerate() {
        assert_eq!(gp.args[2 + k], s.shape, "{}", s.name);
        assert_eq!(gp.outputs[1 + k], s.shape, "{}", s.name);
    }
    let gexe = common::cpu().client.compile(&gp.text).unwrap();
    let (x, labels) = batch_data(4, 41);
    let sargs = step_args(&v, &x, &labels, 1.0, None, sp);
    let sout = run(sexe, &sargs);
    // Grad-program arguments: images, labels, then the parameters (skip lr, momentum, stats).
    let mut gargs = vec![sargs[0].clone(), sargs[1].clone()];
    gargs.extend(sargs[3..3 + np].iter().cloned());
    let gout = run(&gexe, &gargs);
    assert_eq!(gout.len(), 1 + np);
    let (loss, want_loss) = (f64s(&gout[0])[0], f64s(&sout[0])[0]);
    assert!((loss - want_loss).abs() <= 1e-12 * want_loss.abs(), "loss {loss} vs step {want_loss}");
    for (k, s) in gp.params.iter().enumerate() {
        // Zero momentum in, lr 1: the step's new momentum buffer is the gradient.
        let (g, want) = (f64s(&gout[1 + k]), f64s(&sout[2 + np + k]));
        let e = common::rel_err(&g, &want);
        assert!(e < 1e-12, "{}: rel err {e:e} against the step program", s.name);
    }
    // Central differences of the gradient program's own loss.
    for name in ["features.2.weight", "features.7.bn.gamma", "features.12.bn.beta", "classifier.0.bias"] {
        let k = gp.param_index(name).unwrap();
        let g = f64s(&gout[1 + k]);
        let mut by_size: Vec<usize> = (0..g.len()).collect();
        by_size.sort_by(|&i, &j| g[j].abs().total_cmp(&g[i].abs()));
        let (mut a, mut f) = (Vec::new(), Vec::new());
        for &c in by_size.iter().take(2) {
            let mut plus = gargs.clone();
            let mut minus = gargs.clone();
            if let (Arg::F64(_, pp), Arg::F64(_, mm)) = (&mut plus[2 + k], &mut minus[2 + k]) {
                pp[c] += H_NET;
                mm[c] -= H_NET;
            }
            let lp = f64s(&run(&gexe, &plus)[0])[0];
            let lm = f64s(&run(&gexe, &minus)[0])[0];
            f.push((lp - lm) / (2.0 * H_NET));
            a.push(g[c]);
        }
        let e = rel(&a, &f);
        assert!(f.iter().any(|t| t.abs() > 1e-7), "{name}: degenerate gradient {f:?}");
        assert!(e < 1e-5, "{name}: rel err {e:e}\n  analytic {a:?}\n  numeric  {f:?}");
    }
}

/// A fit job on 64 bright-squares images (2 classes, batch 16, 4 steps an epoch).
fn squares_job<'a>(
    train: &'a prunebench::data::Dataset,
    lr: f64,
    steps: usize,
    out: Option<std::path::PathBuf>,
    stop: &'a std::sync::atomic::AtomicBool,
) -> prunebench::train::fit::FitJob<'a> {
    use prunebench::train::fit::{FitConfig, FitJob};
    FitJob {
        session: common::cpu(),
        train,
        test: None,
        normalize: prunebench::data::Normalize::new(vec![0.0], vec![1.0]).unwrap(),
        config: FitConfig {
            epochs: 1,
            max_steps: Some(steps),
            batch: 16,
            lr: LrSchedule::constant(lr),
            opt: OptConfig::default(),
            augment: false,
            shuffle: true,
            seed: 0,
        },
        plan: train::default_plan(&Arch::cifar(0.0625, 1, 2, vec![]).unwrap()),
        out,
        meta: Default::default(),
        stop,
    }
}

/// The reported fault: a learning rate of 50 made a fine-tune "succeed" with infinite BN
/// running variances in its checkpoint. Divergence is an error, and nothing of it is saved:
/// the checkpoint of the last healthy epoch stays as it was and loads.
#[test]
fn a_diverged_run_is_an_error_and_saves_nothing_unloadable() {
    use prunebench::model::checkpoint;
    use prunebench::train::fit::{fit, Position, Silent};
    let arch = Arch::cifar(0.0625, 1, 2, vec![]).unwrap();
    let (x, y) = squares(64, &mut ChaCha8Rng::seed_from_u64(8));
    let data = prunebench::data::Dataset::new("squares", x, y.iter().map(|&l| l as u32).collect(), (32, 32), 1, 2).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ft.safetensors");
    let v = Network::init(&arch, 5);
    // A healthy epoch first: its checkpoint is written.
    let (healthy, r) = fit(&v, &squares_job(&data, 0.01, 4, Some(out.clone()), &stop), Position::default(), &mut Silent).unwrap();
    assert_eq!(r.steps, 4);
    let sha = checkpoint::load(&out).unwrap().sha256;
    // Then the same file as the target of a run at lr 50.
    let e = fit(&healthy, &squares_job(&data, 50.0, 20, Some(out.clone()), &stop), Position::default(), &mut Silent).unwrap_err();
    assert!(matches!(e, prunebench::Error::Diverged { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("diverged at step") && msg.contains("lower the learning rate"), "{msg}");
    assert_eq!(checkpoint::load(&out).unwrap().sha256, sha, "the diverged run replaced the checkpoint");
    // Without a file (the suite's fine-tune) it is the same error, never a network.
    let e = fit(&healthy, &squares_job(&data, 50.0, 20, None, &stop), Position::default(), &mut Silent).unwrap_err();
    assert!(matches!(e, prunebench::Error::Diverged { .. }), "{e}");
}
