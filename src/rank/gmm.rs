//! A Gaussian mixture with diagonal covariances, fitted by EM from a seeded k-means++ start.
//!
//! Follows scikit-learn's `GaussianMixture(covariance_type="diag")` where it matters for
//! NLEEP: k-means (k-means++ seeding, Lloyd iterations) gives the initial hard
//! responsibilities, EM stops when the mean log-likelihood improves by less than `tol`,
//! and every variance gets `reg` added (here relative to the data's mean variance, so the
//! fit does not depend on the feature scale).

use ndarray::{Array1, Array2, ArrayView2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A fitted mixture: `k` components over `d` dimensions.
#[derive(Clone, Debug)]
pub struct DiagGmm {
    pub weights: Array1<f64>,
    /// `[k, d]`
    pub means: Array2<f64>,
    /// `[k, d]`
    pub vars: Array2<f64>,
    /// EM iterations run.
    pub iterations: usize,
}

/// EM settings.
#[derive(Clone, Copy, Debug)]
pub struct GmmConfig {
    pub components: usize,
    pub max_iter: usize,
    /// Stop when the mean log-likelihood per sample improves by less than this.
    pub tol: f64,
    /// Added to every variance, times the data's mean per-dimension variance.
    pub reg: f64,
    pub seed: u64,
}

impl GmmConfig {
    pub fn new(components: usize, seed: u64) -> Self {
        GmmConfig { components, max_iter: 100, tol: 1e-3, reg: 1e-6, seed }
    }
}

/// k-means++ seeding (first centre uniform, then each with probability proportional to the
/// squared distance to the nearest chosen one) followed by Lloyd iterations; returns the
/// hard assignment of every row.
pub fn kmeans(x: ArrayView2<f64>, k: usize, seed: u64, iters: usize) -> Vec<usize> {
    let (n, _) = x.dim();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centers: Vec<usize> = vec![rng.random_range(0..n)];
    let dist2 = |a: usize, c: &[f64]| -> f64 { x.row(a).iter().zip(c).map(|(p, q)| (p - q) * (p - q)).sum() };
    let c0 = x.row(centers[0]).to_vec();
    let mut d2: Vec<f64> = (0..n).map(|i| dist2(i, &c0)).collect();
    while centers.len() < k {
        let total: f64 = d2.iter().sum();
        let pick = if total > 0.0 {
            let mut r = rng.random::<f64>() * total;
            let mut idx = n - 1;
            for (i, &w) in d2.iter().enumerate() {
                if r < w {
                    idx = i;
                    break;
                }
                r -= w;
            }
            idx
        } else {
            rng.random_range(0..n)
        };
        centers.push(pick);
        let c = x.row(pick).to_vec();
        for (i, d) in d2.iter_mut().enumerate() {
            *d = d.min(dist2(i, &c));
        }
    }
    let mut cent: Array2<f64> = Array2::from_shape_fn((k, x.ncols()), |(j, f)| x[[centers[j], f]]);
    let mut assign = vec![usize::MAX; n];
    for _ in 0..iters.max(1) {
        let mut changed = false;
        for (i, a) in assign.iter_mut().enumerate() {
            let row = x.row(i);
            let mut best = (f64::INFINITY, 0);
            for j in 0..k {
                let d: f64 = row.iter().zip(cent.row(j)).map(|(p, q)| (p - q) * (p - q)).sum();
                if d < best.0 {
                    best = (d, j);
                }
            }
            if *a != best.1 {
                *a = best.1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
        let mut sums = Array2::<f64>::zeros(cent.dim());
        let mut counts = vec![0usize; k];
        for i in 0..n {
            sums.row_mut(assign[i]).scaled_add(1.0, &x.row(i));
            counts[assign[i]] += 1;
        }
        for (j, &c) in counts.iter().enumerate() {
            if c > 0 {
                cent.row_mut(j).assign(&(&sums.row(j) / c as f64));
            }
        }
    }
    assign
}

impl DiagGmm {
    /// Fits `cfg.components` components to the rows of `x` (fewer when `x` has fewer rows).
    pub fn fit(x: ArrayView2<f64>, cfg: &GmmConfig) -> DiagGmm {
        let (n, d) = x.dim();
        let k = cfg.components.min(n).max(1);
        let mean_var = {
            let m = x.mean_axis(Axis(0)).expect("n > 0");
            let v = (&x - &m).mapv(|t| t * t).sum() / (n * d.max(1)) as f64;
            if v > 0.0 { v } else { 1.0 }
        };
        let reg = cfg.reg * mean_var;
        let assign = kmeans(x, k, cfg.seed, 20);
        let mut resp = Array2::<f64>::zeros((n, k));
        for (i, &a) in assign.iter().enumerate() {
            resp[[i, a]] = 1.0;
        }
        let mut g = DiagGmm { weights: Array1::zeros(k), means: Array2::zeros((k, d)), vars: Array2::ones((k, d)), iterations: 0 };
        g.m_step(x, &resp, reg);
        let mut prev = f64::NEG_INFINITY;
        for it in 0..cfg.max_iter {
            let (r, ll) = g.e_step(x);
            resp = r;
            g.iterations = it + 1;
            if (ll - prev).abs() < cfg.tol {
                break;
            }
            prev = ll;
            g.m_step(x, &resp, reg);
        }
        g
    }

    fn m_step(&mut self, x: ArrayView2<f64>, resp: &Array2<f64>, reg: f64) {
        let n = x.nrows() as f64;
        let nk = resp.sum_axis(Axis(0)).mapv(|v| v + 10.0 * f64::EPSILON);
        let means = resp.t().dot(&x) / nk.view().insert_axis(Axis(1));
        let x2 = x.mapv(|t| t * t);
        let avg_x2 = resp.t().dot(&x2) / nk.view().insert_axis(Axis(1));
        let vars = (&avg_x2 - &means.mapv(|t| t * t)).mapv(|v| v.max(0.0) + reg);
        self.weights = &nk / n;
        self.means = means;
        self.vars = vars;
    }

    /// Log of `weight_j * N(x_i | mean_j, diag var_j)` for every row and component.
    fn weighted_log_prob(&self, x: ArrayView2<f64>) -> Array2<f64> {
        let d = x.ncols() as f64;
        let prec = self.vars.mapv(|v| 1.0 / v);
        let log_det: Array1<f64> = self.vars.mapv(f64::ln).sum_axis(Axis(1));
        let mu_prec = &self.means * &prec;
        let mu2_prec: Array1<f64> = (&self.means * &mu_prec).sum_axis(Axis(1));
        let x2 = x.mapv(|t| t * t);
        let quad = x2.dot(&prec.t()) - 2.0 * x.dot(&mu_prec.t()) + &mu2_prec;
        let cst = d * (2.0 * std::f64::consts::PI).ln();
        let mut lp = quad.mapv(|q| -0.5 * q);
        for (j, mut col) in lp.axis_iter_mut(Axis(1)).enumerate() {
            let add = -0.5 * (cst + log_det[j]) + self.weights[j].max(f64::MIN_POSITIVE).ln();
            col.mapv_inplace(|v| v + add);
        }
        lp
    }

    /// Responsibilities `[n, k]` and the mean log-likelihood.
    fn e_step(&self, x: ArrayView2<f64>) -> (Array2<f64>, f64) {
        let mut lp = self.weighted_log_prob(x);
        let mut ll = 0.0;
        for mut row in lp.rows_mut() {
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            ll += lse;
            row.mapv_inplace(|v| (v - lse).exp());
        }
        (lp, ll / x.nrows() as f64)
    }

    /// Posterior probability of each component for each row: `[n, k]`, rows sum to 1.
    pub fn posteriors(&self, x: ArrayView2<f64>) -> Array2<f64> {
        self.e_step(x).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Array2<f64> {
        // Three tight blobs at 0, 10 and 20 on the first axis.
        Array2::from_shape_fn((30, 2), |(i, j)| {
            let c = (i / 10) as f64 * 10.0;
            let e = ((i * 37 + j * 11) % 7) as f64 * 0.01;
            if j == 0 { c + e } else { e }
        })
    }

    #[test]
    fn kmeans_finds_separated_blobs() {
        let a = kmeans(blobs().view(), 3, 5, 20);
        for b in 0..3 {
            let first = a[b * 10];
            assert!(a[b * 10..(b + 1) * 10].iter().all(|&x| x == first), "{a:?}");
        }
        assert!(a[0] != a[10] && a[10] != a[20] && a[0] != a[20]);
    }

    #[test]
    fn gmm_posteriors_are_one_hot_on_separated_blobs_and_seeded() {
        let x = blobs();
        let g = DiagGmm::fit(x.view(), &GmmConfig::new(3, 1));
        let p = g.posteriors(x.view());
        for row in p.rows() {
            assert!((row.sum() - 1.0).abs() < 1e-9);
            assert!(row.iter().any(|&v| v > 0.999), "{row}");
        }
        for w in &g.weights {
            assert!((w - 1.0 / 3.0).abs() < 1e-6, "{}", g.weights);
        }
        let again = DiagGmm::fit(x.view(), &GmmConfig::new(3, 1));
        assert_eq!(g.means, again.means);
    }
}
