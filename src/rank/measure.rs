//! The one trait every transferability measure implements, and the [`Probe`] it reads: a
//! candidate's penultimate features and logits on a labelled probe set.

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::util::{count_of, Rounding};

/// Which forward pass of a candidate a measure reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// BN recalibrated when the run asks for it (`--recalibrate-bn N`, N > 0), else as given.
    Scoring,
    /// The checkpoint exactly as saved, never recalibrated.
    AsGiven,
    /// Always BN-recalibrated (the run must ask for recalibration).
    Recalibrated,
}

/// What a measure scores: one candidate's outputs on the probe set.
#[derive(Clone, Debug)]
pub struct Probe {
    /// Penultimate activations (the input of the last dense layer), `[n, d]`.
    pub features: Array2<f64>,
    /// Logits, `[n, outputs]`.
    pub logits: Array2<f64>,
    /// `n` labels, each `< classes`.
    pub labels: Vec<usize>,
    pub classes: usize,
}

impl Probe {
    /// Checks that the parts agree: at least one sample, one row per label, labels in range,
    /// finite values.
    pub fn new(features: Array2<f64>, logits: Array2<f64>, labels: Vec<usize>, classes: usize) -> Result<Probe> {
        let n = labels.len();
        if n == 0 {
            return Err(Error::invalid("probe set", "0 images", "score on at least a few labelled images (--probe-size)"));
        }
        if features.nrows() != n || logits.nrows() != n {
            return Err(Error::shape(
                "probe",
                format!("{} labels but {} feature rows and {} logit rows", n, features.nrows(), logits.nrows()),
            ));
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= classes) {
            return Err(Error::invalid(format!("probe label of sample {i}"), l, format!("labels must be in 0..{classes}")));
        }
        if features.iter().chain(logits.iter()).any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "probe outputs",
                "non-finite values",
                "the candidate produced NaN/inf on the probe set; check the checkpoint (or its BN statistics)",
            ));
        }
        Ok(Probe { features, logits, labels, classes })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// A fixed, seeded split of the samples into a fitting part (`fraction` of them) and a
    /// held-out part; both non-empty.
    pub fn split(&self, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
        let n = self.len();
        let k = count_of(fraction, n, Rounding::Nearest).clamp(1, n.saturating_sub(1));
        if n < 2 {
            return Err(Error::invalid(
                "probe set",
                format!("{n} image"),
                "held-out measures (linear-probe, knn) need at least 2 probe images",
            ));
        }
        let order = crate::data::epoch_order(n, seed, 0);
        Ok((order[..k].to_vec(), order[k..].to_vec()))
    }
}

/// A transferability measure: one small unit, registered in [`measures`](super::measures).
/// Higher scores predict a better candidate.
pub trait Measure: Sync {
    /// The name users type (`--measures NAME,...`).
    fn name(&self) -> &'static str;
    /// One line for `--help` and error messages.
    fn about(&self) -> &'static str;
    /// Which forward pass it reads.
    fn view(&self) -> View {
        View::Scoring
    }
    fn score(&self, probe: &Probe) -> Result<f64>;
}

impl std::fmt::Debug for dyn Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Measure({})", self.name())
    }
}
