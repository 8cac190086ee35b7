//! The compiled inference program (CPU plugin) against the plain Rust reference, on
//! width-scaled VGG-16s: both heads, 1 and 3 input channels, batch 1 and > 1, f32 and f64,
//! both conv lowerings, and a flatten map larger than 1x1. Weights are f32 and BN is folded
//! in f32 on the host, so f64 programs agree to ~1e-7 relative, not to f64 precision.

mod common;

use prunebench::hlo::DType;
use prunebench::lower::Lowering;
use prunebench::model::{Arch, Network};
use prunebench::runtime::CompiledModel;

fn check(arch: Arch, batch: usize, n: usize, dtype: DType, lowering: Lowering, tol: f64) {
    let mut v = Network::init(&arch, 11);
    v.randomize_bn(12);
    let [h, w, c] = arch.input;
    let x = common::images(n, h, w, c, 13);
    let want = common::logits(&v, &x.mapv(f64::from));
    let m = CompiledModel::new(common::cpu(), &v, batch, dtype, &vec![lowering; v.graph.convs().count()]).unwrap();
    let got = m.predict(x.as_slice().unwrap(), n).unwrap();
    let got: Vec<f64> = got.iter().map(|&g| g as f64).collect();
    let want: Vec<f64> = want.iter().copied().collect();
    let err = common::rel_err(&got, &want);
    assert!(err < tol, "{} batch {batch} n {n} {dtype} {lowering}: rel err {err:e} >= {tol:e}", arch.describe());
    // The logits must not be trivially equal (e.g. all zero): a real check needs spread.
    let spread = want.iter().cloned().fold(f64::MIN, f64::max) - want.iter().cloned().fold(f64::MAX, f64::min);
    assert!(spread > 1e-3, "degenerate logits {want:?}");
}

#[test]
fn cifar_small_head_f64_matches_reference_tightly() {
    let a = Arch::cifar(0.0625, 3, 10, vec![]).unwrap();
    for l in prunebench::lower::ALL {
        check(a.clone(), 2, 3, DType::F64, l, 1e-6);
    }
}

#[test]
fn cifar_two_layer_head_one_channel_f32() {
    let a = Arch::cifar(0.0625, 1, 7, vec![24]).unwrap();
    for l in [Lowering::Direct, Lowering::Im2col] {
        check(a.clone(), 1, 2, DType::F32, l, 1e-4);
        check(a.clone(), 4, 5, DType::F32, l, 1e-4);
    }
}

#[test]
fn bf16_is_close_but_not_exact() {
    let a = Arch::cifar(0.0625, 3, 10, vec![]).unwrap();
    check(a, 2, 2, DType::BF16, Lowering::Im2col, 0.1);
}

#[test]
fn imagenet_form_with_7x7_flatten() {
    let a = Arch::imagenet(1.0 / 32.0, 3, 12, false).unwrap();
    check(a, 1, 1, DType::F64, Lowering::Direct, 1e-6);
}

#[test]
fn imagenet_form_bn_2x2_flatten_both_lowerings() {
    let a = Arch::imagenet(1.0 / 16.0, 3, 5, true).unwrap().with_input(64, 64).unwrap();
    for l in prunebench::lower::ALL {
        check(a.clone(), 2, 2, DType::F64, l, 1e-6);
    }
}
