//! Forward latency of a compiled model with its weights and one input batch on the device.

use serde::Serialize;

use super::{sample, Budget, Summary};
use crate::error::Result;
use crate::pjrt::CompiledMemoryStats;
use crate::runtime::CompiledModel;

/// What one latency measurement found.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    /// Execute-and-await of one batch (the output stays on the device).
    pub run: Summary,
    /// Host-to-device copy of the input batch plus execute-and-await.
    pub with_upload: Summary,
    /// Images per second at the median latency.
    pub throughput: f64,
    pub memory: Option<CompiledMemoryStats>,
    pub flops: Option<f64>,
}

/// Measures `m` on a fixed pseudo-random input batch.
pub fn measure(m: &CompiledModel, budget: &Budget) -> Result<Latency> {
    let per: usize = m.arch.input.iter().product();
    let x: Vec<f32> = (0..m.batch * per).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
    let input = m.upload_input(&x)?;
    let run = Summary::of(&sample(budget, || m.run(&input).map(drop))?);
    // The copy is timed on fewer calls: it only adds a column.
    let short = Budget { min_iters: budget.min_iters.min(5), min_seconds: budget.min_seconds / 4.0, ..*budget };
    let with_upload = Summary::of(&sample(&short, || {
        let b = m.upload_input(&x)?;
        m.run(&b).map(drop)
    })?);
    let memory = m.executable().compiled_memory_stats().ok();
    let flops = m
        .executable()
        .cost_analysis()
        .ok()
        .and_then(|c| c.into_iter().find(|(k, _)| k == "flops").map(|(_, v)| v));
    Ok(Latency { throughput: m.batch as f64 / run.p50, run, with_upload, memory, flops })
}
