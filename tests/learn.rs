//! A tiny VGG-16 (width 0.125) learns real Fashion-MNIST through the compiled training step
//! to a test accuracy a broken gradient could not reach (>= 80%), in under a minute of
//! training on 2 cores. Needs the data `bash scripts/setup.sh` installs.

mod common;

use std::sync::atomic::AtomicBool;

use prunebench::data::{Source, Split};
use prunebench::lower::Lowering;
use prunebench::model::{Arch, Network};
use prunebench::train::fit::{fit, FitConfig, FitJob, Position, Silent};
use prunebench::train::{LrSchedule, OptConfig};

#[test]
fn tiny_vgg_learns_fashion_mnist() {
    let arch = Arch::cifar(0.125, 1, 10, vec![]).unwrap();
    let src = Source::FashionMnist;
    let train = src
        .load(Split::Train, arch.input)
        .expect("Fashion-MNIST must be installed for the tests: run `bash scripts/setup.sh`")
        .take(12_000);
    let test = src.load(Split::Test, arch.input).unwrap().take(1_000);
    let plan = prunebench::train::default_plan(&arch);
    assert!(plan.contains(&Lowering::Im2col), "the 2x2 maps take im2col");
    let stop = AtomicBool::new(false);
    let job = FitJob {
        session: common::cpu(),
        train: &train,
        test: Some(&test),
        normalize: src.normalize(),
        config: FitConfig {
            epochs: 2,
            max_steps: None,
            batch: 64,
            lr: LrSchedule::cosine(0.05, 50),
            opt: OptConfig::default(),
            augment: false,
            shuffle: true,
            seed: 0,
        },
        plan,
        out: None,
        meta: Default::default(),
        stop: &stop,
    };
    let (_, r) = fit(&Network::init(&arch, 0), &job, Position::default(), &mut Silent).unwrap();
    let t = r.test.expect("evaluated");
    assert_eq!(t.images, 1_000);
    assert!(t.top1 >= 0.80, "test top-1 {:.3} after {} steps (loss {:.3})", t.top1, r.steps, t.loss);
    assert!(r.last_train_loss < 0.6, "train loss {}", r.last_train_loss);
}
