//! How well a measure's scores predict the truth (accuracy after fine-tuning): Kendall's
//! tau-b, weighted tau, Pearson's r, recall@k and rel@k.
//!
//! All take `scores` (the measure's, higher = better) and `truth`, one entry per candidate.
//! Non-finite scores rank last. Pair counts are O(n^2): candidate lists are short.

use serde::Serialize;

/// Kendall's tau-b with ties: `(C - D) / sqrt((P - Tx) (P - Ty))` over all `P` pairs, `Tx`
/// and `Ty` the pairs tied in `x` and in `y`. NaN when either side is constant.
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    let (mut s, mut tx, mut ty, mut pairs) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for i in 0..n {
        for j in i + 1..n {
            let dx = x[i] - x[j];
            let dy = y[i] - y[j];
            pairs += 1.0;
            if dx == 0.0 {
                tx += 1.0;
            }
            if dy == 0.0 {
                ty += 1.0;
            }
            s += (dx * dy).signum() * f64::from(u8::from(dx != 0.0 && dy != 0.0));
        }
    }
    s / ((pairs - tx) * (pairs - ty)).sqrt()
}

/// The rank scipy's `weightedtau(rank=None)` gives each element: 0 for the largest `x`
/// (ties broken by the larger `y`, then by the later index).
fn lexsort_rank(x: &[f64], y: &[f64]) -> Vec<usize> {
    let n = x.len();
    let mut perm: Vec<usize> = (0..n).collect();
    perm.sort_by(|&a, &b| x[a].total_cmp(&x[b]).then(y[a].total_cmp(&y[b])));
    let mut rank = vec![0; n];
    for (r, &i) in perm.iter().rev().enumerate() {
        rank[i] = r;
    }
    rank
}

/// Weighted tau of `x` and `y` with the elements ranked by `rank` (0 = most important) and
/// hyperbolic weights `1 / (rank + 1)`; a pair weighs the sum (`additive`) or the product
/// of its elements' weights. Same definition and tie handling as `scipy.stats.weightedtau`.
pub fn weighted_tau_ranked(x: &[f64], y: &[f64], rank: &[usize], additive: bool) -> f64 {
    assert_eq!(x.len(), y.len());
    let n = x.len();
    let w: Vec<f64> = rank.iter().map(|&r| 1.0 / (r as f64 + 1.0)).collect();
    let (mut tot, mut u, mut v, mut t, mut disc) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for i in 0..n {
        for j in i + 1..n {
            let wp = if additive { w[i] + w[j] } else { w[i] * w[j] };
            let (tie_x, tie_y) = (x[i] == x[j], y[i] == y[j]);
            tot += wp;
            if tie_x {
                u += wp;
            }
            if tie_y {
                v += wp;
            }
            if tie_x && tie_y {
                t += wp;
            }
            if (x[i] - x[j]) * (y[i] - y[j]) < 0.0 {
                disc += wp;
            }
        }
    }
    if u == tot || v == tot {
        return f64::NAN;
    }
    let tau = ((tot - (v + u - t)) - 2.0 * disc) / (tot - u).sqrt() / (tot - v).sqrt();
    tau.clamp(-1.0, 1.0)
}

/// scipy's `weightedtau(x, y, rank=None)`: elements ranked by decreasing `x` (then `y`), so
/// disagreements among the candidates `x` puts on top cost the most.
pub fn weighted_tau_by_x(x: &[f64], y: &[f64], additive: bool) -> f64 {
    weighted_tau_ranked(x, y, &lexsort_rank(x, y), additive)
}

/// scipy's default `weightedtau(x, y)` (`rank=True`): the mean of ranking by `x` and by `y`.
pub fn weighted_tau(x: &[f64], y: &[f64], additive: bool) -> f64 {
    (weighted_tau_by_x(x, y, additive) + weighted_tau_by_x(y, x, additive)) / 2.0
}

/// Pearson's correlation coefficient; NaN when either side is constant.
pub fn pearson(x: &[f64], y: &[f64]) -> f64 {
    assert_eq!(x.len(), y.len());
    let n = x.len() as f64;
    let mx = x.iter().sum::<f64>() / n;
    let my = y.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(y) {
        sxy += (a - mx) * (b - my);
        sxx += (a - mx) * (a - mx);
        syy += (b - my) * (b - my);
    }
    (sxy / (sxx.sqrt() * syy.sqrt())).clamp(-1.0, 1.0)
}

/// Candidate indices by decreasing score (non-finite last; ties keep the input order).
pub fn order_desc(scores: &[f64]) -> Vec<usize> {
    let key = |v: f64| if v.is_finite() { v } else { f64::NEG_INFINITY };
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| key(scores[b]).total_cmp(&key(scores[a])));
    idx
}

/// 1 if the measure's top pick is among the `k` truly best candidates, else 0. Candidates
/// tied with the k-th best truth count as among them.
pub fn recall_at(scores: &[f64], truth: &[f64], k: usize) -> f64 {
    let Some(&pick) = order_desc(scores).first() else { return f64::NAN };
    let by_truth = order_desc(truth);
    let kth = truth[by_truth[(k.max(1) - 1).min(by_truth.len() - 1)]];
    f64::from(u8::from(truth[pick] >= kth))
}

/// The best true accuracy among the measure's top `k`, over the best true accuracy overall.
pub fn rel_at(scores: &[f64], truth: &[f64], k: usize) -> f64 {
    let best = truth.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let top = order_desc(scores).into_iter().take(k.max(1)).map(|i| truth[i]).fold(f64::NEG_INFINITY, f64::max);
    top / best
}

/// How well one measure ranked the candidates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quality {
    pub measure: String,
    pub candidates: usize,
    pub kendall_tau: f64,
    /// Weighted tau ranked by the measure's order (hyperbolic, additive).
    pub weighted_tau: f64,
    pub pearson: f64,
    pub recall_at_1: f64,
    pub recall_at_3: f64,
    pub rel_at_1: f64,
    pub rel_at_3: f64,
    /// Seconds the measure took to score all candidates (forward passes included).
    pub score_seconds: f64,
    /// Seconds fine-tuning all of them took (from the truth file; NaN if not given).
    pub finetune_seconds: f64,
}

impl Quality {
    pub fn compute(measure: &str, scores: &[f64], truth: &[f64], score_seconds: f64, finetune_seconds: f64) -> Quality {
        Quality {
            measure: measure.to_string(),
            candidates: scores.len(),
            kendall_tau: kendall_tau_b(scores, truth),
            weighted_tau: weighted_tau_by_x(scores, truth, true),
            pearson: pearson(scores, truth),
            recall_at_1: recall_at(scores, truth, 1),
            recall_at_3: recall_at(scores, truth, 3),
            rel_at_1: rel_at(scores, truth, 1),
            rel_at_3: rel_at(scores, truth, 3),
            score_seconds,
            finetune_seconds,
        }
    }
}

/// The measure that ranked best: highest Kendall tau, then weighted tau, then Pearson
/// (NaN counts as worst).
pub fn winner(q: &[Quality]) -> Option<&Quality> {
    let key = |v: f64| if v.is_nan() { f64::NEG_INFINITY } else { v };
    q.iter().max_by(|a, b| {
        key(a.kendall_tau)
            .total_cmp(&key(b.kendall_tau))
            .then(key(a.weighted_tau).total_cmp(&key(b.weighted_tau)))
            .then(key(a.pearson).total_cmp(&key(b.pearson)))
            .then(std::cmp::Ordering::Greater)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recall_and_rel() {
        let truth = [0.90, 0.80, 0.95, 0.70];
        // Measure picks index 1 first (true rank 3), then 2.
        let s = [0.1, 0.9, 0.5, 0.0];
        assert_eq!(recall_at(&s, &truth, 1), 0.0);
        assert_eq!(recall_at(&s, &truth, 3), 1.0);
        assert!((rel_at(&s, &truth, 1) - 0.80 / 0.95).abs() < 1e-12);
        assert_eq!(rel_at(&s, &truth, 3), 1.0);
    }

    #[test]
    fn perfect_and_reversed_rankings() {
        let t = [0.1, 0.5, 0.3, 0.9];
        assert!((kendall_tau_b(&t, &t) - 1.0).abs() < 1e-12);
        let r: Vec<f64> = t.iter().map(|v| -v).collect();
        assert!((kendall_tau_b(&r, &t) + 1.0).abs() < 1e-12);
        assert!((weighted_tau_by_x(&t, &t, true) - 1.0).abs() < 1e-12);
        assert!((weighted_tau_by_x(&r, &t, true) + 1.0).abs() < 1e-12);
        assert!(kendall_tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]).is_nan());
    }
}
