//! LogME (You et al. 2021): the log marginal evidence of a Bayesian linear model on the
//! features, per class a one-vs-rest 0/1 target, averaged over classes.
//!
//! Model: `y = F w + e`, `w ~ N(0, 1/alpha I)`, `e ~ N(0, 1/beta I)`. With `sigma_j` the
//! eigenvalues of `F^T F` (the squared singular values of `F`) and `x = U^T y` the target in
//! the left singular basis, alpha and beta follow the paper's fixed-point iteration
//! (`gamma = sum sigma / (sigma + t)`, `alpha = gamma / |m|^2`, `beta = (n - gamma) / |y - F m|^2`,
//! `t = alpha / beta`, at most 11 rounds, stop at 1e-3 relative change of `t`), as in the
//! authors' `_fit_fixed_point`. The reported value is the exact evidence per sample at the
//! final `(alpha, beta)`:
//! `d/2 ln alpha + n/2 ln beta - 1/2 sum_j ln(alpha + beta sigma_j) - beta/2 |y - F m|^2
//! - alpha/2 |m|^2 - n/2 ln 2 pi`, the sum over all `d` eigenvalues (zeros included).

use ndarray::{Array1, ArrayView2};

use crate::error::Result;
use crate::rank::linalg::sym_eigen;
use crate::rank::measure::{Measure, Probe};

pub struct Logme;

impl Measure for Logme {
    fn name(&self) -> &'static str {
        "logme"
    }
    fn about(&self) -> &'static str {
        "LogME: evidence of a Bayesian linear model on the features, one-vs-rest per class"
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        Ok(logme(p.features.view(), &p.labels, p.classes))
    }
}

/// The spectrum of `F` shared by every class.
struct Spectrum {
    n: usize,
    d: usize,
    /// Non-negative eigenvalues of `F^T F` (or of `F F^T` when `n < d`), `k = min(n, d)` of them.
    sigma: Array1<f64>,
    /// `k` columns: the left singular vectors `u_j = F v_j / s_j` (zero where `sigma_j = 0`).
    u: ndarray::Array2<f64>,
}

impl Spectrum {
    fn new(f: ArrayView2<f64>) -> Spectrum {
        let (n, d) = f.dim();
        let (sigma, u) = if n >= d {
            let (vals, v) = sym_eigen(f.t().dot(&f).view());
            let scale = vals.iter().cloned().fold(0.0f64, f64::max);
            let sigma = vals.mapv(|s| if s > 1e-12 * scale { s } else { 0.0 });
            let mut u = f.dot(&v);
            for (j, mut col) in u.columns_mut().into_iter().enumerate() {
                if sigma[j] > 0.0 {
                    col.mapv_inplace(|x| x / sigma[j].sqrt());
                } else {
                    col.fill(0.0);
                }
            }
            (sigma, u)
        } else {
            let (vals, mut u) = sym_eigen(f.dot(&f.t()).view());
            let scale = vals.iter().cloned().fold(0.0f64, f64::max);
            let sigma = vals.mapv(|s| if s > 1e-12 * scale { s } else { 0.0 });
            for (j, mut col) in u.columns_mut().into_iter().enumerate() {
                if sigma[j] == 0.0 {
                    col.fill(0.0);
                }
            }
            (sigma, u)
        };
        Spectrum { n, d, sigma, u }
    }
}

/// The fitted hyperparameters and evidence of one target.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LogmeFit {
    pub alpha: f64,
    pub beta: f64,
    /// Log evidence divided by `n`.
    pub evidence: f64,
    pub iterations: usize,
}

/// `|m|^2` and `|y - F m|^2` at `t = alpha / beta`, from `x^2` and the residual outside the
/// span of `F`.
fn norms(sigma: &Array1<f64>, x2: &Array1<f64>, res_x2: f64, t: f64) -> (f64, f64) {
    let mut m2 = 0.0;
    let mut res2 = res_x2;
    for (&s, &q) in sigma.iter().zip(x2) {
        m2 += s * q / ((t + s) * (t + s));
        res2 += q * (t / (t + s)) * (t / (t + s));
    }
    (m2, res2)
}

fn fit_target(sp: &Spectrum, y: &Array1<f64>) -> LogmeFit {
    let x = sp.u.t().dot(y);
    let x2 = x.mapv(|v| v * v);
    let res_x2 = (y.dot(y) - x2.sum()).max(0.0);
    let (n, d) = (sp.n as f64, sp.d as f64);
    let (mut alpha, mut beta) = (1.0f64, 1.0f64);
    let mut iterations = 0;
    for _ in 0..11 {
        iterations += 1;
        let t = alpha / beta;
        let gamma: f64 = sp.sigma.iter().map(|&s| s / (s + t)).sum();
        let (m2, res2) = norms(&sp.sigma, &x2, res_x2, t);
        alpha = gamma / (m2 + 1e-5);
        beta = (n - gamma) / (res2 + 1e-5);
        let t_new = alpha / beta;
        if (t_new - t).abs() / t <= 1e-3 {
            break;
        }
    }
    let (m2, res2) = norms(&sp.sigma, &x2, res_x2, alpha / beta);
    let zeros = d - sp.sigma.iter().filter(|&&s| s > 0.0).count() as f64;
    let log_det: f64 = sp.sigma.iter().filter(|&&s| s > 0.0).map(|&s| (alpha + beta * s).ln()).sum::<f64>() + zeros * alpha.ln();
    let evidence = d / 2.0 * alpha.ln() + n / 2.0 * beta.ln() - 0.5 * log_det - beta / 2.0 * res2 - alpha / 2.0 * m2
        - n / 2.0 * (2.0 * std::f64::consts::PI).ln();
    LogmeFit { alpha, beta, evidence: evidence / n, iterations }
}

/// LogME of one real-valued target `y` (length `n`) on `features` `[n, d]`.
pub fn logme_class(features: ArrayView2<f64>, y: &Array1<f64>) -> LogmeFit {
    fit_target(&Spectrum::new(features), y)
}

/// LogME of `features` `[n, d]` for `labels`: the mean over classes of the one-vs-rest
/// evidence per sample.
pub fn logme(features: ArrayView2<f64>, labels: &[usize], classes: usize) -> f64 {
    let sp = Spectrum::new(features);
    let total: f64 = (0..classes)
        .map(|c| {
            let y = Array1::from_iter(labels.iter().map(|&l| f64::from(u8::from(l == c))));
            fit_target(&sp, &y).evidence
        })
        .sum();
    total / classes as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// `log N(y | 0, I / beta + F F^T / alpha) / n`, computed directly.
    fn direct_evidence(f: &Array2<f64>, y: &Array1<f64>, alpha: f64, beta: f64) -> f64 {
        let n = f.nrows();
        let c = Array2::<f64>::eye(n) / beta + f.dot(&f.t()) / alpha;
        let (vals, vecs) = sym_eigen(c.view());
        let proj = vecs.t().dot(y);
        let quad: f64 = proj.iter().zip(&vals).map(|(p, v)| p * p / v).sum();
        let log_det: f64 = vals.iter().map(|v| v.ln()).sum();
        -0.5 * (quad + log_det + n as f64 * (2.0 * std::f64::consts::PI).ln()) / n as f64
    }

    fn data(n: usize, d: usize) -> (Array2<f64>, Array1<f64>) {
        let f = Array2::from_shape_fn((n, d), |(i, j)| (((i * 13 + j * 7) % 17) as f64 - 8.0) / 5.0);
        let y = Array1::from_shape_fn(n, |i| f64::from(u8::from((i * 5) % 3 == 0)));
        (f, y)
    }

    #[test]
    fn evidence_matches_the_gaussian_marginal_more_samples_than_dims() {
        let (f, y) = data(14, 3);
        let fit = logme_class(f.view(), &y);
        let want = direct_evidence(&f, &y, fit.alpha, fit.beta);
        assert!((fit.evidence - want).abs() < 1e-9, "{} vs {want}", fit.evidence);
    }

    #[test]
    fn evidence_matches_the_gaussian_marginal_more_dims_than_samples() {
        let (f, y) = data(6, 9);
        let fit = logme_class(f.view(), &y);
        let want = direct_evidence(&f, &y, fit.alpha, fit.beta);
        assert!((fit.evidence - want).abs() < 1e-9, "{} vs {want}", fit.evidence);
    }
}
