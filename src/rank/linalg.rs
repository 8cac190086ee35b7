//! The little dense linear algebra the measures need, in plain f64 on `ndarray`: a symmetric
//! eigendecomposition (cyclic Jacobi), PCA by the eigenvectors of the covariance, and
//! per-column standardisation. Sizes here are the feature widths of a VGG head (tens to a
//! few hundred), where Jacobi is exact to rounding and fast enough.

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Eigenvalues (descending) and eigenvectors (the columns, same order) of the symmetric
/// matrix `a`, by cyclic Jacobi rotations until the off-diagonal mass is at rounding level.
pub fn sym_eigen(a: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "sym_eigen needs a square matrix");
    // Row-major working copies: indexing a Vec is much cheaper than ndarray's checked [[i, j]].
    let mut m: Vec<f64> = a.iter().copied().collect();
    let mut v = vec![0.0; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = m.iter().map(|x| x * x).sum();
    for _sweep in 0..64 {
        let mut off = 0.0;
        for p in 0..n {
            for q in p + 1..n {
                off += m[p * n + q] * m[p * n + q];
            }
        }
        if off <= 1e-30 * total || off == 0.0 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = m[p * n + q];
                let (app, aqq) = (m[p * n + p], m[q * n + q]);
                if apq == 0.0 || apq.abs() <= 1e-18 * (app.abs() + aqq.abs()) {
                    continue;
                }
                // The rotation that zeroes a[p][q] (Numerical Recipes' choice of the smaller angle).
                let theta = (aqq - app) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (m[k * n + p], m[k * n + q]);
                    m[k * n + p] = c * akp - s * akq;
                    m[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (m[p * n + k], m[q * n + k]);
                    m[p * n + k] = c * apk - s * aqk;
                    m[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| m[j * n + j].total_cmp(&m[i * n + i]).then(i.cmp(&j)));
    let values = Array1::from_iter(order.iter().map(|&i| m[i * n + i]));
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| v[r * n + order[c]]);
    (values, vectors)
}

/// Column means of `x` `[n, d]`.
pub fn column_means(x: ArrayView2<f64>) -> Array1<f64> {
    x.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()))
}

/// A fitted PCA: the mean it subtracts and the kept principal directions (columns).
#[derive(Clone, Debug)]
pub struct Pca {
    pub mean: Array1<f64>,
    pub components: Array2<f64>,
    /// Variance of each kept component.
    pub variances: Array1<f64>,
    /// Fraction of the total variance the kept components explain.
    pub explained: f64,
}

impl Pca {
    /// The fewest leading components whose explained variance exceeds `fraction` of the
    /// total (scikit-learn's rule for a fractional `n_components`), at least one.
    pub fn fit(x: ArrayView2<f64>, fraction: f64) -> Pca {
        let (n, d) = x.dim();
        let mean = column_means(x);
        let xc = &x - &mean;
        let cov = xc.t().dot(&xc) / ((n.max(2) - 1) as f64);
        let (vals, vecs) = sym_eigen(cov.view());
        let vals = vals.mapv(|v| v.max(0.0));
        let total: f64 = vals.sum();
        let mut k = d.max(1);
        if total > 0.0 {
            let mut acc = 0.0;
            for (i, v) in vals.iter().enumerate() {
                acc += v;
                if acc / total > fraction {
                    k = i + 1;
                    break;
                }
            }
        } else {
            k = 1;
        }
        let k = k.min(d).max(1);
        let components = vecs.slice(ndarray::s![.., ..k]).to_owned();
        let variances = vals.slice(ndarray::s![..k]).to_owned();
        let explained = if total > 0.0 { variances.sum() / total } else { 1.0 };
        Pca { mean, components, variances, explained }
    }

    /// `x` centred and projected onto the kept components: `[n, k]`.
    pub fn transform(&self, x: ArrayView2<f64>) -> Array2<f64> {
        (&x - &self.mean).dot(&self.components)
    }
}

/// Per-column mean and standard deviation (a zero deviation becomes 1, so constant columns
/// map to 0 instead of NaN).
pub fn standardizer(x: ArrayView2<f64>) -> (Array1<f64>, Array1<f64>) {
    let mean = column_means(x);
    let var = (&x - &mean).mapv(|v| v * v).mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(x.ncols()));
    let std = var.mapv(|v| if v > 1e-24 { v.sqrt() } else { 1.0 });
    (mean, std)
}

/// `(x - mean) / std`, column by column.
pub fn standardize(x: ArrayView2<f64>, mean: &Array1<f64>, std: &Array1<f64>) -> Array2<f64> {
    (&x - mean) / std
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn eigen_of_known_matrix() {
        // [[2, 1], [1, 2]] has eigenvalues 3 and 1 with vectors (1, 1)/sqrt 2 and (1, -1)/sqrt 2.
        let (vals, vecs) = sym_eigen(array![[2.0, 1.0], [1.0, 2.0]].view());
        assert!((vals[0] - 3.0).abs() < 1e-12 && (vals[1] - 1.0).abs() < 1e-12, "{vals}");
        let r = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vecs[[0, 0]].abs() - r).abs() < 1e-12 && (vecs[[0, 0]] - vecs[[1, 0]]).abs() < 1e-12);
        assert!((vecs[[0, 1]] + vecs[[1, 1]]).abs() < 1e-12);
    }

    #[test]
    fn eigen_reconstructs_a_random_symmetric_matrix() {
        let n = 9;
        let b = Array2::from_shape_fn((n, n), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let a = &b + &b.t();
        let (vals, vecs) = sym_eigen(a.view());
        let back = vecs.dot(&Array2::from_diag(&vals)).dot(&vecs.t());
        let err = (&back - &a).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(err < 1e-10, "reconstruction error {err}");
        let eye = vecs.t().dot(&vecs);
        let err = (&eye - &Array2::<f64>::eye(n)).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(err < 1e-12, "orthogonality error {err}");
        assert!(vals.windows(2).into_iter().all(|w| w[0] >= w[1]));
    }

    #[test]
    fn pca_keeps_the_dominant_direction() {
        // Points along (0.6, 0.8) with a little spread across it: one component explains > 80%.
        let x = Array2::from_shape_fn((50, 2), |(i, j)| {
            // Each position along the line twice, once on each side: no correlation.
            let t = (i / 2) as f64 - 12.0;
            let e = if i % 2 == 0 { 0.1 } else { -0.1 };
            if j == 0 { 0.6 * t - 0.8 * e } else { 0.8 * t + 0.6 * e }
        });
        let p = Pca::fit(x.view(), 0.8);
        assert_eq!(p.components.ncols(), 1);
        assert!((p.components[[0, 0]].abs() - 0.6).abs() < 1e-6 && (p.components[[1, 0]].abs() - 0.8).abs() < 1e-6);
        assert!(p.explained > 0.99);
        let z = p.transform(x.view());
        assert_eq!(z.dim(), (50, 1));
    }
}
