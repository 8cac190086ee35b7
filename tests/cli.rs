//! The binary end to end: init, predict (against the Rust reference), hlo, info, and the
//! one-line errors a user gets for bad input.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use ndarray::{Array2, Array4};
use prunebench::model::checkpoint;

fn pb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(args)
        .env("PRUNEBENCH_CACHE_DIR", std::env::temp_dir().join("prunebench-cli-test-cache"))
        .output()
        .expect("run prunebench")
}

fn ok(args: &[&str]) -> String {
    let o = pb(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "prunebench {args:?} failed: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned() + &err
}

/// Fails with exit code != 0, one `error:` line naming `needle`, and no panic.
fn fails(args: &[&str], needle: &str) {
    let o = pb(args);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "prunebench {args:?} should fail");
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "prunebench {args:?}: '{needle}' not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn init_predict_matches_reference_and_hlo_info_work() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("m.safetensors");
    ok(&["init", "--width", "0.0625", "--in-channels", "1", "--classes", "7", "--hidden", "16", "--seed", "5", "--out", s(&ck)]);
    let v = checkpoint::load(&ck).unwrap().model;
    assert_eq!(v.arch.classes, 7);
    let x: Array4<f32> = common::images(5, 32, 32, 1, 9);
    let xin = d.path().join("x.npy");
    ndarray_npy::write_npy(&xin, &x).unwrap();
    let out = d.path().join("logits.npy");
    for lowering in ["xla", "im2col", "tuned"] {
        ok(&["predict", "--checkpoint", s(&ck), "--input", s(&xin), "--out", s(&out), "--device", "cpu", "--batch", "2", "--lowering", lowering]);
        let got: Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
        assert_eq!(got.shape(), &[5, 7]);
        let want = common::logits(&v, &x.mapv(f64::from));
        let got: Vec<f64> = got.iter().map(|&g| g as f64).collect();
        let want: Vec<f64> = want.iter().copied().collect();
        assert!(common::rel_err(&got, &want) < 1e-4, "{lowering}");
    }
    let mlir = d.path().join("m.mlir");
    ok(&["hlo", "--checkpoint", s(&ck), "--batch", "3", "--lowering", "im2col", "--out", s(&mlir)]);
    let text = std::fs::read_to_string(&mlir).unwrap();
    assert!(text.contains("func.func public @main(%arg0: tensor<3x32x32x1xf32>"));
    assert!(text.contains("stablehlo.dot_general") && !text.contains("stablehlo.convolution"));
    let info = ok(&["info", s(&ck)]);
    assert!(info.contains("conv12") && info.contains("dense1") && info.contains("total"));
    // 16 groups: the input's, 13 convs', the hidden layer's, the output's.
    let groups = info.split("dependency groups\n").nth(1).unwrap_or_default().split("\npruned groups").next().unwrap_or_default();
    assert_eq!(groups.lines().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).count(), 16, "{info}");
    assert!(groups.contains("no (network input)") && groups.contains("out features.12, bn features.12.bn, rows classifier.0"), "{info}");
    // The pruned groups are the 13 convs, numbered as --skip and --ratios read them.
    let pruned = info.split("\npruned groups").nth(1).unwrap_or_default();
    assert!(pruned.contains("   12  group 13   features.12") && !pruned.contains("classifier.0"), "{info}");
    let dev = ok(&["devices", "--device", "cpu"]);
    assert!(dev.contains("PJRT API:") && dev.contains("device 0:"), "{dev}");
}

/// ResNet-20 and MobileNetV2 through the commands a user runs: init at Fashion-MNIST's 28x28,
/// predict against the reference, prune by dependency groups (the pruned file describes its
/// groups and predicts what the reference of the pruned tensors gives), fine-tune, info.
#[test]
fn resnet_and_mobilenet_run_through_init_predict_prune_finetune_info() {
    let d = tempfile::tempdir().unwrap();
    for (form, width) in [("resnet20-cifar", "0.25"), ("mobilenetv2-cifar", "0.125")] {
        let ck = d.path().join(format!("{form}.safetensors"));
        ok(&["init", "--model", form, "--width", width, "--in-channels", "1", "--input-size", "28x28", "--seed", "3", "--out", s(&ck)]);
        let pruned = d.path().join(format!("{form}-p.safetensors"));
        let text = ok(&["prune", "--checkpoint", s(&ck), "--method", "l1", "--ratio", "0.5", "--round-to", "2", "--out", s(&pruned)]);
        assert!(text.contains("reduction: channels") && text.contains("layer1.0.conv1") == (form == "resnet20-cifar"), "{text}");
        let x: Array4<f32> = common::images(3, 28, 28, 1, 9);
        let xin = d.path().join("x.npy");
        ndarray_npy::write_npy(&xin, &x).unwrap();
        let out = d.path().join("logits.npy");
        for path in [&ck, &pruned] {
            ok(&["predict", "--checkpoint", s(path), "--input", s(&xin), "--out", s(&out), "--device", "cpu", "--batch", "2", "--lowering", "tuned"]);
            let got: Array2<f32> = ndarray_npy::read_npy(&out).unwrap();
            let v = checkpoint::load(path).unwrap().model;
            let want = common::logits(&v, &x.mapv(f64::from));
            let got: Vec<f64> = got.iter().map(|&g| g as f64).collect();
            assert!(common::rel_err(&got, &want.iter().copied().collect::<Vec<_>>()) < 1e-4, "{form} {}", path.display());
        }
        let p = checkpoint::load(&pruned).unwrap();
        let full = checkpoint::load(&ck).unwrap().model;
        assert!(prunebench::model::counts::params(&p.model.arch) * 2 < prunebench::model::counts::params(&full.arch), "{form}");
        let info = ok(&["info", s(&pruned)]);
        assert!(info.contains("groups (name=channels, * prunable): input=1,*") && info.contains("pruned groups") && info.contains("prunebench.prune.channels"), "{info}");
        let tuned = d.path().join(format!("{form}-ft.safetensors"));
        let t = ok(&["finetune", "--checkpoint", s(&pruned), "--limit", "64", "--steps", "2", "--batch", "32", "--eval-limit", "32", "--lowering", "xla", "--out", s(&tuned)]);
        assert!(t.contains("done after 2 steps"), "{t}");
        assert_eq!(checkpoint::load(&tuned).unwrap().model.arch, p.model.arch);
    }
}

#[test]
fn bad_input_gives_one_clear_line() {
    let d = tempfile::tempdir().unwrap();
    let ck = d.path().join("m.safetensors");
    ok(&["init", "--width", "0.0625", "--out", s(&ck)]);
    let x = d.path().join("x.npy");
    let missing = d.path().join("nope.safetensors");
    let out = d.path().join("o.npy");

    fails(&["predict", "--checkpoint", s(&missing), "--input", s(&x), "--out", s(&out)], "nope.safetensors");
    let corrupt = d.path().join("corrupt.safetensors");
    std::fs::write(&corrupt, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all").unwrap();
    fails(&["info", s(&corrupt)], "not a safetensors file");

    // Wrong spatial size, then wrong dtype.
    ndarray_npy::write_npy(&x, &Array4::<f32>::zeros((2, 28, 28, 3))).unwrap();
    fails(&["predict", "--checkpoint", s(&ck), "--input", s(&x), "--out", s(&out), "--device", "cpu"], "[N, 32, 32, 3]");
    ndarray_npy::write_npy(&x, &Array4::<f64>::zeros((2, 32, 32, 3))).unwrap();
    fails(&["predict", "--checkpoint", s(&ck), "--input", s(&x), "--out", s(&out), "--device", "cpu"], "float32");
    assert!(!out.exists(), "nothing written on error");

    fails(&["devices", "--device", "fpga"], "fpga");
    fails(&["devices", "--plugin", "/no/such/plugin.so"], "/no/such/plugin.so");
    fails(&["init", "--width", "0", "--out", s(&out)], "width");
    fails(&["init", "--input-size", "28x28", "--out", s(&out)], "28x28");
    fails(&["init", "--model", "resnet20-cifar", "--hidden", "8", "--out", s(&out)], "one dense layer after its global average pool");
    fails(&["init", "--model", "resnet34", "--out", s(&out)], "mobilenetv2-imagenet");
    fails(&["predict", "--checkpoint", s(&ck), "--input", s(&x), "--out", s(&out), "--dtype", "f16"], "f16");
}

/// Starts `prunebench args`, waits for a `step ` progress line on stderr, sends `signal`,
/// and returns the exit code and all of stderr.
fn interrupt_after_first_steps(args: &[&str], signal: libc::c_int) -> (Option<i32>, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_prunebench"))
        .args(args)
        .env("PRUNEBENCH_CACHE_DIR", std::env::temp_dir().join("prunebench-cli-test-cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run prunebench");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut text = String::new();
    loop {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "prunebench {args:?} ended before a step: {text}");
        text += &line;
        if line.starts_with("step ") {
            break;
        }
    }
    // SAFETY: kill(2) on the child we started and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
    err.read_to_string(&mut text).unwrap();
    (child.wait().unwrap().code(), text)
}

/// The reported fault: Ctrl-C during `train` or `finetune` saved a resumable checkpoint and
/// exited 0, so `finetune && eval` went on with a half-trained network. And a fine-tune at
/// lr 50 exited 0 with infinite BN statistics in its checkpoint.
#[test]
fn interrupted_training_exits_130_and_a_diverged_finetune_fails() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m.safetensors");
    let common = ["--limit", "256", "--eval-limit", "0", "--steps", "5000", "--batch", "8", "--lowering", "xla"];
    let train = [&["train", "--width", "0.0625", "--in-channels", "1", "--out", s(&m)][..], &common].concat();
    let (code, err) = interrupt_after_first_steps(&train, libc::SIGINT);
    assert_eq!(code, Some(130), "{err}");
    assert!(err.contains("interrupted at step") && err.contains("--resume") && !err.contains("error:"), "{err}");
    let ck = checkpoint::load(&m).unwrap();
    assert_eq!(ck.meta["prunebench.train.complete"], "false");
    let step: usize = ck.meta["prunebench.train.step"].parse().unwrap();
    assert!((250..5000).contains(&step), "saved at step {step}");

    let ft = dir.path().join("ft.safetensors");
    let finetune = [&["finetune", "--checkpoint", s(&m), "--lr", "0.01", "--out", s(&ft)][..], &common].concat();
    let (code, err) = interrupt_after_first_steps(&finetune, libc::SIGTERM);
    assert_eq!(code, Some(130), "{err}");
    assert!(checkpoint::load(&ft).is_ok(), "{err}");

    let bad = dir.path().join("bad.safetensors");
    let args = ["finetune", "--checkpoint", s(&m), "--lr", "50", "--steps", "20", "--out", s(&bad)];
    let o = pb(&[&args[..], &common[..4], &common[6..]].concat());
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("error: ") && err.contains("training diverged at step"), "{err}");
    assert!(!bad.exists(), "a diverged fine-tune wrote {}", bad.display());
}
