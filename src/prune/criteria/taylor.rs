//! `taylor`: first-order Taylor importance of each filter group (Molchanov et al.,
//! "Importance Estimation for Neural Network Pruning", CVPR 2019). The loss change from
//! removing output channel `j` of a conv is estimated to first order by
//! `(sum over the group's parameters of w * dL/dw)^2`, the group being the kernel slice
//! `[:, :, :, j]`, bias `j` and, with batch norm, gamma `j` and beta `j`. The squared sums
//! are accumulated batch by batch and averaged over the batches, as in the paper.
//!
//! The gradients come from [`grad_program`](crate::train::grad_program) (training-mode
//! forward with batch statistics, hand-written backward) in f32, compiled once; the
//! parameters are uploaded once and each batch's gradients downloaded and reduced on the
//! host in f64.

use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::model::Vgg;
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
        let batch = if ctx.batch == 0 { 32 } else { ctx.batch }.min(count);
        let dtype = DType::F32;
        let program = grad_program(arch, batch, dtype, &default_plan(arch))?;
        let exe = session.client.compile(&program.text)?;
        let (params, _) = host_state(v)?;
        let weights = params
            .iter()
            .zip(&program.params)
            .map(|(data, s)| session.upload(data, &s.shape.dims, dtype))
            .collect::<Result<Vec<_>>>()?;
        let np = program.params.len();
        let per_conv = if arch.batch_norm { 4 } else { 2 };
        let mut acc: Vec<Vec<f64>> = arch.channels.iter().map(|&n| vec![0.0; n]).collect();
        let batches = count / batch;
        for b in 0..batches {
            let x = &images[b * batch * per..(b + 1) * batch * per];
            let y = &labels[b * batch..(b + 1) * batch];
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
                a.iter_mut().zip(&group).for_each(|(s, &t)| *s += t * t);
            }
        }
        let inv = 1.0 / batches as f64;
        Ok(acc.into_iter().map(|a| a.into_iter().map(|s| s * inv).collect()).collect())
    }
}
