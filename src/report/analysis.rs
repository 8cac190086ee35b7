//! What the report computes from the rows: each row's unpruned baseline and speed-ups, the
//! Pareto front of accuracy against latency, the best variant per latency budget, and short
//! series labels that name only what differs between the plotted rows.

use std::collections::{BTreeSet, HashMap};

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
    pub lowering: String,
}

impl Setting {
    pub fn of(source: usize, r: &Row) -> Setting {
        Setting {
            source,
            device: r.device.clone(),
            dtype: r.dtype.clone(),
            batch: r.batch.unwrap_or(0),
            lowering: r.lowering.clone(),
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
    /// Measured speed-up over the unpruned row (its p50 / this p50).
    pub speedup: Option<f64>,
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
            let speedup = base_p50.filter(|_| p50 > 0.0).map(|b| b / p50);
            let ideal = match (b.and_then(|b| b.macs), r.macs) {
                (Some(bm), Some(m)) if m > 0 => Some(bm as f64 / m as f64),
                _ => None,
            };
            out.push(Point { source: i, row: r, setting, base_p50, speedup, ideal });
        }
    }
    out
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
    /// The most accurate variant whose p50 fits (ties: the faster), or none.
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
            round_to: many(points.iter().filter(|p| !p.row.is_baseline()).map(|p| p.row.round_to)),
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
