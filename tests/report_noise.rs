//! The report on CSVs with measurement intervals and validity (issue #17): rows not valid are
//! listed and drawn hollow and left out of the Pareto front, rows sharing a program are one
//! point, the "within noise" statements, the comparison with a reference run, and older CSVs
//! without those columns. Small synthetic CSVs; nothing is timed.

use std::path::{Path, PathBuf};

use prunebench::report::analysis::{fronts, noise, points, programs, row_name};
use prunebench::report::compare::{compare, verdict, Verdict};
use prunebench::report::plot::charts;
use prunebench::report::{self, input};

const HEADER: &str = "suite,variant,method,ratio,round_to,control,lowering,dtype,batch,device,macs,latency_p50_ms,\
latency_p50_ci_low_ms,latency_p50_ci_high_ms,speedup,speedup_ci_low,speedup_ci_high,measured_for,rounds,valid,\
load_other_cpu,load_steal,top1_before_ft,status,a_future_column";

const BUSY: &str = "ci 25% > 2%; machine busy: steal 12%";

/// One row at batch 1, tuned, cpu: `(method, ratio, macs, p50 [lo, hi], speed-up [lo, hi],
/// measured_for, valid, top-1)`.
#[allow(clippy::too_many_arguments)]
fn row(method: &str, ratio: &str, macs: u64, p50: [f64; 3], s: [f64; 3], measured_for: &str, valid: &str, top1: f64) -> String {
    let v = variant(method, ratio);
    let mf = if measured_for.is_empty() { v.clone() } else { variant(measured_for, ratio) };
    let steal = if valid == "yes" { 0.0 } else { 0.12 };
    format!(
        "q,{v},{method},{ratio},1,physical,tuned,f32,1,cpu,{macs},{},{},{},{},{},{},{mf},20,{valid},0.01,{steal},{top1},ok,x",
        p50[0], p50[1], p50[2], s[0], s[1], s[2]
    )
}

fn variant(method: &str, ratio: &str) -> String {
    if method == "none" { "unpruned/f32/b1/tuned/cpu".into() } else { format!("{method}-uniform-{ratio}-r1/f32/b1/tuned/cpu") }
}

/// Unpruned; l1 0.5 and fpgm 0.5 sharing one program; random 0.3 no faster than unpruned
/// (speed-up interval contains 1, p50 interval overlaps the unpruned one); bn-scale 0.75
/// fastest and most accurate but not valid.
fn run_csv() -> String {
    [
        HEADER.to_string(),
        row("none", "0", 1000, [10.0, 9.8, 10.2], [1.0, 0.96, 1.04], "", "yes", 0.90),
        row("l1", "0.5", 250, [5.0, 4.9, 5.1], [2.0, 1.9, 2.1], "", "yes", 0.85),
        row("fpgm", "0.5", 250, [5.0, 4.9, 5.1], [2.0, 1.9, 2.1], "l1", "yes", 0.86),
        row("random", "0.3", 500, [9.9, 9.6, 10.3], [1.01, 0.95, 1.07], "", "yes", 0.70),
        row("bn-scale", "0.75", 60, [2.0, 1.5, 2.5], [5.0, 4.0, 6.5], "", BUSY, 0.95),
    ]
    .join("\n")
        + "\n"
}

/// The same rows as a CSV from before intervals and validity (no such columns).
fn old_csv() -> String {
    let mut out = String::from("suite,variant,method,ratio,round_to,control,lowering,dtype,batch,device,macs,latency_p50_ms,top1_before_ft,status\n");
    for line in run_csv().lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        out.push_str(&format!("{},{},ok\n", f[..12].join(","), f[22]));
    }
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn source(text: &str) -> input::Source {
    input::parse(Path::new("run.csv"), text).unwrap()
}

#[test]
fn rows_sharing_a_program_are_one_point_and_one_party() {
    let src = [source(&run_csv())];
    let pts = points(&src);
    let progs = programs(&pts);
    let names: Vec<String> = progs.iter().map(|g| g.names()).collect();
    assert_eq!(names, ["unpruned", "l1 0.5 = fpgm 0.5", "random 0.3", "bn-scale 0.75"]);
    assert_eq!(progs[1].tag(), "l1/fpgm 0.5");
    assert_eq!(progs[3].invalid_reason(), Some(BUSY));

    // The speed-up chart: one panel (batch 1), one point per program, whiskers from the CSV,
    // the not-valid one hollow.
    let speedup = charts(&src, &pts).into_iter().find(|c| c.name == "speedup").unwrap();
    assert_eq!(speedup.panels.len(), 1);
    assert_eq!(speedup.panels[0].title, "batch 1");
    let s = &speedup.panels[0].series[0];
    assert_eq!(s.points.len(), 4, "{:?}", s.points);
    assert_eq!(s.points[1], (4.0, 2.0), "MAC-ideal 1000/250 against the measured 2.0");
    assert_eq!(s.marks[1].whisker, Some((1.9, 2.1)));
    assert_eq!(s.marks[1].tag, "l1/fpgm 0.5");
    let hollow: Vec<bool> = s.marks.iter().map(|m| m.hollow).collect();
    assert_eq!(hollow, [false, false, false, true]);
    // MAC-ideal up to 1000/60 = 16.7: more than 10x, so log axes.
    assert!(speedup.panels[0].log);
}

#[test]
fn within_noise_statements_per_setting() {
    let src = [source(&run_csv())];
    let pts = points(&src);
    let n = noise(&pts);
    assert_eq!(n.len(), 1);
    let n = n.values().next().unwrap();
    assert_eq!(n.programs, 4);
    assert_eq!(n.like_unpruned, ["random 0.3"]);
    assert_eq!(n.overlapping, [("unpruned".to_string(), "random 0.3".to_string())]);
    assert!(n.without_interval.is_empty());
}

#[test]
fn the_pareto_front_uses_valid_rows_only() {
    let src = [source(&run_csv())];
    let pts = points(&src);
    let f = fronts(&pts);
    let front: Vec<String> = f.values().next().unwrap().iter().map(|p| row_name(p.row)).collect();
    // bn-scale 0.75 (2 ms, 95%) would dominate everything, but it is not valid.
    assert_eq!(front, ["fpgm 0.5", "unpruned"]);
}

#[test]
fn summary_lists_rows_not_valid_and_says_what_is_within_noise() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "run.csv", &run_csv());
    let w = report::report(&[csv], &dir.path().join("r")).unwrap();
    assert_eq!(w.not_valid, 1);
    let md = std::fs::read_to_string(&w.summary).unwrap();
    let not_valid = &md[md.find("## Not valid").unwrap()..];
    assert!(not_valid.contains(&format!("| bn-scale 0.75 | {BUSY} | 1.0% | 12.0% |")), "{not_valid}");
    assert!(!not_valid[..not_valid.find("\n## ").unwrap()].contains("l1 0.5"), "only the not-valid row is listed");
    assert!(md.contains("not measurably faster than unpruned (speed-up interval contains 1): random 0.3."), "{md}");
    assert!(md.contains("within noise of each other (p50 intervals overlap): unpruned ~ random 0.3."), "{md}");
    assert!(md.contains("| f32 b1 tuned cpu | l1 0.5 | 5.000 [4.900, 5.100] | 2.00× [1.90, 2.10] | yes |"), "{md}");
    assert!(w.plots.iter().any(|p| p.ends_with("speedup.png")));
}

#[test]
fn old_csvs_without_intervals_or_validity_still_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "old.csv", &old_csv());
    let src = [input::load(&csv).unwrap()];
    let pts = points(&src);
    assert_eq!(pts.len(), 5);
    assert!(pts.iter().all(|p| p.row.validity().is_none() && p.speedup_ci.is_none()));
    assert_eq!(pts[1].speedup, Some(2.0), "computed from the p50s");
    // Each row its own program; no whiskers; nothing hollow; all rows on the front's candidates.
    assert_eq!(programs(&pts).len(), 5);
    let n = noise(&pts);
    assert_eq!(n.values().next().unwrap().without_interval.len(), 5);
    let front: Vec<String> = fronts(&pts).values().next().unwrap().iter().map(|p| row_name(p.row)).collect();
    assert_eq!(front, ["bn-scale 0.75"], "validity unknown counts as valid");
    let w = report::report(&[csv], &dir.path().join("r")).unwrap();
    let md = std::fs::read_to_string(&w.summary).unwrap();
    assert!(md.contains("no intervals in the data: nothing can be said about noise."), "{md}");
    assert!(md.contains("The data has no `valid` column (an older CSV): validity unknown."), "{md}");
    assert!(md.contains("| f32 b1 tuned cpu | l1 0.5 | 5.000 | 2.00× | unknown |"), "{md}");
}

#[test]
fn verdicts_against_a_reference_run() {
    assert_eq!(verdict(Some((1.9, 2.1)), Some((2.1, 2.4))), Verdict::Agrees, "touching intervals overlap");
    assert_eq!(verdict(Some((1.9, 2.1)), Some((2.2, 2.4))), Verdict::Differs);
    assert_eq!(verdict(Some((1.9, 2.1)), None), Verdict::ReferenceHasNoInterval);
    assert_eq!(verdict(None, Some((2.2, 2.4))), Verdict::RunHasNoInterval);
    assert_eq!(Verdict::Differs.to_string(), "differs beyond noise");

    // A reference with l1 faster beyond noise, the unpruned row agreeing, no random row.
    let reference = [
        HEADER.to_string(),
        row("none", "0", 1000, [10.0, 9.9, 10.1], [1.0, 0.98, 1.02], "", "yes", 0.90),
        row("l1", "0.5", 250, [4.3, 4.2, 4.4], [2.3, 2.2, 2.4], "", "yes", 0.85),
        row("bn-scale", "0.75", 60, [2.0, 1.9, 2.1], [5.0, 4.7, 5.3], "", "yes", 0.95),
    ]
    .join("\n");
    let (run, reference) = ([source(&run_csv())], [source(&reference)]);
    let (rp, fp) = (points(&run), points(&reference));
    let got: Vec<(String, Verdict)> = compare(&rp, &fp).iter().map(|c| (row_name(c.run.row), c.verdict)).collect();
    assert_eq!(
        got,
        [
            ("unpruned".to_string(), Verdict::Agrees),
            ("l1 0.5".to_string(), Verdict::Differs),
            ("fpgm 0.5".to_string(), Verdict::NotInReference),
            ("random 0.3".to_string(), Verdict::NotInReference),
            ("bn-scale 0.75".to_string(), Verdict::Agrees),
        ]
    );

    // Through the report: the table and summary say it plainly; an old reference has no interval.
    let dir = tempfile::tempdir().unwrap();
    let csv = write(dir.path(), "run.csv", &run_csv());
    let old = write(dir.path(), "old.csv", &old_csv());
    let w = report::report_against(&[csv], &dir.path().join("r"), Some(&old)).unwrap();
    assert!(w.table.contains("| f32 b1 tuned cpu | l1 0.5 | 5.000 [4.900, 5.100] | 2.00× [1.90, 2.10] | yes | 2.00× | reference has no interval |"), "{}", w.table);
    assert_eq!(
        w.tally.as_deref(),
        Some("0 agree, 0 differ beyond noise, 5 where the reference has no interval, 0 where this run has none, 0 not in the reference")
    );
    let md = std::fs::read_to_string(&w.summary).unwrap();
    assert!(md.contains("Against the reference run"), "{md}");
}
