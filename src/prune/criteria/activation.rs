//! `apoz` and `mean-activation`: statistics of each channel's post-ReLU output on images
//! (Hu et al., "Network Trimming", 2016; Molchanov et al., 2017). Both run the statistics
//! program of [`crate::prune::stats`] on the images of the [`ScoreContext`]; a group with
//! several ReLUs (a residual stage) combines them as [`stats::group_scores`] says.

use crate::error::Result;
use crate::model::Network;
use crate::prune::criterion::{Criterion, Needs, ScoreContext};
use crate::prune::stats;

pub struct Apoz;
pub struct MeanActivation;

impl Criterion for Apoz {
    fn name(&self) -> &'static str {
        "apoz"
    }
    fn about(&self) -> &'static str {
        "1 - average percentage of zeros after ReLU on the given images (needs --images)"
    }
    fn needs(&self) -> Needs {
        Needs::Data
    }
    fn scores(&self, net: &Network, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let st = stats::collect(net, ctx, self.name())?;
        stats::group_scores(net, &st, self.name(), ctx.skip, |s| s.zeros.iter().map(|&z| 1.0 - z / s.positions).collect())
    }
}

impl Criterion for MeanActivation {
    fn name(&self) -> &'static str {
        "mean-activation"
    }
    fn about(&self) -> &'static str {
        "mean post-ReLU activation on the given images (needs --images)"
    }
    fn needs(&self) -> Needs {
        Needs::Data
    }
    fn scores(&self, net: &Network, ctx: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        let st = stats::collect(net, ctx, self.name())?;
        stats::group_scores(net, &st, self.name(), ctx.skip, |s| s.sum.iter().map(|&x| x / s.positions).collect())
    }
}
