//! A suite, validated: every value parsed and checked before any work starts, each error
//! naming the key, its line in the file and the fix.

use std::path::{Path, PathBuf};

use super::plan::PruneConfig;
use crate::budget::RoundTo;
use super::schema::{self, key_line, SuiteFile, TrainSpec};
use crate::bench::validity::Rules;
use crate::bench::{load, Sampling};
use crate::data::Source;
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::engine::Runtime;
use crate::lower::Mode;
use crate::model::{checkpoint, Arch, Form, Network};
use crate::pjrt::DeviceChoice;
use crate::prune::{self, Control, Needs, Schedule};
use crate::train::{Decay, LrSchedule, OptConfig};
use crate::util::{count_of, dedup, Rounding};

/// Where the network's weights come from.
#[derive(Clone, Debug)]
pub enum WeightsSource {
    /// Seeded He initialisation.
    Init { seed: u64 },
    /// A checkpoint, loaded during validation.
    Checkpoint { path: PathBuf, model: Box<Network>, sha256: String },
    /// Trained from scratch, saved at `save` and reused while its settings match.
    Train { settings: TrainSettings, save: PathBuf },
}

/// Validated training or fine-tuning settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainSettings {
    pub steps: Option<usize>,
    pub epochs: Option<f64>,
    pub batch: usize,
    pub lr: LrSchedule,
    pub opt: OptConfig,
    pub augment: bool,
    pub seed: u64,
}

impl TrainSettings {
    /// Steps for a training set of `n` images.
    pub fn total_steps(&self, n: usize) -> usize {
        match (self.steps, self.epochs) {
            (Some(s), _) => s,
            (None, Some(e)) => count_of(e, n, Rounding::Up).div_ceil(self.batch).max(1),
            (None, None) => n.div_ceil(self.batch).max(1),
        }
    }

    /// One line recorded with a trained checkpoint: equal lines mean equal settings.
    pub fn fingerprint(&self) -> String {
        format!("{self:?}")
    }
}

/// Pruning options shared by every configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneOptions {
    pub min_channels: usize,
    pub skip: Vec<usize>,
    pub seed: u64,
    pub calibration_images: usize,
    /// How the latency schedule measures (when the suite has one).
    pub latency: Option<LatencyOptions>,
}

/// The latency schedule's table and measurements (`pruning.latency`; defaults as in
/// `schema.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct LatencyOptions {
    /// The table; `None`: beside the output CSV (`<output stem>-latency-table.json`).
    pub table: Option<PathBuf>,
    pub batch: usize,
    pub lowering: Mode,
    pub dtype: DType,
    pub grid: usize,
    pub refine: usize,
    pub tolerance: f64,
}

impl Default for LatencyOptions {
    fn default() -> Self {
        LatencyOptions { table: None, batch: 1, lowering: Mode::Tuned, dtype: DType::F32, grid: 8, refine: 8, tolerance: 0.05 }
    }
}

/// A checked suite.
#[derive(Clone, Debug)]
pub struct Suite {
    pub name: String,
    pub path: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    pub output: PathBuf,
    pub arch: Arch,
    pub weights: WeightsSource,
    pub dataset: Source,
    /// `Some(0)`: no accuracy; `None`: the whole test split.
    pub eval_limit: Option<usize>,
    pub train_limit: Option<usize>,
    pub eval_batch: usize,
    /// Distinct pruning configurations, the unpruned network first.
    pub pruning: Vec<PruneConfig>,
    pub prune_options: PruneOptions,
    pub finetune: Option<TrainSettings>,
    pub devices: Vec<DeviceChoice>,
    pub plugin: Option<PathBuf>,
    pub dtypes: Vec<DType>,
    pub batches: Vec<usize>,
    pub lowerings: Vec<Mode>,
    pub baseline_lowerings: Vec<Mode>,
    /// Runtimes every variant is measured on: XLA (once per lowering) and the ONNX export on
    /// ONNX Runtime / OpenVINO.
    pub runtimes: Vec<Runtime>,
    /// How each setting's programs are timed (interleaved rounds).
    pub sampling: Sampling,
    /// What makes a row `valid`.
    pub rules: Rules,
    pub program_cache: usize,
    /// Seconds the autotuner times each candidate lowering per layer shape.
    pub tune_min_seconds: f64,
    pub inject_failure: Option<String>,
}

impl Suite {
    /// Reads, parses and validates the suite at `path`.
    pub fn load(path: &Path) -> Result<Suite> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let text = String::from_utf8(bytes.clone()).map_err(|_| Error::file(path, "not UTF-8 text"))?;
        let file = schema::parse(&text).map_err(|m| Error::file(path, m))?;
        let sha256 = checkpoint::hex_sha256(&bytes);
        Checker { path, text: &text }.suite(file, sha256)
    }

    /// Parses and validates suite text (errors name `path`; relative paths in the text are
    /// taken from the current folder).
    pub fn from_text(path: &Path, text: &str) -> Result<Suite> {
        let file = schema::parse(text).map_err(|m| Error::file(path, m))?;
        Checker { path, text }.suite(file, checkpoint::hex_sha256(text.as_bytes()))
    }

    /// Whether accuracy is measured.
    pub fn evaluates(&self) -> bool {
        self.eval_limit != Some(0)
    }
}

struct Checker<'a> {
    path: &'a Path,
    text: &'a str,
}

/// Every ratio in `[0, 1)`.
fn ratio_ok(r: f64) -> bool {
    (0.0..1.0).contains(&r)
}

const RATIO_FIX: &str = "a ratio is the fraction of channels removed, in [0, 1), e.g. 0.5";

impl Checker<'_> {
    /// `path: line N: key.path: message`.
    fn err(&self, key: &[&str], msg: impl std::fmt::Display) -> Error {
        let line = key_line(self.text, key).map(|l| format!("line {l}: ")).unwrap_or_default();
        Error::file(self.path, format!("{line}{}: {msg}", key.join(".")))
    }

    /// The list, or `default` when absent; an empty list is an error.
    fn axis<T: Clone>(&self, key: &[&str], v: Option<Vec<T>>, default: Vec<T>) -> Result<Vec<T>> {
        match v {
            None => Ok(default),
            Some(v) if v.is_empty() => {
                Err(self.err(key, "empty list; give at least one value or leave the key out for the default"))
            }
            Some(v) => Ok(v),
        }
    }

    fn parse_each<T: std::str::FromStr<Err = Error>>(&self, key: &[&str], v: &[String]) -> Result<Vec<T>> {
        v.iter()
            .map(|s| {
                s.parse::<T>().map_err(|e| match e {
                    Error::Invalid { value, fix, .. } => self.err(key, format!("'{value}': {fix}")),
                    other => self.err(key, other),
                })
            })
            .collect()
    }

    fn suite(&self, f: SuiteFile, sha256: String) -> Result<Suite> {
        let name = match &f.name {
            Some(n) if n.trim().is_empty() => return Err(self.err(&["name"], "empty; give the suite a name")),
            Some(n) => n.clone(),
            None => self.path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "suite".into()),
        };
        let output = f.output.clone().unwrap_or_else(|| PathBuf::from("results").join(format!("{name}.csv")));

        // Weights and architecture.
        let given: Vec<&str> = [("init", f.init.is_some()), ("checkpoint", f.checkpoint.is_some()), ("train", f.train.is_some())]
            .iter()
            .filter(|(_, g)| *g)
            .map(|(k, _)| *k)
            .collect();
        if given.len() != 1 {
            let what = if given.is_empty() { "none is given".to_string() } else { format!("{} are given", given.join(" and ")) };
            let key = given.get(1).copied().unwrap_or("model");
            return Err(self.err(
                &[key],
                format!("give exactly one weight source: `init: {{seed: 0}}`, `checkpoint: PATH` or `train: {{...}}`; {what}"),
            ));
        }
        let model_arch = f.model.as_ref().map(|m| self.arch(m)).transpose()?;
        let (arch, weights) = if let Some(p) = &f.checkpoint {
            if !p.is_file() {
                return Err(self.err(&["checkpoint"], format!("{} does not exist", p.display())));
            }
            let ck = checkpoint::load(p).map_err(|e| self.err(&["checkpoint"], e))?;
            if let Some(a) = &model_arch {
                if *a != ck.model.arch {
                    return Err(self.err(
                        &["model"],
                        format!(
                            "the checkpoint is {}, the model section says {}; remove the model section or make them agree",
                            ck.model.arch.describe(),
                            a.describe()
                        ),
                    ));
                }
            }
            let arch = ck.model.arch.clone();
            (arch, WeightsSource::Checkpoint { path: p.clone(), model: Box::new(ck.model), sha256: ck.sha256 })
        } else {
            let arch = model_arch.ok_or_else(|| {
                self.err(&["model"], "missing; describe the network (form, width, in_channels, classes) or give a checkpoint")
            })?;
            match (&f.init, &f.train) {
                (Some(i), _) => (arch, WeightsSource::Init { seed: i.seed }),
                (_, Some(t)) => {
                    let settings = self.train_settings("train", t)?;
                    let save = t.save.clone().unwrap_or_else(|| output.with_extension("base.safetensors"));
                    (arch, WeightsSource::Train { settings, save })
                }
                _ => unreachable!("exactly one weight source"),
            }
        };

        // Dataset.
        let d = &f.dataset;
        let dataset: Source = d.source.parse().map_err(|e: Error| self.err(&["dataset", "source"], e))?;
        if d.eval_batch == 0 {
            return Err(self.err(&["dataset", "eval_batch"], "0; use at least 1"));
        }

        // Pruning.
        let (pruning, prune_options, needs_data) = match &f.pruning {
            None => (vec![PruneConfig::baseline()], self.prune_options(None, &arch)?, false),
            Some(p) => self.pruning(p, &arch)?,
        };
        let finetune = match &f.finetune {
            None => None,
            Some(t) => {
                if t.save.is_some() {
                    return Err(self.err(&["finetune", "save"], "only `train` saves its network; remove this key"));
                }
                if f.pruning.is_none() {
                    return Err(self.err(&["finetune"], "there is nothing to fine-tune without a pruning section"));
                }
                Some(self.train_settings("finetune", t)?)
            }
        };
        let uses_data = self_uses_data(d.eval_limit, &weights, &finetune, needs_data);
        if uses_data {
            self.check_dataset(&dataset, &arch)?;
        }

        // Measurement.
        let m = &f.measure;
        let devices = self.axis(&["measure", "devices"], m.devices.clone(), vec!["auto".into()])?;
        let devices: Vec<DeviceChoice> = self.parse_each(&["measure", "devices"], &devices)?;
        if let Some(p) = &m.plugin {
            if !p.is_file() {
                return Err(self.err(&["measure", "plugin"], format!("{} does not exist", p.display())));
            }
        }
        let dtypes = self.axis(&["measure", "dtypes"], m.dtypes.clone(), vec!["f32".into()])?;
        let dtypes: Vec<DType> = self.parse_each(&["measure", "dtypes"], &dtypes)?;
        let batches = self.axis(&["measure", "batches"], m.batches.clone(), vec![1])?;
        if batches.contains(&0) {
            return Err(self.err(&["measure", "batches"], "0 is not a batch size; use 1 or more"));
        }
        let lowerings = self.axis(&["measure", "lowerings"], m.lowerings.clone(), vec!["tuned".into()])?;
        let lowerings: Vec<Mode> = self.parse_each(&["measure", "lowerings"], &lowerings)?;
        let baseline_lowerings: Vec<Mode> =
            self.parse_each(&["measure", "baseline_lowerings"], m.baseline_lowerings.as_deref().unwrap_or(&[]))?;
        let runtimes = self.axis(&["measure", "runtimes"], m.runtimes.clone(), vec!["xla".into()])?;
        let runtimes: Vec<Runtime> = self.parse_each(&["measure", "runtimes"], &runtimes)?;
        if runtimes.iter().any(|r| *r != Runtime::Xla) {
            if let Some(d) = devices.iter().find(|d| matches!(d, DeviceChoice::Gpu | DeviceChoice::Tpu)) {
                return Err(self.err(
                    &["measure", "devices"],
                    format!("{d} with runtimes onnxruntime/openvino, which run on the CPU; measure them in a suite with devices: [cpu]"),
                ));
            }
            if let Some(d) = dtypes.iter().find(|d| **d != DType::F32) {
                return Err(self.err(
                    &["measure", "dtypes"],
                    format!("{d} with runtimes onnxruntime/openvino, which measure the f32 ONNX export only; use dtypes: [f32]"),
                ));
            }
        }
        let def = Sampling::default();
        let sampling = Sampling {
            warmup: m.warmup.unwrap_or(def.warmup),
            calls_per_round: m.calls_per_round.unwrap_or(def.calls_per_round),
            min_rounds: m.min_rounds.unwrap_or(def.min_rounds),
            min_samples: m.min_iters.unwrap_or(def.min_samples),
            min_seconds: m.min_seconds.unwrap_or(def.min_seconds),
            target_ci: m.target_ci.unwrap_or(def.target_ci),
            time_cap_s: m.time_cap_s.unwrap_or(def.time_cap_s),
            max_samples: m.max_iters.unwrap_or(def.max_samples),
            seed: m.seed.unwrap_or(def.seed),
        };
        if sampling.min_samples == 0 {
            return Err(self.err(&["measure", "min_iters"], "0; use at least 1 timed call"));
        }
        if sampling.calls_per_round == 0 {
            return Err(self.err(&["measure", "calls_per_round"], "0; use at least 1 timed call per round"));
        }
        for (key, v) in [("min_seconds", sampling.min_seconds), ("time_cap_s", sampling.time_cap_s)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(self.err(&["measure", key], format!("{v}; use a finite value >= 0")));
            }
        }
        if sampling.target_ci.is_nan() || sampling.target_ci <= 0.0 {
            return Err(self.err(&["measure", "target_ci"], format!("{}; use a fraction > 0, e.g. 0.02 for +-2%", sampling.target_ci)));
        }
        if sampling.max_samples < sampling.min_samples {
            return Err(self.err(
                &["measure", "max_iters"],
                format!("{} is below min_iters {}", sampling.max_samples, sampling.min_samples),
            ));
        }
        let rules = Rules {
            min_samples: sampling.min_samples,
            target_ci: sampling.target_ci,
            busy_other_cpu: m.busy_other_cpu.unwrap_or(load::BUSY_OTHER_CPU),
            busy_steal: m.busy_steal.unwrap_or(load::BUSY_STEAL),
        };
        for (key, v) in [("busy_other_cpu", rules.busy_other_cpu), ("busy_steal", rules.busy_steal)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(self.err(&["measure", key], format!("{v}; use a fraction of CPU time between 0 and 1")));
            }
        }
        let program_cache = m.program_cache.unwrap_or(16);
        if program_cache == 0 {
            return Err(self.err(&["measure", "program_cache"], "0; keep at least 1 compiled program"));
        }
        let tune_min_seconds = m.tune_min_seconds.unwrap_or(0.2);
        if !(tune_min_seconds >= 0.0 && tune_min_seconds.is_finite()) {
            return Err(self.err(&["measure", "tune_min_seconds"], format!("{tune_min_seconds}; use a finite value >= 0")));
        }
        if let Some(s) = &f.inject_failure {
            if s.is_empty() {
                return Err(self.err(&["inject_failure"], "empty (it would fail every variant); remove the key"));
            }
        }

        Ok(Suite {
            name,
            path: self.path.to_path_buf(),
            sha256,
            output,
            arch,
            weights,
            dataset,
            eval_limit: d.eval_limit,
            train_limit: d.train_limit,
            eval_batch: d.eval_batch,
            pruning,
            prune_options,
            finetune,
            devices: dedup(devices),
            plugin: m.plugin.clone(),
            dtypes: dedup(dtypes),
            batches: dedup(batches),
            lowerings: dedup(lowerings),
            baseline_lowerings: dedup(baseline_lowerings),
            runtimes: dedup(runtimes),
            sampling,
            rules,
            program_cache,
            tune_min_seconds,
            inject_failure: f.inject_failure.clone(),
        })
    }

    fn arch(&self, m: &schema::ModelSpec) -> Result<Arch> {
        let form: Form = m.form.parse().map_err(|e: Error| self.err(&["model", "form"], e))?;
        let bad = |key: &str, e: Error| self.err(&["model", key], e);
        let arch = match form {
            Form::Cifar => {
                if m.batch_norm == Some(false) {
                    return Err(self.err(&["model", "batch_norm"], "the CIFAR form always has batch norm; remove the key"));
                }
                Arch::cifar(m.width, m.in_channels, m.classes, m.hidden.clone()).map_err(|e| bad("width", e))?
            }
            Form::Imagenet => {
                if !m.hidden.is_empty() {
                    return Err(self.err(&["model", "hidden"], "the ImageNet head is 4096-4096 scaled by width; remove the key"));
                }
                Arch::imagenet(m.width, m.in_channels, m.classes, m.batch_norm.unwrap_or(false)).map_err(|e| bad("width", e))?
            }
            other => {
                if !m.hidden.is_empty() {
                    return Err(self.err(&["model", "hidden"], format!("{other} has one dense layer after the global average pool; remove the key")));
                }
                if m.batch_norm == Some(false) {
                    return Err(self.err(&["model", "batch_norm"], format!("{other} always has batch norm; remove the key")));
                }
                Arch::new(other, m.width, m.in_channels, m.classes).map_err(|e| bad("width", e))?
            }
        };
        match m.input_size {
            Some([h, w]) => arch.with_input(h, w).map_err(|e| bad("input_size", e)),
            None => Ok(arch),
        }
    }

    fn train_settings(&self, section: &str, t: &TrainSpec) -> Result<TrainSettings> {
        let k = |key: &'static str| [section, key];
        if t.batch == 0 {
            return Err(self.err(&k("batch"), "0; use at least 1"));
        }
        if let Some(e) = t.epochs {
            if !(e > 0.0 && e.is_finite()) {
                return Err(self.err(&k("epochs"), format!("{e}; use a positive number of passes, e.g. 1 or 0.5")));
            }
        }
        if t.steps == Some(0) {
            return Err(self.err(&k("steps"), "0; use at least 1 step (or leave it out and give epochs)"));
        }
        if !(t.lr > 0.0 && t.lr.is_finite()) {
            return Err(self.err(&k("lr"), format!("{}; use a positive learning rate, e.g. 0.05", t.lr)));
        }
        let decay = match t.lr_schedule.as_str() {
            "cosine" => Decay::Cosine { final_lr: 0.0 },
            "constant" => Decay::Constant,
            other => return Err(self.err(&k("lr_schedule"), format!("'{other}'; use cosine or constant"))),
        };
        let opt = OptConfig { momentum: t.momentum, weight_decay: t.weight_decay, ..OptConfig::default() };
        opt.validate().map_err(|e| self.err(&[section], e))?;
        Ok(TrainSettings {
            steps: t.steps,
            epochs: t.epochs,
            batch: t.batch,
            lr: LrSchedule { base: t.lr, warmup_steps: t.warmup_steps, decay },
            opt,
            augment: t.augment,
            seed: t.seed,
        })
    }

    fn prune_options(&self, p: Option<&schema::PruningSpec>, arch: &Arch) -> Result<PruneOptions> {
        let Some(p) = p else {
            return Ok(PruneOptions { min_channels: 1, skip: vec![], seed: 0, calibration_images: 256, latency: None });
        };
        let g = arch.graph().map_err(|e| self.err(&["model"], e))?;
        let n = prune::targets(&g, &crate::graph::groups::groups(&g)).len();
        if let Some(&i) = p.skip.iter().find(|&&i| i >= n) {
            return Err(self.err(
                &["pruning", "skip"],
                format!("{i}: pruned-group indices run from 0 to {} (`prunebench info` lists them)", n.saturating_sub(1)),
            ));
        }
        let latency = match &p.latency {
            None => None,
            Some(l) => {
                let key = |k: &'static str| ["pruning", "latency", k];
                let lowering: Mode = l.lowering.parse().map_err(|_| self.err(&key("lowering"), format!("'{}'; use xla or tuned", l.lowering)))?;
                if !matches!(lowering, Mode::Xla | Mode::Tuned) {
                    return Err(self.err(&key("lowering"), format!("'{}'; use xla or tuned", l.lowering)));
                }
                let dtype: DType = l.dtype.parse().map_err(|_| self.err(&key("dtype"), format!("'{}'; use f32, bf16 or f64", l.dtype)))?;
                if l.batch == 0 || l.grid == 0 {
                    return Err(self.err(&key(if l.batch == 0 { "batch" } else { "grid" }), "0; use at least 1"));
                }
                if !(l.tolerance > 0.0 && l.tolerance < 1.0) {
                    return Err(self.err(&key("tolerance"), format!("{}; a relative miss in (0, 1), e.g. 0.05", l.tolerance)));
                }
                // A table given and present must fit the network now, not at run time.
                if let Some(path) = l.table.as_ref().filter(|p| p.exists()) {
                    let m = crate::budget::Model::read(path).map_err(|e| {
                        self.err(&key("table"), format!("{e}; or point it at a missing file to profile there"))
                    })?;
                    m.check_for(arch).map_err(|e| self.err(&key("table"), format!("{}: {e}", path.display())))?;
                    let want = crate::budget::setting_key(l.batch, lowering.name(), &dtype.to_string());
                    if !m.setting.starts_with(&format!("{want} ")) {
                        return Err(self.err(&key("table"), format!("{} was measured for '{}', not {want} (latency.batch, .lowering, .dtype)", path.display(), m.setting)));
                    }
                }
                Some(LatencyOptions { table: l.table.clone(), batch: l.batch, lowering, dtype, grid: l.grid, refine: l.refine, tolerance: l.tolerance })
            }
        };
        Ok(PruneOptions {
            min_channels: p.min_channels,
            skip: p.skip.clone(),
            seed: p.seed,
            calibration_images: p.calibration_images,
            latency,
        })
    }

    /// The distinct configurations (unpruned first), the options, and whether a criterion
    /// needs images.
    fn pruning(&self, p: &schema::PruningSpec, arch: &Arch) -> Result<(Vec<PruneConfig>, PruneOptions, bool)> {
        let opts = self.prune_options(Some(p), arch)?;
        let methods = p.methods.clone().ok_or_else(|| self.err(&["pruning"], "`methods` is missing; e.g. methods: [l1]"))?;
        let methods = self.axis(&["pruning", "methods"], Some(methods), vec![])?;
        let mut needs_data = false;
        for m in &methods {
            let c = prune::find(m).map_err(|_| {
                let names: Vec<&str> = prune::criteria().iter().map(|c| c.name()).collect();
                let hint = schema::closest(m, &names).map(|c| format!("did you mean `{c}`? ")).unwrap_or_default();
                self.err(&["pruning", "methods"], format!("unknown method '{m}'; {hint}valid: {}", names.join(", ")))
            })?;
            match c.needs() {
                Needs::Data | Needs::Gradients => needs_data = true,
                Needs::Weights => {}
            }
            if m == "bn-scale" && !arch.batch_norm {
                return Err(self.err(&["pruning", "methods"], "bn-scale ranks by BN gamma and this model has no batch norm"));
            }
        }
        if needs_data && opts.calibration_images == 0 {
            return Err(self.err(&["pruning", "calibration_images"], "0, but apoz / mean-activation / taylor score channels on (labelled) training images"));
        }
        if p.ratios.is_none() && p.layer_ratios.is_none() && p.latency_targets.is_none() {
            return Err(self.err(
                &["pruning"],
                "give `ratios: [0.5, ...]`, `layer_ratios: [[one ratio per pruned group], ...]` and/or `latency_targets: [0.5, ...]` (with schedules: [latency])",
            ));
        }
        let ratios = match &p.ratios {
            None => vec![],
            Some(r) => self.axis(&["pruning", "ratios"], Some(r.clone()), vec![])?,
        };
        for (i, &r) in ratios.iter().enumerate() {
            if !ratio_ok(r) {
                return Err(self.err(&["pruning", "ratios"], format!("entry {i} is {r}, out of range: {RATIO_FIX}")));
            }
        }
        let layer_ratios = match &p.layer_ratios {
            None => vec![],
            Some(l) => self.axis(&["pruning", "layer_ratios"], Some(l.clone()), vec![])?,
        };
        let groups = match layer_ratios.is_empty() {
            true => 0,
            false => {
                let g = arch.graph().map_err(|e| self.err(&["model"], e))?;
                prune::targets(&g, &crate::graph::groups::groups(&g)).len()
            }
        };
        for (i, l) in layer_ratios.iter().enumerate() {
            if l.len() != groups {
                return Err(self.err(
                    &["pruning", "layer_ratios"],
                    format!("list {i} has {} entries; give one ratio per pruned group ({groups}; `prunebench info` lists them)", l.len()),
                ));
            }
            if let Some((j, r)) = l.iter().enumerate().find(|(_, &r)| !ratio_ok(r)) {
                return Err(self.err(&["pruning", "layer_ratios"], format!("list {i}, conv {j}: {r} is out of range: {RATIO_FIX}")));
            }
        }
        let schedules = self.axis(&["pruning", "schedules"], p.schedules.clone(), vec!["uniform".into()])?;
        for s in &schedules {
            match s.as_str() {
                "uniform" | "global" | "latency" => {}
                "layers" => return Err(self.err(&["pruning", "schedules"], "per-layer ratios go in `layer_ratios`, not here")),
                other => return Err(self.err(&["pruning", "schedules"], format!("'{other}'; use uniform, global or latency"))),
            }
        }
        let latency = schedules.iter().any(|s| s == "latency");
        let targets = match (&p.latency_targets, latency) {
            (Some(t), true) => self.axis(&["pruning", "latency_targets"], Some(t.clone()), vec![])?,
            (None, true) => return Err(self.err(&["pruning", "latency_targets"], "missing: schedule `latency` needs targets, e.g. latency_targets: [0.7, 0.5]")),
            (Some(_), false) => return Err(self.err(&["pruning", "latency_targets"], "given, but `schedules` has no `latency`; add it: schedules: [uniform, latency]")),
            (None, false) => vec![],
        };
        if let Some((i, t)) = targets.iter().enumerate().find(|(_, &t)| !(t > 0.0 && t <= 1.0)) {
            return Err(self.err(&["pruning", "latency_targets"], format!("entry {i} is {t}; a fraction of the unpruned latency in (0, 1], e.g. 0.5")));
        }
        let auto = matches!(&p.round_to, Some(r) if r.iter().any(|x| matches!(x, schema::RoundToSpec::Word(w) if w == "auto")));
        if p.latency.is_some() && !latency && !auto {
            return Err(self.err(&["pruning", "latency"], "given, but neither `schedules` has `latency` nor `round_to` has `auto`"));
        }
        let round_to = self.axis(&["pruning", "round_to"], p.round_to.clone(), vec![schema::RoundToSpec::Multiple(1)])?;
        let round_to: Vec<RoundTo> = round_to
            .iter()
            .map(|r| match r {
                schema::RoundToSpec::Multiple(0) => Err(self.err(&["pruning", "round_to"], "0; use 1 (no rounding), a multiple such as 8, or auto")),
                schema::RoundToSpec::Multiple(n) => Ok(RoundTo::Multiple(*n)),
                schema::RoundToSpec::Word(w) if w == "auto" => Ok(RoundTo::Auto),
                schema::RoundToSpec::Word(w) => Err(self.err(&["pruning", "round_to"], format!("'{w}'; use a multiple such as 8, or auto"))),
            })
            .collect::<Result<_>>()?;
        let controls = self.axis(&["pruning", "controls"], p.controls.clone(), vec!["physical".into()])?;
        let controls: Vec<Control> = controls
            .iter()
            .map(|c| match c.as_str() {
                "physical" => Ok(Control::Physical),
                "masked" => Ok(Control::Masked),
                other => Err(self.err(&["pruning", "controls"], format!("'{other}'; use physical or masked"))),
            })
            .collect::<Result<_>>()?;

        let mut schedules_all: Vec<Schedule> = Vec::new();
        for s in &schedules {
            match s.as_str() {
                "latency" => schedules_all.extend(targets.iter().map(|&t| Schedule::Latency(t))),
                _ => schedules_all.extend(ratios.iter().map(|&r| if s == "global" { Schedule::Global(r) } else { Schedule::Uniform(r) })),
            }
        }
        schedules_all.extend(layer_ratios.into_iter().map(Schedule::Layers));
        let mut configs = vec![PruneConfig::baseline()];
        for m in &methods {
            for s in &schedules_all {
                for &r in &round_to {
                    for &c in &controls {
                        let cfg = PruneConfig::new(m, s.clone(), r, c);
                        if !configs.contains(&cfg) {
                            configs.push(cfg);
                        }
                    }
                }
            }
        }
        Ok((configs, opts, needs_data))
    }

    /// Checks the dataset can be found and fits the network (before any work starts).
    fn check_dataset(&self, source: &Source, arch: &Arch) -> Result<()> {
        let key = ["dataset", "source"];
        let channels = match source {
            Source::FashionMnist => {
                crate::data::fashion_mnist_dir().map_err(|e| self.err(&key, e))?;
                Some(1)
            }
            Source::Cifar10(d) | Source::Cifar100(d) | Source::Folder(d) => {
                if !d.is_dir() {
                    return Err(self.err(&key, format!("folder {} does not exist", d.display())));
                }
                (!matches!(source, Source::Folder(_))).then_some(3)
            }
        };
        if let Some(c) = channels {
            if arch.input[2] != c {
                return Err(self.err(
                    &["model", "in_channels"],
                    format!("{} but {source} images have {c} channel(s); set in_channels: {c}", arch.input[2]),
                ));
            }
        }
        Ok(())
    }
}

fn self_uses_data(eval_limit: Option<usize>, w: &WeightsSource, ft: &Option<TrainSettings>, needs_data: bool) -> bool {
    eval_limit != Some(0) || matches!(w, WeightsSource::Train { .. }) || ft.is_some() || needs_data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_become_steps_exactly() {
        let s = |epochs: f64, batch: usize| TrainSettings {
            steps: None,
            epochs: Some(epochs),
            batch,
            lr: LrSchedule::constant(0.01),
            opt: OptConfig::default(),
            augment: false,
            seed: 0,
        };
        // 0.07 of 100 images is 7 (7.000000000000001 in f64): one batch of 7, not two.
        assert_eq!(s(0.07, 7).total_steps(100), 1);
        assert_eq!(s(0.07, 6).total_steps(100), 2);
        assert_eq!(s(1.0, 32).total_steps(100), 4);
        assert_eq!(s(0.5, 10).total_steps(100), 5);
        assert_eq!(s(0.001, 32).total_steps(100), 1);
    }

    #[test]
    fn every_form_is_a_suite_model_and_vgg_keys_are_refused_by_key() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("suites/smoke.yaml")).unwrap();
        assert!(text.contains("form: vgg16-cifar"));
        for form in ["resnet20-cifar", "mobilenetv2-cifar"] {
            let t = text.replace("form: vgg16-cifar", &format!("form: {form}"));
            let s = Suite::from_text(&root.join("suites/smoke.yaml"), &t).unwrap();
            assert_eq!(s.arch.form.to_string(), form);
        }
        let t = text.replace("form: vgg16-cifar", "form: resnet20-cifar\n  hidden: [16]");
        let e = Suite::from_text(&root.join("suites/smoke.yaml"), &t).unwrap_err().to_string();
        assert!(e.contains("model.hidden") && e.contains("global average pool"), "{e}");
    }
}
