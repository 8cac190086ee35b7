//! What pruning acts on and how a criterion scores it: the *pruned groups* of a network
//! ([`targets`]) and one score per channel of each ([`weight_scores`] for the weight
//! criteria, [`combine`] for any criterion that scores several members of a group).
//!
//! ## The pruned groups
//! Every prunable dependency group ([`crate::graph::groups`]) that a conv produces (its
//! channels are some conv's output channels), in group order. Groups made by a dense layer
//! alone (VGG-16's hidden head layers) are left whole: their width is the head's, and the
//! per-conv pruning of the literature this benchmark reproduces keeps them. On VGG-16 the
//! pruned groups are its 13 convs, in order, so plans, `skip` indices, per-layer ratios and
//! the CSV's `channels` column read as they always did; on a ResNet a residual stage is one
//! group (its convs' outputs and the adds that join them), each block's inner conv another.
//!
//! ## The aggregation (as Torch-Pruning's DepGraph)
//! A weight criterion ([`WeightRule`]) scores every member it applies to:
//! - `l1`, `l2`, `fpgm` score the filters of every weight producer of the group (conv and
//!   dense output channels, depthwise filters);
//! - `bn-scale` scores `|gamma|` of every batch norm of the group;
//! - consumers (conv input channels, dense rows) are not scored.
//!
//! Each member's channel scores are normalised by dividing by their mean (a member whose
//! scores are all 0 contributes 0s), and the group's score of channel `j` is the mean over
//! the members of their normalised scores of `j`. So a residual group weighs each of its
//! convs equally whatever their weight scale. On a group of one scored member (every VGG
//! group) the score is that member's score divided by a positive constant: the order of the
//! channels is the member's own.
//!
//! `random` draws one score per channel of each pruned group in order, from the plan's seed.

use ndarray::ArrayD;

use super::criterion::WeightRule;
use crate::error::{Error, Result};
use crate::graph::groups::{Group, Groups};
use crate::graph::{Graph, Member, Op, Role};

/// The ids of the groups pruning acts on (see the module docs), in group order.
pub fn targets(g: &Graph, gs: &Groups) -> Vec<usize> {
    gs.prunable()
        .filter(|grp| grp.members.iter().any(|m| matches!(m, Member::Out(n) | Member::Depthwise(n) if matches!(g.node(*n).op, Op::Conv(_)))))
        .map(|grp| grp.id)
        .collect()
}

/// The full selection (one kept list per group of `gs`, for [`cut`](super::cut)) from the
/// kept channels of each pruned group (`keep[i]` for group `ids[i]`); every other group keeps
/// all its channels.
pub fn selection(gs: &Groups, ids: &[usize], keep: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut out = gs.keep_all();
    for (&id, k) in ids.iter().zip(keep) {
        out[id] = k.clone();
    }
    out
}

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

/// The mean over `members` of each member's scores divided by that member's mean (the
/// DepGraph aggregation of the module docs); `channels` zeros when there are none.
pub fn combine(members: &[Vec<f64>], channels: usize) -> Vec<f64> {
    let mut out = vec![0.0; channels];
    for s in members {
        let mean = s.iter().sum::<f64>() / s.len() as f64;
        if mean != 0.0 {
            out.iter_mut().zip(s).for_each(|(o, &x)| *o += x / mean);
        }
    }
    out.iter().map(|&x| x / members.len().max(1) as f64).collect()
}

/// One score per channel of every pruned group of `g` ([`targets`]), in order, under the
/// weight rule `rule` of the criterion called `criterion`, from `tensors` (aligned with
/// `g.params()`); `seed` seeds `random`. See the module docs for the aggregation.
///
/// Errors: tensors that do not match `g`; a pruned group without a member the rule can score
/// (e.g. `bn-scale` on a network without batch norms), named.
pub fn weight_scores(g: &Graph, tensors: &[ArrayD<f32>], rule: WeightRule, seed: u64, criterion: &str) -> Result<Vec<Vec<f64>>> {
    g.check_tensors(tensors, "the graph")?;
    let gs = crate::graph::groups::groups(g);
    let ids = targets(g, &gs);
    if let WeightRule::Random(draws) = rule {
        let sizes: Vec<usize> = ids.iter().map(|&id| gs.all()[id].channels).collect();
        return Ok(draws(seed, &sizes));
    }
    ids.iter()
        .map(|&id| {
            let grp = &gs.all()[id];
            let m = member_scores(g, tensors, grp, rule);
            if m.is_empty() {
                let what = if matches!(rule, WeightRule::Gamma(_)) { "batch norm" } else { "conv or dense producer" };
                return Err(Error::invalid(
                    "criterion",
                    criterion,
                    format!("group {} ({}) has no {what} to score; skip the group or use another criterion", grp.id, grp.name(g)),
                ));
            }
            Ok(combine(&m, grp.channels))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use ndarray::Axis;

    use super::*;
    use crate::graph::groups::groups;
    use crate::graph::groups::tests::{inverted, residual};
    use crate::graph::nets::vgg::vgg16;
    use crate::prune::group_surgery::tests::tensors32 as tensors;
    use crate::prune::{find, keep_counts, top_k, Bounds, Schedule};

    fn rule(name: &str) -> WeightRule {
        find(name).unwrap().weight_rule().unwrap()
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

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn on_vgg_the_pruned_groups_are_the_13_convs_scored_by_their_own_filters() {
        let g = vgg16([32, 32, 3], &[4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], true, &[16], 10).unwrap();
        let t = tensors(&g, 3);
        let gs = groups(&g);
        assert_eq!(targets(&g, &gs), (1..14).collect::<Vec<_>>(), "input 0, convs 1-13; hidden 14 and output 15 left whole");
        let s = weight_scores(&g, &t, rule("l1"), 0, "l1").unwrap();
        for (i, si) in s.iter().enumerate() {
            assert!(close(si, &normalised(l1_of(&g, &t, &format!("features.{i}.weight")))), "conv {i}");
        }
        let a = weight_scores(&g, &t, rule("random"), 7, "random").unwrap();
        assert_eq!(a.iter().map(|x| x.len()).collect::<Vec<_>>(), [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]);
        assert_eq!(a, weight_scores(&g, &t, rule("random"), 7, "random").unwrap());
        assert_ne!(a, weight_scores(&g, &t, rule("random"), 8, "random").unwrap());
    }

    #[test]
    fn a_residual_group_scores_the_mean_of_its_normalised_members() {
        let g = residual();
        let t = tensors(&g, 9);
        assert_eq!(targets(&g, &groups(&g)), [1, 2, 3], "the stem's residual group, then each block's interior");
        let s = weight_scores(&g, &t, rule("l1"), 0, "l1").unwrap();
        let members = ["conv1.weight", "layer1.0.conv2.weight", "layer1.1.conv2.weight"].map(|n| normalised(l1_of(&g, &t, n)));
        let want: Vec<f64> = (0..4).map(|j| members.iter().map(|m| m[j]).sum::<f64>() / 3.0).collect();
        assert!(close(&s[0], &want), "{:?} vs {want:?}", s[0]);
        // bn-scale: the three batch norms of the group.
        let s = weight_scores(&g, &t, rule("bn-scale"), 0, "bn-scale").unwrap();
        let members = ["bn1.weight", "layer1.0.bn2.weight", "layer1.1.bn2.weight"].map(|n| normalised(l1_of(&g, &t, n)));
        let want: Vec<f64> = (0..4).map(|j| members.iter().map(|m| m[j]).sum::<f64>() / 3.0).collect();
        assert!(close(&s[0], &want), "{:?} vs {want:?}", s[0]);
    }

    #[test]
    fn a_zero_member_does_not_decide_and_depthwise_filters_count() {
        let g = inverted();
        let mut t = tensors(&g, 5);
        // The expand conv's filters all zero: the group's l1 is the depthwise filters' alone, halved.
        t[g.param_named("expand.weight").unwrap()].fill(0.0);
        let gs = groups(&g);
        let expand = gs.of(g.find("expand").unwrap().id).id;
        let i = targets(&g, &gs).iter().position(|&id| id == expand).unwrap();
        let s = weight_scores(&g, &t, rule("l1"), 0, "l1").unwrap();
        let dw = normalised(l1_of(&g, &t, "dw.weight"));
        assert!(s[i].iter().zip(&dw).all(|(a, b)| (a - b / 2.0).abs() < 1e-12), "{:?}", s[i]);
    }

    #[test]
    fn selections_keep_the_top_scores_of_pruned_groups_and_everything_else() {
        let g = residual(); // pruned: stem (4), two interiors (3 each)
        let t = tensors(&g, 2);
        let gs = groups(&g);
        let ids = targets(&g, &gs);
        let s = weight_scores(&g, &t, rule("l2"), 0, "l2").unwrap();
        let counts = keep_counts(&Schedule::Uniform(0.5), &s, Bounds { round_to: 1, min_channels: 1, skip: &[] }).unwrap();
        assert_eq!(counts, [2, 2, 2], "4 - 2, 3 - floor(1.5)");
        let keep: Vec<Vec<usize>> = s.iter().zip(&counts).map(|(x, &k)| top_k(x, k)).collect();
        let sel = selection(&gs, &ids, &keep);
        assert_eq!(sel.iter().map(|x| x.len()).collect::<Vec<_>>(), [2, 2, 2, 2, 5], "fixed groups keep all");
        assert_eq!(sel[1], top_k(&s[0], 2));
        let counts = keep_counts(&Schedule::Uniform(0.5), &s, Bounds { round_to: 3, min_channels: 1, skip: &[2] }).unwrap();
        assert_eq!(counts, [3, 3, 3]);
    }

    #[test]
    fn criteria_that_cannot_score_a_group_say_why() {
        let g = vgg16([32, 32, 1], &[4; 13], false, &[], 10).unwrap();
        let t = tensors(&g, 1);
        let e = weight_scores(&g, &t, rule("bn-scale"), 0, "bn-scale").unwrap_err().to_string();
        assert!(e.contains("group 1 (features.0) has no batch norm"), "{e}");
    }
}
