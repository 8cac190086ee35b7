//! The training loop behind `train` and `finetune`: epochs of shuffled, augmented batches
//! through the compiled step, the learning-rate schedule, evaluation after each epoch, a
//! resumable checkpoint after each epoch and on interruption.
//!
//! Resuming: the checkpoint's metadata records the epoch and the step inside it
//! (`prunebench.train.epoch`, `prunebench.train.batch_in_epoch`, `prunebench.train.step`) and
//! the settings; batch order and augmentation are pure functions of (seed, epoch, batch), so
//! a resumed run sees exactly the batches it would have seen. Momentum buffers are saved
//! beside the checkpoint (`FILE.momentum.safetensors`) and restored too.
//!
//! Divergence stops a run with [`Error::Diverged`] and saves nothing of the diverged state:
//! a non-finite loss at any step; a loss above [`EXPLODE_FACTOR`] times the larger of the
//! run's first loss and `ln(classes)` (the loss of a uniform guess); or a non-finite
//! parameter or BN statistic, read back from the device at the end of every epoch, on
//! interruption and at the end of the run (the checks of the checkpoint loader,
//! [`checkpoint::check`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::optim::{lr_at, LrSchedule, OptConfig};
use super::trainer::Trainer;
use crate::bench::accuracy::{evaluate, Accuracy};
use crate::data::{Augment, Batches, Dataset, LastBatch, Normalize};
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::{checkpoint, Network};
use crate::runtime::{CompiledModel, Session};

/// Everything that decides a training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitConfig {
    pub epochs: usize,
    /// Stop after this many steps in all (e.g. a short fine-tuning budget); `None`: epochs.
    pub max_steps: Option<usize>,
    pub batch: usize,
    pub lr: LrSchedule,
    pub opt: OptConfig,
    pub augment: bool,
    pub shuffle: bool,
    pub seed: u64,
}

impl FitConfig {
    pub fn validate(&self, train_images: usize) -> Result<()> {
        self.opt.validate()?;
        if self.batch == 0 {
            return Err(Error::invalid("batch", 0, "use a batch size of at least 1, e.g. 128"));
        }
        if self.epochs == 0 && self.max_steps.is_none() {
            return Err(Error::invalid("epochs", 0, "train for at least 1 epoch or give --steps"));
        }
        if train_images < self.batch {
            return Err(Error::invalid(
                "batch",
                self.batch,
                format!("the training set has only {train_images} images; use a smaller batch"),
            ));
        }
        if !(self.lr.base > 0.0 && self.lr.base.is_finite()) {
            return Err(Error::invalid("learning rate", self.lr.base, "use a positive rate, e.g. 0.05"));
        }
        Ok(())
    }

    /// Steps per epoch (the last partial batch is dropped) and the total step count:
    /// `max_steps` when given (running as many epochs as that takes), else whole epochs.
    pub fn steps(&self, train_images: usize) -> (usize, usize) {
        let per_epoch = train_images / self.batch;
        (per_epoch, self.max_steps.unwrap_or(per_epoch * self.epochs))
    }
}

/// Where a run stands; written into each checkpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Position {
    pub epoch: usize,
    pub batch_in_epoch: usize,
    pub step: usize,
}

/// Progress callbacks (the CLI draws a bar; the suite shows its own step).
pub trait FitProgress {
    fn start(&mut self, total_steps: usize, done: usize);
    fn step(&mut self, pos: Position, loss: f32, accuracy: f32, images_per_s: f64);
    fn epoch(&mut self, epoch: usize, train_loss: f64, train_acc: f64, test: Option<&Accuracy>);
    fn finish(&mut self);
}

/// Reports nothing.
pub struct Silent;

impl FitProgress for Silent {
    fn start(&mut self, _: usize, _: usize) {}
    fn step(&mut self, _: Position, _: f32, _: f32, _: f64) {}
    fn epoch(&mut self, _: usize, _: f64, _: f64, _: Option<&Accuracy>) {}
    fn finish(&mut self) {}
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct FitReport {
    pub steps: usize,
    pub epochs_completed: usize,
    pub interrupted: bool,
    pub last_train_loss: f64,
    pub last_train_accuracy: f64,
    pub test: Option<Accuracy>,
    pub images_per_s: f64,
    pub seconds: f64,
}

/// Inputs of [`fit`] besides the network.
pub struct FitJob<'a> {
    pub session: &'a Session,
    /// Training images as [0, 1] pixels: each batch is augmented, then normalised with
    /// `normalize` (so crop padding is black, as with torchvision's RandomCrop + Normalize).
    pub train: &'a Dataset,
    /// Evaluated after each epoch and at the end, if given ([0, 1] pixels, normalised here).
    pub test: Option<&'a Dataset>,
    pub normalize: Normalize,
    pub config: FitConfig,
    /// Lowering of each conv in the training and evaluation programs.
    pub plan: Vec<Lowering>,
    /// Checkpoint written after each epoch and on interruption (`None`: nothing written).
    pub out: Option<PathBuf>,
    /// Metadata copied into every checkpoint (e.g. provenance of a pruned network).
    pub meta: BTreeMap<String, String>,
    /// Set (e.g. by Ctrl-C) to stop after the current step with a resumable checkpoint.
    pub stop: &'a AtomicBool,
}

/// A loss above this many times the larger of the run's first loss and `ln(classes)` is a
/// divergence. A healthy run never comes near it (a uniform guess over 10 classes loses 2.3;
/// 100 x that is a network that is confidently wrong on every image).
pub const EXPLODE_FACTOR: f64 = 100.0;

const KEY_EPOCH: &str = "prunebench.train.epoch";
const KEY_BATCH: &str = "prunebench.train.batch_in_epoch";
const KEY_STEP: &str = "prunebench.train.step";
const KEY_CONFIG: &str = "prunebench.train.config";
const KEY_DONE: &str = "prunebench.train.complete";

/// The momentum side file of a checkpoint.
pub fn momentum_path(ck: &Path) -> PathBuf {
    let mut s = ck.as_os_str().to_owned();
    s.push(".momentum.safetensors");
    PathBuf::from(s)
}

/// Reads the position a checkpoint was saved at, if it is a resumable training checkpoint
/// made with `config`. A finished run or another configuration is an error that says so.
pub fn resume_position(meta: &BTreeMap<String, String>, config: &FitConfig) -> Result<Option<Position>> {
    let Some(cfg) = meta.get(KEY_CONFIG) else { return Ok(None) };
    let saved: FitConfig = serde_json::from_str(cfg).map_err(|e| Error::invalid("training metadata", KEY_CONFIG, e.to_string()))?;
    if &saved != config {
        return Err(Error::invalid(
            "--resume",
            "a checkpoint made with other training settings",
            format!("resume with the same settings ({cfg}) or start a new run without --resume"),
        ));
    }
    let num = |k: &str| meta.get(k).and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
    Ok(Some(Position { epoch: num(KEY_EPOCH), batch_in_epoch: num(KEY_BATCH), step: num(KEY_STEP) }))
}

/// The trainer's network, checked against the checkpoint loader's rules (every parameter
/// and BN statistic finite) as it stands at `step`.
fn checked_network(trainer: &Trainer, step: usize) -> Result<Network> {
    let net = trainer.network()?;
    checkpoint::check(&net).map_err(|what| Error::Diverged { step, what })?;
    Ok(net)
}

fn save(job: &FitJob, trainer: &Trainer, net: &Network, pos: Position, complete: bool) -> Result<()> {
    let Some(out) = &job.out else { return Ok(()) };
    let mut meta = job.meta.clone();
    meta.insert(KEY_EPOCH.into(), pos.epoch.to_string());
    meta.insert(KEY_BATCH.into(), pos.batch_in_epoch.to_string());
    meta.insert(KEY_STEP.into(), pos.step.to_string());
    meta.insert(KEY_CONFIG.into(), serde_json::to_string(&job.config).expect("config serialises"));
    meta.insert(KEY_DONE.into(), complete.to_string());
    checkpoint::save(out, net, &meta)?;
    trainer.save_momentum(&momentum_path(out))?;
    Ok(())
}

/// Trains `net` as `job` says, starting at `start` (a resumed position, or the beginning).
/// Returns the trained network and a report.
pub fn fit(net: &Network, job: &FitJob, start: Position, progress: &mut dyn FitProgress) -> Result<(Network, FitReport)> {
    let cfg = &job.config;
    cfg.validate(job.train.n)?;
    let (per_epoch, total) = cfg.steps(job.train.n);
    let mut trainer = Trainer::with_plan(job.session, net, cfg.batch, &cfg.opt, DType::F32, &job.plan)?;
    if start.step > 0 {
        if let Some(out) = &job.out {
            let m = momentum_path(out);
            if m.exists() {
                trainer.load_momentum(&m)?;
            }
        }
    }
    let test_set = match job.test {
        Some(t) => {
            let mut t = t.clone();
            job.normalize.apply_dataset(&mut t)?;
            Some(t)
        }
        None => None,
    };
    progress.start(total, start.step);
    let t0 = Instant::now();
    let mut pos = start;
    let (mut loss_sum, mut correct_sum, mut seen) = (0.0f64, 0.0f64, 0usize);
    let (mut last_loss, mut last_acc) = (f64::NAN, f64::NAN);
    let mut test = None;
    let mut images = 0usize;
    let mut interrupted = false;
    let mut first_loss: Option<f64> = None;
    let uniform_loss = (net.arch.classes as f64).ln();
    let mut checked: Option<(usize, Network)> = None;
    let augment = if cfg.augment { Augment::standard() } else { Augment::none() };
    'epochs: while pos.step < total {
        let mut batches = Batches::new(job.train, cfg.batch, LastBatch::Drop)?;
        if cfg.shuffle {
            batches = batches.shuffled(cfg.seed, pos.epoch as u64);
        }
        let batches = batches.augmented(augment, cfg.seed, pos.epoch as u64).normalized(job.normalize.clone())?;
        for (i, b) in batches.enumerate().skip(pos.batch_in_epoch) {
            if job.stop.load(Ordering::SeqCst) {
                interrupted = true;
                break 'epochs;
            }
            let lr = lr_at(&cfg.lr, pos.step, total);
            let (loss, correct) = trainer.step(&b.images, &b.labels, lr)?;
            if !loss.is_finite() {
                return Err(Error::Diverged { step: pos.step, what: format!("the loss is {loss}") });
            }
            let limit = EXPLODE_FACTOR * first_loss.get_or_insert(loss as f64).max(uniform_loss);
            if loss as f64 > limit {
                return Err(Error::Diverged {
                    step: pos.step,
                    what: format!(
                        "the loss {loss:.4e} exploded past {EXPLODE_FACTOR} x {:.3} (the larger of the first loss and ln(classes))",
                        limit / EXPLODE_FACTOR
                    ),
                });
            }
            pos.step += 1;
            pos.batch_in_epoch = i + 1;
            images += cfg.batch;
            loss_sum += loss as f64 * cfg.batch as f64;
            correct_sum += correct as f64;
            seen += cfg.batch;
            let rate = images as f64 / t0.elapsed().as_secs_f64();
            progress.step(pos, loss, correct / cfg.batch as f32, rate);
            if pos.step >= total {
                break;
            }
        }
        last_loss = loss_sum / seen.max(1) as f64;
        last_acc = correct_sum / seen.max(1) as f64;
        let epoch_done = pos.batch_in_epoch >= per_epoch || pos.step >= total;
        if epoch_done {
            let now = checked_network(&trainer, pos.step)?;
            if let Some(t) = &test_set {
                test = Some(eval_now(&now, job, t)?);
            }
            progress.epoch(pos.epoch, last_loss, last_acc, test.as_ref());
            pos = Position { epoch: pos.epoch + 1, batch_in_epoch: 0, step: pos.step };
            (loss_sum, correct_sum, seen) = (0.0, 0.0, 0);
            save(job, &trainer, &now, pos, pos.step >= total)?;
            checked = Some((pos.step, now));
        }
    }
    let trained = match checked {
        Some((step, net)) if step == pos.step => net,
        _ => checked_network(&trainer, pos.step)?,
    };
    if interrupted {
        save(job, &trainer, &trained, pos, false)?;
    }
    progress.finish();
    let seconds = t0.elapsed().as_secs_f64();
    let report = FitReport {
        steps: pos.step,
        epochs_completed: pos.epoch,
        interrupted,
        last_train_loss: last_loss,
        last_train_accuracy: last_acc,
        test,
        images_per_s: images as f64 / seconds.max(1e-9),
        seconds,
    };
    Ok((trained, report))
}

fn eval_now(net: &Network, job: &FitJob, test: &Dataset) -> Result<Accuracy> {
    let m = CompiledModel::new(job.session, net, eval_batch(test.n), DType::F32, &job.plan)?;
    evaluate(&m, test)
}

/// Batch size used for evaluation.
fn eval_batch(n: usize) -> usize {
    n.clamp(1, 250)
}
