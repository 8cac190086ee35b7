//! The training stages of a suite, behind one function: training the network from scratch
//! (`train:`) and fine-tuning a pruned one (`finetune:`), both with [`crate::train::Trainer`]
//! (f32 SGD with momentum, state on the device).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::config::TrainSettings;
use crate::data::{Augment, Dataset, Normalize};
use crate::error::{Error, Result};
use crate::model::Vgg;
use crate::runtime::Session;
use crate::train::{lr_at, Trainer};

/// A trained network and what training did.
#[derive(Clone, Debug)]
pub struct Trained {
    pub model: Vgg,
    pub steps: usize,
    pub seconds: f64,
    /// Mean loss of the last (up to) 20 steps.
    pub final_loss: f32,
}

/// Trains `v` on `data` (pixels in [0, 1], normalised per batch with `norm`) as `s` says.
/// `tick(step, total, loss)` is called after every step; a set `stop` ends training early
/// with an error.
pub fn train(
    session: &Session,
    v: &Vgg,
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
    let start = Instant::now();
    let total = s.total_steps(data.n);
    let mut t = Trainer::from_vgg(session, v, s.batch, &s.opt)?;
    let augment = if s.augment { Augment::standard() } else { Augment::none() };
    let mut recent: Vec<f32> = Vec::new();
    let mut step = 0;
    let mut epoch = 0u64;
    while step < total {
        for b in data.train_batches(s.batch, s.seed, epoch, augment)?.normalized(norm.clone())? {
            if step == total {
                break;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(Error::invalid("training", format!("step {step}/{total}"), "interrupted"));
            }
            let (loss, _) = t.step(&b.images, &b.labels, lr_at(&s.lr, step, total))?;
            if !loss.is_finite() {
                return Err(Error::invalid(
                    "training loss",
                    format!("{loss} at step {step}"),
                    "training diverged; lower lr or add warmup_steps",
                ));
            }
            recent.push(loss);
            if recent.len() > 20 {
                recent.remove(0);
            }
            step += 1;
            tick(step, total, loss);
        }
        epoch += 1;
    }
    let final_loss = recent.iter().sum::<f32>() / recent.len().max(1) as f32;
    Ok(Trained { model: t.to_vgg()?, steps: step, seconds: start.elapsed().as_secs_f64(), final_loss })
}
