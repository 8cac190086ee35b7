//! Group scores and group selections: a criterion scores each prunable dependency group as a
//! whole, and a schedule turns the scores into kept channels per group (a selection for
//! [`cut`](super::cut) and [`mask_twin`](super::mask_twin)).
//!
//! ## The aggregation (as Torch-Pruning's DepGraph)
//! A weight criterion ([`WeightRule`]) scores every member it applies to, with the same
//! function as its per-conv scores:
//! - `l1`, `l2`, `fpgm` score the filters of every weight producer of the group (conv and
//!   dense output channels, depthwise filters);
//! - `bn-scale` scores `|gamma|` of every batch norm of the group;
//! - consumers (conv input channels, dense rows) are not scored, as today's per-conv scores
//!   do not score them.
//!
//! Each member's channel scores are normalised by dividing by their mean (a member whose
//! scores are all 0 contributes 0s), and the group's score of channel `j` is the mean over
//! the members of their normalised scores of `j`. So a residual group weighs each of its
//! convs equally whatever their weight scale. On a group of one scored member (every VGG
//! group) the score is that member's score divided by a positive constant: the order of the
//! channels is the per-conv order.
//!
//! `random` draws one score per channel of each prunable group in group order, from the
//! plan's seed (on VGG the same numbers as its per-conv scores).

use ndarray::ArrayD;

use super::criterion::{Criterion, WeightRule};
use super::schedule::{keep_counts, top_k, Bounds, Schedule};
use super::{check_tensors, Plan};
use crate::error::{Error, Result};
use crate::graph::groups::{groups, Group, Groups};
use crate::graph::{Graph, Member, Op, Role};

/// Member scores of `grp` under `rule` (never `Random`): one list per scored member.
fn member_scores(g: &Graph, tensors: &[ArrayD<f32>], grp: &Group, rule: WeightRule) -> Vec<Vec<f64>> {
    let tensor = |m: &Member, r: Role| tensors[g.param_index(m.node(), r).expect("the member owns the role")].view();
    grp.members
        .iter()
        .filter_map(|m| match (rule, m) {
            (WeightRule::Filters(f), Member::Out(n) | Member::Depthwise(n)) => {
                let role = if matches!(g.node(*n).op, Op::Conv(_)) { Role::Kernel } else { Role::Weight };
                Some(f(tensor(m, role)))
            }
            (WeightRule::Gamma(f), Member::Norm(_)) => Some(f(tensor(m, Role::Gamma))),
            _ => None,
        })
        .collect()
}

/// The mean over `members` of each member's scores divided by that member's mean.
fn aggregate(members: &[Vec<f64>], channels: usize) -> Vec<f64> {
    let mut out = vec![0.0; channels];
    for s in members {
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        if mean != 0.0 {
            out.iter_mut().zip(s).for_each(|(o, &x)| *o += x / mean);
        }
    }
    out.iter().map(|&x| x / members.len() as f64).collect()
}

/// One score per channel of every prunable group of `g` not in `skip` (group ids), `None`
/// for the others, under `criterion`, from `tensors` (aligned with `g.params()`); `seed`
/// seeds randomised criteria. See the module docs for the aggregation.
///
/// Errors: a criterion that needs data or gradients (only weight criteria score groups so
/// far); a skipped id that is not a prunable group; a scored group without a member the
/// criterion can score (e.g. `bn-scale` on a group without a batch norm), named; tensors that
/// do not match `g`.
pub fn group_scores(g: &Graph, tensors: &[ArrayD<f32>], criterion: &dyn Criterion, seed: u64, skip: &[usize]) -> Result<Vec<Option<Vec<f64>>>> {
    check_tensors(g, tensors)?;
    let gs = groups(g);
    let Some(rule) = criterion.weight_rule() else {
        return Err(Error::invalid(
            "criterion",
            criterion.name(),
            "group scores read weights only so far; use l1, l2, fpgm, bn-scale or random",
        ));
    };
    if let Some(&id) = skip.iter().find(|&&id| !gs.all().get(id).is_some_and(|grp| grp.prunable())) {
        let ids: Vec<usize> = gs.prunable().map(|grp| grp.id).collect();
        return Err(Error::invalid("skipped group", id, format!("skip prunable groups only: {ids:?} (see `prunebench info`)")));
    }
    let scored = |grp: &Group| grp.prunable() && !skip.contains(&grp.id);
    if let WeightRule::Random(draws) = rule {
        let sizes: Vec<usize> = gs.all().iter().filter(|grp| scored(grp)).map(|grp| grp.channels).collect();
        let mut d = draws(seed, &sizes).into_iter();
        return Ok(gs.all().iter().map(|grp| if scored(grp) { d.next() } else { None }).collect());
    }
    gs.all()
        .iter()
        .map(|grp| {
            if !scored(grp) {
                return Ok(None);
            }
            let m = member_scores(g, tensors, grp, rule);
            if m.is_empty() {
                let what = if matches!(rule, WeightRule::Gamma(_)) { "batch norm" } else { "conv or dense producer" };
                return Err(Error::invalid(
                    "criterion",
                    criterion.name(),
                    format!("group {} ({}) has no {what} to score; skip the group or use another criterion", grp.id, grp.name(g)),
                ));
            }
            Ok(Some(aggregate(&m, grp.channels)))
        })
        .collect()
}

/// The selection (kept channels per group, for [`cut`](super::cut)) that `schedule` makes
/// from `scores` (as [`group_scores`] returns them, one entry per group of `gs`): the counts
/// of [`keep_counts`] over the scored groups (uniform: each removes
/// `count_of(ratio, n, Down)`; then the floor `min_channels` and `round_to` N, rounding the
/// kept count up), the highest-scoring channels kept. Unscored groups (not prunable, or
/// skipped) keep every channel.
///
/// Errors: a per-layer schedule (its ratios name VGG-16's convs; give a uniform or global
/// ratio), `round_to` 0, a bad ratio.
pub fn select(gs: &Groups, scores: &[Option<Vec<f64>>], schedule: &Schedule, round_to: usize, min_channels: usize) -> Result<Vec<Vec<usize>>> {
    if let Schedule::Layers(_) = schedule {
        return Err(Error::invalid("schedule", schedule, "per-layer ratios name VGG-16's 13 convs; on groups give a uniform or global ratio"));
    }
    if round_to == 0 {
        return Err(Error::invalid("round_to", 0, "use 1 (no rounding) or a multiple such as 8"));
    }
    let s: Vec<Vec<f64>> = scores.iter().flatten().cloned().collect();
    let counts = keep_counts(schedule, &s, Bounds { round_to, min_channels, skip: &[] })?;
    let mut kept = s.iter().zip(counts).map(|(x, k)| top_k(x, k));
    Ok(gs
        .all()
        .iter()
        .zip(scores)
        .map(|(grp, x)| match x {
            Some(_) => kept.next().expect("one count per scored group"),
            None => (0..grp.channels).collect(),
        })
        .collect())
}

/// The selection `plan` makes on `g` with `tensors`: [`group_scores`] of its criterion
/// (seeded by `plan.seed`, `plan.skip` read as group ids), then [`select`] with its schedule,
/// `round_to` and `min_channels`.
pub fn group_selection(g: &Graph, tensors: &[ArrayD<f32>], plan: &Plan) -> Result<Vec<Vec<usize>>> {
    let scores = group_scores(g, tensors, super::find(&plan.criterion)?, plan.seed, &plan.skip)?;
    select(&groups(g), &scores, &plan.schedule, plan.round_to, plan.min_channels)
}

#[cfg(test)]
mod tests {
    use ndarray::Axis;

    use super::*;
    use crate::graph::groups::tests::{inverted, residual};
    use crate::graph::nets::vgg::vgg16;
    use crate::model::{Arch, Vgg};
    use crate::prune::group_surgery::tests::tensors32 as tensors;
    use crate::prune::{find, keep_sets, ScoreContext};

    /// Channel indices from the highest score down (ties: lower index first).
    fn order(s: &[f64]) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..s.len()).collect();
        idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
        idx
    }

    #[test]
    fn on_vgg_group_scores_order_channels_as_the_per_conv_scores() {
        let a = Arch::cifar(0.125, 3, 10, vec![16]).unwrap();
        let mut v = Vgg::init(&a, 3);
        v.randomize_bn(4);
        let g = Vgg::graph(&a).unwrap();
        let t = v.to_tensors();
        for name in ["l1", "l2", "fpgm", "bn-scale", "random"] {
            let c = find(name).unwrap();
            let today = c.scores(&v, &ScoreContext { seed: 7, ..ScoreContext::weights_only() }).unwrap();
            let s = group_scores(&g, &t, c, 7, &[14]).unwrap();
            assert_eq!(s.len(), 16, "input, 13 convs, the hidden layer, the output");
            assert!(s[0].is_none() && s[14].is_none() && s[15].is_none(), "fixed and skipped groups are not scored");
            for i in 0..13 {
                let gs = s[i + 1].as_ref().unwrap();
                assert_eq!(order(gs), order(&today[i]), "{name} conv {i}");
                if name == "random" {
                    assert_eq!(gs, &today[i]);
                }
            }
            // The same plan keeps the same channels of every conv (the hidden group skipped).
            let mut plan = Plan::new(name, Schedule::Uniform(0.5));
            plan.seed = 7;
            plan.round_to = 4;
            plan.min_channels = 3;
            let want = keep_sets(&v, &plan, &ScoreContext::weights_only()).unwrap();
            plan.skip = vec![14];
            let got = group_selection(&g, &t, &plan).unwrap();
            assert_eq!(got[1..14], want[..], "{name}");
            assert_eq!(got[14].len(), 16, "skipped");
        }
    }

    /// `|x|` summed over each output slice (last axis) of tensor `name`.
    fn l1_of(g: &Graph, t: &[ArrayD<f32>], name: &str) -> Vec<f64> {
        let x = &t[g.param_named(name).unwrap()];
        x.axis_iter(Axis(x.ndim() - 1)).map(|f| f.iter().map(|&w| (w as f64).abs()).sum()).collect()
    }

    fn normalised(x: Vec<f64>) -> Vec<f64> {
        let m = x.iter().sum::<f64>() / x.len() as f64;
        x.iter().map(|v| v / m).collect()
    }

    #[test]
    fn a_residual_group_scores_the_mean_of_its_normalised_members() {
        let g = residual();
        let t = tensors(&g, 9);
        let s = group_scores(&g, &t, find("l1").unwrap(), 0, &[]).unwrap();
        let members = ["conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv2.weight"].map(|n| normalised(l1_of(&g, &t, n)));
        let want: Vec<f64> = (0..4).map(|j| members.iter().map(|m| m[j]).sum::<f64>() / 3.0).collect();
        let got = s[1].as_ref().unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{got:?} vs {want:?}");
        // bn-scale: the three batch norms of the group.
        let s = group_scores(&g, &t, find("bn-scale").unwrap(), 0, &[]).unwrap();
        let members = ["bn1.weight", "layer1.0.bn2.weight", "layer1.1.bn2.weight"].map(|n| normalised(l1_of(&g, &t, n)));
        let want: Vec<f64> = (0..4).map(|j| members.iter().map(|m| m[j]).sum::<f64>() / 3.0).collect();
        let got = s[1].as_ref().unwrap();
        assert!(got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-12), "{got:?} vs {want:?}");
        assert!(s[0].is_none() && s[4].is_none());
    }

    #[test]
    fn a_zero_member_does_not_decide_and_depthwise_filters_count() {
        let g = inverted();
        let mut t = tensors(&g, 5);
        // The expand conv's filters all zero: the group's l1 is the depthwise filters' alone, halved.
        t[g.param_named("expand.weight").unwrap()].fill(0.0);
        let s = group_scores(&g, &t, find("l1").unwrap(), 0, &[]).unwrap();
        let dw = normalised(l1_of(&g, &t, "dw.weight"));
        let got = s[2].as_ref().unwrap();
        assert!(got.iter().zip(&dw).all(|(a, b)| (a - b / 2.0).abs() < 1e-12), "{got:?}");
    }

    #[test]
    fn uniform_selection_uses_count_of_round_to_and_the_floor() {
        let g = residual(); // prunable: stem (4), two interiors (3 each)
        let t = tensors(&g, 2);
        let mut plan = Plan::new("l2", Schedule::Uniform(0.5));
        let k = group_selection(&g, &t, &plan).unwrap();
        let lens: Vec<usize> = k.iter().map(|x| x.len()).collect();
        assert_eq!(lens, [2, 2, 2, 2, 5], "4 - 2, 3 - floor(1.5); fixed groups keep all");
        let s = group_scores(&g, &t, find("l2").unwrap(), 0, &[]).unwrap();
        assert_eq!(k[1], top_k(s[1].as_ref().unwrap(), 2));
        plan.round_to = 3;
        let lens: Vec<usize> = group_selection(&g, &t, &plan).unwrap().iter().map(|x| x.len()).collect();
        assert_eq!(lens, [2, 3, 3, 3, 5]);
        plan.round_to = 1;
        plan.schedule = Schedule::Uniform(0.9);
        plan.min_channels = 2;
        let lens: Vec<usize> = group_selection(&g, &t, &plan).unwrap().iter().map(|x| x.len()).collect();
        assert_eq!(lens, [2, 2, 2, 2, 5]);
        // Global: 0.5 of the 10 prunable channels, one threshold over the mean-normalised scores.
        plan.schedule = Schedule::Global(0.5);
        plan.min_channels = 1;
        let k = group_selection(&g, &t, &plan).unwrap();
        assert_eq!(k[1..4].iter().map(|x| x.len()).sum::<usize>(), 5, "{k:?}");
        plan.skip = vec![4];
        let e = group_selection(&g, &t, &plan).unwrap_err().to_string();
        assert!(e.contains("skipped group '4'") && e.contains("[1, 2, 3]"), "{e}");
        plan.skip = vec![];
        plan.schedule = Schedule::Layers(vec![0.5; 13]);
        assert!(group_selection(&g, &t, &plan).unwrap_err().to_string().contains("uniform or global"));
    }

    #[test]
    fn criteria_that_cannot_score_a_group_say_why() {
        let g = vgg16([32, 32, 1], &[4; 13], false, &[], 10).unwrap();
        let t = tensors(&g, 1);
        let e = group_scores(&g, &t, find("bn-scale").unwrap(), 0, &[]).unwrap_err().to_string();
        assert!(e.contains("group 1 (features.0) has no batch norm"), "{e}");
        let e = group_scores(&g, &t, find("apoz").unwrap(), 0, &[]).unwrap_err().to_string();
        assert!(e.contains("'apoz'") && e.contains("weights only"), "{e}");
    }
}
