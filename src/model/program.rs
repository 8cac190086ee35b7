//! The inference program of an [`Arch`]: its graph ([`Arch::graph`]) through the one forward
//! emitter ([`super::emit`]). StableHLO text whose arguments are the input batch and the
//! weights, so one compiled program serves every checkpoint with the same shapes.
//!
//! Argument order: input `[B, H, W, C]`, then the BN-folded parameter table: per conv its
//! kernel `[kh, kw, in/groups, out]` and bias `[out]`, per dense layer its weight `[in, out]`
//! and bias `[out]`, in graph order (the order of [`Network::folded`](super::Network::folded)
//! and of [`emit::folded_dims`]). All in the program's dtype; the single output is the logits
//! `[B, classes]` in f32.

use super::arch::Arch;
use super::emit;
pub use super::emit::Program;
use crate::error::Result;
use crate::hlo::DType;
use crate::lower::{LayerShape, Lowering};

/// The shape of every conv layer of `arch` at `batch` (what the tuner keys on).
pub fn layer_shapes(arch: &Arch, batch: usize, dtype: DType) -> Result<Vec<LayerShape>> {
    Ok(emit::layer_shapes(&arch.graph()?, batch, dtype))
}

/// Builds the inference program of `arch` for batches of `batch` in `dtype`, lowering conv
/// `i` as `plan[i]` ([`emit::inference`] of its graph).
pub fn inference(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    emit::inference(&arch.graph()?, batch, dtype, plan)
}

/// Like [`inference`], with a second output: the penultimate features `[B, d]` (f32), the
/// input of the last dense layer.
pub fn inference_with_features(arch: &Arch, batch: usize, dtype: DType, plan: &[Lowering]) -> Result<Program> {
    emit::inference_with_features(&arch.graph()?, batch, dtype, plan)
}
