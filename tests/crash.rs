//! Crash safety of a suite run, with the real binary: a run killed (`kill -9`) at a given step
//! is resumed by the next run, which loses only the rows of the setting being made ready or
//! timed (finished fine-tunes are kept in the work folder), duplicates none and leaves no
//! half-written checkpoint; a second run on the same CSV is refused while the first
//! holds it. (`scripts/kill-trials.sh` runs 20 such trials at random moments.)

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use prunebench::suite::CsvExporter;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `prunebench run SUITE --out OUT` from the project folder (where the CPU plugin is found),
/// with the tuner cache in `dir`.
fn run_cmd(suite: &Path, out: &Path, dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_prunebench"));
    c.current_dir(root()).env("PRUNEBENCH_CACHE_DIR", dir.join("cache")).arg("run").arg(suite).arg("--out").arg(out);
    c
}

/// The training fixture, written into `dir`.
fn train_suite(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("tests/fixtures/kill-train.yaml")).unwrap();
    let p = dir.join("suite.yaml");
    std::fs::write(&p, text.replace("@DIR@", &dir.display().to_string())).unwrap();
    p
}

/// Starts the run with `--steps`, kills it with SIGKILL as soon as the `nth` (1-based) stderr
/// line containing `at` appears, and returns the lines seen.
fn kill_at(suite: &Path, out: &Path, dir: &Path, at: &str, nth: usize) -> Vec<String> {
    let mut child = run_cmd(suite, out, dir).arg("--steps").stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
    let mut lines = Vec::new();
    let mut seen = 0;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        seen += usize::from(line.contains(at));
        lines.push(line);
        if seen == nth {
            // SAFETY: a signal to our own child, which has not been waited for yet.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            break;
        }
    }
    let status = child.wait().unwrap();
    assert!(lines.last().is_some_and(|l| l.contains(at)), "the run ended before '{at}' ({status}):\n{}", lines.join("\n"));
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", lines.join("\n"));
    lines
}

/// Rows of the CSV as prunebench reads them: (rows, distinct ok variants).
fn rows(out: &Path) -> (usize, usize) {
    let (_, ex) = CsvExporter::open(out, false).unwrap();
    (ex.rows, ex.ok.len())
}

/// Kills a training suite at the `nth` line containing `at`, checks `kept` rows and `saved`
/// finished configurations in the work folder survived, resumes it, and checks the CSV holds
/// every variant once and the checkpoint loads, with no temporary file left.
fn trial(at: &str, nth: usize, kept: usize, saved: usize) {
    let dir = tempfile::tempdir().unwrap();
    let suite = train_suite(dir.path());
    let out = dir.path().join("r.csv");
    kill_at(&suite, &out, dir.path(), at, nth);
    let work = dir.path().join("r.csv.work");
    let entries = std::fs::read_dir(&work).map(|d| {
        d.filter(|e| {
            let n = e.as_ref().unwrap().file_name().to_string_lossy().into_owned();
            n.ends_with(".json") && !n.contains("scores") && !n.starts_with('.')
        })
        .count()
    });
    assert_eq!(entries.unwrap_or(0), saved, "finished configurations in {} after a kill at '{at}'", work.display());
    if out.exists() {
        assert_eq!(rows(&out), (kept, kept), "rows kept after a kill at '{at}'");
    } else {
        assert_eq!(kept, 0);
    }
    // The killed run's lock is gone with it: the next run starts at once.
    let o = run_cmd(&suite, &out, dir.path()).arg("--quiet").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(&format!("{} measured, 0 failed, {kept} already done, of 5 variants", 5 - kept)), "{err}");
    assert_eq!(rows(&out), (5, 5), "every variant once after resuming");
    let ck = prunebench::model::checkpoint::load(&dir.path().join("base.safetensors")).unwrap();
    assert_eq!(ck.model.arch, prunebench::suite::Suite::load(&suite).unwrap().arch);
    let names: HashSet<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(names.iter().all(|n| !n.contains(".tmp")), "{names:?}");
}

#[test]
fn killed_while_training_resumes_from_nothing() {
    trial(": train 3/6", 1, 0, 0);
}

#[test]
fn killed_while_fine_tuning_keeps_the_finished_fine_tunes() {
    // The one setting (batch 1) is being made ready: no row is written yet, the first pruned
    // configuration is fine-tuned and saved, the second is being fine-tuned.
    trial(": fine-tune 2/4", 2, 0, 1);
}

#[test]
fn a_second_run_on_the_same_csv_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.csv");
    let held = CsvExporter::open(&out, false).unwrap();
    let o = run_cmd(&root().join("suites/smoke.yaml"), &out, dir.path()).arg("--quiet").output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    let want = format!("{} is being written by another prunebench run (pid {}, started ", out.display(), std::process::id());
    assert!(err.contains(&want) && err.contains("wait for it or use --out OTHER"), "{err}");
    drop(held);
    // Once the holder lets go the file opens at once, untouched by the refused run. (A holder
    // killed with SIGKILL lets go too: `trial` resumes right after one.)
    assert_eq!(rows(&out), (0, 0));
}
