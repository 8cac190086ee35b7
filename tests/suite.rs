//! Benchmark suites: schema errors, the smoke suite end to end on the CPU plugin, resuming,
//! injected failures, and the training stages.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use prunebench::suite::record::ALWAYS_FILLED_WHEN_OK;
use prunebench::suite::{self, RunOptions, Suite};

/// The tuner's cache in a temp folder shared by this binary's tests.
fn init() {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("PRUNEBENCH_CACHE_DIR", d.path());
        let _ = common::cpu();
        d
    });
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn err_of(text: &str) -> String {
    match Suite::from_text(Path::new("t.yaml"), text) {
        Ok(_) => panic!("the suite should be rejected:\n{text}"),
        Err(e) => e.to_string(),
    }
}

const TINY: &str = "model: {width: 0.0625, in_channels: 1}\ninit: {seed: 0}\n";

#[test]
fn unknown_key_names_the_key_line_and_suggestion() {
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  ratio: [0.5]\n"));
    assert!(e.contains("t.yaml") && e.contains("`ratio`") && e.contains("line 5"), "{e}");
    assert!(e.contains("did you mean `ratios`?"), "{e}");
    let e = err_of(&format!("{TINY}measure:\n  batch: [1]\n"));
    assert!(e.contains("`batch`") && e.contains("did you mean `batches`?"), "{e}");
    let e = err_of(&format!("{TINY}mesure:\n  batches: [1]\n"));
    assert!(e.contains("did you mean `measure`?") && e.contains("line 3"), "{e}");
}

#[test]
fn wrong_types_name_the_key() {
    let e = err_of(&format!("{TINY}measure:\n  batches: [1, four]\n"));
    assert!(e.contains("measure.batches") && e.contains("invalid") && e.contains("line 4"), "{e}");
    let e = err_of("model: {width: wide}\ninit: {seed: 0}\n");
    assert!(e.contains("model.width") && e.contains("line 1"), "{e}");
}

#[test]
fn values_out_of_range_say_the_fix() {
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  ratios: [0.5, 1.5]\n"));
    assert!(e.contains("line 5") && e.contains("pruning.ratios") && e.contains("1.5") && e.contains("[0, 1)"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  layer_ratios: [[0.5, 0.5]]\n"));
    assert!(e.contains("2 entries") && e.contains("13"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l11]\n  ratios: [0.5]\n"));
    assert!(e.contains("unknown method 'l11'") && e.contains("did you mean `l1`?"), "{e}");
    let e = err_of(&format!("{TINY}measure:\n  lowerings: [fast]\n"));
    assert!(e.contains("measure.lowerings") && e.contains("'fast'") && e.contains("xla, tuned, im2col or winograd"), "{e}");
    let e = err_of(&format!("{TINY}measure:\n  batches: [0]\n"));
    assert!(e.contains("measure.batches"), "{e}");
}

#[test]
fn empty_axes_and_missing_sources_are_errors() {
    let e = err_of(&format!("{TINY}pruning:\n  methods: []\n  ratios: [0.5]\n"));
    assert!(e.contains("pruning.methods") && e.contains("empty list") && e.contains("line 4"), "{e}");
    let e = err_of(&format!("{TINY}measure:\n  dtypes: []\n"));
    assert!(e.contains("measure.dtypes") && e.contains("empty"), "{e}");
    let e = err_of("model: {width: 0.0625}\n");
    assert!(e.contains("exactly one weight source") && e.contains("none is given"), "{e}");
    let e = err_of("model: {width: 0.0625}\ninit: {seed: 1}\ntrain: {steps: 1}\n");
    assert!(e.contains("init and train are given"), "{e}");
    let e = err_of("model: {width: 0.0625, in_channels: 3}\ninit: {seed: 0}\n");
    assert!(e.contains("in_channels: 1"), "{e}");
}

#[test]
fn shipped_suites_parse() {
    for name in ["smoke", "quickstart", "cifar10", "imagenet", "resnet", "latency"] {
        let p = root().join("suites").join(format!("{name}.yaml"));
        let text = std::fs::read_to_string(&p).unwrap();
        prunebench::suite::schema::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        match Suite::from_text(&p, &text) {
            Ok(s) => assert!(suite::expand(&s).len() > 1),
            // The GPU/TPU suites name data and checkpoints the user supplies.
            Err(e) => {
                let e = e.to_string();
                assert!(
                    ["cifar10", "imagenet"].contains(&name)
                        && (e.contains("does not exist") || e.contains("checkpoint")),
                    "{name}: {e}"
                );
            }
        }
    }
}

/// `prunebench report CSV --out REP` on the real binary; its summary.md.
fn report_summary(csv: &Path, rep: &Path) -> String {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(["report", csv.to_str().unwrap(), "--out", rep.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(rep.join("summary.md")).unwrap()
}

/// Rows of a CSV as maps.
fn read_csv(p: &Path) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(p).unwrap();
    let h: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(h, prunebench::suite::record::header());
    r.records().map(|row| h.iter().cloned().zip(row.unwrap().iter().map(str::to_string)).collect()).collect()
}

#[test]
fn smoke_suite_end_to_end_and_resume() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let s = Suite::load(&root().join("suites/smoke.yaml")).unwrap();
    let out = dir.path().join("smoke.csv");
    let opts = RunOptions { out: Some(out.clone()), ..RunOptions::default() };
    let t = std::time::Instant::now();
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    eprintln!("smoke suite: {} rows in {:.1}s", r.outcome.ok, t.elapsed().as_secs_f64());
    // 1 unpruned x 2 batches x 2 lowerings + 2 methods x 2 ratios x 2 controls x 2 batches.
    assert_eq!(r.planned, 4 + 16);
    assert_eq!((r.outcome.ok, r.outcome.failed, r.skipped), (20, 0, 0));
    let rows = read_csv(&out);
    assert_eq!(rows.len(), 20);
    for row in &rows {
        for c in ALWAYS_FILLED_WHEN_OK {
            assert!(!row[*c].is_empty(), "{}: column {c} is empty", row["variant"]);
        }
        assert_eq!(row["status"], "ok");
        assert_eq!(row["eval_images"], "200");
        assert!(!row["top1_before_ft"].is_empty() && row["top1_after_ft"].is_empty());
        let p50: f64 = row["latency_p50_ms"].parse().unwrap();
        let (lo, hi): (f64, f64) = (row["latency_min_ms"].parse().unwrap(), row["latency_max_ms"].parse().unwrap());
        assert!(lo <= p50 && p50 <= hi, "{row:?}");
        assert!(row["timestamp"].ends_with('Z') && row["suite_sha256"].len() == 64);
    }
    let by_id: HashMap<&str, &HashMap<String, String>> = rows.iter().map(|r| (r["variant"].as_str(), r)).collect();
    let base = by_id["unpruned/f32/b1/xla/cpu"];
    assert!(by_id.contains_key("unpruned/f32/b4/im2col/cpu"));
    let phys = by_id["l1-uniform-0.5-r1/f32/b1/xla/cpu"];
    let masked = by_id["l1-uniform-0.5-r1-masked/f32/b1/xla/cpu"];
    // The masked control keeps the shapes and computes the same function as the physically
    // pruned network, but keeps its own measurement (not the unpruned network's).
    assert_eq!(masked["channels"], base["channels"]);
    assert_eq!(masked["measured_for"], masked["variant"]);
    assert_eq!(masked["program_reused"], "false");
    assert_ne!(phys["channels"], base["channels"]);
    assert!(phys["params"].parse::<u64>().unwrap() < base["params"].parse::<u64>().unwrap());
    assert_eq!(masked["top1_before_ft"], phys["top1_before_ft"]);
    // fpgm and l1 at the same uniform ratio share their program: one measurement, made for
    // l1 (the first row using it), reported by both rows.
    let fpgm = by_id["fpgm-uniform-0.5-r1/f32/b1/xla/cpu"];
    assert_eq!(fpgm["channels"], phys["channels"]);
    assert_eq!((fpgm["measured_for"].as_str(), fpgm["program_reused"].as_str()), (phys["variant"].as_str(), "true"));
    assert_eq!(phys["measured_for"], phys["variant"]);
    let timing = |r: &HashMap<String, String>| {
        r.iter().filter(|(k, _)| k.starts_with("latency_") || *k == "samples" || *k == "rounds").map(|(k, v)| (k.clone(), v.clone())).collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(timing(fpgm), timing(phys));
    assert_ne!(timing(masked), timing(base));
    // Speed-ups are against the unpruned row of the same setting and lowering, inside their
    // interval; the unpruned rows themselves are 1; rows of one setting share their rounds.
    for row in &rows {
        let (s, lo, hi): (f64, f64, f64) =
            (row["speedup"].parse().unwrap(), row["speedup_ci_low"].parse().unwrap(), row["speedup_ci_high"].parse().unwrap());
        assert!(lo <= s && s <= hi && s > 0.0, "{row:?}");
        if row["method"] == "none" {
            assert_eq!((s, lo, hi), (1.0, 1.0, 1.0));
        }
        let (p50, lo, hi): (f64, f64, f64) = (
            row["latency_p50_ms"].parse().unwrap(),
            row["latency_p50_ci_low_ms"].parse().unwrap(),
            row["latency_p50_ci_high_ms"].parse().unwrap(),
        );
        assert!(lo <= p50 && p50 <= hi, "{row:?}");
        assert!(row["samples"].parse::<usize>().unwrap() >= 6);
        let valid = &row["valid"];
        assert!(valid == "yes" || valid.contains("ci ") || valid.contains("machine busy"), "{valid}");
        assert_eq!(row["rounds"], by_id[format!("unpruned/f32/b{}/xla/cpu", row["batch"]).as_str()]["rounds"]);
        let (a, o, t): (i64, i64, i64) =
            (row["argument_bytes"].parse().unwrap(), row["output_bytes"].parse().unwrap(), row["temp_bytes"].parse().unwrap());
        assert_eq!(row["program_min_bytes"].parse::<i64>().unwrap(), a + o + t);
    }

    // Resume: everything is there, nothing is measured.
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.outcome.failed, r.skipped, r.stale), (0, 0, 20, 0));
    assert_eq!(read_csv(&out).len(), 20);
    // The suite file changed (here only a comment): its finished rows are kept, and counted
    // as made by another version (the run says so before it starts).
    let text = std::fs::read_to_string(root().join("suites/smoke.yaml")).unwrap() + "\n# edited\n";
    let edited = Suite::from_text(&root().join("suites/smoke.yaml"), &text).unwrap();
    let r = suite::run(&edited, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.skipped, r.stale), (0, 20, 20));
}

#[test]
fn a_failing_variant_writes_an_error_row_and_the_rest_run() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{TINY}dataset: {{eval_limit: 0}}\npruning: {{methods: [l1], ratios: [0.5, 0.75]}}\n\
         measure: {{devices: [cpu], batches: [1], lowerings: [xla], baseline_lowerings: [tuned], warmup: 0,\
         min_iters: 2, min_seconds: 0, time_cap_s: 1, tune_min_seconds: 0.01}}\n\
         inject_failure: l1-uniform-0.5-\n"
    );
    let s = Suite::from_text(Path::new("inject.yaml"), &text).unwrap();
    let out = dir.path().join("r.csv");
    let opts = RunOptions { out: Some(out.clone()), ..RunOptions::default() };
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.outcome.failed), (3, 1));
    let rows = read_csv(&out);
    let tuned = rows.iter().find(|r| r["variant"] == "unpruned/f32/b1/tuned/cpu").unwrap();
    let plan = &tuned["lowering_plan"];
    assert!(plan.len() == 13 && plan.chars().all(|c| "digwk".contains(c)), "{plan}");
    let xla = rows.iter().find(|r| r["variant"] == "unpruned/f32/b1/xla/cpu").unwrap();
    assert_eq!(xla["lowering_plan"], "d".repeat(13));
    let bad = rows.iter().find(|r| r["status"] == "error").unwrap();
    assert_eq!(bad["variant"], "l1-uniform-0.5-r1/f32/b1/xla/cpu");
    assert!(bad["error"].contains("injected failure"), "{bad:?}");
    assert!(bad["latency_p50_ms"].is_empty() && !bad["timestamp"].is_empty() && bad["method"] == "l1");
    assert!(rows.iter().filter(|r| r["status"] == "ok").all(|r| r["top1_before_ft"].is_empty()));
    // Error rows count as done unless retried.
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok + r.outcome.failed, r.skipped), (0, 4));
    let retry = RunOptions { retry_errors: true, ..opts.clone() };
    let r = suite::run(&s, &retry, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.failed, r.skipped), (1, 3));
    // A set stop flag measures nothing and says so.
    let r = suite::run(&s, &RunOptions { force: true, ..opts }, &AtomicBool::new(true)).unwrap();
    assert!(r.outcome.interrupted && r.outcome.ok == 0);
}

#[test]
fn train_prune_finetune() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let save = dir.path().join("base.safetensors");
    let text = format!(
        "model: {{width: 0.0625, in_channels: 1}}\n\
         train: {{steps: 4, batch: 8, lr: 0.01, save: {}}}\n\
         dataset: {{eval_limit: 16, train_limit: 64, eval_batch: 16}}\n\
         pruning: {{methods: [l1], ratios: [0.5], controls: [physical, masked]}}\n\
         finetune: {{steps: 3, batch: 8, lr: 0.01}}\n\
         measure: {{devices: [cpu], batches: [1], lowerings: [xla], warmup: 0, min_iters: 2, min_seconds: 0, time_cap_s: 1}}\n",
        save.display()
    );
    let s = Suite::from_text(Path::new("train.yaml"), &text).unwrap();
    let out = dir.path().join("r.csv");
    let opts = RunOptions { out: Some(out.clone()), ..RunOptions::default() };
    let t = std::time::Instant::now();
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    eprintln!("train/prune/fine-tune suite: {:.1}s", t.elapsed().as_secs_f64());
    assert_eq!((r.outcome.ok, r.outcome.failed), (3, 0));
    assert!(save.is_file());
    let rows = read_csv(&out);
    let get = |id: &str| rows.iter().find(|r| r["variant"] == id).unwrap();
    let base = get("unpruned/f32/b1/xla/cpu");
    assert!(base["finetune_steps"].is_empty() && base["top1_after_ft"].is_empty());
    let phys = get("l1-uniform-0.5-r1/f32/b1/xla/cpu");
    let masked = get("l1-uniform-0.5-r1-masked/f32/b1/xla/cpu");
    assert_eq!(phys["finetune_steps"], "3");
    assert!(!phys["top1_after_ft"].is_empty() && !phys["loss_after_ft"].is_empty());
    // The masked control of the fine-tuned network computes the same function.
    let (a, b): (f64, f64) = (phys["loss_after_ft"].parse().unwrap(), masked["loss_after_ft"].parse().unwrap());
    assert!((a - b).abs() < 1e-3, "{a} vs {b}");
    assert_eq!(phys["lowering_plan"], "d".repeat(13));
    // The pruned, fine-tuned network was saved in the work folder beside the CSV; a run that
    // lost its rows (a crash) reloads it instead of fine-tuning again: same rows, files untouched.
    let work = dir.path().join("r.csv.work");
    let after = std::fs::read_dir(&work)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".after.safetensors"))
        .expect("a saved fine-tuned network");
    let saved_at = std::fs::metadata(&after).unwrap().modified().unwrap();
    std::fs::remove_file(&out).unwrap();
    let r = suite::run(&s, &opts, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.outcome.failed), (3, 0));
    let again = read_csv(&out);
    let phys2 = again.iter().find(|r| r["variant"] == "l1-uniform-0.5-r1/f32/b1/xla/cpu").unwrap();
    for c in ["finetune_s", "loss_after_ft", "top1_after_ft", "top1_before_ft"] {
        assert_eq!(phys2[c], phys[c], "{c}");
    }
    assert_eq!(std::fs::metadata(&after).unwrap().modified().unwrap(), saved_at);
    // --force re-measures every row but keeps the work folder (a re-measurement on a quieter
    // machine does not fine-tune again); --fresh also forgets it.
    let r = suite::run(&s, &RunOptions { force: true, ..opts.clone() }, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.skipped), (3, 0));
    assert_eq!(std::fs::metadata(&after).unwrap().modified().unwrap(), saved_at);
    let r = suite::run(&s, &RunOptions { force: true, fresh: true, ..opts.clone() }, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.skipped), (3, 0));
    assert_ne!(std::fs::metadata(&after).unwrap().modified().unwrap(), saved_at, "--fresh fine-tunes again");
    // The trained network is reused by a run with the same training settings.
    let mtime = std::fs::metadata(&save).unwrap().modified().unwrap();
    let text = format!(
        "model: {{width: 0.0625, in_channels: 1}}\n\
         train: {{steps: 4, batch: 8, lr: 0.01, save: {}}}\n\
         dataset: {{eval_limit: 0, train_limit: 64}}\n\
         measure: {{devices: [cpu], batches: [1], lowerings: [xla], warmup: 0, min_iters: 2, min_seconds: 0, time_cap_s: 1}}\n",
        save.display()
    );
    let s = Suite::from_text(Path::new("again.yaml"), &text).unwrap();
    let r = suite::run(&s, &RunOptions { out: Some(dir.path().join("again.csv")), ..opts }, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.outcome.ok, 1);
    assert_eq!(std::fs::metadata(&save).unwrap().modified().unwrap(), mtime);
}

/// The reported fault: a suite with `lr: 1000` wrote `status=ok` rows with a fine-tuned loss
/// of 8.3e13. A diverged fine-tune is an error row naming the divergence, for the physical
/// variant and its masked twin; the unpruned variant is unaffected.
#[test]
fn a_diverged_finetune_is_an_error_row() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let text = "model: {width: 0.0625, in_channels: 1}\ninit: {seed: 0}\n\
         dataset: {eval_limit: 16, train_limit: 64, eval_batch: 16}\n\
         pruning: {methods: [l1], ratios: [0.5], controls: [physical, masked]}\n\
         finetune: {steps: 8, batch: 8, lr: 1000}\n\
         measure: {devices: [cpu], batches: [1], lowerings: [xla], warmup: 0, min_iters: 2, min_seconds: 0}\n";
    let s = Suite::from_text(Path::new("diverge.yaml"), text).unwrap();
    let out = dir.path().join("r.csv");
    let r = suite::run(&s, &RunOptions { out: Some(out.clone()), ..RunOptions::default() }, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.outcome.failed, r.outcome.interrupted), (1, 2, false));
    let rows = read_csv(&out);
    for id in ["l1-uniform-0.5-r1/f32/b1/xla/cpu", "l1-uniform-0.5-r1-masked/f32/b1/xla/cpu"] {
        let row = rows.iter().find(|r| r["variant"] == id).unwrap();
        assert_eq!(row["status"], "error", "{row:?}");
        assert!(row["error"].contains("fine-tuning: training diverged at step"), "{}", row["error"]);
        assert!(row["loss_after_ft"].is_empty());
    }
}

/// The runtimes axis: every pruning measured on XLA and on the ONNX export in ONNX Runtime and
/// OpenVINO, each pruned row's speed-up against the unpruned row of its own runtime; the report
/// puts them side by side.
#[test]
fn runtimes_axis_measures_each_variant_on_every_runtime() {
    init();
    let text = format!(
        "{TINY}dataset: {{eval_limit: 0}}\npruning:\n  methods: [l1]\n  ratios: [0.5]\n\
         measure:\n  devices: [cpu]\n  batches: [2]\n  lowerings: [xla]\n  runtimes: [xla, onnxruntime, openvino]\n\
         \x20 warmup: 1\n  min_iters: 6\n  target_ci: 1.0\n  time_cap_s: 0\n"
    );
    let s = Suite::from_text(Path::new("runtimes.yaml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rt.csv");
    let r = suite::run(&s, &RunOptions { out: Some(out.clone()), ..RunOptions::default() }, &AtomicBool::new(false)).unwrap();
    assert_eq!((r.outcome.ok, r.outcome.failed), (6, 0));
    let rows = read_csv(&out);
    for row in &rows {
        let rt = row["runtime"].as_str();
        for c in ALWAYS_FILLED_WHEN_OK {
            let xla_only = prunebench::suite::record::XLA_ONLY.contains(c);
            assert_eq!(row[*c].is_empty(), rt != "xla" && xla_only, "{}: column {c} is '{}'", row["variant"], row[*c]);
        }
        assert!(row["variant"].contains(&format!("/b2/{}/cpu", if rt == "xla" { "xla" } else { rt })), "{row:?}");
        if rt == "xla" {
            assert_eq!((row["lowering"].as_str(), row["runtime_version"].as_str()), ("xla", ""));
        } else {
            assert_eq!((row["lowering"].as_str(), row["lowering_plan"].as_str()), ("-", "-"));
            assert!(row["runtime_version"].starts_with(&format!("{rt} 20")) || row["runtime_version"].starts_with(&format!("{rt} 1.")), "{row:?}");
        }
        if row["method"] == "l1" {
            // Against the unpruned row of the same runtime: the one measured in the same rounds.
            let base = rows.iter().find(|b| b["method"] == "none" && b["runtime"] == row["runtime"]).unwrap();
            let want = base["latency_p50_ms"].parse::<f64>().unwrap() / row["latency_p50_ms"].parse::<f64>().unwrap();
            let got: f64 = row["speedup"].parse().unwrap();
            assert!((got / want - 1.0).abs() < 1e-3, "{rt}: speed-up {got} vs p50 ratio {want}");
        }
    }
    let runtimes: Vec<&str> = rows.iter().map(|r| r["runtime"].as_str()).collect();
    for want in ["xla", "onnxruntime", "openvino"] {
        assert_eq!(runtimes.iter().filter(|r| **r == want).count(), 2, "{runtimes:?}");
    }
    // The report's side-by-side table.
    let rep = dir.path().join("report");
    let md = report_summary(&out, &rep);
    let sec = &md[md.find("## Speed-up per runtime").expect("the runtimes section")..];
    assert!(sec.contains("| method | schedule | ratio | round_to | control | onnxruntime | openvino | xla | disagree |"), "{sec}");
    assert!(sec.contains("| l1 | uniform | 0.5 | 1 | physical |"), "{sec}");
    // They run on the CPU: a GPU suite with them is refused.
    let e = err_of(&format!("{TINY}measure:\n  devices: [gpu]\n  runtimes: [openvino]\n"));
    assert!(e.contains("measure.devices") && e.contains("devices: [cpu]"), "{e}");
    // Another dtype with those runtimes is refused by name.
    let e = err_of(&format!("{TINY}measure:\n  dtypes: [bf16]\n  runtimes: [xla, onnxruntime]\n"));
    assert!(e.contains("measure.dtypes") && e.contains("f32"), "{e}");
}

/// The latency schedule as a suite axis: the table profiled beside the CSV, the row's target,
/// prediction and its error filled, the report's comparison with the uniform rows. No figure
/// is checked (timing): only that the columns and the section are there and consistent.
#[test]
fn latency_schedule_axis_profiles_prunes_and_reports() {
    init();
    let text = format!(
        "{TINY}dataset: {{eval_limit: 16, train_limit: 32, eval_batch: 16}}\n\
         pruning:\n  methods: [l1]\n  ratios: [0.25, 0.75]\n  round_to: [1, auto]\n  schedules: [uniform, latency]\n  latency_targets: [0.9]\n\
         \x20 latency: {{lowering: xla, grid: 2, refine: 0}}\n\
         finetune: {{steps: 1, batch: 8, lr: 0.01}}\n\
         measure: {{devices: [cpu], batches: [1], lowerings: [xla], warmup: 0, min_iters: 2, min_seconds: 0, time_cap_s: 1}}\n"
    );
    let s = Suite::from_text(Path::new("lat.yaml"), &text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("lat.csv");
    let r = suite::run(&s, &RunOptions { out: Some(out.clone()), ..RunOptions::default() }, &AtomicBool::new(false)).unwrap();
    // Unpruned, 2 ratios x (r1, rauto), and the latency target (its round_to is always 1).
    assert_eq!((r.outcome.ok, r.outcome.failed), (6, 0));
    let table = dir.path().join("lat-latency-table.json");
    let model: prunebench::budget::Model = serde_json::from_str(&std::fs::read_to_string(&table).unwrap()).unwrap();
    assert!(model.setting.starts_with("b1 xla f32 "), "{}", model.setting);
    let rows = read_csv(&out);
    // round_to auto: the uniform counts snapped on the table's staircase.
    let counts = |id: &str| -> Vec<usize> {
        let r = rows.iter().find(|r| r["variant"] == id).unwrap_or_else(|| panic!("{id}"));
        r["channels"].split(' ').map(|c| c.parse().unwrap()).collect()
    };
    for ratio in ["0.25", "0.75"] {
        let plain = counts(&format!("l1-uniform-{ratio}-r1/f32/b1/xla/cpu"));
        assert_eq!(counts(&format!("l1-uniform-{ratio}-rauto/f32/b1/xla/cpu")), model.snap(&plain), "ratio {ratio}");
    }
    assert!(rows.iter().any(|r| r["round_to"] == "auto"));
    let lat = rows.iter().find(|r| r["variant"] == "l1-latency-0.9-r1/f32/b1/xla/cpu").expect("the latency row");
    assert_eq!((lat["schedule"].as_str(), lat["ratio"].as_str(), lat["latency_target"].as_str()), ("latency", "0.9", "0.9"));
    let num = |k: &str| lat[k].parse::<f64>().unwrap_or_else(|_| panic!("{k} = '{}'", lat[k]));
    // The prediction meets the target; its error is measured / predicted - 1 of this row.
    assert!(num("predicted_fraction") <= 0.9 + 1e-9);
    let measured = 1.0 / num("speedup");
    assert!((num("prediction_error") - (measured / num("predicted_fraction") - 1.0)).abs() < 2e-3 * (1.0 + measured));
    assert!((num("target_error") - (measured / 0.9 - 1.0)).abs() < 2e-3 * (1.0 + measured));
    assert!(num("predicted_ms") > 0.0);
    for r in rows.iter().filter(|r| r["schedule"] != "latency") {
        assert!(r["latency_target"].is_empty() && r["predicted_ms"].is_empty() && r["target_error"].is_empty(), "{r:?}");
    }
    let rep = dir.path().join("report");
    let md = report_summary(&out, &rep);
    let sec = &md[md.find("## Latency schedule against uniform").expect("the comparison section")..];
    assert!(sec.contains("| 0.9 | "), "{sec}");
    // The staircase of the table beside the CSV is among the plots.
    assert!(md.contains("staircase.svg") && rep.join("staircase.png").is_file(), "{md}");
    // Configuration errors name the key and the fix.
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  latency_targets: [0.5]\n"));
    assert!(e.contains("pruning.latency_targets") && e.contains("schedules: [uniform, latency]"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  schedules: [latency]\n  ratios: [0.5]\n"));
    assert!(e.contains("latency_targets") && e.contains("missing"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  schedules: [latency]\n  latency_targets: [1.5]\n"));
    assert!(e.contains("1.5") && e.contains("(0, 1]"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  ratios: [0.5]\n  round_to: [eight]\n"));
    assert!(e.contains("pruning.round_to") && e.contains("or auto"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  schedules: [latency]\n  latency_targets: [0.5]\n  latency: {{dtype: f16}}\n"));
    assert!(e.contains("pruning.latency.dtype") && e.contains("bf16"), "{e}");
    let e = err_of(&format!("{TINY}pruning:\n  methods: [l1]\n  schedules: [latency]\n  latency_targets: [0.5]\n  latency: {{lowering: im2col}}\n"));
    assert!(e.contains("pruning.latency.lowering") && e.contains("xla or tuned"), "{e}");
}
