//! `rank`: score pruned candidates with transferability measures instead of fine-tuning them,
//! and, given the fine-tuned truth, say how well each measure predicted it.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::device::DeviceArgs;
use crate::data::{Source, Split};
use crate::hlo::DType;
use crate::lower::Mode;
use crate::rank::metrics::{self, Quality};
use crate::rank::study::{self, RankConfig};

#[derive(Args, Debug)]
pub struct RankArgs {
    /// Candidate checkpoints: a directory (its *.safetensors) or a glob such as
    /// 'runs/pruned/*-l1-*.safetensors' (quote it). At least 2.
    #[arg(long, value_name = "DIR_OR_GLOB")]
    pub candidates: String,
    /// Dataset: fashion-mnist (default), cifar10:DIR, cifar100:DIR, folder:DIR.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: Source,
    /// Measures, comma separated, or 'all': nleep, leep, logme, linear-probe, knn, accuracy,
    /// accuracy-recal.
    #[arg(long, default_value = "all")]
    pub measures: String,
    /// Re-estimate every BN's statistics on N training batches before scoring (PyTorch
    /// train mode, cumulative average); 0 = score the checkpoints as saved.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub recalibrate_bn: usize,
    /// Labelled probe images the measures score on (a seeded sample of --probe-split).
    #[arg(long, default_value_t = 2000, value_name = "N")]
    pub probe_size: usize,
    /// Split the probe images come from.
    #[arg(long, default_value = "train")]
    pub probe_split: Split,
    /// Seed of the probe sample.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Truth CSV: columns 'checkpoint' (path or file name) and 'top1_after' (accuracy after
    /// fine-tuning), optional 'finetune_seconds'. Enables the ranking-quality table.
    #[arg(long, value_name = "CSV")]
    pub truth: Option<PathBuf>,
    /// Output CSV, one row per candidate x measure; the quality table goes to
    /// RANK.quality.csv next to it.
    #[arg(long, value_name = "RANK.csv")]
    pub out: PathBuf,
    /// Images per compiled batch.
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Compute dtype: f32, bf16 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// Conv lowering: xla, im2col, winograd or tuned; default: im2col on maps of 2x2 or smaller,
    /// plain convolutions elsewhere.
    #[arg(long)]
    pub lowering: Option<Mode>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn fmt(v: f64) -> String {
    if v.is_nan() { "-".into() } else { format!("{v:.3}") }
}

fn print_table(q: &[Quality]) {
    println!(
        "{:<15} {:>7} {:>7} {:>8} {:>5} {:>5} {:>6} {:>6} {:>9}",
        "measure", "tau", "w-tau", "pearson", "R@1", "R@3", "rel@1", "rel@3", "score s"
    );
    for r in q {
        println!(
            "{:<15} {:>7} {:>7} {:>8} {:>5} {:>5} {:>6} {:>6} {:>9.1}",
            r.measure,
            fmt(r.kendall_tau),
            fmt(r.weighted_tau),
            fmt(r.pearson),
            fmt(r.recall_at_1),
            fmt(r.recall_at_3),
            fmt(r.rel_at_1),
            fmt(r.rel_at_3),
            r.score_seconds
        );
    }
}

pub fn rank(a: &RankArgs) -> anyhow::Result<()> {
    let cfg = RankConfig {
        measures: crate::rank::parse_list(&a.measures)?,
        recalibrate_bn: a.recalibrate_bn,
        batch: a.batch,
        dtype: a.dtype,
    };
    cfg.validate()?;
    let paths = study::find_candidates(&a.candidates)?;
    let cands = study::load_candidates(&paths)?;
    let arch0 = cands[0].model.arch.clone();
    let split_data = a.dataset.load_normalized(a.probe_split, arch0.input, None).context("loading the probe set")?;
    let probe = split_data.sample(a.probe_size, a.seed);
    study::check_dataset(&cands, &probe)?;
    let train = if cfg.recalibrate_bn > 0 && a.probe_split != Split::Train {
        a.dataset.load_normalized(Split::Train, arch0.input, None).context("loading the recalibration batches")?
    } else {
        split_data
    };
    let truth = match &a.truth {
        Some(p) => Some(study::match_truth(&cands, &study::read_truth(p)?)),
        None => None,
    };
    let session = a.device.open()?;
    eprintln!(
        "ranking {} candidates on {} ({} {} probe images, BN recalibration {}) on {}",
        cands.len(),
        a.dataset,
        probe.n,
        a.probe_split,
        if cfg.recalibrate_bn > 0 { format!("{} x {} images", cfg.recalibrate_bn, cfg.batch) } else { "off".into() },
        session.describe()
    );
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut w = csv::Writer::from_path(&a.out).with_context(|| format!("writing {}", a.out.display()))?;
    let mut rows = Vec::new();
    for (i, c) in cands.iter().enumerate() {
        let arch = &c.model.arch;
        let plan = match a.lowering {
            None => crate::train::default_plan(arch),
            Some(mode) => super::model_cmds::resolve_plan(&session, arch, a.batch, a.dtype, mode)?,
        };
        let (r, _) = study::score_candidate(&session, c, &probe, &train, &cfg, &plan)
            .with_context(|| format!("scoring {}", c.path.display()))?;
        let line: Vec<String> = r.iter().map(|s| format!("{} {:.4}", s.measure, s.score)).collect();
        eprintln!("[{}/{}] {}: {}", i + 1, cands.len(), c.path.display(), line.join("  "));
        for s in &r {
            w.serialize(s)?;
        }
        w.flush()?;
        rows.extend(r);
    }
    drop(w);
    println!("wrote {} ({} rows)", a.out.display(), rows.len());
    let Some(truth) = truth else {
        println!("no --truth given: scores only (give a truth CSV to rate the measures)");
        return Ok(());
    };
    let q = study::quality(&cfg.measures, &cands, &truth, &rows)?;
    print_table(&q);
    let ft = q.first().map_or(f64::NAN, |r| r.finetune_seconds);
    if !ft.is_nan() {
        println!("fine-tuning all candidates took {ft:.1} s");
    }
    let qpath = study::quality_path(&a.out);
    let mut qw = csv::Writer::from_path(&qpath).with_context(|| format!("writing {}", qpath.display()))?;
    for r in &q {
        qw.serialize(r)?;
    }
    qw.flush()?;
    println!("wrote {}", qpath.display());
    if let Some(best) = metrics::winner(&q) {
        let baseline = q.iter().filter(|r| r.measure.starts_with("accuracy")).map(|r| r.kendall_tau).fold(f64::NEG_INFINITY, f64::max);
        let verdict = if best.measure.starts_with("accuracy") {
            "no transferability measure beat the accuracy baselines".to_string()
        } else if baseline.is_finite() {
            format!("beats the best accuracy baseline (tau {baseline:.3})")
        } else {
            "no accuracy baseline in this run".to_string()
        };
        println!("winner: {} (Kendall tau {}, weighted tau {}); {verdict}", best.measure, fmt(best.kendall_tau), fmt(best.weighted_tau));
    }
    Ok(())
}
