//! What the report computes from the rows: each row's unpruned baseline and speed-ups, the
//! rows that share one program measurement, which differences are within noise, the Pareto
//! front of accuracy against latency (valid rows only), the best variant per latency budget,
//! and short series labels that name only what differs between the plotted rows.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::input::{Row, Source};

/// Where a measurement was taken: rows are only compared (speed-up, Pareto front, budgets)
/// within one setting.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Setting {
    /// Index of the input file.
    pub source: usize,
    pub device: String,
    pub dtype: String,
    pub batch: usize,
    /// The conv lowering on XLA (`xla`, `tuned`, ...), or the runtime's name on the others
    /// (`onnxruntime`, `openvino`): what a row's program ran as.
    pub lowering: String,
}

impl Setting {
    pub fn of(source: usize, r: &Row) -> Setting {
        Setting {
            source,
            device: r.device.clone(),
            dtype: r.dtype.clone(),
            batch: r.batch.unwrap_or(0),
            lowering: if r.runtime.is_empty() || r.runtime == "xla" { r.lowering.clone() } else { r.runtime.clone() },
        }
    }

    /// The same setting whatever the lowering (for budgets and fronts: the lowering is a
    /// choice like the pruning).
    pub fn without_lowering(&self) -> Setting {
        Setting { lowering: String::new(), ..self.clone() }
    }

    /// `f32 b1 xla cpu`.
    pub fn text(&self) -> String {
        let mut s = format!("{} b{}", self.dtype, self.batch);
        if !self.lowering.is_empty() {
            s.push(' ');
            s.push_str(&self.lowering);
        }
        s.push(' ');
        s.push_str(&self.device);
        s
    }
}

/// An `ok` row with what is computed from it.
#[derive(Clone, Debug)]
pub struct Point<'a> {
    pub source: usize,
    pub row: &'a Row,
    pub setting: Setting,
    /// p50 of the unpruned row of the same setting.
    pub base_p50: Option<f64>,
    /// Measured speed-up over the unpruned row (its p50 / this p50): the CSV's `speedup`
    /// where given, else computed here.
    pub speedup: Option<f64>,
    /// Its 95% interval, where the CSV gives one (`speedup_ci_low`, `speedup_ci_high`).
    pub speedup_ci: Option<(f64, f64)>,
    /// What the MAC count promises (unpruned MACs / these MACs).
    pub ideal: Option<f64>,
}

impl Point<'_> {
    /// Measured speed-up / MAC-ideal speed-up.
    pub fn efficiency(&self) -> Option<f64> {
        match (self.speedup, self.ideal) {
            (Some(s), Some(i)) if i > 0.0 => Some(s / i),
            _ => None,
        }
    }

    /// p50 the MAC count predicts from the unpruned row's.
    pub fn ideal_p50(&self) -> Option<f64> {
        Some(self.base_p50? / self.ideal?)
    }
}

/// Every `ok` row with a p50, with its baseline (the last unpruned physical row of the same
/// setting) and speed-ups.
pub fn points(sources: &[Source]) -> Vec<Point<'_>> {
    let mut base: HashMap<Setting, &Row> = HashMap::new();
    for (i, s) in sources.iter().enumerate() {
        for r in s.ok().filter(|r| r.is_baseline() && !r.is_masked() && r.latency_p50_ms.is_some()) {
            base.insert(Setting::of(i, r), r);
        }
    }
    let mut out = Vec::new();
    for (i, s) in sources.iter().enumerate() {
        for r in s.ok() {
            let Some(p50) = r.latency_p50_ms else { continue };
            let setting = Setting::of(i, r);
            let b = base.get(&setting);
            let base_p50 = b.and_then(|b| b.latency_p50_ms);
            let speedup = r.speedup.or_else(|| base_p50.filter(|_| p50 > 0.0).map(|b| b / p50));
            let ideal = match (b.and_then(|b| b.macs), r.macs) {
                (Some(bm), Some(m)) if m > 0 => Some(bm as f64 / m as f64),
                _ => None,
            };
            out.push(Point { source: i, row: r, setting, base_p50, speedup, speedup_ci: r.speedup_ci(), ideal });
        }
    }
    out
}

/// A row's short name: `unpruned`, `l1 0.5`, `l1 0.5 r8 masked` (round_to shown above 1),
/// `l1 latency 0.6` (the latency schedule's target).
pub fn row_name(r: &Row) -> String {
    let mut s = if r.is_baseline() { "unpruned".to_string() } else { format!("{} {}", r.method, r.ratio_text()) };
    if !r.is_baseline() && r.round_to.as_deref().is_some_and(|k| k != "1") {
        s.push_str(&format!(" r{}", r.round_to.as_deref().unwrap_or_default()));
    }
    if r.is_masked() {
        s.push_str(" masked");
    }
    s
}

/// The rows (points) that report one program measurement: same file and setting and the
/// same `measured_for` (a row without it is its own program). Plotted as one point; one
/// party in the noise statements.
#[derive(Clone, Debug)]
pub struct Program<'a> {
    pub points: Vec<&'a Point<'a>>,
}

impl<'a> Program<'a> {
    /// The point whose figures stand for all (they share the latency columns).
    pub fn first(&self) -> &'a Point<'a> {
        self.points[0]
    }

    /// Every row's name, joined: `l1 0.5 = fpgm 0.5`.
    pub fn names(&self) -> String {
        let mut v: Vec<String> = self.points.iter().map(|p| row_name(p.row)).collect();
        v.dedup();
        v.join(" = ")
    }

    /// A short tag for a plot: `l1/fpgm/random 0.5` where the rows differ only in method,
    /// else [`names`](Self::names).
    pub fn tag(&self) -> String {
        let first = self.first().row;
        let same = |p: &&Point| {
            p.row.ratio_text() == first.ratio_text() && p.row.round_to == first.round_to && p.row.is_masked() == first.is_masked()
        };
        if first.is_baseline() || !self.points.iter().all(same) {
            return self.names();
        }
        let mut methods: Vec<&str> = self.points.iter().map(|p| p.row.method.as_str()).collect();
        methods.dedup();
        format!("{} {}{}", methods.join("/"), first.ratio_text(), if first.is_masked() { " masked" } else { "" })
    }

    /// Why the measurement is not valid, from the first row that says so; `None` when valid
    /// or unknown.
    pub fn invalid_reason(&self) -> Option<&'a str> {
        self.points.iter().find_map(|p| p.row.validity().and_then(|v| v.err()))
    }
}

/// The points grouped by program, in first-seen order.
pub fn programs<'a>(points: &'a [Point<'a>]) -> Vec<Program<'a>> {
    let mut index: HashMap<(usize, &Setting, &str), usize> = HashMap::new();
    let mut out: Vec<Program> = Vec::new();
    for p in points {
        let key = (p.source, &p.setting, p.row.program());
        match index.get(&key) {
            Some(&i) => out[i].points.push(p),
            None => {
                index.insert(key, out.len());
                out.push(Program { points: vec![p] });
            }
        }
    }
    out
}

/// Whether two closed intervals overlap.
pub fn overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

/// Which differences within one setting are within noise.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Noise {
    /// Pruned programs whose speed-up interval contains 1: not measurably faster (or slower)
    /// than the unpruned network.
    pub like_unpruned: Vec<String>,
    /// Pairs of programs whose p50 intervals overlap: their difference is within noise.
    pub overlapping: Vec<(String, String)>,
    /// Programs without an interval in the data (older CSVs): nothing can be said.
    pub without_interval: Vec<String>,
    /// Programs in the setting.
    pub programs: usize,
}

/// Per setting (file, device, dtype, batch, lowering), which differences are within noise,
/// judged on each program once ([`programs`]).
pub fn noise<'a>(points: &'a [Point<'a>]) -> BTreeMap<Setting, Noise> {
    let mut by_setting: BTreeMap<Setting, Vec<Program>> = BTreeMap::new();
    for prog in programs(points) {
        by_setting.entry(prog.first().setting.clone()).or_default().push(prog);
    }
    let mut out = BTreeMap::new();
    for (setting, progs) in by_setting {
        let mut n = Noise { programs: progs.len(), ..Noise::default() };
        for (i, a) in progs.iter().enumerate() {
            let pa = a.first();
            if !pa.row.is_baseline() && pa.speedup_ci.is_some_and(|(lo, hi)| lo <= 1.0 && 1.0 <= hi) {
                n.like_unpruned.push(a.names());
            }
            let Some(ia) = pa.row.p50_ci() else {
                n.without_interval.push(a.names());
                continue;
            };
            for b in &progs[i + 1..] {
                if b.first().row.p50_ci().is_some_and(|ib| overlap(ia, ib)) {
                    n.overlapping.push((a.names(), b.names()));
                }
            }
        }
        out.insert(setting, n);
    }
    out
}

/// The points of each accuracy/latency Pareto front, per setting (lowering not counted):
/// only rows with accuracy whose measurement is valid (or of unknown validity, in older
/// CSVs). Sorted by latency.
pub fn fronts<'a>(points: &'a [Point<'a>]) -> BTreeMap<Setting, Vec<&'a Point<'a>>> {
    let mut groups: BTreeMap<Setting, Vec<&Point>> = BTreeMap::new();
    for p in points.iter().filter(|p| p.row.top1().is_some() && p.row.valid_or_unknown()) {
        groups.entry(p.setting.without_lowering()).or_default().push(p);
    }
    groups
        .into_iter()
        .map(|(s, g)| {
            let xy: Vec<(f64, f64)> = g.iter().map(|p| (p.row.latency_p50_ms.unwrap(), p.row.top1().unwrap())).collect();
            (s, pareto_front(&xy).into_iter().map(|i| g[i]).collect())
        })
        .collect()
}

/// Indices into `pts` (`(latency, accuracy)`) of the Pareto front: no other point is at least
/// as fast and more accurate. Sorted by latency.
pub fn pareto_front(pts: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..pts.len()).collect();
    idx.sort_by(|&a, &b| pts[a].0.total_cmp(&pts[b].0).then(pts[b].1.total_cmp(&pts[a].1)));
    let mut best = f64::NEG_INFINITY;
    let mut out = Vec::new();
    for i in idx {
        if pts[i].1 > best {
            best = pts[i].1;
            out.push(i);
        }
    }
    out
}

/// Latency budgets, as fractions of the unpruned network's p50.
pub const BUDGETS: &[f64] = &[0.25, 0.5, 0.75, 1.0];

/// One line of the budget list.
#[derive(Clone, Debug)]
pub struct Pick<'a> {
    pub fraction: f64,
    pub budget_ms: f64,
    /// The most accurate variant whose p50 fits (ties: the faster; rows marked not valid are
    /// left out), or none.
    pub best: Option<&'a Point<'a>>,
}

/// For each setting (lowering not counted) with accuracy and an unpruned row: the best
/// variant per budget. The budgets are fractions of the fastest unpruned p50 of the setting.
pub fn budgets<'a>(points: &'a [Point<'a>]) -> Vec<(Setting, f64, Vec<Pick<'a>>)> {
    let mut groups: HashMap<Setting, Vec<&'a Point<'a>>> = HashMap::new();
    for p in points {
        groups.entry(p.setting.without_lowering()).or_default().push(p);
    }
    let mut keys: Vec<Setting> = groups.keys().cloned().collect();
    keys.sort();
    let mut out = Vec::new();
    for k in keys {
        let g = &groups[&k];
        let Some(base) = g
            .iter()
            .filter(|p| p.row.is_baseline() && !p.row.is_masked())
            .filter_map(|p| p.row.latency_p50_ms)
            .min_by(f64::total_cmp)
        else {
            continue;
        };
        if g.iter().all(|p| p.row.top1().is_none()) {
            continue;
        }
        let picks = BUDGETS
            .iter()
            .map(|&f| {
                let budget = base * f;
                let best = g
                    .iter()
                    .filter(|p| p.row.latency_p50_ms.is_some_and(|l| l <= budget) && p.row.top1().is_some())
                    .filter(|p| p.row.valid_or_unknown())
                    .max_by(|a, b| {
                        let (ta, tb) = (a.row.top1().unwrap(), b.row.top1().unwrap());
                        ta.total_cmp(&tb).then(b.row.latency_p50_ms.unwrap().total_cmp(&a.row.latency_p50_ms.unwrap()))
                    })
                    .copied();
                Pick { fraction: f, budget_ms: budget, best }
            })
            .collect();
        out.push((k, base, picks));
    }
    out
}

/// Which dimensions differ between the rows being plotted, so labels name only those.
#[derive(Clone, Debug, Default)]
pub struct Varying {
    pub source: bool,
    pub device: bool,
    pub dtype: bool,
    pub batch: bool,
    pub lowering: bool,
    pub round_to: bool,
}

impl Varying {
    pub fn of<'a, 'b: 'a>(points: impl IntoIterator<Item = &'a Point<'b>>) -> Varying {
        fn many<T: Ord>(it: impl Iterator<Item = T>) -> bool {
            it.collect::<BTreeSet<T>>().len() > 1
        }
        let points: Vec<&Point> = points.into_iter().collect();
        Varying {
            source: many(points.iter().map(|p| p.source)),
            device: many(points.iter().map(|p| &p.setting.device)),
            dtype: many(points.iter().map(|p| &p.setting.dtype)),
            batch: many(points.iter().map(|p| p.setting.batch)),
            lowering: many(points.iter().map(|p| &p.setting.lowering)),
            round_to: many(points.iter().filter(|p| !p.row.is_baseline()).map(|p| p.row.round_to.as_deref())),
        }
    }

    /// The parts of `setting` that vary, for a label: `smoke-gpu b4`.
    pub fn setting_label(&self, sources: &[Source], s: &Setting) -> Vec<String> {
        let mut parts = Vec::new();
        if self.source {
            parts.push(sources[s.source].label.clone());
        }
        if self.device {
            parts.push(s.device.clone());
        }
        if self.dtype {
            parts.push(s.dtype.clone());
        }
        if self.batch {
            parts.push(format!("b{}", s.batch));
        }
        if self.lowering && !s.lowering.is_empty() {
            parts.push(s.lowering.clone());
        }
        parts
    }
}

/// Joins label parts: `l1 · smoke-gpu · b4`.
pub fn join(parts: &[String]) -> String {
    parts.iter().filter(|p| !p.is_empty()).cloned().collect::<Vec<_>>().join(" · ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_keeps_the_faster_and_more_accurate() {
        let pts = [(1.0, 0.5), (2.0, 0.7), (1.5, 0.4), (3.0, 0.7), (0.5, 0.2), (2.5, 0.9)];
        assert_eq!(pareto_front(&pts), vec![4, 0, 1, 5]);
    }
}
