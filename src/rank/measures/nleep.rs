//! NLEEP (Li et al. 2021, "Ranking neural checkpoints"): LEEP with the classifier's outputs
//! replaced by the posteriors of a Gaussian mixture fitted to the penultimate features.
//!
//! Steps: PCA keeping 80% of the variance; a diagonal-covariance GMM with `5 x classes`
//! components (EM from a seeded k-means++ start, see [`gmm`](crate::rank::gmm)); LEEP's
//! formula on the component posteriors.

use ndarray::ArrayView2;

use super::leep::leep;
use crate::error::Result;
use crate::rank::gmm::{DiagGmm, GmmConfig};
use crate::rank::linalg::Pca;
use crate::rank::measure::{Measure, Probe};

/// Fraction of the feature variance the PCA keeps.
pub const PCA_VARIANCE: f64 = 0.8;
/// Mixture components per class.
pub const COMPONENTS_PER_CLASS: usize = 5;
const SEED: u64 = 0x4e4c_4545_5031; // "NLEEP1"

pub struct Nleep;

impl Measure for Nleep {
    fn name(&self) -> &'static str {
        "nleep"
    }
    fn about(&self) -> &'static str {
        "NLEEP: LEEP on the posteriors of a 5-per-class Gaussian mixture over PCA'd features"
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        Ok(nleep(p.features.view(), &p.labels, p.classes, SEED))
    }
}

/// NLEEP of `features` `[n, d]` against `labels`, the mixture seeded by `seed`.
pub fn nleep(features: ArrayView2<f64>, labels: &[usize], classes: usize, seed: u64) -> f64 {
    let pca = Pca::fit(features, PCA_VARIANCE);
    let z = pca.transform(features);
    let gmm = DiagGmm::fit(z.view(), &GmmConfig::new(COMPONENTS_PER_CLASS * classes, seed));
    let post = gmm.posteriors(z.view());
    leep(post.view(), labels, classes)
}
