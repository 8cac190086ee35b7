//! `train` (from scratch) and `finetune` (from a checkpoint, e.g. a pruned one).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use super::device::DeviceArgs;
use super::model_cmds::{build_arch, resolve_plan, LoweringArgs, ModelArgs};
use crate::bench::accuracy::Accuracy;
use crate::data::{Source, Split};
use crate::error::Error;
use crate::hlo::DType;
use crate::model::{checkpoint, Network};
use crate::train::fit::{fit, resume_position, FitConfig, FitJob, FitProgress, Position};
use crate::train::{Decay, LrSchedule, OptConfig};

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScheduleKind {
    /// Cosine decay to 0 over the run (after the warm-up).
    Cosine,
    /// Multiply by --step-gamma every --step-every steps.
    Step,
    /// The same rate throughout.
    Constant,
}

/// Settings shared by `train` and `finetune`.
#[derive(Args, Debug)]
pub struct FitArgs {
    /// Dataset: fashion-mnist (default), cifar10:DIR, cifar100:DIR, folder:DIR.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: Source,
    /// Train on the first N training images only (default: all; a folder: dataset takes N
    /// chosen with a fixed seed, across its classes).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Evaluate on the first N test images after each epoch (0: skip; default: all; a folder:
    /// dataset takes N chosen with a fixed seed).
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Epochs to train.
    #[arg(long, default_value_t = 1)]
    pub epochs: usize,
    /// Stop after this many steps in all (overrides --epochs; e.g. a short fine-tune).
    #[arg(long)]
    pub steps: Option<usize>,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Peak learning rate.
    #[arg(long, default_value_t = 0.05)]
    pub lr: f64,
    /// Learning-rate schedule after the warm-up.
    #[arg(long, value_enum, default_value = "cosine")]
    pub schedule: ScheduleKind,
    /// Linear warm-up steps.
    #[arg(long, default_value_t = 0)]
    pub warmup: usize,
    /// --schedule step: decay every N steps.
    #[arg(long, default_value_t = 1000)]
    pub step_every: usize,
    /// --schedule step: multiply the rate by this factor.
    #[arg(long, default_value_t = 0.1)]
    pub step_gamma: f64,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    /// Use Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// L2 weight decay on conv kernels and dense weights.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f64,
    /// Switch off random crop (pad 4) and horizontal flip.
    #[arg(long)]
    pub no_augment: bool,
    /// Keep the dataset order (no per-epoch shuffle).
    #[arg(long)]
    pub no_shuffle: bool,
    /// Seed of shuffling and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute dtype of the training step (f32; f64 for checks).
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// Checkpoint written after every epoch and on Ctrl-C.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue the run saved in --out (same settings) instead of starting over.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub lowering: LoweringArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of the initial weights.
    #[arg(long, default_value_t = 0)]
    pub init_seed: u64,
    #[command(flatten)]
    pub fit: FitArgs,
}

#[derive(Args, Debug)]
pub struct FinetuneArgs {
    /// Checkpoint to start from (e.g. the output of `prunebench prune`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub fit: FitArgs,
}

impl FitArgs {
    fn config(&self) -> FitConfig {
        let decay = match self.schedule {
            ScheduleKind::Cosine => Decay::Cosine { final_lr: 0.0 },
            ScheduleKind::Step => Decay::Step { every: self.step_every, gamma: self.step_gamma },
            ScheduleKind::Constant => Decay::Constant,
        };
        FitConfig {
            epochs: self.epochs,
            max_steps: self.steps,
            batch: self.batch,
            lr: LrSchedule { base: self.lr, warmup_steps: self.warmup, decay },
            opt: OptConfig {
                momentum: self.momentum,
                weight_decay: self.weight_decay,
                nesterov: self.nesterov,
                ..OptConfig::default()
            },
            augment: !self.no_augment,
            shuffle: !self.no_shuffle,
            seed: self.seed,
        }
    }
}

/// A progress bar with loss, accuracy, images/s and ETA; one line per epoch. When stderr
/// is not a terminal (a log file), a plain line every 5% of the run instead.
struct Bar {
    pb: Option<ProgressBar>,
    total: usize,
    tty: bool,
}

impl Bar {
    fn new() -> Self {
        use std::io::IsTerminal;
        Bar { pb: None, total: 0, tty: std::io::stderr().is_terminal() }
    }
}

impl FitProgress for Bar {
    fn start(&mut self, total: usize, done: usize) {
        self.total = total;
        if !self.tty {
            return;
        }
        let pb = ProgressBar::new(total as u64);
        pb.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  eta {eta}")
                .expect("valid template"),
        );
        pb.set_position(done as u64);
        self.pb = Some(pb);
    }
    fn step(&mut self, pos: Position, loss: f32, acc: f32, rate: f64) {
        let msg = format!("epoch {} loss {loss:.4} acc {:.1}% {rate:.0} img/s", pos.epoch + 1, 100.0 * acc);
        match &self.pb {
            Some(pb) => {
                pb.set_position(pos.step as u64);
                pb.set_message(msg);
            }
            None => {
                let every = (self.total / 20).max(1);
                if pos.step % every == 0 {
                    eprintln!("step {}/{}: {msg}", pos.step, self.total);
                }
            }
        }
    }
    fn epoch(&mut self, epoch: usize, loss: f64, acc: f64, test: Option<&Accuracy>) {
        let t = test.map(|t| format!("  test top-1 {:.2}% top-5 {:.2}% loss {:.4}", 100.0 * t.top1, 100.0 * t.top5, t.loss));
        let line = format!("epoch {}: train loss {loss:.4} acc {:.2}%{}", epoch + 1, 100.0 * acc, t.unwrap_or_default());
        match &self.pb {
            Some(pb) => pb.println(line),
            None => eprintln!("{line}"),
        }
    }
    fn finish(&mut self) {
        if let Some(pb) = self.pb.take() {
            pb.finish_and_clear();
        }
    }
}

fn run_fit(start_model: Network, a: &FitArgs, mut meta: std::collections::BTreeMap<String, String>) -> anyhow::Result<()> {
    if a.dtype != DType::F32 && a.dtype != DType::F64 {
        bail!("invalid --dtype {}: training runs in f32 (or f64 for checks)", a.dtype);
    }
    let arch = start_model.arch.clone();
    let train = a.dataset.load_limited(Split::Train, arch.input, a.limit)?;
    let test = match a.eval_limit {
        Some(0) => None,
        lim => Some(a.dataset.load_limited(Split::Test, arch.input, lim)?),
    };
    let config = a.config();
    let (mut model, mut start) = (start_model, Position::default());
    if a.resume {
        let ck = checkpoint::load(&a.out).with_context(|| format!("--resume needs the run's checkpoint {}", a.out.display()))?;
        match resume_position(&ck.meta, &config)? {
            Some(p) => {
                eprintln!("resuming {} at epoch {}, step {}", a.out.display(), p.epoch + 1, p.step);
                model = ck.model;
                start = p;
                meta = ck.meta;
            }
            None => bail!("{} is not a training checkpoint; start without --resume", a.out.display()),
        }
    }
    let session = a.device.open()?;
    let plan = resolve_plan(&session, &arch, a.batch, a.dtype, a.lowering.lowering)?;
    let stop = super::interrupt::stop_flag("interrupted: finishing the current step, then saving a resumable checkpoint");
    let job = FitJob {
        session: &session,
        train: &train,
        test: test.as_ref(),
        normalize: a.dataset.normalize(),
        config,
        plan,
        out: Some(a.out.clone()),
        meta,
        stop,
    };
    eprintln!(
        "training {} on {} ({} images{}) on {}",
        arch.describe(),
        a.dataset,
        train.n,
        test.as_ref().map(|t| format!(", evaluating on {}", t.n)).unwrap_or_default(),
        session.describe()
    );
    let (_, r) = fit(&model, &job, start, &mut Bar::new())?;
    let t = r.test.map(|t| format!(", test top-1 {:.2}%", 100.0 * t.top1)).unwrap_or_default();
    println!(
        "{} after {} steps ({} epochs, {:.0} s, {:.1} img/s){t}: {}",
        if r.interrupted { "stopped" } else { "done" },
        r.steps,
        r.epochs_completed,
        r.seconds,
        r.images_per_s,
        a.out.display()
    );
    if r.interrupted {
        return Err(Error::Interrupted {
            what: format!(
                "at step {}: the resumable checkpoint {} holds the network so far; continue with the same command plus --resume",
                r.steps,
                a.out.display()
            ),
        }
        .into());
    }
    Ok(())
}

pub fn train(a: &TrainArgs) -> anyhow::Result<()> {
    let arch = build_arch(&a.model)?;
    let mut meta = std::collections::BTreeMap::new();
    meta.insert("prunebench.origin".to_string(), format!("train init-seed={}", a.init_seed));
    run_fit(Network::init(&arch, a.init_seed), &a.fit, meta)
}

pub fn finetune(a: &FinetuneArgs) -> anyhow::Result<()> {
    if a.checkpoint == a.fit.out && !a.fit.resume {
        bail!("--out is the input checkpoint {}; write the fine-tuned network to another file", a.fit.out.display());
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    let mut meta = ck.meta.clone();
    meta.insert("prunebench.finetune.source_sha256".to_string(), ck.sha256.clone());
    run_fit(ck.model, &a.fit, meta)
}
