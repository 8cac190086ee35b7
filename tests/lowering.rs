//! Every conv lowering against the plain Rust reference on single layers of every map size
//! VGG-16 uses (32x32 down to 2x2, and 1x1), and the tuner's cache behaviour.

mod common;

use prunebench::hlo::{Builder, DType, Shape};
use prunebench::tune::{Decision, Progress, RetuneBusy, Tuner};
use prunebench::lower::{LayerShape, Lowering, ALL};
use prunebench::graph::{reference, ConvSpec};

/// The plain reference of a 3x3 stride-1 pad-1 conv without bias.
fn conv3x3(x: &ndarray::Array4<f64>, k: &ndarray::Array4<f64>) -> ndarray::Array4<f64> {
    reference::conv(x, k, None, &ConvSpec::new(k.shape()[3], 3, 1, 1, false))
}

/// One layer through `lowering` in `dtype` (f64 or f32) on random data (seeds `seed`,
/// `seed + 1`), called `calls` times: the relative error of each call against the f64
/// reference.
fn layer_errors(lowering: Lowering, dtype: DType, (n, hw, cin, cout): (usize, usize, usize, usize), seed: u64, calls: usize) -> Vec<f64> {
    let s = common::cpu();
    let x = common::images(n, hw, hw, cin, seed);
    let k = common::images(3, 3, cin, cout, seed + 1);
    let want = conv3x3(&x.mapv(f64::from), &k.mapv(f64::from));
    let want: Vec<f64> = want.iter().copied().collect();
    let (xd, kd) = ([n as i64, hw as i64, hw as i64, cin as i64], [3, 3, cin as i64, cout as i64]);
    let mut b = Builder::new();
    let xv = b.arg(Shape::new(xd, dtype));
    let kv = b.arg(Shape::new(kd, dtype));
    let y = lowering.emit(&mut b, &xv, &kv).unwrap();
    assert_eq!(y.dims(), &[n as i64, hw as i64, hw as i64, cout as i64]);
    let exe = s.client.compile(&b.finish(&[&y])).unwrap();
    let xb = s.upload(x.as_slice().unwrap(), &xd, dtype).unwrap();
    let kb = s.upload(k.as_slice().unwrap(), &kd, dtype).unwrap();
    (0..calls)
        .map(|_| {
            let out = &exe.execute(&[&xb, &kb]).unwrap()[0];
            let got: Vec<f64> = match dtype {
                DType::F64 => out.to_host().unwrap(),
                _ => out.to_host::<f32>().unwrap().iter().map(|&v| v as f64).collect(),
            };
            common::rel_err(&got, &want)
        })
        .collect()
}

fn layer(lowering: Lowering, n: usize, hw: usize, cin: usize, cout: usize) {
    let err = layer_errors(lowering, DType::F64, (n, hw, cin, cout), 1, 1)[0];
    assert!(err < 1e-12, "{lowering} n{n} {hw}x{hw} {cin}->{cout}: rel err {err:e}");
}

#[test]
fn every_lowering_matches_the_reference_at_every_map_size() {
    for l in ALL {
        for hw in [32, 16, 8, 4, 2, 1] {
            layer(l, 2, hw, 3, 5);
        }
        layer(l, 1, 2, 16, 8);
        layer(l, 3, 4, 8, 16);
    }
}

/// Winograd rounds differently from the direct sum (its transforms add and halve before the
/// products): in f32 on a wide layer it must still agree with the f64 reference to about
/// 1e-5, like every other lowering.
#[test]
fn winograd_f32_is_close_on_a_wide_layer() {
    let err = layer_errors(Lowering::Winograd, DType::F32, (2, 8, 64, 32), 3, 1)[0];
    assert!(err < 1e-5, "winograd f32 rel err {err:e}");
}

/// A transposed kernel or a shifted tap would still give the right shape: make sure the
/// check above would catch it, by comparing against a deliberately wrong reference.
#[test]
fn a_wrong_kernel_layout_is_caught() {
    let x = common::images(1, 4, 4, 3, 1).mapv(f64::from);
    let k = common::images(3, 3, 3, 3, 2).mapv(f64::from);
    let right = conv3x3(&x, &k);
    let mut flipped = k.clone();
    flipped.invert_axis(ndarray::Axis(0));
    let wrong = conv3x3(&x, &flipped);
    let a: Vec<f64> = right.iter().copied().collect();
    let b: Vec<f64> = wrong.iter().copied().collect();
    assert!(common::rel_err(&a, &b) > 1e-2);
}

#[derive(Default)]
struct Count(usize, Vec<Lowering>);

impl Progress for Count {
    fn layer(&mut self, _: usize, _: usize, _: &LayerShape) {
        self.0 += 1;
    }
    fn result(&mut self, _: &LayerShape, timings: &[(Lowering, f64)], choice: Lowering) {
        assert_eq!(timings.len(), ALL.len());
        assert!(timings.iter().all(|(_, t)| *t > 0.0));
        self.1.push(choice);
    }
}

#[test]
fn tuner_measures_each_distinct_shape_once_and_caches_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("lowering.json");
    let s = common::cpu();
    let shapes = vec![
        LayerShape::new(1, 8, 8, 4, 4, DType::F32),
        LayerShape::new(1, 2, 2, 8, 8, DType::F32),
        LayerShape::new(1, 8, 8, 4, 4, DType::F32),
    ];
    let mut t = Tuner::new(s, Some(cache.clone())).unwrap();
    t.min_iters = 2;
    t.min_seconds = 0.0;
    let mut p = Count::default();
    let plan = t.plan(&shapes, &mut p).unwrap();
    assert_eq!(p.0, 2, "two distinct shapes");
    assert_eq!(plan.len(), 3);
    assert_eq!(plan[0], plan[2]);
    assert!(cache.exists());
    // A new tuner on the same cache measures nothing and gives the same plan (choices made
    // while the machine was busy kept, not re-tuned, so this holds under load too).
    let mut t2 = Tuner::new(s, Some(cache.clone())).unwrap();
    t2.retune_busy = RetuneBusy::Never;
    let mut p2 = Count::default();
    assert_eq!(t2.plan(&shapes, &mut p2).unwrap(), plan);
    assert_eq!(p2.0, 0);
    let d: &Decision = t2.cached(&shapes[1]).unwrap();
    assert_eq!(d.seconds.len(), ALL.len());
    assert_eq!(d.samples.len(), ALL.len());
    assert!(d.margin.is_some_and(|m| m > 0.0));
    // A damaged cache costs a re-tune, never an error.
    std::fs::write(&cache, "{ not json").unwrap();
    let mut t3 = Tuner::new(s, Some(cache)).unwrap();
    t3.min_iters = 1;
    t3.min_seconds = 0.0;
    let mut p3 = Count::default();
    t3.plan(&shapes[..1], &mut p3).unwrap();
    assert_eq!(p3.0, 1);
}

/// The custom kernel's f32 path (AVX2 blocks of 16 output channels, a scalar tail, the rows
/// split over XLA's thread pool once the layer has 64K weights) against the f64 reference,
/// on map sizes from 1x1 to 8x8 and batch > 1. Each layer runs twice: the second call reuses
/// the executable (and XLA's pool) and must give the same result.
#[test]
fn kernel_f32_matches_the_reference_split_over_two_threads() {
    assert!(common::cpu().kernel, "the CPU plugin registers the kernel");
    for layer in [(1, 4, 128, 72), (3, 2, 96, 88), (2, 1, 40, 24), (1, 8, 16, 9)] {
        for err in layer_errors(Lowering::Kernel, DType::F32, layer, 5, 2) {
            assert!(err < 1e-5, "kernel f32 {layer:?}: rel err {err:e}");
        }
    }
}

/// bf16 is refused with a message that names the way out.
#[test]
fn kernel_refuses_bf16() {
    let mut b = Builder::new();
    let xv = b.arg(Shape::new([1, 2, 2, 8], DType::BF16));
    let kv = b.arg(Shape::new([3, 3, 8, 8], DType::BF16));
    let e = Lowering::Kernel.emit(&mut b, &xv, &kv).unwrap_err().to_string();
    assert!(e.contains("f32") && e.contains("im2col"), "{e}");
}
