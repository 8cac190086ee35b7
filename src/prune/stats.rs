//! The statistics program behind the data criteria: for a batch of images, per conv and per
//! output channel, the sum of the post-ReLU activations and the number of exact zeros.
//! The inference forward pass of the network's graph ([`emit::forward`], plain convolutions,
//! BN folded) with the statistics read from the value after each conv's activation; run
//! batch by batch over every image given; the host accumulates in f64.

use std::collections::btree_map::{BTreeMap, Entry};
use std::ops::Range;

use crate::data::even_batches;
use crate::error::{Error, Result};
use crate::graph::{Graph, NodeId, Op};
use crate::hlo::{Builder, Compare, DType, ReduceOp, Value};
use crate::lower::Lowering;
use crate::model::emit::{self, Mode};
use crate::model::{Arch, Vgg};
use crate::pjrt::Executable;
use crate::prune::criterion::ScoreContext;
use crate::runtime::Session;

/// Activation statistics of one conv's output channels over the images seen.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelStats {
    /// Sum of post-ReLU activations, per channel.
    pub sum: Vec<f64>,
    /// Count of post-ReLU zeros, per channel.
    pub zeros: Vec<f64>,
    /// Spatial positions summed over, per channel: images x H x W.
    pub positions: f64,
}

/// The node whose value is conv `conv`'s activation: following single consumers through a
/// BN to a ReLU or ReLU6 (the conv or its BN when no activation follows).
pub fn activation_of(g: &Graph, conv: NodeId) -> NodeId {
    let mut id = conv;
    while let [next] = g.consumers(id) {
        match g.node(*next).op {
            Op::BatchNorm => id = *next,
            Op::Relu | Op::Relu6 => return *next,
            _ => break,
        }
    }
    id
}

/// The statistics program for `arch` at `batch`: arguments are the inference program's (the
/// input `[B, H, W, C]` then the folded list, f32); outputs are, per conv in order, `sum [C]`
/// and `zeros [C]` (f32) of its activation ([`activation_of`]).
pub fn program(arch: &Arch, batch: usize) -> Result<String> {
    let g = arch.graph()?;
    let mut b = Builder::new();
    let (x, args) = emit::declare(&mut b, &g, batch, DType::F32, Mode::Inference)?;
    let plan = vec![Lowering::Direct; g.convs().count()];
    let f = emit::forward(&mut b, &g, &x, &args, Mode::Inference, &plan)?;
    let mut outs: Vec<Value> = Vec::new();
    for (conv, _) in g.convs() {
        let y = f.value(activation_of(&g, conv.id));
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
pub fn collect(v: &Vgg, ctx: &ScoreContext, criterion: &str) -> Result<Vec<ChannelStats>> {
    let (session, images, count) = ctx.data(criterion)?;
    let per: usize = v.arch.input.iter().product();
    if images.len() != count * per {
        return Err(Error::invalid(
            "images",
            format!("{} values", images.len()),
            format!("give {count} NHWC images of {:?} ({} values)", v.arch.input, count * per),
        ));
    }
    run(v, session, images, &even_batches(count, ctx.max_batch()))
}

fn run(v: &Vgg, session: &Session, images: &[f32], batches: &[Range<usize>]) -> Result<Vec<ChannelStats>> {
    let arch = &v.arch;
    let n = arch.channels.len();
    let weights = v
        .inference_weights()
        .iter()
        .map(|(dims, data)| session.upload(data, dims, DType::F32))
        .collect::<Result<Vec<_>>>()?;
    let [h, w, c] = arch.input;
    let per = h * w * c;
    let mut stats: Vec<ChannelStats> = arch
        .channels
        .iter()
        .map(|&ch| ChannelStats { sum: vec![0.0; ch], zeros: vec![0.0; ch], positions: 0.0 })
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
            let (hh, ww) = arch.conv_hw(i);
            s.positions += (batch * hh * ww) as f64;
        }
    }
    Ok(stats)
}
