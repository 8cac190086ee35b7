//! `latency`: forward latency of one or more networks across batch sizes, dtypes and conv
//! lowerings: the programs of each (dtype, batch) timed side by side in interleaved rounds
//! until their p50s are within the target interval; a table on stdout (p50 with its 95%
//! interval, speed-up over the first program with its interval, validity) and one CSV row each.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::resolve_plan;
use crate::bench::ci::ratio_of_medians;
use crate::bench::latency::MemoryFigures;
use crate::bench::validity::{verdict, Rules};
use crate::bench::{latency, load, Sampling};
use crate::hlo::DType;
use crate::lower::Mode;
use crate::model::{checkpoint, counts, Arch, Form, Network};
use crate::runtime::CompiledModel;

#[derive(Args, Debug)]
pub struct LatencyArgs {
    /// Checkpoints to measure (repeatable). Without any, random networks of each --model and
    /// --width are measured (latency does not depend on the weights' values).
    #[arg(long)]
    pub checkpoint: Vec<PathBuf>,
    /// Forms of the random networks, comma separated (e.g. resnet18-imagenet,resnet50-imagenet,
    /// mobilenetv2-imagenet; `prunebench init --help` lists them), each at its default input size.
    #[arg(long, value_delimiter = ',', default_value = "vgg16-cifar")]
    pub model: Vec<String>,
    /// Width multipliers of the random networks, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    pub width: Vec<f64>,
    /// Input channels of the random networks.
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Classes of the random networks (default: 1000 for the ImageNet forms, else 10).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub batch: Vec<usize>,
    /// Conv lowerings to compare, comma separated: xla, tuned, im2col, winograd.
    #[arg(long, value_delimiter = ',', default_value = "xla,tuned")]
    pub lowering: Vec<Mode>,
    /// Compute dtypes, comma separated: f32, bf16, f64.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub dtype: Vec<DType>,
    /// Untimed calls of each program before the rounds.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Timed calls of each program per interleaved round.
    #[arg(long, default_value_t = 3)]
    pub calls_per_round: usize,
    /// At least this many timed calls of each program...
    #[arg(long, default_value_t = 10)]
    pub min_iters: usize,
    /// ...and at least this many seconds of rounds per setting.
    #[arg(long, default_value_t = 0.0)]
    pub min_seconds: f64,
    /// Stop once every p50's 95% interval half-width is within this fraction of it (0.02: +-2%)...
    #[arg(long, default_value_t = 0.02)]
    pub target_ci: f64,
    /// ...or after this many seconds of rounds per setting (dtype, batch).
    #[arg(long, default_value_t = 25.0)]
    pub time_cap_s: f64,
    /// Seed of the round order and of the speed-up bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// CSV file to append rows to (created with a header if missing).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

const HEADER: [&str; 30] = [
    "model", "channels", "params", "macs", "dtype", "batch", "lowering", "plan", "compile_s", "p50_ms", "p50_ci_low_ms",
    "p50_ci_high_ms", "mean_ms", "min_ms", "p90_ms", "p99_ms", "max_ms", "std_ms", "samples", "rounds", "images_per_s",
    "p50_with_upload_ms", "argument_bytes", "temp_bytes", "program_min_bytes", "speedup_vs_first", "valid",
    "load_other_cpu", "load_steal", "device",
];

/// The program of one table row.
struct Prog<'a> {
    name: &'a str,
    net: &'a Network,
    mode: Mode,
    plan: Vec<crate::lower::Lowering>,
    model: CompiledModel,
}

pub fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    if a.batch.contains(&0) {
        bail!("invalid --batch 0: batch sizes must be at least 1");
    }
    if a.target_ci.is_nan() || a.target_ci <= 0.0 || a.time_cap_s.is_nan() || a.time_cap_s < 0.0 {
        bail!("invalid --target-ci {} / --time-cap-s {}: use a fraction > 0 and seconds >= 0", a.target_ci, a.time_cap_s);
    }
    let mut models: Vec<(String, Network)> = Vec::new();
    for p in &a.checkpoint {
        models.push((p.display().to_string(), checkpoint::load(p)?.model));
    }
    if models.is_empty() {
        for m in &a.model {
            let form: Form = m.parse()?;
            let classes = a.classes.unwrap_or(if form.to_string().ends_with("-imagenet") { 1000 } else { 10 });
            for &w in &a.width {
                let arch = Arch::new(form, w, a.in_channels, classes)?;
                models.push((format!("{form} w{w}"), Network::init(&arch, 0)));
            }
        }
    }
    let session = a.device.open()?;
    let sampling = Sampling {
        warmup: a.warmup,
        calls_per_round: a.calls_per_round.max(1),
        min_samples: a.min_iters.max(1),
        min_seconds: a.min_seconds,
        target_ci: a.target_ci,
        time_cap_s: a.time_cap_s,
        seed: a.seed,
        ..Sampling::default()
    };
    let rules = Rules {
        min_samples: sampling.min_samples,
        target_ci: a.target_ci,
        busy_other_cpu: load::BUSY_OTHER_CPU,
        busy_steal: load::BUSY_STEAL,
    };
    let mut csv = match &a.out {
        Some(p) => {
            let fresh = !p.exists() || std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
            if !fresh {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                if text.lines().next() != Some(HEADER.join(",").as_str()) {
                    bail!("invalid --out {}: its header is not this version's latency columns; write to a new file", p.display());
                }
            }
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
    println!("every (dtype, batch) setting: its programs timed side by side in interleaved rounds");
    println!(
        "{:<26} {:>5} {:>5} {:>7} {:>10} {:>19} {:>9} {:>22}  valid",
        "model", "dtype", "batch", "lowering", "p50 ms", "95% CI ms", "img/s", "speed-up vs first"
    );
    let stop = AtomicBool::new(false);
    for &dtype in &a.dtype {
        for &batch in &a.batch {
            let mut progs: Vec<Prog> = Vec::new();
            for (name, v) in &models {
                for &mode in &a.lowering {
                    let plan = resolve_plan(&session, &v.arch, batch, dtype, mode)?;
                    let model = CompiledModel::new(&session, v, batch, dtype, &plan)?;
                    progs.push(Prog { name, net: v, mode, plan, model });
                }
            }
            let refs: Vec<&CompiledModel> = progs.iter().map(|p| &p.model).collect();
            let m = latency::measure(&refs, &sampling, &stop)?;
            let first = &m.models[0];
            for (p, r) in progs.iter().zip(&m.models) {
                let speedup = if std::ptr::eq(r, first) {
                    Some((1.0, (1.0, 1.0))) // the same measurement
                } else {
                    ratio_of_medians(&first.samples, &r.samples, a.seed)
                };
                let valid = verdict(&r.samples, m.load.as_ref(), &rules);
                let ci = r.p50_ci.map(|(l, h)| format!("[{:.3}, {:.3}]", l * 1e3, h * 1e3)).unwrap_or_else(|| "-".into());
                let sp = speedup.map(|(s, (l, h))| format!("{s:.3}x [{l:.3}, {h:.3}]")).unwrap_or_else(|| "-".into());
                println!(
                    "{:<26} {:>5} {:>5} {:>7} {:>10.3} {:>19} {:>9.1} {:>22}  {valid}",
                    p.name, dtype.to_string(), batch, p.mode.name(), r.run.p50 * 1e3, ci, r.throughput, sp
                );
                if let Some(w) = csv.as_mut() {
                    let ms = |s: f64| format!("{:.4}", s * 1e3);
                    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map(f).unwrap_or_default();
                    let plan_s: Vec<&str> = p.plan.iter().map(|l| l.name()).collect();
                    let ch: Vec<String> = p.net.arch.channels.iter().map(|c| c.to_string()).collect();
                    let mem = r.memory.unwrap_or_default();
                    let frac = |x: f64| format!("{x:.4}");
                    w.write_record([
                        p.name.to_string(), ch.join(" "), counts::params(&p.net.arch).to_string(),
                        counts::macs(&p.net.arch).to_string(), dtype.to_string(), batch.to_string(),
                        p.mode.name().to_string(), plan_s.join(" "), format!("{:.3}", p.model.compile_seconds),
                        ms(r.run.p50), opt(r.p50_ci.map(|c| c.0), &ms), opt(r.p50_ci.map(|c| c.1), &ms), ms(r.run.mean),
                        ms(r.run.min), ms(r.run.p90), ms(r.run.p99), ms(r.run.max), ms(r.run.std), r.run.samples.to_string(),
                        m.rounds.to_string(), format!("{:.2}", r.throughput), ms(r.with_upload.p50),
                        mem.argument_bytes.to_string(), mem.temp_bytes.to_string(),
                        MemoryFigures::of(&mem).program_min.to_string(), opt(speedup.map(|s| s.0), &frac), valid,
                        opt(m.load.map(|l| l.other_cpu), &frac), opt(m.load.map(|l| l.steal), &frac), session.describe(),
                    ])?;
                    w.flush()?;
                }
            }
        }
    }
    Ok(())
}
