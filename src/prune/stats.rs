//! The statistics program behind the data criteria: for a batch of images, per activation
//! (every ReLU and ReLU6 node on a feature map) and per channel, the sum of the activations and
//! the number of exact zeros. The inference forward pass of the network's graph
//! ([`emit::forward`], plain convolutions, BN folded) with the statistics read from each
//! activation's value; run batch by batch over every image given; the host accumulates in
//! f64. [`group_scores`] turns them into one score per channel of every pruned group.

use std::collections::btree_map::{BTreeMap, Entry};
use std::ops::Range;

use crate::data::even_batches;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::hlo::{Builder, Compare, DType, ReduceOp, Value};
use crate::lower::Lowering;
use crate::model::emit::{self, Mode};
use crate::model::{Arch, Network};
use crate::pjrt::Executable;
use crate::prune::criterion::ScoreContext;
use crate::runtime::Session;

/// Activation statistics of one activation node's channels over the images seen.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelStats {
    /// The ReLU or ReLU6 node.
    pub node: NodeId,
    /// Sum of the activations, per channel.
    pub sum: Vec<f64>,
    /// Count of exact zeros, per channel.
    pub zeros: Vec<f64>,
    /// Spatial positions summed over, per channel: images x H x W.
    pub positions: f64,
}

/// Every ReLU and ReLU6 node of `g` on a feature map (not after a dense layer), in graph
/// order.
pub fn activations(g: &Graph) -> Vec<NodeId> {
    g.nodes().iter().filter(|n| matches!(n.op, Op::Relu | Op::Relu6) && n.dims.len() == 3).map(|n| n.id).collect()
}

/// The statistics program for `arch` at `batch`: arguments are the inference program's (the
/// input `[B, H, W, C]` then the folded list, f32); outputs are, per activation node
/// ([`activations`]) in order, `sum [C]` and `zeros [C]` (f32) of its value.
pub fn program(arch: &Arch, batch: usize) -> Result<String> {
    let g = arch.graph()?;
    let mut b = Builder::new();
    let (x, args) = emit::declare(&mut b, &g, batch, DType::F32, Mode::Inference)?;
    let plan = vec![Lowering::Direct; g.convs().count()];
    let f = emit::forward(&mut b, &g, &x, &args, Mode::Inference, &plan)?;
    let mut outs: Vec<Value> = Vec::new();
    for id in activations(&g) {
        let y = f.value(id);
        let sum = b.reduce(y, &[0, 1, 2], ReduceOp::Sum)?;
        let zero = b.constant(0.0, y.shape().clone());
        let one = b.constant(1.0, y.shape().clone());
        let is_zero = b.compare(y, &zero, Compare::Eq)?;
        let z = b.select(&is_zero, &one, &zero)?;
        outs.push(sum);
        outs.push(b.reduce(&z, &[0, 1, 2], ReduceOp::Sum)?);
    }
    Ok(b.finish(&outs.iter().collect::<Vec<_>>()))
}

/// Runs the statistics program over every image of `ctx`: the images are split into
/// near-equal batches of at most `ctx.batch` ([`even_batches`]), each size compiled once,
/// and the sums added on the host, so the statistics are those of all `count` images.
/// `criterion` names the caller in errors.
pub fn collect(net: &Network, ctx: &ScoreContext, criterion: &str) -> Result<Vec<ChannelStats>> {
    let (session, images, count) = ctx.data(criterion)?;
    let per: usize = net.arch.input.iter().product();
    if images.len() != count * per {
        return Err(Error::invalid(
            "images",
            format!("{} values", images.len()),
            format!("give {count} NHWC images of {:?} ({} values)", net.arch.input, count * per),
        ));
    }
    run(net, session, images, &even_batches(count, ctx.max_batch()))
}

/// One score per channel of every pruned group of `net` ([`targets`](super::targets)): each
/// activation node of the group scored by `score` from its statistics, combined as the weight
/// criteria combine their members ([`combine`](super::combine): each member divided by its
/// mean, then averaged). On VGG-16 a group has one activation (its conv's ReLU).
///
/// Errors: pruned groups that carry no ReLU (e.g. MobileNetV2's linear bottlenecks) and are
/// not in `skip`, all named at once, with the `skip` list that clears them.
pub fn group_scores(net: &Network, st: &[ChannelStats], criterion: &str, skip: &[usize], score: impl Fn(&ChannelStats) -> Vec<f64>) -> Result<Vec<Vec<f64>>> {
    let g = &net.graph;
    let gs = crate::graph::groups::groups(g);
    let ids = super::targets(g, &gs);
    let members: Vec<Vec<Vec<f64>>> =
        ids.iter().map(|&id| st.iter().filter(|s| gs.all()[id].nodes.contains(&s.node)).map(&score).collect()).collect();
    let bare: Vec<usize> = members.iter().enumerate().filter(|(i, m)| m.is_empty() && !skip.contains(i)).map(|(i, _)| i).collect();
    if !bare.is_empty() {
        let names: Vec<String> = bare.iter().map(|&i| format!("{i} ({})", gs.all()[ids[i]].name(g))).collect();
        return Err(Error::invalid(
            "criterion",
            criterion,
            format!(
                "pruned groups {} carry no ReLU output to take statistics of; skip them (--skip {}, or skip: {bare:?} in a suite) or use a weight criterion (l1, l2, fpgm, bn-scale, random)",
                names.join(", "),
                bare.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
            ),
        ));
    }
    // A skipped group keeps every channel whatever its scores: equal ones where it has no ReLU.
    Ok(members
        .iter()
        .zip(&ids)
        .map(|(m, &id)| if m.is_empty() { vec![1.0; gs.all()[id].channels] } else { super::combine(m, gs.all()[id].channels) })
        .collect())
}

fn run(net: &Network, session: &Session, images: &[f32], batches: &[Range<usize>]) -> Result<Vec<ChannelStats>> {
    let arch = &net.arch;
    let g = &net.graph;
    let acts = activations(g);
    let n = acts.len();
    let weights = net
        .folded()?
        .iter()
        .map(|t| session.upload_tensor(t, DType::F32))
        .collect::<Result<Vec<_>>>()?;
    let [h, w, c] = arch.input;
    let per = h * w * c;
    let mut stats: Vec<ChannelStats> = acts
        .iter()
        .map(|&id| {
            let ch = g.node(id).channels();
            ChannelStats { node: id, sum: vec![0.0; ch], zeros: vec![0.0; ch], positions: 0.0 }
        })
        .collect();
    let mut exes: BTreeMap<usize, Executable> = BTreeMap::new();
    for r in batches {
        let batch = r.len();
        let exe = match exes.entry(batch) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(session.client.compile(&program(arch, batch)?)?),
        };
        let chunk = &images[r.start * per..r.end * per];
        let input = session.upload(chunk, &[batch as i64, h as i64, w as i64, c as i64], DType::F32)?;
        let mut args = vec![&input];
        args.extend(weights.iter());
        let out = exe.execute(&args)?;
        if out.len() != 2 * n {
            return Err(Error::PjrtApi(format!(
                "statistics program returned {} outputs, expected {}",
                out.len(),
                2 * n
            )));
        }
        for (i, s) in stats.iter_mut().enumerate() {
            let sum: Vec<f32> = out[2 * i].to_host()?;
            let zeros: Vec<f32> = out[2 * i + 1].to_host()?;
            s.sum.iter_mut().zip(&sum).for_each(|(a, &b)| *a += b as f64);
            s.zeros.iter_mut().zip(&zeros).for_each(|(a, &b)| *a += b as f64);
            let d = &g.node(s.node).dims;
            s.positions += (batch * d[0] * d[1]) as f64;
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Form;

    /// Host statistics of every activation of `net`: channel `j` of activation `k` sums to
    /// `(k + 1) * (j + 1)`, over 10 positions.
    fn fake(net: &Network) -> Vec<ChannelStats> {
        activations(&net.graph)
            .into_iter()
            .enumerate()
            .map(|(k, node)| {
                let c = net.graph.node(node).channels();
                ChannelStats { node, sum: (0..c).map(|j| ((k + 1) * (j + 1)) as f64).collect(), zeros: vec![0.0; c], positions: 10.0 }
            })
            .collect()
    }

    #[test]
    fn a_residual_group_averages_the_relus_on_its_channels() {
        let arch = Arch::new(Form::Resnet20Cifar, 0.25, 1, 10).unwrap().with_input(8, 8).unwrap();
        let net = Network::init(&arch, 1);
        let st = fake(&net);
        let s = group_scores(&net, &st, "mean-activation", &[], |c| c.sum.iter().map(|x| x / c.positions).collect()).unwrap();
        assert_eq!(s.len(), 12, "3 residual stages + 9 inner convs");
        // Every member's scores are proportional to j + 1: normalised, each is (j + 1) / mean.
        let c = s[0].len();
        let mean = (c + 1) as f64 / 2.0;
        assert!(s.iter().all(|g| g.iter().enumerate().all(|(j, &x)| (x - (j + 1) as f64 / (g.len() + 1) as f64 * 2.0).abs() < 1e-12)));
        assert!((s[0][c - 1] - c as f64 / mean).abs() < 1e-12);
    }

    #[test]
    fn a_group_without_relu_is_refused_with_its_index() {
        let arch = Arch::new(Form::Mobilenetv2Cifar, 0.125, 1, 10).unwrap().with_input(8, 8).unwrap();
        let net = Network::init(&arch, 1);
        let e = group_scores(&net, &fake(&net), "apoz", &[], |c| c.zeros.clone()).unwrap_err().to_string();
        assert!(e.contains("'apoz'") && e.contains("carry no ReLU") && e.contains("weight criterion"), "{e}");
        // Every linear bottleneck is named at once, with the skip list that clears them all.
        let skip: Vec<usize> = e.split("skip: [").nth(1).unwrap().split(']').next().unwrap().split(", ").map(|x| x.parse().unwrap()).collect();
        assert!(skip.len() > 1 && e.contains("1 (features.1.conv.1)"), "{e}");
        let g = &net.graph;
        let st: Vec<ChannelStats> = fake(&net);
        let gs = crate::graph::groups::groups(g);
        let ids = crate::prune::targets(g, &gs);
        for (i, &id) in ids.iter().enumerate() {
            let has_relu = st.iter().any(|s| gs.all()[id].nodes.contains(&s.node));
            assert_eq!(skip.contains(&i), !has_relu, "group {i}");
        }
        // With those groups skipped the criterion scores the rest.
        let s = group_scores(&net, &st, "apoz", &skip, |c| c.zeros.clone()).unwrap();
        assert_eq!(s.len(), ids.len());
    }
}
