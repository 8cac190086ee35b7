//! `prune`: score, schedule and cut channels out of a checkpoint; print what it saved.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use ndarray::Array4;

use super::device::DeviceArgs;
use crate::data::{Dataset, Source, Split};
use crate::budget;
use crate::model::{checkpoint, counts, Arch, Network};
use crate::prune::{self, Control, Needs, Plan, Schedule, ScoreContext};

/// How the removal ratio is spread over the pruned groups (VGG-16: its 13 convs; a ResNet:
/// each residual stage and each block's inner conv; `prunebench info` lists them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ScheduleKind {
    /// The same ratio in every pruned group (--ratio).
    Uniform,
    /// One threshold over all groups' scores, each group normalised by its maximum (--ratio).
    Global,
    /// One ratio per pruned group (--ratios; 13 values on VGG-16).
    Layers,
    /// Kept counts per group chosen to meet a latency target (--target or --target-ms) on a
    /// table from `prunebench profile` (--table), keeping the most importance (greedy), then
    /// checked by measuring on this device (--refine; see `src/budget/mod.rs`).
    Latency,
}

#[derive(Args, Debug)]
pub struct PruneArgs {
    /// Checkpoint to prune (.safetensors).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Criterion that scores channels (higher = kept): l1, l2 (filter norms), random
    /// (seeded), bn-scale (|BN gamma|), fpgm (distance to the layer's geometric median),
    /// apoz, mean-activation (post-ReLU statistics on --images or --dataset), taylor
    /// (first-order Taylor importance from gradients on labelled --dataset images). A group
    /// with several members (a residual stage) averages its members' scores, each divided by
    /// its mean, as Torch-Pruning's DepGraph does.
    #[arg(long, value_name = "NAME")]
    pub method: String,
    /// Fraction of channels to REMOVE, in [0, 1), for the uniform and global schedules.
    #[arg(long)]
    pub ratio: Option<f64>,
    /// uniform, global, layers or latency. Default: layers when --ratios is given, else uniform.
    #[arg(long, value_enum)]
    pub schedule: Option<ScheduleKind>,
    /// Per-group removal ratios for --schedule layers: one comma-separated value in [0, 1)
    /// per pruned group (13 on VGG-16).
    #[arg(long, value_delimiter = ',', value_name = "R0,R1,...")]
    pub ratios: Vec<f64>,
    /// --schedule latency and --round-to auto: the latency model (`prunebench profile --out
    /// T.json`) of this network on the target device, batch and lowering.
    #[arg(long, value_name = "T.json")]
    pub table: Option<PathBuf>,
    /// --schedule latency: target as a fraction of the unpruned network's measured latency
    /// (0.5: twice as fast), in (0, 1].
    #[arg(long, allow_hyphen_values = true)]
    pub target: Option<f64>,
    /// --schedule latency: target in milliseconds instead, converted to a fraction of the
    /// unpruned network's latency as measured here (with --refine 0: as the table predicts it).
    #[arg(long, allow_hyphen_values = true)]
    pub target_ms: Option<f64>,
    /// --schedule latency: measure the chosen network against the unpruned one on this
    /// device (the table's batch and lowering) and, when it misses the target by more than
    /// --tolerance, measure a corrected guess and bisect the greedy's path between too slow and
    /// fast enough, measuring at most N networks (NetAdapt's loop; `src/budget/mod.rs`,
    /// `refine`). 0: trust the table alone.
    /// [default: 8]
    #[arg(long, value_name = "N")]
    pub refine: Option<usize>,
    /// --schedule latency with --refine: accepted relative miss of the measured fraction
    /// [default: 0.05].
    #[arg(long, allow_hyphen_values = true)]
    pub tolerance: Option<f64>,
    /// Round each group's KEPT count up to a multiple of N (capped at the original count),
    /// so pruning never removes more than asked; 1 = no rounding. `auto` (needs --table):
    /// snap each group's count on its measured staircase, up to the top of the plateau it is on
    /// (same latency, more channels) or down to the plateau below when it sits on a step (so
    /// it may remove more than asked). Not with --schedule latency, which picks counts on the
    /// staircase itself.
    #[arg(long, default_value = "1", value_name = "N|auto")]
    pub round_to: budget::RoundTo,
    /// Every pruned group keeps at least N channels (never fewer than 1).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub min_channels: usize,
    /// Pruned-group indices to leave untouched, comma separated, e.g. 0,12 (VGG-16: conv
    /// indices 0-12; `prunebench info` numbers the groups of any network).
    #[arg(long, value_delimiter = ',', value_name = "I,J,...")]
    pub skip: Vec<usize>,
    /// Seed of the random criterion.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write the masked control instead: original shapes, pruned channels zeroed so their
    /// output is exactly 0 (labelled prunebench.control=masked). Not a smaller network.
    #[arg(long)]
    pub mask: bool,
    /// Images for the data criteria (apoz, mean-activation): float32 .npy [N, H, W, C]
    /// matching the checkpoint's input.
    #[arg(long, value_name = "FILE.npy")]
    pub images: Option<PathBuf>,
    /// Labelled calibration images for taylor (also usable for apoz / mean-activation
    /// instead of --images): fashion-mnist, cifar10:DIR, cifar100:DIR or folder:DIR. The
    /// first --calibration-images training images are used, normalised like training.
    #[arg(long, value_name = "SOURCE")]
    pub dataset: Option<Source>,
    /// How many training images of --dataset score the channels.
    #[arg(long, default_value_t = 256, value_name = "N")]
    pub calibration_images: usize,
    /// The largest batch of the statistics or gradient program; every image is used, in
    /// ceil(N / batch) batches of near-equal size.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Device that runs the statistics or gradient program (data and gradient criteria only).
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Output checkpoint (.safetensors); written only if everything succeeded.
    #[arg(long)]
    pub out: PathBuf,
}

/// Which table chose the counts: its path and SHA-256 (checkpoint metadata).
fn table_meta(a: &PruneArgs) -> anyhow::Result<Vec<(String, String)>> {
    let path = a.table.as_ref().context("a table was read")?;
    let bytes = std::fs::read(path).with_context(|| format!("reading --table {}", path.display()))?;
    Ok(vec![
        ("prunebench.latency.table".into(), path.display().to_string()),
        ("prunebench.latency.table_sha256".into(), checkpoint::hex_sha256(&bytes)),
    ])
}

/// The latency model of `--table`, checked against `net`.
fn load_table(path: &std::path::Path, net: &Network) -> anyhow::Result<budget::Model> {
    let model = budget::Model::read(path).context("--table")?;
    model.check_for(&net.arch).with_context(|| format!("--table {}", path.display()))?;
    Ok(model)
}

/// A latency target as given.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// Of the unpruned network's latency.
    Fraction(f64),
    Ms(f64),
}

/// For `--schedule latency`: the target and the latency model; `None` for the other schedules.
fn latency_target(a: &PruneArgs, net: &Network) -> anyhow::Result<Option<(Target, budget::Model)>> {
    if a.schedule != Some(ScheduleKind::Latency) {
        if a.target.is_some() || a.target_ms.is_some() || a.refine.is_some() || a.tolerance.is_some() {
            bail!("--target, --target-ms, --refine and --tolerance are for --schedule latency");
        }
        return Ok(None);
    }
    if a.round_to != budget::RoundTo::Multiple(1) {
        bail!("--schedule latency picks each group's count on the measured staircase itself: drop --round-to {}", a.round_to);
    }
    let path = a.table.as_ref().context("--schedule latency needs --table T.json (from `prunebench profile --out T.json`)")?;
    let model = load_table(path, net)?;
    let t = match (a.target, a.target_ms) {
        (Some(f), None) if f > 0.0 && f <= 1.0 => Target::Fraction(f),
        (None, Some(ms)) if ms > 0.0 && ms.is_finite() => Target::Ms(ms),
        (Some(f), None) => bail!("invalid --target {f}: a fraction of the unpruned latency in (0, 1], e.g. 0.5"),
        (None, Some(ms)) => bail!("invalid --target-ms {ms}: use milliseconds > 0"),
        (Some(_), Some(_)) => bail!("give --target or --target-ms, not both"),
        (None, None) => bail!("--schedule latency needs --target F (fraction of the unpruned latency) or --target-ms MS"),
    };
    if a.ratio.is_some() || !a.ratios.is_empty() {
        bail!("--schedule latency chooses the counts itself: drop --ratio / --ratios");
    }
    let tolerance = a.tolerance.unwrap_or(0.05);
    if !(tolerance > 0.0 && tolerance < 1.0) {
        bail!("invalid --tolerance {tolerance}: a relative miss in (0, 1), e.g. 0.05");
    }
    Ok(Some((t, model)))
}

impl PruneArgs {
    fn schedule(&self) -> anyhow::Result<Schedule> {
        let kind =
            self.schedule.unwrap_or(if self.ratios.is_empty() { ScheduleKind::Uniform } else { ScheduleKind::Layers });
        let single = |name: &str| -> anyhow::Result<f64> {
            if !self.ratios.is_empty() {
                bail!("--ratios is for --schedule layers; the {name} schedule takes one --ratio");
            }
            self.ratio.with_context(|| {
                format!("the {name} schedule needs --ratio R (fraction of channels removed, in [0, 1))")
            })
        };
        if self.round_to == budget::RoundTo::Auto && self.table.is_none() {
            bail!("--round-to auto snaps counts on a measured staircase: give --table T.json (from `prunebench profile`)");
        }
        if self.table.is_some() && kind != ScheduleKind::Latency && self.round_to != budget::RoundTo::Auto {
            bail!("--table is for --schedule latency or --round-to auto");
        }
        Ok(match kind {
            ScheduleKind::Uniform => Schedule::Uniform(single("uniform")?),
            ScheduleKind::Global => Schedule::Global(single("global")?),
            // Replaced by the solved per-group counts once the scores are known (see `prune`).
            ScheduleKind::Latency => Schedule::Uniform(0.0),
            ScheduleKind::Layers => {
                if self.ratio.is_some() {
                    bail!("--schedule layers takes --ratios R0,...,R12, not --ratio");
                }
                if self.ratios.is_empty() {
                    bail!("--schedule layers needs --ratios with 13 comma-separated values in [0, 1)");
                }
                Schedule::Layers(self.ratios.clone())
            }
        })
    }
}

pub fn prune(a: &PruneArgs) -> anyhow::Result<()> {
    if a.out == a.checkpoint {
        bail!("--out {} is the source checkpoint; write the pruned network elsewhere", a.out.display());
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    let v = &ck.model;
    let plan = Plan {
        criterion: a.method.clone(),
        schedule: a.schedule()?,
        round_to: a.round_to.multiple(),
        min_channels: a.min_channels,
        skip: a.skip.clone(),
        seed: a.seed,
        control: if a.mask { Control::Masked } else { Control::Physical },
    };
    plan.validate(v)?;
    let criterion = prune::find(&plan.criterion)?;
    let needs = criterion.needs();
    if needs != Needs::Weights && a.images.is_some() && a.dataset.is_some() {
        bail!("give --images or --dataset, not both: {} scores channels on one set of images", criterion.name());
    }
    if needs == Needs::Gradients && a.images.is_some() {
        bail!(
            "{} needs labelled images: use --dataset SOURCE (e.g. --dataset fashion-mnist); --images has no labels",
            criterion.name()
        );
    }
    let (session, images, labels, calib): (_, Array4<f32>, Vec<i32>, Dataset);
    let mut ctx = ScoreContext::weights_only();
    match (needs, &a.images, &a.dataset) {
        (Needs::Weights, Some(_), _) => eprintln!("note: --images ignored: {} reads the weights only", criterion.name()),
        (Needs::Weights, _, Some(_)) => eprintln!("note: --dataset ignored: {} reads the weights only", criterion.name()),
        (Needs::Data, Some(path), None) => {
            let [h, w, c] = v.arch.input;
            let want = format!("float32 .npy of shape [N, {h}, {w}, {c}] (NHWC)");
            let x: Array4<f32> =
                crate::data::read_images_npy(path).with_context(|| format!("reading --images: expected a {want}"))?;
            if x.shape()[1..] != v.arch.input[..] || x.shape()[0] == 0 {
                bail!(
                    "--images {} has shape {:?}; this checkpoint needs a {want} with N >= 1",
                    path.display(),
                    x.shape()
                );
            }
            images = x.as_standard_layout().into_owned();
            session = a.device.open()?;
            let data = images.as_slice().expect("standard layout");
            ctx = ScoreContext::with_data(&session, data, images.shape()[0], a.batch);
        }
        (Needs::Data | Needs::Gradients, None, Some(source)) => {
            if a.calibration_images == 0 {
                bail!("--calibration-images 0: {} needs at least one image", criterion.name());
            }
            let d = source
                .load_normalized(Split::Train, v.arch.input, Some(a.calibration_images))
                .with_context(|| format!("loading --dataset {source} for {}", criterion.name()))?;
            if d.classes > v.arch.classes {
                bail!(
                    "--dataset {source} has {} classes but the checkpoint has {} outputs; use the dataset it was trained on",
                    d.classes,
                    v.arch.classes
                );
            }
            calib = d;
            labels = calib.labels.iter().map(|&l| l as i32).collect();
            session = a.device.open()?;
            ctx = ScoreContext::with_labelled_data(&session, &calib.images, &labels, calib.n, a.batch);
        }
        _ => {}
    }
    let mut plan = plan;
    let mut latency_meta = Vec::new();
    if let Some((target, model)) = latency_target(a, v)? {
        let scores = criterion.scores(v, &ctx)?;
        let (refine, tolerance) = (a.refine.unwrap_or(8), a.tolerance.unwrap_or(0.05));
        let full = model.predict(&model.groups);
        // A fraction of the unpruned latency: as measured here when refining, else as predicted.
        let fraction = |unpruned_s: f64| -> anyhow::Result<f64> {
            match target {
                Target::Fraction(f) => Ok(f),
                Target::Ms(ms) if ms / 1e3 <= unpruned_s => Ok(ms / 1e3 / unpruned_s),
                Target::Ms(ms) => bail!("invalid --target-ms {ms}: the unpruned network takes {:.3} ms here; give less", unpruned_s * 1e3),
            }
        };
        let (choice, unpruned_s) = if refine == 0 {
            (budget::choose(&model, &scores, a.min_channels, &a.skip, fraction(full)?, None)?, None)
        } else {
            let (batch, mode, dtype) = budget::profile::parse_setting(&model.setting)
                .with_context(|| format!("--table: setting '{}' names no batch, lowering and dtype; profile again or use --refine 0", model.setting))?;
            let session = a.device.open()?;
            if !model.setting.ends_with(&format!(" on {}", session.describe())) {
                bail!(
                    "--table was measured for '{}', this device is {}: profile on this device, or use --refine 0 to prune by the table alone",
                    model.setting,
                    session.describe()
                );
            }
            let mut tuner = crate::tune::Tuner::open_default(&session)?;
            let mut meter = budget::profile::Meter::new(v, &session, &mut tuner, batch, dtype, mode)?;
            let unpruned_s = match target {
                Target::Ms(_) => Some(meter.unpruned_seconds()?),
                Target::Fraction(_) => None,
            };
            let f = fraction(unpruned_s.unwrap_or(full))?;
            let mut measure = |k: &[usize]| {
                let f = meter.fraction(k)?;
                eprintln!("latency schedule: measured {f:.3} of the unpruned with kept {k:?}");
                Ok(f)
            };
            (budget::choose(&model, &scores, a.min_channels, &a.skip, f, Some((refine, tolerance, &mut measure)))?, unpruned_s)
        };
        eprintln!(
            "latency schedule: target {:.3} of the unpruned ({:.3} ms), predicted {:.3}{}, kept {:?}",
            choice.target,
            choice.target * unpruned_s.unwrap_or(full) * 1e3,
            choice.predicted,
            choice.measured.map(|m| format!(", measured {m:.3} (networks measured: {})", choice.measurements)).unwrap_or_default(),
            choice.kept
        );
        if !choice.met {
            eprintln!(
                "warning: measured {:.3}, more than {:.0}% below the target {:.3}: the greedy path steps over the band here (the next slower point measured too slow); written anyway",
                choice.measured.unwrap_or(f64::NAN),
                tolerance * 100.0,
                choice.target
            );
        }
        plan.schedule = Schedule::keeping(&choice.kept, &model.groups);
        latency_meta = choice.meta(&model, unpruned_s);
        latency_meta.push(("prunebench.prune.asked".into(), match target {
            Target::Fraction(f) => format!("latency target {f}"),
            Target::Ms(ms) => format!("latency target {ms} ms"),
        }));
        latency_meta.extend(table_meta(a)?);
    } else if a.round_to == budget::RoundTo::Auto {
        // Counts of the chosen schedule, snapped on the table's staircase, as per-group ratios.
        let model = load_table(a.table.as_ref().expect("checked in schedule()"), v)?;
        latency_meta.push(("prunebench.prune.asked".into(), format!("{} round_to auto", plan.schedule)));
        latency_meta.extend(table_meta(a)?);
        let (counts, snapped) = budget::snap_counts(&model, v, &plan, &ctx)?;
        eprintln!("round-to auto: kept {counts:?} -> {snapped:?}");
        plan.schedule = Schedule::keeping(&snapped, &model.groups);
    }
    let mut pruned = prune::prune(v, &plan, &ctx)?.with_source(&ck.sha256);
    pruned.meta.extend(latency_meta);
    let after = prune::surgery(v, &pruned.keep)?.arch;
    print_table(&v.arch, &after);
    checkpoint::save(&a.out, &pruned.model, &pruned.meta)?;
    println!(
        "wrote {} ({}, {} {}, {}): {}",
        a.out.display(),
        plan.control,
        plan.criterion,
        plan.schedule,
        if a.mask { "same shapes, pruned channels zeroed" } else { "channels removed" },
        pruned.model.arch.describe()
    );
    Ok(())
}

/// `1234`, `12.3K`, `14.73M`, `15.47G`.
fn human(n: u64) -> String {
    let x = n as f64;
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{:.1}K", x / 1e3),
        1_000_000..=999_999_999 => format!("{:.2}M", x / 1e6),
        _ => format!("{:.2}G", x / 1e9),
    }
}

fn factor(before: u64, after: u64) -> String {
    if after == 0 {
        "-".into()
    } else {
        format!("{:.2}x", before as f64 / after as f64)
    }
}

fn print_table(before: &Arch, after: &Arch) {
    let (lb, la) = (counts::layers(before), counts::layers(after));
    // Per conv its output channels; per dense layer the features it reads.
    let widths = |arch: &Arch| -> Vec<usize> {
        let g = arch.graph().expect("a loaded architecture builds");
        g.nodes()
            .iter()
            .filter_map(|n| match n.op {
                crate::graph::Op::Conv(c) => Some(c.out),
                crate::graph::Op::Dense { .. } => Some(g.node(n.inputs[0]).dims.iter().product()),
                _ => None,
            })
            .collect()
    };
    let (wb, wa) = (widths(before), widths(after));
    let name_w = lb.iter().map(|l| l.node.len()).max().unwrap_or(8).max(8);
    println!("{:<name_w$} {:>16} {:>22} {:>22}", "layer", "channels", "params", "MACs/image");
    for (i, (b, a)) in lb.iter().zip(&la).enumerate() {
        let width = if b.name.starts_with("conv") { format!("{} -> {}", wb[i], wa[i]) } else { format!("in {} -> {}", wb[i], wa[i]) };
        let pm = format!("{} -> {}", human(b.params), human(a.params));
        let mm = format!("{} -> {}", human(b.macs), human(a.macs));
        println!("{:<name_w$} {:>16} {:>22} {:>22}", b.node, width, pm, mm);
    }
    let (cb, ca): (usize, usize) = (before.channels.iter().sum(), after.channels.iter().sum());
    let (pb, pa) = (counts::params(before), counts::params(after));
    let (mb, ma) = (counts::macs(before), counts::macs(after));
    println!(
        "{:<name_w$} {:>16} {:>22} {:>22}",
        "total",
        format!("{cb} -> {ca}"),
        format!("{} -> {}", human(pb), human(pa)),
        format!("{} -> {}", human(mb), human(ma))
    );
    println!(
        "reduction: channels {}, params {} ({} -> {}), MACs {} ({} -> {})",
        factor(cb as u64, ca as u64),
        factor(pb, pa),
        pb,
        pa,
        factor(mb, ma),
        mb,
        ma
    );
}
