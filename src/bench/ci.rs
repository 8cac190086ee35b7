//! 95% confidence intervals: for the median of one sample set (order statistics) and for the
//! ratio of two medians (a speed-up; seeded percentile bootstrap).
//!
//! **Median.** The distribution-free interval for a quantile (Hahn & Meeker, *Statistical
//! Intervals*, 1991, §5.2; also Conover, *Practical Nonparametric Statistics*, §3.2): with the
//! samples sorted, `x(1) <= ... <= x(n)`, and `B ~ Binomial(n, 1/2)` the number of samples below
//! the true median, `[x(l), x(u)]` with `u = n + 1 - l` covers the median with probability
//! `P(l <= B <= n - l) = 1 - 2 P(B <= l - 1)`. We take the largest `l` with
//! `P(B <= l - 1) <= 0.025`, so the coverage is at least 95% (exactly, not asymptotically, for
//! any continuous distribution). It needs `n >= 6` (for `n = 5`, even `[x(1), x(5)]` covers only
//! 93.75%). E.g. `n = 10` gives ranks 2 and 9, `n = 20` ranks 6 and 15.
//!
//! **Ratio of medians.** `median(a) / median(b)` with a percentile bootstrap (Efron &
//! Tibshirani, *An Introduction to the Bootstrap*, 1993, §13.3): [`BOOTSTRAP_RESAMPLES`]
//! times, resample each set with replacement (independently: the two programs were timed
//! in the same rounds but their calls are not paired), take the ratio of the two medians;
//! the interval is the 2.5th and 97.5th percentiles of those ratios. The resampling is
//! driven by ChaCha8 from a caller's seed, so the same samples and seed give the same
//! interval on every machine.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::stats::percentile;

/// Resamples of the bootstrap behind [`ratio_of_medians`].
pub const BOOTSTRAP_RESAMPLES: usize = 2000;

/// Fewest samples for which [`median_ci`] exists at 95%.
pub const MIN_SAMPLES_FOR_CI: usize = 6;

/// 1-based ranks `(l, u)` of the order statistics that bound a 95% interval for the median of
/// `n` samples; `None` for `n < 6`.
pub fn median_ranks(n: usize) -> Option<(usize, usize)> {
    // P(B <= k) for B ~ Binomial(n, 1/2), summed in log space (0.5^n underflows past n ~ 1074).
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut cdf = 0.0;
    let mut l = 0; // the largest l with P(B <= l - 1) <= 0.025
    for k in 0..=n / 2 {
        cdf += (ln_choose + ln_half_n).exp();
        if cdf > 0.025 {
            break;
        }
        l = k + 1;
        ln_choose += ((n - k) as f64).ln() - ((k + 1) as f64).ln();
    }
    (l >= 1).then_some((l, n + 1 - l))
}

/// 95% interval `(low, high)` of the median of `samples` (any order, same unit), by order
/// statistics (see the module docs); `None` for fewer than [`MIN_SAMPLES_FOR_CI`] samples.
pub fn median_ci(samples: &[f64]) -> Option<(f64, f64)> {
    let (l, u) = median_ranks(samples.len())?;
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    Some((s[l - 1], s[u - 1]))
}

/// Half the width of `ci` relative to `center`: `(high - low) / 2 / center` (0.02 is +-2%).
pub fn relative_half_width(ci: (f64, f64), center: f64) -> f64 {
    (ci.1 - ci.0) / 2.0 / center
}

/// `median(num) / median(den)` and its 95% percentile-bootstrap interval (see the module
/// docs), with medians as [`percentile`] 50 (the `latency_p50` of the rows). With `num` the
/// unpruned network's call times and `den` a pruned one's, this is the speed-up.
///
/// `None` when either set is empty.
pub fn ratio_of_medians(num: &[f64], den: &[f64], seed: u64) -> Option<(f64, (f64, f64))> {
    if num.is_empty() || den.is_empty() {
        return None;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        percentile(v, 50.0)
    };
    let point = median(&mut num.to_vec()) / median(&mut den.to_vec());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut a, mut b) = (Vec::with_capacity(num.len()), Vec::with_capacity(den.len()));
    let mut ratios = Vec::with_capacity(BOOTSTRAP_RESAMPLES);
    for _ in 0..BOOTSTRAP_RESAMPLES {
        a.clear();
        a.extend((0..num.len()).map(|_| num[rng.random_range(0..num.len())]));
        b.clear();
        b.extend((0..den.len()).map(|_| den[rng.random_range(0..den.len())]));
        ratios.push(median(&mut a) / median(&mut b));
    }
    ratios.sort_by(f64::total_cmp);
    Some((point, (percentile(&ratios, 2.5), percentile(&ratios, 97.5))))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(B <= k) for B ~ Binomial(n, 1/2), the textbook way (small n only).
    fn cdf(n: u32, k: u32) -> f64 {
        let choose = |n: u32, k: u32| (0..k).fold(1.0, |c, i| c * f64::from(n - i) / f64::from(i + 1));
        (0..=k).map(|i| choose(n, i)).sum::<f64>() / 2f64.powi(n as i32)
    }

    #[test]
    fn ranks_match_the_binomial_table() {
        // Hand-computed: n = 6: P(B <= 0) = 1/64 = 0.016 -> (1, 6); n = 10: P(B <= 1) = 11/1024
        // = 0.011, P(B <= 2) = 56/1024 = 0.055 -> (2, 9); n = 20: P(B <= 5) = 0.021,
        // P(B <= 6) = 0.058 -> (6, 15); n = 100 -> (40, 61) (Conover's table).
        assert_eq!(median_ranks(5), None);
        assert_eq!(median_ranks(6), Some((1, 6)));
        assert_eq!(median_ranks(10), Some((2, 9)));
        assert_eq!(median_ranks(20), Some((6, 15)));
        assert_eq!(median_ranks(100), Some((40, 61)));
        // Every n: coverage >= 95%, and one rank further in would drop below it.
        for n in 6..=200u32 {
            let (l, u) = median_ranks(n as usize).unwrap();
            assert_eq!(u, n as usize + 1 - l);
            assert!(cdf(n, l as u32 - 1) <= 0.025, "n={n}");
            assert!(cdf(n, l as u32) > 0.025, "n={n}");
        }
        // Large n (0.5^n underflows): about n/2 -+ 1.96 sqrt(n)/2.
        let (l, u) = median_ranks(10_000).unwrap();
        assert!((4900..=4903).contains(&l) && u == 10_001 - l, "{l} {u}");
    }

    #[test]
    fn median_interval_of_known_samples() {
        // Ten samples, shuffled: sorted they are 1..=10; ranks 2 and 9.
        let s = [7.0, 3.0, 10.0, 1.0, 5.0, 9.0, 2.0, 8.0, 4.0, 6.0];
        assert_eq!(median_ci(&s), Some((2.0, 9.0)));
        assert_eq!(median_ci(&s[..5]), None);
        assert!((relative_half_width((2.0, 9.0), 5.5) - 3.5 / 5.5).abs() < 1e-12);
    }

    /// `n` samples around `m`: a deterministic spread of +-10% (no randomness in the data).
    fn spread(m: f64, n: usize) -> Vec<f64> {
        (0..n).map(|i| m * (0.9 + 0.2 * ((i * 37) % n) as f64 / n as f64)).collect()
    }

    #[test]
    fn bootstrap_is_seeded_contains_the_estimate_and_narrows() {
        let (a, b) = (spread(4.0, 20), spread(2.0, 20));
        let (p, ci) = ratio_of_medians(&a, &b, 7).unwrap();
        assert!((p - 2.0).abs() < 0.05, "{p}");
        assert!(ci.0 < p && p < ci.1, "{ci:?} {p}");
        assert_eq!(ratio_of_medians(&a, &b, 7).unwrap(), (p, ci));
        assert_ne!(ratio_of_medians(&a, &b, 8).unwrap().1, ci);
        let (p2, ci2) = ratio_of_medians(&spread(4.0, 400), &spread(2.0, 400), 7).unwrap();
        assert!(ci2.0 <= p2 && p2 <= ci2.1);
        assert!(ci2.1 - ci2.0 < (ci.1 - ci.0) / 2.0, "{ci2:?} vs {ci:?}");
        // Identical constant sets: the ratio is exactly 1.
        assert_eq!(ratio_of_medians(&[3.0; 8], &[3.0; 8], 0), Some((1.0, (1.0, 1.0))));
        assert_eq!(ratio_of_medians(&[], &[1.0], 0), None);
    }
}
