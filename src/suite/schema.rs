//! The suite file as written: serde structs that reject unknown keys, and the parse errors
//! that name the key, its line and the closest valid key.
//!
//! Every section and key, with its default (see also `suites/*.yaml`):
//!
//! ```yaml
//! name: smoke                 # default: the file name without extension
//! output: results/smoke.csv   # default: results/<name>.csv (relative to the current folder)
//! model:                      # required unless `checkpoint` is given (then it must match)
//!   form: vgg16-cifar         # vgg16-cifar | vgg16-imagenet | resnet20-cifar | resnet56-cifar |
//!                             # resnet18-imagenet | resnet50-imagenet | mobilenetv2-imagenet |
//!                             # mobilenetv2-cifar
//!   width: 1.0                # multiplier of every conv width, in (0, 4]
//!   in_channels: 3
//!   classes: 10
//!   hidden: []                # vgg16-cifar only: hidden dense widths
//!   batch_norm: true          # vgg16-imagenet only (every other form always has BN)
//!   input_size: [32, 32]      # H, W (VGG-16: multiples of 32); default by form
//! # Where the weights come from: exactly one of
//! init: {seed: 0}             # random (He) weights
//! checkpoint: path/to/model.safetensors
//! train: {epochs: 1, batch: 64, lr: 0.05, save: results/base.safetensors}   # see TrainSpec
//! dataset:
//!   source: fashion-mnist     # fashion-mnist | cifar10:DIR | cifar100:DIR | folder:DIR
//!   eval_limit: 200           # evaluate on the first N test images (folder: N seeded); 0 = no accuracy; default all
//!   train_limit: 10000        # train / fine-tune / calibrate on the first N training images
//!   eval_batch: 100
//! pruning:                    # absent: only the unpruned network
//!   methods: [l1, fpgm]       # criteria (prunebench prune --help)
//!   ratios: [0.3, 0.5]        # fractions removed, [0, 1); 0 = the unpruned network
//!   layer_ratios: []          # per-layer lists, one ratio per pruned group (VGG-16: 13; schedule `layers`)
//!   schedules: [uniform]      # uniform | global, for `ratios`; latency, for `latency_targets`
//!   round_to: [1, 8]          # kept counts up to a multiple; auto: snapped on the measured staircase
//!                             # (uses the latency table below; the latency schedule itself ignores it)
//!   controls: [physical, masked]
//!   min_channels: 1
//!   skip: []                  # pruned-group indices left untouched (VGG-16: conv indices; `prunebench info`)
//!   seed: 0                   # seed of the random criterion
//!   calibration_images: 256   # images for apoz / mean-activation / taylor
//!   latency_targets: [0.7, 0.5]   # schedule `latency`: fractions of the unpruned latency, (0, 1]
//!   latency:                  # how the latency schedule measures (all optional)
//!     table: results/x-latency-table.json   # default: the output CSV's path with
//!                             # `-latency-table.json`; profiled there when missing
//!     batch: 1                # batch and lowering of the table and of the measurements
//!     lowering: tuned         # xla | tuned
//!     dtype: f32              # f32 | bf16 | f64
//!     grid: 8                 # profile --grid
//!     refine: 8               # networks measured to meet the target (0: the table alone)
//!     tolerance: 0.05         # accepted relative miss of a measured network
//! finetune: {steps: 100, batch: 32, lr: 0.01}   # optional; see TrainSpec
//! measure:
//!   devices: [cpu]            # auto | cpu | gpu | tpu
//!   plugin: null              # explicit plugin path
//!   dtypes: [f32]             # f32 | bf16 | f64
//!   batches: [1, 32]
//!   lowerings: [tuned]        # xla | tuned | im2col | winograd
//!   baseline_lowerings: [xla] # extra lowerings measured for the unpruned network only
//!   runtimes: [xla]           # xla | onnxruntime | openvino (the ONNX export on the CPU, f32;
//!                             # lowerings apply to xla only)
//!   # Timing: the programs of one setting (device, dtype, batch) in interleaved rounds.
//!   warmup: 3                 # untimed calls of each program first
//!   calls_per_round: 3        # timed calls of each program per round (after 1 untimed)
//!   min_rounds: 4
//!   min_iters: 10             # at least this many samples of each program
//!   min_seconds: 0.0          # at least this many seconds of rounds per setting
//!   target_ci: 0.02           # stop once every p50's 95% interval is within +-2%...
//!   time_cap_s: 25            # ...or after this many seconds of rounds per setting
//!   max_iters: 100000         # samples of one program at most
//!   seed: 0                   # seed of the round order and of the speed-up bootstrap
//!   busy_other_cpu: 0.25      # valid only if other processes used at most this share of CPU
//!   busy_steal: 0.05          # ...and the hypervisor stole at most this share
//!   program_cache: 16         # compiled programs (weights on the device) kept for reuse
//!   tune_min_seconds: 0.2     # tuned lowering: seconds each candidate is timed per layer shape
//! inject_failure: null        # FOR TESTS ONLY: variants whose id contains this fail on purpose
//! ```

use std::path::PathBuf;

use serde::Deserialize;

/// The whole file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SuiteFile {
    pub name: Option<String>,
    pub output: Option<PathBuf>,
    pub model: Option<ModelSpec>,
    pub init: Option<InitSpec>,
    pub checkpoint: Option<PathBuf>,
    pub train: Option<TrainSpec>,
    #[serde(default)]
    pub dataset: DatasetSpec,
    pub pruning: Option<PruningSpec>,
    pub finetune: Option<TrainSpec>,
    #[serde(default)]
    pub measure: MeasureSpec,
    /// For tests only: every variant whose id contains this string fails at compile time
    /// with an "injected failure" error, so error rows can be tested without a broken plugin.
    pub inject_failure: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    #[serde(default = "default_form")]
    pub form: String,
    #[serde(default = "one")]
    pub width: f64,
    #[serde(default = "three")]
    pub in_channels: usize,
    #[serde(default = "ten")]
    pub classes: usize,
    #[serde(default)]
    pub hidden: Vec<usize>,
    pub batch_norm: Option<bool>,
    pub input_size: Option<[usize; 2]>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InitSpec {
    #[serde(default)]
    pub seed: u64,
}

/// Training from scratch (`train`) or fine-tuning after pruning (`finetune`): SGD with
/// momentum on the training split, f32, on the first measured device.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSpec {
    /// Passes over the training images (fractions allowed); or give `steps`.
    pub epochs: Option<f64>,
    /// Optimiser steps; overrides `epochs`.
    pub steps: Option<usize>,
    #[serde(default = "sixty_four")]
    pub batch: usize,
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// `cosine` (to 0) or `constant`, after `warmup_steps` of linear warm-up.
    #[serde(default = "default_lr_schedule")]
    pub lr_schedule: String,
    #[serde(default)]
    pub warmup_steps: usize,
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Random crop (padding 4) and horizontal flip.
    #[serde(default)]
    pub augment: bool,
    #[serde(default)]
    pub seed: u64,
    /// `train` only: where the trained network is saved, and reused on the next run when
    /// its recorded settings match (default: next to the output, `<output stem>.base.safetensors`).
    pub save: Option<PathBuf>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    #[serde(default = "default_source")]
    pub source: String,
    pub eval_limit: Option<usize>,
    pub train_limit: Option<usize>,
    #[serde(default = "hundred")]
    pub eval_batch: usize,
}

impl Default for DatasetSpec {
    fn default() -> Self {
        DatasetSpec { source: default_source(), eval_limit: None, train_limit: None, eval_batch: 100 }
    }
}

/// Axes are `Option<Vec<_>>` so that a key given as `[]` is an error, not the default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruningSpec {
    pub methods: Option<Vec<String>>,
    pub ratios: Option<Vec<f64>>,
    pub layer_ratios: Option<Vec<Vec<f64>>>,
    pub schedules: Option<Vec<String>>,
    pub round_to: Option<Vec<RoundToSpec>>,
    pub controls: Option<Vec<String>>,
    #[serde(default = "one_usize")]
    pub min_channels: usize,
    #[serde(default)]
    pub skip: Vec<usize>,
    #[serde(default)]
    pub seed: u64,
    #[serde(default = "two_fifty_six")]
    pub calibration_images: usize,
    pub latency_targets: Option<Vec<f64>>,
    pub latency: Option<LatencySpec>,
}

/// A `round_to` entry as written: a number or a word (`auto`).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum RoundToSpec {
    Multiple(usize),
    Word(String),
}

/// How the latency schedule measures (see `prunebench profile --help`, `prune --help`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LatencySpec {
    pub table: Option<PathBuf>,
    #[serde(default = "one_usize")]
    pub batch: usize,
    #[serde(default = "tuned")]
    pub lowering: String,
    #[serde(default = "f32_name")]
    pub dtype: String,
    #[serde(default = "eight")]
    pub grid: usize,
    #[serde(default = "eight")]
    pub refine: usize,
    #[serde(default = "five_percent")]
    pub tolerance: f64,
}

fn tuned() -> String {
    "tuned".into()
}

fn f32_name() -> String {
    "f32".into()
}

fn eight() -> usize {
    8
}

fn five_percent() -> f64 {
    0.05
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeasureSpec {
    pub devices: Option<Vec<String>>,
    pub plugin: Option<PathBuf>,
    pub dtypes: Option<Vec<String>>,
    pub batches: Option<Vec<usize>>,
    pub lowerings: Option<Vec<String>>,
    pub baseline_lowerings: Option<Vec<String>>,
    pub runtimes: Option<Vec<String>>,
    pub warmup: Option<usize>,
    pub min_iters: Option<usize>,
    pub min_seconds: Option<f64>,
    pub max_iters: Option<usize>,
    pub calls_per_round: Option<usize>,
    pub min_rounds: Option<usize>,
    pub target_ci: Option<f64>,
    pub time_cap_s: Option<f64>,
    pub seed: Option<u64>,
    pub busy_other_cpu: Option<f64>,
    pub busy_steal: Option<f64>,
    pub program_cache: Option<usize>,
    pub tune_min_seconds: Option<f64>,
}

fn default_form() -> String {
    "vgg16-cifar".into()
}
fn default_source() -> String {
    "fashion-mnist".into()
}
fn default_lr_schedule() -> String {
    "cosine".into()
}
fn one() -> f64 {
    1.0
}
fn one_usize() -> usize {
    1
}
fn three() -> usize {
    3
}
fn ten() -> usize {
    10
}
fn sixty_four() -> usize {
    64
}
fn hundred() -> usize {
    100
}
fn two_fifty_six() -> usize {
    256
}
fn default_lr() -> f64 {
    0.05
}
fn default_momentum() -> f64 {
    0.9
}
fn default_weight_decay() -> f64 {
    5e-4
}

/// Parses the text; a failure becomes one line naming the key path, the line and column,
/// and for an unknown key the closest valid one.
pub fn parse(text: &str) -> Result<SuiteFile, String> {
    serde_yaml_ng::from_str::<SuiteFile>(text).map_err(|e| {
        let mut msg = e.to_string();
        if let Some(hint) = unknown_key_hint(&msg) {
            msg.push_str(&hint);
        }
        msg
    })
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" message: "; did you mean `a`?"
/// when a valid key is close to `x`.
fn unknown_key_hint(msg: &str) -> Option<String> {
    if !msg.contains("unknown field") {
        return None;
    }
    let quoted: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    let (bad, valid) = quoted.split_first()?;
    let best = closest(bad, valid)?;
    Some(format!("; did you mean `{best}`?"))
}

/// The candidate nearest `word` by edit distance, if it is near enough to be a typo.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (edit_distance(&w, &c.to_ascii_lowercase()), *c))
        .filter(|(d, c)| *d <= (c.len().max(w.len()) / 3).max(2) || c.contains(w.as_str()) || w.contains(*c))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The 1-based line where the key at `path` (e.g. `["pruning", "ratios"]`) is written in
/// block style, or of its deepest ancestor found; `None` if not even the first is there.
pub fn key_line(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let mut start = 0;
    let mut parent_indent: isize = -1;
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let t = line.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = (line.len() - t.len()) as isize;
            if indent <= parent_indent {
                break; // left the parent's block
            }
            let t = t.trim_start_matches("- ");
            if indent > parent_indent && (t.starts_with(&format!("{key}:")) || t.starts_with(&format!("\"{key}\":"))) {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = Some(i + 1);
                start = i + 1;
                parent_indent = indent;
            }
            None => break,
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("ratio", "ratios"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest("ratio", &["methods", "ratios", "round_to"]), Some("ratios"));
        assert_eq!(closest("batchs", &["batches", "dtypes"]), Some("batches"));
        assert_eq!(closest("zzzzzz", &["batches", "dtypes"]), None);
    }

    #[test]
    fn unknown_key_names_line_and_suggestion() {
        let e = parse("name: x\npruning:\n  methods: [l1]\n  ratio: [0.5]\n").unwrap_err();
        assert!(e.contains("`ratio`") && e.contains("line 4") && e.contains("did you mean `ratios`?"), "{e}");
    }

    #[test]
    fn key_lines() {
        let t = "name: x\nmodel:\n  width: 1\npruning:\n  # c\n  methods: [l1]\n  ratios: [2]\nmeasure:\n  ratios: 1\n";
        assert_eq!(key_line(t, &["pruning", "ratios"]), Some(7));
        assert_eq!(key_line(t, &["model", "width"]), Some(3));
        assert_eq!(key_line(t, &["measure", "ratios"]), Some(9));
        assert_eq!(key_line(t, &["measure", "batches"]), Some(8));
        assert_eq!(key_line(t, &["dataset"]), None);
    }
}
