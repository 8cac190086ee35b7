//! Reading result CSVs for the report: by header name, into [`Row`], which mirrors only the
//! columns the report uses; other columns are ignored, so CSVs with extra columns (a newer
//! prunebench) still read. A bad row is an error naming the file and its line.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The columns of a result row that the report reads (see `src/suite/record.rs`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Row {
    pub suite: String,
    pub variant: String,
    pub method: String,
    pub schedule: String,
    pub ratio: String,
    /// A multiple (`8`) or `auto` (snapped on the measured staircase).
    pub round_to: Option<String>,
    pub control: String,
    pub lowering: String,
    /// `xla`, `onnxruntime`, `openvino` (empty in CSVs older than the runtimes axis: xla).
    pub runtime: String,
    pub dtype: String,
    pub batch: Option<usize>,
    pub device: String,
    pub platform: Option<String>,
    pub device_kind: Option<String>,
    pub channels: Option<String>,
    pub params: Option<u64>,
    pub macs: Option<u64>,
    pub latency_p50_ms: Option<f64>,
    /// 95% interval of the p50 (newer CSVs; see docs/csv-schema.md).
    pub latency_p50_ci_low_ms: Option<f64>,
    pub latency_p50_ci_high_ms: Option<f64>,
    /// Speed-up over the unpruned row of the same setting, with its 95% interval (newer CSVs;
    /// the report computes the speed-up itself, without interval, where absent).
    pub speedup: Option<f64>,
    pub speedup_ci_low: Option<f64>,
    pub speedup_ci_high: Option<f64>,
    /// The variant whose program measurement this row reports (rows sharing a program share it).
    pub measured_for: Option<String>,
    pub rounds: Option<u64>,
    /// `yes`, or the reasons the measurement is not valid, separated by `; `.
    pub valid: Option<String>,
    pub load_other_cpu: Option<f64>,
    pub load_steal: Option<f64>,
    pub argument_bytes: Option<i64>,
    pub output_bytes: Option<i64>,
    pub temp_bytes: Option<i64>,
    pub code_bytes: Option<i64>,
    /// Older CSVs: argument + output + 4 bytes (replaced by the two columns below).
    pub program_peak_bytes: Option<i64>,
    /// What PJRT's compiled memory statistics call peak (empty where not given).
    pub compiler_peak_bytes: Option<i64>,
    /// Argument + output + temporaries: the least one call must hold.
    pub program_min_bytes: Option<i64>,
    pub device_peak_bytes: Option<i64>,
    pub top1_before_ft: Option<f64>,
    pub top1_after_ft: Option<f64>,
    /// Test images the accuracy was measured on.
    #[serde(default)]
    pub eval_images: Option<u64>,
    /// The latency schedule's target (fraction of the unpruned latency); empty otherwise.
    #[serde(default)]
    pub latency_target: Option<f64>,
    pub status: String,
    pub error: Option<String>,
    /// Line of the row in its file (1 is the header).
    #[serde(skip)]
    pub line: u64,
}

/// Columns a file must have for the report to make sense of it.
const REQUIRED: &[&str] = &["variant", "method", "ratio", "status", "latency_p50_ms"];

impl Row {
    pub fn is_ok(&self) -> bool {
        self.status == "ok"
    }

    /// The unpruned network (method `none`, or every ratio 0).
    pub fn is_baseline(&self) -> bool {
        self.method == "none" || self.ratio.split_whitespace().all(|r| r.parse::<f64>() == Ok(0.0))
    }

    pub fn is_masked(&self) -> bool {
        self.control == "masked"
    }

    /// The fraction removed, where it is one number (not for per-layer `layers` schedules).
    /// The `ratio` as shown: the fraction removed, or `latency T` for the latency schedule
    /// (whose `ratio` column holds its target).
    pub fn ratio_text(&self) -> String {
        if self.schedule == "latency" { format!("latency {}", self.ratio) } else { self.ratio.clone() }
    }

    /// `round_to` for ordering: the multiple, `auto` after every number, absent as 1.
    pub fn round_to_order(&self) -> usize {
        match self.round_to.as_deref() {
            None => 1,
            Some(t) => t.parse().unwrap_or(usize::MAX),
        }
    }

    pub fn ratio_value(&self) -> Option<f64> {
        if self.is_baseline() {
            return Some(0.0);
        }
        if self.schedule == "latency" {
            return None; // its `ratio` is a latency target, not a fraction removed
        }
        let mut it = self.ratio.split_whitespace();
        let r = it.next()?.parse().ok()?;
        it.next().is_none().then_some(r)
    }

    /// Top-1 after fine-tuning where measured, else before.
    pub fn top1(&self) -> Option<f64> {
        self.top1_after_ft.or(self.top1_before_ft)
    }

    /// What the compiler plans for one run: arguments + outputs + temporaries + code.
    pub fn compiled_bytes(&self) -> Option<i64> {
        let parts = [self.argument_bytes, self.output_bytes, self.temp_bytes, self.code_bytes];
        parts.iter().any(Option::is_some).then(|| parts.iter().flatten().sum())
    }

    /// The device's peak in use where the plugin reports it, else the compiler's peak, else
    /// the least one call must hold (arguments + outputs + temporaries), else (older CSVs) the
    /// old `program_peak_bytes`.
    pub fn peak_bytes(&self) -> Option<i64> {
        self.device_peak_bytes.or(self.compiler_peak_bytes).or(self.program_min_bytes).or(self.program_peak_bytes)
    }

    /// Whether the measurement is valid: `Some(Ok(()))` for `yes`, `Some(Err(reasons))` for
    /// anything else, `None` where the CSV has no `valid` column (older CSVs: unknown).
    pub fn validity(&self) -> Option<std::result::Result<(), &str>> {
        let v = self.valid.as_deref()?.trim();
        if v.is_empty() {
            return None;
        }
        Some(if v == "yes" { Ok(()) } else { Err(v) })
    }

    /// Valid or unknown (only a `valid` cell other than `yes` makes a row not valid).
    pub fn valid_or_unknown(&self) -> bool {
        !matches!(self.validity(), Some(Err(_)))
    }

    /// The 95% interval of the p50 (ms), where the CSV gives it.
    pub fn p50_ci(&self) -> Option<(f64, f64)> {
        Some((self.latency_p50_ci_low_ms?, self.latency_p50_ci_high_ms?))
    }

    /// The 95% interval of the speed-up, where the CSV gives it.
    pub fn speedup_ci(&self) -> Option<(f64, f64)> {
        Some((self.speedup_ci_low?, self.speedup_ci_high?))
    }

    /// Which program measurement this row reports: `measured_for`, else its own variant.
    pub fn program(&self) -> &str {
        self.measured_for.as_deref().filter(|m| !m.is_empty()).unwrap_or(&self.variant)
    }
}

/// One input CSV.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    /// How series from this file are labelled (the file name without `.csv`).
    pub label: String,
    pub rows: Vec<Row>,
}

impl Source {
    pub fn ok(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.is_ok())
    }
}

/// Reads one result CSV.
pub fn load(path: &Path) -> Result<Source> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut source = parse(path, &text)?;
    source.label = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| path.display().to_string());
    Ok(source)
}

/// Reads several; labels that would collide get their folder added.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Source>> {
    let mut out: Vec<Source> = paths.iter().map(|p| load(p)).collect::<Result<_>>()?;
    let labels: Vec<String> = out.iter().map(|s| s.label.clone()).collect();
    let mut seen = HashSet::new();
    let dup: HashSet<&String> = labels.iter().filter(|l| !seen.insert(*l)).collect();
    for s in out.iter_mut() {
        if dup.contains(&s.label) {
            s.label = s.path.with_extension("").display().to_string();
        }
    }
    Ok(out)
}

/// Parses CSV text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Source> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let header = r.headers().map_err(|e| csv_error(path, &e))?.clone();
    let missing: Vec<&str> = REQUIRED.iter().copied().filter(|c| !header.iter().any(|h| h == *c)).collect();
    if !missing.is_empty() {
        return Err(Error::file(
            path,
            format!(
                "line 1: not a prunebench result CSV: column(s) {} missing (the header starts '{}')",
                missing.join(", "),
                header.iter().take(4).collect::<Vec<_>>().join(",")
            ),
        ));
    }
    let mut rows = Vec::new();
    for rec in r.records() {
        let rec = rec.map_err(|e| csv_error(path, &e))?;
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        let mut row: Row = rec.deserialize(Some(&header)).map_err(|e| {
            let msg = match e.kind() {
                csv::ErrorKind::Deserialize { err, .. } => {
                    let col = err.field().and_then(|i| header.get(i as usize)).map(|c| format!(" (column {c})")).unwrap_or_default();
                    format!("{}{col}", err.kind())
                }
                _ => e.to_string(),
            };
            Error::file(path, format!("line {line}: {msg}"))
        })?;
        row.line = line;
        rows.push(row);
    }
    Ok(Source { path: path.to_path_buf(), label: String::new(), rows })
}

fn csv_error(path: &Path, e: &csv::Error) -> Error {
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len} (a cut or malformed row?)")
        }
        _ => e.to_string(),
    };
    match e.position() {
        Some(p) => Error::file(path, format!("line {}: {msg}", p.line())),
        None => Error::file(path, msg),
    }
}
