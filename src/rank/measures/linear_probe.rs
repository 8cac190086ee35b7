//! Held-out accuracy of a multinomial logistic regression on the features.
//!
//! The probe set is split once, seeded, 70% to fit and 30% to score. Features are
//! standardised with the fitting part's mean and deviation; the model (weights and bias,
//! L2 penalty `1e-3` on the weights) is fitted by Nesterov-accelerated gradient descent
//! with step `1 / L`, `L = lambda_max(X^T X / n) / 2 + penalty`, a bound on the curvature of
//! the mean softmax cross-entropy. Deterministic: no randomness besides the split.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use super::leep::softmax;
use crate::error::Result;
use crate::rank::linalg::{standardize, standardizer};
use crate::rank::measure::{Measure, Probe};

/// Fraction of the probe set used to fit held-out measures.
pub const FIT_FRACTION: f64 = 0.7;
/// Seed of the fit / held-out split.
pub const SPLIT_SEED: u64 = 0x5350_4c49_5431; // "SPLIT1"

pub struct LinearProbe;

impl Measure for LinearProbe {
    fn name(&self) -> &'static str {
        "linear-probe"
    }
    fn about(&self) -> &'static str {
        "held-out accuracy of a logistic regression on the features (70/30 split)"
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        let (fit, held) = p.split(FIT_FRACTION, SPLIT_SEED)?;
        Ok(linear_probe_accuracy(p.features.view(), &p.labels, p.classes, &fit, &held))
    }
}

/// A fitted multinomial logistic regression on standardised features.
#[derive(Clone, Debug)]
pub struct LogisticRegression {
    mean: Array1<f64>,
    std: Array1<f64>,
    /// `[d + 1, classes]`, the last row the bias.
    w: Array2<f64>,
}

fn with_bias(x: ArrayView2<f64>) -> Array2<f64> {
    let (n, d) = x.dim();
    let mut out = Array2::ones((n, d + 1));
    out.slice_mut(s![.., ..d]).assign(&x);
    out
}

impl LogisticRegression {
    /// Fits on the rows of `x` with `labels`, penalty `l2` on the weights, `iters` steps.
    pub fn fit(x: ArrayView2<f64>, labels: &[usize], classes: usize, l2: f64, iters: usize) -> LogisticRegression {
        let (mean, std) = standardizer(x);
        let xb = with_bias(standardize(x, &mean, &std).view());
        let (n, d1) = xb.dim();
        let mut y = Array2::<f64>::zeros((n, classes));
        for (i, &l) in labels.iter().enumerate() {
            y[[i, l]] = 1.0;
        }
        // Largest eigenvalue of X^T X / n by power iteration from a fixed start.
        let gram = xb.t().dot(&xb) / n as f64;
        let mut v = Array1::from_elem(d1, 1.0 / (d1 as f64).sqrt());
        let mut lmax = 1.0;
        for _ in 0..100 {
            let nv = gram.dot(&v);
            lmax = nv.dot(&nv).sqrt();
            if lmax == 0.0 {
                break;
            }
            v = nv / lmax;
        }
        let step = 1.0 / (0.5 * lmax.max(1e-12) + l2);
        let mut mask = Array2::<f64>::ones((d1, classes));
        mask.row_mut(d1 - 1).fill(0.0);
        let grad = |w: &Array2<f64>| -> Array2<f64> {
            let p = softmax(xb.dot(w).view());
            xb.t().dot(&(p - &y)) / n as f64 + &(w * &mask) * l2
        };
        let mut w = Array2::<f64>::zeros((d1, classes));
        let mut prev = w.clone();
        for k in 0..iters {
            let mom = k as f64 / (k as f64 + 3.0);
            let look = &w + &((&w - &prev) * mom);
            let g = grad(&look);
            prev = w;
            w = &look - &(g * step);
        }
        LogisticRegression { mean, std, w }
    }

    /// Predicted class of every row of `x`.
    pub fn predict(&self, x: ArrayView2<f64>) -> Vec<usize> {
        let z = with_bias(standardize(x, &self.mean, &self.std).view()).dot(&self.w);
        z.rows()
            .into_iter()
            .map(|r| r.iter().enumerate().fold((0, f64::NEG_INFINITY), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0)
            .collect()
    }
}

/// Accuracy on the `held` rows of a logistic regression fitted on the `fit` rows.
pub fn linear_probe_accuracy(x: ArrayView2<f64>, labels: &[usize], classes: usize, fit: &[usize], held: &[usize]) -> f64 {
    let xf = x.select(Axis(0), fit);
    let yf: Vec<usize> = fit.iter().map(|&i| labels[i]).collect();
    let model = LogisticRegression::fit(xf.view(), &yf, classes, 1e-3, 300);
    let pred = model.predict(x.select(Axis(0), held).view());
    let hits = pred.iter().zip(held).filter(|(p, &i)| **p == labels[i]).count();
    hits as f64 / held.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_a_separable_problem() {
        // Class = which of three directions dominates.
        let x = Array2::from_shape_fn((60, 3), |(i, j)| if j == i % 3 { 2.0 + (i as f64) * 0.01 } else { (i * j % 5) as f64 * 0.1 });
        let labels: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let m = LogisticRegression::fit(x.view(), &labels, 3, 1e-3, 300);
        assert_eq!(m.predict(x.view()), labels);
    }
}
