//! `profile`: a network's latency table on this device: for every conv, its latency along its
//! output count and along its input count (each the count of a pruned group, on a grid), the
//! staircase each curve shows, and the whole network measured at a few uniform widths to fit
//! the model's scale and rest (`budget::Model::fit`). The
//! layer timings are the tuner's (each shape alone, cold weights) and cached with its
//! decisions per device, so a second profile of the same shapes measures nothing again.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use anyhow::{bail, Context};
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::NetworkArgs;
use crate::bench::{latency, Sampling};
use crate::budget::{Curve, LayerTable, Model};
use crate::graph::groups::groups;
use crate::hlo::DType;
use crate::lower::{LayerShape, Lowering, Mode};
use crate::prune::targets;
use crate::runtime::CompiledModel;
use crate::tune::{StderrProgress, Tuner};

#[derive(Args, Debug)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Images per call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Whose latency: xla (XLA's plain convolution) or tuned (the fastest lowering per shape).
    #[arg(long, default_value = "tuned")]
    pub lowering: Mode,
    /// Grid points per axis: counts `ceil(j * C / grid)` for j = 1..grid (plus every multiple
    /// of 8 up to 64 on each axis, where small layers step).
    #[arg(long, default_value_t = 8)]
    pub grid: usize,
    /// Uniform widths (kept fractions) at which the whole network is measured, side by side,
    /// to fit the model's scale and rest; the first should be 1 (the unpruned network).
    #[arg(long, value_delimiter = ',', default_value = "1,0.75,0.5,0.25")]
    pub calibrate: Vec<f64>,
    /// Also draw the staircase (latency against kept output channels, one line per conv) as
    /// staircase.svg and staircase.png in this folder.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Also measure in-network curves: the whole network with one group at each of its
    /// worth-keeping counts, side by side; the prediction then adds each group's own change
    /// (first order). Measured here: better on ResNets at targets 0.9-0.7, worse on VGG-16 and
    /// far off at 0.5 (README, "Latency budgets").
    #[arg(long)]
    pub in_network: bool,
    /// In-network curves: at most this many counts per group (spread over its worth-keeping
    /// counts).
    #[arg(long, default_value_t = 6)]
    pub in_network_points: usize,
    /// Where to write the table (JSON: the latency model `prune --schedule latency` reads).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Grid counts of an axis of `n` channels.
fn grid(n: usize, points: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=points).map(|j| (j * n).div_ceil(points).max(1)).collect();
    v.extend((8..=64.min(n)).step_by(8));
    v.push(n);
    v.sort_unstable();
    v.dedup();
    v
}

pub fn profile(a: &ProfileArgs) -> anyhow::Result<()> {
    if a.batch == 0 || a.grid == 0 {
        bail!("invalid --batch {} / --grid {}: use at least 1", a.batch, a.grid);
    }
    if a.calibrate.is_empty() || a.calibrate.iter().any(|f| !(*f > 0.0 && *f <= 1.0)) {
        bail!("invalid --calibrate {:?}: kept fractions in (0, 1], e.g. 1,0.75,0.5,0.25", a.calibrate);
    }
    if !matches!(a.lowering, Mode::Xla | Mode::Tuned) {
        bail!("invalid --lowering {}: profile xla or tuned", a.lowering);
    }
    let net = a.net.network()?;
    let g = &net.graph;
    let gs = groups(g);
    let pruned = targets(g, &gs);
    let index = |node| pruned.iter().position(|&id| id == gs.of(node).id);
    let session = a.device.open()?;
    let dtype = DType::F32;
    // Every conv's shapes along both axes.
    struct Plan {
        node: String,
        out_group: Option<usize>,
        in_group: Option<usize>,
        depthwise: bool,
        cin: usize,
        cout: usize,
        out: Vec<(usize, LayerShape)>,
        inp: Vec<(usize, LayerShape)>,
    }
    let mut plans = Vec::new();
    for c in g.nodes().iter().filter(|n| n.conv().is_some()) {
        let spec = *c.conv().expect("a conv");
        let src = &g.node(c.inputs[0]).dims;
        let (h, w, cin) = (src[0], src[1], src[2]);
        let depthwise = spec.is_depthwise();
        let (out_group, in_group) = (index(c.id), if depthwise { None } else { index(c.inputs[0]) });
        let shape = |ci: usize, co: usize| {
            let s = crate::graph::ConvSpec { out: co, groups: if depthwise { co } else { spec.groups }, ..spec };
            LayerShape::of(a.batch, h, w, if depthwise { co } else { ci }, &s, dtype)
        };
        let out = match out_group {
            Some(_) => grid(spec.out, a.grid).into_iter().map(|k| (k, shape(cin, k))).collect(),
            None => vec![(spec.out, shape(cin, spec.out))],
        };
        let inp = match in_group {
            Some(_) => grid(cin, a.grid).into_iter().map(|k| (k, shape(k, spec.out))).collect(),
            None => Vec::new(),
        };
        plans.push(Plan { node: c.name.clone(), out_group, in_group, depthwise, cin, cout: spec.out, out, inp });
    }
    let all: Vec<LayerShape> = plans.iter().flat_map(|p| p.out.iter().chain(&p.inp).map(|(_, s)| s.clone())).collect();
    let mut distinct = all.clone();
    distinct.sort_by_key(|s| format!("{s:?}"));
    distinct.dedup();
    eprintln!("profile: {} convs, {} distinct layer shapes to time (cached ones are not timed again)", plans.len(), distinct.len());
    let mut tuner = Tuner::open_default(&session)?;
    tuner.plan(&distinct, &mut StderrProgress)?;
    let seconds = |s: &LayerShape| -> anyhow::Result<f64> {
        let d = tuner.cached(s).context("tuned above")?;
        let l = if a.lowering == Mode::Xla { Lowering::Direct } else { d.choice };
        d.seconds.get(&l).copied().context("the plain convolution is timed on every shape")
    };
    let mut layers = Vec::new();
    for p in &plans {
        let out = Curve::new(p.out.iter().map(|(k, s)| Ok((*k, seconds(s)?))).collect::<anyhow::Result<_>>()?)?;
        let inp = if p.inp.is_empty() {
            None
        } else {
            Some(Curve::new(p.inp.iter().map(|(k, s)| Ok((*k, seconds(s)?))).collect::<anyhow::Result<_>>()?)?)
        };
        layers.push(LayerTable {
            node: p.node.clone(),
            out_group: p.out_group,
            in_group: p.in_group,
            depthwise: p.depthwise,
            cin: p.cin,
            cout: p.cout,
            out,
            inp,
        });
    }
    // Whole networks' lowering plans from the tuner already open (the calibration widths and
    // in-network variants share the table's shapes, cached above).
    let plan_of = |tuner: &mut Tuner, arch: &crate::model::Arch| -> anyhow::Result<Vec<Lowering>> {
        let shapes = crate::model::program::layer_shapes(arch, a.batch, dtype)?;
        Ok(match crate::lower::fixed_plan(a.lowering, &shapes) {
            Some(p) => p,
            None => tuner.plan(&shapes, &mut StderrProgress)?,
        })
    };
    let full: Vec<usize> = pruned.iter().map(|&id| gs.all()[id].channels).collect();
    let setting = format!("{} on {}", crate::budget::setting_key(a.batch, a.lowering.name(), "f32"), session.describe());
    let mut model = Model { layers, groups: full.clone(), rest: 0.0, scale: 1.0, setting, network: Vec::new() };
    // Calibration: the whole network at each --calibrate width, measured side by side.
    let mut nets = Vec::new();
    for &f in &a.calibrate {
        let n = if f >= 1.0 {
            net.clone()
        } else {
            let plan = crate::prune::Plan::new("l1", crate::prune::Schedule::Uniform(1.0 - f));
            crate::prune::prune(&net, &plan, &crate::prune::ScoreContext::weights_only())?.model
        };
        nets.push(n);
    }
    let mut compiled = Vec::new();
    for n in &nets {
        let plan = plan_of(&mut tuner, &n.arch)?;
        compiled.push(CompiledModel::new(&session, n, a.batch, dtype, &plan)?);
    }
    let refs: Vec<&CompiledModel> = compiled.iter().collect();
    let m = latency::measure(&refs, &Sampling { time_cap_s: 20.0, ..Sampling::default() }, &AtomicBool::new(false))?;
    if m.models.len() != nets.len() {
        bail!("interrupted while measuring the calibration networks");
    }
    let points: Vec<(Vec<usize>, f64)> =
        nets.iter().zip(&m.models).map(|(n, l)| (crate::prune::group_channels(n), l.run.p50)).collect();
    let sum = model.sum(&full);
    let fit_err = model.fit(&points);
    println!("{}, batch {}, {} lowering, on {}", net.describe(), a.batch, a.lowering, session.describe());
    println!(
        "whole network p50 {:.3} ms; its convs alone sum to {:.3} ms; fit over {} widths: scale {:.3}, rest {:+.3} ms, largest error {:.1}%",
        points[0].1 * 1e3,
        sum * 1e3,
        points.len(),
        model.scale,
        model.rest * 1e3,
        fit_err * 100.0
    );
    for ((k, t), f) in points.iter().zip(&a.calibrate) {
        println!("  width {f}: measured {:.3} ms, model {:.3} ms", t * 1e3, model.predict(k) * 1e3);
    }
    if a.in_network {
        // The network with one group at each of its worth-keeping counts (others full).
        let mut jobs: Vec<(usize, usize)> = Vec::new();
        for (g, &n) in full.iter().enumerate() {
            let mut counts: Vec<usize> = model.layers.iter().filter(|l| l.out_group == Some(g)).flat_map(|l| l.out.worth_keeping()).filter(|&k| k < n).collect();
            counts.sort_unstable();
            counts.dedup();
            let m = a.in_network_points.max(1);
            if counts.len() > m {
                counts = (0..m).map(|j| counts[j * (counts.len() - 1) / (m - 1).max(1)]).collect();
                counts.dedup();
            }
            jobs.extend(counts.into_iter().map(|k| (g, k)));
        }
        eprintln!("profile: {} in-network variants (one group changed each), compiled and measured side by side", jobs.len());
        let mut progs = vec![CompiledModel::new(&session, &net, a.batch, dtype, &plan_of(&mut tuner, &net.arch)?)?];
        for &(g, k) in &jobs {
            let ratios: Vec<f64> = full.iter().enumerate().map(|(h, &n)| if h == g { (n - k) as f64 / n as f64 } else { 0.0 }).collect();
            let plan = crate::prune::Plan::new("l1", crate::prune::Schedule::Layers(ratios));
            let v = crate::prune::prune(&net, &plan, &crate::prune::ScoreContext::weights_only())?.model;
            let lowering = plan_of(&mut tuner, &v.arch)?;
            progs.push(CompiledModel::new(&session, &v, a.batch, dtype, &lowering)?);
        }
        let refs: Vec<&CompiledModel> = progs.iter().collect();
        let m = latency::measure(&refs, &Sampling { time_cap_s: 60.0, ..Sampling::default() }, &AtomicBool::new(false))?;
        if m.models.len() != progs.len() {
            bail!("interrupted while measuring the in-network variants");
        }
        let t0 = m.models[0].run.p50;
        let mut curves: Vec<Vec<(usize, f64)>> = full.iter().map(|&n| vec![(n, t0)]).collect();
        for (&(g, k), l) in jobs.iter().zip(&m.models[1..]) {
            curves[g].push((k, l.run.p50));
        }
        model.network = curves.into_iter().map(Curve::new).collect::<crate::Result<_>>()?;
        let err = points.iter().map(|(k, t)| (model.predict(k) / t * t0 / points[0].1 - 1.0).abs()).fold(0.0, f64::max);
        println!(
            "in-network curves: {} variants measured (unpruned {:.3} ms in their rounds); the uniform widths above, predicted \
             from them as fractions of the unpruned: largest error {:.1}%",
            jobs.len(),
            t0 * 1e3,
            err * 100.0
        );
        for ((k, t), f) in points.iter().zip(&a.calibrate) {
            println!("  width {f}: measured {:.3} of the unpruned, predicted {:.3}", t / points[0].1, model.predict(k) / t0);
        }
    }
    println!("staircase per conv (output count: where latency steps up; ms at full):");
    for l in &model.layers {
        let steps = l.out.steps();
        let g = l.out_group.map(|g| format!("group {g}")).unwrap_or_else(|| "fixed".into());
        println!(
            "  {:<24} {:<9} {:>4} out, {:>7.3} ms  steps at {:?}",
            l.node,
            g,
            l.cout,
            l.out.at(l.cout) * 1e3,
            steps
        );
    }
    let text = serde_json::to_string_pretty(&model)?;
    crate::util::write_atomic(&a.out, text.as_bytes())?;
    println!("wrote {}", a.out.display());
    if let Some(dir) = &a.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let title = format!("{} b{} {}: latency vs kept channels", net.arch.form, a.batch, a.lowering);
        for f in crate::report::plot::write(&crate::report::plot::staircase_chart(&model, &title), dir)? {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}
