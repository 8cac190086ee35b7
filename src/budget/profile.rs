//! Measuring a latency model on a device ([`profile`]: `prunebench profile` and the suites'
//! latency schedule) and measuring a chosen network against the unpruned one ([`Meter`], for
//! [`super::refine`]). Unlike the rest of `budget` this part runs programs: layer timings are
//! the tuner's (each shape alone, cold weights, cached per device with its decisions, so a
//! second profile of the same shapes measures nothing again), whole networks are timed side by
//! side in the bench's interleaved rounds.

use std::sync::atomic::AtomicBool;

use crate::bench::{latency, Sampling};
use crate::error::{Error, Result};
use crate::graph::groups::groups;
use crate::hlo::DType;
use crate::lower::{LayerShape, Lowering, Mode};
use crate::model::{Arch, Network};

use crate::prune::{self, group_channels, targets, Plan, Schedule, ScoreContext};
use crate::runtime::{CompiledModel, Session};
use crate::tune::{StderrProgress, Tuner};

use super::{setting_key, Curve, LayerTable, Model};

/// What to measure.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Images per call.
    pub batch: usize,
    /// `Mode::Xla` (XLA's plain convolution) or `Mode::Tuned` (the tuner's pick per shape).
    pub lowering: Mode,
    /// Compute dtype of every layer and network timed.
    pub dtype: DType,
    /// Grid points per axis ([`grid`]).
    pub grid: usize,
    /// Uniform widths (kept fractions) at which the whole network is measured to fit the
    /// model's scale and rest; the first should be 1.
    pub calibrate: Vec<f64>,
    /// In-network curves with at most this many counts per group (`None`: not measured).
    pub in_network: Option<usize>,
}

/// A measured model and what its fit showed.
#[derive(Clone, Debug)]
pub struct Profile {
    pub model: Model,
    /// Per calibration width: `(width, kept counts, measured seconds)`.
    pub calibration: Vec<(f64, Vec<usize>, f64)>,
    /// The sum of the conv tables at full width, seconds.
    pub conv_sum: f64,
    /// The largest relative error of the fit over the calibration widths.
    pub fit_error: f64,
    /// In-network curves: `(variants measured, the unpruned seconds in their rounds, largest
    /// error of the widths predicted from them as fractions)`.
    pub in_network: Option<(usize, f64, f64)>,
}

/// Grid counts of an axis of `n` channels: `ceil(j * n / points)` for j = 1..points, plus
/// every multiple of 8 up to 64 (where small layers step) and `n`.
pub fn grid(n: usize, points: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (1..=points).map(|j| (j * n).div_ceil(points).max(1)).collect();
    v.extend((8..=64.min(n)).step_by(8));
    v.push(n);
    v.sort_unstable();
    v.dedup();
    v
}

/// The network with pruned group `g` at `kept[g]` channels (the l1 choice of channels: a
/// network's latency depends on its counts, not on which channels are kept).
pub fn with_counts(net: &Network, kept: &[usize]) -> Result<Network> {
    let plan = Plan::new("l1", Schedule::keeping(kept, &group_channels(net)));
    Ok(prune::prune(net, &plan, &ScoreContext::weights_only())?.model)
}

fn plan_of(tuner: &mut Tuner, arch: &Arch, batch: usize, dtype: DType, mode: Mode) -> Result<Vec<Lowering>> {
    let shapes = crate::model::program::layer_shapes(arch, batch, dtype)?;
    Ok(match crate::lower::fixed_plan(mode, &shapes) {
        Some(p) => p,
        None => tuner.plan(&shapes, &mut StderrProgress)?,
    })
}

fn measure_all(nets: &[CompiledModel], cap: f64, what: &str) -> Result<Vec<f64>> {
    let refs: Vec<&CompiledModel> = nets.iter().collect();
    let m = latency::measure(&refs, &Sampling { time_cap_s: cap, ..Sampling::default() }, &AtomicBool::new(false))?;
    if m.models.len() != nets.len() {
        return Err(Error::Interrupted { what: format!("measuring {what}") });
    }
    Ok(m.models.iter().map(|l| l.run.p50).collect())
}

/// Measures `net`'s latency model on `session` (see the module docs and [`Model`]).
///
/// Errors: a batch or grid of 0, a width outside (0, 1], a lowering other than xla or tuned;
/// compile and run errors.
pub fn profile(net: &Network, session: &Session, tuner: &mut Tuner, s: &Settings) -> Result<Profile> {
    if s.batch == 0 || s.grid == 0 {
        return Err(Error::invalid("profile batch / grid", format!("{} / {}", s.batch, s.grid), "use at least 1"));
    }
    if s.calibrate.is_empty() || s.calibrate.iter().any(|f| !(*f > 0.0 && *f <= 1.0)) {
        return Err(Error::invalid("calibration widths", format!("{:?}", s.calibrate), "kept fractions in (0, 1], e.g. 1,0.75,0.5,0.25"));
    }
    if s.in_network == Some(0) {
        return Err(Error::invalid("in-network points", 0, "measure at least 1 count per group"));
    }
    if !matches!(s.lowering, Mode::Xla | Mode::Tuned) {
        return Err(Error::invalid("profile lowering", s.lowering.name(), "profile xla or tuned"));
    }
    let g = &net.graph;
    let gs = groups(g);
    let pruned = targets(g, &gs);
    let index = |node| pruned.iter().position(|&id| id == gs.of(node).id);
    let dtype = s.dtype;
    // Every conv's shapes along both axes.
    struct Axis {
        node: String,
        out_group: Option<usize>,
        in_group: Option<usize>,
        depthwise: bool,
        cin: usize,
        cout: usize,
        out: Vec<(usize, LayerShape)>,
        inp: Vec<(usize, LayerShape)>,
    }
    let mut axes = Vec::new();
    for c in g.nodes().iter().filter(|n| n.conv().is_some()) {
        let spec = *c.conv().expect("a conv");
        let src = &g.node(c.inputs[0]).dims;
        let (h, w, cin) = (src[0], src[1], src[2]);
        let depthwise = spec.is_depthwise();
        let (out_group, in_group) = (index(c.id), if depthwise { None } else { index(c.inputs[0]) });
        let shape = |ci: usize, co: usize| {
            let sp = crate::graph::ConvSpec { out: co, groups: if depthwise { co } else { spec.groups }, ..spec };
            LayerShape::of(s.batch, h, w, if depthwise { co } else { ci }, &sp, dtype)
        };
        let out = match out_group {
            Some(_) => grid(spec.out, s.grid).into_iter().map(|k| (k, shape(cin, k))).collect(),
            None => vec![(spec.out, shape(cin, spec.out))],
        };
        let inp = match in_group {
            Some(_) => grid(cin, s.grid).into_iter().map(|k| (k, shape(k, spec.out))).collect(),
            None => Vec::new(),
        };
        axes.push(Axis { node: c.name.clone(), out_group, in_group, depthwise, cin, cout: spec.out, out, inp });
    }
    let mut distinct: Vec<LayerShape> = axes.iter().flat_map(|p| p.out.iter().chain(&p.inp).map(|(_, s)| s.clone())).collect();
    distinct.sort_by_key(|s| format!("{s:?}"));
    distinct.dedup();
    eprintln!("profile: {} convs, {} distinct layer shapes to time (cached ones are not timed again)", axes.len(), distinct.len());
    tuner.plan(&distinct, &mut StderrProgress)?;
    let seconds = |sh: &LayerShape| -> Result<f64> {
        let d = tuner.cached(sh).ok_or_else(|| Error::invalid("layer shape", format!("{sh:?}"), "tune it first"))?;
        let l = if s.lowering == Mode::Xla { Lowering::Direct } else { d.choice };
        d.seconds.get(&l).copied().ok_or_else(|| Error::invalid("tuner record", format!("{sh:?}"), "retune: the plain convolution is timed on every shape"))
    };
    let curve = |pts: &[(usize, LayerShape)]| -> Result<Curve> { Curve::new(pts.iter().map(|(k, sh)| Ok((*k, seconds(sh)?))).collect::<Result<_>>()?) };
    let mut layers = Vec::new();
    for p in &axes {
        let inp = if p.inp.is_empty() { None } else { Some(curve(&p.inp)?) };
        layers.push(LayerTable {
            node: p.node.clone(),
            out_group: p.out_group,
            in_group: p.in_group,
            depthwise: p.depthwise,
            cin: p.cin,
            cout: p.cout,
            out: curve(&p.out)?,
            inp,
        });
    }
    let full: Vec<usize> = group_channels(net);
    let setting = format!("{} on {}", setting_key(s.batch, s.lowering.name(), &dtype.to_string()), session.describe());
    let mut model = Model { layers, groups: full.clone(), rest: 0.0, scale: 1.0, setting, network_desc: net.arch.describe(), network: Vec::new() };
    // Calibration: the whole network at each width, measured side by side.
    let mut compiled = Vec::new();
    let mut counts = Vec::new();
    for &f in &s.calibrate {
        let n = if f >= 1.0 {
            net.clone()
        } else {
            prune::prune(net, &Plan::new("l1", Schedule::Uniform(1.0 - f)), &ScoreContext::weights_only())?.model
        };
        let lowering = plan_of(tuner, &n.arch, s.batch, dtype, s.lowering)?;
        compiled.push(CompiledModel::new(session, &n, s.batch, dtype, &lowering)?);
        counts.push(group_channels(&n));
    }
    let p50 = measure_all(&compiled, 20.0, "the calibration networks")?;
    drop(compiled);
    let points: Vec<(Vec<usize>, f64)> = counts.into_iter().zip(p50).collect();
    let conv_sum = model.sum(&full);
    let fit_error = model.fit(&points);
    let calibration = s.calibrate.iter().zip(&points).map(|(&f, (k, t))| (f, k.clone(), *t)).collect();
    let mut in_network = None;
    if let Some(most) = s.in_network {
        // The network with one group at each of its worth-keeping counts (others full).
        let mut jobs: Vec<(usize, usize)> = Vec::new();
        for (g, &n) in full.iter().enumerate() {
            let mut c: Vec<usize> = model.layers.iter().filter(|l| l.out_group == Some(g)).flat_map(|l| l.out.worth_keeping()).filter(|&k| k < n).collect();
            c.sort_unstable();
            c.dedup();
            let m = most.max(1);
            if c.len() > m {
                c = (0..m).map(|j| c[j * (c.len() - 1) / (m - 1).max(1)]).collect();
                c.dedup();
            }
            jobs.extend(c.into_iter().map(|k| (g, k)));
        }
        eprintln!("profile: {} in-network variants (one group changed each), compiled and measured side by side", jobs.len());
        let mut progs = vec![CompiledModel::new(session, net, s.batch, dtype, &plan_of(tuner, &net.arch, s.batch, dtype, s.lowering)?)?];
        for &(g, k) in &jobs {
            let mut kept = full.clone();
            kept[g] = k;
            let v = with_counts(net, &kept)?;
            let lowering = plan_of(tuner, &v.arch, s.batch, dtype, s.lowering)?;
            progs.push(CompiledModel::new(session, &v, s.batch, dtype, &lowering)?);
        }
        let p50 = measure_all(&progs, 60.0, "the in-network variants")?;
        let t0 = p50[0];
        let mut curves: Vec<Vec<(usize, f64)>> = full.iter().map(|&n| vec![(n, t0)]).collect();
        for (&(g, k), &t) in jobs.iter().zip(&p50[1..]) {
            curves[g].push((k, t));
        }
        model.network = curves.into_iter().map(Curve::new).collect::<Result<_>>()?;
        let err = points.iter().map(|(k, t)| (model.predict(k) / t * points[0].1 / t0 - 1.0).abs()).fold(0.0, f64::max);
        in_network = Some((jobs.len(), t0, err));
    }
    Ok(Profile { model, calibration, conv_sum, fit_error, in_network })
}

/// Measures networks of given kept counts against the unpruned `net`, side by side, on one
/// session, batch and lowering: what [`super::refine`] calls.
pub struct Meter<'a, 's> {
    net: &'a Network,
    session: &'s Session,
    tuner: &'a mut Tuner<'s>,
    base: CompiledModel,
    batch: usize,
    dtype: DType,
    mode: Mode,
    /// Seconds of the time cap of each side-by-side measurement.
    pub time_cap_s: f64,
}

impl<'a, 's> Meter<'a, 's> {
    /// Compiles the unpruned `net` once, for batches of `batch` in `dtype` with `mode`'s lowering.
    pub fn new(net: &'a Network, session: &'s Session, tuner: &'a mut Tuner<'s>, batch: usize, dtype: DType, mode: Mode) -> Result<Self> {
        let lowering = plan_of(tuner, &net.arch, batch, dtype, mode)?;
        let base = CompiledModel::new(session, net, batch, dtype, &lowering)?;
        Ok(Meter { net, session, tuner, base, batch, dtype, mode, time_cap_s: 10.0 })
    }

    /// The unpruned network's p50 latency alone, seconds (for a target given in milliseconds).
    pub fn unpruned_seconds(&mut self) -> Result<f64> {
        let m = latency::measure(&[&self.base], &Sampling { time_cap_s: self.time_cap_s, ..Sampling::default() }, &AtomicBool::new(false))?;
        m.models.first().map(|l| l.run.p50).ok_or_else(|| Error::Interrupted { what: "measuring the unpruned network".into() })
    }

    /// The p50 latency of the network with `kept` counts as a fraction of the unpruned one's,
    /// both measured in the same interleaved rounds.
    pub fn fraction(&mut self, kept: &[usize]) -> Result<f64> {
        let v = with_counts(self.net, kept)?;
        let lowering = plan_of(self.tuner, &v.arch, self.batch, self.dtype, self.mode)?;
        let prog = CompiledModel::new(self.session, &v, self.batch, self.dtype, &lowering)?;
        let refs = [&self.base, &prog];
        let m = latency::measure(&refs, &Sampling { time_cap_s: self.time_cap_s, ..Sampling::default() }, &AtomicBool::new(false))?;
        if m.models.len() != 2 {
            return Err(Error::Interrupted { what: "measuring a latency-schedule candidate".into() });
        }
        Ok(m.models[1].run.p50 / m.models[0].run.p50)
    }
}

/// `b<batch> <lowering> <dtype> ...` of a [`Model::setting`]: the batch, lowering and dtype it
/// was measured with (`None` when the text is not of that form).
pub fn parse_setting(setting: &str) -> Option<(usize, Mode, DType)> {
    let mut w = setting.split_whitespace();
    let batch = w.next()?.strip_prefix('b')?.parse().ok()?;
    let mode = w.next()?.parse().ok()?;
    let dtype = w.next()?.parse().ok()?;
    Some((batch, mode, dtype))
}
