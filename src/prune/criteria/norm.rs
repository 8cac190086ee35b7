//! `l1` and `l2`: the norm of each filter's weights (Li et al., "Pruning Filters for
//! Efficient ConvNets", 2017). Small filters produce small outputs and go first.

use super::per_filter;
use crate::error::Result;
use crate::model::Vgg;
use crate::prune::criterion::{Criterion, Needs, ScoreContext};

pub struct L1;
pub struct L2;

impl Criterion for L1 {
    fn name(&self) -> &'static str {
        "l1"
    }
    fn about(&self) -> &'static str {
        "sum of |w| over each filter"
    }
    fn needs(&self) -> Needs {
        Needs::Weights
    }
    fn scores(&self, v: &Vgg, _: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        Ok(per_filter(v, |f| f.iter().map(|&w| (w as f64).abs()).sum()))
    }
}

impl Criterion for L2 {
    fn name(&self) -> &'static str {
        "l2"
    }
    fn about(&self) -> &'static str {
        "Euclidean norm of each filter"
    }
    fn needs(&self) -> Needs {
        Needs::Weights
    }
    fn scores(&self, v: &Vgg, _: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        Ok(per_filter(v, |f| f.iter().map(|&w| (w as f64) * (w as f64)).sum::<f64>().sqrt()))
    }
}
