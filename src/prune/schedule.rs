//! Schedules: how many channels each pruned group keeps, given the criterion's scores (one
//! list per group pruning acts on, see [`targets`](super::targets); on VGG-16 its 13 convs).
//!
//! A ratio is the fraction of channels *removed*, in `[0, 1)`; `ratio * n` becomes a count
//! through [`crate::util::count_of`], so `0.29` of 100 removes 29 exactly. Counts are then adjusted in
//! this order, each step only ever keeping more:
//! 1. skipped layers keep everything;
//! 2. the floor: every layer keeps at least `max(min_channels, 1)` (or all it has);
//! 3. `round_to` N: the kept count is rounded UP to a multiple of N, capped at the original
//!    count. So pruning never removes more than asked.
//!
//! Within a layer the kept channels are always the highest-scoring ones (ties: the lower
//! index is kept), in their original order.

use std::fmt;

use crate::error::{Error, Result};
use crate::util::{count_of, Rounding};

/// How the removal ratio is spread over the layers.
#[derive(Clone, Debug, PartialEq)]
pub enum Schedule {
    /// The same ratio in every group: group `i` removes `floor(ratio * n_i)` channels.
    Uniform(f64),
    /// One ratio per pruned group (VGG-16: its 13 convs; `prunebench info` lists them).
    Layers(Vec<f64>),
    /// One threshold over all groups' scores, each layer's scores divided by that layer's
    /// maximum first (so layers with large weights are not favoured): the lowest
    /// `floor(ratio * total)` normalised scores of the unskipped layers are removed, passing
    /// over channels whose layer is at its floor.
    Global(f64),
    /// A latency target, as a fraction of the unpruned network's measured latency, in (0, 1]:
    /// the counts are solved on a measured latency table (`budget::choose`) and pruned as
    /// `Layers`; [`keep_counts`] refuses it unsolved.
    Latency(f64),
}

impl Schedule {
    /// The per-group schedule that keeps exactly `kept[g]` of `full[g]` channels (at most all):
    /// ratios `(full - kept) / full`, which [`keep_counts`] turns back into `kept` exactly.
    pub fn keeping(kept: &[usize], full: &[usize]) -> Schedule {
        Schedule::Layers(full.iter().zip(kept).map(|(&n, &k)| (n - k.min(n)) as f64 / n as f64).collect())
    }

    pub fn name(&self) -> &'static str {
        match self {
            Schedule::Uniform(_) => "uniform",
            Schedule::Layers(_) => "layers",
            Schedule::Global(_) => "global",
            Schedule::Latency(_) => "latency",
        }
    }

    /// The ratio(s) as written in metadata: `0.5` or `0.1,0.2,...`.
    pub fn ratios_text(&self) -> String {
        match self {
            Schedule::Uniform(r) | Schedule::Global(r) | Schedule::Latency(r) => r.to_string(),
            Schedule::Layers(rs) => rs.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(","),
        }
    }

    /// Checks every ratio is in `[0, 1)` (a layer list's length is checked against the
    /// network by [`keep_counts`]).
    pub fn validate(&self) -> Result<()> {
        let check = |r: f64, what: String| {
            if (0.0..1.0).contains(&r) {
                Ok(())
            } else {
                Err(Error::invalid(
                    what,
                    r,
                    "a ratio is the fraction of channels removed; use a value in [0, 1), e.g. 0.5",
                ))
            }
        };
        match self {
            Schedule::Uniform(r) | Schedule::Global(r) => check(*r, "pruning ratio".into()),
            Schedule::Layers(rs) => rs.iter().enumerate().try_for_each(|(i, &r)| check(r, format!("pruning ratio of layer {i}"))),
            Schedule::Latency(t) if *t > 0.0 && *t <= 1.0 => Ok(()),
            Schedule::Latency(t) => Err(Error::invalid("latency target", t, "a fraction of the unpruned latency in (0, 1], e.g. 0.5")),
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.ratios_text())
    }
}

/// Options that bound what any schedule may do.
#[derive(Clone, Copy, Debug)]
pub struct Bounds<'a> {
    pub round_to: usize,
    pub min_channels: usize,
    pub skip: &'a [usize],
}

/// Kept channel counts per layer (pruned group) for layers with `scores` (one per channel).
///
/// Errors: a bad ratio; a per-layer list whose length is not the number of layers.
pub fn keep_counts(schedule: &Schedule, scores: &[Vec<f64>], b: Bounds) -> Result<Vec<usize>> {
    schedule.validate()?;
    let sizes: Vec<usize> = scores.iter().map(|s| s.len()).collect();
    if let Schedule::Layers(rs) = schedule {
        if rs.len() != sizes.len() {
            return Err(Error::invalid(
                "per-layer ratio list",
                format!("{} entries", rs.len()),
                format!("give one ratio per pruned group ({}; `prunebench info` lists them), comma separated", sizes.len()),
            ));
        }
    }
    let floor = |n: usize| b.min_channels.max(1).min(n);
    let raw: Vec<usize> = match schedule {
        Schedule::Uniform(r) => sizes.iter().map(|&n| n - count_of(*r, n, Rounding::Down)).collect(),
        Schedule::Layers(rs) => sizes.iter().zip(rs).map(|(&n, &r)| n - count_of(r, n, Rounding::Down)).collect(),
        Schedule::Global(r) => global(*r, scores, b.skip, &floor),
        Schedule::Latency(_) => {
            return Err(Error::invalid(
                "schedule",
                schedule,
                "solve a latency target on a latency table first (budget::choose) and prune with the per-group counts it gives",
            ))
        }
    };
    Ok(raw
        .iter()
        .zip(&sizes)
        .enumerate()
        .map(|(i, (&k, &n))| {
            if b.skip.contains(&i) {
                return n;
            }
            let k = k.max(floor(n));
            (k.div_ceil(b.round_to) * b.round_to).min(n)
        })
        .collect())
}

/// The global threshold: kept counts before rounding.
fn global(ratio: f64, scores: &[Vec<f64>], skip: &[usize], floor: &dyn Fn(usize) -> usize) -> Vec<usize> {
    let mut kept: Vec<usize> = scores.iter().map(|s| s.len()).collect();
    let mut all: Vec<(f64, usize, usize)> = Vec::new();
    for (i, s) in scores.iter().enumerate().filter(|(i, _)| !skip.contains(i)) {
        let max = s.iter().fold(0.0f64, |m, &x| m.max(x.abs()));
        let scale = if max > 0.0 { 1.0 / max } else { 0.0 };
        all.extend(s.iter().enumerate().map(|(j, &x)| (x * scale, i, j)));
    }
    let target = count_of(ratio, all.len(), Rounding::Down);
    all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(b.2.cmp(&a.2)));
    let mut removed = 0;
    for &(_, i, _) in &all {
        if removed == target {
            break;
        }
        if kept[i] > floor(scores[i].len()) {
            kept[i] -= 1;
            removed += 1;
        }
    }
    kept
}

/// The indices of the `k` highest scores, in ascending index order (ties keep the lower
/// index).
pub fn top_k(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx.sort_unstable();
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(round_to: usize, min_channels: usize, skip: &[usize]) -> Bounds<'_> {
        Bounds { round_to, min_channels, skip }
    }

    /// `Schedule::keeping` round-trips every kept count of every group size up to 512.
    #[test]
    fn keeping_gives_back_the_counts() {
        for n in 1..=512usize {
            let kept: Vec<usize> = (1..=n).collect();
            let full = vec![n; n];
            let scores: Vec<Vec<f64>> = full.iter().map(|&c| vec![1.0; c]).collect();
            assert_eq!(keep_counts(&Schedule::keeping(&kept, &full), &scores, bounds(1, 1, &[])).unwrap(), kept, "n = {n}");
        }
    }

    fn flat(sizes: &[usize]) -> Vec<Vec<f64>> {
        sizes.iter().map(|&n| (0..n).map(|j| j as f64 + 1.0).collect()).collect()
    }

    #[test]
    fn uniform_removes_the_floor_of_the_ratio() {
        let s = flat(&[10; 13]);
        let k = keep_counts(&Schedule::Uniform(0.55), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k, vec![5; 13]); // floor(5.5) = 5 removed
        let k = keep_counts(&Schedule::Uniform(0.0), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k, vec![10; 13]);
    }

    #[test]
    fn ratios_with_few_decimals_remove_exactly_that_fraction() {
        // The reported fault: 0.29 of 100 channels kept 72 (28.999999999999996 floored).
        let mut sizes = vec![10; 13];
        sizes[7..].fill(100);
        let s = flat(&sizes);
        let k = keep_counts(&Schedule::Uniform(0.29), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k[7..], [71; 6]);
        assert_eq!(k[0], 8); // floor(2.9) = 2 removed
        let k28 = keep_counts(&Schedule::Uniform(0.28), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k28[7..], [72; 6]);
        let k = keep_counts(&Schedule::Uniform(0.7), &flat(&[10; 13]), bounds(1, 1, &[])).unwrap();
        assert_eq!(k, vec![3; 13]);
        let k = keep_counts(&Schedule::Uniform(0.1), &flat(&[10; 13]), bounds(1, 1, &[])).unwrap();
        assert_eq!(k, vec![9; 13]);
        let mut rs = vec![0.0; 13];
        rs[7] = 0.29;
        rs[8] = 0.57; // 56.99999999999999 in f64: still 57
        let k = keep_counts(&Schedule::Layers(rs), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k[7..9], [71, 43]);
        // Global: 0.29 of 7 * 10 + 6 * 100 = 670 channels is 194.3 -> 194 removed.
        let k = keep_counts(&Schedule::Global(0.29), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k.iter().sum::<usize>(), 670 - 194);
        // 0.29 of 12 * 50 + 200 = 800 is 232 (f64: 231.99999999999997).
        let mut sizes = vec![50; 13];
        sizes[12] = 200;
        let k = keep_counts(&Schedule::Global(0.29), &flat(&sizes), bounds(1, 1, &[])).unwrap();
        assert_eq!(k.iter().sum::<usize>(), 800 - 232);
    }

    #[test]
    fn round_to_rounds_kept_up_and_caps() {
        let s = flat(&[10, 10, 10, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6]);
        let k = keep_counts(&Schedule::Uniform(0.7), &s, bounds(4, 1, &[])).unwrap();
        // 10 -> keep 3 -> 4; 6 -> keep 2 -> 4
        assert_eq!(k[..4], [4, 4, 4, 4]);
        let k = keep_counts(&Schedule::Uniform(0.1), &s, bounds(4, 1, &[])).unwrap();
        // 10 -> keep 9 -> 12 capped at 10; 6 -> keep 6
        assert_eq!(k[..4], [10, 10, 10, 6]);
    }

    #[test]
    fn floors_and_skips() {
        let s = flat(&[8; 13]);
        let k = keep_counts(&Schedule::Uniform(0.9), &s, bounds(1, 3, &[0, 12])).unwrap();
        assert_eq!(k[0], 8);
        assert_eq!(k[12], 8);
        assert!(k[1..12].iter().all(|&c| c == 3), "{k:?}");
        let k = keep_counts(&Schedule::Uniform(0.99), &s, bounds(1, 0, &[])).unwrap();
        assert!(k.iter().all(|&c| c == 1), "{k:?}");
    }

    #[test]
    fn global_never_empties_a_layer_and_hits_the_target() {
        // Layer 3's scores are all tiny before normalisation and all zero for layer 5.
        let mut s = flat(&[8; 13]);
        s[3] = vec![1e-9; 8];
        s[5] = vec![0.0; 8];
        let k = keep_counts(&Schedule::Global(0.95), &s, bounds(1, 1, &[])).unwrap();
        assert!(k.iter().all(|&c| c >= 1), "{k:?}");
        let k = keep_counts(&Schedule::Global(0.5), &s, bounds(1, 2, &[])).unwrap();
        assert!(k.iter().all(|&c| c >= 2), "{k:?}");
        assert_eq!(k.iter().sum::<usize>(), 13 * 8 - 52);
        // The zero-score layer goes to its floor first.
        assert_eq!(k[5], 2);
    }

    #[test]
    fn global_normalises_per_layer() {
        // Same shape of scores, layer 1 scaled up 1000x: both lose the same count.
        let mut s = flat(&[8; 13]);
        s[1] = s[1].iter().map(|x| x * 1000.0).collect();
        let k = keep_counts(&Schedule::Global(0.5), &s, bounds(1, 1, &[])).unwrap();
        assert_eq!(k[0], k[1], "{k:?}");
    }

    #[test]
    fn bad_ratios_name_the_value() {
        let s = flat(&[8; 13]);
        for r in [1.0, -0.1, f64::NAN, 1.5] {
            let e = keep_counts(&Schedule::Uniform(r), &s, bounds(1, 1, &[])).unwrap_err().to_string();
            assert!(e.contains(&r.to_string()) && e.contains("[0, 1)"), "{e}");
        }
        let e = keep_counts(&Schedule::Layers(vec![0.5; 12]), &s, bounds(1, 1, &[])).unwrap_err().to_string();
        assert!(e.contains("12 entries") && e.contains("13") && e.contains("pruned group"), "{e}");
        let mut rs = vec![0.5; 13];
        rs[4] = 2.0;
        let e = Schedule::Layers(rs).validate().unwrap_err().to_string();
        assert!(e.contains("layer 4") && e.contains('2'), "{e}");
    }

    #[test]
    fn top_k_keeps_the_best_in_order_ties_to_lower_index() {
        assert_eq!(top_k(&[0.5, 3.0, 1.0, 3.0, 0.1], 3), vec![1, 2, 3]);
        assert_eq!(top_k(&[1.0, 1.0, 1.0], 2), vec![0, 1]);
    }
}
