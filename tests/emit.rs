//! The forward emitter (`model::emit`) on the CPU plugin against the f64 reference
//! interpreter (`graph::reference`), on small hand-built graphs covering every op: strided, grouped, depthwise, 1x1 and 7x7/2 convs,
//! max pool 3x3/2 pad 1, average pool, global average pool, add, ReLU6, flatten and dense;
//! batch 1 and 3; f32 and f64; the three modes; and every lowering that supports a conv
//! against the plain convolution.
//!
//! Also ResNet-20 and MobileNetV2 (CIFAR forms) at small width and input. Programs built by `emit::program` return f32 outputs (even in f64), so they are checked
//! to 1e-6 relative; raw f64 outputs (single convs, train mode) to 1e-12.

mod common;

use ndarray::{ArrayD, Ix4};
use prunebench::graph::reference::{self, BnMode};
use prunebench::graph::{init, ConvSpec, Graph, GraphBuilder, Naming, NodeId, Op, PoolSpec};
use prunebench::hlo::{Builder, DType, Shape};
use prunebench::lower::{Lowering, ALL};
use prunebench::model::emit::{self, Mode};
use prunebench::model::{Arch, Form};

/// Seeded tensors for the whole table (`graph::init`, BN randomised so folding matters).
fn params(g: &Graph, seed: u64) -> Vec<ArrayD<f32>> {
    let mut t = init::init(g, seed);
    init::randomize_bn(g, &mut t, seed + 1);
    t
}

/// Batch mean and biased variance per channel over N, H, W of an NHWC value.
fn batch_stats(x: &ArrayD<f64>) -> (Vec<f64>, Vec<f64>) {
    let c = x.shape()[3];
    let m = (x.len() / c) as f64;
    let (mut mean, mut var) = (vec![0.0; c], vec![0.0; c]);
    x.indexed_iter().for_each(|(ix, v)| mean[ix[3]] += v / m);
    x.indexed_iter().for_each(|(ix, v)| var[ix[3]] += (v - mean[ix[3]]).powi(2) / m);
    (mean, var)
}

/// Compiles `prog` and runs it on `x` and `args` (uploaded in `dtype`): every output as f64.
fn run(text: &str, x: &ArrayD<f64>, args: &[ArrayD<f64>], dtype: DType) -> Vec<Vec<f64>> {
    let s = common::cpu();
    let exe = s.client.compile(text).unwrap();
    let up = |a: &ArrayD<f64>| {
        let dims: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
        let data: Vec<f64> = a.iter().copied().collect();
        match dtype {
            DType::F64 => s.upload_f64(&data, &dims).unwrap(),
            _ => s.upload(&data.iter().map(|&v| v as f32).collect::<Vec<_>>(), &dims, dtype).unwrap(),
        }
    };
    let bufs: Vec<_> = std::iter::once(x).chain(args).map(up).collect();
    let out = exe.execute(&bufs.iter().collect::<Vec<_>>()).unwrap();
    out.iter()
        .map(|b| match b.to_host::<f32>() {
            Ok(v) => v.into_iter().map(f64::from).collect(),
            Err(_) => b.to_host::<f64>().unwrap(),
        })
        .collect()
}

fn flat(a: &ArrayD<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

fn input(g: &Graph, n: usize, seed: u64) -> ArrayD<f64> {
    let [h, w, c] = g.input_dims();
    common::images(n, h, w, c, seed).mapv(f64::from).into_dyn()
}

/// conv 7x7/2 pad 3 (bias) -> BN -> ReLU -> max pool 3x3/2 pad 1 -> conv 1x1 -> BN -> ReLU6
/// -> depthwise 3x3 + skip -> grouped 3x3/2 (2 groups, bias) -> ReLU -> GAP -> dense.
fn stem_graph() -> Graph {
    let mut b = GraphBuilder::new([16, 14, 3], Naming::Torchvision).unwrap();
    let x = b.input();
    let c = b.conv("stem", x, ConvSpec::new(8, 7, 2, 3, true)).unwrap();
    let c = b.batch_norm("stem_bn", c).unwrap();
    let c = b.relu(c).unwrap();
    let c = b.max_pool(c, PoolSpec::new(3, 2, 1)).unwrap();
    let e = b.conv("expand", c, ConvSpec::new(12, 1, 1, 0, false)).unwrap();
    let e = b.batch_norm("expand_bn", e).unwrap();
    let e = b.relu6(e).unwrap();
    let d = b.depthwise("dw", e, 3, 1, 1).unwrap();
    let s = b.add(d, e).unwrap();
    let gc = b.conv("grouped", s, ConvSpec { groups: 2, ..ConvSpec::new(6, 3, 2, 1, true) }).unwrap();
    let r = b.relu(gc).unwrap();
    let p = b.global_avg_pool(r).unwrap();
    b.dense("fc", p, 5, true).unwrap();
    b.finish().unwrap()
}

/// conv 3x3 -> ReLU -> avg pool 2x2/2 -> conv 5x5/1 pad 2 -> conv 3x3/2 pad 0 -> flatten ->
/// dense -> ReLU -> dense (no bias): a VGG-like head on a map larger than 1x1.
fn head_graph() -> Graph {
    let mut b = GraphBuilder::new([12, 12, 2], Naming::Torchvision).unwrap();
    let x = b.input();
    let c = b.conv("c0", x, ConvSpec::new(4, 3, 1, 1, true)).unwrap();
    let c = b.relu(c).unwrap();
    let c = b.avg_pool(c, PoolSpec::new(2, 2, 0)).unwrap();
    let c = b.conv("c1", c, ConvSpec::new(6, 5, 1, 2, false)).unwrap();
    let c = b.conv("c2", c, ConvSpec::new(4, 3, 2, 0, true)).unwrap();
    let f = b.flatten(c).unwrap();
    let h = b.dense("d0", f, 7, true).unwrap();
    let h = b.relu(h).unwrap();
    b.dense("d1", h, 3, false).unwrap();
    b.finish().unwrap()
}

fn graphs() -> Vec<Graph> {
    vec![stem_graph(), head_graph()]
}

fn check(what: &str, got: &[f64], want: &[f64], tol: f64) {
    let err = common::rel_err(got, want);
    assert!(err < tol, "{what}: rel err {err:e} >= {tol:e}");
    let spread = want.iter().cloned().fold(f64::MIN, f64::max) - want.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 1e-3, "{what}: degenerate values {want:?}");
}

#[test]
fn inference_equals_the_reference_batch_1_and_3_f64_and_f32() {
    for (gi, g) in graphs().iter().enumerate() {
        let t = params(g, 7 + gi as u64);
        let folded = reference::to_f64(&init::fold(g, &t).unwrap());
        let t = reference::to_f64(&t);
        let convs = g.convs().count();
        for (batch, dtype, tol) in [(1, DType::F64, 1e-6), (3, DType::F64, 1e-6), (3, DType::F32, 1e-5)] {
            let x = input(g, batch, 3);
            let want = reference::forward(g, &t, &x, BnMode::Running);
            let p = emit::inference_with_features(g, batch, dtype, &vec![Lowering::Direct; convs]).unwrap();
            let out = run(&p.text, &x, &folded, dtype);
            let what = format!("graph {gi} batch {batch} {dtype}");
            check(&format!("{what} logits"), &out[0], &flat(want.last().unwrap()), tol);
            let pen = emit::penultimate(g).unwrap();
            check(&format!("{what} features"), &out[1], &flat(&want[pen.0]), tol);
        }
    }
}

#[test]
fn running_mode_exposes_every_node_and_equals_the_reference() {
    for (gi, g) in graphs().iter().enumerate() {
        let t = reference::to_f64(&params(g, 21 + gi as u64));
        let x = input(g, 2, 5);
        let want = reference::forward(g, &t, &x, BnMode::Running);
        let hooks: Vec<NodeId> = g.nodes().iter().map(|n| n.id).collect();
        let p = emit::program(g, 2, DType::F64, Mode::Running, &vec![Lowering::Direct; g.convs().count()], &hooks).unwrap();
        let out = run(&p.text, &x, &t, DType::F64);
        for (n, got) in g.nodes().iter().zip(&out[1..]) {
            assert_eq!(got.len(), want[n.id.0].len(), "node '{}'", n.name);
            let err = common::rel_err(got, &flat(&want[n.id.0]));
            assert!(err < 1e-6, "graph {gi} node '{}' ({}): rel err {err:e}", n.name, n.op.kind());
        }
    }
}

#[test]
fn train_mode_normalises_with_batch_statistics() {
    for (gi, g) in graphs().iter().enumerate() {
        let t = reference::to_f64(&params(g, 31 + gi as u64));
        let train: Vec<ArrayD<f64>> = g.params().iter().zip(&t).filter(|(p, _)| p.is_trainable()).map(|(_, a)| a.clone()).collect();
        let x = input(g, 3, 9);
        let want = reference::forward(g, &t, &x, BnMode::Batch);
        let running = reference::forward(g, &t, &x, BnMode::Running);
        let mut b = Builder::new();
        let (xv, args) = emit::declare(&mut b, g, 3, DType::F64, Mode::Train).unwrap();
        let f = emit::forward(&mut b, g, &xv, &args, Mode::Train, &vec![Lowering::Direct; g.convs().count()]).unwrap();
        let bns: Vec<NodeId> = g.nodes().iter().filter(|n| n.op == Op::BatchNorm).map(|n| n.id).collect();
        assert_eq!(f.bn.iter().filter(|c| c.is_some()).count(), bns.len());
        // Outputs: logits, then per BN its batch mean and variance.
        let mut outs = vec![f.output().clone()];
        for id in &bns {
            let c = f.bn[id.0].as_ref().unwrap();
            outs.push(c.mean.clone());
            outs.push(c.var.clone());
        }
        let out = run(&b.finish(&outs.iter().collect::<Vec<_>>()), &x, &train, DType::F64);
        check(&format!("graph {gi} train logits"), &out[0], &flat(want.last().unwrap()), 1e-12);
        if !bns.is_empty() {
            assert!(common::rel_err(&out[0], &flat(running.last().unwrap())) > 1e-3, "batch and running statistics differ");
        }
        for (k, id) in bns.iter().enumerate() {
            let node = g.node(*id);
            let (mean, var) = batch_stats(&want[node.inputs[0].0]);
            assert!(common::rel_err(&out[1 + 2 * k], &mean) < 1e-12, "BN '{}' mean", node.name);
            assert!(common::rel_err(&out[2 + 2 * k], &var) < 1e-12, "BN '{}' var", node.name);
        }
    }
}

/// Each conv shape alone, every lowering that supports it against the reference (f64, batch
/// 1 and 3), and the ones that do not are refused.
#[test]
fn every_supported_lowering_equals_the_reference_on_each_conv_shape() {
    let depthwise = ConvSpec { groups: 6, ..ConvSpec::new(6, 3, 2, 1, false) };
    let grouped = ConvSpec { groups: 3, ..ConvSpec::new(9, 3, 1, 1, false) };
    let cases = [
        (ConvSpec::new(5, 3, 1, 1, false), 6, 7),
        (ConvSpec::new(5, 3, 2, 1, false), 7, 8),
        (ConvSpec::new(5, 1, 1, 0, false), 5, 5),
        (ConvSpec::new(5, 1, 2, 0, false), 5, 6),
        (ConvSpec::new(4, 7, 2, 3, false), 11, 9),
        (ConvSpec::new(4, 3, 2, 0, false), 7, 7),
        (ConvSpec { kh: 1, kw: 3, ..ConvSpec::new(4, 3, 1, 1, false) }, 4, 5),
        (depthwise, 6, 6),
        (grouped, 4, 4),
    ];
    let s = common::cpu();
    for (spec, h, w) in cases {
        let cin = if spec.groups > 1 { spec.groups * if spec.is_depthwise() { 1 } else { 2 } } else { 3 };
        for n in [1, 3] {
            let x = common::images(n, h, w, cin, 1).mapv(f64::from).into_dyn();
            let k = common::images(spec.kh, spec.kw, cin / spec.groups, spec.out, 2).mapv(f64::from).into_dyn();
            let x4 = x.clone().into_dimensionality::<Ix4>().unwrap();
            let want = flat(&reference::conv(&x4, &k.clone().into_dimensionality::<Ix4>().unwrap(), None, &spec).into_dyn());
            let mut tried = Vec::new();
            for l in ALL {
                let mut b = Builder::new();
                let xv = b.arg(Shape::new(x.shape().iter().map(|&d| d as i64).collect::<Vec<_>>(), DType::F64));
                let kv = b.arg(Shape::new(k.shape().iter().map(|&d| d as i64).collect::<Vec<_>>(), DType::F64));
                let y = l.conv(&mut b, &xv, &kv, &spec);
                if !l.supports(&spec, h, w) || (l == Lowering::Kernel && !s.kernel) {
                    if !l.supports(&spec, h, w) {
                        let e = y.unwrap_err().to_string();
                        assert!(e.contains("use direct"), "{l} {spec}: {e}");
                    }
                    continue;
                }
                let y = y.unwrap();
                let out = run(&b.finish(&[&y]), &x, std::slice::from_ref(&k), DType::F64);
                let err = common::rel_err(&out[0], &want);
                assert!(err < 1e-12, "{l} {spec} on {n}x{h}x{w}x{cin}: rel err {err:e}");
                tried.push(l);
            }
            let three = spec.kh == 3 && spec.kw == 3 && spec.stride == 1 && spec.pad == 1 && spec.groups == 1;
            let expect: Vec<Lowering> = ALL
                .into_iter()
                .filter(|&l| match l {
                    Lowering::Direct => true,
                    Lowering::Im2col | Lowering::Gemm9 => spec.groups == 1,
                    Lowering::Winograd => three,
                    Lowering::Kernel => three && s.kernel,
                })
                .collect();
            assert_eq!(tried, expect, "{spec}");
        }
    }
}

/// A plan with every lowering where it applies (Direct elsewhere) gives the plain plan's
/// logits on both graphs; fixed plans fall back to Direct where their lowering does not apply.
#[test]
fn plans_mixing_lowerings_agree_with_the_plain_convolution() {
    for (gi, g) in graphs().iter().enumerate() {
        let folded = reference::to_f64(&init::fold(g, &params(g, 41 + gi as u64)).unwrap());
        let x = input(g, 3, 4);
        let shapes = emit::layer_shapes(g, 3, DType::F64);
        let plain = run(&emit::inference(g, 3, DType::F64, &vec![Lowering::Direct; shapes.len()]).unwrap().text, &x, &folded, DType::F64);
        for l in ALL {
            let plan: Vec<Lowering> = shapes.iter().map(|s| if s.supports(l) { l } else { Lowering::Direct }).collect();
            let out = run(&emit::inference(g, 3, DType::F64, &plan).unwrap().text, &x, &folded, DType::F64);
            check(&format!("graph {gi} {l}"), &out[0], &plain[0], 1e-6);
        }
        for (mode, l) in [
            (prunebench::lower::Mode::Im2col, Lowering::Im2col),
            (prunebench::lower::Mode::Winograd, Lowering::Winograd),
            (prunebench::lower::Mode::Xla, Lowering::Direct),
        ] {
            let plan = prunebench::lower::fixed_plan(mode, &shapes).unwrap();
            let want: Vec<Lowering> = shapes.iter().map(|s| if s.supports(l) { l } else { Lowering::Direct }).collect();
            assert_eq!(plan, want, "graph {gi} {mode}");
        }
    }
    // The head graph's first conv is the one 3x3/1 pad 1: Winograd there, Direct elsewhere.
    let shapes = emit::layer_shapes(&head_graph(), 1, DType::F32);
    let plan = prunebench::lower::fixed_plan(prunebench::lower::Mode::Winograd, &shapes).unwrap();
    assert_eq!(plan, [Lowering::Winograd, Lowering::Direct, Lowering::Direct]);
}

/// ResNet-20 and MobileNetV2 (CIFAR forms) at width 0.25 on 16x16 inputs, batch 2, f32:
/// the inference program equals the reference, with the plain convolution and with im2col
/// wherever it applies.
#[test]
fn resnet20_and_mobilenetv2_cifar_equal_the_reference() {
    for form in [Form::Resnet20Cifar, Form::Mobilenetv2Cifar] {
        let arch = Arch::new(form, 0.25, 3, 10).unwrap().with_input(16, 16).unwrap();
        let g = arch.graph().unwrap();
        let t = params(&g, 51);
        let folded = reference::to_f64(&init::fold(&g, &t).unwrap());
        let x = input(&g, 2, 6);
        let want = flat(&reference::logits(&g, &reference::to_f64(&t), &x, BnMode::Running));
        let shapes = emit::layer_shapes(&g, 2, DType::F32);
        for l in [Lowering::Direct, Lowering::Im2col] {
            let plan: Vec<Lowering> = shapes.iter().map(|s| if s.supports(l) { l } else { Lowering::Direct }).collect();
            let p = prunebench::model::program::inference(&arch, 2, DType::F32, &plan).unwrap();
            let out = run(&p.text, &x, &folded, DType::F32);
            check(&format!("{form} {l}"), &out[0], &want, 1e-4);
        }
    }
}
