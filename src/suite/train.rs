//! The training stages of a suite, behind one function: training the network from scratch
//! (`train:`) and fine-tuning a pruned one (`finetune:`), both with [`crate::train::Trainer`]
//! (f32 SGD with momentum, state on the device).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::config::TrainSettings;
use crate::bench::accuracy::Accuracy;
use crate::data::{Dataset, Normalize};
use crate::error::{Error, Result};
use crate::model::Network;
use crate::runtime::Session;
use crate::train::fit::{fit, FitConfig, FitJob, FitProgress, Position};
use crate::train::default_plan;

/// A trained network and what training did.
#[derive(Clone, Debug)]
pub struct Trained {
    pub model: Network,
    pub steps: usize,
    pub seconds: f64,
    /// Mean loss of the last (up to) 20 steps.
    pub final_loss: f32,
}

/// Feeds the fit loop's steps to the suite's `tick` and keeps the last 20 losses.
struct Ticks<'a> {
    tick: &'a mut dyn FnMut(usize, usize, f32),
    total: usize,
    recent: Vec<f32>,
}

impl FitProgress for Ticks<'_> {
    fn start(&mut self, total: usize, _: usize) {
        self.total = total;
    }
    fn step(&mut self, pos: Position, loss: f32, _: f32, _: f64) {
        self.recent.push(loss);
        if self.recent.len() > 20 {
            self.recent.remove(0);
        }
        (self.tick)(pos.step, self.total, loss);
    }
    fn epoch(&mut self, _: usize, _: f64, _: f64, _: Option<&Accuracy>) {}
    fn finish(&mut self) {}
}

/// Trains `v` on `data` (pixels in [0, 1], normalised per batch with `norm`) as `s` says,
/// with [`crate::train::fit::fit`] and the default training lowering.
/// `tick(step, total, loss)` is called after every step; a set `stop` ends training after
/// the current step with [`Error::Interrupted`]; a diverged run is [`Error::Diverged`].
pub fn train(
    session: &Session,
    v: &Network,
    data: &Dataset,
    norm: &Normalize,
    s: &TrainSettings,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(usize, usize, f32),
) -> Result<Trained> {
    if data.n < s.batch {
        return Err(Error::invalid(
            "training set",
            format!("{} images", data.n),
            format!("a training batch needs {}; raise dataset.train_limit or lower the batch", s.batch),
        ));
    }
    let total = s.total_steps(data.n);
    if stop.load(Ordering::Relaxed) {
        // Interrupted before it began: do not compile the step program first.
        return Err(Error::Interrupted { what: format!("at step 0/{total}") });
    }
    let start = Instant::now();
    let job = FitJob {
        session,
        train: data,
        test: None,
        normalize: norm.clone(),
        config: FitConfig {
            epochs: 1,
            max_steps: Some(total),
            batch: s.batch,
            lr: s.lr.clone(),
            opt: s.opt.clone(),
            augment: s.augment,
            shuffle: true,
            seed: s.seed,
        },
        plan: default_plan(&v.arch),
        out: None,
        meta: Default::default(),
        stop,
    };
    let mut ticks = Ticks { tick, total, recent: Vec::new() };
    let (model, r) = fit(v, &job, Position::default(), &mut ticks)?;
    if r.interrupted {
        return Err(Error::Interrupted { what: format!("at step {}/{total}", r.steps) });
    }
    let final_loss = ticks.recent.iter().sum::<f32>() / ticks.recent.len().max(1) as f32;
    Ok(Trained { model, steps: r.steps, seconds: start.elapsed().as_secs_f64(), final_loss })
}
