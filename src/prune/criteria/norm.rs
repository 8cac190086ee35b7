//! `l1` and `l2`: the norm of each filter's weights (Li et al., "Pruning Filters for
//! Efficient ConvNets", 2017). Small filters produce small outputs and go first.

use ndarray::ArrayViewD;

use super::each_filter;
use crate::prune::criterion::{Criterion, Needs, WeightRule};

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
    fn weight_rule(&self) -> Option<WeightRule> {
        Some(WeightRule::Filters(l1))
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
    fn weight_rule(&self) -> Option<WeightRule> {
        Some(WeightRule::Filters(l2))
    }
}

/// Sum of `|w|` over each filter of `w` (output channels on the last axis).
fn l1(w: ArrayViewD<f32>) -> Vec<f64> {
    each_filter(w, |f| f.iter().map(|&x| (x as f64).abs()).sum())
}

/// Euclidean norm of each filter of `w` (output channels on the last axis).
fn l2(w: ArrayViewD<f32>) -> Vec<f64> {
    each_filter(w, |f| f.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>().sqrt())
}
