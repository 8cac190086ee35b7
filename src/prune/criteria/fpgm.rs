//! `fpgm`: filter pruning via the geometric median (He et al., 2019). The filters nearest
//! the geometric median of their layer are the most replaceable by the others. A filter's
//! score is the sum of its Euclidean distances to the other filters of the layer, whose
//! minimiser is the geometric median; the lowest scores are pruned first.

use ndarray::{Array2, ArrayViewD};

use crate::prune::criterion::{Criterion, Needs, WeightRule};

pub struct Fpgm;

impl Criterion for Fpgm {
    fn name(&self) -> &'static str {
        "fpgm"
    }
    fn about(&self) -> &'static str {
        "sum of distances to the layer's other filters (near the geometric median = redundant)"
    }
    fn needs(&self) -> Needs {
        Needs::Weights
    }
    fn weight_rule(&self) -> Option<WeightRule> {
        Some(WeightRule::Filters(fpgm))
    }
}

/// Each filter's summed Euclidean distance to the other filters of `w` (output channels on
/// the last axis: HWIO kernels, `[in, out]` weights).
fn fpgm(w: ArrayViewD<f32>) -> Vec<f64> {
    let n = w.shape()[w.ndim() - 1];
    let per = w.len() / n;
    // [per, out] row-major is the tensor flattened; transpose to one row per filter.
    let k = w.mapv(f64::from).into_shape_with_order((per, n)).expect("an owned array is contiguous");
    let f: Array2<f64> = k.t().to_owned();
    // Pairwise distances through the Gram matrix: |a-b|^2 = |a|^2 + |b|^2 - 2ab.
    let g = f.dot(&f.t());
    (0..n)
        .map(|a| (0..n).filter(|&b| b != a).map(|b| (g[[a, a]] + g[[b, b]] - 2.0 * g[[a, b]]).max(0.0).sqrt()).sum())
        .collect()
}
