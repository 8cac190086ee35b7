//! A ranking study: find the candidate checkpoints, score each with every chosen measure on
//! the probe set, and, given the truth (accuracy after fine-tuning), score the rankings.
//!
//! Cost accounting: a row's `seconds` is what scoring that candidate with that measure alone
//! costs: compiling the features program, the forward pass over the probe set it reads, the
//! BN recalibration when it reads the recalibrated network, and its own numerics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

use super::features::FeatureModel;
use super::measure::{Measure, Probe, View};
use super::metrics::Quality;
use super::recal::{recalibrate, Recalibration};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::{checkpoint, Arch, Network};
use crate::runtime::Session;

/// How candidates are scored.
pub struct RankConfig {
    pub measures: Vec<&'static dyn Measure>,
    /// Batches of BN recalibration before scoring (0 = off).
    pub recalibrate_bn: usize,
    /// Images per compiled batch (forward and recalibration).
    pub batch: usize,
    pub dtype: DType,
}

impl RankConfig {
    /// Checks the combination: a measure that always reads the recalibrated network needs
    /// recalibration switched on.
    pub fn validate(&self) -> Result<()> {
        if self.measures.is_empty() {
            return Err(Error::invalid("measure list", "(empty)", "name at least one measure"));
        }
        if self.batch == 0 {
            return Err(Error::invalid("batch", 0, "use a batch size of at least 1"));
        }
        if self.recalibrate_bn == 0 {
            if let Some(m) = self.measures.iter().find(|m| m.view() == View::Recalibrated) {
                return Err(Error::invalid(
                    "measure",
                    m.name(),
                    "it scores the BN-recalibrated network: give --recalibrate-bn N (N > 0) or leave it out",
                ));
            }
        }
        Ok(())
    }

    /// The forward pass `m` reads in this run.
    pub fn view_of(&self, m: &dyn Measure) -> View {
        match m.view() {
            View::Scoring if self.recalibrate_bn > 0 => View::Recalibrated,
            View::Scoring => View::AsGiven,
            v => v,
        }
    }
}

/// One candidate checkpoint.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub path: PathBuf,
    pub model: Network,
}

impl Candidate {
    /// The name rows use: the path as given.
    pub fn name(&self) -> String {
        self.path.display().to_string()
    }
}

/// One row of RANK.csv.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreRow {
    pub checkpoint: String,
    pub measure: String,
    pub score: f64,
    pub seconds: f64,
}

/// `*` and `?` wildcards against a whole name.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..])),
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The checkpoint files `spec` names: a directory (its `*.safetensors`), a glob whose last
/// component has `*` / `?` (e.g. `runs/pruned/*-l1-*.safetensors`), or one file. Sorted.
pub fn find_candidates(spec: &str) -> Result<Vec<PathBuf>> {
    let p = Path::new(spec);
    let (dir, pattern) = if p.is_dir() {
        (p.to_path_buf(), "*.safetensors".to_string())
    } else if spec.contains(['*', '?']) {
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf();
        let pat = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if dir.to_string_lossy().contains(['*', '?']) {
            return Err(Error::invalid("candidates", spec, "wildcards are only supported in the file name, e.g. DIR/*.safetensors"));
        }
        (dir, pat)
    } else if p.is_file() {
        return Ok(vec![p.to_path_buf()]);
    } else {
        return Err(Error::file(p, "no such directory or file; give a directory of checkpoints or a glob like DIR/*.safetensors"));
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
        let e = e.map_err(|e| Error::io(&dir, e))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && glob_match(pattern.as_bytes(), name.as_bytes()) {
            out.push(if p.is_dir() { p.join(&name) } else { dir.join(&name) });
        }
    }
    out.sort();
    Ok(out)
}

/// Loads the candidates and checks that they can be ranked together: at least two, and the
/// same input shape and number of classes.
pub fn load_candidates(paths: &[PathBuf]) -> Result<Vec<Candidate>> {
    if paths.len() < 2 {
        return Err(Error::invalid(
            "candidates",
            format!("{} checkpoint(s)", paths.len()),
            "ranking needs at least 2 candidate checkpoints (a directory or glob of pruned variants)",
        ));
    }
    let mut out: Vec<Candidate> = Vec::with_capacity(paths.len());
    for p in paths {
        let model = checkpoint::load(p)?.model;
        if let Some(first) = out.first() {
            let (a, b): (&Arch, &Arch) = (&first.model.arch, &model.arch);
            if a.input != b.input || a.classes != b.classes {
                return Err(Error::invalid(
                    "candidate",
                    format!("{} ({:?} input, {} classes)", p.display(), b.input, b.classes),
                    format!(
                        "{} has {:?} input and {} classes; candidates must be variants of one network",
                        first.path.display(),
                        a.input,
                        a.classes
                    ),
                ));
            }
        }
        out.push(Candidate { path: p.clone(), model });
    }
    Ok(out)
}

/// Checks that `data` can score the candidates: not empty, and as many classes as outputs.
pub fn check_dataset(cands: &[Candidate], data: &Dataset) -> Result<()> {
    if data.n == 0 {
        return Err(Error::invalid("probe set", format!("{} (0 images)", data.name), "use --probe-size of at least a few hundred"));
    }
    if let Some(c) = cands.first() {
        if c.model.arch.classes != data.classes {
            return Err(Error::invalid(
                "dataset",
                format!("{} ({} classes)", data.name, data.classes),
                format!("the candidates have {} outputs (e.g. {})", c.model.arch.classes, c.path.display()),
            ));
        }
    }
    Ok(())
}

/// Forward-pass outputs of one candidate and what they cost.
struct Views {
    given: Option<(Probe, f64)>,
    recal: Option<(Probe, f64)>,
}

/// Scores one candidate with every measure of `cfg`: probe on `probe`, recalibration batches
/// from `train`, convs lowered by `plan`.
pub fn score_candidate(
    session: &Session,
    cand: &Candidate,
    probe: &Dataset,
    train: &Dataset,
    cfg: &RankConfig,
    plan: &[Lowering],
) -> Result<(Vec<ScoreRow>, Option<Recalibration>)> {
    let need = |v: View| cfg.measures.iter().any(|m| cfg.view_of(*m) == v);
    let t = Instant::now();
    let mut fm = FeatureModel::new(session, &cand.model, cfg.batch, cfg.dtype, plan)?;
    let compile = t.elapsed().as_secs_f64();
    let mut views = Views { given: None, recal: None };
    if need(View::AsGiven) {
        let t = Instant::now();
        let p = fm.probe(probe)?;
        views.given = Some((p, compile + t.elapsed().as_secs_f64()));
    }
    let mut recal_info = None;
    if need(View::Recalibrated) {
        let (v, r) = recalibrate(session, &cand.model, train, cfg.recalibrate_bn, cfg.batch, cfg.dtype, plan)?;
        let t = Instant::now();
        fm.set_weights(&v)?;
        let p = fm.probe(probe)?;
        views.recal = Some((p, compile + r.seconds + t.elapsed().as_secs_f64()));
        recal_info = Some(r);
    }
    let mut rows = Vec::with_capacity(cfg.measures.len());
    for m in &cfg.measures {
        let (p, cost) = match cfg.view_of(*m) {
            View::Recalibrated => views.recal.as_ref(),
            _ => views.given.as_ref(),
        }
        .expect("every needed view was computed");
        let t = Instant::now();
        let score = m.score(p).map_err(|e| Error::invalid("measure", m.name(), format!("scoring {}: {e}", cand.name())))?;
        rows.push(ScoreRow { checkpoint: cand.name(), measure: m.name().to_string(), score, seconds: cost + t.elapsed().as_secs_f64() });
    }
    Ok((rows, recal_info))
}

/// One row of the truth file.
#[derive(Clone, Debug, PartialEq)]
pub struct Truth {
    pub checkpoint: String,
    pub top1_after: f64,
    pub finetune_seconds: Option<f64>,
}

/// Reads a truth CSV: columns `checkpoint` (path or file name) and `top1_after` (accuracy
/// after fine-tuning), optionally `finetune_seconds`; other columns are ignored.
pub fn read_truth(path: &Path) -> Result<Vec<Truth>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    parse_truth(path, &text)
}

/// Parses the text of a truth CSV read from `path` (see [`read_truth`]; errors name `path`
/// and the row).
pub fn parse_truth(path: &Path, text: &str) -> Result<Vec<Truth>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let headers = r.headers().map_err(|e| Error::file(path, e.to_string()))?.clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let (Some(ci), Some(ai)) = (col("checkpoint"), col("top1_after")) else {
        return Err(Error::file(
            path,
            format!("needs the columns 'checkpoint' and 'top1_after' (has: {})", headers.iter().collect::<Vec<_>>().join(", ")),
        ));
    };
    let fi = col("finetune_seconds");
    let mut out = Vec::new();
    for (line, rec) in r.records().enumerate() {
        let rec = rec.map_err(|e| Error::file(path, e.to_string()))?;
        let num = |i: usize, what: &str| -> Result<f64> {
            let s = rec.get(i).unwrap_or("").trim();
            s.parse::<f64>().map_err(|_| Error::file(path, format!("row {}: {what} '{s}' is not a number", line + 2)))
        };
        let finetune_seconds = match fi {
            Some(i) if !rec.get(i).unwrap_or("").trim().is_empty() => Some(num(i, "finetune_seconds")?),
            _ => None,
        };
        out.push(Truth { checkpoint: rec.get(ci).unwrap_or("").trim().to_string(), top1_after: num(ai, "top1_after")?, finetune_seconds });
    }
    Ok(out)
}

/// The truth row of each candidate: the row naming its path, else the row naming its file name.
pub fn match_truth(cands: &[Candidate], truth: &[Truth]) -> Vec<Option<Truth>> {
    let file = |s: &str| Path::new(s).file_name().map(|n| n.to_string_lossy().into_owned());
    cands
        .iter()
        .map(|c| {
            let name = c.name();
            truth
                .iter()
                .find(|t| t.checkpoint == name)
                .or_else(|| truth.iter().find(|t| file(&t.checkpoint).is_some() && file(&t.checkpoint) == file(&name)))
                .cloned()
        })
        .collect()
}

/// The ranking quality of every measure in `rows` against the candidates' truth (only
/// candidates with a truth row count; at least 2 must have one).
pub fn quality(measures: &[&dyn Measure], cands: &[Candidate], truth: &[Option<Truth>], rows: &[ScoreRow]) -> Result<Vec<Quality>> {
    let known: Vec<usize> = (0..cands.len()).filter(|&i| truth[i].is_some()).collect();
    if known.len() < 2 {
        return Err(Error::invalid(
            "truth",
            format!("{} of {} candidates matched", known.len(), cands.len()),
            "give top1_after for at least 2 candidates (column 'checkpoint' = path or file name)",
        ));
    }
    let y: Vec<f64> = known.iter().map(|&i| truth[i].as_ref().expect("known").top1_after).collect();
    let finetune: f64 = known
        .iter()
        .map(|&i| truth[i].as_ref().and_then(|t| t.finetune_seconds).unwrap_or(f64::NAN))
        .sum();
    let mut table: BTreeMap<(&str, String), &ScoreRow> = BTreeMap::new();
    for r in rows {
        table.insert((r.measure.as_str(), r.checkpoint.clone()), r);
    }
    let mut out = Vec::new();
    for m in measures {
        let mut x = Vec::with_capacity(known.len());
        let mut secs = 0.0;
        for &i in &known {
            let r = table.get(&(m.name(), cands[i].name())).ok_or_else(|| {
                Error::invalid("scores", format!("{} / {}", m.name(), cands[i].name()), "missing: every candidate must be scored")
            })?;
            x.push(r.score);
        }
        for c in cands {
            secs += table.get(&(m.name(), c.name())).map_or(0.0, |r| r.seconds);
        }
        out.push(Quality::compute(m.name(), &x, &y, secs, finetune));
    }
    Ok(out)
}

/// `RANK.csv` -> `RANK.quality.csv`.
pub fn quality_path(out: &Path) -> PathBuf {
    out.with_extension("quality.csv")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match(b"*.safetensors", b"a-l1-0.5.safetensors"));
        assert!(glob_match(b"*-l1-*.safetensors", b"a-l1-0.5.safetensors"));
        assert!(!glob_match(b"*-l2-*.safetensors", b"a-l1-0.5.safetensors"));
        assert!(glob_match(b"a?c", b"abc") && !glob_match(b"a?c", b"ac"));
        assert_eq!(quality_path(Path::new("out/RANK.csv")), PathBuf::from("out/RANK.quality.csv"));
    }
}
