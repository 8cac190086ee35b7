//! The one trait every pruning criterion implements, and what a criterion may read.
//!
//! A criterion scores every channel of every pruned group ([`targets`](super::targets)); a
//! higher score means more important, i.e. kept longer. Scores of different groups need not
//! be comparable: the global schedule normalises them per group.

use ndarray::ArrayViewD;

use crate::error::{Error, Result};
use crate::model::Network;
use crate::runtime::Session;

/// What a criterion needs besides the weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// Only the weights.
    Weights,
    /// Activations on images: a session and a batch of images in [`ScoreContext`].
    Data,
    /// Gradients of a loss on labelled images.
    Gradients,
}

/// Everything a criterion may read besides the network.
#[derive(Clone, Copy, Default)]
pub struct ScoreContext<'a> {
    /// Seed of randomised criteria. [`keep_sets`](super::keep_sets) replaces it with the
    /// plan's seed, so the seed a checkpoint records is the one that was used.
    pub seed: u64,
    /// Where statistics programs run (data criteria).
    pub session: Option<&'a Session>,
    /// NHWC f32 images, `count` of the network's input shape, row-major.
    pub images: Option<&'a [f32]>,
    /// One class label per image (gradient criteria), `count` of them.
    pub labels: Option<&'a [i32]>,
    pub count: usize,
    /// Pruned groups the plan leaves whole ([`keep_sets`](super::keep_sets) sets it from the
    /// plan): a data criterion need not (and may not be able to) score them.
    pub skip: &'a [usize],
    /// The largest batch of the statistics (or gradient) program (0 = 32). Every image is
    /// used: the `count` images run as `ceil(count / batch)` batches of near-equal size
    /// ([`even_batches`](crate::data::even_batches)).
    pub batch: usize,
}

impl<'a> ScoreContext<'a> {
    /// A context with the weights only (enough for `l1`, `l2`, `fpgm`, `bn-scale`, `random`).
    pub fn weights_only() -> Self {
        Self::default()
    }

    /// A context with `count` NHWC images to run on `session`.
    pub fn with_data(session: &'a Session, images: &'a [f32], count: usize, batch: usize) -> Self {
        ScoreContext { seed: 0, session: Some(session), images: Some(images), labels: None, count, batch, skip: &[] }
    }

    /// A context with `count` NHWC images and their class labels to run on `session`
    /// (enough for every criterion, gradient criteria included).
    pub fn with_labelled_data(
        session: &'a Session,
        images: &'a [f32],
        labels: &'a [i32],
        count: usize,
        batch: usize,
    ) -> Self {
        ScoreContext { labels: Some(labels), ..Self::with_data(session, images, count, batch) }
    }

    /// The largest batch a criterion runs: `batch`, or 32 when it is 0.
    pub fn max_batch(&self) -> usize {
        if self.batch == 0 {
            32
        } else {
            self.batch
        }
    }

    /// The session and images, or the error that says `criterion` needs them.
    pub fn data(&self, criterion: &str) -> Result<(&'a Session, &'a [f32], usize)> {
        match (self.session, self.images) {
            (Some(s), Some(x)) if self.count > 0 => Ok((s, x, self.count)),
            _ => Err(Error::invalid(
                "criterion",
                criterion,
                "it scores channels by their activations and needs images and a device \
                 (CLI: --images FILE.npy or --dataset SOURCE); use a weight criterion (l1, l2, fpgm, bn-scale, random) otherwise",
            )),
        }
    }

    /// The session, images and one label per image, or the error that says `criterion`
    /// (a gradient criterion) needs them.
    pub fn labelled_data(&self, criterion: &str) -> Result<(&'a Session, &'a [f32], &'a [i32], usize)> {
        match (self.session, self.images, self.labels) {
            (Some(s), Some(x), Some(y)) if self.count > 0 => {
                if y.len() != self.count {
                    return Err(Error::invalid(
                        "labels",
                        format!("{} labels", y.len()),
                        format!("give one label per image ({})", self.count),
                    ));
                }
                Ok((s, x, y, self.count))
            }
            _ => Err(Error::invalid(
                "criterion",
                criterion,
                "it scores channels by gradients of the loss and needs labelled images and a device \
                 (CLI: --dataset SOURCE, e.g. --dataset fashion-mnist); use a weight criterion (l1, l2, fpgm, bn-scale, random) otherwise",
            )),
        }
    }
}

/// How a weight criterion scores channels from one tensor; [`weight_scores`](super::weight_scores)
/// applies it to every member of every pruned group.
#[derive(Clone, Copy, Debug)]
pub enum WeightRule {
    /// One score per filter of a producer tensor whose last axis is the output channel (HWIO
    /// conv and depthwise kernels, `[in, out]` dense weights).
    Filters(fn(ArrayViewD<f32>) -> Vec<f64>),
    /// One score per channel of a batch norm, from its gamma `[c]`.
    Gamma(fn(ArrayViewD<f32>) -> Vec<f64>),
    /// Scores drawn from a seed: one list per entry of `sizes`, in order.
    Random(fn(u64, &[usize]) -> Vec<Vec<f64>>),
}

/// A pruning criterion: one small unit, registered in [`criteria`](super::criteria).
pub trait Criterion: Sync {
    /// The name users type (`--method NAME`).
    fn name(&self) -> &'static str;
    /// One line for `--help` and error messages.
    fn about(&self) -> &'static str;
    fn needs(&self) -> Needs;
    /// The rule of a criterion that reads weights only; `None` for data and gradient
    /// criteria (which override [`scores`](Self::scores)).
    fn weight_rule(&self) -> Option<WeightRule> {
        None
    }
    /// One score per channel of each pruned group of `net`, in [`targets`](super::targets)
    /// order. The default scores a weight criterion by its [`WeightRule`]
    /// ([`weight_scores`](super::weight_scores)).
    fn scores(&self, net: &Network, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let rule = self.weight_rule().ok_or_else(|| Error::invalid("criterion", self.name(), "it has neither a weight rule nor its own scores"))?;
        super::weight_scores(&net.graph, &net.tensors, rule, ctx.seed, self.name())
    }
}

impl std::fmt::Debug for dyn Criterion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Criterion({})", self.name())
    }
}
