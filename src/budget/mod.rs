//! Latency budgets: per-layer latency tables measured on a device, the channel staircase they
//! show, and choosing kept counts per dependency group so that a network meets a latency target
//! while keeping the most importance (NetAdapt, AMC and HALP measure such tables; see
//! `README.md`, "Latency budgets").
//!
//! - [`Curve`]: one layer's latency as a function of one channel count, measured on a grid.
//! - [`LayerTable`]: a conv's latency along its output and its input count; points between
//!   grid values are estimated by linear interpolation along each axis, and a point off both
//!   axes by the product of the two relative factors, `T(i, o) = T(i, O) * T(I, o) / T(I, O)`
//!   (exact when the cost is proportional to `i * o`, as a conv's MACs are).
//! - [`Curve::plateaus`], [`Curve::snap`]: the staircase and `round_to: auto`.
//! - [`solve`]: the greedy schedule and its bound.
//!
//! This module is data and arithmetic; [`profile`] measures a table on a device (through
//! [`crate::tune`]'s layer timings) and the chosen networks [`refine`] checks.

pub mod profile;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Seconds of one layer at a set of channel counts (sorted by count, counts distinct).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub points: Vec<(usize, f64)>,
}

/// Relative tolerance within which two grid latencies count as the same step (3%: below the
/// spread the tuner accepts as a near tie, so noise does not cut a plateau).
pub const PLATEAU_TOLERANCE: f64 = 0.03;

impl Curve {
    /// A curve from `(count, seconds)` points in any order.
    ///
    /// Errors: no point, a repeated count, a count of 0, or a latency that is not finite and
    /// positive, each named.
    pub fn new(mut points: Vec<(usize, f64)>) -> Result<Curve> {
        points.sort_by_key(|p| p.0);
        if points.is_empty() {
            return Err(Error::invalid("latency curve", "no points", "measure at least one channel count"));
        }
        for w in points.windows(2) {
            if w[0].0 == w[1].0 {
                return Err(Error::invalid("latency curve", format!("count {} twice", w[0].0), "give each count once"));
            }
        }
        if let Some(p) = points.iter().find(|p| p.0 == 0 || !(p.1.is_finite() && p.1 > 0.0)) {
            return Err(Error::invalid("latency curve point", format!("{p:?}"), "counts >= 1, seconds finite and > 0"));
        }
        Ok(Curve { points })
    }

    /// Seconds at `count`: the measured value on a grid point, linear interpolation between
    /// the two grid points around it, the nearest end's value outside the grid.
    pub fn at(&self, count: usize) -> f64 {
        let p = &self.points;
        match p.binary_search_by_key(&count, |q| q.0) {
            Ok(i) => p[i].1,
            Err(0) => p[0].1,
            Err(i) if i == p.len() => p[p.len() - 1].1,
            Err(i) => {
                let ((c0, t0), (c1, t1)) = (p[i - 1], p[i]);
                t0 + (t1 - t0) * (count - c0) as f64 / (c1 - c0) as f64
            }
        }
    }

    /// The staircase: maximal runs of consecutive grid points whose latency stays within
    /// [`PLATEAU_TOLERANCE`] of the run's first point, as `(first count, last count, seconds
    /// of the first)`. A new run starts where the latency steps up (or down) by more.
    pub fn plateaus(&self) -> Vec<(usize, usize, f64)> {
        let mut out: Vec<(usize, usize, f64)> = Vec::new();
        for &(c, t) in &self.points {
            match out.last_mut() {
                Some(run) if (t - run.2).abs() <= PLATEAU_TOLERANCE * run.2 => run.1 = c,
                _ => out.push((c, c, t)),
            }
        }
        out
    }

    /// The counts worth keeping: every grid count measured faster than every larger one
    /// (ascending; the largest always). On a compiler's staircase most counts are not: XLA on
    /// the CPU runs a conv with 24 outputs slower than one with 32.
    pub fn worth_keeping(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut best = f64::INFINITY;
        for &(c, t) in self.points.iter().rev() {
            if t < best {
                out.push(c);
                best = t;
            }
        }
        out.reverse();
        out
    }

    /// The counts where latency steps: the first count of every plateau but the first.
    pub fn steps(&self) -> Vec<usize> {
        self.plateaus().iter().skip(1).map(|p| p.0).collect()
    }

    /// `round_to: auto`: a kept count moved to the top of the measured plateau it lies on
    /// (the most channels for the same latency), or down to the top of the plateau below when
    /// it sits on the step itself (the first grid count of a higher plateau that is not the
    /// grid's first: one step of latency saved for the channels between). A count past a
    /// plateau's top but short of the next grid point is on the rising edge: it goes down to
    /// that top. Counts below the grid stay. Never above `max`.
    pub fn snap(&self, count: usize, max: usize) -> usize {
        let plateaus = self.plateaus();
        let Some(i) = plateaus.iter().rposition(|p| p.0 <= count) else { return count.min(max) };
        let (first, last, _) = plateaus[i];
        let snapped = if count == first && i > 0 { plateaus[i - 1].1 } else { last };
        snapped.min(max)
    }
}

/// A conv's latency table: along its output count with the input at full (`out`), along its
/// input count with the output at full (`inp`). A depthwise conv (one count for both) has
/// only `out`, measured moving both together.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTable {
    /// The conv's graph node.
    pub node: String,
    /// The pruned group that sets its output count, and its input count (`None`: fixed).
    pub out_group: Option<usize>,
    pub in_group: Option<usize>,
    pub depthwise: bool,
    /// Full input and output counts.
    pub cin: usize,
    pub cout: usize,
    pub out: Curve,
    pub inp: Option<Curve>,
}

impl LayerTable {
    /// Estimated seconds with `cin` inputs and `cout` outputs (see the module docs).
    pub fn estimate(&self, cin: usize, cout: usize) -> f64 {
        if self.depthwise {
            return self.out.at(cout);
        }
        let full = self.out.at(self.cout);
        match &self.inp {
            Some(inp) if full > 0.0 => self.out.at(cout) * inp.at(cin) / full,
            _ => self.out.at(cout),
        }
    }
}

/// A network's latency model on one device: `rest + scale * (sum of its conv tables)`, where
/// `scale` and `rest` come from whole-network measurements ([`Model::fit`]: several widths;
/// [`Model::calibrate`]: one measured network, `scale` 1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    pub layers: Vec<LayerTable>,
    /// Full count of every pruned group.
    pub groups: Vec<usize>,
    /// Seconds of everything the tables leave out (pools, dense layers, the gaps between
    /// kernels), taken as constant.
    pub rest: f64,
    /// How much of a layer's isolated time it costs inside the network.
    #[serde(default = "one")]
    pub scale: f64,
    /// What the table was measured for, `b<batch> <lowering> <dtype> on <device>` (e.g.
    /// `b1 tuned f32 on cpu (cpu)`): a prediction holds for that setting only.
    #[serde(default)]
    pub setting: String,
    /// The network it was measured on (`Arch::describe` of the unpruned network; empty in
    /// tables from before this field): a table is refused for any other.
    #[serde(default)]
    pub network_desc: String,
    /// In-network curves (optional): per pruned group, the whole network's seconds with that
    /// group at each count and every other group full, measured side by side. When present the
    /// prediction is first order in them ([`Model::predict`]).
    #[serde(default)]
    pub network: Vec<Curve>,
}

/// Where a suite keeps its latency table by default: beside its result CSV,
/// `<csv stem>-latency-table.json` (the report draws its staircase from there).
pub fn table_beside(csv: &std::path::Path) -> std::path::PathBuf {
    let stem = csv.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    csv.with_file_name(format!("{stem}-latency-table.json"))
}

/// The setting text of [`Model::setting`] without the device: `b<batch> <lowering> <dtype>`.
pub fn setting_key(batch: usize, lowering: &str, dtype: &str) -> String {
    format!("b{batch} {lowering} {dtype}")
}

fn one() -> f64 {
    1.0
}

impl Model {
    /// Predicted seconds with `kept[g]` channels in pruned group `g`. Without in-network
    /// curves: `rest + scale * sum` of the conv tables. With them (NetAdapt's measurements,
    /// one group at a time): the unpruned network's seconds plus each group's own change,
    /// `T0 + sum_g (N_g(k_g) - T0)`, plus the part of the conv tables that no single group
    /// explains: for each conv between two different groups, `scale * (T(i, o) - T(I, o) -
    /// T(i, O) + T(I, O))` (zero when only one of its counts moved).
    pub fn predict(&self, kept: &[usize]) -> f64 {
        if self.network.len() != self.groups.len() || self.network.is_empty() {
            return self.rest + self.scale * self.sum(kept);
        }
        let t0 = self.network.iter().map(|c| c.at(c.points.last().map_or(0, |p| p.0))).sum::<f64>() / self.network.len() as f64;
        let first: f64 = self.network.iter().zip(kept).map(|(c, &k)| c.at(k) - t0).sum();
        let joint: f64 = self
            .layers
            .iter()
            .filter_map(|l| match (l.in_group, l.out_group) {
                (Some(gi), Some(go)) if gi != go && !l.depthwise => {
                    let (i, o) = (kept[gi], kept[go]);
                    Some(l.estimate(i, o) - l.estimate(l.cin, o) - l.estimate(i, l.cout) + l.estimate(l.cin, l.cout))
                }
                _ => None,
            })
            .sum();
        t0 + first + self.scale * joint
    }

    /// The sum of the conv tables' estimates at `kept`, seconds.
    pub fn sum(&self, kept: &[usize]) -> f64 {
        self
                .layers
                .iter()
                .map(|l| {
                    let cout = l.out_group.map_or(l.cout, |g| kept[g]);
                    let cin = l.in_group.map_or(l.cin, |g| kept[g]);
                    l.estimate(cin, cout)
                })
                .sum::<f64>()
    }

    /// Reads a table written by `prunebench profile` (JSON).
    ///
    /// Errors: the file cannot be read, or is not a latency table; both name the path.
    pub fn read(path: &std::path::Path) -> Result<Model> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| {
            Error::file(path, format!("is not a latency table ({e}); make one with `prunebench profile --out {}`", path.display()))
        })
    }

    /// Checks the table was measured on this network: the same pruned groups and, when the
    /// table names it, the same architecture (`arch.describe()`: form, input, widths).
    ///
    /// Errors: either differs, naming both.
    pub fn check_for(&self, arch: &crate::model::Arch) -> Result<()> {
        let g = arch.graph()?;
        let gs = crate::graph::groups::groups(&g);
        let full: Vec<usize> = crate::prune::targets(&g, &gs).iter().map(|&id| gs.all()[id].channels).collect();
        if self.groups != full {
            return Err(Error::invalid(
                "latency table",
                format!("pruned groups of {:?} channels", self.groups),
                format!("this network has {full:?}: profile this network (`prunebench profile`)"),
            ));
        }
        let desc = arch.describe();
        if !self.network_desc.is_empty() && self.network_desc != desc {
            return Err(Error::invalid(
                "latency table",
                format!("measured on {}", self.network_desc),
                format!("this network is {desc}: profile this network (`prunebench profile`)"),
            ));
        }
        Ok(())
    }

    /// Group `g`'s curve in this model: the predicted seconds with `g` at each count of its
    /// convs' output grids and every other group full.
    pub fn group_curve(&self, g: usize) -> Curve {
        let mut counts: Vec<usize> = match self.network.get(g) {
            Some(c) => c.points.iter().map(|p| p.0).collect(),
            None => self.layers.iter().filter(|l| l.out_group == Some(g)).flat_map(|l| l.out.points.iter().map(|p| p.0)).collect(),
        };
        counts.push(self.groups[g]);
        counts.retain(|&k| k >= 1 && k <= self.groups[g]);
        counts.sort_unstable();
        counts.dedup();
        let mut kept = self.groups.clone();
        Curve {
            points: counts
                .into_iter()
                .map(|k| {
                    kept[g] = k;
                    (k, self.predict(&kept))
                })
                .collect(),
        }
    }

    /// The schedule's candidates per group: the counts worth keeping on the group's curve
    /// ([`Curve::worth_keeping`]) of at least `min_channels`, and the full count; a group in
    /// `skip` only its full count.
    pub fn candidates(&self, min_channels: usize, skip: &[usize]) -> Vec<Vec<usize>> {
        (0..self.groups.len())
            .map(|g| {
                let n = self.groups[g];
                if skip.contains(&g) {
                    return vec![n];
                }
                let mut c: Vec<usize> = self.group_curve(g).worth_keeping().into_iter().filter(|&k| k >= min_channels.max(1)).collect();
                c.push(n);
                c.sort_unstable();
                c.dedup();
                c
            })
            .collect()
    }

    /// `round_to: auto`: each group's kept count snapped on its group curve
    /// ([`Curve::snap`]).
    pub fn snap(&self, kept: &[usize]) -> Vec<usize> {
        kept.iter().enumerate().map(|(g, &k)| self.group_curve(g).snap(k, self.groups[g])).collect()
    }

    /// Sets `scale` to 1 and `rest` so the prediction at `kept` equals `measured` seconds (the
    /// network measured once: what its convs' tables leave out, pools, dense layers, the gaps
    /// between kernels, is taken as constant). Returns `rest`, negative when the isolated
    /// layers sum to more than the network (a sign the table overstates in-network layer time).
    pub fn calibrate(&mut self, kept: &[usize], measured: f64) -> f64 {
        self.scale = 1.0;
        self.rest = measured - self.sum(kept);
        self.rest
    }

    /// Fits `scale` and `rest` by least squares to whole networks measured at `points`
    /// (`(kept counts, seconds)`, at least two with different table sums), e.g. the network at
    /// several uniform widths measured side by side, with `rest >= 0` (when the free fit's rest
    /// is negative, `scale` alone through the origin: a negative rest predicts small networks
    /// below zero). Falls back to [`calibrate`](Self::calibrate) on the first point when the
    /// fit is degenerate (one distinct sum, or a scale <= 0).
    /// Returns the largest relative error of the fit over `points`.
    pub fn fit(&mut self, points: &[(Vec<usize>, f64)]) -> f64 {
        let xs: Vec<f64> = points.iter().map(|(k, _)| self.sum(k)).collect();
        let n = xs.len() as f64;
        let (mx, my) = (xs.iter().sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
        let var: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
        let cov: f64 = xs.iter().zip(points).map(|(x, p)| (x - mx) * (p.1 - my)).sum();
        let sxx: f64 = xs.iter().map(|x| x * x).sum();
        let sxy: f64 = xs.iter().zip(points).map(|(x, p)| x * p.1).sum();
        if points.len() >= 2 && var > 0.0 && cov / var > 0.0 && my - cov / var * mx >= 0.0 {
            self.scale = cov / var;
            self.rest = my - self.scale * mx;
        } else if points.len() >= 2 && var > 0.0 && sxx > 0.0 && sxy > 0.0 {
            // The free fit wants a negative rest (it would predict small networks below zero):
            // fit through the origin instead, rest 0.
            self.scale = sxy / sxx;
            self.rest = 0.0;
        } else if let Some((k, t)) = points.first() {
            self.calibrate(k, *t);
        }
        points.iter().map(|(k, t)| (self.predict(k) / t - 1.0).abs()).fold(0.0, f64::max)
    }
}

/// What [`solve`] chose.
#[derive(Clone, Debug, PartialEq)]
pub struct Solution {
    /// Kept channels per pruned group.
    pub kept: Vec<usize>,
    /// Predicted seconds of `kept`.
    pub predicted: f64,
    /// Importance kept (sum of the kept channels' normalised scores).
    pub importance: f64,
    /// Whether the target is met (false when every group is at its floor and it is not).
    pub feasible: bool,
}

/// Chooses kept counts per pruned group from each group's `candidates` (ascending, the full
/// count last; e.g. a table's grid or its plateau tops) so that `model` predicts at most
/// `target` seconds, keeping the most importance. `scores[g]` are group `g`'s channel scores
/// (any criterion, higher = more important), each divided by the group's largest (as the
/// global schedule does); keeping `k` channels keeps the `k` largest.
///
/// Greedy (as NetAdapt, and HALP's knapsack relaxed): from all-full, repeatedly make the move
/// that loses the least importance per predicted second saved, each group's move being down to
/// its nearest lower candidate that is predicted faster (a count that is not faster is skipped
/// over), with the saving computed on the whole model at the current counts (so coupled layers
/// count), until the target is met. Bound: when the latency is a sum of per-group terms and each group's
/// importance lost per second saved does not decrease from one step to the next (true for
/// sorted scores and concave latency), this is the greedy of the multiple-choice knapsack in
/// incremental form, whose result is within one step's importance of the optimum: `OPT -
/// importance <= max over groups of the largest single-step loss` (Sinha & Zoltners, 1979).
///
/// Errors: a group without candidates, a candidate list that does not end at the full count.
pub fn solve(model: &Model, scores: &[Vec<f64>], candidates: &[Vec<usize>], target: f64) -> Result<Solution> {
    let path = greedy_path(model, scores, candidates, target)?;
    let last = path.last().expect("the path starts at all-full");
    Ok(Solution { feasible: last.predicted <= target, ..last.clone() })
}

/// The greedy of [`solve`] move by move: index 0 is all-full, each next entry one move further,
/// until the prediction is at most `stop` seconds or no move is left (`stop` 0: to the floor).
/// Importance falls and the prediction falls along it, so a target picks a point on it.
///
/// Errors: as [`solve`].
pub fn greedy_path(model: &Model, scores: &[Vec<f64>], candidates: &[Vec<usize>], stop: f64) -> Result<Vec<Solution>> {
    let n = model.groups.len();
    if scores.len() != n || candidates.len() != n {
        return Err(Error::invalid(
            "latency schedule",
            format!("{} score lists, {} candidate lists", scores.len(), candidates.len()),
            format!("give one per pruned group ({n})"),
        ));
    }
    // Prefix sums of each group's scores, largest first, normalised by the largest.
    let prefix: Vec<Vec<f64>> = scores
        .iter()
        .map(|s| {
            let mut v: Vec<f64> = s.iter().map(|x| x.abs()).collect();
            v.sort_by(|a, b| b.total_cmp(a));
            let max = v.first().copied().filter(|m| *m > 0.0).unwrap_or(1.0);
            let mut p = vec![0.0];
            for x in v {
                p.push(p.last().unwrap() + x / max);
            }
            p
        })
        .collect();
    for (g, c) in candidates.iter().enumerate() {
        if c.last() != Some(&model.groups[g]) || c.windows(2).any(|w| w[0] >= w[1]) || c[0] == 0 {
            return Err(Error::invalid(
                "latency schedule candidates",
                format!("group {g}: {c:?}"),
                format!("ascending counts >= 1 ending at the full {}", model.groups[g]),
            ));
        }
    }
    let mut at: Vec<usize> = candidates.iter().map(|c| c.len() - 1).collect();
    let kept = |at: &[usize]| -> Vec<usize> { at.iter().zip(candidates).map(|(&i, c)| c[i]).collect() };
    let point = |at: &[usize], predicted: f64| {
        let k = kept(at);
        let importance = k.iter().zip(&prefix).map(|(&c, p)| p[c.min(p.len() - 1)]).sum();
        Solution { kept: k, predicted, importance, feasible: predicted <= stop }
    };
    let mut now = model.predict(&kept(&at));
    let mut path = vec![point(&at, now)];
    while now > stop {
        let mut best: Option<(f64, usize, usize, f64)> = None; // (loss per second, group, to, new prediction)
        for g in 0..n {
            // The group's move: down to the nearest lower candidate that is predicted faster.
            for to in (0..at[g]).rev() {
                let mut trial = at.clone();
                trial[g] = to;
                let p = model.predict(&kept(&trial));
                let saved = now - p;
                if saved <= 0.0 {
                    continue;
                }
                let loss = prefix[g][candidates[g][at[g]]] - prefix[g][candidates[g][to]];
                let rate = loss / saved;
                if best.is_none_or(|b| rate < b.0) {
                    best = Some((rate, g, to, p));
                }
                break;
            }
        }
        let Some((_, g, to, p)) = best else { break };
        at[g] = to;
        now = p;
        path.push(point(&at, now));
    }
    Ok(path)
}

/// One measured try of [`refine`]: a point of the greedy path and what it measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Try {
    /// Its index on the greedy path ([`greedy_path`]; 0 = unpruned).
    pub step: usize,
    /// Kept channels per pruned group.
    pub kept: Vec<usize>,
    /// The model's prediction and the measurement, as fractions of the unpruned network's
    /// (the measurement: side by side with the unpruned network).
    pub predicted: f64,
    pub measured: f64,
    /// Importance kept (as [`Solution::importance`]).
    pub importance: f64,
}

/// What [`refine`] measured and chose.
#[derive(Clone, Debug, PartialEq)]
pub struct Refined {
    /// Every point measured, in order.
    pub tries: Vec<Try>,
    /// Index (into `tries`) of the chosen point: the earliest on the path (the most
    /// importance) measured at most `target * (1 + tolerance)`; when none is, the fastest.
    pub chosen: usize,
    /// Whether the chosen point is within `tolerance` of the target.
    pub met: bool,
    /// Points on the greedy path (the last is the candidates' floor).
    pub path_len: usize,
}

impl Refined {
    pub fn best(&self) -> &Try {
        &self.tries[self.chosen]
    }
}

/// The measured loop (NetAdapt's empirical measurements): the greedy's path from the unpruned
/// network to the candidates' floor is computed once on the model; the model's guess for
/// `target` (a fraction of the unpruned latency) is measured with `measure` (the network's
/// latency as a fraction of the unpruned one's, side by side); when it misses by more than
/// `tolerance` (relative), a second guess corrected by the miss (`target^2 / measured`) is
/// measured, then the path is bisected between the last point measured too slow and the first
/// measured fast enough, at most `measurements` measurements in all. The model ranks the moves;
/// the measurements decide where on the path the target is met. When even the path's floor
/// measures too slow the target is out of reach of the candidates (the fastest is chosen and
/// `met` is false).
///
/// Errors: those of [`greedy_path`] and of `measure`.
pub fn refine(
    model: &Model,
    scores: &[Vec<f64>],
    candidates: &[Vec<usize>],
    target: f64,
    tolerance: f64,
    measurements: usize,
    mut measure: impl FnMut(&[usize]) -> Result<f64>,
) -> Result<Refined> {
    let full = model.predict(&model.groups);
    let path = greedy_path(model, scores, candidates, 0.0)?;
    let last = path.len() - 1;
    let guess = |aim: f64| path.iter().position(|s| s.predicted <= aim * full).unwrap_or(last);
    let mut tries: Vec<Try> = Vec::new();
    let budget = measurements.max(1);
    // Measures step `i` (once); `None` when the budget is spent.
    let mut probe = |i: usize, tries: &mut Vec<Try>| -> Result<Option<f64>> {
        if let Some(t) = tries.iter().find(|t| t.step == i) {
            return Ok(Some(t.measured));
        }
        if tries.len() >= budget {
            return Ok(None);
        }
        let p = &path[i];
        let m = measure(&p.kept)?;
        tries.push(Try { step: i, kept: p.kept.clone(), predicted: p.predicted / full, measured: m, importance: p.importance });
        Ok(Some(m))
    };
    let fast = |m: f64| m <= target * (1.0 + tolerance);
    let close = |m: f64| (m / target - 1.0).abs() <= tolerance;
    // Bracket: `slow` measured too slow (the unpruned network counts as 1), `quick` fast enough.
    let (mut slow, mut quick): (Option<usize>, Option<usize>) = (None, None);
    let note = |i: usize, m: f64, slow: &mut Option<usize>, quick: &mut Option<usize>| {
        if fast(m) {
            *quick = Some(quick.map_or(i, |q| q.min(i)));
        } else {
            *slow = Some(slow.map_or(i, |s| s.max(i)));
        }
    };
    let first = guess(target);
    if let Some(m) = probe(first, &mut tries)? {
        note(first, m, &mut slow, &mut quick);
        if !close(m) && m > 0.0 {
            let second = guess(target * target / m);
            let second = match (quick, slow) {
                (None, _) if second <= first => (first + 1).min(last),
                (_, None) if second >= first => first.saturating_sub(1),
                _ => second,
            };
            if second != first {
                if let Some(m2) = probe(second, &mut tries)? {
                    note(second, m2, &mut slow, &mut quick);
                }
            }
            // Still nothing fast enough: try the floor.
            if quick.is_none() {
                if let Some(m3) = probe(last, &mut tries)? {
                    note(last, m3, &mut slow, &mut quick);
                }
            }
            // Bisect between the slow and the quick side.
            loop {
                let done = tries.iter().any(|t| Some(t.step) == quick && close(t.measured));
                let (lo, hi) = match (slow, quick) {
                    (s, Some(q)) => (s.unwrap_or(0), q),
                    _ => break,
                };
                if done || hi <= lo + 1 {
                    break;
                }
                let mid = (lo + hi) / 2;
                match probe(mid, &mut tries)? {
                    Some(m) => note(mid, m, &mut slow, &mut quick),
                    None => break,
                }
            }
        }
    }
    let chosen = match quick {
        Some(q) => tries.iter().position(|t| t.step == q).expect("measured"),
        None => (0..tries.len()).min_by(|&a, &b| tries[a].measured.total_cmp(&tries[b].measured)).expect("at least one try"),
    };
    let met = close(tries[chosen].measured);
    Ok(Refined { tries, chosen, met, path_len: path.len() })
}

/// `round_to` of a pruning: a fixed multiple, or `auto` (each group's kept count snapped on
/// its measured staircase, [`Model::snap`]; needs a latency table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTo {
    Multiple(usize),
    Auto,
}

impl std::str::FromStr for RoundTo {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "auto" => Ok(RoundTo::Auto),
            t => match t.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(RoundTo::Multiple(n)),
                _ => Err(Error::invalid("round_to", s, "a multiple >= 1 (1 = no rounding) or auto (the measured staircase)")),
            },
        }
    }
}

impl RoundTo {
    /// The multiple a pruning plan rounds to: `auto` rounds to 1 there and snaps the counts
    /// on a table afterwards ([`snap_counts`]).
    pub fn multiple(self) -> usize {
        match self {
            RoundTo::Multiple(n) => n,
            RoundTo::Auto => 1,
        }
    }
}

impl std::fmt::Display for RoundTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RoundTo::Multiple(n) => write!(f, "{n}"),
            RoundTo::Auto => f.write_str("auto"),
        }
    }
}

/// `round_to: auto` on a pruning plan: the counts `plan` keeps in `net` (its schedule with
/// `ctx`'s scores) and the same counts snapped on `model`'s group curves ([`Model::snap`]);
/// prune with `Schedule::keeping(&snapped, &model.groups)`.
///
/// Errors: those of [`crate::prune::keep_sets`].
pub fn snap_counts(
    model: &Model,
    net: &crate::model::Network,
    plan: &crate::prune::Plan,
    ctx: &crate::prune::ScoreContext,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let counts: Vec<usize> = crate::prune::keep_sets(net, plan, ctx)?.iter().map(|k| k.len()).collect();
    let snapped = model.snap(&counts);
    Ok((counts, snapped))
}

/// A latency schedule's result ([`choose`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Choice {
    /// Kept channels per pruned group.
    pub kept: Vec<usize>,
    /// Target, and the model's prediction, as fractions of the model's unpruned prediction.
    pub target: f64,
    pub predicted: f64,
    /// Measured at pruning time (fraction of the unpruned network, side by side), when refined.
    pub measured: Option<f64>,
    /// Networks measured by the refinement (0 without).
    pub measurements: usize,
    /// False when the refinement's choice is faster than the target by more than its
    /// tolerance (one move of the greedy path steps over the band; the next slower point
    /// measured too slow).
    pub met: bool,
}

impl Choice {
    /// Checkpoint metadata (`prunebench.latency.*`): target and predicted ms and fractions, the
    /// model's setting, and the refinement's measurement. `target_ms` is the target fraction of
    /// `unpruned_s` (the unpruned network as measured, when it was) or else of the model's
    /// unpruned prediction; `predicted_ms` is always the model's. Read back by `latency` and
    /// the suites.
    pub fn meta(&self, model: &Model, unpruned_s: Option<f64>) -> Vec<(String, String)> {
        let full = model.predict(&model.groups);
        let mut m = vec![
            ("target_ms", format!("{:.4}", self.target * unpruned_s.unwrap_or(full) * 1e3)),
            ("predicted_ms", format!("{:.4}", self.predicted * full * 1e3)),
            ("setting", model.setting.clone()),
            ("predicted_fraction", format!("{:.5}", self.predicted)),
            ("target_fraction", format!("{:.5}", self.target)),
            ("measurements", self.measurements.to_string()),
        ];
        if let Some(x) = self.measured {
            m.push(("measured_fraction", format!("{:.5}", x)));
        }
        m.into_iter().map(|(k, v)| (format!("prunebench.latency.{k}"), v)).collect()
    }
}

/// The latency schedule: kept counts per group from `model`'s candidates (at least
/// `min_channels`, groups in `skip` full) for `target` (a fraction of the unpruned latency),
/// solved on the model ([`solve`]), and with `refine = Some((measurements, tolerance, measure))`
/// checked and corrected by measurement ([`refine`]).
///
/// Errors: the model cannot meet the target with its candidates (without refinement), or no
/// measured choice came within `tolerance` of it (with), each naming the closest reached and
/// the fixes; those of [`solve`] and `measure`.
#[allow(clippy::type_complexity)]
pub fn choose(
    model: &Model,
    scores: &[Vec<f64>],
    min_channels: usize,
    skip: &[usize],
    target: f64,
    refine_with: Option<(usize, f64, &mut dyn FnMut(&[usize]) -> Result<f64>)>,
) -> Result<Choice> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(Error::invalid("latency target", target, "a fraction of the unpruned latency in (0, 1], e.g. 0.5"));
    }
    let candidates = model.candidates(min_channels, skip);
    let full = model.predict(&model.groups);
    match refine_with {
        None => {
            let s = solve(model, scores, &candidates, target * full)?;
            if !s.feasible {
                return Err(Error::invalid(
                    "latency target",
                    format!("{target} of the unpruned ({:.3} ms)", target * full * 1e3),
                    format!(
                        "the table's smallest choice predicts {:.3} of the unpruned; raise the target, lower the minimum channels or profile a finer grid",
                        s.predicted / full
                    ),
                ));
            }
            Ok(Choice { kept: s.kept, target, predicted: s.predicted / full, measured: None, measurements: 0, met: true })
        }
        Some((n, tolerance, measure)) => {
            let r = refine(model, scores, &candidates, target, tolerance, n, measure)?;
            let b = r.best();
            if b.measured > target * (1.0 + tolerance) {
                let floor = r.tries.iter().any(|t| t.step + 1 == r.path_len);
                return Err(Error::invalid(
                    "latency target",
                    target,
                    if floor {
                        format!(
                            "out of reach here: the smallest candidate network measured {:.3} of the unpruned; raise the target, \
                             lower the minimum channels, or measure at a larger batch where fixed per-call costs weigh less",
                            b.measured
                        )
                    } else {
                        format!(
                            "not reached in {} measurements (the fastest ran at {:.3} of the unpruned); allow more (--refine) or \
                             raise the target",
                            r.tries.len(),
                            b.measured
                        )
                    },
                ));
            }
            Ok(Choice {
                kept: b.kept.clone(),
                target,
                predicted: b.predicted,
                measured: Some(b.measured),
                measurements: r.tries.len(),
                met: r.met,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(p: &[(usize, f64)]) -> Curve {
        Curve::new(p.to_vec()).unwrap()
    }

    #[test]
    fn interpolation_between_and_outside_the_grid() {
        let c = curve(&[(8, 1.0), (16, 3.0), (32, 4.0)]);
        assert_eq!((c.at(8), c.at(12), c.at(16), c.at(24), c.at(4), c.at(64)), (1.0, 2.0, 3.0, 3.5, 1.0, 4.0));
        assert!(Curve::new(vec![]).is_err());
        assert!(Curve::new(vec![(8, 1.0), (8, 2.0)]).unwrap_err().to_string().contains("count 8 twice"));
        assert!(Curve::new(vec![(0, 1.0)]).is_err() && Curve::new(vec![(4, f64::NAN)]).is_err());
    }

    /// A synthetic staircase: flat over 1..=8, a step at 9, flat to 16, a step at 17.
    fn stairs() -> Curve {
        let mut p = Vec::new();
        for c in 1..=24 {
            let t = if c <= 8 { 1.0 } else if c <= 16 { 2.0 } else { 3.0 };
            p.push((c, t * (1.0 + 0.01 * ((c * 7) % 3) as f64))); // 0-2% noise
        }
        curve(&p)
    }

    #[test]
    fn staircase_and_round_to_auto() {
        let s = stairs();
        assert_eq!(s.plateaus().iter().map(|p| (p.0, p.1)).collect::<Vec<_>>(), [(1, 8), (9, 16), (17, 24)]);
        assert_eq!(s.steps(), [9, 17]);
        // Inside a plateau: up to its top (same latency, more channels).
        assert_eq!((s.snap(5, 24), s.snap(12, 24), s.snap(20, 24)), (8, 16, 24));
        // On the step itself: down to the plateau below.
        assert_eq!((s.snap(9, 24), s.snap(17, 24)), (8, 16));
        // The first plateau's first count stays; never above the group's size.
        assert_eq!((s.snap(1, 24), s.snap(20, 18)), (8, 18));
        // Worth keeping: only counts faster than every larger one (24 is slower than 32 here).
        let odd = curve(&[(8, 1.0), (16, 0.5), (24, 2.0), (32, 1.5), (40, 2.5)]);
        assert_eq!(odd.worth_keeping(), [16, 32, 40]);
        assert_eq!(s.worth_keeping().last(), Some(&24));
        // A coarse grid: counts between grid points belong to the plateau of the point below.
        let g = curve(&[(16, 1.0), (32, 1.01), (48, 2.0), (64, 2.02)]);
        assert_eq!((g.snap(20, 64), g.snap(40, 64), g.snap(48, 64), g.snap(50, 64)), (32, 32, 32, 64));
    }

    /// Two groups, one conv each, latency separable per group.
    fn separable(a: Curve, b: Curve) -> Model {
        Model {
            layers: vec![
                LayerTable { node: "a".into(), out_group: Some(0), in_group: None, depthwise: false, cin: 3, cout: 4, out: a, inp: None },
                LayerTable { node: "b".into(), out_group: Some(1), in_group: None, depthwise: false, cin: 4, cout: 4, out: b, inp: None },
            ],
            groups: vec![4, 4],
            rest: 0.5,
            scale: 1.0,
            setting: String::new(),
            network_desc: String::new(),
            network: vec![],
        }
    }

    #[test]
    fn solver_finds_the_hand_checked_optimum() {
        // Group 0: each channel costs 1 s; group 1: each costs 2 s. Scores: group 0's channels
        // matter (1, 1, 1, 1), group 1's little but one (1, .1, .1, .1).
        let lin = |per: f64| curve(&(1..=4).map(|c| (c, per * c as f64)).collect::<Vec<_>>());
        let m = separable(lin(1.0), lin(2.0));
        assert_eq!(m.predict(&[4, 4]), 0.5 + 4.0 + 8.0);
        let scores = vec![vec![1.0, 1.0, 1.0, 1.0], vec![1.0, 0.1, 0.1, 0.1]];
        let cands = vec![vec![1, 2, 3, 4], vec![1, 2, 3, 4]];
        // Target 7 s: drop group 1's three weak channels first (0.1 per 2 s each) -> 0.5 + 4 + 2.
        let s = solve(&m, &scores, &cands, 7.0).unwrap();
        assert_eq!((s.kept.clone(), s.predicted, s.feasible), (vec![4, 1], 6.5, true));
        assert!((s.importance - 5.0).abs() < 1e-12);
        // Target 5 s: then group 0 (1 per s) before group 1's last strong channel (kept: floor 1).
        let s = solve(&m, &scores, &cands, 5.0).unwrap();
        assert_eq!((s.kept, s.predicted), (vec![2, 1], 4.5));
        // Infeasible: every group at its floor.
        let s = solve(&m, &scores, &cands, 1.0).unwrap();
        assert_eq!((s.kept, s.feasible), (vec![1, 1], false));
        assert!(solve(&m, &scores, &[vec![1, 2], vec![1, 4]], 5.0).unwrap_err().to_string().contains("ending at the full 4"));
    }

    /// Against brute force on random separable instances with sorted scores and concave
    /// latency: the greedy is within the bound of the optimum and never worse than it on
    /// latency.
    #[test]
    fn solver_is_within_its_bound_of_brute_force() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for _ in 0..200 {
            let conc = |rng: &mut rand_chacha::ChaCha8Rng| {
                let a: f64 = rng.random_range(0.5..2.0);
                curve(&(1..=5).map(|c| (c, a * (c as f64).sqrt())).collect::<Vec<_>>())
            };
            let (a, b) = (conc(&mut rng), conc(&mut rng));
            let mut m = separable(a, b);
            m.groups = vec![5, 5];
            m.layers[0].cout = 5;
            m.layers[1].cout = 5;
            let scores: Vec<Vec<f64>> = (0..2).map(|_| (0..5).map(|_| rng.random_range(0.01..1.0)).collect()).collect();
            let cands = vec![vec![1, 2, 3, 4, 5], vec![1, 2, 3, 4, 5]];
            let target = rng.random_range(m.predict(&[1, 1])..m.predict(&[5, 5]));
            let s = solve(&m, &scores, &cands, target).unwrap();
            assert!(s.feasible && s.predicted <= target + 1e-12);
            // Brute force and the largest single-step loss.
            let norm = |g: usize| {
                let mut v = scores[g].clone();
                v.sort_by(|x, y| y.total_cmp(x));
                let max = v[0];
                v.into_iter().map(|x| x / max).collect::<Vec<f64>>()
            };
            let (n0, n1) = (norm(0), norm(1));
            let imp = |k0: usize, k1: usize| n0[..k0].iter().sum::<f64>() + n1[..k1].iter().sum::<f64>();
            let mut opt = 0.0f64;
            for k0 in 1..=5 {
                for k1 in 1..=5 {
                    if m.predict(&[k0, k1]) <= target {
                        opt = opt.max(imp(k0, k1));
                    }
                }
            }
            let max_step = n0.iter().chain(&n1).fold(0.0f64, |a, &b| a.max(b));
            assert!(opt - s.importance <= max_step + 1e-9, "greedy {} opt {} bound {}", s.importance, opt, max_step);
        }
    }

    /// The loop on a model that is 30% optimistic below full width: the first choice misses,
    /// the corrected aim meets the target within the tolerance.
    #[test]
    fn refine_corrects_a_biased_model() {
        let lin = |per: f64| curve(&(1..=8).map(|c| (c, per * c as f64)).collect::<Vec<_>>());
        let mut m = separable(lin(1.0), lin(1.0));
        m.groups = vec![8, 8];
        m.layers[0].cout = 8;
        m.layers[1].cout = 8;
        m.rest = 0.0;
        let scores = vec![vec![1.0; 8], vec![1.0; 8]];
        let cands = vec![(1..=8).collect::<Vec<_>>(), (1..=8).collect()];
        // The device: every channel pruned saves only 70% of what the model says.
        let truth = |k: &[usize]| (16.0 - 0.7 * (16 - k[0] - k[1]) as f64) / 16.0;
        let mut calls = 0;
        let r = refine(&m, &scores, &cands, 0.5, 0.05, 4, |k| {
            calls += 1;
            Ok(truth(k))
        })
        .unwrap();
        // First try: the model's 0.5 (8 of 16 channels) measures 0.65; then it aims lower.
        assert_eq!((r.tries[0].kept.iter().sum::<usize>(), r.tries[0].measured), (8, 0.65));
        assert!(r.met && (r.best().measured / 0.5 - 1.0).abs() <= 0.05, "{r:?}");
        assert_eq!(calls, r.tries.len());
        // Out of reach: the floor (1 + 1 channels) measures 0.39; the fastest try is chosen.
        let r = refine(&m, &scores, &cands, 0.2, 0.05, 4, |k| Ok(truth(k))).unwrap();
        assert!(!r.met && r.best().kept == vec![1, 1] && r.tries.len() <= 4);
        // A model that is right: one measurement.
        let r = refine(&m, &scores, &cands, 0.5, 0.05, 4, |k| Ok(m.predict(k) / 16.0)).unwrap();
        assert_eq!((r.tries.len(), r.met), (1, true));
    }

    /// A group's curve, candidates and `round_to: auto` on a synthetic staircase table.
    #[test]
    fn group_curve_candidates_and_snapping() {
        let s = stairs();
        let flat = curve(&[(24, 1.0)]);
        let mut m = separable(s, flat);
        m.groups = vec![24, 24];
        m.layers[0].cout = 24;
        m.layers[1].cout = 24;
        m.rest = 0.0;
        let gc = m.group_curve(0);
        assert_eq!(gc.points.len(), 24);
        assert!((gc.at(8) - (m.predict(&[8, 24]))).abs() < 1e-12);
        let c = m.candidates(1, &[]);
        // Group 0: the plateau tops are worth keeping (noise inside a plateau may add a count).
        assert!(c[0].contains(&8) && c[0].contains(&16) && c[0].last() == Some(&24) && !c[0].contains(&9));
        // Group 1 is flat: only its full count.
        assert_eq!(c[1], vec![24]);
        assert_eq!(m.candidates(9, &[1])[0][0] >= 9, true);
        assert_eq!(m.candidates(1, &[0])[0], vec![24]);
        // round_to auto: 12 -> top of its plateau (16), 9 (on the step) -> 8.
        assert_eq!(m.snap(&[12, 24]), vec![16, 24]);
        assert_eq!(m.snap(&[9, 20]), vec![8, 20]); // below a one-point grid: stays
    }

    #[test]
    fn coupled_estimate_and_calibration() {
        // A conv whose cost is proportional to in x out: the separable estimate is exact.
        let out = curve(&[(8, 1.0), (16, 2.0), (32, 4.0)]);
        let inp = curve(&[(4, 1.0), (8, 2.0), (16, 4.0)]);
        let l = LayerTable { node: "c".into(), out_group: Some(1), in_group: Some(0), depthwise: false, cin: 16, cout: 32, out, inp: Some(inp) };
        assert!((l.estimate(8, 16) - 1.0).abs() < 1e-12 && (l.estimate(16, 32) - 4.0).abs() < 1e-12);
        let mut m = Model { layers: vec![l], groups: vec![16, 32], rest: 0.0, scale: 1.0, setting: String::new(), network_desc: String::new(), network: vec![] };
        assert!((m.calibrate(&[16, 32], 5.0) - 1.0).abs() < 1e-12);
        assert!((m.predict(&[16, 32]) - 5.0).abs() < 1e-12 && (m.predict(&[8, 16]) - 2.0).abs() < 1e-12);
        // Two widths measured: in the network each layer costs half its isolated time, plus 1 s.
        let err = m.fit(&[(vec![16, 32], 3.0), (vec![8, 16], 1.5)]);
        assert!((m.scale - 0.5).abs() < 1e-12 && (m.rest - 1.0).abs() < 1e-12 && err < 1e-12);
        // A free fit with a negative rest (tables sum 4 and 1; measured 4 and 0.5 s: slope 7/6,
        // rest -2/3) is refitted through the origin: scale = (4*4 + 1*0.5) / (16 + 1), rest 0.
        m.fit(&[(vec![16, 32], 4.0), (vec![8, 16], 0.5)]);
        assert!((m.scale - 16.5 / 17.0).abs() < 1e-12 && m.rest == 0.0, "{} {}", m.scale, m.rest);
        // One distinct sum: the one-point calibration.
        m.fit(&[(vec![16, 32], 6.0)]);
        assert_eq!((m.scale, m.rest), (1.0, 2.0));
        // In-network curves: the unpruned network takes 10 s; group 0 at 8 saves 3 s, group 1
        // at 16 saves 4 s, each measured alone. Both: 10 - 3 - 4 plus the conv's joint term,
        // scale x (T(8,16) - T(16,16) - T(8,32) + T(16,32)) = 1 - 2 - 2 + 4 = 1 s.
        m.scale = 1.0;
        m.network = vec![curve(&[(8, 7.0), (16, 10.0)]), curve(&[(16, 6.0), (32, 10.0)])];
        assert!((m.predict(&[16, 32]) - 10.0).abs() < 1e-12);
        assert!((m.predict(&[8, 32]) - 7.0).abs() < 1e-12 && (m.predict(&[16, 16]) - 6.0).abs() < 1e-12);
        assert!((m.predict(&[8, 16]) - 4.0).abs() < 1e-12);
    }
}
