//! `latency`: forward latency of one or more networks across batch sizes, dtypes, runtimes and
//! conv lowerings: the programs of each (dtype, batch) timed side by side in interleaved rounds
//! until their p50s are within the target interval; a table on stdout (p50 with its 95%
//! interval, speed-up over the first program and over the first network on the same runtime,
//! with intervals, validity) and one CSV row each. With several networks and runtimes, a last
//! table puts each network's speed-up on every runtime side by side and flags the runtimes
//! whose speed-ups disagree beyond noise (95% intervals that do not overlap).

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::resolve_plan;
use crate::bench::ci::ratio_of_medians;
use crate::bench::latency::{MemoryFigures, Timed, XlaTimed};
use crate::bench::validity::{verdict, Rules};
use crate::bench::{latency, load, Sampling};
use crate::hlo::DType;
use crate::budget;
use crate::engine::{self, Runtime};
use crate::lower::Mode;
use crate::util::dedup;
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
    /// Conv lowerings to compare on the XLA runtime, comma separated: xla, tuned, im2col, winograd.
    #[arg(long, value_delimiter = ',', default_value = "xla,tuned")]
    pub lowering: Vec<Mode>,
    /// Runtimes, comma separated: xla (prunebench's programs through PJRT, one row per
    /// --lowering), onnxruntime, openvino (the network exported to ONNX, BN folded, on the CPU;
    /// f32 only; installed by `bash scripts/setup.sh`). Thread settings: see `src/engine/mod.rs`.
    #[arg(long, value_delimiter = ',', default_value = "xla", value_parser = parse_runtime)]
    pub runtime: Vec<Runtime>,
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

fn parse_runtime(s: &str) -> Result<Runtime, String> {
    s.parse::<Runtime>().map_err(|e| e.to_string())
}

const HEADER: [&str; 41] = [
    "model", "channels", "params", "macs", "dtype", "batch", "runtime", "runtime_version", "lowering", "plan", "compile_s",
    "p50_ms", "p50_ci_low_ms", "p50_ci_high_ms", "mean_ms", "min_ms", "p90_ms", "p99_ms", "max_ms", "std_ms", "samples",
    "rounds", "images_per_s", "p50_with_upload_ms", "argument_bytes", "temp_bytes", "program_min_bytes",
    "speedup_vs_first", "speedup_vs_first_model", "speedup_vs_first_model_ci_low", "speedup_vs_first_model_ci_high",
    "valid", "load_other_cpu", "load_steal", "device", "threads", "predicted_ms", "prediction_error",
    "target_fraction", "predicted_fraction", "target_error",
];

/// How one table row's program runs.
enum Engine {
    /// prunebench's program through PJRT, lowered as `mode` (`plan` per conv); index into the
    /// compiled models.
    Xla { mode: Mode, plan: Vec<crate::lower::Lowering>, at: usize },
    /// The ONNX export on another runtime; index into the loaded models.
    Other { runtime: Runtime, version: String, at: usize },
}

/// The program of one table row.
struct Prog<'a> {
    /// Index of the network in the list measured.
    model: usize,
    name: &'a str,
    net: &'a Network,
    engine: Engine,
    compile_s: f64,
}

impl Prog<'_> {
    /// `xla` / `onnxruntime` ...
    fn runtime(&self) -> Runtime {
        match &self.engine {
            Engine::Xla { .. } => Runtime::Xla,
            Engine::Other { runtime, .. } => *runtime,
        }
    }

    /// The lowering mode on XLA, `-` elsewhere.
    fn lowering(&self) -> &'static str {
        match &self.engine {
            Engine::Xla { mode, .. } => mode.name(),
            Engine::Other { .. } => "-",
        }
    }

    /// Rows with the same key are the same runtime and lowering (the speed-up of a network
    /// over the first network is taken within a key).
    fn key(&self) -> (Runtime, &'static str) {
        (self.runtime(), self.lowering())
    }
}

pub fn latency(a: &LatencyArgs) -> anyhow::Result<()> {
    if a.batch.contains(&0) {
        bail!("invalid --batch 0: batch sizes must be at least 1");
    }
    if a.target_ci.is_nan() || a.target_ci <= 0.0 || a.time_cap_s.is_nan() || a.time_cap_s < 0.0 {
        bail!("invalid --target-ci {} / --time-cap-s {}: use a fraction > 0 and seconds >= 0", a.target_ci, a.time_cap_s);
    }
    // Each runtime and lowering once (`ort` and `onnxruntime` are the same), in the order given.
    let runtimes = dedup(a.runtime.clone());
    let lowerings = dedup(a.lowering.clone());
    let others: Vec<Runtime> = runtimes.iter().copied().filter(|r| *r != Runtime::Xla).collect();
    if !others.is_empty() && a.dtype.iter().any(|d| *d != DType::F32) {
        bail!(
            "invalid --dtype {}: --runtime {} measures the f32 ONNX export only; use --dtype f32, or --runtime xla alone",
            a.dtype.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
            others.iter().map(|r| r.name()).collect::<Vec<_>>().join(",")
        );
    }
    let mut models: Vec<(String, Network)> = Vec::new();
    // Per checkpoint pruned by `--schedule latency`: what it was predicted to take.
    let mut predictions: Vec<Option<Prediction>> = Vec::new();
    for p in &a.checkpoint {
        let ck = checkpoint::load(p)?;
        let num = |k: &str| ck.meta.get(&format!("prunebench.latency.{k}")).and_then(|v| v.parse::<f64>().ok());
        let setting = ck.meta.get("prunebench.latency.setting").cloned().unwrap_or_default();
        predictions.push(num("predicted_ms").map(|ms| Prediction {
            ms,
            setting,
            fraction: num("predicted_fraction"),
            target: num("target_fraction"),
        }));
        models.push((p.display().to_string(), ck.model));
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
    let session = if runtimes.contains(&Runtime::Xla) { Some(a.device.open()?) } else { None };
    // Load the other runtimes' libraries now, so a missing one fails before any table.
    for &rt in &others {
        engine::ensure(rt).with_context(|| format!("--runtime {rt}"))?;
    }
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
    if let Some(s) = &session {
        println!("device: {}  plugin: {} (PJRT {})", s.describe(), s.found.path.display(), plugin_version(s));
    }
    if !others.is_empty() {
        println!("onnxruntime / openvino: the ONNX export (BN folded) on the CPU, {} threads", engine::threads());
    }
    println!("every (dtype, batch) setting: its programs timed side by side in interleaved rounds");
    println!(
        "{:<26} {:>5} {:>5} {:>11} {:>8} {:>10} {:>19} {:>9} {:>22} {:>22}  valid",
        "model", "dtype", "batch", "runtime", "lowering", "p50 ms", "95% CI ms", "img/s", "speed-up vs first", "vs first model"
    );
    let stop = AtomicBool::new(false);
    // Per (dtype, batch): each model's speed-up over the first model, per (runtime, lowering).
    let mut side_by_side: Vec<(String, Vec<Speedups>)> = Vec::new();
    for &dtype in &a.dtype {
        for &batch in &a.batch {
            let mut progs: Vec<Prog> = Vec::new();
            let mut compiled: Vec<CompiledModel> = Vec::new();
            let mut loaded: Vec<Box<dyn engine::Loaded>> = Vec::new();
            for (mi, (name, v)) in models.iter().enumerate() {
                for &rt in &runtimes {
                    if rt == Runtime::Xla {
                        let session = session.as_ref().expect("opened for xla");
                        for &mode in &lowerings {
                            let plan = resolve_plan(session, &v.arch, batch, dtype, mode)?;
                            let model = CompiledModel::new(session, v, batch, dtype, &plan)?;
                            let compile_s = model.compile_seconds;
                            progs.push(Prog { model: mi, name, net: v, engine: Engine::Xla { mode, plan, at: compiled.len() }, compile_s });
                            compiled.push(model);
                        }
                    } else {
                        let m = engine::load(rt, v, batch).with_context(|| format!("loading {name} into {rt}"))?;
                        let (version, compile_s) = (m.version(), m.load_seconds());
                        progs.push(Prog { model: mi, name, net: v, engine: Engine::Other { runtime: rt, version, at: loaded.len() }, compile_s });
                        loaded.push(m);
                    }
                }
            }
            let m = {
                let mut xla: Vec<XlaTimed<&CompiledModel>> = compiled.iter().map(XlaTimed::new).collect();
                let mut xla_slots: Vec<Option<&mut XlaTimed<&CompiledModel>>> = xla.iter_mut().map(Some).collect();
                let mut other_slots: Vec<Option<&mut Box<dyn engine::Loaded>>> = loaded.iter_mut().map(Some).collect();
                let mut timed: Vec<&mut dyn Timed> = Vec::new();
                for p in &progs {
                    match &p.engine {
                        Engine::Xla { at, .. } => timed.push(xla_slots[*at].take().expect("each model once")),
                        Engine::Other { at, .. } => timed.push(other_slots[*at].take().expect("each model once").timed()),
                    }
                }
                latency::measure_timed(&mut timed, &sampling, &stop)?
            };
            if m.models.is_empty() {
                bail!("interrupted: no rows written for dtype {dtype}, batch {batch}");
            }
            let first = &m.models[0];
            let mut speedups: Vec<Speedups> = Vec::new();
            for (i, (p, r)) in progs.iter().zip(&m.models).enumerate() {
                let speedup = if i == 0 {
                    Some((1.0, (1.0, 1.0))) // the same measurement
                } else {
                    ratio_of_medians(&first.samples, &r.samples, a.seed)
                };
                // The first network on the same runtime and lowering.
                let base = progs.iter().position(|q| q.key() == p.key()).expect("p itself");
                let vs_model = if base == i {
                    Some((1.0, (1.0, 1.0)))
                } else {
                    ratio_of_medians(&m.models[base].samples, &r.samples, a.seed)
                };
                let key = p.key();
                match speedups.iter_mut().find(|s| s.key == key) {
                    Some(s) => s.values.push((p.name.to_string(), vs_model)),
                    None => speedups.push(Speedups { key, values: vec![(p.name.to_string(), vs_model)] }),
                }
                let valid = verdict(&r.samples, m.load.as_ref(), &rules);
                let ci = r.p50_ci.map(|(l, h)| format!("[{:.3}, {:.3}]", l * 1e3, h * 1e3)).unwrap_or_else(|| "-".into());
                let sp = |s: Option<(f64, (f64, f64))>| s.map(|(s, (l, h))| format!("{s:.3}x [{l:.3}, {h:.3}]")).unwrap_or_else(|| "-".into());
                // The prediction of a latency-scheduled checkpoint, where the row is the
                // setting its table was measured for.
                let pred = predictions.get(p.model).cloned().flatten().filter(|q| {
                    p.runtime() == Runtime::Xla
                        && q.setting.starts_with(&format!("{} ", budget::setting_key(batch, p.lowering(), &dtype.to_string())))
                });
                let pred_ms = pred.as_ref().map(|q| format!("{:.4}", q.ms)).unwrap_or_default();
                // Fractions of the first network on the same runtime and lowering (the unpruned
                // network, when it is given first): measured in this run against predicted.
                let measured_fraction = vs_model.map(|s| 1.0 / s.0);
                let f = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_default();
                let (target_f, pred_f) = (pred.as_ref().and_then(|q| q.target), pred.as_ref().and_then(|q| q.fraction));
                let frac_err = match (measured_fraction, pred_f) {
                    (Some(m), Some(pf)) if base != i => Some(m / pf - 1.0),
                    _ => None,
                };
                // Measured against the target: what the latency schedule promises.
                let target_err = match (measured_fraction, target_f) {
                    (Some(m), Some(t)) if base != i => Some(m / t - 1.0),
                    _ => None,
                };
                // `prediction_error` is fraction-based, as in the suites: milliseconds move with
                // the machine between runs, the fraction of the unpruned network in the same
                // rounds does not.
                let pred_err = f(frac_err);
                let fractions = [f(target_f), f(pred_f), f(target_err)];
                println!(
                    "{:<26} {:>5} {:>5} {:>11} {:>8} {:>10.3} {:>19} {:>9.1} {:>22} {:>22}  {valid}{}",
                    p.name, dtype.to_string(), batch, p.runtime().name(), p.lowering(), r.run.p50 * 1e3, ci, r.throughput,
                    sp(speedup), sp(vs_model),
                    match (frac_err, pred_f) {
                        (Some(e), Some(pf)) => format!(
                            "  predicted {:.3} of the first, measured {:.3} ({:+.1}%){}",
                            pf,
                            pf * (1.0 + e),
                            e * 100.0,
                            match (target_f, target_err) {
                                (Some(t), Some(te)) => format!("; target {t:.3} ({:+.1}%)", te * 100.0),
                                _ => String::new(),
                            }
                        ),
                        _ if !pred_ms.is_empty() => format!("  predicted {pred_ms} ms (give the unpruned network first to compare)"),
                        _ => String::new(),
                    }
                );
                if let Some(w) = csv.as_mut() {
                    let ms = |s: f64| format!("{:.4}", s * 1e3);
                    let opt = |x: Option<f64>, f: &dyn Fn(f64) -> String| x.map(f).unwrap_or_default();
                    let (plan_s, version, device) = match &p.engine {
                        Engine::Xla { plan, .. } => {
                            let s = session.as_ref().expect("opened for xla");
                            (plan.iter().map(|l| l.name()).collect::<Vec<_>>().join(" "), String::new(), s.describe())
                        }
                        Engine::Other { version, .. } => (String::new(), version.clone(), "cpu".to_string()),
                    };
                    let ch: Vec<String> = p.net.arch.channels.iter().map(|c| c.to_string()).collect();
                    let mem = r.memory.unwrap_or_default();
                    let has_mem = r.memory.is_some();
                    let frac = |x: f64| format!("{x:.4}");
                    let bytes = |b: i64| if has_mem { b.to_string() } else { String::new() };
                    w.write_record([
                        p.name.to_string(), ch.join(" "), counts::params(&p.net.arch).to_string(),
                        counts::macs(&p.net.arch).to_string(), dtype.to_string(), batch.to_string(),
                        p.runtime().name().to_string(), version, p.lowering().to_string(), plan_s, format!("{:.3}", p.compile_s),
                        ms(r.run.p50), opt(r.p50_ci.map(|c| c.0), &ms), opt(r.p50_ci.map(|c| c.1), &ms), ms(r.run.mean),
                        ms(r.run.min), ms(r.run.p90), ms(r.run.p99), ms(r.run.max), ms(r.run.std), r.run.samples.to_string(),
                        m.rounds.to_string(), format!("{:.2}", r.throughput), ms(r.with_upload.p50),
                        bytes(mem.argument_bytes), bytes(mem.temp_bytes),
                        if has_mem { MemoryFigures::of(&mem).program_min.to_string() } else { String::new() },
                        opt(speedup.map(|s| s.0), &frac), opt(vs_model.map(|s| s.0), &frac),
                        opt(vs_model.map(|s| s.1 .0), &frac), opt(vs_model.map(|s| s.1 .1), &frac), valid,
                        opt(m.load.map(|l| l.other_cpu), &frac), opt(m.load.map(|l| l.steal), &frac), device,
                        engine::threads().to_string(), pred_ms, pred_err, fractions[0].clone(), fractions[1].clone(),
                        fractions[2].clone(),
                    ])?;
                    w.flush()?;
                }
            }
            side_by_side.push((format!("{dtype}, batch {batch}"), speedups));
        }
    }
    if models.len() > 1 && side_by_side.iter().any(|(_, s)| s.len() > 1) {
        println!();
        println!("speed-up of each network over the first ({}), per runtime, 95% intervals:", models[0].0);
        for (setting, speedups) in &side_by_side {
            print!("{setting:<18} {:<26}", "model");
            for s in speedups {
                print!(" {:>26}", label(&s.key));
            }
            println!("  runtimes");
            for (j, (name, _)) in speedups[0].values.iter().enumerate().skip(1) {
                print!("{:<18} {:<26}", "", name);
                let cells: Vec<Option<(f64, (f64, f64))>> = speedups.iter().map(|s| s.values.get(j).and_then(|v| v.1)).collect();
                for c in &cells {
                    let t = c.map(|(s, (l, h))| format!("{s:.2}x [{l:.2}, {h:.2}]")).unwrap_or_else(|| "-".into());
                    print!(" {t:>26}");
                }
                println!("  {}", disagreement(&speedups.iter().map(|s| s.key).collect::<Vec<_>>(), &cells));
            }
        }
    }
    Ok(())
}

/// What a `--schedule latency` checkpoint records of its prediction.
#[derive(Clone)]
struct Prediction {
    ms: f64,
    /// The table's setting (`b1 tuned f32 on cpu (cpu)`).
    setting: String,
    /// Predicted and target latency as fractions of the unpruned network's predicted latency.
    fraction: Option<f64>,
    target: Option<f64>,
}

/// One (runtime, lowering)'s speed-ups of every network over the first, in model order.
struct Speedups {
    key: (Runtime, &'static str),
    values: Vec<(String, Option<(f64, (f64, f64))>)>,
}

/// Which columns' speed-up intervals do not overlap: `agree` when every pair overlaps, else
/// each disjoint pair as `a > b`.
fn disagreement(keys: &[(Runtime, &'static str)], cells: &[Option<(f64, (f64, f64))>]) -> String {
    let mut out = Vec::new();
    for i in 0..cells.len() {
        for j in 0..cells.len() {
            if let (Some((_, (_, hi_i))), Some((_, (lo_j, _)))) = (cells[i], cells[j]) {
                if i != j && lo_j > hi_i {
                    out.push(format!("{} > {}", label(&keys[j]), label(&keys[i])));
                }
            }
        }
    }
    if out.is_empty() {
        "agree within noise".into()
    } else {
        format!("differ beyond noise: {}", out.join(", "))
    }
}

/// A (runtime, lowering) as the suites label it: the lowering on XLA (`xla`, `tuned`, ...), the
/// runtime's name elsewhere.
fn label(k: &(Runtime, &'static str)) -> &'static str {
    if k.0 == Runtime::Xla { k.1 } else { k.0.name() }
}

/// `major.minor` of the session's PJRT plugin API.
fn plugin_version(s: &crate::runtime::Session) -> String {
    let (major, minor) = s.client.plugin().api_version();
    format!("{major}.{minor}")
}
