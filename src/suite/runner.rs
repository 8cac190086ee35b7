//! Runs a suite: builds every variant, measures it on its device and hands one record per
//! variant to the exporter as soon as it exists.
//!
//! Work is shared where results allow: the network is made once; each pruning configuration
//! is pruned (and fine-tuned) once, its masked twin reuses the physical one's channels and
//! fine-tuning; accuracy is evaluated once per configuration and dtype (an evaluation program
//! is reused by every configuration with the same shapes, its weights replaced with
//! `set_weights`). A failing variant becomes an error row and the run goes on. A set stop
//! flag (Ctrl-C) ends the run after the current row or timing round; a variant whose training
//! or fine-tuning it stops writes no row (the run names it; it is redone next run).
//!
//! Rows are timed a setting (device, dtype, batch) at a time, each distinct program once,
//! side by side with the unpruned program (see [`super::measure`]); a setting's rows are
//! written as soon as their chunk is measured, so a crash loses at most the rows of the
//! chunk in progress.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::config::{LatencyOptions, Suite, WeightsSource};
use super::control::masked_like;
use super::export::Exporter;
use super::host;
use super::plan::{PruneConfig, Variant};
use super::progress::{Progress, TuneProgress};
use super::measure::{self, Pending, Reference};
use super::record::{Record, Status};
use super::train::train;
use super::work::{LatencyChoice, Prepared, Scores, WorkDir};
use crate::bench::accuracy::{evaluate, Accuracy};
use crate::budget::{self, profile::Meter, RoundTo};
use crate::bench::latency;
use crate::bench::rounds::Stop;
use crate::data::{Dataset, Split};
use crate::error::Result;
use crate::hlo::DType;
use crate::lower::{self, Lowering, Mode};
use crate::tune::Tuner;
use crate::model::{checkpoint, counts, program, Network};
use crate::pjrt::DeviceChoice;
use crate::prune::{self, Control, ScoreContext};
use crate::runtime::{CompiledModel, Session};
use crate::engine::{self, Runtime};
use crate::bench::latency::{Timed, XlaTimed};

/// Metadata key of a suite-trained checkpoint: the training settings it was made with.
const META_TRAIN: &str = "prunebench.suite.train";

/// How a run ended.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Rows written.
    pub ok: usize,
    pub failed: usize,
    /// The stop flag ended the run before every variant was done.
    pub interrupted: bool,
}

/// A program ready to time: prunebench's on XLA, or the ONNX export loaded by another runtime.
enum Program {
    Xla(XlaTimed<CompiledModel>),
    Other(Box<dyn engine::Loaded>),
}

/// Compiled programs by shape set, least recently used dropped first.
struct Programs {
    cap: usize,
    entries: Vec<(String, CompiledModel)>,
}

impl Programs {
    /// The program for `model`'s shapes with `model`'s weights on the device, and whether it
    /// was compiled for an earlier variant.
    fn get(
        &mut self,
        session: &Session,
        model: &Network,
        batch: usize,
        dtype: DType,
        plan: &[Lowering],
    ) -> Result<(&CompiledModel, bool)> {
        let names: String = plan.iter().map(|l| l.name()).collect::<Vec<_>>().join(",");
        let key = format!("{}|b{batch}|{dtype}|{names}", model.arch.describe());
        let reused = match self.entries.iter().position(|(k, _)| *k == key) {
            Some(i) => {
                let mut e = self.entries.remove(i);
                e.1.set_weights(model)?;
                self.entries.push(e);
                true
            }
            None => {
                let m = CompiledModel::new(session, model, batch, dtype, plan)?;
                if self.entries.len() >= self.cap {
                    self.entries.remove(0);
                }
                self.entries.push((key, m));
                false
            }
        };
        Ok((&self.entries.last().expect("just pushed").1, reused))
    }
}

/// Per-device state.
struct DeviceState {
    choice: DeviceChoice,
    session: std::result::Result<Session, String>,
    programs: Programs,
}

pub struct Runner<'a> {
    suite: &'a Suite,
    /// The CSV written (the latency table's default place is beside it).
    output: std::path::PathBuf,
    stop: &'a AtomicBool,
    progress: &'a Progress,
    host_cpu: String,
    base: Option<std::result::Result<Rc<Network>, String>>,
    /// SHA-256 of the base network's checkpoint file (loaded or trained and saved); part of
    /// every work-folder fingerprint, so a retrained base never reuses older pruned networks.
    base_sha256: Option<String>,
    test: Option<std::result::Result<Rc<Dataset>, String>>,
    train: Option<std::result::Result<Rc<Dataset>, String>>,
    device: Option<DeviceState>,
    /// Prepared configurations (by config key), kept for the whole run: every setting's
    /// rows use them.
    prepared: HashMap<String, std::result::Result<Rc<Prepared>, String>>,
    scores: HashMap<(String, DType), std::result::Result<Scores, String>>,
    /// Where prepared configurations and their accuracy are saved for a resumed run.
    work: Option<WorkDir>,
    /// The latency schedule's table (once per run).
    latency_model: Option<std::result::Result<Rc<budget::Model>, String>>,
}

/// Runs `variants` of `suite`, writing each record to `out`. Stops between rows once `stop`
/// is set. With `work`, pruned (fine-tuned) configurations and their accuracy are saved there
/// and reloaded from there. `output` is the CSV's path.
pub fn run(
    suite: &Suite,
    variants: &[&Variant],
    out: &mut dyn Exporter,
    progress: &Progress,
    stop: &AtomicBool,
    work: Option<WorkDir>,
    output: &std::path::Path,
) -> Result<Outcome> {
    let mut r = Runner {
        suite,
        output: output.to_path_buf(),
        stop,
        progress,
        host_cpu: host::cpu_model(),
        base: None,
        base_sha256: None,
        test: None,
        train: None,
        device: None,
        prepared: HashMap::new(),
        scores: HashMap::new(),
        work,
        latency_model: None,
    };
    let mut outcome = Outcome::default();
    let all = super::plan::expand(suite);
    for group in measure::settings(variants) {
        if stop.load(Ordering::Relaxed) || !r.setting(&group, &all, out, &mut outcome)? {
            outcome.interrupted = true;
            break;
        }
    }
    out.finish()?;
    progress.finish();
    Ok(outcome)
}

impl Runner<'_> {
    /// Writes one finished row.
    fn write(&self, out: &mut dyn Exporter, mut rec: Record, outcome: &mut Outcome) -> Result<()> {
        rec.timestamp = host::timestamp();
        if rec.status == Status::Ok {
            if let Some(Ok(session)) = self.device.as_ref().map(|d| &d.session) {
                rec.device_peak_bytes = session.device.memory_stats().ok().flatten().and_then(|s| s.peak_bytes_in_use);
            }
            rec.host_peak_rss_bytes = host::peak_rss_bytes();
        }
        out.write(&rec)?;
        self.progress.row(&rec);
        match rec.status {
            Status::Ok => outcome.ok += 1,
            Status::Error => outcome.failed += 1,
        }
        Ok(())
    }

    /// The rows of one setting (device, dtype, batch): made ready one by one (error rows are
    /// written at once), then their distinct programs timed together in interleaved rounds,
    /// chunk by chunk, and each chunk's rows written as soon as it is measured. `all` is the
    /// suite's whole plan (to find the unpruned reference when its row is already done).
    /// `Ok(false)`: the stop flag interrupted the setting; its unwritten rows are not finished.
    fn setting(
        &mut self,
        group: &[&Variant],
        all: &[Variant],
        out: &mut dyn Exporter,
        outcome: &mut Outcome,
    ) -> Result<bool> {
        let mut rows: Vec<Pending> = Vec::new();
        for v in group {
            match self.pending(v, true) {
                Ok(p) => rows.push(p),
                // Interrupted inside a long step (training, fine-tuning): the row is not finished.
                Err(rec) if self.stop.load(Ordering::Relaxed) => {
                    let why = rec.error.as_deref().unwrap_or("interrupted");
                    self.progress.note(&format!("{} stopped ({why}): no row written; it is redone on the next run", v.id));
                    return Ok(false);
                }
                Err(rec) => self.write(out, *rec, outcome)?,
            }
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
        }
        // The unpruned reference of each runtime and lowering, measured even when its row is done.
        let mut labels: Vec<_> = rows.iter().map(|p| p.variant.engine_label()).collect();
        labels.dedup();
        for l in labels {
            if rows.iter().any(|p| p.baseline && p.variant.engine_label() == l) {
                continue;
            }
            let g = group[0];
            let reference = all.iter().find(|v| {
                self.suite.pruning[v.prune].is_baseline()
                    && (v.device, v.dtype, v.batch, v.engine_label()) == (g.device, g.dtype, g.batch, l)
            });
            if let Some(Ok(p)) = reference.map(|v| self.pending(v, false)) {
                rows.push(p);
            }
        }
        if rows.iter().all(|p| !p.write) {
            return Ok(true);
        }
        let session = match self.session(group[0].device) {
            Ok(s) => s,
            Err(e) => unreachable!("rows were made ready on this device: {e}"),
        };
        let (of_row, first) = measure::programs(&rows);
        let baselines: Vec<usize> = (0..first.len()).filter(|&p| rows[first[p]].baseline).collect();
        let mut done = vec![false; rows.len()];
        for chunk in measure::chunks(first.len(), &baselines, self.suite.program_cache) {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            // Compile the chunk's programs; a program that fails to compile fails its rows.
            let mut compiled: Vec<(usize, Program)> = Vec::new();
            for &p in &chunk {
                let row = &rows[first[p]];
                self.progress.step(&row.variant.id, "compile");
                let made = match row.variant.runtime {
                    Runtime::Xla => CompiledModel::new(&session, &row.model, row.variant.batch, row.variant.dtype, &row.plan)
                        .map(|m| Program::Xla(XlaTimed::new(m))),
                    rt => engine::load(rt, &row.model, row.variant.batch).map(Program::Other),
                };
                match made {
                    Ok(m) => compiled.push((p, m)),
                    Err(e) => {
                        let failing: Vec<usize> = (0..rows.len()).filter(|&r| of_row[r] == p && !done[r]).collect();
                        for r in failing {
                            done[r] = true;
                            if rows[r].write {
                                let rec = self.error_row(&rows[r], format!("compiling: {e}"));
                                self.write(out, rec, outcome)?;
                            }
                        }
                    }
                }
            }
            let n = compiled.len();
            self.progress.step(&rows[first[chunk[0]]].variant.id, &format!("measure {n} programs side by side"));
            let measured = {
                let mut timed: Vec<&mut dyn Timed> = compiled
                    .iter_mut()
                    .map(|(_, m)| match m {
                        Program::Xla(x) => x as &mut dyn Timed,
                        Program::Other(o) => o.timed(),
                    })
                    .collect();
                latency::measure_timed(&mut timed, &self.suite.sampling, self.stop)
            };
            if matches!(&measured, Ok(m) if m.stop == Stop::Interrupted) {
                return Ok(false);
            }
            let index = |p: usize| compiled.iter().position(|(q, _)| *q == p);
            for r in 0..rows.len() {
                let Some(i) = index(of_row[r]).filter(|_| !done[r]) else { continue };
                done[r] = true;
                if !rows[r].write {
                    continue;
                }
                let mut rec = rows[r].rec.clone();
                match &measured {
                    Ok(m) => {
                        let label = rows[r].variant.engine_label();
                        let reference = if rows[r].baseline {
                            Reference::Itself
                        } else {
                            let base = (0..rows.len()).find(|&b| rows[b].baseline && rows[b].variant.engine_label() == label);
                            match base.and_then(|b| index(of_row[b])) {
                                Some(b) if b == i => Reference::Itself,
                                Some(b) => Reference::Of(&m.models[b]),
                                None => Reference::Missing,
                            }
                        };
                        let measured_for = &rows[first[of_row[r]]].variant.id;
                        measure::fill(&mut rec, &m.models[i], m, measured_for, reference, &self.suite.rules, self.suite.sampling.seed);
                        let (seconds, version) = match &compiled[i].1 {
                            Program::Xla(x) => (x.model.compile_seconds, None),
                            Program::Other(o) => (o.load_seconds(), Some(o.version())),
                        };
                        rec.compile_s = Some((seconds * 1e6).round() / 1e6);
                        if version.is_some() {
                            rec.runtime_version = version;
                        }
                    }
                    Err(e) => rec = self.error_row(&rows[r], format!("measuring: {e}")),
                }
                self.write(out, rec, outcome)?;
            }
        }
        Ok(true)
    }

    /// A variant made ready for timing (pruned, fine-tuned, evaluated, its lowering planned),
    /// or its error row.
    fn pending(&mut self, v: &Variant, write: bool) -> std::result::Result<Pending, Box<Record>> {
        let cfg = self.suite.pruning[v.prune].clone();
        let mut rec = self.identity(v, &cfg);
        match self.ready(v, &cfg, &mut rec) {
            Ok((model, plan)) => Ok(Pending {
                variant: v.clone(),
                rec,
                model,
                plan,
                baseline: cfg.is_baseline(),
                masked: cfg.control == Control::Masked,
                write,
            }),
            Err(e) => Err(Box::new(self.failed(v, &cfg, rec, e))),
        }
    }

    /// The error row of `p`: its identity and device, the message.
    fn error_row(&self, p: &Pending, e: String) -> Record {
        let cfg = &self.suite.pruning[p.variant.prune];
        self.failed(&p.variant, cfg, p.rec.clone(), e)
    }

    fn failed(&self, v: &Variant, cfg: &PruneConfig, rec: Record, e: String) -> Record {
        Record {
            status: Status::Error,
            error: Some(e),
            platform: rec.platform,
            device_kind: rec.device_kind,
            plugin: rec.plugin,
            pjrt_api: rec.pjrt_api,
            ..self.identity(v, cfg)
        }
    }

    fn identity(&self, v: &Variant, cfg: &PruneConfig) -> Record {
        Record {
            suite: self.suite.name.clone(),
            variant: v.id.clone(),
            method: cfg.method_name().into(),
            schedule: cfg.schedule_name().into(),
            ratio: cfg.ratio_text(),
            round_to: cfg.round_to.to_string(),
            control: cfg.control.to_string(),
            lowering: if v.runtime == Runtime::Xla { v.lowering.name().into() } else { "-".into() },
            runtime: v.runtime.name().into(),
            dtype: v.dtype.to_string(),
            batch: v.batch,
            device: v.device.to_string(),
            prunebench_commit: host::COMMIT.into(),
            host_cpu: self.host_cpu.clone(),
            suite_sha256: self.suite.sha256.clone(),
            status: Status::Ok,
            ..Record::default()
        }
    }

    /// Opens the variant's device if it is not the current one.
    fn session(&mut self, choice: DeviceChoice) -> std::result::Result<Session, String> {
        if self.device.as_ref().map(|d| d.choice) != Some(choice) {
            self.device = None; // drop the old programs first
            self.progress.note(&format!("opening device {choice}"));
            let session = Session::open(choice, self.suite.plugin.as_deref()).map_err(|e| e.to_string());
            self.device = Some(DeviceState {
                choice,
                session,
                programs: Programs { cap: self.suite.program_cache, entries: Vec::new() },
            });
        }
        self.device.as_ref().expect("opened above").session.clone()
    }

    /// Fills `rec` with everything but the measurement; the network to time and its plan.
    fn ready(
        &mut self,
        v: &Variant,
        cfg: &PruneConfig,
        rec: &mut Record,
    ) -> std::result::Result<(Rc<Network>, Vec<Lowering>), String> {
        let session = self.session(v.device)?;
        rec.platform = session.client.platform_name().ok();
        rec.device_kind = Some(session.device.kind().to_string());
        rec.plugin = Some(session.found.path.display().to_string());
        let (major, minor) = session.client.plugin().api_version();
        rec.pjrt_api = Some(format!("{major}.{minor}"));
        if v.runtime != Runtime::Xla {
            // ONNX Runtime and OpenVINO run on the CPU: timing them beside a GPU program, or
            // labelling them with its device, would mislead.
            if rec.platform.as_deref() != Some("cpu") {
                return Err(format!(
                    "{} runs on the CPU, but device {} opened {}; measure it in a suite with devices: [cpu]",
                    v.runtime,
                    v.device,
                    rec.platform.as_deref().unwrap_or("?")
                ));
            }
            rec.plugin = Some(engine::find_library(v.runtime).map_err(|e| e.to_string())?.display().to_string());
        }

        let prepared = self.prepared(&session, cfg, &v.id)?;
        let model = prepared.after.as_ref().unwrap_or(&prepared.before);
        rec.channels = Some(prune::group_channels(model).iter().map(|c| c.to_string()).collect::<Vec<_>>().join(" "));
        rec.params = Some(counts::params(&model.arch));
        rec.macs = Some(counts::macs(&model.arch));
        rec.finetune_steps = prepared.ft_steps;
        if let Some(l) = &prepared.latency {
            rec.latency_target = Some(l.target);
            if v.batch == l.batch && v.runtime == Runtime::Xla && v.lowering.name() == l.lowering && v.dtype.to_string() == l.dtype {
                rec.predicted_fraction = Some((l.predicted * 1e5).round() / 1e5);
            }
        }
        rec.finetune_s = prepared.ft_seconds;

        if let Some(s) = self.scores(&session, cfg, &prepared, v)? {
            rec.eval_images = Some(s.before.images);
            rec.top1_before_ft = Some(s.before.top1);
            rec.top5_before_ft = Some(s.before.top5);
            rec.loss_before_ft = Some(s.before.loss);
            if let Some(a) = s.after {
                rec.top1_after_ft = Some(a.top1);
                rec.top5_after_ft = Some(a.top5);
                rec.loss_after_ft = Some(a.loss);
            }
        }

        if let Some(s) = &self.suite.inject_failure {
            if v.id.contains(s.as_str()) {
                return Err(format!("injected failure for testing (suite key inject_failure: {s})"));
            }
        }
        if v.runtime != Runtime::Xla {
            // The runtime compiles the ONNX export its own way: no lowering plan.
            rec.lowering_plan = Some("-".into());
            return Ok((Rc::new(model.clone()), Vec::new()));
        }
        let plan = self.lowering_plan(&session, &model.arch, v.batch, v.dtype, v.lowering, &v.id)?;
        rec.lowering_plan = Some(plan.iter().map(|l| &l.name()[..1]).collect());
        Ok((Rc::new(model.clone()), plan))
    }

    fn lowering_plan(
        &self,
        session: &Session,
        arch: &crate::model::Arch,
        batch: usize,
        dtype: DType,
        mode: Mode,
        id: &str,
    ) -> std::result::Result<Vec<Lowering>, String> {
        let shapes = program::layer_shapes(arch, batch, dtype).map_err(|e| e.to_string())?;
        if let Some(p) = lower::fixed_plan(mode, &shapes) {
            return Ok(p);
        }
        self.progress.step(id, "tune");
        let mut tuner = Tuner::open_default(session).map_err(|e| e.to_string())?;
        tuner.min_seconds = self.suite.tune_min_seconds;
        tuner.plan(&shapes, &mut TuneProgress { progress: self.progress, variant: id }).map_err(|e| e.to_string())
    }

    /// The suite's network: initialised, loaded, or trained (once per run).
    fn base(&mut self, session: &Session, id: &str) -> std::result::Result<Rc<Network>, String> {
        if let Some(b) = &self.base {
            return b.clone();
        }
        let made = match &self.suite.weights {
            WeightsSource::Init { seed } => Ok(Network::init(&self.suite.arch, *seed)),
            WeightsSource::Checkpoint { model, sha256, .. } => {
                self.base_sha256 = Some(sha256.clone());
                Ok((**model).clone())
            }
            WeightsSource::Train { settings, save } => {
                let trained = self.trained_base(session, settings, save, id);
                if trained.is_ok() {
                    // The file just saved or reused: its hash names this base's weights.
                    self.base_sha256 = std::fs::read(save).ok().map(|b| checkpoint::hex_sha256(&b));
                }
                trained
            }
        };
        if made.is_err() && self.stop.load(Ordering::Relaxed) {
            return made.map(Rc::new); // interrupted: try again on the next run
        }
        let b = made.map(Rc::new);
        self.base = Some(b.clone());
        b
    }

    fn trained_base(
        &mut self,
        session: &Session,
        settings: &super::config::TrainSettings,
        save: &std::path::Path,
        id: &str,
    ) -> std::result::Result<Network, String> {
        let fingerprint = format!("{} | {} | limit {:?}", settings.fingerprint(), self.suite.dataset, self.suite.train_limit);
        if save.is_file() {
            if let Ok(ck) = checkpoint::load(save) {
                if ck.model.arch == self.suite.arch && ck.meta.get(META_TRAIN) == Some(&fingerprint) {
                    self.progress.note(&format!("reusing the trained network {}", save.display()));
                    return Ok(ck.model);
                }
            }
        }
        let data = self.train_set()?;
        let init = Network::init(&self.suite.arch, settings.seed);
        let total = settings.total_steps(data.n);
        self.progress.note(&format!("training from scratch: {total} steps of {} images", settings.batch));
        let norm = self.suite.dataset.normalize();
        let progress = self.progress;
        let every = (total / 10).max(1);
        let t = train(session, &init, &data, &norm, settings, self.stop, &mut |s, n, loss| {
            progress.step(id, &format!("train {s}/{n} loss {loss:.3}"));
            if s % every == 0 && s < n {
                progress.note(&format!("training: step {s}/{n}, loss {loss:.3}"));
            }
        })
        .map_err(|e| format!("training the base network: {e}"))?;
        self.progress.note(&format!("trained {} steps in {:.0}s, final loss {:.3}", t.steps, t.seconds, t.final_loss));
        let mut meta = std::collections::BTreeMap::new();
        meta.insert(META_TRAIN.to_string(), fingerprint);
        meta.insert("prunebench.origin".to_string(), format!("suite {} train", self.suite.name));
        checkpoint::save(save, &t.model, &meta).map_err(|e| format!("saving the trained network: {e}"))?;
        Ok(t.model)
    }

    /// The training split as [0, 1] pixels (batches are normalised after augmentation),
    /// loaded once.
    fn train_set(&mut self) -> std::result::Result<Rc<Dataset>, String> {
        if self.train.is_none() {
            self.train = Some(load_split(self.suite, Split::Train, self.suite.train_limit, false));
        }
        self.train.clone().expect("loaded above")
    }

    /// The test split, normalised, loaded once.
    fn test_set(&mut self) -> std::result::Result<Rc<Dataset>, String> {
        if self.test.is_none() {
            self.test = Some(load_split(self.suite, Split::Test, self.suite.eval_limit, true));
        }
        self.test.clone().expect("loaded above")
    }

    /// The configuration pruned (and fine-tuned), from the cache when possible.
    fn prepared(&mut self, session: &Session, cfg: &PruneConfig, id: &str) -> std::result::Result<Rc<Prepared>, String> {
        if let Some(p) = self.prepared.get(&cfg.key()) {
            return p.clone();
        }
        // Only physically pruned configurations are saved: the rest are cheap to remake.
        let saved = self.work.clone().filter(|_| !cfg.is_baseline() && cfg.control == Control::Physical);
        let fp = self.fingerprint(session, cfg, id);
        if let Some(p) = saved.as_ref().and_then(|w| w.load_prepared(&fp)) {
            self.progress.note(&format!("reusing {} from {}", cfg.key(), saved.as_ref().expect("some").dir.display()));
            let p = Ok(Rc::new(p));
            self.prepared.insert(cfg.key(), p.clone());
            return p;
        }
        let p = self.prepare(session, cfg, id).map(Rc::new);
        if let (Ok(p), Some(w)) = (&p, &saved) {
            if let Err(e) = w.save_prepared(&fp, p) {
                self.progress.note(&format!("could not save {} to the work folder: {e}", cfg.key()));
            }
        }
        if p.is_ok() || !self.stop.load(Ordering::Relaxed) {
            self.prepared.insert(cfg.key(), p.clone());
        }
        p
    }

    fn prepare(&mut self, session: &Session, cfg: &PruneConfig, id: &str) -> std::result::Result<Prepared, String> {
        let base = self.base(session, id)?;
        let Some(mut plan) = cfg.plan(&self.suite.prune_options) else {
            return Ok(Prepared { before: (*base).clone(), after: None, keep: None, ft_steps: None, ft_seconds: None, latency: None });
        };
        if cfg.control == Control::Masked {
            let phys = PruneConfig { control: Control::Physical, ..cfg.clone() };
            let p = self.prepared(session, &phys, id)?;
            let keep = p.keep.clone().expect("a pruned configuration has keep sets");
            let before = prune::mask(&base, &keep).map_err(|e| e.to_string())?;
            let after = match &p.after {
                Some(a) => Some(masked_like(&base, &keep, a).map_err(|e| e.to_string())?),
                None => None,
            };
            return Ok(Prepared { before, after, keep: Some(keep), ft_steps: p.ft_steps, ft_seconds: p.ft_seconds, latency: p.latency.clone() });
        }
        plan.control = Control::Physical;
        self.progress.step(id, "prune");
        let criterion = prune::find(&plan.criterion).map_err(|e| e.to_string())?;
        let (images, labels) = if criterion.needs() != prune::Needs::Weights {
            let data = self.train_set()?;
            let k = self.suite.prune_options.calibration_images.min(data.n);
            let mut images = data.take(k);
            self.suite.dataset.normalize().apply_dataset(&mut images).map_err(|e| e.to_string())?;
            let labels: Vec<i32> = images.labels.iter().map(|&l| l as i32).collect();
            (Some(images), labels)
        } else {
            (None, Vec::new())
        };
        let ctx = match &images {
            Some(d) => ScoreContext::with_labelled_data(session, &d.images, &labels, d.n, 32),
            None => ScoreContext::weights_only(),
        };
        let mut latency = None;
        if let prune::Schedule::Latency(target) = plan.schedule {
            let (schedule, choice) = self.latency_schedule(session, &base, &plan, &ctx, target, id)?;
            plan.schedule = schedule;
            latency = Some(choice);
        } else if cfg.round_to == RoundTo::Auto {
            let o = self.suite.prune_options.latency.clone().unwrap_or_default();
            let model = self.latency_model(session, &base, &o, id)?;
            let (_, snapped) = budget::snap_counts(&model, &base, &plan, &ctx).map_err(|e| format!("pruning: {e}"))?;
            plan.schedule = prune::Schedule::keeping(&snapped, &model.groups);
        }
        let pruned = prune::prune(&base, &plan, &ctx).map_err(|e| format!("pruning: {e}"))?;
        let (after, ft_steps, ft_seconds) = match &self.suite.finetune {
            None => (None, None, None),
            Some(ft) => {
                let data = self.train_set()?;
                let norm = self.suite.dataset.normalize();
                let progress = self.progress;
                let t = train(session, &pruned.model, &data, &norm, ft, self.stop, &mut |s, n, loss| {
                    progress.step(id, &format!("fine-tune {s}/{n} loss {loss:.3}"));
                })
                .map_err(|e| format!("fine-tuning: {e}"))?;
                (Some(t.model), Some(t.steps), Some((t.seconds * 1e3).round() / 1e3))
            }
        };
        Ok(Prepared { before: pruned.model, after, keep: Some(pruned.keep), ft_steps, ft_seconds, latency })
    }

    /// The latency schedule's per-group counts for `target` (as a schedule): solved on the
    /// suite's latency table and, with `refine`, measured against the unpruned network on this
    /// device.
    fn latency_schedule(
        &mut self,
        session: &Session,
        base: &Network,
        plan: &prune::Plan,
        ctx: &ScoreContext,
        target: f64,
        id: &str,
    ) -> std::result::Result<(prune::Schedule, LatencyChoice), String> {
        let o = self.suite.prune_options.latency.clone().unwrap_or_default();
        let model = self.latency_model(session, base, &o, id)?;
        let criterion = prune::find(&plan.criterion).map_err(|e| e.to_string())?;
        let scores = criterion.scores(base, &ScoreContext { seed: plan.seed, skip: &plan.skip, ..*ctx }).map_err(|e| e.to_string())?;
        self.progress.step(id, "latency schedule");
        let choice = if o.refine == 0 {
            budget::choose(&model, &scores, plan.min_channels, &plan.skip, target, None)
        } else {
            let mut tuner = Tuner::open_default(session).map_err(|e| e.to_string())?;
            tuner.min_seconds = self.suite.tune_min_seconds;
            let mut meter = Meter::new(base, session, &mut tuner, o.batch, o.dtype, o.lowering).map_err(|e| e.to_string())?;
            meter.time_cap_s = self.suite.sampling.time_cap_s.clamp(0.2, 10.0);
            let progress = self.progress;
            let mut measure = |k: &[usize]| {
                let f = meter.fraction(k)?;
                progress.step(id, &format!("latency schedule: measured {f:.3} of the unpruned"));
                Ok(f)
            };
            budget::choose(&model, &scores, plan.min_channels, &plan.skip, target, Some((o.refine, o.tolerance, &mut measure)))
        }
        .map_err(|e| format!("latency schedule: {e}"))?;
        let schedule = prune::Schedule::keeping(&choice.kept, &model.groups);
        let l = LatencyChoice {
            target,
            predicted: choice.predicted,
            measured: choice.measured,
            batch: o.batch,
            lowering: o.lowering.name().into(),
            dtype: o.dtype.to_string(),
        };
        Ok((schedule, l))
    }

    /// The suite's latency table: read from `o.table` (default beside the output CSV) or, when
    /// the file is missing, profiled on this device and written there (once per run).
    fn latency_model(&mut self, session: &Session, base: &Network, o: &LatencyOptions, id: &str) -> std::result::Result<Rc<budget::Model>, String> {
        if let Some(m) = &self.latency_model {
            return m.clone();
        }
        let path = o.table.clone().unwrap_or_else(|| budget::table_beside(&self.output));
        let want = format!("{} on {}", budget::setting_key(o.batch, o.lowering.name(), &o.dtype.to_string()), session.describe());
        let fix = "point pruning.latency.table at a table of this network and setting, or delete the file to profile again";
        let made = if path.exists() {
            budget::Model::read(&path).map_err(|e| format!("{e}; {fix}")).and_then(|m| {
                m.check_for(&base.arch).map_err(|e| format!("{}: {e}; {fix}", path.display()))?;
                if m.setting != want {
                    return Err(format!("the latency table {} was measured for '{}', the suite asks for '{want}'; {fix}", path.display(), m.setting));
                }
                Ok(m)
            })
        } else {
            self.progress.step(id, "profile (latency table)");
            let settings = budget::profile::Settings {
                batch: o.batch,
                lowering: o.lowering,
                dtype: o.dtype,
                grid: o.grid,
                calibrate: vec![1.0, 0.75, 0.5, 0.25],
                in_network: None,
            };
            let mut tuner = Tuner::open_default(session).map_err(|e| e.to_string())?;
            tuner.min_seconds = self.suite.tune_min_seconds;
            budget::profile::profile(base, session, &mut tuner, &settings)
                .map_err(|e| format!("profiling the latency table: {e}"))
                .and_then(|p| {
                    let text = serde_json::to_string_pretty(&p.model).map_err(|e| e.to_string())?;
                    crate::util::write_atomic(&path, text.as_bytes()).map_err(|e| e.to_string())?;
                    self.progress.note(&format!(
                        "wrote the latency table {} (its fit over the calibration widths: largest error {:.1}%{})",
                        path.display(),
                        p.fit_error * 100.0,
                        if p.fit_error > 0.15 { "; the latency schedule's measurements correct for it, refine 0 would not" } else { "" }
                    ));
                    Ok(p.model)
                })
        };
        let made = made.map(Rc::new);
        if made.is_ok() || !self.stop.load(Ordering::Relaxed) {
            self.latency_model = Some(made.clone());
        }
        made
    }

    /// Accuracy of the configuration in `v.dtype` (once per configuration and dtype).
    fn scores(
        &mut self,
        session: &Session,
        cfg: &PruneConfig,
        prepared: &Prepared,
        v: &Variant,
    ) -> std::result::Result<Option<Scores>, String> {
        if !self.suite.evaluates() {
            return Ok(None);
        }
        let key = (cfg.key(), v.dtype);
        if let Some(s) = self.scores.get(&key) {
            return s.clone().map(Some);
        }
        let fp = self.fingerprint(session, cfg, &v.id);
        if let Some(saved) = self.work.as_ref().and_then(|w| w.load_scores(&fp, v.dtype)) {
            self.scores.insert(key, Ok(saved.clone()));
            return Ok(Some(saved));
        }
        self.progress.step(&v.id, "eval");
        let s = self.evaluate_both(session, prepared, v);
        if let (Ok(s), Some(w)) = (&s, &self.work) {
            if let Err(e) = w.save_scores(&fp, v.dtype, s) {
                self.progress.note(&format!("could not save the accuracy of {} to the work folder: {e}", cfg.key()));
            }
        }
        self.scores.insert(key, s.clone());
        s.map(Some)
    }

    /// The work-folder fingerprint of `cfg` (suite file, base checkpoint file, configuration).
    /// Makes the base network first (its checkpoint's hash is part of the fingerprint); an
    /// error making it is the caller's to report when it makes the base itself.
    fn fingerprint(&mut self, session: &Session, cfg: &PruneConfig, id: &str) -> String {
        let _ = self.base(session, id);
        WorkDir::fingerprint(&self.suite.sha256, self.base_sha256.as_deref(), &cfg.key())
    }

    fn evaluate_both(&mut self, session: &Session, p: &Prepared, v: &Variant) -> std::result::Result<Scores, String> {
        let test = self.test_set()?;
        let batch = self.suite.eval_batch.min(test.n.max(1));
        let eval = |this: &mut Self, model: &Network| -> std::result::Result<Accuracy, String> {
            let plan = this.lowering_plan(session, &model.arch, batch, v.dtype, v.lowering, &v.id)?;
            let dev = this.device.as_mut().expect("session opened");
            let (m, _) = dev.programs.get(session, model, batch, v.dtype, &plan).map_err(|e| e.to_string())?;
            evaluate(m, &test).map_err(|e| format!("evaluating: {e}"))
        };
        let before = eval(self, &p.before)?;
        let after = match &p.after {
            Some(a) => Some(eval(self, a)?),
            None => None,
        };
        Ok(Scores { before, after })
    }
}

/// The first `limit` images of `split` of the suite's dataset, normalised or as [0, 1] pixels.
fn load_split(s: &Suite, split: Split, limit: Option<usize>, normalized: bool) -> std::result::Result<Rc<Dataset>, String> {
    let d = if normalized {
        s.dataset.load_normalized(split, s.arch.input, limit)
    } else {
        s.dataset.load_limited(split, s.arch.input, limit)
    };
    d.map(Rc::new).map_err(|e| e.to_string())
}
