//! The speed-up table a run ends with, and its comparison with a reference run (the
//! committed `results/quickstart.csv`): per row, whether the two speed-ups agree within their
//! 95% intervals.
//!
//! Rows are matched by variant id (`variant`: pruning, dtype, batch, lowering, device), so a
//! run is compared with a reference of the same suite. Two speed-ups *agree* when their
//! intervals overlap; they *differ beyond noise* when they do not. Where either row has no
//! interval (a CSV from before intervals), nothing is claimed.

use std::collections::HashMap;
use std::fmt::{self, Write};

use super::analysis::{overlap, row_name, Point};

/// How a run's speed-up compares with the reference's for one variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The two 95% intervals overlap.
    Agrees,
    /// They do not overlap.
    Differs,
    /// The reference row has no interval (an older CSV).
    ReferenceHasNoInterval,
    /// This run's row has no interval.
    RunHasNoInterval,
    /// No reference row of this variant with a speed-up.
    NotInReference,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Agrees => "agrees",
            Verdict::Differs => "differs beyond noise",
            Verdict::ReferenceHasNoInterval => "reference has no interval",
            Verdict::RunHasNoInterval => "run has no interval",
            Verdict::NotInReference => "not in reference",
        })
    }
}

/// One row of the run against the reference.
#[derive(Clone, Debug)]
pub struct Comparison<'a> {
    pub run: &'a Point<'a>,
    pub reference: Option<&'a Point<'a>>,
    pub verdict: Verdict,
}

/// The verdict for two speed-ups with their intervals (`None`: no interval).
pub fn verdict(run: Option<(f64, f64)>, reference: Option<(f64, f64)>) -> Verdict {
    match (run, reference) {
        (Some(a), Some(b)) => {
            if overlap(a, b) {
                Verdict::Agrees
            } else {
                Verdict::Differs
            }
        }
        (_, None) => Verdict::ReferenceHasNoInterval,
        (None, Some(_)) => Verdict::RunHasNoInterval,
    }
}

/// Every run point with a speed-up, against the reference point of the same variant.
pub fn compare<'a>(run: &'a [Point<'a>], reference: &'a [Point<'a>]) -> Vec<Comparison<'a>> {
    let by_variant: HashMap<&str, &Point> =
        reference.iter().filter(|p| p.speedup.is_some()).map(|p| (p.row.variant.as_str(), p)).collect();
    run.iter()
        .filter(|p| p.speedup.is_some())
        .map(|p| {
            let r = by_variant.get(p.row.variant.as_str()).copied();
            let verdict = match r {
                Some(r) => verdict(p.speedup_ci, r.speedup_ci),
                None => Verdict::NotInReference,
            };
            Comparison { run: p, reference: r, verdict }
        })
        .collect()
}

/// `2.37× [2.21, 2.50]`, or `2.37×` without an interval, `—` without a speed-up.
pub fn speedup_text(s: Option<f64>, ci: Option<(f64, f64)>) -> String {
    match (s, ci) {
        (Some(s), Some((lo, hi))) => format!("{s:.2}× [{lo:.2}, {hi:.2}]"),
        (Some(s), None) => format!("{s:.2}×"),
        _ => "—".into(),
    }
}

/// The speed-up table as markdown: one line per row with a speed-up (setting, row, p50 with
/// its interval, speed-up with its interval, validity, and, given `comparisons`, the
/// reference's speed-up and the verdict).
pub fn table(points: &[Point<'_>], comparisons: Option<&[Comparison<'_>]>) -> String {
    let mut md = String::new();
    let verdicts: HashMap<(usize, &str), &Comparison> =
        comparisons.unwrap_or(&[]).iter().map(|c| ((c.run.source, c.run.row.variant.as_str()), c)).collect();
    md.push_str("| setting | row | p50 ms [95%] | speed-up [95%] | valid |");
    if comparisons.is_some() {
        md.push_str(" reference speed-up | vs reference |");
    }
    md.push('\n');
    md.push_str(if comparisons.is_some() { "|---|---|---|---|---|---|---|\n" } else { "|---|---|---|---|---|\n" });
    let mut rows: Vec<&Point> = points.iter().filter(|p| p.speedup.is_some()).collect();
    rows.sort_by(|a, b| a.setting.cmp(&b.setting).then(b.row.is_baseline().cmp(&a.row.is_baseline())));
    for p in rows {
        let p50 = match (p.row.latency_p50_ms, p.row.p50_ci()) {
            (Some(v), Some((lo, hi))) => format!("{v:.3} [{lo:.3}, {hi:.3}]"),
            (Some(v), None) => format!("{v:.3}"),
            _ => "—".into(),
        };
        let valid = match p.row.validity() {
            Some(Ok(())) => "yes".to_string(),
            Some(Err(why)) => format!("no: {why}"),
            None => "unknown".into(),
        };
        let _ = write!(
            md,
            "| {} | {} | {p50} | {} | {} |",
            p.setting.text(),
            row_name(p.row),
            speedup_text(p.speedup, p.speedup_ci),
            valid.replace('|', "/")
        );
        if comparisons.is_some() {
            match verdicts.get(&(p.source, p.row.variant.as_str())) {
                Some(c) => {
                    let r = c.reference.map(|r| speedup_text(r.speedup, r.speedup_ci)).unwrap_or_else(|| "—".into());
                    let _ = write!(md, " {r} | {} |", c.verdict);
                }
                None => md.push_str(" — | — |"),
            }
        }
        md.push('\n');
    }
    md
}

/// One line counting the verdicts: `12 agree, 2 differ beyond noise, 0 without interval in
/// the reference, ...`.
pub fn tally(comparisons: &[Comparison<'_>]) -> String {
    let n = |v: Verdict| comparisons.iter().filter(|c| c.verdict == v).count();
    format!(
        "{} agree, {} differ beyond noise, {} where the reference has no interval, {} where this run has none, {} not in the reference",
        n(Verdict::Agrees),
        n(Verdict::Differs),
        n(Verdict::ReferenceHasNoInterval),
        n(Verdict::RunHasNoInterval),
        n(Verdict::NotInReference)
    )
}
