//! Summary statistics of timing samples.

use serde::Serialize;

/// Percentile `p` (0..=100) of sorted samples, linearly interpolated between closest ranks
/// (NumPy's default method).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    assert!(!sorted.is_empty(), "percentile of no samples");
    let rank = (p / 100.0).clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// Latency summary in seconds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub samples: usize,
    pub min: f64,
    pub mean: f64,
    pub std: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        let mut s = samples.to_vec();
        s.sort_by(f64::total_cmp);
        let n = s.len() as f64;
        let mean = s.iter().sum::<f64>() / n;
        let var = if s.len() > 1 { s.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        Summary {
            samples: s.len(),
            min: s[0],
            mean,
            std: var.sqrt(),
            p50: percentile(&s, 50.0),
            p90: percentile(&s, 90.0),
            p95: percentile(&s, 95.0),
            p99: percentile(&s, 99.0),
            p999: percentile(&s, 99.9),
            max: s[s.len() - 1],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_match_numpy() {
        // numpy.percentile([1, 2, 3, 4], [50, 90, 25]) == [2.5, 3.7, 1.75]
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert!((percentile(&s, 90.0) - 3.7).abs() < 1e-12);
        assert_eq!(percentile(&s, 25.0), 1.75);
        assert_eq!(percentile(&[5.0], 99.9), 5.0);
    }

    #[test]
    fn summary_of_known_samples() {
        let v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        let s = Summary::of(&v);
        assert_eq!((s.min, s.max, s.samples), (1.0, 100.0, 100));
        assert_eq!(s.mean, 50.5);
        assert_eq!(s.p50, 50.5);
        assert!((s.p99 - 99.01).abs() < 1e-9);
        assert!((s.std - 29.011491975882016).abs() < 1e-9); // numpy std(ddof=1)
    }
}
