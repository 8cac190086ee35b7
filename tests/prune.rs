//! Pruning end to end: the physically pruned network computes exactly what the original
//! computes with the removed channels' outputs zeroed (plain Rust reference and compiled on
//! the CPU plugin, against the masked control), counts follow the channel list, options are
//! honoured, bad input is a clear error, the data criteria's statistics program agrees with
//! the reference, and the CLI writes nothing when it fails.

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use ndarray::{s, Array4};
use prunebench::hlo::DType;
use prunebench::lower::Lowering;
use prunebench::graph::groups::groups;
use prunebench::graph::reference::{self, BnMode};
use prunebench::graph::Op;
use prunebench::model::{checkpoint, counts, Arch, Network};
use prunebench::prune::{self, stats, Control, Plan, Schedule, ScoreContext};
use prunebench::runtime::CompiledModel;

fn net(arch: Arch, seed: u64) -> Network {
    let mut v = Network::init(&arch, seed);
    v.randomize_bn(seed + 1);
    v
}

fn cifar() -> Arch {
    Arch::cifar(0.0625, 3, 10, vec![]).unwrap()
}

/// The three heads: CIFAR 512->classes, CIFAR with a hidden layer, and a 2x2 flatten.
fn archs() -> Vec<Arch> {
    vec![
        cifar(),
        Arch::cifar(0.0625, 3, 10, vec![16]).unwrap(),
        Arch::imagenet(1.0 / 16.0, 3, 5, true).unwrap().with_input(64, 64).unwrap(),
    ]
}

/// Reference logits of `v` with every channel of pruned group `i` not in `keep[i]` zeroed
/// after every ReLU of the group (on a residual group: after each add's ReLU too).
fn zeroed_reference(v: &Network, x: &Array4<f64>, keep: &[Vec<usize>]) -> Vec<f64> {
    let gs = groups(&v.graph);
    let ids = prune::targets(&v.graph, &gs);
    let t = reference::to_f64(&v.tensors);
    let out = reference::forward_with(&v.graph, &t, &x.clone().into_dyn(), BnMode::Running, |id, act| {
        if !matches!(v.graph.node(id).op, Op::Relu | Op::Relu6) {
            return;
        }
        if let Some(i) = ids.iter().position(|&g| g == gs.of(id).id) {
            for j in (0..act.shape()[3]).filter(|j| !keep[i].contains(j)) {
                act.slice_mut(s![.., .., .., j]).fill(0.0);
            }
        }
    });
    out.last().unwrap().iter().copied().collect()
}

fn flat(a: ndarray::Array2<f64>) -> Vec<f64> {
    a.iter().copied().collect()
}

#[test]
fn pruned_equals_original_with_channels_zeroed() {
    let l1 = Plan::new("l1", Schedule::Uniform(0.5));
    let random = Plan { seed: 3, ..Plan::new("random", Schedule::Global(0.6)) };
    // (The plain reference takes seconds per image in a debug build: few images, few plans.)
    let cases = [(0, vec![l1.clone(), random.clone()]), (1, vec![l1]), (2, vec![random])];
    let archs = archs();
    for (t, plans) in cases {
        let v = net(archs[t].clone(), 20 + t as u64);
        let [h, w, c] = v.arch.input;
        let n = if h == 32 { 2 } else { 1 };
        let x32 = common::images(n, h, w, c, 7);
        let x = x32.mapv(f64::from);
        let lowering = vec![Lowering::Direct; 13];
        let logits = |m: &Network| -> Vec<f64> {
            let cm = CompiledModel::new(common::cpu(), m, n, DType::F32, &lowering).unwrap();
            cm.predict(x32.as_slice().unwrap(), n).unwrap().iter().map(|&a| a as f64).collect()
        };
        let full = logits(&v);
        for plan in plans {
            let keep = prune::keep_sets(&v, &plan, &ScoreContext::weights_only()).unwrap();
            let pruned = prune::surgery(&v, &keep).unwrap();
            let masked = prune::mask(&v, &keep).unwrap();
            let (a, b) = (&pruned.arch.channels, &v.arch.channels);
            assert!(a.iter().zip(b).all(|(a, b)| a <= b) && a.iter().sum::<usize>() < b.iter().sum(), "{a:?}");
            let what = format!("{} {} {}", v.arch.describe(), plan.criterion, plan.schedule);

            let want = zeroed_reference(&v, &x, &keep);
            let err = common::rel_err(&flat(common::logits(&pruned, &x)), &want);
            assert!(err < 1e-9, "{what}: pruned vs zeroed reference {err:e}");
            let err = common::rel_err(&flat(common::logits(&masked, &x)), &want);
            assert!(err < 1e-9, "{what}: masked vs zeroed reference {err:e}");

            let (lp, lm) = (logits(&pruned), logits(&masked));
            let err = common::rel_err(&lp, &lm);
            assert!(err < 1e-4, "{what}: compiled pruned vs compiled masked {err:e}");
            let err = common::rel_err(&lp, &want);
            assert!(err < 1e-4, "{what}: compiled pruned vs reference {err:e}");
            // The check has teeth: the unpruned network gives other logits.
            assert!(common::rel_err(&full, &lp) > 1e-3, "{what}: pruning changed nothing");
        }
    }
}

#[test]
fn ratio_zero_is_the_identity_and_counts_follow_channels() {
    let v = net(Arch::cifar(0.0625, 3, 10, vec![16]).unwrap(), 1);
    for s in [Schedule::Uniform(0.0), Schedule::Global(0.0), Schedule::Layers(vec![0.0; 13])] {
        let p = prune::prune(&v, &Plan::new("l2", s), &ScoreContext::weights_only()).unwrap();
        assert_eq!(p.model, v);
    }
    let p = prune::prune(&v, &Plan::new("l1", Schedule::Uniform(0.5)), &ScoreContext::weights_only()).unwrap();
    assert_eq!(p.model.arch.channels, v.arch.channels.iter().map(|&n| n - n / 2).collect::<Vec<_>>());
    // Params counted from the tensors themselves (running statistics are not parameters).
    let tensors: u64 = checkpoint::named_tensors(&p.model)
        .iter()
        .filter(|(n, _, _)| !n.contains("running_"))
        .map(|(_, s, _)| s.iter().product::<usize>() as u64)
        .sum();
    assert_eq!(counts::params(&p.model.arch), tensors);
    assert!(counts::macs(&p.model.arch) * 3 < counts::macs(&v.arch));
    let (cin, cout) = (p.model.arch.channels[4] as u64, p.model.arch.channels[5] as u64);
    let (h, w) = (8, 8); // conv 5 runs after two pools of the 32x32 input
    assert_eq!(counts::layers(&p.model.arch)[5].macs, (h * w) as u64 * 9 * cin * cout);
}

#[test]
fn round_to_floors_and_skip_are_honoured() {
    let v = net(Arch::cifar(0.125, 3, 10, vec![]).unwrap(), 2); // 8, 8, 16, ..., 64
    let plan = Plan { round_to: 4, min_channels: 3, skip: vec![0, 12], ..Plan::new("l1", Schedule::Uniform(0.9)) };
    let keep = prune::keep_sets(&v, &plan, &ScoreContext::weights_only()).unwrap();
    let k: Vec<usize> = keep.iter().map(|k| k.len()).collect();
    assert_eq!(k[0], 8);
    assert_eq!(k[12], 64);
    // 8 -> keep 1 -> floor 3 -> 4; 16 -> 2 -> 3 -> 4; 32 -> 4; 64 -> 7 -> 8
    assert_eq!(k[1..12], [4, 4, 4, 4, 4, 4, 8, 8, 8, 8, 8]);
    // Global with one layer whose BN scales are all 0 (they normalise to 0) never empties it.
    let mut v = v;
    v.tensor_mut("features.6.bn.gamma").unwrap().fill(0.0);
    let keep =
        prune::keep_sets(&v, &Plan::new("bn-scale", Schedule::Global(0.95)), &ScoreContext::weights_only()).unwrap();
    assert!(keep.iter().all(|k| !k.is_empty()));
    assert_eq!(keep[6].len(), 1);
    let plan = Plan { min_channels: 5, ..Plan::new("bn-scale", Schedule::Global(0.95)) };
    let keep = prune::keep_sets(&v, &plan, &ScoreContext::weights_only()).unwrap();
    assert!(keep.iter().all(|k| k.len() >= 5), "{:?}", keep.iter().map(|k| k.len()).collect::<Vec<_>>());
}

#[test]
fn bad_input_is_a_clear_error() {
    let v = net(cifar(), 3);
    let ctx = ScoreContext::weights_only();
    let err = |p: Plan| prune::prune(&v, &p, &ctx).unwrap_err().to_string();
    let e = err(Plan::new("l1", Schedule::Uniform(1.0)));
    assert!(e.contains("'1'") && e.contains("[0, 1)"), "{e}");
    let e = err(Plan::new("l1", Schedule::Global(-0.25)));
    assert!(e.contains("-0.25"), "{e}");
    let e = err(Plan::new("l1", Schedule::Layers(vec![0.5; 3])));
    assert!(e.contains("3 entries") && e.contains("13"), "{e}");
    let e = err(Plan::new("taylorish", Schedule::Uniform(0.5)));
    assert!(e.contains("taylorish") && e.contains("fpgm") && e.contains("bn-scale"), "{e}");
    let e = err(Plan::new("apoz", Schedule::Uniform(0.5)));
    assert!(e.contains("apoz") && e.contains("needs images"), "{e}");
    let e = err(Plan { round_to: 0, ..Plan::new("l1", Schedule::Uniform(0.5)) });
    assert!(e.contains("round_to"), "{e}");
    let e = err(Plan { skip: vec![13], ..Plan::new("l1", Schedule::Uniform(0.5)) });
    assert!(e.contains("13") && e.contains("0 to 12"), "{e}");
    let no_bn = net(Arch::imagenet(1.0 / 32.0, 3, 5, false).unwrap(), 1);
    let e = prune::prune(&no_bn, &Plan::new("bn-scale", Schedule::Uniform(0.5)), &ctx).unwrap_err().to_string();
    assert!(e.contains("no batch norm"), "{e}");
}

#[test]
fn statistics_program_matches_reference_and_data_criteria_find_dead_channels() {
    let mut v = net(cifar(), 4);
    // Conv 0 channel 2 is dead: BN maps it to -1 whatever the input, ReLU to 0.
    v.tensor_mut("features.0.bn.gamma").unwrap()[[2]] = 0.0;
    v.tensor_mut("features.0.bn.beta").unwrap()[[2]] = -1.0;
    let x = common::images(5, 32, 32, 3, 9);
    let ctx = ScoreContext::with_data(common::cpu(), x.as_slice().unwrap(), 5, 2);
    // Every image: batches of 2, 2 and 1 (two compiled sizes).
    let st = stats::collect(&v, &ctx, "test").unwrap();
    assert_stats_match_reference(&v, &x, &st);
    assert_eq!(st[0].zeros[2], st[0].positions);
    for name in ["apoz", "mean-activation"] {
        let mut r = vec![0.0; 13];
        r[0] = 0.25;
        let keep = prune::keep_sets(&v, &Plan::new(name, Schedule::Layers(r)), &ctx).unwrap();
        assert_eq!(keep[0], vec![0, 1, 3], "{name}");
    }
}

/// Asserts device statistics `st` are the f64 host reference's over every image of `x`.
fn assert_stats_match_reference(v: &Network, x: &ndarray::Array4<f32>, st: &[stats::ChannelStats]) {
    let mut sums: Vec<Vec<f64>> = vec![];
    let mut zeros: Vec<Vec<f64>> = vec![];
    let mut hw = vec![];
    let t = reference::to_f64(&v.tensors);
    reference::forward_with(&v.graph, &t, &x.mapv(f64::from).into_dyn(), BnMode::Running, |id, act| {
        if !matches!(v.graph.node(id).op, Op::Relu) {
            return;
        }
        let c = act.shape()[3];
        hw.push(act.shape()[1] * act.shape()[2]);
        sums.push((0..c).map(|j| act.slice(s![.., .., .., j]).sum()).collect());
        zeros.push((0..c).map(|j| act.slice(s![.., .., .., j]).iter().filter(|&&a| a == 0.0).count() as f64).collect());
    });
    assert_eq!(st.len(), 13);
    for i in 0..13 {
        assert_eq!(st[i].positions, (x.shape()[0] * hw[i]) as f64);
        let err = common::rel_err(&st[i].sum, &sums[i]);
        assert!(err < 1e-4, "conv {i} sums: {err:e}");
        let diff: f64 = st[i].zeros.iter().zip(&zeros[i]).map(|(a, b)| (a - b).abs()).sum();
        assert!(diff <= 0.001 * st[i].positions, "conv {i} zero counts differ by {diff}");
    }
}

#[test]
fn data_criteria_score_on_every_image_not_whole_batches() {
    // The reported fault: 40 images with --batch 32 were scored on the first 32 only.
    let v = net(cifar(), 4);
    let mut x = common::images(40, 32, 32, 3, 19);
    // 8 unusual images at the end.
    x.slice_mut(s![32.., .., .., ..]).mapv_inplace(|a| -4.0 * a + 1.5);
    let ctx = ScoreContext::with_data(common::cpu(), x.as_slice().unwrap(), 40, 32);
    let st = stats::collect(&v, &ctx, "test").unwrap();
    assert_stats_match_reference(&v, &x, &st);
    // The mean over 40 is not the mean over the first 32.
    let first = x.slice(s![..32, .., .., ..]).to_owned();
    let ctx32 = ScoreContext::with_data(common::cpu(), first.as_slice().unwrap(), 32, 32);
    let st32 = stats::collect(&v, &ctx32, "test").unwrap();
    let mean = |s: &stats::ChannelStats| s.sum.iter().map(|t| t / s.positions).collect::<Vec<_>>();
    assert!(common::rel_err(&mean(&st[5]), &mean(&st32[5])) > 1e-3);
    // The recorded count is every image.
    let p = prune::prune(&v, &Plan::new("mean-activation", Schedule::Uniform(0.5)), &ctx).unwrap();
    assert_eq!(p.meta["prunebench.prune.calibration_images"], "40");
    let p = prune::prune(&v, &Plan::new("l1", Schedule::Uniform(0.5)), &ctx).unwrap();
    assert!(!p.meta.contains_key("prunebench.prune.calibration_images"));
}

#[test]
fn metadata_records_how_it_was_made() {
    let v = net(cifar(), 5);
    let plan = Plan {
        round_to: 2,
        skip: vec![0],
        seed: 9,
        control: Control::Masked,
        ..Plan::new("fpgm", Schedule::Uniform(0.5))
    };
    let p = prune::prune(&v, &plan, &ScoreContext::weights_only()).unwrap().with_source("abc123");
    assert_eq!(p.model.arch, v.arch, "masked keeps shapes");
    let m = &p.meta;
    assert_eq!(m["prunebench.control"], "masked");
    assert_eq!(m["prunebench.prune.criterion"], "fpgm");
    assert_eq!(m["prunebench.prune.schedule"], "uniform");
    assert_eq!(m["prunebench.prune.ratio"], "0.5");
    assert_eq!(m["prunebench.prune.source_sha256"], "abc123");
    assert_eq!(m["prunebench.prune.skip"], "0");
    assert_eq!(m["prunebench.prune.seed"], "9");
    let want: Vec<String> = p.keep.iter().map(|k| k.len().to_string()).collect();
    assert_eq!(m["prunebench.prune.channels"], want.join(","));
}

fn cli(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prunebench")).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn cli_prunes_and_writes_nothing_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.safetensors");
    let v = net(cifar(), 6);
    let sha = checkpoint::save(&src, &v, &Default::default()).unwrap();
    let out = dir.path().join("out.safetensors");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let bad: &[&[&str]] = &[
        &["--method", "l1", "--ratio", "1.5"],
        &["--method", "nope", "--ratio", "0.5"],
        &["--method", "l1", "--schedule", "layers", "--ratios", "0.5,0.5"],
        &["--method", "apoz", "--ratio", "0.5"],
        &["--method", "l1"],
    ];
    for extra in bad {
        let mut args = vec!["prune", "--checkpoint", s, "--out", o];
        args.extend_from_slice(extra);
        let (ok, text) = cli(&args);
        assert!(!ok, "{extra:?} succeeded: {text}");
        assert_eq!(text.trim().lines().count(), 1, "{extra:?}: {text}");
        assert!(text.starts_with("error: "), "{text}");
        assert!(!out.exists(), "{extra:?} wrote {o}");
    }
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--skip", "0"]);
    assert!(ok, "{text}");
    assert!(text.contains("features.1 ") && text.contains("4 -> 2") && text.contains("reduction"), "{text}");
    let ck = checkpoint::load(&out).unwrap();
    assert_eq!(ck.model.arch.channels[..3], [4, 2, 4]);
    assert_eq!(ck.meta["prunebench.control"], "physical");
    assert_eq!(ck.meta["prunebench.prune.source_sha256"], sha);
    let keep = prune::keep_sets(
        &v,
        &Plan { skip: vec![0], ..Plan::new("l1", Schedule::Uniform(0.5)) },
        &ScoreContext::weights_only(),
    )
    .unwrap();
    assert_eq!(ck.model, prune::surgery(&v, &keep).unwrap());

    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--mask"]);
    assert!(ok, "{text}");
    let ck = checkpoint::load(&out).unwrap();
    assert_eq!(ck.model.arch, v.arch);
    assert_eq!(ck.meta["prunebench.control"], "masked");
    let zeroed: BTreeSet<usize> = (0..4).filter(|&j| ck.model.tensor("features.1.bias").unwrap()[[j]] == 0.0).collect();
    assert_eq!(zeroed.len(), 2);
}

/// `taylor` on a tiny single-channel VGG: finite, non-negative, deterministic scores; a
/// channel whose whole filter group (kernel slice, bias, BN gamma and beta) is zero scores
/// exactly 0 and goes first; without labels (or on the CLI without --dataset) it is a clear
/// error.
#[test]
fn taylor_scores_filter_groups_from_gradients() {
    use rand::{Rng, SeedableRng};
    let mut v = net(Arch::cifar(0.0625, 1, 10, vec![]).unwrap(), 40);
    v.tensor_mut("features.0.weight").unwrap().slice_mut(s![.., .., .., 1]).fill(0.0);
    for r in ["bias", "bn.gamma", "bn.beta"] {
        v.tensor_mut(&format!("features.0.{r}")).unwrap()[[1]] = 0.0;
    }
    let n = 6;
    let x = common::images(n, 32, 32, 1, 41);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    let labels: Vec<i32> = (0..n).map(|_| rng.random_range(0..10)).collect();
    let taylor = prune::find("taylor").unwrap();
    assert_eq!(taylor.needs(), prune::Needs::Gradients);
    // Two batches of 3.
    let ctx = ScoreContext::with_labelled_data(common::cpu(), x.as_slice().unwrap(), &labels, n, 3);
    let scores = taylor.scores(&v, &ctx).unwrap();
    assert_eq!(scores.len(), 13);
    for (i, s) in scores.iter().enumerate() {
        assert_eq!(s.len(), v.arch.channels[i]);
        assert!(s.iter().all(|t| t.is_finite() && *t >= 0.0), "conv {i}: {s:?}");
        assert!(s.iter().any(|&t| t > 0.0), "conv {i}: all zero {s:?}");
    }
    assert_eq!(scores[0][1], 0.0, "{:?}", scores[0]);
    assert!(scores[0].iter().enumerate().all(|(j, &t)| j == 1 || t > 0.0), "{:?}", scores[0]);
    assert_eq!(taylor.scores(&v, &ctx).unwrap(), scores, "not deterministic");
    let mut r = vec![0.0; 13];
    r[0] = 0.25;
    let keep = prune::keep_sets(&v, &Plan::new("taylor", Schedule::Layers(r)), &ctx).unwrap();
    assert_eq!(keep[0], vec![0, 2, 3]);
    // Batches of at most 4: every image, near-equal sizes, so two of 3, as above (before the
    // fix: one batch of 4, the last 2 images left out).
    let ctx4 = ScoreContext::with_labelled_data(common::cpu(), x.as_slice().unwrap(), &labels, n, 4);
    assert_eq!(taylor.scores(&v, &ctx4).unwrap(), scores);
    // Fewer images than a batch: one batch of all 6.
    let one = ScoreContext::with_labelled_data(common::cpu(), x.as_slice().unwrap(), &labels, n, 32);
    let s1 = taylor.scores(&v, &one).unwrap();
    assert_eq!(s1[0][1], 0.0);
    assert!(s1.iter().flatten().all(|t| t.is_finite() && *t >= 0.0));

    // Without labels: the clear error, from the criterion and from pruning.
    let unlabelled = ScoreContext::with_data(common::cpu(), x.as_slice().unwrap(), n, 3);
    for ctx in [unlabelled, ScoreContext::weights_only()] {
        let e = prune::prune(&v, &Plan::new("taylor", Schedule::Uniform(0.5)), &ctx).unwrap_err().to_string();
        assert!(e.contains("taylor") && e.contains("needs labelled images") && e.contains("--dataset"), "{e}");
    }
    let bad = [0, 10, 1, 2, 3, 4];
    let ctx = ScoreContext::with_labelled_data(common::cpu(), x.as_slice().unwrap(), &bad, n, 3);
    let e = taylor.scores(&v, &ctx).unwrap_err().to_string();
    assert!(e.contains("label") && e.contains("10"), "{e}");

    // CLI: taylor without --dataset fails in one line and writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.safetensors");
    checkpoint::save(&src, &v, &Default::default()).unwrap();
    let out = dir.path().join("out.safetensors");
    let (s, o) = (src.to_str().unwrap(), out.to_str().unwrap());
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "taylor", "--ratio", "0.5"]);
    assert!(!ok && text.trim().lines().count() == 1 && text.contains("--dataset"), "{text}");
    assert!(!out.exists());
}

/// `--schedule latency` on a synthetic table (no device): only group 0's conv costs time, one
/// second per kept channel; every other layer is flat. A target of the unpruned latency minus
/// half of group 0's cost is met by halving group 0 alone, every other group whole; the
/// checkpoint records target and prediction. Bad targets and a foreign table are refused.
#[test]
fn latency_schedule_on_a_synthetic_table() {
    let dir = tempfile::tempdir().unwrap();
    let (src, full, table, model) = synthetic_table(dir.path(), |k| k as f64);
    let n0 = full[0];
    let unpruned = model.predict(&full);
    let out = dir.path().join("out.safetensors");
    let (s, o, t) = (src.to_str().unwrap(), out.to_str().unwrap(), table.to_str().unwrap());
    let target = (unpruned - n0 as f64 / 2.0) / unpruned;
    let tf = format!("{target}");
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--schedule", "latency", "--table", t, "--target", &tf, "--refine", "0"]);
    assert!(ok, "{text}");
    let ck = checkpoint::load(&out).unwrap();
    let mut want = full.clone();
    want[0] = n0 / 2;
    assert_eq!(prune::group_channels(&ck.model), want, "{text}");
    let ms = |k: &str| ck.meta[k].parse::<f64>().unwrap();
    assert!((ms("prunebench.latency.predicted_ms") - (unpruned - n0 as f64 / 2.0) * 1e3).abs() < 1e-3);
    assert!(ms("prunebench.latency.predicted_ms") <= ms("prunebench.latency.target_ms") + 1e-6);
    // `latency` reads the prediction back in the table's setting (b1, xla): the variant's
    // fraction of the first network against the prediction and the target.
    let csv = dir.path().join("lat.csv");
    let (ok, text) = cli(&[
        "latency", "--checkpoint", s, "--checkpoint", o, "--batch", "1", "--lowering", "xla", "--warmup", "0", "--min-iters", "3",
        "--time-cap-s", "0.2", "--out", csv.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let mut r = csv::Reader::from_path(&csv).unwrap();
    let h = r.headers().unwrap().clone();
    let rows: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
    let col = |row: &csv::StringRecord, k: &str| row[h.iter().position(|c| c == k).unwrap()].to_string();
    assert!(col(&rows[0], "target_error").is_empty());
    let f = |k: &str| col(&rows[1], k).parse::<f64>().unwrap_or_else(|_| panic!("{k}: '{}'", col(&rows[1], k)));
    let measured = 1.0 / f("speedup_vs_first_model");
    assert!((f("target_fraction") - target).abs() < 1e-4 && f("predicted_fraction") <= target + 1e-4);
    assert!((f("target_error") - (measured / f("target_fraction") - 1.0)).abs() < 1e-3 * (1.0 + measured), "{text}");
    assert!((f("prediction_error") - (measured / f("predicted_fraction") - 1.0)).abs() < 1e-3 * (1.0 + measured), "{text}");
    // Refusals, each naming the fix.
    for (extra, says) in [
        (vec!["--target", "1.5"], "(0, 1]"),
        (vec!["--target", "0.5", "--target-ms", "3"], "not both"),
        (vec![], "needs --target"),
        (vec!["--target", "0.000001"], "raise the target"),
        (vec!["--target", "0.5", "--ratio", "0.5"], "drop --ratio"),
    ] {
        let mut args = vec!["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--schedule", "latency", "--table", t, "--refine", "0"];
        args.extend(extra);
        let (ok, text) = cli(&args);
        assert!(!ok && text.contains(says), "{args:?}: {text}");
    }
    let other = dir.path().join("o.safetensors");
    checkpoint::save(&other, &net(Arch::cifar(0.125, 3, 10, vec![]).unwrap(), 1), &Default::default()).unwrap();
    let (ok, text) = cli(&["prune", "--checkpoint", other.to_str().unwrap(), "--out", o, "--method", "l1", "--schedule", "latency", "--table", t, "--target", "0.5"]);
    assert!(!ok && text.contains("profile this network"), "{text}");
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--target", "0.5"]);
    assert!(!ok && text.contains("for --schedule latency"), "{text}");
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--refine", "0"]);
    assert!(!ok && text.contains("for --schedule latency"), "{text}");
    let lat = ["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--schedule", "latency", "--table", t];
    // Rounding would undo the schedule's counts; negative numbers get the tool's message.
    for (extra, says) in [
        (vec!["--target", "0.5", "--round-to", "8"], "drop --round-to"),
        (vec!["--target", "-0.5", "--refine", "0"], "invalid --target -0.5"),
        (vec!["--target-ms", "-1", "--refine", "0"], "invalid --target-ms -1"),
        (vec!["--target", "0.5", "--tolerance", "2"], "invalid --tolerance 2"),
        // Refining measures on this device: a table of another device is refused.
        (vec!["--target", "0.5"], "this device is"),
    ] {
        let mut args = lat.to_vec();
        args.extend(extra);
        let (ok, text) = cli(&args);
        assert!(!ok && text.contains(says), "{args:?}: {text}");
    }
    // A table of another architecture with the same group sizes is refused.
    let mut foreign = model.clone();
    foreign.network_desc = "vgg16-cifar 64x64x1 [...]".into();
    let ft = dir.path().join("foreign.json");
    std::fs::write(&ft, serde_json::to_string(&foreign).unwrap()).unwrap();
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--schedule", "latency", "--table", ft.to_str().unwrap(), "--target", "0.5", "--refine", "0"]);
    assert!(!ok && text.contains("measured on vgg16-cifar 64x64x1") && text.contains("profile this network"), "{text}");
    // round_to auto needs a table, and the table needs latency or auto.
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--round-to", "auto"]);
    assert!(!ok && text.contains("give --table"), "{text}");
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--table", t]);
    assert!(!ok && text.contains("--round-to auto"), "{text}");
    let (ok, text) = cli(&["prune", "--checkpoint", s, "--out", o, "--method", "l1", "--ratio", "0.5", "--round-to", "eight"]);
    assert!(!ok && text.contains("or auto"), "{text}");
}

/// A seeded VGG-16 checkpoint in `dir` and a synthetic latency table for it (setting b1 xla):
/// one conv per pruned group, group 0's seconds at `k` kept channels `group0(k)`, every other
/// group flat at 1 s. Returns the checkpoint, the group sizes, the table's path and the table.
fn synthetic_table(dir: &std::path::Path, group0: impl Fn(usize) -> f64) -> (std::path::PathBuf, Vec<usize>, std::path::PathBuf, prunebench::budget::Model) {
    use prunebench::budget::{Curve, LayerTable, Model};
    let v = net(cifar(), 4);
    let full = prune::group_channels(&v);
    let src = dir.join("src.safetensors");
    checkpoint::save(&src, &v, &Default::default()).unwrap();
    let layers: Vec<LayerTable> = (0..full.len())
        .map(|g| {
            let pts: Vec<(usize, f64)> = (1..=full[g]).map(|k| (k, if g == 0 { group0(k) } else { 1.0 })).collect();
            LayerTable { node: format!("c{g}"), out_group: Some(g), in_group: None, depthwise: false, cin: 3, cout: full[g], out: Curve::new(pts).unwrap(), inp: None }
        })
        .collect();
    let model = Model { layers, groups: full.clone(), rest: 0.0, scale: 1.0, setting: "b1 xla f32 on test".into(), network_desc: String::new(), network: vec![] };
    let table = dir.join("t.json");
    std::fs::write(&table, serde_json::to_string(&model).unwrap()).unwrap();
    (src, full, table, model)
}

/// `--round-to auto` on a synthetic staircase: group 0 steps every 4 channels, the others are
/// flat; a uniform count inside a step goes to the step's top.
#[test]
fn round_to_auto_snaps_on_the_staircase() {
    let dir = tempfile::tempdir().unwrap();
    let (src, full, table, _) = synthetic_table(dir.path(), |k| k.div_ceil(4) as f64);
    // A ratio whose uniform count for group 0 is in the middle of a step (k mod 4 = 2 or 3).
    let n0 = full[0];
    let r = (1..n0).map(|j| j as f64 / n0 as f64).find(|r| (n0 - (r * n0 as f64).floor() as usize) % 4 >= 2).unwrap();
    let uniform_k0 = n0 - (r * n0 as f64).floor() as usize;
    let out = dir.path().join("out.safetensors");
    let rs = format!("{r}");
    let (ok, text) = cli(&[
        "prune", "--checkpoint", src.to_str().unwrap(), "--out", out.to_str().unwrap(), "--method", "l1", "--ratio", &rs,
        "--round-to", "auto", "--table", table.to_str().unwrap(),
    ]);
    assert!(ok, "{text}");
    let kept = prune::group_channels(&checkpoint::load(&out).unwrap().model);
    assert_eq!(kept[0], uniform_k0.div_ceil(4) * 4, "{text}");
    // Flat groups: one plateau from 1 to full, so every count goes up to full.
    assert!(kept[1..].iter().zip(&full[1..]).all(|(k, n)| k == n), "{kept:?}");
}

/// The refinement's meter: a network of given counts measured against the unpruned one, side
/// by side (only that it gives a positive fraction: no timing is judged in tests).
#[test]
fn meter_measures_a_fraction_of_the_unpruned() {
    use prunebench::budget::profile::Meter;
    let v = net(cifar(), 4);
    let full = prune::group_channels(&v);
    let session = prunebench::runtime::Session::open(prunebench::pjrt::DeviceChoice::Cpu, None).unwrap();
    let mut tuner = prunebench::tune::Tuner::new(&session, None).unwrap();
    let mut m = Meter::new(&v, &session, &mut tuner, 1, prunebench::hlo::DType::F32, prunebench::lower::Mode::Xla).unwrap();
    m.time_cap_s = 0.2;
    let half: Vec<usize> = full.iter().map(|&n| (n / 2).max(1)).collect();
    for k in [&full, &half] {
        let f = m.fraction(k).unwrap();
        assert!(f.is_finite() && f > 0.0, "{k:?}: {f}");
    }
}

/// A table in another dtype: profiled in bf16 its setting says so, `parse_setting` reads it
/// back, and the meter measures in it (no figure judged).
#[test]
fn profile_and_meter_in_bf16() {
    use prunebench::budget::profile::{parse_setting, profile, Meter, Settings};
    use prunebench::hlo::DType;
    use prunebench::lower::Mode;
    let v = net(cifar(), 4);
    let session = prunebench::runtime::Session::open(prunebench::pjrt::DeviceChoice::Cpu, None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut tuner = prunebench::tune::Tuner::new(&session, Some(dir.path().join("cache.json"))).unwrap();
    tuner.min_seconds = 0.002;
    let s = Settings { batch: 1, lowering: Mode::Xla, dtype: DType::BF16, grid: 1, calibrate: vec![1.0, 0.5], in_network: None };
    let p = profile(&v, &session, &mut tuner, &s).unwrap();
    assert!(p.model.setting.starts_with("b1 xla bf16 on "), "{}", p.model.setting);
    assert_eq!(parse_setting(&p.model.setting), Some((1, Mode::Xla, DType::BF16)));
    assert!(p.model.rest >= 0.0 && p.model.scale > 0.0);
    p.model.check_for(&v.arch).unwrap();
    let mut m = Meter::new(&v, &session, &mut tuner, 1, DType::BF16, Mode::Xla).unwrap();
    m.time_cap_s = 0.2;
    let half: Vec<usize> = p.model.groups.iter().map(|&n| (n / 2).max(1)).collect();
    assert!(m.fraction(&half).unwrap() > 0.0);
}
