//! `latency`: forward latency of one or more networks across batch sizes, dtypes and conv
//! lowerings, measured side by side in one run; a table on stdout and one CSV row each.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::resolve_plan;
use crate::bench::{latency, Budget};
use crate::hlo::DType;
use crate::lower::Mode;
use crate::model::{checkpoint, counts, Arch, Vgg};
use crate::runtime::CompiledModel;

#[derive(Args, Debug)]
pub struct LatencyArgs {
    /// Checkpoints to measure (repeatable). Without any, random VGG-16 CIFAR-form networks
    /// of each --width are measured (latency does not depend on the weights' values).
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// Width multipliers of the random networks, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    pub width: Vec<f64>,
    /// Input channels of the random networks.
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub batch: Vec<usize>,
    /// Conv lowerings to compare, comma separated: xla, tuned, im2col, winograd.
    #[arg(long, value_delimiter = ',', default_value = "xla,tuned")]
    pub lowering: Vec<Mode>,
    /// Compute dtypes, comma separated: f32, bf16, f64.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub dtype: Vec<DType>,
    /// Untimed calls before measuring.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// At least this many timed calls...
    #[arg(long, default_value_t = 10)]
    pub min_iters: usize,
    /// ...and at least this many seconds of them.
    #[arg(long, default_value_t = 2.0)]
    pub min_seconds: f64,
    /// CSV file to append rows to (created with a header if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

const HEADER: [&str; 22] = [
    "model", "channels", "params", "macs", "dtype", "batch", "lowering", "plan", "compile_s", "p50_ms", "mean_ms",
    "min_ms", "p90_ms", "p99_ms", "max_ms", "std_ms", "samples", "images_per_s", "p50_with_upload_ms",
    "argument_bytes", "temp_bytes", "device",
];

pub fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    if a.batch.contains(&0) {
        bail!("invalid --batch 0: batch sizes must be at least 1");
    }
    let mut models: Vec<(String, Vgg)> = Vec::new();
    for p in &a.checkpoint {
        models.push((p.display().to_string(), checkpoint::load(p)?.model));
    }
    if models.is_empty() {
        for &w in &a.width {
            let arch = Arch::cifar(w, a.in_channels, 10, vec![])?;
            models.push((format!("vgg16-cifar w{w}"), Vgg::init(&arch, 0)));
        }
    }
    let session = a.device.open()?;
    let budget = Budget { warmup: a.warmup, min_iters: a.min_iters.max(1), min_seconds: a.min_seconds, ..Budget::default() };
    let mut csv = match &a.out {
        Some(p) => {
            let fresh = !p.exists() || std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
            let f = std::fs::OpenOptions::new().create(true).append(true).open(p).with_context(|| format!("opening {}", p.display()))?;
            let mut w = csv::Writer::from_writer(f);
            if fresh {
                w.write_record(HEADER)?;
            }
            Some(w)
        }
        None => None,
    };
    println!("device: {}  plugin: {}", session.describe(), session.found.path.display());
    println!("{:<22} {:>5} {:>5} {:>7} {:>10} {:>10} {:>9} {:>10}", "model", "dtype", "batch", "lowering", "p50 ms", "min ms", "img/s", "vs first");
    for (name, v) in &models {
        for &dtype in &a.dtype {
            for &batch in &a.batch {
                let mut first: Option<f64> = None;
                for &mode in &a.lowering {
                    let plan = resolve_plan(&session, &v.arch, batch, dtype, mode)?;
                    let m = CompiledModel::new(&session, v, batch, dtype, &plan)?;
                    let r = latency::measure(&m, &budget)?;
                    let ratio = first.map(|f| r.run.p50 / f).unwrap_or(1.0);
                    first.get_or_insert(r.run.p50);
                    println!(
                        "{:<22} {:>5} {:>5} {:>7} {:>10.3} {:>10.3} {:>9.1} {:>9.3}x",
                        name, dtype.to_string(), batch, mode.name(), r.run.p50 * 1e3, r.run.min * 1e3, r.throughput, ratio
                    );
                    if let Some(w) = csv.as_mut() {
                        let ms = |s: f64| format!("{:.4}", s * 1e3);
                        let plan_s: Vec<&str> = plan.iter().map(|l| l.name()).collect();
                        let ch: Vec<String> = v.arch.channels.iter().map(|c| c.to_string()).collect();
                        let mem = r.memory.unwrap_or_default();
                        w.write_record([
                            name.clone(), ch.join(" "), counts::params(&v.arch).to_string(), counts::macs(&v.arch).to_string(),
                            dtype.to_string(), batch.to_string(), mode.name().to_string(), plan_s.join(" "),
                            format!("{:.3}", m.compile_seconds), ms(r.run.p50), ms(r.run.mean), ms(r.run.min), ms(r.run.p90),
                            ms(r.run.p99), ms(r.run.max), ms(r.run.std), r.run.samples.to_string(), format!("{:.2}", r.throughput),
                            ms(r.with_upload.p50), mem.argument_bytes.to_string(), mem.temp_bytes.to_string(), session.describe(),
                        ])?;
                        w.flush()?;
                    }
                }
            }
        }
    }
    Ok(())
}
