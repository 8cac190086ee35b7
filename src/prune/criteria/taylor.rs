//! `taylor`: first-order Taylor importance of each channel (Molchanov et al., "Importance
//! Estimation for Neural Network Pruning", CVPR 2019). The loss change from removing channel
//! `j` of a pruned group is estimated to first order by `(sum over the channel's parameters
//! of w * dL/dw)^2`, the parameters being every producer's slice `j` in the group: each conv's
//! kernel `[:, :, :, j]` and bias `j`, each batch norm's gamma `j` and beta `j` (on VGG-16: one
//! conv and its BN; on a residual stage: every conv and BN that writes the shared channels,
//! since removing the channel removes them all). The squared sums
//! are accumulated batch by batch and averaged over the batches, as in the paper, each batch
//! weighted by its share of the images. Every image is used: the images run as
//! `ceil(count / batch)` batches of near-equal size
//! ([`even_batches`](crate::data::even_batches)), so the batch statistics of BN never see a
//! tiny leftover batch; with equal batches the weights are equal.
//!
//! The gradients come from [`grad_program`](crate::train::grad_program) (training-mode
//! forward with batch statistics, hand-written backward) in f32, compiled once; the
//! parameters are uploaded once and each batch's gradients downloaded and reduced on the
//! host in f64.

use std::collections::btree_map::{BTreeMap, Entry};

use crate::data::even_batches;
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::graph::groups::groups;
use crate::graph::{Member, Role};
use crate::model::Network;
use crate::prune::targets;
use crate::pjrt::{Buffer, Executable};
use crate::prune::criterion::{Criterion, Needs, ScoreContext};
use crate::train::{default_plan, grad_program, host_state};

pub struct Taylor;

impl Criterion for Taylor {
    fn name(&self) -> &'static str {
        "taylor"
    }
    fn about(&self) -> &'static str {
        "first-order Taylor importance (sum of w * dL/dw over each filter group)^2, averaged over labelled batches (needs --dataset)"
    }
    fn needs(&self) -> Needs {
        Needs::Gradients
    }
    fn scores(&self, net: &Network, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let (session, images, labels, count) = ctx.labelled_data(self.name())?;
        let arch = &net.arch;
        let [h, w, c] = arch.input;
        let per = h * w * c;
        if images.len() != count * per {
            return Err(Error::invalid(
                "images",
                format!("{} values", images.len()),
                format!("give {count} NHWC images of {:?} ({} values)", arch.input, count * per),
            ));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l < 0 || l as usize >= arch.classes) {
            return Err(Error::invalid("label", bad, format!("labels must lie in 0..{} (the model's classes)", arch.classes)));
        }
        let dtype = DType::F32;
        let plan = default_plan(arch);
        let (params, _) = host_state(net);
        let members = producer_params(net);
        let mut acc: Vec<Vec<f64>> = crate::prune::group_channels(net).iter().map(|&n| vec![0.0; n]).collect();
        // One compiled program and parameter upload per distinct batch size (at most two).
        let mut programs: BTreeMap<usize, (Executable, Vec<Buffer>, usize)> = BTreeMap::new();
        for r in even_batches(count, ctx.max_batch()) {
            let batch = r.len();
            let (exe, weights, np) = match programs.entry(batch) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let program = grad_program(arch, batch, dtype, &plan)?;
                    let exe = session.client.compile(&program.text)?;
                    let weights = params
                        .iter()
                        .zip(&program.params)
                        .map(|(data, s)| session.upload(data, &s.shape.dims, dtype))
                        .collect::<Result<Vec<_>>>()?;
                    e.insert((exe, weights, program.params.len()))
                }
            };
            let np = *np;
            let x = &images[r.start * per..r.end * per];
            let y = &labels[r.clone()];
            let xb = session.upload(x, &[batch as i64, h as i64, w as i64, c as i64], dtype)?;
            let yb = session.client.upload(y, &[batch as i64], &session.device)?;
            let mut args = vec![&xb, &yb];
            args.extend(weights.iter());
            let out = exe.execute(&args)?;
            if out.len() != 1 + np {
                return Err(Error::PjrtApi(format!("the gradient program returned {} outputs, expected {}", out.len(), 1 + np)));
            }
            let mut grads: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
            for (a, ks) in acc.iter_mut().zip(&members) {
                let n = a.len();
                let mut group = vec![0.0f64; n];
                for &k in ks {
                    let g = match grads.entry(k) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => e.insert(out[1 + k].to_host()?),
                    };
                    // Every producer tensor has the channel last: HWIO kernels, [in, out]
                    // weights and [out] vectors alike, so channel = flat index mod n.
                    for (t, (&wt, &gt)) in params[k].iter().zip(g.iter()).enumerate() {
                        group[t % n] += wt as f64 * gt as f64;
                    }
                }
                let share = batch as f64 / count as f64;
                a.iter_mut().zip(&group).for_each(|(s, &t)| *s += share * t * t);
            }
        }
        Ok(acc)
    }
}

/// Per pruned group ([`targets`](crate::prune::targets)), the positions among the trainable
/// parameters (the gradient program's order) of its producers' tensors: each conv, depthwise
/// or dense output's kernel (or weight) and bias, each batch norm's gamma and beta.
fn producer_params(net: &Network) -> Vec<Vec<usize>> {
    let g = &net.graph;
    let trainable: Vec<usize> = g.params().iter().enumerate().filter(|(_, p)| p.is_trainable()).map(|(i, _)| i).collect();
    let pos = |table: usize| trainable.iter().position(|&i| i == table).expect("producer tensors are trainable");
    let gs = groups(g);
    targets(g, &gs)
        .into_iter()
        .map(|id| {
            let mut ks = Vec::new();
            for m in gs.all()[id].members.iter().filter(|m| m.is_producer()) {
                let roles: &[Role] = match m {
                    Member::Norm(_) => &[Role::Gamma, Role::Beta],
                    _ => &[Role::Kernel, Role::Weight, Role::Bias],
                };
                ks.extend(roles.iter().filter_map(|&r| g.param_index(m.node(), r)).map(pos));
            }
            ks
        })
        .collect()
}
