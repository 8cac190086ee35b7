//! Held-out k-nearest-neighbour accuracy on the features (Euclidean, k = 5), on the same
//! fixed 70/30 split of the probe set as `linear-probe`.
//!
//! Votes are counted per class; a tie goes to the tied class with the nearest member.
//! Equal distances are broken by the lower sample index, so results are reproducible.

use ndarray::ArrayView2;

use super::linear_probe::{FIT_FRACTION, SPLIT_SEED};
use crate::error::Result;
use crate::rank::measure::{Measure, Probe};

/// Neighbours that vote.
pub const K: usize = 5;

pub struct Knn;

impl Measure for Knn {
    fn name(&self) -> &'static str {
        "knn"
    }
    fn about(&self) -> &'static str {
        "held-out 5-nearest-neighbour accuracy on the features (70/30 split)"
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        let (fit, held) = p.split(FIT_FRACTION, SPLIT_SEED)?;
        Ok(knn_accuracy(p.features.view(), &p.labels, p.classes, &fit, &held, K))
    }
}

/// Accuracy on the `held` rows of a `k`-NN vote among the `fit` rows.
pub fn knn_accuracy(x: ArrayView2<f64>, labels: &[usize], classes: usize, fit: &[usize], held: &[usize], k: usize) -> f64 {
    let k = k.clamp(1, fit.len().max(1));
    let mut hits = 0;
    let mut dist: Vec<(f64, usize)> = Vec::with_capacity(fit.len());
    for &q in held {
        let row = x.row(q);
        dist.clear();
        dist.extend(fit.iter().map(|&i| (row.iter().zip(x.row(i)).map(|(a, b)| (a - b) * (a - b)).sum::<f64>(), i)));
        let cmp = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
        if k < dist.len() {
            dist.select_nth_unstable_by(k - 1, cmp);
            dist.truncate(k);
        }
        dist.sort_by(cmp);
        let mut votes = vec![0usize; classes];
        for &(_, i) in &dist {
            votes[labels[i]] += 1;
        }
        let top = *votes.iter().max().expect("classes > 0");
        // The nearest neighbour whose class has the most votes decides ties.
        let pred = dist.iter().map(|&(_, i)| labels[i]).find(|&c| votes[c] == top).expect("k > 0");
        hits += usize::from(pred == labels[q]);
    }
    hits as f64 / held.len() as f64
}
