//! Sharding: split a suite's plan over N machines (a Slurm array, a Kubernetes Indexed Job,
//! or by hand) so that each measures its own part and writes its own CSV; `prunebench merge`
//! joins the CSVs.
//!
//! A shard is `K/N` with a **0-based** index: `0/4`, `1/4`, `2/4`, `3/4` are the four shards
//! of a 4-way split (the index Kubernetes and a `--array=0-3` Slurm array hand out).
//!
//! The unit of work is a *group*: all the variants of one physical pruning configuration
//! (its dtypes, batches, lowerings and masked twin), which share the pruning and the
//! fine-tuning. [`balance`] gives each group an estimated cost ([`estimated_cost`]) and
//! assigns the groups by longest processing time first: the costliest group goes to the
//! shard with the least cost so far (ties: the lowest shard index), groups of equal cost in
//! the order of their key. So the split is a partition, deterministic (it depends only on
//! the suite, never on the machine), and the estimated costs of any two shards differ by at
//! most the cost of one group.
//!
//! The trade-off: the split depends on the whole plan, so adding or removing a configuration
//! may move others to another shard. Re-running one shard after the suite changed is still
//! safe (rows already in that shard's CSV are kept and not measured again), but it may
//! measure configurations another shard's CSV already holds; `prunebench merge` then keeps one
//! row per variant. Finish a sharded sweep with the suite it started with.

use std::fmt;
use std::str::FromStr;

use super::config::Suite;
use super::plan::{PruneConfig, Variant};
use crate::error::{Error, Result};
use crate::prune::{Control, Schedule};

/// Shard `index` of `count` (0-based: `index < count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

const FORMAT: &str = "write K/N with a 0-based shard index K < N, e.g. 0/4 ... 3/4 for 4 shards";

impl Shard {
    /// Shard `index` of `count`; `count >= 1`, `index < count`.
    pub fn new(index: usize, count: usize) -> Result<Shard> {
        let text = format!("{index}/{count}");
        if count == 0 {
            return Err(Error::invalid("shard", text, "the shard count N must be at least 1"));
        }
        if index >= count {
            return Err(Error::invalid(
                "shard",
                text,
                format!("the index is 0-based and must be below the count: 0/{count} ... {}/{count}", count - 1),
            ));
        }
        Ok(Shard { index, count })
    }

    /// The whole plan as one shard.
    pub fn all() -> Shard {
        Shard { index: 0, count: 1 }
    }

    /// The shard this process is, from the environment of a batch system, or `None` when
    /// there is none. `count` is the shard count when it is given separately (`--shards N`).
    ///
    /// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` is the index; the count must be given
    ///   (the Job's `completions`), as Kubernetes does not export it.
    /// - Slurm array: `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN` (0 when unset),
    ///   divided by `SLURM_ARRAY_TASK_STEP` (1 when unset), of `SLURM_ARRAY_TASK_COUNT`
    ///   tasks (or `count`; when both are set they must agree).
    ///
    /// Kubernetes is looked at first. With `count` but neither system, it is an error (a
    /// count alone does not say which shard this is).
    pub fn from_env(count: Option<usize>) -> Result<Option<Shard>> {
        Shard::from_vars(|k| std::env::var(k).ok(), count)
    }

    /// [`Shard::from_env`] reading variables through `var` (for tests).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>, count: Option<usize>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) if v.trim().is_empty() => Ok(None),
                Some(v) => v
                    .trim()
                    .parse::<usize>()
                    .map(Some)
                    .map_err(|_| Error::invalid(name, &v, "expected a non-negative whole number")),
            }
        };
        if let Some(index) = num("JOB_COMPLETION_INDEX")? {
            let Some(count) = count else {
                return Err(Error::invalid(
                    "JOB_COMPLETION_INDEX",
                    index,
                    "a Kubernetes Indexed Job gives the shard index but not the count: pass --shards N \
                     with N = the Job's completions",
                ));
            };
            return Shard::new(index, count).map(Some);
        }
        if let Some(id) = num("SLURM_ARRAY_TASK_ID")? {
            let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let step = num("SLURM_ARRAY_TASK_STEP")?.unwrap_or(1).max(1);
            if id < min {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_ID",
                    id,
                    format!("below SLURM_ARRAY_TASK_MIN={min}"),
                ));
            }
            if (id - min) % step != 0 {
                return Err(Error::invalid(
                    "SLURM_ARRAY_TASK_ID",
                    id,
                    format!("not on the array's step (SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_STEP={step})"),
                ));
            }
            let index = (id - min) / step;
            let slurm_count = num("SLURM_ARRAY_TASK_COUNT")?;
            let count = match (slurm_count, count) {
                (Some(a), Some(b)) if a != b => {
                    return Err(Error::invalid(
                        "--shards",
                        b,
                        format!("the Slurm array has SLURM_ARRAY_TASK_COUNT={a} tasks; give the same count or leave it out"),
                    ))
                }
                (Some(a), _) => a,
                (None, Some(b)) => b,
                (None, None) => {
                    return Err(Error::invalid(
                        "SLURM_ARRAY_TASK_ID",
                        id,
                        "SLURM_ARRAY_TASK_COUNT is not set (an old Slurm?): pass --shards N",
                    ))
                }
            };
            return Shard::new(index, count).map(Some);
        }
        match count {
            None => Ok(None),
            Some(n) => Err(Error::invalid(
                "--shards",
                n,
                "neither JOB_COMPLETION_INDEX (Kubernetes Indexed Job) nor SLURM_ARRAY_TASK_ID (Slurm array) \
                 is set, so the shard index is unknown: give the shard explicitly with --shard K/N",
            )),
        }
    }
}

impl FromStr for Shard {
    type Err = Error;

    /// `K/N`, 0-based: `0/4` is the first of four shards.
    fn from_str(s: &str) -> Result<Shard> {
        let t = s.trim();
        let Some((k, n)) = t.split_once('/') else {
            return Err(Error::invalid("shard", s, FORMAT));
        };
        let k: usize = k.trim().parse().map_err(|_| Error::invalid("shard", s, FORMAT))?;
        let n: usize = n.trim().parse().map_err(|_| Error::invalid("shard", s, FORMAT))?;
        Shard::new(k, n).map_err(|e| match e {
            Error::Invalid { fix, .. } => Error::invalid("shard", s, fix),
            e => e,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Assigns groups of work to `count` shards by longest processing time first: `groups` are
/// `(key, cost)` pairs (cost in any unit, `>= 0`); the costliest group goes to the shard with
/// the least total cost so far (ties: the lowest index), groups of equal cost in the order of
/// their key. Returns the shard index of each group, in the order of `groups`.
///
/// The result depends only on the keys and costs (not on their order in `groups`), every group
/// gets exactly one shard, and the totals of any two shards differ by at most the largest
/// cost. `count` must be at least 1 (a [`Shard`] guarantees it).
pub fn balance(groups: &[(String, f64)], count: usize) -> Vec<usize> {
    assert!(count >= 1, "balance needs at least one shard");
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| groups[b].1.total_cmp(&groups[a].1).then_with(|| groups[a].0.cmp(&groups[b].0)));
    let mut load = vec![0.0f64; count];
    let mut out = vec![0; groups.len()];
    for i in order {
        let k = (0..count).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).expect("count >= 1");
        load[k] += groups[i].1;
        out[i] = k;
    }
    out
}

/// Images in a split whose size the suite leaves open (`eval_limit`/`train_limit` unset):
/// the size of the Fashion-MNIST and CIFAR-10 test split, a guess for the cost estimate only.
const UNKNOWN_SPLIT: usize = 10_000;

/// The estimated cost of every group of `variants` (see the module doc), keyed by the
/// physical pruning key, in full-width image passes (forward = 1, a training step = 3 per
/// image):
///
/// - fine-tuning (pruned groups, when the suite fine-tunes): `3 x steps x batch x scale`;
/// - accuracy: `eval images x scale` per configuration and dtype, twice with fine-tuning
///   (before and after);
/// - latency: `(warmup + min_iters) x batch x scale` per variant.
///
/// `scale` is the share of the full network's conv work: `(1 - mean ratio)^2` for a
/// physically pruned network (input and output channels both shrink), 1 for the unpruned
/// network and for masked twins (zeroed channels cost the same). Time-bound parts
/// (timing rounds beyond the minimum samples, compilation, autotuning) are left out: the estimate ranks groups, it does
/// not predict seconds.
pub fn estimated_cost(suite: &Suite, variants: &[Variant]) -> Vec<(String, f64)> {
    use std::collections::{BTreeMap, BTreeSet};
    let scale = |cfg: &PruneConfig| -> f64 {
        if cfg.is_baseline() || cfg.control == Control::Masked {
            return 1.0;
        }
        let keep = match &cfg.schedule {
            Schedule::Uniform(r) | Schedule::Global(r) => 1.0 - r,
            Schedule::Layers(rs) => 1.0 - rs.iter().sum::<f64>() / rs.len().max(1) as f64,
            // Cost goes roughly as the kept fraction squared, latency likewise.
            Schedule::Latency(t) => t.sqrt(),
        };
        keep * keep
    };
    let eval = suite.eval_limit.unwrap_or(UNKNOWN_SPLIT) as f64;
    let iters = (suite.sampling.warmup + suite.sampling.min_samples) as f64;
    let mut cost: BTreeMap<String, f64> = BTreeMap::new();
    let mut evaluated: BTreeSet<(usize, String)> = BTreeSet::new();
    for v in variants {
        let cfg = &suite.pruning[v.prune];
        let key = cfg.physical_key();
        let s = scale(cfg);
        let c = cost.entry(key.clone()).or_insert_with(|| match (&suite.finetune, cfg.is_baseline()) {
            (Some(ft), false) => {
                let steps = ft.total_steps(suite.train_limit.unwrap_or(UNKNOWN_SPLIT)) as f64;
                let phys = PruneConfig { control: Control::Physical, ..cfg.clone() };
                3.0 * steps * ft.batch as f64 * scale(&phys)
            }
            _ => 0.0,
        });
        *c += iters * v.batch as f64 * s;
        if evaluated.insert((v.prune, v.dtype.to_string())) {
            *c += eval * s * if suite.finetune.is_some() && !cfg.is_baseline() { 2.0 } else { 1.0 };
        }
    }
    cost.into_iter().collect()
}

/// The variants of `variants` (a plan of `suite`, see [`super::expand`]) that belong to
/// `shard`, in plan order: the groups are balanced over the shards by [`balance`] with
/// [`estimated_cost`]. The shards `0/N ... N-1/N` partition the plan.
pub fn select(suite: &Suite, variants: Vec<Variant>, shard: Shard) -> Vec<Variant> {
    if shard.count == 1 {
        return variants;
    }
    let groups = estimated_cost(suite, &variants);
    let assigned = balance(&groups, shard.count);
    let mine: std::collections::HashSet<&str> =
        groups.iter().zip(&assigned).filter(|(_, &k)| k == shard.index).map(|((key, _), _)| key.as_str()).collect();
    variants.into_iter().filter(|v| mine.contains(suite.pruning[v.prune].physical_key().as_str())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn balance_is_longest_processing_time_first() {
        let g = |v: &[(&str, f64)]| v.iter().map(|(k, c)| (k.to_string(), *c)).collect::<Vec<_>>();
        // a5 -> 0 (5, 0); b4 -> 1 (5, 4); c3 -> 1 (5, 7); d3 -> 0 (8, 7); e2 -> 1 (8, 9); f1 -> 0 (9, 9).
        let groups = g(&[("e", 2.0), ("a", 5.0), ("d", 3.0), ("b", 4.0), ("c", 3.0), ("f", 1.0)]);
        assert_eq!(balance(&groups, 2), vec![1, 0, 0, 1, 1, 0]);
        // Order of the input does not matter; equal costs go by key.
        let mut rev = groups.clone();
        rev.reverse();
        let mut a = balance(&rev, 2);
        a.reverse();
        assert_eq!(a, balance(&groups, 2));
        // More shards than groups: the rest are empty; one shard: everything in it.
        assert_eq!(balance(&g(&[("a", 1.0), ("b", 1.0)]), 3), vec![0, 1]);
        assert_eq!(balance(&groups, 1), vec![0; 6]);
    }
}
