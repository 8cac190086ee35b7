//! Measurement: the timing loop and the statistics of its samples.

pub mod accuracy;
pub mod latency;
pub mod load;
pub mod stats;

pub use stats::Summary;

use std::time::Instant;

use crate::error::Result;

/// How long to measure: `warmup` untimed calls, then at least `min_iters` timed calls and
/// at least `min_seconds` of them (whichever comes later), at most `max_iters`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Budget {
    pub warmup: usize,
    pub min_iters: usize,
    pub min_seconds: f64,
    pub max_iters: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget { warmup: 3, min_iters: 10, min_seconds: 1.0, max_iters: 100_000 }
    }
}

/// Calls `f` as `budget` says and returns the seconds of every timed call.
pub fn sample(budget: &Budget, mut f: impl FnMut() -> Result<()>) -> Result<Vec<f64>> {
    for _ in 0..budget.warmup {
        f()?;
    }
    let mut samples = Vec::with_capacity(budget.min_iters.max(16));
    let start = Instant::now();
    while samples.len() < budget.max_iters {
        let t = Instant::now();
        f()?;
        samples.push(t.elapsed().as_secs_f64());
        if samples.len() >= budget.min_iters && start.elapsed().as_secs_f64() >= budget.min_seconds {
            break;
        }
    }
    Ok(samples)
}
