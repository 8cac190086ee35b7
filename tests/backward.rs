//! The backward pass over graphs, against the independent f64 reference: for a residual
//! block, a projection block, an inverted-residual block and an ImageNet stem, the compiled
//! gradient program (training mode, f64, CPU plugin) returns the loss of
//! `reference::forward` in `BnMode::Batch` + `reference::softmax_xent`, and every parameter's
//! gradient equals central finite differences of that reference loss at a few coordinates
//! per tensor, to a relative error below [`BOUND`] (max |analytic - numeric| over the checked
//! coordinates of a tensor, divided by the largest |numeric| among them). Each graph is
//! checked with plain convolutions everywhere and with the im2col fast path on its 3x3
//! stride-1 convs; a value read twice (the block input, by the first conv and by the add)
//! receives both gradients. The step program of the residual block applies exactly those
//! gradients and updates the running statistics from the reference's batch statistics.

mod common;

use common::coords;

use ndarray::{ArrayD, IxDyn};
use prunebench::graph::reference::{self, BnMode};
use prunebench::graph::{init, ConvSpec, Graph, GraphBuilder, Naming, NodeId, Op, PoolSpec, Role};
use prunebench::hlo::DType;
use prunebench::lower::Lowering;
use prunebench::pjrt::Buffer;
use prunebench::train::{self, OptConfig};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Central-difference step on the reference loss.
const H: f64 = 1e-6;
/// Largest relative error allowed between a gradient and its finite differences. f64
/// central differences with step 1e-6 err by ~1e-10 relative (round-off and the third
/// derivative); a ReLU or max-pool kink inside the step would show as ~1e-3.
const BOUND: f64 = 1e-6;
const BATCH: usize = 3;

fn conv(b: &mut GraphBuilder, name: &str, x: NodeId, out: usize, k: usize, stride: usize, pad: usize) -> NodeId {
    b.conv(name, x, ConvSpec::new(out, k, stride, pad, false)).unwrap()
}

/// A `k x k` conv (pad `k / 2`) + BN, torchvision-style names `{name}` and `{bn}`.
fn conv_bn(b: &mut GraphBuilder, name: &str, bn: &str, x: NodeId, out: usize, k: usize, stride: usize) -> NodeId {
    let c = conv(b, name, x, out, k, stride, k / 2);
    b.batch_norm(bn, c).unwrap()
}

/// [`conv_bn`] + ReLU.
fn conv_bn_relu(b: &mut GraphBuilder, name: &str, bn: &str, x: NodeId, out: usize, k: usize, stride: usize) -> NodeId {
    let n = conv_bn(b, name, bn, x, out, k, stride);
    b.relu(n).unwrap()
}

fn head(mut b: GraphBuilder, x: NodeId, classes: usize) -> Graph {
    let p = b.global_avg_pool(x).unwrap();
    b.dense("fc", p, classes, true).unwrap();
    b.finish().unwrap()
}

/// A stem conv, then a BasicBlock with an identity shortcut: the stem's ReLU feeds conv1
/// and the add.
fn residual_block() -> Graph {
    let mut b = GraphBuilder::new([6, 5, 3], Naming::Torchvision).unwrap();
    let x = b.input();
    let r = conv_bn_relu(&mut b, "conv1", "bn1", x, 4, 3, 1);
    let y = conv_bn_relu(&mut b, "layer1.0.conv1", "layer1.0.bn1", r, 4, 3, 1);
    let y = conv_bn(&mut b, "layer1.0.conv2", "layer1.0.bn2", y, 4, 3, 1);
    let s = b.add(y, r).unwrap();
    let s = b.relu(s).unwrap();
    head(b, s, 3)
}

/// A stem conv, then a strided BasicBlock whose shortcut is a 1x1/2 conv + BN (odd input
/// side: the strided convs leave the last row and column unread).
fn projection_block() -> Graph {
    let mut b = GraphBuilder::new([7, 7, 3], Naming::Torchvision).unwrap();
    let x = b.input();
    let r = conv_bn_relu(&mut b, "conv1", "bn1", x, 4, 3, 1);
    let y = conv_bn_relu(&mut b, "layer2.0.conv1", "layer2.0.bn1", r, 6, 3, 2);
    let y = conv_bn(&mut b, "layer2.0.conv2", "layer2.0.bn2", y, 6, 3, 1);
    let d = conv_bn(&mut b, "layer2.0.downsample.0", "layer2.0.downsample.1", r, 6, 1, 2);
    let s = b.add(y, d).unwrap();
    let s = b.relu(s).unwrap();
    head(b, s, 3)
}

/// A stem conv + BN + ReLU6, then MobileNetV2's inverted residual: 1x1 expand, depthwise
/// 3x3, 1x1 project (each with BN, ReLU6 after the first two), residual add.
fn inverted_residual() -> Graph {
    let mut b = GraphBuilder::new([5, 6, 3], Naming::Torchvision).unwrap();
    let x = b.input();
    let c = conv(&mut b, "features.0.0", x, 4, 3, 1, 1);
    let n = b.batch_norm("features.0.1", c).unwrap();
    let r = b.relu6(n).unwrap();
    let e = conv(&mut b, "features.1.conv.0.0", r, 12, 1, 1, 0);
    let e = b.batch_norm("features.1.conv.0.1", e).unwrap();
    let e = b.relu6(e).unwrap();
    let d = b.depthwise("features.1.conv.1.0", e, 3, 1, 1).unwrap();
    let d = b.batch_norm("features.1.conv.1.1", d).unwrap();
    let d = b.relu6(d).unwrap();
    let p = conv(&mut b, "features.1.conv.2", d, 4, 1, 1, 0);
    let p = b.batch_norm("features.1.conv.3", p).unwrap();
    let s = b.add(p, r).unwrap();
    head(b, s, 3)
}

/// ResNet's ImageNet stem: 7x7/2 pad 3 conv + BN + ReLU, max-pool 3x3/2 pad 1, then a
/// flatten and a dense layer.
fn stem() -> Graph {
    let mut b = GraphBuilder::new([12, 11, 3], Naming::Torchvision).unwrap();
    let x = b.input();
    let r = conv_bn_relu(&mut b, "conv1", "bn1", x, 4, 7, 2);
    let m = b.max_pool(r, PoolSpec::new(3, 2, 1)).unwrap();
    let f = b.flatten(m).unwrap();
    b.dense("fc", f, 5, true).unwrap();
    b.finish().unwrap()
}

/// Seeded tensors of `g` in f64, with non-trivial BN parameters and biases.
fn tensors(g: &Graph, seed: u64) -> Vec<ArrayD<f64>> {
    let mut t = init::init(g, seed);
    init::randomize_bn(g, &mut t, seed + 1);
    reference::to_f64(&t)
}

/// A batch of images uniform in (-1, 1) and labels.
fn batch(g: &Graph, seed: u64) -> (ArrayD<f64>, Vec<usize>) {
    let [h, w, c] = g.input_dims();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let x = ArrayD::from_shape_simple_fn(IxDyn(&[BATCH, h, w, c]), || rng.random_range(-1.0..1.0));
    let labels = (0..BATCH).map(|_| rng.random_range(0..g.classes())).collect();
    (x, labels)
}

fn reference_loss(g: &Graph, t: &[ArrayD<f64>], x: &ArrayD<f64>, labels: &[usize]) -> f64 {
    reference::softmax_xent(&reference::logits(g, t, x, BnMode::Batch), labels)
}

fn upload(a: &ArrayD<f64>) -> Buffer {
    let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
    common::cpu().upload_f64(&a.iter().copied().collect::<Vec<_>>(), &dims).unwrap()
}

fn upload_labels(labels: &[usize]) -> Buffer {
    let s = common::cpu();
    let l: Vec<i32> = labels.iter().map(|&y| y as i32).collect();
    s.client.upload(&l, &[l.len() as i64], &s.device).unwrap()
}

/// The plan with im2col on every 3x3 stride-1 pad-1 one-group conv (its fast path), plain
/// convolutions elsewhere.
fn im2col_plan(g: &Graph) -> Vec<Lowering> {
    g.convs()
        .map(|(_, c)| if (c.kh, c.kw, c.stride, c.pad, c.groups) == (3, 3, 1, 1, 1) { Lowering::Im2col } else { Lowering::Direct })
        .collect()
}


/// Compiles the gradient program of `g` under `plan`, checks its loss and every gradient
/// against the reference; returns the gradients (trainable tensors, table order).
fn check_graph(name: &str, g: &Graph, plan: &[Lowering]) -> Vec<Vec<f64>> {
    let t = tensors(g, 11);
    let (x, labels) = batch(g, 12);
    let gp = train::graph_grad_program(g, BATCH, DType::F64, plan).unwrap();
    let exe = common::cpu().client.compile(&gp.text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let trainable: Vec<usize> = (0..g.params().len()).filter(|&i| g.params()[i].is_trainable()).collect();
    assert_eq!(gp.params.len(), trainable.len());
    let mut bufs = vec![upload(&x), upload_labels(&labels)];
    bufs.extend(trainable.iter().map(|&i| upload(&t[i])));
    let refs: Vec<&Buffer> = bufs.iter().collect();
    let out = exe.execute(&refs).unwrap();
    let loss = out[0].to_host::<f64>().unwrap()[0];
    let want = reference_loss(g, &t, &x, &labels);
    assert!((loss - want).abs() < 1e-10 * want.abs().max(1.0), "{name}: program loss {loss} vs reference {want}");
    let mut grads = Vec::new();
    for (slot, &i) in trainable.iter().enumerate() {
        let p = &g.params()[i];
        let analytic: Vec<f64> = out[1 + slot].to_host().unwrap();
        assert_eq!(analytic.len(), p.len(), "{name}: {}", p.name);
        let (mut a, mut f) = (Vec::new(), Vec::new());
        for c in coords(p.len(), 100 + i as u64) {
            let mut plus = t.clone();
            let mut minus = t.clone();
            plus[i].as_slice_mut().unwrap()[c] += H;
            minus[i].as_slice_mut().unwrap()[c] -= H;
            f.push((reference_loss(g, &plus, &x, &labels) - reference_loss(g, &minus, &x, &labels)) / (2.0 * H));
            a.push(analytic[c]);
        }
        let scale = f.iter().fold(1e-12f64, |m, v| m.max(v.abs()));
        let err = a.iter().zip(&f).map(|(p, q)| (p - q).abs()).fold(0.0, f64::max) / scale;
        eprintln!("{name}: {:<28} rel err {err:.1e}", p.name);
        assert!(err < BOUND, "{name}: {} rel err {err:e}\nanalytic {a:?}\nnumeric  {f:?}", p.name);
        assert!(f.iter().any(|v| v.abs() > 1e-8), "{name}: {}: degenerate gradient {f:?}", p.name);
        grads.push(analytic);
    }
    grads
}

fn check_both_plans(name: &str, g: &Graph) {
    let direct = vec![Lowering::Direct; g.convs().count()];
    check_graph(&format!("{name} direct"), g, &direct);
    let fast = im2col_plan(g);
    if fast != direct {
        check_graph(&format!("{name} im2col"), g, &fast);
    }
}

#[test]
fn residual_block_gradients_equal_finite_differences() {
    let g = residual_block();
    let stem_relu = g.nodes().iter().find(|n| n.op == Op::Relu).unwrap();
    assert_eq!(g.consumers(stem_relu.id).len(), 2, "the block input feeds conv1 and the add");
    check_both_plans("residual block", &g);
}

#[test]
fn projection_block_gradients_equal_finite_differences() {
    check_both_plans("projection block", &projection_block());
}

#[test]
fn inverted_residual_gradients_equal_finite_differences() {
    let g = inverted_residual();
    assert!(g.convs().any(|(_, c)| c.is_depthwise()));
    check_both_plans("inverted residual", &g);
}

#[test]
fn stem_gradients_equal_finite_differences() {
    check_both_plans("stem", &stem());
}

/// The step program of the residual block, run with zero momentum and lr 1 (no weight
/// decay), returns momentum buffers equal to the gradient program's gradients and running
/// statistics moved 0.1 of the way to the reference's batch statistics (variance unbiased).
#[test]
fn residual_block_step_applies_the_gradients_and_updates_the_statistics() {
    let g = residual_block();
    let plan = train::default_graph_plan(&g);
    let grads = check_graph("residual block default plan", &g, &plan);
    let opt = OptConfig { momentum: 0.9, weight_decay: 0.0, nesterov: false, bn_momentum: 0.1 };
    let sp = train::graph_step_program(&g, BATCH, DType::F64, &opt, &plan).unwrap();
    let exe = common::cpu().client.compile(&sp.text).unwrap();
    let t = tensors(&g, 11);
    let (x, labels) = batch(&g, 12);
    let s = common::cpu();
    let mut bufs = vec![upload(&x), upload_labels(&labels), s.client.upload(&[1.0f32], &[], &s.device).unwrap()];
    let (train_idx, stat_idx): (Vec<usize>, Vec<usize>) = (0..g.params().len()).partition(|&i| g.params()[i].is_trainable());
    bufs.extend(train_idx.iter().map(|&i| upload(&t[i])));
    bufs.extend(train_idx.iter().map(|&i| upload(&ArrayD::zeros(t[i].shape()))));
    bufs.extend(stat_idx.iter().map(|&i| upload(&t[i])));
    let refs: Vec<&Buffer> = bufs.iter().collect();
    let out = exe.execute(&refs).unwrap();
    let np = train_idx.len();
    for (k, gk) in grads.iter().enumerate() {
        let m: Vec<f64> = out[2 + np + k].to_host().unwrap();
        let e = common::rel_err(&m, gk);
        assert!(e < 1e-12, "{}: momentum {e:e} away from the gradient", sp.params[k].name);
    }
    // Batch statistics of each BN input from the reference.
    let values = reference::forward(&g, &t, &x, BnMode::Batch);
    for (k, &i) in stat_idx.iter().enumerate() {
        let p = &g.params()[i];
        let bn = g.node(p.node);
        let v = &values[bn.inputs[0].0];
        let c = v.shape()[3];
        let m = (v.len() / c) as f64;
        let flat: Vec<f64> = v.iter().copied().collect();
        let mean: Vec<f64> = (0..c).map(|ch| flat.iter().skip(ch).step_by(c).sum::<f64>() / m).collect();
        let want: Vec<f64> = match p.role {
            Role::RunningMean => (0..c).map(|ch| 0.9 * t[i][ch] + 0.1 * mean[ch]).collect(),
            Role::RunningVar => (0..c)
                .map(|ch| {
                    let ss: f64 = flat.iter().skip(ch).step_by(c).map(|v| (v - mean[ch]).powi(2)).sum();
                    0.9 * t[i][ch] + 0.1 * ss / (m - 1.0)
                })
                .collect(),
            _ => unreachable!("statistics only"),
        };
        let got: Vec<f64> = out[2 + 2 * np + k].to_host().unwrap();
        let e = common::rel_err(&got, &want);
        assert!(e < 1e-10, "{}: {got:?} vs {want:?}", p.name);
    }
}
