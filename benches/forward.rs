//! Forward latency of VGG-16 CIFAR form on the CPU plugin, weights and input already on the
//! device: full width and width 0.5, batch 1 and 32, with XLA's plain convolutions and with
//! the tuned lowering. `cargo bench --bench forward` (needs `bash scripts/setup.sh`).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use prunebench::lower::{self, Mode};
use prunebench::tune::{Quiet, Tuner};
use prunebench::model::{program, Arch, Network};
use prunebench::pjrt::DeviceChoice;
use prunebench::runtime::{CompiledModel, Session};

fn forward(c: &mut Criterion) {
    let session = Session::open(DeviceChoice::Cpu, None).expect("CPU plugin: run `bash scripts/setup.sh`");
    let mut tuner = Tuner::open_default(&session).expect("tuner");
    let mut g = c.benchmark_group("vgg16_cifar_forward");
    g.sample_size(10);
    for width in [1.0, 0.5] {
        let v = Network::init(&Arch::cifar(width, 3, 10, vec![]).unwrap(), 0);
        for batch in [1usize, 32] {
            for mode in [Mode::Xla, Mode::Tuned] {
                let shapes = program::layer_shapes(&v.arch, batch, prunebench::hlo::DType::F32).unwrap();
                let plan = match lower::fixed_plan(mode, &shapes) {
                    Some(p) => p,
                    None => tuner.plan(&shapes, &mut Quiet).unwrap(),
                };
                let m = CompiledModel::new(&session, &v, batch, prunebench::hlo::DType::F32, &plan).unwrap();
                let per: usize = v.arch.input.iter().product();
                let input = m.upload_input(&vec![0.5; batch * per]).unwrap();
                let id = BenchmarkId::new(format!("w{width}/{mode}"), format!("batch{batch}"));
                g.bench_function(id, |b| b.iter(|| m.run(&input).unwrap()));
            }
        }
    }
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
