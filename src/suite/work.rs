//! The work folder beside a suite's CSV (`<csv>.work/`): each pruned (and fine-tuned)
//! configuration and its accuracy, saved as soon as they exist, so a run resumed after a crash
//! or Ctrl-C reloads them instead of pruning, fine-tuning and evaluating again.
//!
//! Entries are keyed by a fingerprint: the SHA-256 of the suite file's SHA-256, the base
//! checkpoint file's SHA-256 (the given checkpoint, or the trained base as saved; none for a
//! seeded init, which the suite file names) and the configuration's id part, so an edited
//! suite, another checkpoint or a retrained base never reuses an entry. Per entry `<fp>` (its first 16 hex
//! digits): `<fp>.before.safetensors`, `<fp>.after.safetensors` (when fine-tuned) and
//! `<fp>.json` (kept channels, fine-tuning steps and seconds), the JSON written last; and
//! `<fp>.<dtype>.scores.json` per dtype evaluated. Every file is written atomically (a
//! temporary file renamed into place), so an entry is whole or absent. `run --force` reuses
//! the folder; `run --force --fresh` removes it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::bench::accuracy::Accuracy;
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::model::{checkpoint, Network};
use crate::util::write_atomic;

/// A pruning configuration made ready: the network before and after fine-tuning.
#[derive(Clone, Debug)]
pub struct Prepared {
    pub before: Network,
    pub after: Option<Network>,
    /// Kept channel indices per conv (`None` for the unpruned network).
    pub keep: Option<Vec<Vec<usize>>>,
    pub ft_steps: Option<usize>,
    pub ft_seconds: Option<f64>,
    /// The latency schedule's choice (its configurations only).
    pub latency: Option<LatencyChoice>,
}

/// What the latency schedule chose for a configuration, and for which setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyChoice {
    /// Target and the model's prediction, fractions of the unpruned latency.
    pub target: f64,
    pub predicted: f64,
    /// Measured while choosing (side by side with the unpruned network), when refined.
    pub measured: Option<f64>,
    /// The table's batch, lowering and dtype.
    pub batch: usize,
    pub lowering: String,
    #[serde(default = "f32_text")]
    pub dtype: String,
}

fn f32_text() -> String {
    "f32".into()
}

/// Accuracy before and after fine-tuning.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub before: Accuracy,
    pub after: Option<Accuracy>,
}

/// What `<fp>.json` holds.
#[derive(Serialize, Deserialize)]
struct Entry {
    fingerprint: String,
    keep: Option<Vec<Vec<usize>>>,
    ft_steps: Option<usize>,
    ft_seconds: Option<f64>,
    fine_tuned: bool,
    #[serde(default)]
    latency: Option<LatencyChoice>,
}

/// The work folder of one CSV.
#[derive(Clone, Debug)]
pub struct WorkDir {
    pub dir: PathBuf,
}

impl WorkDir {
    /// `<csv>.work/`.
    pub fn beside(csv: &Path) -> WorkDir {
        let mut name = csv.file_name().map(|n| n.to_os_string()).unwrap_or_default();
        name.push(".work");
        WorkDir { dir: csv.with_file_name(name) }
    }

    /// The fingerprint of a configuration (see the module docs).
    pub fn fingerprint(suite_sha256: &str, base_sha256: Option<&str>, config_key: &str) -> String {
        let text = format!("{suite_sha256}|{}|{config_key}", base_sha256.unwrap_or("-"));
        checkpoint::hex_sha256(text.as_bytes())
    }

    fn file(&self, fp: &str, suffix: &str) -> PathBuf {
        self.dir.join(format!("{}.{suffix}", &fp[..16.min(fp.len())]))
    }

    /// The saved configuration of `fp`; `None` when absent, incomplete or of another fingerprint.
    pub fn load_prepared(&self, fp: &str) -> Option<Prepared> {
        let e: Entry = serde_json::from_slice(&std::fs::read(self.file(fp, "json")).ok()?).ok()?;
        if e.fingerprint != fp {
            return None;
        }
        let before = checkpoint::load(&self.file(fp, "before.safetensors")).ok()?.model;
        let after = match e.fine_tuned {
            true => Some(checkpoint::load(&self.file(fp, "after.safetensors")).ok()?.model),
            false => None,
        };
        Some(Prepared { before, after, keep: e.keep, ft_steps: e.ft_steps, ft_seconds: e.ft_seconds, latency: e.latency })
    }

    /// Saves `p` under `fp`, the networks first and the JSON last.
    pub fn save_prepared(&self, fp: &str, p: &Prepared) -> Result<()> {
        let meta = BTreeMap::from([("prunebench.work.fingerprint".to_string(), fp.to_string())]);
        checkpoint::save(&self.file(fp, "before.safetensors"), &p.before, &meta)?;
        if let Some(a) = &p.after {
            checkpoint::save(&self.file(fp, "after.safetensors"), a, &meta)?;
        }
        let e = Entry {
            fingerprint: fp.into(),
            keep: p.keep.clone(),
            ft_steps: p.ft_steps,
            ft_seconds: p.ft_seconds,
            fine_tuned: p.after.is_some(),
            latency: p.latency.clone(),
        };
        self.write_json(&self.file(fp, "json"), &e)
    }

    /// The saved accuracy of `fp` in `dtype`.
    pub fn load_scores(&self, fp: &str, dtype: DType) -> Option<Scores> {
        let (saved_fp, s): (String, Scores) =
            serde_json::from_slice(&std::fs::read(self.file(fp, &format!("{dtype}.scores.json"))).ok()?).ok()?;
        (saved_fp == fp).then_some(s)
    }

    pub fn save_scores(&self, fp: &str, dtype: DType, s: &Scores) -> Result<()> {
        self.write_json(&self.file(fp, &format!("{dtype}.scores.json")), &(fp, s))
    }

    fn write_json(&self, path: &Path, v: &impl Serialize) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::invalid("work file", path.display(), e.to_string()))?;
        write_atomic(path, &bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Arch;

    #[test]
    fn saves_and_reloads_by_fingerprint() {
        let tmp = tempfile::tempdir().unwrap();
        let w = WorkDir::beside(&tmp.path().join("r.csv"));
        assert_eq!(w.dir, tmp.path().join("r.csv.work"));
        let fp = WorkDir::fingerprint("abc", None, "l1-uniform-0.5-r1");
        assert_ne!(fp, WorkDir::fingerprint("abd", None, "l1-uniform-0.5-r1"));
        assert_ne!(fp, WorkDir::fingerprint("abc", Some("f00"), "l1-uniform-0.5-r1"));
        assert!(w.load_prepared(&fp).is_none());
        let arch = Arch::cifar(0.0625, 1, 10, vec![]).unwrap();
        let p = Prepared {
            before: Network::init(&arch, 1),
            after: Some(Network::init(&arch, 2)),
            keep: Some(vec![vec![0, 2]; 13]),
            ft_steps: Some(3),
            ft_seconds: Some(1.5),
            latency: Some(LatencyChoice { target: 0.5, predicted: 0.48, measured: Some(0.51), batch: 1, lowering: "tuned".into(), dtype: "f32".into() }),
        };
        w.save_prepared(&fp, &p).unwrap();
        let q = w.load_prepared(&fp).unwrap();
        assert_eq!((q.keep, q.ft_steps, q.ft_seconds), (p.keep.clone(), Some(3), Some(1.5)));
        assert_eq!(q.latency, p.latency);
        assert_eq!(q.before, p.before);
        assert_eq!(q.after, p.after);
        // An entry without its JSON (a crash between the files) is absent.
        std::fs::remove_file(w.file(&fp, "json")).unwrap();
        assert!(w.load_prepared(&fp).is_none());
        let acc = Accuracy { images: 10, top1: 0.5, top5: 0.9, loss: 1.25 };
        let s = Scores { before: acc, after: None };
        w.save_scores(&fp, DType::F32, &s).unwrap();
        assert_eq!(w.load_scores(&fp, DType::F32), Some(s));
        assert_eq!(w.load_scores(&fp, DType::F64), None);
    }
}
