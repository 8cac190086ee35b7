//! The baselines every other measure must beat: plain top-1 accuracy on the probe set before
//! fine-tuning, as saved (`accuracy`) and after BN recalibration (`accuracy-recal`).

use crate::error::Result;
use crate::rank::measure::{Measure, Probe, View};

/// Fraction of rows whose label logit is the largest (ties count as correct, as in
/// [`bench::accuracy::score`](crate::bench::accuracy::score)).
pub fn top1(p: &Probe) -> f64 {
    let hits = p
        .logits
        .rows()
        .into_iter()
        .zip(&p.labels)
        .filter(|(row, &y)| {
            let t = row[y];
            row.iter().all(|&v| v <= t)
        })
        .count();
    hits as f64 / p.len() as f64
}

pub struct Accuracy;

impl Measure for Accuracy {
    fn name(&self) -> &'static str {
        "accuracy"
    }
    fn about(&self) -> &'static str {
        "top-1 on the probe set before fine-tuning, BN statistics as saved (baseline)"
    }
    fn view(&self) -> View {
        View::AsGiven
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        Ok(top1(p))
    }
}

pub struct AccuracyRecal;

impl Measure for AccuracyRecal {
    fn name(&self) -> &'static str {
        "accuracy-recal"
    }
    fn about(&self) -> &'static str {
        "top-1 on the probe set before fine-tuning, after BN recalibration (baseline)"
    }
    fn view(&self) -> View {
        View::Recalibrated
    }
    fn score(&self, p: &Probe) -> Result<f64> {
        Ok(top1(p))
    }
}
