//! `summary.md`: the inputs, the speed-up table (against a reference run where given), which
//! differences are within noise, the rows whose measurement is not valid, a table per
//! method, the best variant per latency budget, the plots, and every error row.

use std::collections::BTreeMap;
use std::fmt::Write;

use std::path::Path;

use super::analysis::{budgets, noise, row_name, Point};
use super::compare::{tally, Comparison};
use super::input::Source;

const MIB: f64 = 1024.0 * 1024.0;

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "—".into())
}

fn pct(v: Option<f64>) -> String {
    opt(v, |v| format!("{:.1}%", v * 100.0))
}

fn times(v: Option<f64>) -> String {
    opt(v, |v| format!("{v:.2}×"))
}

/// Thousands separated by a thin space: `14 728 266`.
fn count(v: Option<u64>) -> String {
    opt(v, |v| {
        let s = v.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        out
    })
}

fn mib(v: Option<i64>) -> String {
    opt(v, |v| format!("{:.2}", v as f64 / MIB))
}

/// Markdown table cell: no pipes or line breaks.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The whole `summary.md`. `plots` are the file names written next to it; `table` is the
/// speed-up table ([`super::compare::table`]); `against`: the reference file and the
/// comparisons with it.
pub fn markdown(
    sources: &[Source],
    points: &[Point<'_>],
    plots: &[String],
    table: &str,
    against: Option<(&Path, &[Comparison<'_>])>,
) -> String {
    let mut md = String::new();
    let many = sources.len() > 1;
    md.push_str("# prunebench report\n\n");

    md.push_str("## Inputs\n\n| file | suite | rows | ok | error | device | platform | device kind |\n|---|---|---|---|---|---|---|---|\n");
    for s in sources {
        let set = |f: &dyn Fn(&super::input::Row) -> Option<String>| {
            let mut v: Vec<String> = s.rows.iter().filter_map(f).filter(|x| !x.is_empty()).collect();
            v.sort();
            v.dedup();
            if v.is_empty() { "—".into() } else { v.join(", ") }
        };
        let ok = s.rows.iter().filter(|r| r.is_ok()).count();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |",
            s.path.display(),
            cell(&set(&|r| Some(r.suite.clone()))),
            s.rows.len(),
            ok,
            s.rows.len() - ok,
            cell(&set(&|r| Some(r.device.clone()))),
            cell(&set(&|r| r.platform.clone())),
            cell(&set(&|r| r.device_kind.clone())),
        );
    }
    md.push('\n');

    md.push_str("## Speed-ups\n\n");
    md.push_str(
        "Speed-up: p50 of the unpruned row of the same setting / this p50, with its 95% interval where the \
         CSV has one. *valid*: `yes`, the reasons it is not, or `unknown` (a CSV without the column).\n\n",
    );
    if let Some((path, comparisons)) = against {
        let _ = writeln!(
            md,
            "Against the reference run `{}` (rows matched by variant id; *agrees*: the two 95% intervals \
             overlap): {}.\n",
            path.display(),
            tally(comparisons)
        );
    }
    md.push_str(table);
    md.push('\n');
    md.push_str(&noise_section(sources, points));
    md.push_str(&not_valid_section(sources, points));
    md.push_str(&runtimes_section(sources, points));
    md.push_str(&latency_schedule_section(sources, points));

    // One table per method; the unpruned rows first.
    let mut by_method: BTreeMap<(bool, String), Vec<&Point>> = BTreeMap::new();
    for p in points {
        let m = if p.row.is_baseline() { "none".to_string() } else { p.row.method.clone() };
        by_method.entry((!p.row.is_baseline(), m)).or_default().push(p);
    }
    for ((pruned, method), mut rows) in by_method {
        rows.sort_by(|a, b| {
            (&a.setting, a.row.is_masked(), a.row.round_to_order(), a.row.ratio_value().unwrap_or(f64::NAN).to_bits())
                .cmp(&(&b.setting, b.row.is_masked(), b.row.round_to_order(), b.row.ratio_value().unwrap_or(f64::NAN).to_bits()))
        });
        if pruned {
            let _ = writeln!(md, "## Method `{method}`\n");
        } else {
            md.push_str("## Unpruned (method `none`, ratio 0)\n\n");
        }
        if many {
            md.push_str("| file ");
        }
        md.push_str(
            "| setting | control | ratio | round_to | channels | params | MACs | p50 ms | speed-up | MAC-ideal | efficiency | compiled MiB | peak MiB | top-1 before FT | top-1 after FT |\n",
        );
        if many {
            md.push_str("|---");
        }
        md.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for p in rows {
            let r = p.row;
            if many {
                let _ = write!(md, "| {} ", cell(&sources[p.source].label));
            }
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&p.setting.text()),
                cell(&r.control),
                cell(&r.ratio_text()),
                opt(r.round_to.as_deref(), |v| v.to_string()),
                cell(r.channels.as_deref().unwrap_or("—")),
                count(r.params),
                count(r.macs),
                opt(r.latency_p50_ms, |v| format!("{v:.3}")),
                times(p.speedup),
                times(p.ideal),
                opt(p.efficiency(), |v| format!("{:.0}%", v * 100.0)),
                mib(r.compiled_bytes()),
                mib(r.peak_bytes()),
                pct(r.top1_before_ft),
                pct(r.top1_after_ft),
            );
        }
        md.push('\n');
    }
    if points.is_empty() {
        md.push_str("No `ok` rows with a latency: nothing to tabulate or plot.\n\n");
    }

    md.push_str("## Best variant per latency budget\n\n");
    md.push_str(
        "For each setting (file, device, dtype, batch; any lowering), the most accurate variant (top-1 after \
         fine-tuning where measured, else before) whose p50 fits the budget; budgets are fractions of the \
         fastest unpruned p50 of the setting.\n\n",
    );
    let groups = budgets(points);
    if groups.is_empty() {
        md.push_str("No setting has both an unpruned row and accuracy.\n\n");
    }
    for (s, base, picks) in groups {
        let file = if many { format!("{} ", sources[s.source].label) } else { String::new() };
        let _ = writeln!(md, "**{file}{}** (unpruned p50 {base:.3} ms):\n", s.text());
        for pick in picks {
            let what = match pick.best {
                Some(p) => format!(
                    "`{}`: top-1 {}, p50 {:.3} ms ({})",
                    p.row.variant,
                    pct(p.row.top1()),
                    p.row.latency_p50_ms.unwrap_or(f64::NAN),
                    times(p.speedup)
                ),
                None => "nothing fits".into(),
            };
            let _ = writeln!(md, "- ≤ {:.3} ms ({:.0}% of unpruned): {what}", pick.budget_ms, pick.fraction * 100.0);
        }
        md.push('\n');
    }

    if !plots.is_empty() {
        md.push_str("## Plots\n\n");
        for p in plots.iter().filter(|p| p.ends_with(".svg")) {
            let png = p.trim_end_matches(".svg").to_string() + ".png";
            let _ = writeln!(md, "- [{p}]({p}) ([png]({png}))");
        }
        md.push('\n');
    }

    let errors: Vec<(&Source, &super::input::Row)> =
        sources.iter().flat_map(|s| s.rows.iter().filter(|r| !r.is_ok()).map(move |r| (s, r))).collect();
    md.push_str("## Errors\n\n");
    if errors.is_empty() {
        md.push_str("No error rows.\n\n");
    } else {
        md.push_str("Not plotted or tabulated above.\n\n| file | line | variant | status | error |\n|---|---|---|---|---|\n");
        for (s, r) in errors {
            let _ = writeln!(
                md,
                "| `{}` | {} | `{}` | {} | {} |",
                s.path.display(),
                r.line,
                cell(&r.variant),
                cell(&r.status),
                cell(r.error.as_deref().unwrap_or(""))
            );
        }
        md.push('\n');
    }

    md.push_str(
        "## Columns\n\n\
         - *setting*: dtype, batch, conv lowering (or the runtime, `onnxruntime` or `openvino`, for the ONNX export), device. Rows are only compared within one setting (and one file).\n\
         - *speed-up*: p50 of the unpruned row of the same setting / this p50. *MAC-ideal*: unpruned MACs / these \
         MACs, what the arithmetic alone promises. *efficiency*: speed-up / MAC-ideal.\n\
         - *compiled MiB*: arguments + outputs + temporaries + generated code of the compiled program (PJRT). \
         *peak MiB*: the device's peak in use where the plugin reports it, else the compiler's peak \
         (`compiler_peak_bytes`), else the least one call must hold (`program_min_bytes`: arguments + outputs + \
         temporaries), else (older CSVs) `program_peak_bytes`; — where none is given.\n\
         - *p50 [95%]*, *speed-up [95%]*: the 95% intervals the run recorded (docs/csv-schema.md says how they are \
         obtained). Rows that share one program measurement (`measured_for`) have the same latency figures and are \
         one point in the plots.\n\
         - *top-1*: on the suite's evaluation images, before and after fine-tuning; — where not measured.\n",
    );
    md
}

/// Per setting, which differences are within noise: pruned programs whose speed-up interval
/// contains 1, and pairs of programs whose p50 intervals overlap.
/// Each pruning's speed-up on every runtime / lowering of its setting side by side (only where
/// a setting has more than one), and which of them disagree beyond noise: two 95% intervals
/// that do not overlap. Empty when no setting has two.
/// Accuracy after fine-tuning of `uniform` rows, as `(fraction of the unpruned latency, top-1)`
/// sorted by the fraction, interpolated linearly at `f` (`None` outside their range).
pub fn interpolate_accuracy(curve: &[(f64, f64)], f: f64) -> Option<f64> {
    let w = curve.windows(2).find(|w| w[0].0 <= f && f <= w[1].0)?;
    let ((f0, a0), (f1, a1)) = (w[0], w[1]);
    Some(if f1 > f0 { a0 + (a1 - a0) * (f - f0) / (f1 - f0) } else { a0.max(a1) })
}

/// The latency schedule against the uniform schedule at the same measured latency: per
/// setting and method, each `latency` row's top-1 after fine-tuning beside the uniform rows'
/// top-1 interpolated at its measured fraction of the unpruned p50.
fn latency_schedule_section(sources: &[Source], points: &[Point<'_>]) -> String {
    type Key = (usize, String, String, usize, String, String); // source, device, dtype, batch, lowering, method
    let mut by: BTreeMap<Key, (Vec<&Point>, Vec<&Point>)> = BTreeMap::new();
    for p in points.iter().filter(|p| !p.row.is_baseline() && !p.row.is_masked() && p.row.top1_after_ft.is_some() && p.speedup.is_some()) {
        let s = &p.setting;
        let key = (p.source, s.device.clone(), s.dtype.clone(), s.batch, s.lowering.clone(), p.row.method.clone());
        let e = by.entry(key).or_default();
        match p.row.schedule.as_str() {
            "uniform" => e.0.push(p),
            "latency" => e.1.push(p),
            _ => {}
        }
    }
    let mut md = String::new();
    for ((source, device, dtype, batch, lowering, method), (uniform, latency)) in by {
        if latency.is_empty() {
            continue;
        }
        if md.is_empty() {
            md.push_str(
                "## Latency schedule against uniform at the same measured latency

Per setting: each `latency` row's \
                 measured fraction of the unpruned p50 (1 / speed-up) and top-1 after fine-tuning, beside the `uniform` \
                 rows' top-1 interpolated linearly at that fraction (empty outside their measured range). The margin's \
                 noise: 1.96 x the binomial standard error of the difference of two accuracies on the test images \
                 (sampling of the test set only; fine-tuning seeds add more).\n\n",
            );
        }
        let mut curve: Vec<(f64, f64)> = uniform.iter().map(|p| (1.0 / p.speedup.unwrap(), p.row.top1_after_ft.unwrap())).collect();
        curve.sort_by(|a, b| a.0.total_cmp(&b.0));
        let file = if sources.len() > 1 { format!("{} ", sources[source].label) } else { String::new() };
        let _ = writeln!(md, "{file}{method}, {dtype} b{batch} {lowering} {device}; uniform points (fraction, top-1 %): {}\n", {
            let pts: Vec<String> = curve.iter().map(|(f, a)| format!("({f:.3}, {:.2})", a * 100.0)).collect();
            pts.join(", ")
        });
        md.push_str("| target | measured fraction | valid | top-1 latency % | top-1 uniform (interpolated) % | margin (pp) | noise (pp) | verdict |\n|---|---|---|---|---|---|---|---|\n");
        let mut rows: Vec<&&Point> = latency.iter().collect();
        rows.sort_by(|a, b| b.row.latency_target.unwrap_or(0.0).total_cmp(&a.row.latency_target.unwrap_or(0.0)));
        for p in rows {
            let f = 1.0 / p.speedup.unwrap();
            let acc = p.row.top1_after_ft.unwrap();
            let uni = interpolate_accuracy(&curve, f);
            let n = p.row.eval_images.unwrap_or(0) as f64;
            let noise = match uni {
                Some(u) if n > 0.0 => Some(1.96 * ((acc * (1.0 - acc) + u * (1.0 - u)) / n).sqrt()),
                _ => None,
            };
            let (margin, verdict) = match (uni, noise) {
                (Some(u), Some(z)) => {
                    let m = acc - u;
                    let v = if m.abs() <= z { "within noise" } else if m > 0.0 { "latency better" } else { "uniform better" };
                    (format!("{:+.2}", m * 100.0), v.to_string())
                }
                (Some(u), None) => (format!("{:+.2}", (acc - u) * 100.0), "no image count".into()),
                _ => ("—".into(), "outside the uniform range".into()),
            };
            let _ = writeln!(
                md,
                "| {} | {:.3} | {} | {:.2} | {} | {} | {} | {} |",
                p.row.latency_target.map(|t| t.to_string()).unwrap_or_else(|| cell(&p.row.ratio)),
                f,
                if p.row.valid_or_unknown() { "yes" } else { "no" },
                acc * 100.0,
                uni.map(|u| format!("{:.2}", u * 100.0)).unwrap_or_else(|| "—".into()),
                margin,
                noise.map(|z| format!("±{:.2}", z * 100.0)).unwrap_or_else(|| "—".into()),
                verdict
            );
        }
        md.push('\n');
    }
    md
}

fn runtimes_section(sources: &[Source], points: &[Point<'_>]) -> String {
    // (file, device, dtype, batch) -> pruning -> label -> point.
    type Pruning = (String, String, String, Option<String>, String);
    let valid = |p: &Point| p.row.valid_or_unknown();
    let mut by: BTreeMap<(usize, String, String, usize), BTreeMap<Pruning, BTreeMap<String, &Point>>> = BTreeMap::new();
    for p in points.iter().filter(|p| !p.row.is_baseline()) {
        let s = p.setting.without_lowering();
        let r = p.row;
        by.entry((s.source, s.device, s.dtype, s.batch))
            .or_default()
            .entry((r.method.clone(), r.schedule.clone(), r.ratio.clone(), r.round_to.clone(), r.control.clone()))
            .or_default()
            .insert(p.setting.lowering.clone(), p);
    }
    let mut md = String::new();
    for ((source, device, dtype, batch), prunings) in by {
        let mut labels: Vec<String> = prunings.values().flat_map(|m| m.keys().cloned()).collect();
        labels.sort();
        labels.dedup();
        if labels.len() < 2 {
            continue;
        }
        if md.is_empty() {
            md.push_str(
                "## Speed-up per runtime\n\nEach pruning's speed-up over the unpruned network *on the same runtime \
                 and lowering* (`xla`, `tuned`: prunebench's programs on XLA; `onnxruntime`, `openvino`: the ONNX \
                 export), 95% intervals; *disagree* names the pairs whose intervals do not overlap, among valid \
                 measurements only (a cell marked *not valid* is a row whose measurement is not).\n\n",
            );
        }
        let file = if sources.len() > 1 { format!("{} ", sources[source].label) } else { String::new() };
        let _ = writeln!(md, "{file}{dtype} b{batch} {device}\n");
        let _ = writeln!(md, "| method | schedule | ratio | round_to | control | {} | disagree |", labels.join(" | "));
        let _ = writeln!(md, "|---|---|---|---|---|{}---|", "---|".repeat(labels.len()));
        for ((method, schedule, ratio, round_to, control), cells) in &prunings {
            let texts: Vec<String> = labels
                .iter()
                .map(|l| match cells.get(l) {
                    Some(p) => {
                        let t = match (p.speedup, p.speedup_ci) {
                            (Some(s), Some((lo, hi))) => format!("{s:.2}x [{lo:.2}, {hi:.2}]"),
                            (Some(s), None) => format!("{s:.2}x"),
                            _ => "—".into(),
                        };
                        if valid(p) { t } else { format!("{t} not valid") }
                    }
                    None => "—".into(),
                })
                .collect();
            let mut apart = Vec::new();
            for a in &labels {
                for b in &labels {
                    let ci = |l: &String| cells.get(l).filter(|p| valid(p)).and_then(|p| p.speedup_ci);
                    if let (Some((_, hi_a)), Some((lo_b, _))) = (ci(a), ci(b)) {
                        if a != b && lo_b > hi_a {
                            apart.push(format!("{b} > {a}"));
                        }
                    }
                }
            }
            let dis = if apart.is_empty() { "no".to_string() } else { apart.join(", ") };
            let rt = round_to.clone().unwrap_or_else(|| "—".into());
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                cell(method),
                cell(schedule),
                cell(ratio),
                rt,
                cell(control),
                texts.join(" | "),
                cell(&dis)
            );
        }
        md.push('\n');
    }
    md
}

fn noise_section(sources: &[Source], points: &[Point<'_>]) -> String {
    let mut md = String::from("## Within noise\n\n");
    md.push_str(
        "Per setting, judged once per program (rows sharing a measurement are joined by `=`): a pruned row whose \
         speed-up interval contains 1 is not measurably faster than the unpruned network; two rows whose p50 \
         intervals overlap differ by no more than the noise.\n\n",
    );
    let many = sources.len() > 1;
    let all = noise(points);
    if all.is_empty() {
        md.push_str("No rows.\n\n");
    }
    for (s, n) in all {
        let file = if many { format!("{} ", sources[s.source].label) } else { String::new() };
        let progs = if n.programs == 1 { "1 program".to_string() } else { format!("{} programs", n.programs) };
        let _ = writeln!(md, "**{file}{}** ({progs}):\n", s.text());
        if n.programs == 1 {
            md.push_str("- one program: nothing to compare.\n\n");
            continue;
        }
        if n.without_interval.len() == n.programs {
            md.push_str("- no intervals in the data: nothing can be said about noise.\n\n");
            continue;
        }
        if n.like_unpruned.is_empty() {
            md.push_str("- every pruned row's speed-up interval excludes 1 (or it has none).\n");
        } else {
            let _ = writeln!(md, "- not measurably faster than unpruned (speed-up interval contains 1): {}.", n.like_unpruned.join(", "));
        }
        if n.overlapping.is_empty() {
            md.push_str("- no two p50 intervals overlap: every difference is beyond noise.\n");
        } else {
            let pairs: Vec<String> = n.overlapping.iter().map(|(a, b)| format!("{a} ~ {b}")).collect();
            let _ = writeln!(md, "- within noise of each other (p50 intervals overlap): {}.", pairs.join("; "));
        }
        if !n.without_interval.is_empty() {
            let _ = writeln!(md, "- no interval: {}.", n.without_interval.join(", "));
        }
        md.push('\n');
    }
    md
}

/// The rows whose measurement is not valid, with the reasons and the machine load recorded.
fn not_valid_section(sources: &[Source], points: &[Point<'_>]) -> String {
    let mut md = String::from("## Not valid\n\n");
    let bad: Vec<&Point> = points.iter().filter(|p| !p.row.valid_or_unknown()).collect();
    let unknown = points.iter().filter(|p| p.row.validity().is_none()).count();
    if bad.is_empty() {
        if unknown == points.len() && !points.is_empty() {
            md.push_str("The data has no `valid` column (an older CSV): validity unknown.\n\n");
        } else {
            md.push_str("Every measured row is valid.\n\n");
        }
        return md;
    }
    md.push_str(
        "Drawn hollow in the plots and left out of the Pareto front and the budget picks.\n\n\
         | file | variant | row | reasons | other CPU | steal |\n|---|---|---|---|---|---|\n",
    );
    for p in bad {
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {} | {} | {} |",
            cell(&sources[p.source].label),
            cell(&p.row.variant),
            cell(&row_name(p.row)),
            cell(p.row.validity().and_then(|v| v.err()).unwrap_or("")),
            pct(p.row.load_other_cpu),
            pct(p.row.load_steal),
        );
    }
    md.push('\n');
    md
}
