//! LEEP (Nguyen et al. 2020) on the candidate's own softmax outputs.
//!
//! With `theta(x)` the softmax over the network's outputs `z`, the empirical joint is
//! `P(y, z) = 1/n sum_{i: y_i = y} theta(x_i)_z`, the conditional `P(y | z) = P(y, z) / P(z)`,
//! and the score `1/n sum_i log sum_z P(y_i | z) theta(x_i)_z` (at most 0; higher is better).

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::rank::measure::{Measure, Probe};

pub struct Leep;

impl Measure for Leep {
    fn name(&self) -> &'static str {
        "leep"
    }
    fn about(&self) -> &'static str {
        "LEEP: log expected empirical prediction from the candidate's softmax outputs"
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        Ok(leep(softmax(p.logits.view()).view(), &p.labels, p.classes))
    }
}

/// Row-wise softmax.
pub fn softmax(logits: ArrayView2<f64>) -> Array2<f64> {
    let mut out = logits.to_owned();
    for mut row in out.rows_mut() {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
    out
}

/// LEEP of the probability rows `theta` `[n, z]` (each sums to 1) against `labels`.
pub fn leep(theta: ArrayView2<f64>, labels: &[usize], classes: usize) -> f64 {
    let (n, z) = theta.dim();
    let mut joint = Array2::<f64>::zeros((classes, z));
    for (row, &y) in theta.rows().into_iter().zip(labels) {
        joint.row_mut(y).scaled_add(1.0 / n as f64, &row);
    }
    let pz = joint.sum_axis(ndarray::Axis(0));
    let cond = Array2::from_shape_fn((classes, z), |(y, k)| if pz[k] > 0.0 { joint[[y, k]] / pz[k] } else { 0.0 });
    let mut total = 0.0;
    for (row, &y) in theta.rows().into_iter().zip(labels) {
        let e: f64 = row.iter().zip(cond.row(y)).map(|(t, c)| t * c).sum();
        total += e.max(f64::MIN_POSITIVE).ln();
    }
    total / n as f64
}
