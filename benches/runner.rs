//! What the suite runner measures, and what measuring costs, on the CPU plugin:
//! - `suite_forward`: batch-1 forward latency (tuned lowering, weights and input on the
//!   device) of the unpruned VGG-16 CIFAR form and of its 0.5 L1-pruned version, through
//!   the same compile-and-set-weights path the runner uses;
//! - `runner_overhead`: the cost per timed iteration of the runner's timing rounds
//!   ([`prunebench::bench::rounds::interleave_timed`], one program) around nothing, and around execute-and-await of a
//!   1-element add (the fixed cost of one PJRT call). The target: well under 1% of the
//!   unpruned batch-1 latency.
//!
//! `cargo bench --bench runner` (needs `bash scripts/setup.sh`).

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::atomic::AtomicBool;

use prunebench::bench::rounds::interleave_timed;
use prunebench::bench::Sampling;
use prunebench::hlo::{Builder, DType, Shape};
use prunebench::tune::{Quiet, Tuner};
use prunebench::model::{program, Arch, Network};
use prunebench::pjrt::DeviceChoice;
use prunebench::prune::{self, Plan, Schedule, ScoreContext};
use prunebench::runtime::{CompiledModel, Session};

fn session() -> Session {
    Session::open(DeviceChoice::Cpu, None).expect("CPU plugin: run `bash scripts/setup.sh`")
}

fn forward(c: &mut Criterion) {
    let s = session();
    let mut tuner = Tuner::open_default(&s).expect("tuner");
    let base = Network::init(&Arch::cifar(1.0, 3, 10, vec![]).unwrap(), 0);
    let pruned = prune::prune(&base, &Plan::new("l1", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap().model;
    let mut g = c.benchmark_group("suite_forward");
    g.sample_size(20);
    for (name, v) in [("unpruned", &base), ("l1-0.5", &pruned)] {
        let plan = tuner.plan(&program::layer_shapes(&v.arch, 1, DType::F32).unwrap(), &mut Quiet).unwrap();
        let m = CompiledModel::new(&s, v, 1, DType::F32, &plan).unwrap();
        let per: usize = v.arch.input.iter().product();
        let input = m.upload_input(&vec![0.5; per]).unwrap();
        g.bench_function(format!("{name}/tuned/batch1"), |b| b.iter(|| m.run(&input).unwrap()));
    }
    g.finish();
}

/// Seconds of `iters` timed iterations of `f` inside the runner's timing rounds (one round of
/// one program: one untimed call, then `iters` timed ones).
fn timed_loop(iters: u64, f: &mut dyn FnMut() -> prunebench::Result<()>) -> Duration {
    let n = iters as usize;
    let one = Sampling {
        warmup: 0,
        calls_per_round: n,
        min_rounds: 1,
        min_samples: n,
        target_ci: f64::INFINITY,
        time_cap_s: 0.0,
        max_samples: n,
        ..Sampling::default()
    };
    let t = Instant::now();
    let r = interleave_timed(1, &one, &AtomicBool::new(false), |_| f()).unwrap();
    let d = t.elapsed();
    assert_eq!(r.samples[0].len(), n);
    d
}

fn overhead(c: &mut Criterion) {
    let s = session();
    let mut b = Builder::new();
    let x = b.arg(Shape::new([1], DType::F32));
    let y = b.add(&x, &x).unwrap();
    let exe = s.client.compile(&b.finish(&[&y])).unwrap();
    let input = s.upload(&[1.0], &[1], DType::F32).unwrap();
    let mut g = c.benchmark_group("runner_overhead");
    g.bench_function("timing_loop_per_iteration", |bch| bch.iter_custom(|n| timed_loop(n, &mut || Ok(()))));
    g.bench_function("add1_execute_per_iteration", |bch| {
        bch.iter_custom(|n| timed_loop(n, &mut || exe.execute(&[&input]).map(drop)))
    });
    g.finish();
}

criterion_group!(benches, overhead, forward);
criterion_main!(benches);
