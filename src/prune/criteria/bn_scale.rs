//! `bn-scale`: |gamma| of each channel's batch norm (Liu et al., "Network Slimming", 2017).
//! A channel whose BN scale is near zero contributes little after normalisation.

use crate::error::{Error, Result};
use crate::model::Vgg;
use crate::prune::criterion::{Criterion, Needs, ScoreContext};

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
    fn scores(&self, v: &Vgg, _: &ScoreContext) -> Result<Vec<Vec<f64>>> {
        v.convs
            .iter()
            .map(|c| match &c.bn {
                Some(bn) => Ok(bn.gamma.iter().map(|&g| (g as f64).abs()).collect()),
                None => Err(Error::invalid(
                    "criterion",
                    "bn-scale",
                    format!("the model ({}) has no batch norm; use l1, l2, fpgm or random", v.arch.describe()),
                )),
            })
            .collect()
    }
}
