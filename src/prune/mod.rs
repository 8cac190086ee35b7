//! Structured pruning on dependency groups: a criterion ([`Criterion`], registered in
//! [`criteria`]) scores the channels of every pruned group ([`targets`]), a schedule
//! ([`Schedule`]) decides how many each keeps, and [`surgery`] cuts them out for real: every
//! tensor that indexes a removed channel (producers, batch norms, consumers, the dense rows
//! after a flatten) loses it, so XLA compiles a genuinely smaller program. [`mask`] builds the
//! masked twin from the same selection, same shapes with the removed channels silenced, only
//! as an explicit control.
//!
//! ```no_run
//! # use prunebench::prune::{self, Plan, Schedule, ScoreContext};
//! # fn f(net: &prunebench::model::Network) -> prunebench::Result<()> {
//! let plan = Plan::new("l1", Schedule::Uniform(0.5));
//! let p = prune::prune(net, &plan, &ScoreContext::weights_only())?;
//! println!("{:?}", p.keep.iter().map(|k| k.len()).collect::<Vec<_>>());
//! # Ok(()) }
//! ```

mod criteria;
mod criterion;
mod group_scores;
mod group_surgery;
mod schedule;
pub mod stats;

use std::collections::BTreeMap;
use std::fmt;

pub use criteria::{criteria, find};
pub use criterion::{Criterion, Needs, ScoreContext, WeightRule};
pub use group_scores::{combine, selection, targets, weight_scores};
pub use group_surgery::{check_selection, cut, embed, mask_twin, Cut};
pub use schedule::{keep_counts, top_k, Bounds, Schedule};

use crate::error::{Error, Result};
use crate::graph::groups::groups;
use crate::model::Network;

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
    /// Every unskipped group keeps at least this many channels (and always at least 1).
    pub min_channels: usize,
    /// Indices of pruned groups ([`targets`], VGG-16: conv indices) left untouched.
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
    pub fn validate(&self, net: &Network) -> Result<()> {
        find(&self.criterion)?;
        self.schedule.validate()?;
        if self.round_to == 0 {
            return Err(Error::invalid("round_to", 0, "use 1 (no rounding) or a multiple such as 8"));
        }
        let n = targets(&net.graph, &groups(&net.graph)).len();
        if let Some(&i) = self.skip.iter().find(|&&i| i >= n) {
            return Err(Error::invalid(
                "skipped layer",
                i,
                format!("pruned-group indices run from 0 to {} (`prunebench info` lists them)", n.saturating_sub(1)),
            ));
        }
        Ok(())
    }
}

/// A pruned network, the kept channel indices per pruned group, and its provenance metadata.
#[derive(Clone, Debug)]
pub struct Pruned {
    pub model: Network,
    /// Kept channels (ascending) of each pruned group ([`targets`]), in order.
    pub keep: Vec<Vec<usize>>,
    pub meta: BTreeMap<String, String>,
}

/// The channel count of each pruned group of `net` ([`targets`]), in order.
pub fn group_channels(net: &Network) -> Vec<usize> {
    let gs = groups(&net.graph);
    targets(&net.graph, &gs).iter().map(|&id| gs.all()[id].channels).collect()
}

/// The kept channel indices of each pruned group (ascending) under `plan`.
pub fn keep_sets(net: &Network, plan: &Plan, ctx: &ScoreContext) -> Result<Vec<Vec<usize>>> {
    plan.validate(net)?;
    let criterion = find(&plan.criterion)?;
    let ctx = ScoreContext { seed: plan.seed, skip: &plan.skip, ..*ctx };
    let scores = criterion.scores(net, &ctx)?;
    let sizes = group_channels(net);
    if scores.len() != sizes.len() || scores.iter().zip(&sizes).any(|(s, &n)| s.len() != n) {
        return Err(Error::invalid("scores", criterion.name(), "a criterion must score every channel of every pruned group"));
    }
    let bounds = Bounds { round_to: plan.round_to, min_channels: plan.min_channels, skip: &plan.skip };
    let counts = keep_counts(&plan.schedule, &scores, bounds)?;
    Ok(scores.iter().zip(counts).map(|(s, k)| top_k(s, k)).collect())
}

/// The full selection of `net` (every group, see [`check_selection`]) that keeps `keep` of
/// its pruned groups.
///
/// Errors: not one list per pruned group.
pub fn full_selection(net: &Network, keep: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
    let gs = groups(&net.graph);
    let ids = targets(&net.graph, &gs);
    if keep.len() != ids.len() {
        return Err(Error::invalid(
            "kept channel lists",
            format!("{} lists", keep.len()),
            format!("give one per pruned group of {} ({})", net.describe(), ids.len()),
        ));
    }
    Ok(selection(&gs, &ids, keep))
}

/// Checks `keep` (one list per pruned group) against `net`: each non-empty, strictly
/// increasing and within the group; the error names the group.
pub fn check_keep(net: &Network, keep: &[Vec<usize>]) -> Result<()> {
    check_selection(&net.graph, &groups(&net.graph), &full_selection(net, keep)?)
}

/// The physical variant of `net` keeping `keep` (one list per pruned group): the network
/// with the kept counts and every tensor sliced along every axis a pruned group indexes
/// ([`cut`]).
pub fn surgery(net: &Network, keep: &[Vec<usize>]) -> Result<Network> {
    let c = cut(&net.graph, &net.tensors, &full_selection(net, keep)?)?;
    let channels: Vec<usize> = c.graph.convs().map(|(_, spec)| spec.out).collect();
    Network::new(net.arch.with_channels(channels)?, c.tensors)
}

/// The masked twin of `net` under `keep` ([`mask_twin`]): same shapes, the removed channels
/// silenced. Only a control: it is exactly as slow as the original.
pub fn mask(net: &Network, keep: &[Vec<usize>]) -> Result<Network> {
    let t = mask_twin(&net.graph, &net.tensors, &full_selection(net, keep)?)?;
    Network::new(net.arch.clone(), t)
}

/// Provenance metadata of a network pruned from `net` by `plan` keeping `keep`.
pub fn provenance(net: &Network, plan: &Plan, keep: &[Vec<usize>], source_sha256: Option<&str>) -> BTreeMap<String, String> {
    let join = |xs: &mut dyn Iterator<Item = usize>| xs.map(|x| x.to_string()).collect::<Vec<_>>().join(",");
    let mut m = BTreeMap::new();
    let mut put = |k: &str, val: String| m.insert(format!("{META_PREFIX}{k}"), val);
    put("channels", join(&mut keep.iter().map(|k| k.len())));
    put("source_channels", join(&mut group_channels(net).into_iter()));
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
pub fn prune(net: &Network, plan: &Plan, ctx: &ScoreContext) -> Result<Pruned> {
    let keep = keep_sets(net, plan, ctx)?;
    let model = match plan.control {
        Control::Physical => surgery(net, &keep)?,
        Control::Masked => mask(net, &keep)?,
    };
    let mut meta = provenance(net, plan, &keep, None);
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
