//! Surgery and the masked twin on dependency groups, for any graph.
//!
//! A *selection* is one list of kept channel indices per group of
//! [`groups`](crate::graph::groups::groups) (strictly increasing; a group that is not prunable
//! keeps all its channels). From it:
//! - [`cut`] makes the physical variant: the graph rebuilt with the kept counts
//!   ([`Graph::with_channels`]) and every tensor sliced along every axis a pruned group
//!   indexes (conv kernel out and in axes, biases, BN's four vectors, depthwise kernels on
//!   their out axis, dense rows through the NHWC map). Kept channels stay in their order.
//! - [`mask_twin`] makes the masked twin: the same shapes, with the removed channels'
//!   producer weights zeroed (kernel out-slices, biases, BN gamma and beta), so every removed
//!   channel is exactly 0 after its producers, in either BN mode, and its consumers read 0.
//!   Its outputs equal the physical variant's.

use std::collections::BTreeMap;

use ndarray::{ArrayD, Axis, Dimension};

use crate::error::{Error, Result};
use crate::graph::groups::{groups, Group, Groups};
use crate::graph::{Graph, Member, NodeId, Op, Role};

/// A pruned network: its graph and its tensors (aligned with `graph.params()`).
#[derive(Clone, Debug, PartialEq)]
pub struct Cut<T> {
    pub graph: Graph,
    pub tensors: Vec<ArrayD<T>>,
}

/// Checks `keep` against `gs`: one list per group, each non-empty, strictly increasing and
/// below the group's channels; a group that is not prunable keeps every channel. Errors name
/// the group (id and first producer) and the bad count or index.
pub fn check_selection(g: &Graph, gs: &Groups, keep: &[Vec<usize>]) -> Result<()> {
    if keep.len() != gs.len() {
        return Err(Error::invalid("selection", format!("{} lists", keep.len()), format!("give one kept-channel list per group ({})", gs.len())));
    }
    for (grp, k) in gs.all().iter().zip(keep) {
        let what = || format!("kept channels of group {} ({})", grp.id, grp.name(g));
        let n = grp.channels;
        if k.is_empty() {
            return Err(Error::invalid(what(), "[]", "every group keeps at least one channel"));
        }
        if let Some(w) = k.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::invalid(what(), format!("{k:?}"), format!("indices must be strictly increasing ({} then {})", w[0], w[1])));
        }
        if let Some(&j) = k.iter().find(|&&j| j >= n) {
            return Err(Error::invalid(what(), format!("{k:?}"), format!("index {j} is out of range: the group has {n} channels (0..{n})")));
        }
        if let (Some(why), true) = (&grp.fixed, k.len() < n) {
            return Err(Error::invalid(what(), format!("{} of {n}", k.len()), format!("the group is not prunable ({why}); keep all {n} channels")));
        }
    }
    Ok(())
}

/// One axis of one tensor to narrow to some indices.
struct Slice {
    param: usize,
    axis: usize,
    index: Vec<usize>,
}

/// The tensors and axes `member` indexes by channel, with each axis's indices for channels
/// `chans` of a group of `c` channels: producers' channel axes and (when `producers_only` is
/// false) consumers' input axes too.
fn slices(g: &Graph, member: &Member, c: usize, chans: &[usize], producers_only: bool) -> Vec<Slice> {
    let param = |n: NodeId, r: Role| g.param_index(n, r).expect("the member's node owns this role");
    let node = g.node(member.node());
    let last = |r: Role| g.params()[param(node.id, r)].dims.len() - 1;
    let mut out = Vec::new();
    let mut push = |r: Role, axis: usize, index: Vec<usize>| out.push(Slice { param: param(node.id, r), axis, index });
    match *member {
        Member::Out(_) | Member::Depthwise(_) => {
            let w = if matches!(node.op, Op::Conv(_)) { Role::Kernel } else { Role::Weight };
            push(w, last(w), chans.to_vec());
            if node.op.roles().contains(&Role::Bias) {
                push(Role::Bias, 0, chans.to_vec());
            }
        }
        Member::Norm(_) => {
            push(Role::Gamma, 0, chans.to_vec());
            push(Role::Beta, 0, chans.to_vec());
            if !producers_only {
                push(Role::RunningMean, 0, chans.to_vec());
                push(Role::RunningVar, 0, chans.to_vec());
            }
        }
        Member::ConvIn(_) if !producers_only => push(Role::Kernel, 2, chans.to_vec()),
        Member::DenseIn { spatial, .. } if !producers_only => {
            push(Role::Weight, 0, (0..spatial).flat_map(|p| chans.iter().map(move |&j| p * c + j)).collect())
        }
        Member::ConvIn(_) | Member::DenseIn { .. } => {}
    }
    out
}

fn pruned<'a>(gs: &'a Groups, keep: &'a [Vec<usize>]) -> impl Iterator<Item = (&'a Group, &'a Vec<usize>)> {
    gs.all().iter().zip(keep).filter(|(grp, k)| k.len() < grp.channels)
}

/// The physical variant of `g` with `tensors` keeping `keep` (one list per group of
/// `groups(g)`, see [`check_selection`]): the rebuilt graph and the sliced tensors.
///
/// Errors: a bad selection (named by group), or tensors that do not match `g` (named by
/// tensor).
pub fn cut<T: Clone>(g: &Graph, tensors: &[ArrayD<T>], keep: &[Vec<usize>]) -> Result<Cut<T>> {
    let gs = groups(g);
    check_selection(g, &gs, keep)?;
    g.check_tensors(tensors, "the graph")?;
    let mut out: Vec<ArrayD<T>> = tensors.to_vec();
    let mut widths = BTreeMap::new();
    for (grp, k) in pruned(&gs, keep) {
        for m in &grp.members {
            if let Member::Out(n) = m {
                widths.insert(*n, k.len());
            }
            for s in slices(g, m, grp.channels, k, false) {
                out[s.param] = out[s.param].select(Axis(s.axis), &s.index);
            }
        }
    }
    let graph = g.with_channels(&widths)?;
    graph.check_tensors(&out, "the cut graph")?;
    Ok(Cut { graph, tensors: out })
}

/// The masked twin of `tensors` under `keep` (see [`check_selection`]): same shapes, every
/// removed channel's producer weights (conv and dense output slices, biases, depthwise
/// filters, BN gamma and beta) set to `T::default()` (0). BN running statistics are kept.
pub fn mask_twin<T: Clone + Default>(g: &Graph, tensors: &[ArrayD<T>], keep: &[Vec<usize>]) -> Result<Vec<ArrayD<T>>> {
    let gs = groups(g);
    check_selection(g, &gs, keep)?;
    g.check_tensors(tensors, "the graph")?;
    let mut out: Vec<ArrayD<T>> = tensors.to_vec();
    for (grp, k) in pruned(&gs, keep) {
        let removed: Vec<usize> = (0..grp.channels).filter(|j| k.binary_search(j).is_err()).collect();
        for m in &grp.members {
            for s in slices(g, m, grp.channels, &removed, true) {
                for &j in &s.index {
                    out[s.param].index_axis_mut(Axis(s.axis), j).fill(T::default());
                }
            }
        }
    }
    Ok(out)
}

/// `g`'s shapes holding `cut_tensors` (the tensors of the cut of `g` by `keep`, possibly
/// trained since) at the kept positions, every other entry as in the masked twin of `tensors`
/// ([`mask_twin`]): the inverse of [`cut`]. It computes the cut network's function: every
/// removed channel is exactly 0 after its producers.
///
/// Errors: a bad selection; tensors that do not match `g`; cut tensors of other shapes than
/// the selection gives (named).
pub fn embed<T: Clone + Default>(g: &Graph, tensors: &[ArrayD<T>], keep: &[Vec<usize>], cut_tensors: &[ArrayD<T>]) -> Result<Vec<ArrayD<T>>> {
    let mut out = mask_twin(g, tensors, keep)?;
    let gs = groups(g);
    let mut maps: Vec<Vec<Option<Vec<usize>>>> = g.params().iter().map(|p| vec![None; p.dims.len()]).collect();
    for (grp, k) in pruned(&gs, keep) {
        for m in &grp.members {
            for s in slices(g, m, grp.channels, k, false) {
                maps[s.param][s.axis] = Some(s.index);
            }
        }
    }
    if cut_tensors.len() != out.len() {
        return Err(Error::invalid("pruned tensor list", format!("{} tensors", cut_tensors.len()), format!("give one per parameter ({})", out.len())));
    }
    for (i, (o, c)) in out.iter_mut().zip(cut_tensors).enumerate() {
        let want: Vec<usize> = maps[i].iter().zip(o.shape()).map(|(m, &d)| m.as_ref().map_or(d, |x| x.len())).collect();
        if c.shape() != want.as_slice() {
            let name = &g.params()[i].name;
            return Err(Error::invalid(format!("pruned tensor '{name}'"), format!("{:?}", c.shape()), format!("the selection keeps {want:?}")));
        }
        for (idx, v) in c.indexed_iter() {
            let at: Vec<usize> = idx.as_array_view().iter().enumerate().map(|(a, &j)| maps[i][a].as_ref().map_or(j, |m| m[j])).collect();
            o[ndarray::IxDyn(&at)] = v.clone();
        }
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use ndarray::IxDyn;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::graph::groups::tests::{inverted, residual};
    use crate::graph::{init, reference};
    use crate::model::{Arch, Form, Network};

    /// Seeded tensors of `g` with non-trivial biases and batch norms.
    pub(crate) fn tensors32(g: &Graph, seed: u64) -> Vec<ArrayD<f32>> {
        let mut t = init::init(g, seed);
        init::randomize_bn(g, &mut t, seed + 1);
        t
    }

    /// [`tensors32`] in f64.
    fn tensors(g: &Graph, seed: u64) -> Vec<ArrayD<f64>> {
        reference::to_f64(&tensors32(g, seed))
    }

    #[test]
    fn on_vgg_the_cut_slices_each_conv_by_its_own_and_its_input_kept_channels() {
        let a = Arch::imagenet(1.0 / 16.0, 3, 5, true).unwrap().with_input(64, 64).unwrap();
        let mut v = Network::init(&a, 5);
        v.randomize_bn(6);
        let keep: Vec<Vec<usize>> = a.channels.iter().map(|&n| (0..n).filter(|j| j % 3 != 1).collect()).collect();
        let p = crate::prune::surgery(&v, &keep).unwrap();
        assert_eq!(p.arch.channels, keep.iter().map(|k| k.len()).collect::<Vec<_>>());
        for i in 0..13 {
            let k = |n: String| v.tensor(&n).unwrap().clone();
            let mut want = k(format!("features.{i}.weight")).select(Axis(3), &keep[i]);
            if i > 0 {
                want = want.select(Axis(2), &keep[i - 1]);
            }
            assert_eq!(p.tensor(&format!("features.{i}.weight")).unwrap(), &want, "conv {i}");
            for r in ["bias", "bn.gamma", "bn.beta", "bn.running_mean", "bn.running_var"] {
                assert_eq!(p.tensor(&format!("features.{i}.{r}")).unwrap(), &k(format!("features.{i}.{r}")).select(Axis(0), &keep[i]));
            }
        }
        // The flatten's rows: channel c of C at spatial position q is row q * C + c (2x2 map).
        let (c, last) = (a.channels[12], &keep[12]);
        let rows: Vec<usize> = (0..4).flat_map(|q| last.iter().map(move |&j| q * c + j)).collect();
        assert_eq!(p.tensor("classifier.0.weight").unwrap(), &v.tensor("classifier.0.weight").unwrap().select(Axis(0), &rows));
        assert_eq!(p.tensor("classifier.1.weight").unwrap(), v.tensor("classifier.1.weight").unwrap(), "the hidden layers stay whole");
        // The mask zeroes the removed producers' slices and nothing else.
        let m = crate::prune::mask(&v, &keep).unwrap();
        let w = m.tensor("features.5.weight").unwrap();
        assert!(w.index_axis(Axis(3), 1).iter().all(|&x| x == 0.0) && w.index_axis(Axis(3), 0) == v.tensor("features.5.weight").unwrap().index_axis(Axis(3), 0));
    }

    #[test]
    fn a_residual_group_is_cut_in_every_member() {
        let g = residual();
        let t = tensors(&g, 1);
        let mut keep = groups(&g).keep_all();
        keep[1] = vec![0, 2, 3]; // the stem group: conv1, both conv2s, their BNs, three inputs, fc rows
        keep[2] = vec![1]; // block 0's interior
        let c = cut(&g, &t, &keep).unwrap();
        let at = |gr: &Graph, name: &str| gr.param_named(name).unwrap_or_else(|| panic!("{name}"));
        let shape = |name: &str| c.tensors[at(&c.graph, name)].shape().to_vec();
        assert_eq!(shape("conv1.weight"), [3, 3, 2, 3]);
        assert_eq!(shape("bn1.running_var"), [3]);
        assert_eq!(shape("layer1.0.conv1.weight"), [3, 3, 3, 1]);
        assert_eq!(shape("layer1.0.conv2.weight"), [3, 3, 1, 3]);
        assert_eq!(shape("layer1.1.conv1.weight"), [3, 3, 3, 3]);
        assert_eq!(shape("layer1.1.conv2.weight"), [3, 3, 3, 3]);
        assert_eq!(shape("layer1.1.bn2.weight"), [3]);
        assert_eq!(shape("fc.weight"), [3, 5]);
        for (p, x) in c.graph.params().iter().zip(&c.tensors) {
            assert_eq!(x.shape(), p.dims.as_slice(), "{}", p.name);
        }
        // Kept weights are copied exactly: new index (in, out) = old (keep[..][in], keep[..][out]).
        let old = |name: &str, ix: &[usize]| t[at(&g, name)][IxDyn(ix)];
        let new = |name: &str, ix: &[usize]| c.tensors[at(&c.graph, name)][IxDyn(ix)];
        assert_eq!(new("layer1.0.conv2.weight", &[2, 1, 0, 1]), old("layer1.0.conv2.weight", &[2, 1, 1, 2]));
        assert_eq!(new("layer1.1.conv1.weight", &[0, 2, 2, 1]), old("layer1.1.conv1.weight", &[0, 2, 3, 1]));
        assert_eq!(new("layer1.1.bn2.running_mean", &[1]), old("layer1.1.bn2.running_mean", &[2]));
        assert_eq!(new("fc.weight", &[2, 4]), old("fc.weight", &[3, 4]));
        assert_eq!(c.tensors[at(&c.graph, "fc.bias")], t[at(&g, "fc.bias")]);
    }

    #[test]
    fn depthwise_filters_and_flatten_rows_follow_their_groups() {
        let g = inverted();
        let t = tensors(&g, 2);
        let mut keep = groups(&g).keep_all();
        keep[1] = vec![1, 6]; // stem + project: 2 of 8; the dense layer reads 36 positions of each
        keep[2] = (0..24).filter(|j| j % 4 == 0).collect(); // expand + depthwise: 6 of 24
        let c = cut(&g, &t, &keep).unwrap();
        let at = |gr: &Graph, name: &str| gr.param_named(name).unwrap();
        assert_eq!(c.tensors[at(&c.graph, "dw.weight")].shape(), [3, 3, 1, 6]);
        assert_eq!(c.graph.find("dw").unwrap().conv().unwrap().groups, 6);
        assert_eq!(c.tensors[at(&c.graph, "project.weight")].shape(), [1, 1, 6, 2]);
        assert_eq!(c.tensors[at(&c.graph, "expand.weight")].shape(), [1, 1, 2, 6]);
        let (fc_old, fc_new) = (&t[at(&g, "fc.weight")], &c.tensors[at(&c.graph, "fc.weight")]);
        assert_eq!(fc_new.shape(), [72, 3]);
        // Position 35, kept channel 1 (old channel 6): old row 35 * 8 + 6, new row 35 * 2 + 1.
        assert_eq!(fc_new.index_axis(Axis(0), 71), fc_old.index_axis(Axis(0), 286));
        assert_eq!(c.tensors[at(&c.graph, "dw.weight")][[1, 2, 0, 5]], t[at(&g, "dw.weight")][[1, 2, 0, 20]]);
    }

    #[test]
    fn the_mask_zeroes_producers_only() {
        let g = residual();
        let t = tensors(&g, 3);
        let mut keep = groups(&g).keep_all();
        keep[1] = vec![0, 1, 3];
        let m = mask_twin(&g, &t, &keep).unwrap();
        for (p, (a, b)) in g.params().iter().zip(t.iter().zip(&m)) {
            assert_eq!(a.shape(), b.shape());
            let producer = ["conv1.weight", "bn1.weight", "bn1.bias", "layer1.0.conv2.weight", "layer1.0.bn2.weight", "layer1.0.bn2.bias"]
                .contains(&p.name.as_str())
                || p.name.starts_with("layer1.1.conv2.")
                || p.name == "layer1.1.bn2.weight"
                || p.name == "layer1.1.bn2.bias";
            let last = a.ndim() - 1;
            for (j, (sa, sb)) in a.axis_iter(Axis(last)).zip(b.axis_iter(Axis(last))).enumerate() {
                if producer && j == 2 {
                    assert!(sb.iter().all(|&x| x == 0.0), "{} channel 2", p.name);
                } else {
                    assert_eq!(sa, sb, "{} slice {j}", p.name);
                }
            }
        }
    }

    #[test]
    fn bad_selections_name_the_group_and_the_value() {
        let g = residual();
        let t = tensors(&g, 4);
        let gs = groups(&g);
        let mut keep = gs.keep_all();
        let err = |k: &[Vec<usize>]| cut(&g, &t, k).unwrap_err().to_string();
        assert!(err(&keep[..4]).contains("4 lists") && err(&keep[..4]).contains("(5)"));
        keep[2] = vec![];
        assert!(err(&keep).contains("group 2 (layer1.0.conv1)"), "{}", err(&keep));
        keep[2] = vec![2, 1];
        assert!(err(&keep).contains("strictly increasing (2 then 1)"), "{}", err(&keep));
        keep[2] = vec![0, 3];
        assert!(err(&keep).contains("index 3 is out of range: the group has 3 channels"), "{}", err(&keep));
        keep[2] = vec![0];
        keep[4] = vec![0, 1];
        let e = err(&keep);
        assert!(e.contains("group 4 (fc)") && e.contains("'2 of 5'") && e.contains("network output"), "{e}");
        let e = cut(&g, &t[1..], &gs.keep_all()).unwrap_err().to_string();
        assert!(e.contains("tensor list") && e.contains(&format!("({})", g.params().len())), "{e}");
        let mut bad = t.clone();
        bad[0] = ArrayD::zeros(IxDyn(&[3, 3, 2, 5]));
        let e = mask_twin(&g, &bad, &gs.keep_all()).unwrap_err().to_string();
        assert!(e.contains("conv1.weight") && e.contains("[3, 3, 2, 5]") && e.contains("[3, 3, 2, 4]"), "{e}");
    }

    /// The masked twin and the physical variant of `keep` give the same logits in both BN
    /// modes (to f64 rounding), and both differ from the unpruned network's.
    fn twin_equals_cut(g: &Graph, keep: &[Vec<usize>], seed: u64) {
        use reference::{logits, BnMode};
        let t = tensors(g, seed);
        let [h, w, c] = g.input_dims();
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 100);
        let x = ArrayD::from_shape_simple_fn(IxDyn(&[3, h, w, c]), || rng.random_range(-1.0..1.0));
        let m = mask_twin(g, &t, keep).unwrap();
        let p = cut(g, &t, keep).unwrap();
        for mode in [BnMode::Running, BnMode::Batch] {
            let (masked, physical, full) = (logits(g, &m, &x, mode), logits(&p.graph, &p.tensors, &x, mode), logits(g, &t, &x, mode));
            let scale = full.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            let err = masked.iter().zip(&physical).fold(0.0f64, |a, (u, v)| a.max((u - v).abs()));
            assert!(err <= 1e-12 * scale, "{mode:?}: masked and physical differ by {err} (logits up to {scale})");
            let moved = masked.iter().zip(&full).fold(0.0f64, |a, (u, v)| a.max((u - v).abs()));
            assert!(moved > 1e-3 * scale, "{mode:?}: pruning changed nothing ({moved})");
        }
    }

    #[test]
    fn physical_equals_masked_on_a_residual_coupled_group() {
        let g = residual();
        let mut keep = groups(&g).keep_all();
        keep[1] = vec![0, 3]; // the stem, both blocks' conv2 and the adds
        keep[3] = vec![0, 2]; // block 1's interior
        twin_equals_cut(&g, &keep, 11);
    }

    #[test]
    fn physical_equals_masked_on_an_inverted_residual() {
        let g = inverted();
        let mut keep = groups(&g).keep_all();
        keep[1] = vec![1, 2, 5, 7]; // stem + project, through the add and the flatten rows
        keep[2] = (0..24).filter(|j| j % 3 != 0).collect(); // expand + depthwise
        twin_equals_cut(&g, &keep, 12);
    }

    #[test]
    fn physical_equals_masked_on_resnet20_and_mobilenetv2_pruned_by_l1() {
        use crate::prune::{full_selection, keep_sets, Plan, Schedule, ScoreContext};
        for (i, form) in [Form::Resnet20Cifar, Form::Mobilenetv2Cifar].into_iter().enumerate() {
            let seed = 20 + i as u64;
            let arch = Arch::new(form, 0.25, 1 + 2 * i, 5).unwrap().with_input(8, 8).unwrap();
            let net = Network { tensors: tensors32(&arch.graph().unwrap(), seed), ..Network::init(&arch, 0) };
            let kept = keep_sets(&net, &Plan::new("l1", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap();
            let keep = full_selection(&net, &kept).unwrap();
            let (g, gs) = (&net.graph, groups(&net.graph));
            // Residual-coupled groups (those with more than one producing conv) are pruned.
            assert!(gs.all().iter().zip(&keep).any(|(grp, k)| k.len() < grp.channels && grp.members.iter().filter(|m| matches!(m, Member::Out(_))).count() > 1));
            twin_equals_cut(g, &keep, seed);
        }
    }
}
