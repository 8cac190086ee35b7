//! Ranking pruned candidates: every measure on data with a known answer, the ranking metrics
//! against scipy's published values, the features and BN-recalibration programs on the CPU
//! plugin against a plain Rust reference, a small end-to-end study, and the errors bad input
//! gets.

mod common;

use std::collections::BTreeMap;

use ndarray::{Array2, Array4};
use prunebench::data::{epoch_order, Dataset};
use prunebench::hlo::DType;
use prunebench::lower::Lowering;
use prunebench::graph::{Op, Role};
use prunebench::model::{checkpoint, Arch, Network};
use prunebench::rank::features::{feature_dim, FeatureModel};
use prunebench::rank::measures::{leep, nleep};
use prunebench::rank::metrics::{kendall_tau_b, pearson, weighted_tau, weighted_tau_by_x, Quality};
use prunebench::rank::recal::{recalibrate, BnStats, RECAL_SEED};
use prunebench::rank::study::{self, RankConfig};
use prunebench::rank::{self, Probe};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

// ---- ranking metrics against scipy ------------------------------------------------------

/// The example of scipy.stats.kendalltau's and weightedtau's documentation.
const X: [f64; 5] = [12.0, 2.0, 1.0, 12.0, 2.0];
const Y: [f64; 5] = [1.0, 4.0, 7.0, 1.0, 0.0];

#[test]
fn kendall_tau_b_matches_scipy() {
    // scipy.stats.kendalltau(x, y).statistic
    assert!(close(kendall_tau_b(&X, &Y), -0.47140452079103173, 1e-14), "{}", kendall_tau_b(&X, &Y));
}

#[test]
#[allow(clippy::excessive_precision)] // the values exactly as scipy prints them
fn weighted_tau_matches_scipy() {
    // scipy.stats.weightedtau(x, y): rank=True, additive hyperbolic weights.
    assert!(close(weighted_tau(&X, &Y, true), -0.56694968153682723, 1e-14), "{}", weighted_tau(&X, &Y, true));
    // weightedtau(x, y, additive=False)
    assert!(close(weighted_tau(&X, &Y, false), -0.62205716951801038, 1e-14), "{}", weighted_tau(&X, &Y, false));
    // weightedtau(x, y, rank=None): ranked by x alone (what the quality table reports).
    assert!(close(weighted_tau_by_x(&X, &Y, true), -0.4157652301037516, 1e-14), "{}", weighted_tau_by_x(&X, &Y, true));
    // weightedtau(y, x, rank=None)
    assert!(close(weighted_tau_by_x(&Y, &X, true), -0.7181341329699028, 1e-14), "{}", weighted_tau_by_x(&Y, &X, true));
}

#[test]
fn pearson_matches_scipy() {
    // scipy.stats.pearsonr's documentation example.
    let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0];
    let y = [10.0, 9.0, 2.5, 6.0, 4.0, 3.0, 2.0];
    assert!(close(pearson(&x, &y), -0.828503883588428, 1e-13), "{}", pearson(&x, &y));
}

#[test]
fn quality_row_of_a_perfect_and_a_reversed_measure() {
    let truth = [0.91, 0.88, 0.93, 0.85, 0.90];
    let good = Quality::compute("good", &truth, &truth, 1.0, f64::NAN);
    assert_eq!((good.kendall_tau, good.weighted_tau, good.recall_at_1, good.rel_at_1), (1.0, 1.0, 1.0, 1.0));
    let rev: Vec<f64> = truth.iter().map(|v| -v).collect();
    let bad = Quality::compute("bad", &rev, &truth, 1.0, f64::NAN);
    assert!(close(bad.kendall_tau, -1.0, 1e-12) && bad.recall_at_3 == 0.0);
    assert!(close(bad.rel_at_3, 0.90 / 0.93, 1e-12), "{}", bad.rel_at_3);
}

// ---- measures with known answers -----------------------------------------------------------

#[test]
fn leep_matches_the_hand_computed_value() {
    // theta rows and labels; P(y, z) = [[.375, .125], [.125, .375]], P(z) = [.5, .5],
    // P(y|z) = [[.75, .25], [.25, .75]]; expected predictions .7, .55, .65, .6.
    let theta = ndarray::array![[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.3, 0.7]];
    let want = (0.7f64.ln() + 0.55f64.ln() + 0.65f64.ln() + 0.6f64.ln()) / 4.0;
    let got = leep(theta.view(), &[0, 0, 1, 1], 2);
    assert!(close(got, want, 1e-12), "{got} vs {want}");
    // The measure applies softmax to logits first: logits ln(theta) give the same theta.
    let p = Probe::new(Array2::zeros((4, 1)), theta.mapv(f64::ln), vec![0, 0, 1, 1], 2).unwrap();
    let via = rank::find("leep").unwrap().score(&p).unwrap();
    assert!(close(via, want, 1e-12), "{via} vs {want}");
}

#[test]
fn nleep_matches_the_hand_computed_value() {
    // 2 classes -> 10 mixture components; 10 tight, far-apart clusters of 4 points on a line,
    // so every posterior is one-hot on its cluster and P(y | z) is the label fraction of the
    // cluster. Clusters 0 and 1 hold 3 + 1 labels, the others are pure:
    // NLEEP = 2 * (3 ln .75 + ln .25) / 40.
    let mut feats = Array2::<f64>::zeros((40, 2));
    let mut labels = Vec::new();
    for c in 0..10 {
        for j in 0..4 {
            let i = c * 4 + j;
            feats[[i, 0]] = 100.0 * c as f64 + 0.01 * j as f64;
            feats[[i, 1]] = 0.01 * ((i * 7) % 5) as f64;
            labels.push(match (c, j) {
                (0 | 1, 3) => 1 - c % 2,
                (0 | 1, _) => c % 2,
                _ => c % 2,
            });
        }
    }
    let want = 2.0 * (3.0 * 0.75f64.ln() + 0.25f64.ln()) / 40.0;
    let got = nleep(feats.view(), &labels, 2, 7);
    assert!(close(got, want, 1e-6), "{got} vs {want}");
    // Reproducible run to run.
    assert_eq!(got, nleep(feats.view(), &labels, 2, 7));
}

/// `n` samples of `classes` classes in `d` dims: class `c` shifted by `sep` along dim `c`,
/// plus unit Gaussian noise; returns features and labels.
fn blobs(n: usize, d: usize, classes: usize, sep: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let nd = Normal::new(0.0, 1.0).unwrap();
    let labels: Vec<usize> = (0..n).map(|i| i % classes).collect();
    let f = Array2::from_shape_fn((n, d), |(i, j)| nd.sample(&mut rng) + if j == labels[i] { sep } else { 0.0 });
    (f, labels)
}

fn shuffled(labels: &[usize]) -> Vec<usize> {
    epoch_order(labels.len(), 99, 0).into_iter().map(|i| labels[i]).collect()
}

#[test]
fn separable_features_beat_shuffled_labels() {
    let (f, labels) = blobs(240, 12, 3, 5.0, 1);
    let sep = Probe::new(f.clone(), Array2::zeros((240, 3)), labels.clone(), 3).unwrap();
    let shuf = Probe::new(f, Array2::zeros((240, 3)), shuffled(&labels), 3).unwrap();
    for name in ["logme", "linear-probe", "knn", "nleep"] {
        let m = rank::find(name).unwrap();
        let (a, b) = (m.score(&sep).unwrap(), m.score(&shuf).unwrap());
        assert!(a > b, "{name}: separable {a} <= shuffled {b}");
        assert_eq!(a, m.score(&sep).unwrap(), "{name} is not reproducible");
        eprintln!("{name}: separable {a:.4}, shuffled {b:.4}");
    }
    let lp = rank::find("linear-probe").unwrap();
    assert!(lp.score(&sep).unwrap() > 0.95 && lp.score(&shuf).unwrap() < 0.6);
    let knn = rank::find("knn").unwrap();
    assert!(knn.score(&sep).unwrap() > 0.9 && knn.score(&shuf).unwrap() < 0.6);
}

#[test]
fn logme_prefers_the_more_separable_features() {
    let (weak, l) = blobs(300, 10, 5, 1.0, 3);
    let (strong, l2) = blobs(300, 10, 5, 4.0, 3);
    assert_eq!(l, l2);
    let (a, b) = (rank::measures::logme(strong.view(), &l, 5), rank::measures::logme(weak.view(), &l, 5));
    assert!(a > b, "{a} <= {b}");
}

#[test]
fn accuracy_counts_argmax_hits() {
    let logits = ndarray::array![[2.0, 1.0], [0.0, 3.0], [1.0, 0.5], [0.2, 0.1]];
    let p = Probe::new(Array2::zeros((4, 1)), logits, vec![0, 1, 1, 1], 2).unwrap();
    assert_eq!(rank::find("accuracy").unwrap().score(&p).unwrap(), 0.5);
    assert_eq!(rank::find("accuracy-recal").unwrap().score(&p).unwrap(), 0.5);
}

// ---- programs on the CPU plugin -----------------------------------------------------------

fn tiny(hidden: Vec<usize>, seed: u64) -> Network {
    let mut v = Network::init(&Arch::cifar(0.0625, 1, 10, hidden).unwrap(), seed);
    v.randomize_bn(seed + 1);
    v
}

fn plan(arch: &Arch) -> Vec<Lowering> {
    prunebench::train::default_plan(arch)
}

fn dataset(n: usize, seed: u64) -> Dataset {
    let x = common::images(n, 32, 32, 1, seed);
    let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
    Dataset::new("synthetic", x.into_raw_vec_and_offset().0, labels, (32, 32), 1, 10).unwrap()
}

#[test]
fn features_program_returns_logits_and_the_penultimate_layer() {
    let s = common::cpu();
    for hidden in [vec![], vec![8]] {
        let v = tiny(hidden, 11);
        let data = dataset(5, 3);
        let fm = FeatureModel::new(s, &v, 2, DType::F64, &plan(&v.arch)).unwrap();
        let p = fm.probe(&data).unwrap();
        assert_eq!(p.features.dim(), (5, feature_dim(&v.arch)));
        let x = Array4::from_shape_vec((5, 32, 32, 1), data.images.iter().map(|&t| t as f64).collect()).unwrap();
        let want = common::logits(&v, &x);
        let err = common::rel_err(p.logits.as_slice().unwrap(), want.as_slice().unwrap());
        assert!(err < 1e-5, "logits vs reference: {err}");
        // The last dense layer applied to the features gives the logits.
        let j = v.arch.hidden.len();
        let w: ndarray::Array2<f64> = v.tensor(&format!("classifier.{j}.weight")).unwrap().mapv(f64::from).into_dimensionality().unwrap();
        let b: ndarray::Array1<f64> = v.tensor(&format!("classifier.{j}.bias")).unwrap().mapv(f64::from).into_dimensionality().unwrap();
        let again = p.features.dot(&w) + &b;
        let err = common::rel_err(again.as_slice().unwrap(), p.logits.as_slice().unwrap());
        assert!(err < 1e-5, "features -> logits: {err}");
    }
}

/// Per batch norm (mean, biased variance) of its input with every BN normalising by the
/// current batch's statistics: the f64 reference of the statistics program.
fn reference_batch_stats(v: &Network, x: &Array4<f64>) -> Vec<(Vec<f64>, Vec<f64>)> {
    common::batch_stats(v, x).1
}

#[test]
fn bn_recalibration_reproduces_the_reference_batch_statistics() {
    let s = common::cpu();
    let v = tiny(vec![], 21);
    let data = dataset(4, 5);
    let x = |idx: &[usize]| {
        let d = data.select(idx);
        Array4::from_shape_vec((idx.len(), 32, 32, 1), d.images.iter().map(|&t| t as f64).collect()).unwrap()
    };
    // One batch through the statistics program.
    let st = BnStats::new(s, &v, 2, DType::F64, &plan(&v.arch)).unwrap();
    let got = st.run(&data.select(&[0, 1]).images).unwrap();
    let want = reference_batch_stats(&v, &x(&[0, 1]));
    for (i, ((gm, gv), (wm, wv))) in got.iter().zip(&want).enumerate() {
        assert!(common::rel_err(gm, wm) < 1e-9 && common::rel_err(gv, wv) < 1e-9, "conv {i}");
    }
    // Two batches: running stats = mean of batch means and of unbiased batch variances.
    let (r, info) = recalibrate(s, &v, &data, 2, 2, DType::F64, &plan(&v.arch)).unwrap();
    assert_eq!(info.batches, 2);
    let order = epoch_order(4, RECAL_SEED, 0);
    let b0 = reference_batch_stats(&v, &x(&order[0..2]));
    let b1 = reference_batch_stats(&v, &x(&order[2..4]));
    let bns: Vec<_> = r.graph.nodes().iter().filter(|n| matches!(n.op, Op::BatchNorm)).collect();
    assert_eq!(bns.len(), 13);
    for (i, bn) in bns.iter().enumerate() {
        let d = &r.graph.node(bn.inputs[0]).dims;
        let m = (2 * d[0] * d[1]) as f64;
        let t = |net: &Network, role: Role| net.tensors[net.graph.param_index(bn.id, role).unwrap()].clone();
        let want_m: Vec<f64> = b0[i].0.iter().zip(&b1[i].0).map(|(a, b)| (a + b) / 2.0).collect();
        let want_v: Vec<f64> = b0[i].1.iter().zip(&b1[i].1).map(|(a, b)| (a + b) / 2.0 * m / (m - 1.0)).collect();
        let got_m: Vec<f64> = t(&r, Role::RunningMean).iter().map(|&t| t as f64).collect();
        let got_v: Vec<f64> = t(&r, Role::RunningVar).iter().map(|&t| t as f64).collect();
        assert!(common::rel_err(&got_m, &want_m) < 1e-5, "bn {i} mean");
        assert!(common::rel_err(&got_v, &want_v) < 1e-5, "bn {i} var");
        // Affine parameters are untouched.
        assert_eq!(t(&r, Role::Gamma), t(&v, Role::Gamma));
    }
}

#[test]
fn a_small_study_end_to_end() {
    let s = common::cpu();
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for k in 0..3 {
        let v = tiny(vec![], 30 + k);
        let p = dir.path().join(format!("cand{k}.safetensors"));
        checkpoint::save(&p, &v, &BTreeMap::new()).unwrap();
        paths.push(p);
    }
    let found = study::find_candidates(&format!("{}/cand*.safetensors", dir.path().display())).unwrap();
    assert_eq!(found, paths);
    assert_eq!(study::find_candidates(&dir.path().display().to_string()).unwrap(), paths);
    let cands = study::load_candidates(&paths).unwrap();
    let probe = dataset(30, 8);
    let train = dataset(8, 9);
    study::check_dataset(&cands, &probe).unwrap();
    let cfg = RankConfig { measures: rank::parse_list("all").unwrap(), recalibrate_bn: 2, batch: 4, dtype: DType::F32 };
    cfg.validate().unwrap();
    let mut rows = Vec::new();
    for c in &cands {
        let (r, info) = study::score_candidate(s, c, &probe, &train, &cfg, &plan(&c.model.arch)).unwrap();
        assert_eq!(info.unwrap().batches, 2);
        assert_eq!(r.len(), rank::measures().len());
        assert!(r.iter().all(|row| row.score.is_finite() && row.seconds > 0.0), "{r:?}");
        rows.extend(r);
    }
    let csv = dir.path().join("truth.csv");
    std::fs::write(&csv, "checkpoint,top1_after,finetune_seconds\ncand0.safetensors,0.9,10\ncand1.safetensors,0.8,12\ncand2.safetensors,0.85,11\n").unwrap();
    let truth = study::match_truth(&cands, &study::read_truth(&csv).unwrap());
    assert!(truth.iter().all(Option::is_some));
    let q = study::quality(&cfg.measures, &cands, &truth, &rows).unwrap();
    assert_eq!(q.len(), cfg.measures.len());
    assert!(q.iter().all(|r| r.candidates == 3 && r.finetune_seconds == 33.0));
}

// ---- bad input ------------------------------------------------------------------------------

#[test]
fn bad_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let one = dir.path().join("only.safetensors");
    checkpoint::save(&one, &tiny(vec![], 1), &BTreeMap::new()).unwrap();
    let e = study::load_candidates(std::slice::from_ref(&one)).unwrap_err().to_string();
    assert!(e.contains("at least 2 candidate"), "{e}");

    let other = dir.path().join("other.safetensors");
    let v3 = Network::init(&Arch::cifar(0.0625, 1, 3, vec![]).unwrap(), 2);
    checkpoint::save(&other, &v3, &BTreeMap::new()).unwrap();
    let e = study::load_candidates(&[one.clone(), other]).unwrap_err().to_string();
    assert!(e.contains("10 classes") && e.contains("3 classes"), "{e}");

    let two = dir.path().join("two.safetensors");
    checkpoint::save(&two, &tiny(vec![], 2), &BTreeMap::new()).unwrap();
    let cands = study::load_candidates(&[one, two]).unwrap();
    let x = vec![0.0f32; 4 * 32 * 32];
    let three = Dataset::new("three-classes", x, vec![0, 1, 2, 0], (32, 32), 1, 3).unwrap();
    let e = study::check_dataset(&cands, &three).unwrap_err().to_string();
    assert!(e.contains("3 classes") && e.contains("10 outputs"), "{e}");
    let empty = Dataset::new("empty", vec![], vec![], (32, 32), 1, 10).unwrap();
    let e = study::check_dataset(&cands, &empty).unwrap_err().to_string();
    assert!(e.contains("0 images"), "{e}");
    let e = Probe::new(Array2::zeros((0, 3)), Array2::zeros((0, 10)), vec![], 10).unwrap_err().to_string();
    assert!(e.contains("probe set"), "{e}");

    let e = rank::parse_list("nleep,bogus").unwrap_err().to_string();
    assert!(e.contains("bogus") && e.contains("logme"), "{e}");
    let cfg = RankConfig { measures: rank::parse_list("accuracy-recal").unwrap(), recalibrate_bn: 0, batch: 4, dtype: DType::F32 };
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("--recalibrate-bn"), "{e}");
    let e = study::find_candidates(&dir.path().join("nope").display().to_string()).unwrap_err().to_string();
    assert!(e.contains("no such directory"), "{e}");
}
