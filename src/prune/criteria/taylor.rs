//! `taylor`: first-order Taylor importance of each filter group (Molchanov et al.,
//! "Importance Estimation for Neural Network Pruning", CVPR 2019). The loss change from
//! removing output channel `j` of a conv is estimated to first order by
//! `(sum over the group's parameters of w * dL/dw)^2`, the group being the kernel slice
//! `[:, :, :, j]`, bias `j` and, with batch norm, gamma `j` and beta `j`. The squared sums
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
use crate::model::Vgg;
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
    fn scores(&self, v: &Vgg, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let (session, images, labels, count) = ctx.labelled_data(self.name())?;
        let arch = &v.arch;
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
        let (params, _) = host_state(v)?;
        let per_conv = if arch.batch_norm { 4 } else { 2 };
        let mut acc: Vec<Vec<f64>> = arch.channels.iter().map(|&n| vec![0.0; n]).collect();
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
            for (i, a) in acc.iter_mut().enumerate() {
                let n = a.len();
                let mut group = vec![0.0f64; n];
                for k in i * per_conv..(i + 1) * per_conv {
                    let g: Vec<f32> = out[1 + k].to_host()?;
                    // Every tensor of the group has the output channel last: HWIO kernels
                    // and [out] vectors alike, so channel = flat index mod n.
                    for (t, (&wt, &gt)) in params[k].iter().zip(&g).enumerate() {
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
