//! The features program: the inference program with a second output, the penultimate
//! activations (the input of the last dense layer: the flattened conv features when the head
//! has no hidden layer, else the last hidden layer after its ReLU).
//!
//! Arguments are exactly the inference program's ([`emit::folded_dims`](crate::model::emit::folded_dims)); outputs are the
//! logits `[B, classes]` and the features `[B, d]`, both f32.

use ndarray::Array2;

use super::measure::Probe;
use crate::data::{Batches, Dataset, LastBatch};
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::program::{self, Program};
use crate::model::{Arch, Network};
use crate::runtime::{CompiledModel, Session};

/// Width of the penultimate features of `arch`: what its last dense layer reads.
///
/// Panics: `arch` does not build (a loaded or constructed [`Arch`] always does).
pub fn feature_dim(arch: &Arch) -> usize {
    let g = arch.graph().expect("a validated Arch builds its graph");
    g.node(g.output().inputs[0]).dims.iter().product()
}

/// Builds the features program of `arch` for batches of `batch` in `dtype`, conv `i`
/// lowered as `plan[i]`. `Program::output` is the logits' shape.
pub fn features_program(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    program::inference_with_features(arch, batch, dtype, plan)
}

/// A compiled features program with one network's weights on the device.
pub struct FeatureModel {
    model: CompiledModel,
}

impl FeatureModel {
    pub fn new(session: &Session, net: &Network, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Self> {
        let prog = features_program(&net.arch, batch, dtype, plan)?;
        Ok(FeatureModel { model: CompiledModel::from_program(session, net, batch, dtype, plan, &prog)? })
    }

    /// Replaces the weights (same architecture), e.g. after BN recalibration.
    pub fn set_weights(&mut self, net: &Network) -> Result<()> {
        self.model.set_weights(net)
    }

    /// Logits and features of every image of `data` (already normalised) as a [`Probe`].
    pub fn probe(&self, data: &Dataset) -> Result<Probe> {
        let arch = &self.model.arch;
        if data.n == 0 {
            return Err(Error::invalid("probe set", format!("{} (0 images)", data.name), "score on at least a few labelled images"));
        }
        if data.classes != arch.classes {
            return Err(Error::invalid(
                "dataset",
                format!("{} ({} classes)", data.name, data.classes),
                format!("the candidate has {} outputs; rank candidates on the dataset they were trained for", arch.classes),
            ));
        }
        let (k, d) = (arch.classes, feature_dim(arch));
        let mut logits = Vec::with_capacity(data.n * k);
        let mut feats = Vec::with_capacity(data.n * d);
        for b in Batches::new(data, self.model.batch, LastBatch::Pad)? {
            let input = self.model.upload_input(&b.images)?;
            let out = self.model.run_outputs(&input)?;
            if out.len() != 2 {
                return Err(Error::PjrtApi(format!("the features program returned {} outputs, expected 2", out.len())));
            }
            let l: Vec<f32> = out[0].to_host()?;
            let f: Vec<f32> = out[1].to_host()?;
            logits.extend(l[..b.valid * k].iter().map(|&v| v as f64));
            feats.extend(f[..b.valid * d].iter().map(|&v| v as f64));
        }
        let logits = Array2::from_shape_vec((data.n, k), logits).expect("n x classes");
        let feats = Array2::from_shape_vec((data.n, d), feats).expect("n x d");
        Probe::new(feats, logits, data.labels.iter().map(|&l| l as usize).collect(), data.classes)
    }
}
