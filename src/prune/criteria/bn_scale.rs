//! `bn-scale`: |gamma| of each channel's batch norm (Liu et al., "Network Slimming", 2017).
//! A channel whose BN scale is near zero contributes little after normalisation.

use ndarray::ArrayViewD;

use crate::prune::criterion::{Criterion, Needs, WeightRule};

pub struct BnScale;

impl Criterion for BnScale {
    fn name(&self) -> &'static str {
        "bn-scale"
    }
    fn about(&self) -> &'static str {
        "|gamma| of the batch norm after each conv (models with BN only)"
    }
    fn needs(&self) -> Needs {
        Needs::Weights
    }
    fn weight_rule(&self) -> Option<WeightRule> {
        Some(WeightRule::Gamma(abs_gamma))
    }
}

/// `|gamma|` of each channel.
fn abs_gamma(gamma: ArrayViewD<f32>) -> Vec<f64> {
    gamma.iter().map(|&g| (g as f64).abs()).collect()
}
