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

/// Largest |a - b| divided by the largest |b| (at least 1e-12).
pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(1e-12f64, |m, x| m.max(x.abs()));
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max) / scale
}
