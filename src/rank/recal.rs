//! BN recalibration: re-estimate every batch norm's running mean and variance on training
//! batches, because pruning shifts the statistics the saved ones were measured on.
//!
//! Semantics are PyTorch's train mode with `momentum=None` (a cumulative average), i.e.
//! `model.train(); with torch.no_grad(): for x in batches: model(x)` after resetting the
//! running statistics: in every forward pass each BN normalises with the **current batch's**
//! statistics (not the running ones), and the running statistics become the plain average
//! over the batches of the batch means and of the **unbiased** batch variances
//! (`var * m / (m - 1)`, `m = B * H * W`). Gamma, beta and all weights are unchanged.
//!
//! The statistics program takes the images and the trainable tensors (the parameter table
//! without the running statistics, in table order), runs the graph's forward pass
//! in training mode ([`emit::forward`] in [`Mode::Train`]) and returns, per BN, the batch
//! mean and the biased batch variance of its input (the conv output, bias included).

use std::time::Instant;

use crate::data::{Batches, Dataset, LastBatch};
use crate::error::{Error, Result};
use crate::hlo::{Builder, DType, Value};
use crate::lower::Lowering;
use crate::model::emit::{self, Mode};
use crate::graph::{NodeId, Op, Role};
use crate::model::{Arch, Network};
use crate::pjrt::{Buffer, Executable};
use crate::runtime::Session;

/// Seed of the order the recalibration batches are drawn in.
pub const RECAL_SEED: u64 = 0x5245_4341_4c31; // "RECAL1"

/// The statistics program's text: arguments images `[B, H, W, C]` then the trainable tensors
/// in table order; outputs per batch norm (graph order) mean `[c]` and biased variance `[c]`
/// (f64 for an f64 program, else f32).
pub fn bn_stats_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<String> {
    arch.validate()?;
    if !arch.batch_norm {
        return Err(Error::invalid("architecture", arch.describe(), "it has no batch norm to recalibrate"));
    }
    if batch < 2 {
        return Err(Error::invalid("recalibration batch", batch, "batch statistics need a batch of at least 2"));
    }
    let out_dt = if dtype == DType::F64 { DType::F64 } else { DType::F32 };
    let g = arch.graph()?;
    let mut b = Builder::new();
    let (x, args) = emit::declare(&mut b, &g, batch, dtype, Mode::Train)?;
    let f = emit::forward(&mut b, &g, &x, &args, Mode::Train, plan)?;
    let mut outs: Vec<Value> = Vec::new();
    for cache in f.bn.iter().flatten() {
        outs.push(b.convert(&cache.mean, out_dt));
        outs.push(b.convert(&cache.var, out_dt));
    }
    Ok(b.finish(&outs.iter().collect::<Vec<_>>()))
}

/// Per batch norm (graph order), the batch mean and biased batch variance of each channel.
pub type BatchStats = Vec<(Vec<f64>, Vec<f64>)>;

/// The statistics program compiled for one network, its parameters on the device.
pub struct BnStats {
    session: Session,
    exe: Executable,
    params: Vec<Buffer>,
    arch: Arch,
    pub batch: usize,
    dtype: DType,
}

impl BnStats {
    pub fn new(session: &Session, net: &Network, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Self> {
        let text = bn_stats_program(&net.arch, batch, dtype, plan)?;
        let exe = session.client.compile(&text)?;
        let params = net
            .graph
            .params()
            .iter()
            .zip(&net.tensors)
            .filter(|(p, _)| p.is_trainable())
            .map(|(_, t)| session.upload_tensor(t, dtype))
            .collect::<Result<Vec<_>>>()?;
        Ok(BnStats { session: session.clone(), exe, params, arch: net.arch.clone(), batch, dtype })
    }

    /// The batch statistics of one batch of exactly `batch` NHWC images.
    pub fn run(&self, images: &[f32]) -> Result<BatchStats> {
        let [h, w, c] = self.arch.input;
        let input = self.session.upload(images, &[self.batch as i64, h as i64, w as i64, c as i64], self.dtype)?;
        let mut args: Vec<&Buffer> = vec![&input];
        args.extend(self.params.iter());
        let out = self.exe.execute(&args)?;
        let host = |b: &Buffer| -> Result<Vec<f64>> {
            if self.dtype == DType::F64 {
                b.to_host::<f64>()
            } else {
                Ok(b.to_host::<f32>()?.into_iter().map(f64::from).collect())
            }
        };
        out.chunks_exact(2).map(|p| Ok((host(&p[0])?, host(&p[1])?))).collect()
    }
}

/// What a recalibration did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Recalibration {
    pub batches: usize,
    pub batch: usize,
    pub seconds: f64,
}

/// A copy of `net` whose BN running statistics are re-estimated on `batches` batches of
/// `batch` images of `data` (normalised, drawn in a seeded shuffled order, cycling through
/// epochs when `data` is short), with the semantics in the module docs. A network without
/// BN is returned unchanged (0 batches).
pub fn recalibrate(
    session: &Session,
    net: &Network,
    data: &Dataset,
    batches: usize,
    batch: usize,
    dtype: DType,
    plan: &[Lowering],
) -> Result<(Network, Recalibration)> {
    let t = Instant::now();
    if !net.arch.batch_norm || batches == 0 {
        return Ok((net.clone(), Recalibration { batches: 0, batch: 0, seconds: 0.0 }));
    }
    if data.n < 2 {
        return Err(Error::invalid(
            "recalibration data",
            format!("{} ({} images)", data.name, data.n),
            "BN recalibration needs at least 2 training images",
        ));
    }
    let bs = batch.min(data.n).max(2);
    let stats = BnStats::new(session, net, bs, dtype, plan)?;
    let g = &net.graph;
    let bns: Vec<NodeId> = g.nodes().iter().filter(|n| matches!(n.op, Op::BatchNorm)).map(|n| n.id).collect();
    let mut sums: Vec<(Vec<f64>, Vec<f64>)> = bns.iter().map(|&id| (vec![0.0; g.node(id).channels()], vec![0.0; g.node(id).channels()])).collect();
    let mut done = 0;
    let mut epoch = 0;
    while done < batches {
        for b in Batches::new(data, bs, LastBatch::Drop)?.shuffled(RECAL_SEED, epoch) {
            for (i, (m, v)) in stats.run(&b.images)?.into_iter().enumerate() {
                let d = &g.node(bns[i]).dims;
                let count = (bs * d[0] * d[1]) as f64;
                let unbias = count / (count - 1.0).max(1.0);
                sums[i].0.iter_mut().zip(&m).for_each(|(s, x)| *s += x);
                sums[i].1.iter_mut().zip(&v).for_each(|(s, x)| *s += x * unbias);
            }
            done += 1;
            if done == batches {
                break;
            }
        }
        epoch += 1;
    }
    let mut out = net.clone();
    for (&id, (m, v)) in bns.iter().zip(sums) {
        let mean = g.param_index(id, Role::RunningMean).expect("a batch norm has running statistics");
        let var = g.param_index(id, Role::RunningVar).expect("a batch norm has running statistics");
        out.tensors[mean] = m.iter().map(|x| (x / done as f64) as f32).collect::<ndarray::Array1<f32>>().into_dyn();
        out.tensors[var] = v.iter().map(|x| (x / done as f64) as f32).collect::<ndarray::Array1<f32>>().into_dyn();
    }
    Ok((out, Recalibration { batches: done, batch: bs, seconds: t.elapsed().as_secs_f64() }))
}
