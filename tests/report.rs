//! `prunebench report` and `prunebench merge` on CSVs like the smoke suite's: the tables, the
//! plots and their series, clear errors for malformed files, and the merge rules.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use prunebench::report::{self, merge};
use prunebench::suite::{Record, Status};

const CHANNELS: [usize; 13] = [4, 4, 8, 8, 16, 16, 16, 32, 32, 32, 32, 32, 32];
const BASE_MACS: u64 = 1_200_000;

#[allow(clippy::too_many_arguments)]
/// A row as `prunebench run suites/smoke.yaml` writes it (device `dev`, latency scaled by
/// `slow`). Ratio 0 is the unpruned row.
fn rec(dev: &str, method: &str, ratio: f64, round_to: usize, masked: bool, batch: usize, lowering: &str, slow: f64) -> Record {
    let pruned = ratio > 0.0;
    let keep = 1.0 - ratio;
    let prune_key = if pruned {
        format!("{method}-uniform-{ratio}-r{round_to}{}", if masked { "-masked" } else { "" })
    } else {
        "unpruned".to_string()
    };
    let channels: Vec<String> = CHANNELS
        .iter()
        .map(|&c| {
            let k = if masked { c } else { ((c as f64 * keep).round() as usize).max(1) };
            k.div_ceil(round_to) * round_to
        })
        .map(|c| c.to_string())
        .collect();
    // MACs scale with keep² (input and output channels both shrink); masked keeps every MAC.
    let macs = if masked { BASE_MACS } else { (BASE_MACS as f64 * keep * keep).round() as u64 };
    let per_image = if batch == 1 { 0.40 } else { 0.275 };
    let lowering_factor = if lowering == "im2col" { 1.3 } else { 1.0 };
    // Measured speed-up well below the MAC-ideal one (fixed costs do not shrink).
    let p50 = if masked {
        per_image * batch as f64 * slow * 1.02
    } else {
        per_image * batch as f64 * slow * lowering_factor * (0.25 + 0.75 * keep * keep)
    };
    let p50 = (p50 * 1e6).round() / 1e6;
    let worse = if method == "fpgm" { 0.01 } else { 0.0 };
    let top1_before = if !pruned { 0.84 } else if masked { 0.61 - ratio * 0.2 - worse } else { 0.62 - ratio * 0.2 - worse };
    Record {
        suite: "smoke".into(),
        variant: format!("{prune_key}/f32/b{batch}/{lowering}/{dev}"),
        method: if pruned { method.into() } else { "none".into() },
        schedule: if pruned { "uniform".into() } else { "none".into() },
        ratio: if pruned { ratio.to_string() } else { "0".into() },
        round_to: round_to.to_string(),
        control: if masked { "masked".into() } else { "physical".into() },
        lowering: lowering.into(),
        lowering_plan: Some(if lowering == "im2col" { "i" } else { "d" }.repeat(13)),
        dtype: "f32".into(),
        batch,
        device: dev.into(),
        platform: Some(dev.into()),
        device_kind: Some(if dev == "cpu" { "cpu".into() } else { "NVIDIA H100 80GB HBM3".into() }),
        channels: Some(channels.join(" ")),
        params: Some((60_000.0 * keep * keep) as u64),
        macs: Some(macs),
        compile_s: Some(0.21),
        program_reused: Some(false),
        latency_min_ms: Some(p50 * 0.95),
        latency_mean_ms: Some(p50 * 1.02),
        latency_p50_ms: Some(p50),
        latency_p90_ms: Some(p50 * 1.1),
        latency_p95_ms: Some(p50 * 1.12),
        latency_p99_ms: Some(p50 * 1.2),
        latency_p999_ms: Some(p50 * 1.3),
        latency_max_ms: Some(p50 * 1.3),
        latency_std_ms: Some(p50 * 0.05),
        samples: Some(120),
        throughput_ips: Some(batch as f64 * 1000.0 / p50),
        latency_with_copy_p50_ms: Some(p50 + 0.02),
        latency_with_copy_mean_ms: Some(p50 + 0.03),
        argument_bytes: Some((240_000.0 * keep * keep) as i64 + 3136 * batch as i64),
        output_bytes: Some(40 * batch as i64),
        temp_bytes: Some((65_536.0 * batch as f64 * keep) as i64),
        code_bytes: Some(0),
        compiler_peak_bytes: None,
        device_peak_bytes: if dev == "cpu" { None } else { Some((2_000_000.0 * keep) as i64) },
        host_peak_rss_bytes: Some(180_000_000),
        eval_images: Some(200),
        top1_before_ft: Some(top1_before),
        top5_before_ft: Some(0.97),
        loss_before_ft: Some(1.1),
        top1_after_ft: if pruned && !masked && round_to == 1 { Some(0.83 - ratio * 0.05 - worse) } else { None },
        timestamp: "2026-11-26T05:00:00Z".into(),
        prunebench_commit: "abc1234".into(),
        plugin: Some("/x/.pjrt/cpu/xla_plugins/xla_cpu_pjrt/xla_cpu_pjrt.so".into()),
        pjrt_api: Some("0.81".into()),
        host_cpu: "AMD EPYC".into(),
        suite_sha256: "0f".repeat(32),
        status: Status::Ok,
        ..Record::default()
    }
}

/// The smoke suite's rows (plus a `round_to: 8` line and one error row).
fn smoke_rows(dev: &str, slow: f64) -> Vec<Record> {
    let mut v = Vec::new();
    for batch in [1, 4] {
        v.push(rec(dev, "none", 0.0, 1, false, batch, "xla", slow));
        v.push(rec(dev, "none", 0.0, 1, false, batch, "im2col", slow));
    }
    for method in ["l1", "fpgm"] {
        for ratio in [0.5, 0.75] {
            for masked in [false, true] {
                for batch in [1, 4] {
                    v.push(rec(dev, method, ratio, 1, masked, batch, "xla", slow));
                }
            }
        }
    }
    for ratio in [0.5, 0.75] {
        v.push(rec(dev, "l1", ratio, 8, false, 1, "xla", slow));
    }
    let mut bad = rec(dev, "fpgm", 0.9, 1, false, 4, "xla", slow);
    bad = Record {
        suite: bad.suite,
        variant: bad.variant,
        method: bad.method,
        schedule: bad.schedule,
        ratio: bad.ratio,
        round_to: bad.round_to,
        control: bad.control,
        lowering: bad.lowering,
        dtype: bad.dtype,
        batch: bad.batch,
        device: bad.device,
        timestamp: bad.timestamp,
        status: Status::Error,
        error: Some("PJRT PJRT_Client_Compile failed [RESOURCE_EXHAUSTED]: out of memory".into()),
        ..Record::default()
    };
    v.push(bad);
    v
}

fn write_csv(path: &Path, rows: &[Record]) {
    let mut w = csv::Writer::from_path(path).unwrap();
    for r in rows {
        w.serialize(r).unwrap();
    }
    w.flush().unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn pb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prunebench")).args(args).output().expect("run prunebench")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Whether `svg` has a text element reading exactly `label`.
fn has(svg: &str, label: &str) -> bool {
    svg.split("<text").skip(1).any(|t| {
        let body = t.split_once('>').map(|x| x.1).unwrap_or("");
        body.split("</text>").next().unwrap_or("").trim() == label
    })
}

const PLOTS: [&str; 5] = ["latency_vs_ratio", "accuracy_vs_latency", "memory_vs_ratio", "masked_vs_physical", "round_to"];

/// The `|`-separated cells of the first table line that contains all of `needles`.
fn table_line<'a>(md: &'a str, needles: &[&str]) -> Vec<&'a str> {
    let line = md
        .lines()
        .find(|l| l.starts_with('|') && needles.iter().all(|n| l.contains(n)))
        .unwrap_or_else(|| panic!("no table line with {needles:?} in:\n{md}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

#[test]
fn smoke_like_csv_gives_tables_budgets_errors_and_plots() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("smoke.csv");
    write_csv(&csv, &smoke_rows("cpu", 1.0));
    let out = dir.path().join("report");
    let o = pb(&["report", s(&csv), "--out", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(said.contains("23 rows read (22 plotted, 0 not valid, 1 errors listed)"), "{said}");

    let md = read(&out.join("summary.md"));
    for h in ["## Inputs", "## Unpruned (method `none`, ratio 0)", "## Method `fpgm`", "## Method `l1`", "## Best variant per latency budget", "## Plots", "## Errors"] {
        assert!(md.contains(h), "{h} missing:\n{md}");
    }
    // Tables in order: unpruned first, then the methods alphabetically.
    let (u, f, l) = (md.find("## Unpruned").unwrap(), md.find("## Method `fpgm`").unwrap(), md.find("## Method `l1`").unwrap());
    assert!(u < f && f < l);

    // Columns: setting, control, ratio, round_to, channels, params, MACs, p50, speed-up,
    // MAC-ideal, efficiency, compiled MiB, peak MiB, top-1 before, top-1 after.
    let head = table_line(&md[l..], &["setting", "speed-up"]);
    assert_eq!(head.len(), 15, "{head:?}");
    let base = table_line(&md[u..], &["f32 b1 xla cpu", "physical"]);
    assert_eq!(base[8], "1.00×", "{base:?}");
    assert_eq!(base[13], "84.0%", "{base:?}");
    let half = table_line(&md[l..], &["f32 b1 xla cpu", "| physical | 0.5 | 1 |"]);
    assert_eq!(half[4], "2 2 4 4 8 8 8 16 16 16 16 16 16", "{half:?}");
    assert_eq!(half[6], "300 000", "MACs: {half:?}");
    let p50: f64 = half[7].parse().unwrap();
    let speedup: f64 = half[8].trim_end_matches('×').parse().unwrap();
    assert!((0.40 / p50 - speedup).abs() < 0.01, "{half:?}");
    assert_eq!(half[9], "4.00×", "MAC-ideal: {half:?}");
    let eff: f64 = half[10].trim_end_matches('%').parse().unwrap();
    assert!((eff - speedup / 4.0 * 100.0).abs() < 1.0, "{half:?}");
    assert_eq!(half[12], "—", "no peak on the CPU plugin: {half:?}");
    assert_eq!((half[13], half[14]), ("52.0%", "80.5%"), "{half:?}");
    let masked = table_line(&md[l..], &["f32 b1 xla cpu", "| masked | 0.5 | 1 |"]);
    assert_eq!(masked[9], "1.00×", "a masked control keeps every MAC: {masked:?}");
    assert_eq!(masked[14], "—");

    // Budgets: the unpruned network fits 100% of its own p50; at 75% the best pruned variant
    // (l1 beats fpgm by a point); at 25% nothing.
    assert!(md.contains("**f32 b1 cpu** (unpruned p50 0.400 ms)"), "{md}");
    let budget_line = |pct: &str| {
        let start = md.find("**f32 b1 cpu**").unwrap();
        md[start..].lines().find(|l| l.contains(&format!("({pct} of unpruned)"))).unwrap().to_string()
    };
    assert!(budget_line("100%").contains("`unpruned/f32/b1/xla/cpu`: top-1 84.0%"), "{}", budget_line("100%"));
    assert!(budget_line("75%").contains("`l1-uniform-0.5-r1/f32/b1/xla/cpu`: top-1 80.5%"), "{}", budget_line("75%"));
    assert!(budget_line("25%").contains("nothing fits"), "{}", budget_line("25%"));

    // The error row: listed with its line and message, not tabulated.
    let err = table_line(&md, &["fpgm-uniform-0.9-r1/f32/b4/xla/cpu"]);
    assert_eq!(err[1], "24", "line of the error row: {err:?}");
    assert!(err[4].contains("RESOURCE_EXHAUSTED"), "{err:?}");
    assert_eq!(md.matches("fpgm-uniform-0.9").count(), 1, "error rows are not plotted or tabulated");

    // Every plot, as SVG and PNG, with its series.
    for p in PLOTS {
        assert!(md.contains(&format!("[{p}.svg]({p}.svg)")), "{p} not linked");
        let png = image::open(out.join(format!("{p}.png"))).unwrap_or_else(|e| panic!("{p}.png: {e}")).to_rgb8();
        assert_eq!(png.dimensions(), report::plot::SIZE);
        let dark = png.pixels().filter(|px| px.0.iter().all(|&c| c < 80)).count();
        assert!(dark > 2000, "{p}.png has hardly any text or axes ({dark} dark pixels)");
    }
    let svg = |p: &str| read(&out.join(format!("{p}.svg")));
    let lat = svg("latency_vs_ratio");
    for series in ["l1 · r1 · b1 MAC-ideal", "fpgm · r1 · b4 MAC-ideal", "p50 latency (ms)", "fraction of channels removed"] {
        assert!(has(&lat, series), "latency_vs_ratio.svg lacks {series}");
    }
    // Batch 1 and 4 are in the data, so the labels name them (and nothing that is constant).
    let lat_labels = ["l1 · r1 · b1", "l1 · r8 · b1", "fpgm · r1 · b4"];
    for series in lat_labels {
        assert!(has(&lat, series), "latency_vs_ratio.svg lacks {series}");
    }
    assert!(!lat.contains("· cpu"), "the device is constant: not in labels");
    let acc = svg("accuracy_vs_latency");
    for series in ["Pareto front · b1", "Pareto front · b4", "unpruned · b1 · xla", "unpruned · b1 · im2col", "l1 · masked · b4 · xla"] {
        assert!(has(&acc, series), "accuracy_vs_latency.svg lacks {series}");
    }
    let mem = svg("memory_vs_ratio");
    assert!(has(&mem, "l1 · r1 · b1 compiled") && !mem.contains(" peak\n"), "CPU: compiled memory, no peak");
    let mv = svg("masked_vs_physical");
    for series in ["l1 · physical · r1 · b1", "l1 · masked · r1 · b1", "fpgm · masked · r1 · b4"] {
        assert!(has(&mv, series), "masked_vs_physical.svg lacks {series}");
    }
    let rt = svg("round_to");
    assert!(has(&rt, "l1 · r1 · b1") && has(&rt, "l1 · r8 · b1"), "round_to.svg lacks the r1/r8 lines");
}

#[test]
fn several_csvs_share_the_plots_labelled_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cpu, gpu) = (dir.path().join("smoke-cpu.csv"), dir.path().join("smoke-gpu.csv"));
    write_csv(&cpu, &smoke_rows("cpu", 1.0));
    write_csv(&gpu, &smoke_rows("gpu", 0.1));
    let out = dir.path().join("r");
    let w = report::report(&[cpu.clone(), gpu.clone()], &out).unwrap();
    assert_eq!((w.rows, w.plotted, w.errors), (46, 44, 2));
    assert_eq!(w.plots.len(), 12, "six plots (speedup first), SVG and PNG each");
    let md = read(&w.summary);
    let gpu_row = table_line(&md, &["smoke-gpu", "f32 b1 xla gpu", "| physical | 0.5 | 1 |"]);
    assert_eq!(gpu_row[0], "smoke-gpu");
    assert_ne!(gpu_row[13], "—", "peak memory where the plugin reports it: {gpu_row:?}");
    assert!(md.contains("**smoke-gpu f32 b4 gpu**"), "{md}");
    let lat = read(&out.join("latency_vs_ratio.svg"));
    for series in ["l1 · r1 · smoke-cpu · cpu · b1", "l1 · r1 · smoke-gpu · gpu · b1", "fpgm · r1 · smoke-gpu · gpu · b4 MAC-ideal"] {
        assert!(has(&lat, series), "latency_vs_ratio.svg lacks {series}");
    }
    let mem = read(&out.join("memory_vs_ratio.svg"));
    assert!(has(&mem, "l1 · r1 · smoke-gpu · gpu · b1 peak"), "GPU rows have a peak series");
    let acc = read(&out.join("accuracy_vs_latency.svg"));
    assert!(has(&acc, "Pareto front · smoke-cpu · cpu · b1") && has(&acc, "Pareto front · smoke-gpu · gpu · b4"));
}

#[test]
fn extra_columns_are_ignored_and_missing_optional_ones_are_empty() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("few.csv");
    std::fs::write(
        &p,
        "variant,method,ratio,status,latency_p50_ms,batch,dtype,lowering,device,macs,from_the_future\n\
         unpruned/f32/b1/xla/cpu,none,0,ok,0.4,1,f32,xla,cpu,100,x\n\
         l1-uniform-0.5-r1/f32/b1/xla/cpu,l1,0.5,ok,0.25,1,f32,xla,cpu,25,y\n",
    )
    .unwrap();
    let w = report::report(&[p], &dir.path().join("r")).unwrap();
    assert_eq!((w.rows, w.plotted, w.errors), (2, 2, 0));
    let md = read(&w.summary);
    let row = table_line(&md, &["| 0.5 |"]);
    assert_eq!((row[8], row[9], row[10]), ("1.60×", "4.00×", "40%"), "{row:?}");
    assert!(md.contains("No setting has both an unpruned row and accuracy."));
}

#[test]
fn malformed_csvs_are_errors_with_their_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    write_csv(&good, &smoke_rows("cpu", 1.0)[..3]);
    let text = read(&good);
    let mut lines: Vec<&str> = text.lines().collect();

    // A cut row (a crash mid-write, or a hand edit) on line 4.
    let cut = lines[3][..40].to_string();
    lines[3] = &cut;
    let p = dir.path().join("cut.csv");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let e = report::report(std::slice::from_ref(&p), &dir.path().join("r")).unwrap_err().to_string();
    assert!(e.contains("cut.csv") && e.contains("line 4") && e.contains("fields where the header has"), "{e}");

    // A bad number on line 3: the column is named.
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == "latency_p50_ms").unwrap();
    let mut bad: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<String> = bad[2].split(',').map(str::to_string).collect();
    cells[i] = "fast".into();
    bad[2] = cells.join(",");
    let p = dir.path().join("nan.csv");
    std::fs::write(&p, bad.join("\n") + "\n").unwrap();
    let e = report::report(std::slice::from_ref(&p), &dir.path().join("r")).unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("latency_p50_ms"), "{e}");

    // Not a result CSV at all.
    let p = dir.path().join("other.csv");
    std::fs::write(&p, "a,b\n1,2\n").unwrap();
    let e = report::report(std::slice::from_ref(&p), &dir.path().join("r")).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("variant"), "{e}");

    // Through the binary: one error line, no panic.
    let o = pb(&["report", s(&dir.path().join("cut.csv")), "--out", s(&dir.path().join("r"))]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.starts_with("error: ") && err.contains("line 4") && !err.contains("panicked"), "{err}");
    let o = pb(&["report", s(&dir.path().join("missing.csv")), "--out", s(&dir.path().join("r"))]);
    assert!(!o.status.success() && String::from_utf8_lossy(&o.stderr).contains("missing.csv"));
}

// ---- merge ---------------------------------------------------------------------------------

fn variants(p: &Path) -> Vec<(String, String)> {
    let mut r = csv::Reader::from_path(p).unwrap();
    r.deserialize::<Record>()
        .map(|x| x.unwrap())
        .map(|x| (x.variant, format!("{:?}", x.status).to_lowercase()))
        .collect()
}

fn errored(mut r: Record) -> Record {
    r.status = Status::Error;
    r.error = Some("boom".into());
    r.latency_p50_ms = None;
    r
}

#[test]
fn merge_dedups_ok_over_error_then_later_wins() {
    let dir = tempfile::tempdir().unwrap();
    let rows = smoke_rows("cpu", 1.0);
    let (a, b) = (dir.path().join("shard0.csv"), dir.path().join("shard1.csv"));
    // Shard 0: rows 0..4 (row 1 an error, row 3 ok); shard 1: rows 1..6 (row 1 ok now,
    // row 3 an error, row 2 ok again but slower).
    let mut r2_later = rows[2].clone();
    r2_later.latency_p50_ms = Some(9.0);
    write_csv(&a, &[rows[0].clone(), errored(rows[1].clone()), rows[2].clone(), rows[3].clone()]);
    write_csv(&b, &[rows[1].clone(), r2_later, errored(rows[3].clone()), rows[4].clone(), rows[5].clone()]);
    let out = dir.path().join("all.csv");
    let st = merge::merge_files(&[a.clone(), b.clone()], &out, false).unwrap();
    assert_eq!(
        st,
        merge::MergeStats {
            files: 2,
            rows_in: 9,
            duplicates: 3,
            errors_replaced: 2,
            rows_out: 6,
            ok_out: 6,
            errors_out: 0,
            suite_versions: 1
        }
    );
    let v = variants(&out);
    assert_eq!(v.iter().map(|x| x.0.clone()).collect::<Vec<_>>(), rows[..6].iter().map(|r| r.variant.clone()).collect::<Vec<_>>());
    assert!(v.iter().all(|x| x.1 == "ok"), "{v:?}");
    let mut r = csv::Reader::from_path(&out).unwrap();
    let kept: Vec<Record> = r.deserialize().map(|x| x.unwrap()).collect();
    assert_eq!(kept[2].latency_p50_ms, Some(9.0), "between two ok rows the later wins");
    // The output is a valid result CSV: the header is the current one.
    assert_eq!(read(&out).lines().next().unwrap().split(',').collect::<Vec<_>>(), prunebench::suite::record::header());

    // Through the binary, into one of the inputs.
    let o = pb(&["merge", s(&a), s(&b), "-o", s(&a)]);
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{said}");
    assert!(said.contains("9 rows in, 3 duplicates dropped (2 error rows superseded by ok rows), 6 rows out (6 ok, 0 error)"), "{said}");
    assert_eq!(variants(&a).len(), 6);
}

#[test]
fn merge_refuses_other_suites_and_schemas_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let rows = smoke_rows("cpu", 1.0);
    let a = dir.path().join("a.csv");
    write_csv(&a, &rows[..3]);
    let mut other = rows[3].clone();
    other.suite = "full".into();
    let b = dir.path().join("b.csv");
    write_csv(&b, &[rows[4].clone(), other]);
    let out = dir.path().join("all.csv");
    let e = merge::merge_files(&[a.clone(), b.clone()], &out, false).unwrap_err().to_string();
    assert!(e.contains("b.csv") && e.contains("line 3") && e.contains("'full'") && e.contains("'smoke'") && e.contains("--force"), "{e}");
    assert!(!out.exists());
    let st = merge::merge_files(&[a.clone(), b.clone()], &out, true).unwrap();
    assert_eq!((st.rows_in, st.rows_out), (5, 5));

    // Another schema: a column missing and one added.
    let text = read(&rows_csv(&dir, "c.csv", &rows[5..7]));
    let text = text.replacen("top5_after_ft,", "", 1).replacen("suite,", "suite,shard,", 1);
    let fixed: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                return l.to_string();
            }
            let mut c: Vec<&str> = l.split(',').collect();
            let idx = prunebench::suite::record::header().iter().position(|h| h == "top5_after_ft").unwrap();
            c.remove(idx);
            c.insert(1, "1/2");
            c.join(",")
        })
        .collect();
    let c = dir.path().join("c.csv");
    std::fs::write(&c, fixed.join("\n") + "\n").unwrap();
    let e = merge::merge_files(&[a.clone(), c.clone()], &out, false).unwrap_err().to_string();
    assert!(e.contains("c.csv") && e.contains("missing [top5_after_ft], extra [shard]") && e.contains("--force"), "{e}");
    let o = pb(&["merge", s(&a), s(&c), "-o", s(&out), "--force"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let merged = read(&out);
    let header: Vec<&str> = merged.lines().next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"shard"), "the union of the columns, first file's order first");
    assert!(header.contains(&"top5_after_ft"));
    assert_eq!(merged.lines().count(), 1 + 5);
    // The rows of the second file have their cells under the right columns.
    let mut r = csv::Reader::from_path(&out).unwrap();
    let h = r.headers().unwrap().clone();
    let last = r.records().last().unwrap().unwrap();
    let get = |name: &str| last.get(h.iter().position(|x| x == name).unwrap()).unwrap().to_string();
    assert_eq!((get("variant"), get("shard"), get("top5_after_ft")), (rows[6].variant.clone(), "1/2".into(), String::new()));
}

fn rows_csv(dir: &tempfile::TempDir, name: &str, rows: &[Record]) -> PathBuf {
    let p = dir.path().join(name);
    write_csv(&p, rows);
    p
}

/// The real thing: `prunebench run suites/smoke.yaml` on the CPU plugin, then `report`.
#[test]
fn report_on_a_real_smoke_run() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("smoke.csv");
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/smoke.yaml");
    let o = Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["run", s(&suite), "--out", s(&csv), "--quiet"])
        .env("PRUNEBENCH_CACHE_DIR", dir.path().join("cache"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = dir.path().join("report");
    let o = pb(&["report", s(&csv), "--out", s(&out)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let md = read(&out.join("summary.md"));
    for h in ["## Unpruned", "## Method `fpgm`", "## Method `l1`", "**f32 b1 cpu**", "No error rows."] {
        assert!(md.contains(h), "{h} missing:\n{md}");
    }
    // 4 unpruned + 2 methods x 2 ratios x 2 controls x 2 batches, each a line of the method
    // tables and of the speed-up table before them.
    let tables = &md[md.find("## Unpruned").unwrap()..];
    assert_eq!(tables.lines().filter(|l| l.starts_with("| f32 b")).count(), 20, "{md}");
    assert_eq!(md.lines().filter(|l| l.starts_with("| f32 b")).count(), 40, "{md}");
    let lat = read(&out.join("latency_vs_ratio.svg"));
    for series in ["l1 · b1", "fpgm · b4", "l1 · b4 MAC-ideal"] {
        assert!(has(&lat, series), "latency_vs_ratio.svg lacks {series}");
    }
    assert!(has(&read(&out.join("masked_vs_physical.svg")), "fpgm · masked · b1"));
    for p in PLOTS {
        assert!(out.join(format!("{p}.png")).metadata().unwrap().len() > 10_000, "{p}.png");
    }
}
