//! `scripts/main.sh` (the README's main job) and `scripts/cpu-hog.sh`: on a fresh clone the
//! main job writes a new run folder and never the committed results, an unfinished run is
//! continued (the newest, or the one named), and the report compares with the reference.
//! `--dry-run` prints the commands and runs none, so nothing here builds or measures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn main_sh(runs: &Path, args: &[&str]) -> Output {
    Command::new("bash")
        .arg(root().join("scripts/main.sh"))
        .args(args)
        .env("PRUNEBENCH_RUNS_DIR", runs)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .unwrap()
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// The printed command that contains `needle`.
fn command<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines().find(|l| l.starts_with("+ ") && l.contains(needle)).unwrap_or_else(|| panic!("no '{needle}' in:\n{text}"))
}

#[test]
fn a_fresh_clone_gets_a_new_run_folder_and_a_report_against_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let o = main_sh(dir.path(), &["--dry-run"]);
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let runs = dir.path().join("quickstart");
    let first = text.lines().next().unwrap();
    let run = first.strip_prefix("new run: ").unwrap_or_else(|| panic!("{text}"));
    let ts = run.strip_prefix(&format!("{}/", runs.display())).unwrap();
    assert!(ts.len() == 16 && ts.ends_with('Z') && ts.as_bytes()[8] == b'T', "UTC timestamp folder: {ts}");
    let run_cmd = command(&text, " run suites/quickstart.yaml");
    assert!(run_cmd.ends_with(&format!("--out {run}/quickstart.csv")), "{run_cmd}");
    assert!(!text.contains("--out results/"), "never writes the committed results:\n{text}");
    let report = command(&text, " report ");
    assert!(report.contains(&format!("report {run}/quickstart.csv --out {run}/report --table")), "{report}");
    assert!(report.ends_with("--reference results/quickstart.csv"), "{report}");
    assert!(command(&text, "touch").ends_with(&format!("{run}/finished")));
    assert!(text.contains(&format!("report: {run}/report/summary.md")), "{text}");
    assert!(!runs.exists(), "--dry-run creates nothing");
}

#[test]
fn the_newest_unfinished_run_is_continued_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("quickstart");
    let (old, done, newest) = (runs.join("20261101T000000Z"), runs.join("20261102T000000Z"), runs.join("20261103T000000Z"));
    for d in [&old, &done] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(done.join("finished"), "").unwrap();
    // The newer run is finished: the older unfinished one is continued.
    let text = out(&main_sh(dir.path(), &["--dry-run"]));
    assert!(text.starts_with(&format!("resuming the newest unfinished run: {} (start a new one instead with --new)", old.display())), "{text}");
    assert!(command(&text, " run ").contains(&format!("--out {}/quickstart.csv", old.display())));
    std::fs::create_dir_all(&newest).unwrap();
    let text = out(&main_sh(dir.path(), &["--dry-run"]));
    assert!(text.contains(&format!("unfinished run: {}", newest.display())), "{text}");
    // --new starts another; --resume names one; a folder that is not there is an error.
    assert!(out(&main_sh(dir.path(), &["--dry-run", "--new"])).starts_with("new run: "));
    let text = out(&main_sh(dir.path(), &["--dry-run", "--resume", done.to_str().unwrap()]));
    assert!(text.starts_with(&format!("resuming the run in {}", done.display())), "{text}");
    let o = main_sh(dir.path(), &["--dry-run", "--resume", "/nonexistent/run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("no run folder '/nonexistent/run'"), "{}", out(&o));
    let o = main_sh(dir.path(), &["--bogus"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("unknown argument '--bogus'"));
}

#[test]
fn extra_arguments_go_to_prunebench_run_and_help_names_every_flag() {
    let dir = tempfile::tempdir().unwrap();
    let text = out(&main_sh(dir.path(), &["--dry-run", "--new", "--", "--retry-errors", "--quiet"]));
    assert!(command(&text, " run suites/").ends_with("quickstart.csv --retry-errors --quiet"), "{text}");
    let help = out(&main_sh(dir.path(), &["--help"]));
    for f in ["--resume DIR", "--new", "--dry-run", "--help", "-- RUN-ARGS"] {
        assert!(help.contains(&format!("  {f} ")), "--help does not document {f}:\n{help}");
    }
}

#[test]
fn cpu_hog_starts_n_processes_and_checks_its_arguments() {
    let hog = root().join("scripts/cpu-hog.sh");
    let o = Command::new("bash").arg(&hog).args(["1", "2"]).output().unwrap();
    let text = out(&o);
    assert!(o.status.success(), "{text}");
    let pids: Vec<u32> = text.trim().rsplit(": ").next().unwrap().split(' ').map(|p| p.parse().unwrap()).collect();
    assert_eq!(pids.len(), 2, "{text}");
    let o = Command::new("bash").arg(&hog).args(["ten"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("'ten' is not a whole number"));
    for s in ["main.sh", "cpu-hog.sh"] {
        let p = root().join("scripts").join(s);
        assert!(Command::new("bash").arg("-n").arg(&p).status().unwrap().success(), "{s}");
        assert!(std::fs::read_to_string(&p).unwrap().contains("\nset -euo pipefail\n"), "{s}");
    }
}
