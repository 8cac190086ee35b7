//! Structured pruning: score channels ([`Criterion`], registered in [`criteria`]), decide
//! how many each conv keeps ([`Schedule`]), and cut them out for real ([`surgery`]): the
//! result is the same VGG-16 structure with fewer channels in every affected tensor, so XLA
//! compiles a genuinely smaller program. [`mask`] builds the masked twin, same shapes with the
//! pruned channels silenced, only as an explicit control.
//!
//! On any graph, pruning acts on dependency groups ([`crate::graph::groups`]): a criterion
//! scores each group ([`group_scores`]), a schedule picks the kept channels per group
//! ([`select`], [`group_selection`]), and the physical variant ([`cut`]) and the masked twin
//! ([`mask_twin`]) both come from that one selection.
//!
//! ```no_run
//! # use prunebench::prune::{self, Plan, Schedule, ScoreContext};
//! # fn f(v: &prunebench::model::Vgg) -> prunebench::Result<()> {
//! let plan = Plan::new("l1", Schedule::Uniform(0.5));
//! let p = prune::prune(v, &plan, &ScoreContext::weights_only())?;
//! println!("{:?}", p.model.arch.channels);
//! # Ok(()) }
//! ```

mod criteria;
mod criterion;
mod group_scores;
mod group_surgery;
mod schedule;
pub mod stats;
mod surgery;

use std::collections::BTreeMap;
use std::fmt;

pub use criteria::{criteria, find};
pub use criterion::{Criterion, Needs, ScoreContext, WeightRule};
pub use group_scores::{group_scores, group_selection, select};
pub use group_surgery::{check_selection, check_tensors, cut, mask_twin, Cut};
pub use schedule::{keep_counts, top_k, Bounds, Schedule};
pub use surgery::{check_keep, mask, surgery};

use crate::error::{Error, Result};
use crate::model::Vgg;

/// Metadata key prefix of everything pruning records in a checkpoint.
pub const META_PREFIX: &str = "prunebench.prune.";
/// Metadata key saying whether a checkpoint is `physical` (channels removed) or `masked`.
pub const META_CONTROL: &str = "prunebench.control";

/// Whether the pruned channels are removed or only silenced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Control {
    /// Channels removed: smaller tensors, smaller program. What pruning means here.
    #[default]
    Physical,
    /// Same shapes, pruned channels output exactly 0: the control experiment.
    Masked,
}

impl fmt::Display for Control {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Control::Physical => "physical",
            Control::Masked => "masked",
        })
    }
}

/// Everything that decides which channels go.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Criterion name (see [`criteria`]).
    pub criterion: String,
    pub schedule: Schedule,
    /// Kept counts are rounded UP to a multiple of this (capped at the original count); 1 = off.
    pub round_to: usize,
    /// Every unskipped conv keeps at least this many channels (and always at least 1).
    pub min_channels: usize,
    /// Conv indices left untouched.
    pub skip: Vec<usize>,
    /// Seed of randomised criteria.
    pub seed: u64,
    pub control: Control,
}

impl Plan {
    /// `criterion` with `schedule`, no rounding, floor 1, nothing skipped, seed 0, physical.
    pub fn new(criterion: &str, schedule: Schedule) -> Plan {
        Plan {
            criterion: criterion.into(),
            schedule,
            round_to: 1,
            min_channels: 1,
            skip: vec![],
            seed: 0,
            control: Control::Physical,
        }
    }

    /// Checks the options (the schedule, `round_to`, `skip` indices, the criterion name).
    pub fn validate(&self, v: &Vgg) -> Result<()> {
        find(&self.criterion)?;
        self.schedule.validate()?;
        if self.round_to == 0 {
            return Err(Error::invalid("round_to", 0, "use 1 (no rounding) or a multiple such as 8"));
        }
        let n = v.convs.len();
        if let Some(&i) = self.skip.iter().find(|&&i| i >= n) {
            return Err(Error::invalid("skipped layer", i, format!("conv indices run from 0 to {}", n - 1)));
        }
        Ok(())
    }
}

/// A pruned network, the kept channel indices per conv, and its provenance metadata.
#[derive(Clone, Debug)]
pub struct Pruned {
    pub model: Vgg,
    pub keep: Vec<Vec<usize>>,
    pub meta: BTreeMap<String, String>,
}

/// The kept channel indices of each conv (ascending) under `plan`.
pub fn keep_sets(v: &Vgg, plan: &Plan, ctx: &ScoreContext) -> Result<Vec<Vec<usize>>> {
    plan.validate(v)?;
    let criterion = find(&plan.criterion)?;
    let ctx = ScoreContext { seed: plan.seed, ..*ctx };
    let scores = criterion.scores(v, &ctx)?;
    if scores.len() != v.convs.len() || scores.iter().zip(&v.arch.channels).any(|(s, &n)| s.len() != n) {
        return Err(Error::invalid("scores", criterion.name(), "a criterion must score every channel of every conv"));
    }
    let bounds = Bounds { round_to: plan.round_to, min_channels: plan.min_channels, skip: &plan.skip };
    let counts = keep_counts(&plan.schedule, &scores, bounds)?;
    Ok(scores.iter().zip(counts).map(|(s, k)| top_k(s, k)).collect())
}

/// Provenance metadata of a network pruned from `v` by `plan` keeping `keep`.
pub fn provenance(v: &Vgg, plan: &Plan, keep: &[Vec<usize>], source_sha256: Option<&str>) -> BTreeMap<String, String> {
    let join = |xs: &mut dyn Iterator<Item = usize>| xs.map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let mut m = BTreeMap::new();
    let mut put = |k: &str, val: String| m.insert(format!("{META_PREFIX}{k}"), val);
    put("channels", join(&mut keep.iter().map(|k| k.len())));
    put("source_channels", join(&mut v.arch.channels.iter().copied()));
    put("criterion", plan.criterion.clone());
    put("schedule", plan.schedule.name().into());
    put("ratio", plan.schedule.ratios_text());
    put("round_to", plan.round_to.to_string());
    put("min_channels", plan.min_channels.to_string());
    put("skip", join(&mut plan.skip.iter().copied()));
    put("seed", plan.seed.to_string());
    if let Some(sha) = source_sha256 {
        put("source_sha256", sha.into());
    }
    m.insert(META_CONTROL.into(), plan.control.to_string());
    m
}

/// Scores, schedules and cuts (or masks, per `plan.control`) in one call. The metadata
/// lacks the source checkpoint's hash; add it with [`Pruned::with_source`]. A criterion
/// that reads images records how many it scored on (all of them) as
/// `prunebench.prune.calibration_images`.
pub fn prune(v: &Vgg, plan: &Plan, ctx: &ScoreContext) -> Result<Pruned> {
    let keep = keep_sets(v, plan, ctx)?;
    let model = match plan.control {
        Control::Physical => surgery(v, &keep)?,
        Control::Masked => mask(v, &keep)?,
    };
    let mut meta = provenance(v, plan, &keep, None);
    if find(&plan.criterion)?.needs() != Needs::Weights {
        meta.insert(format!("{META_PREFIX}calibration_images"), ctx.count.to_string());
    }
    Ok(Pruned { model, keep, meta })
}

impl Pruned {
    /// Records the SHA-256 of the checkpoint the network was pruned from.
    pub fn with_source(mut self, sha256: &str) -> Self {
        self.meta.insert(format!("{META_PREFIX}source_sha256"), sha256.into());
        self
    }
}
