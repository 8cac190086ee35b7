//! The little dense linear algebra the measures need, in f64 on `ndarray`: a symmetric
//! eigendecomposition (by nalgebra), PCA by the eigenvectors of the covariance, and
//! per-column standardisation. Sizes here are the feature widths of a VGG head (tens to 512).

use ndarray::{Array1, Array2, ArrayView2, Axis};

/// Eigenvalues (descending) and eigenvectors (the columns, same order) of the symmetric
/// matrix `a` (nalgebra's symmetric eigensolver: tridiagonalisation then implicit QR).
pub fn sym_eigen(a: ArrayView2<f64>) -> (Array1<f64>, Array2<f64>) {
    let n = a.nrows();
    assert_eq!(n, a.ncols(), "sym_eigen needs a square matrix");
    let m = nalgebra::DMatrix::from_fn(n, n, |r, c| a[[r, c]]);
    let e = m.symmetric_eigen();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| e.eigenvalues[j].total_cmp(&e.eigenvalues[i]).then(i.cmp(&j)));
    let values = Array1::from_iter(order.iter().map(|&i| e.eigenvalues[i]));
    let vectors = Array2::from_shape_fn((n, n), |(r, c)| e.eigenvectors[(r, order[c])]);
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
    fn eigen_at_full_vgg_width() {
        // 512 features, as the full-width head gives: reconstruction and orthogonality hold.
        let n = 512;
        let b = Array2::from_shape_fn((n, n), |(i, j)| (((i * 131 + j * 71) % 97) as f64 - 48.0) / 48.0);
        let a = b.t().dot(&b); // symmetric positive semi-definite, like a covariance
        let (vals, vecs) = sym_eigen(a.view());
        let back = vecs.dot(&Array2::from_diag(&vals)).dot(&vecs.t());
        let scale = a.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        let err = (&back - &a).iter().fold(0.0f64, |m, x| m.max(x.abs())) / scale;
        assert!(err < 1e-10, "relative reconstruction error {err}");
        let eye = vecs.t().dot(&vecs);
        let err = (&eye - &Array2::<f64>::eye(n)).iter().fold(0.0f64, |m, x| m.max(x.abs()));
        assert!(err < 1e-10, "orthogonality error {err}");
        assert!(vals[n - 1] > -1e-9 * vals[0], "a Gram matrix has no negative eigenvalues: {}", vals[n - 1]);
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
