//! The deployment scripts: `--dry-run` prints every command in order and runs none, the VM
//! is deleted (and the CSV fetched) also when a step fails, `--help` documents every flag,
//! and the Slurm array and Kubernetes Indexed Job pass the right shard.
//!
//! External tools (gcloud, ssh, scp, git) are replaced by stubs that log their calls, so
//! nothing here needs them installed or reaches a network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder of stub commands that append their arguments to `calls.log` and fail when
/// `$FAIL_ON` occurs in them.
fn stubs(dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["gcloud", "ssh", "scp", "git"] {
        let p = bin.join(tool);
        std::fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{tool} $*\" >> \"{log}\"\ncase \"$*\" in *\"${{FAIL_ON:-@none@}}\"*) exit 1;; esac\nexit 0\n",
                log = dir.join("calls.log").display()
            ),
        )
        .unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    bin
}

fn calls(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("calls.log")).unwrap_or_default().lines().map(str::to_string).collect()
}

fn script(name: &str, args: &[&str], env: &[(&str, &str)], stub_dir: Option<&Path>) -> Output {
    let mut c = Command::new("bash");
    c.arg(root().join("scripts").join(name)).args(args).current_dir(root());
    for v in ["SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_STEP", "SLURM_SUBMIT_DIR", "FAIL_ON"] {
        c.env_remove(v);
    }
    if let Some(d) = stub_dir {
        let path = format!("{}:{}", stubs(d).display(), std::env::var("PATH").unwrap_or_default());
        c.env("PATH", path);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run bash")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The printed commands (`+ ...` lines).
fn printed(o: &Output) -> Vec<String> {
    text(o).0.lines().filter_map(|l| l.strip_prefix("+ ")).map(str::to_string).collect()
}

fn find(lines: &[String], needle: &str) -> usize {
    lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no command with '{needle}' in:\n{}", lines.join("\n")))
}

/// The `--flag)` arms of a script's option parser.
fn flags_of(script: &str) -> Vec<String> {
    let src = std::fs::read_to_string(root().join("scripts").join(script)).unwrap();
    let mut out = Vec::new();
    for line in src.lines() {
        let t = line.trim_start();
        if let Some(arm) = t.strip_prefix("--").and_then(|r| r.split_once(')')).map(|x| x.0) {
            if !arm.contains(' ') {
                out.push(format!("--{arm}"));
            }
        }
    }
    out
}

fn help_documents_every_flag(script_name: &str) {
    let o = script(script_name, &["--help"], &[], None);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{script_name} --help: {err}");
    let flags = flags_of(script_name);
    assert!(flags.len() >= 3, "{flags:?}");
    for f in flags.iter().chain([&"--help".to_string()]) {
        assert!(out.lines().any(|l| l.trim_start().starts_with(f.as_str()) || l.contains(&format!(" {f} "))), "{script_name} --help does not document {f}:\n{out}");
    }
    assert!(!out.contains("SBATCH --") && !out.contains("set -euo"), "{out}");
}

#[test]
fn scripts_parse_and_use_strict_mode() {
    for s in ["tpu-vm.sh", "gpu-host.sh", "slurm-array.sh"] {
        let p = root().join("scripts").join(s);
        let o = Command::new("bash").arg("-n").arg(&p).output().unwrap();
        assert!(o.status.success(), "{s}: {}", String::from_utf8_lossy(&o.stderr));
        assert!(std::fs::read_to_string(&p).unwrap().contains("\nset -euo pipefail\n"), "{s}");
        help_documents_every_flag(s);
    }
}

const TPU: &[&str] = &[
    "--zone", "us-central2-b", "--accelerator-type", "v4-8", "--version", "tpu-ubuntu2204-base", "--project", "my-proj",
    "--name", "pb-test", "--suite", "suites/smoke.yaml",
];

#[test]
fn tpu_vm_dry_run_prints_every_step_in_order_and_runs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = TPU.iter().copied().chain(["--dry-run"]).collect();
    let o = script("tpu-vm.sh", &args, &[], Some(dir.path()));
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(calls(dir.path()).is_empty(), "--dry-run ran {:?}", calls(dir.path()));
    let c = printed(&o);
    let order = [
        "git -C",
        "gcloud compute tpus tpu-vm create pb-test",
        "gcloud compute tpus tpu-vm scp",
        "tar -xzf prunebench.tar.gz",
        "bash scripts/setup.sh --tpu",
        "cargo build --release --locked",
        "target/release/prunebench run suites/smoke.yaml --out results/smoke-v4-8.csv",
        "pb-test:prunebench/results/smoke-v4-8.csv",
        "gcloud compute tpus tpu-vm delete pb-test",
    ];
    let pos: Vec<usize> = order.iter().map(|n| find(&c, n)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "out of order: {pos:?}\n{}", c.join("\n"));
    assert_eq!(pos.len(), c.len(), "one command per step:\n{}", c.join("\n"));
    assert!(c[0].contains("archive") && c[0].ends_with(" HEAD"), "{}", c[0]);
    assert!(c[1].contains("--accelerator-type=v4-8") && c[1].contains("--version=tpu-ubuntu2204-base"), "{}", c[1]);
    for l in c.iter().filter(|l| l.starts_with("gcloud")) {
        assert!(l.contains("--zone=us-central2-b") && l.contains("--project=my-proj"), "{l}");
    }
    assert!(c.last().unwrap().ends_with("--quiet"), "the delete must not prompt: {}", c.last().unwrap());
    assert!(c[7].ends_with(&format!("{}/results/smoke-v4-8.csv --zone=us-central2-b --project=my-proj --worker=0", root().display())), "{}", c[7]);
    assert!(err.contains("dry run"), "{err}");
}

#[test]
fn tpu_vm_clone_mode_and_keep() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> =
        TPU.iter().copied().chain(["--repo", "https://example.org/me/prunebench.git", "--ref", "v0.2", "--keep", "--out", "x.csv", "--dry-run"]).collect();
    let o = script("tpu-vm.sh", &args, &[], Some(dir.path()));
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let c = printed(&o);
    assert!(!c.iter().any(|l| l.contains("archive") || l.contains("tar -xzf")), "{c:?}");
    let clone = find(&c, "git clone https://example.org/me/prunebench.git prunebench && git -C prunebench checkout v0.2");
    assert!(clone == 1 && find(&c, "create") == 0);
    assert!(find(&c, "--out results/x.csv") < find(&c, "pb-test:prunebench/results/x.csv"));
    assert!(!c.iter().any(|l| l.contains(" delete ")), "--keep: no delete: {c:?}");
    assert!(err.contains("gcloud compute tpus tpu-vm delete pb-test"), "--keep tells how to delete: {err}");
}

#[test]
fn tpu_vm_deletes_the_vm_when_a_step_fails() {
    let clone = ["--repo", "https://example.org/me/prunebench.git"];
    // The build fails: the VM is deleted, nothing is fetched (no run started).
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = TPU.iter().copied().chain(clone).collect();
    let o = script("tpu-vm.sh", &args, &[("FAIL_ON", "cargo build")], Some(dir.path()));
    assert!(!o.status.success());
    let c = calls(dir.path());
    assert!(c.last().unwrap().starts_with("gcloud compute tpus tpu-vm delete pb-test"), "{c:?}");
    assert!(!c.iter().any(|l| l.contains("prunebench run") || l.contains("results/smoke")), "{c:?}");

    // The run fails midway: the rows written so far are fetched, then the VM is deleted.
    let dir = tempfile::tempdir().unwrap();
    let o = script("tpu-vm.sh", &args, &[("FAIL_ON", "prunebench run")], Some(dir.path()));
    let (_, err) = text(&o);
    assert!(!o.status.success());
    let c = calls(dir.path());
    let fetch = find(&c, "scp pb-test:prunebench/results/smoke-v4-8.csv");
    assert_eq!(fetch + 1, c.len() - 1, "{c:?}");
    assert!(c.last().unwrap().contains("tpu-vm delete pb-test"), "{c:?}");
    assert!(err.contains("copying back the rows written so far"), "{err}");

    // Even a failed create deletes (a half-made VM still costs money).
    let dir = tempfile::tempdir().unwrap();
    let o = script("tpu-vm.sh", &args, &[("FAIL_ON", "tpu-vm create")], Some(dir.path()));
    assert!(!o.status.success());
    let c = calls(dir.path());
    assert_eq!(c.len(), 2, "{c:?}");
    assert!(c[1].contains("tpu-vm delete pb-test"), "{c:?}");
}

#[test]
fn tpu_vm_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    for (drop, needle) in [("--zone", "--zone is required"), ("--accelerator-type", "--accelerator-type is required"), ("--suite", "--suite is required")] {
        let i = TPU.iter().position(|a| *a == drop).unwrap();
        let args: Vec<&str> = TPU.iter().enumerate().filter(|(j, _)| *j != i && *j != i + 1).map(|x| *x.1).chain(["--dry-run"]).collect();
        let o = script("tpu-vm.sh", &args, &[], Some(dir.path()));
        assert_eq!(o.status.code(), Some(2));
        assert!(text(&o).1.contains(needle), "{}", text(&o).1);
    }
    let o = script("tpu-vm.sh", &["--zone"], &[], None);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("--zone needs a value"), "{}", text(&o).1);
    let o = script("tpu-vm.sh", &["--zonee", "x"], &[], None);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("unknown option '--zonee'"), "{}", text(&o).1);
    let args: Vec<&str> = TPU.iter().map(|a| if *a == "suites/smoke.yaml" { "suites/nope.yaml" } else { a }).chain(["--dry-run"]).collect();
    let o = script("tpu-vm.sh", &args, &[], None);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("no suite file 'suites/nope.yaml'"), "{}", text(&o).1);
    assert!(calls(dir.path()).is_empty());
}

#[test]
fn gpu_host_dry_run_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    let base = ["--host", "me@gpu-box", "--suite", "suites/smoke.yaml"];
    let args: Vec<&str> = base.iter().copied().chain(["--dir", "pb", "--clean", "--dry-run"]).collect();
    let o = script("gpu-host.sh", &args, &[], Some(dir.path()));
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(calls(dir.path()).is_empty(), "--dry-run ran {:?}", calls(dir.path()));
    let c = printed(&o);
    let order = [
        "git -C",
        "ssh me@gpu-box 'mkdir -p pb'",
        "scp ",
        "tar -xzf prunebench.tar.gz",
        "bash scripts/setup.sh --gpu",
        "cargo build --release --locked",
        "target/release/prunebench run suites/smoke.yaml --out results/smoke-gpu.csv",
        "scp me@gpu-box:pb/results/smoke-gpu.csv",
        "rm -rf pb",
    ];
    let pos: Vec<usize> = order.iter().map(|n| find(&c, n)).collect();
    assert!(pos.windows(2).all(|w| w[0] < w[1]), "out of order: {pos:?}\n{}", c.join("\n"));
    assert_eq!(pos.len(), c.len(), "{}", c.join("\n"));
    assert!(c[4].contains("nvidia-smi"), "checks for a GPU first: {}", c[4]);

    // The run fails: the rows written so far come back; the folder stays without --clean.
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<&str> = base.iter().copied().chain(["--repo", "https://example.org/p.git"]).collect();
    let o = script("gpu-host.sh", &args, &[("FAIL_ON", "prunebench run")], Some(dir.path()));
    assert!(!o.status.success());
    let c = calls(dir.path());
    assert!(c.last().unwrap().starts_with("scp me@gpu-box:prunebench/results/smoke-gpu.csv"), "{c:?}");
    assert!(c[0].contains("git clone https://example.org/p.git prunebench") && c[0].contains("checkout --quiet --detach origin/HEAD"), "{c:?}");

    let o = script("gpu-host.sh", &["--suite", "suites/smoke.yaml", "--dry-run"], &[], None);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("--host is required"));
}

#[test]
fn slurm_array_task_runs_its_shard() {
    let src = std::fs::read_to_string(root().join("scripts/slurm-array.sh")).unwrap();
    assert!(src.lines().any(|l| l == "#SBATCH --array=0-3"), "an array job by default");
    let run = |env: &[(&str, &str)], extra: &[&str]| {
        let args: Vec<&str> = ["suites/smoke.yaml"].into_iter().chain(extra.iter().copied()).chain(["--dry-run"]).collect();
        script("slurm-array.sh", &args, env, None)
    };
    let o = run(&[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")], &[]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(
        printed(&o),
        ["target/release/prunebench run suites/smoke.yaml --shard 2/4 --out results/smoke-shard-2-of-4.csv --quiet"]
    );
    // --array=1-4: task 1 is shard 0; --array=0-6:2: task 4 is shard 2.
    let o = run(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4")], &["--out-dir", "out", "--bin", "pb"]);
    assert_eq!(printed(&o), ["pb run suites/smoke.yaml --shard 0/4 --out out/smoke-shard-0-of-4.csv --quiet"]);
    let o = run(&[("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_STEP", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")], &[]);
    assert!(printed(&o)[0].contains("--shard 2/4"), "{:?}", printed(&o));
    // Not in an array: a clear error.
    let o = run(&[], &[]);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("submit with sbatch"), "{}", text(&o).1);
    let o = script("slurm-array.sh", &["--dry-run"], &[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "4")], None);
    assert!(o.status.code() == Some(2) && text(&o).1.contains("suite file is required"), "{}", text(&o).1);
}

#[test]
fn k8s_indexed_job_runs_shard_job_completion_index() {
    let text = std::fs::read_to_string(root().join("deploy/k8s-indexed-job.yaml")).unwrap();
    let docs: Vec<serde_yaml_ng::Value> = serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("valid YAML"))
        .collect();
    let job = docs.iter().find(|d| d["kind"] == "Job").expect("a Job");
    let pvc = docs.iter().find(|d| d["kind"] == "PersistentVolumeClaim").expect("a volume claim");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    let n = spec["completions"].as_u64().unwrap();
    assert_eq!(spec["parallelism"].as_u64(), Some(n));
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let c = &pod["containers"][0];
    let env = |name: &str| {
        c["env"].as_sequence().unwrap().iter().find(|e| e["name"] == name).and_then(|e| e["value"].as_str()).unwrap().to_string()
    };
    assert_eq!(env("SHARDS"), n.to_string(), "--shards N must equal completions");
    let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let vol = &pod["volumes"][0];
    assert_eq!(vol["name"], c["volumeMounts"][0]["name"]);
    assert_eq!(vol["persistentVolumeClaim"]["claimName"], pvc["metadata"]["name"]);

    // Run the container's command with a stand-in prunebench, as pod 2 would.
    let script = c["args"][0].as_str().unwrap();
    assert_eq!(c["command"][0], "bash");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("target/release");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("prunebench"), "#!/bin/sh\necho \"ARGS $*\"\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("prunebench"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let o = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir.path())
        .env("SUITE", env("SUITE"))
        .env("SHARDS", env("SHARDS"))
        .env("JOB_COMPLETION_INDEX", "2")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    let expect = format!("ARGS run suites/smoke.yaml --shards {n} --out {mount}/smoke-shard-2-of-{n}.csv --quiet");
    assert!(out.lines().any(|l| l == expect), "{out}");
}
