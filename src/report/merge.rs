//! `prunebench merge`: joins the CSVs of a sharded (or resumed elsewhere) run into one.
//!
//! Rules:
//! - Every file must have the same header (the same columns in the same order) and every row
//!   the same `suite` as the first row read; `force` merges anyway (columns are then the
//!   union, in first-seen order, with empty cells where a file lacks one; rows are then keyed
//!   by suite and variant).
//! - Rows are de-duplicated by variant id (`suite` + `variant`). Of the rows of one variant an
//!   `ok` row beats an `error` row; between rows of the same status the later one wins (later
//!   on the command line, then later in its file), as `prunebench run --retry-errors` appends
//!   newer rows below older ones. The kept row takes the place of the variant's first row,
//!   so the output keeps the plan's order.
//! - Rows are copied cell for cell: nothing is re-formatted, columns the report does not know
//!   are kept.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// What a merge did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeStats {
    pub files: usize,
    pub rows_in: usize,
    /// Rows dropped because another row of the same variant was kept.
    pub duplicates: usize,
    /// Of those, `error` rows dropped for an `ok` row.
    pub errors_replaced: usize,
    pub rows_out: usize,
    pub ok_out: usize,
    pub errors_out: usize,
    /// Distinct `suite_sha256` values among the rows kept (more than one: the suite file was
    /// edited between the shards' runs).
    pub suite_versions: usize,
}

/// The merged table.
#[derive(Clone, Debug)]
pub struct Merged {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub stats: MergeStats,
}

fn col(header: &[String], name: &str, path: &Path) -> Result<usize> {
    header.iter().position(|h| h == name).ok_or_else(|| {
        Error::file(path, format!("line 1: no `{name}` column: not a prunebench result CSV"))
    })
}

/// Merges CSV texts (`(path, text)`, in command-line order).
pub fn merge_texts(inputs: &[(PathBuf, String)], force: bool) -> Result<Merged> {
    let mut header: Vec<String> = Vec::new();
    let mut suite: Option<(String, PathBuf, u64)> = None;
    // (suite, variant) -> index into rows
    let mut index: HashMap<(String, String), usize> = HashMap::new();
    // Each kept row as (column name -> value) in the merged header's terms.
    let mut rows: Vec<(Vec<String>, Vec<String>, bool)> = Vec::new(); // (this file's header, cells, ok)
    let mut stats = MergeStats { files: inputs.len(), ..MergeStats::default() };

    for (path, text) in inputs {
        let mut r = csv::Reader::from_reader(text.as_bytes());
        let h: Vec<String> = r
            .headers()
            .map_err(|e| Error::file(path, format!("line 1: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if h.is_empty() || h.iter().all(|c| c.is_empty()) {
            return Err(Error::file(path, "empty file: no header"));
        }
        let (ci_suite, ci_variant, ci_status) = (col(&h, "suite", path)?, col(&h, "variant", path)?, col(&h, "status", path)?);
        if header.is_empty() {
            header = h.clone();
        } else if h != header {
            if !force {
                let missing: Vec<&str> = header.iter().filter(|c| !h.contains(c)).map(String::as_str).collect();
                let extra: Vec<&str> = h.iter().filter(|c| !header.contains(c)).map(String::as_str).collect();
                let what = if missing.is_empty() && extra.is_empty() {
                    "the same columns in another order".to_string()
                } else {
                    format!("missing [{}], extra [{}]", missing.join(", "), extra.join(", "))
                };
                return Err(Error::file(
                    path,
                    format!(
                        "its columns differ from {}'s ({what}): written by another prunebench version? \
                         --force merges anyway, with the union of the columns",
                        inputs[0].0.display()
                    ),
                ));
            }
            for c in &h {
                if !header.contains(c) {
                    header.push(c.clone());
                }
            }
        }
        for rec in r.records() {
            let rec = rec.map_err(|e| match e.position() {
                Some(p) => Error::file(path, format!("line {}: {e}", p.line())),
                None => Error::file(path, e.to_string()),
            })?;
            let line = rec.position().map(|p| p.line()).unwrap_or(0);
            stats.rows_in += 1;
            let s = rec.get(ci_suite).unwrap_or("").to_string();
            match &suite {
                None => suite = Some((s.clone(), path.clone(), line)),
                Some((first, fp, fl)) if *first != s && !force => {
                    return Err(Error::file(
                        path,
                        format!(
                            "line {line}: a row of suite '{s}', but {}:{fl} is of suite '{first}'; \
                             merge one suite at a time, or --force",
                            fp.display()
                        ),
                    ));
                }
                _ => {}
            }
            let key = (s, rec.get(ci_variant).unwrap_or("").to_string());
            let ok = rec.get(ci_status) == Some("ok");
            let cells: Vec<String> = rec.iter().map(str::to_string).collect();
            match index.get(&key) {
                None => {
                    index.insert(key, rows.len());
                    rows.push((h.clone(), cells, ok));
                }
                Some(&i) => {
                    stats.duplicates += 1;
                    let kept_ok = rows[i].2;
                    if ok || !kept_ok {
                        if ok && !kept_ok {
                            stats.errors_replaced += 1;
                        }
                        rows[i] = (h.clone(), cells, ok);
                    } else {
                        // An error row after an ok one: the ok row stays.
                        stats.errors_replaced += 1;
                    }
                }
            }
        }
    }

    // Lay every row out in the merged header's column order.
    let out: Vec<Vec<String>> = rows
        .iter()
        .map(|(h, cells, _)| {
            if *h == header {
                return cells.clone();
            }
            header.iter().map(|c| h.iter().position(|x| x == c).map(|i| cells[i].clone()).unwrap_or_default()).collect()
        })
        .collect();
    stats.rows_out = out.len();
    stats.ok_out = rows.iter().filter(|r| r.2).count();
    stats.errors_out = stats.rows_out - stats.ok_out;
    if let Some(ci) = header.iter().position(|c| c == "suite_sha256") {
        stats.suite_versions = out.iter().map(|r| r[ci].as_str()).filter(|s| !s.is_empty()).collect::<BTreeSet<_>>().len();
    }
    Ok(Merged { header, rows: out, stats })
}

/// Merges the CSV files `inputs` into `out` (written whole to a temporary file beside it,
/// then renamed, so `out` may be one of the inputs).
pub fn merge_files(inputs: &[PathBuf], out: &Path, force: bool) -> Result<MergeStats> {
    if inputs.is_empty() {
        return Err(Error::invalid("merge inputs", "(none)", "give at least one CSV file"));
    }
    let texts: Vec<(PathBuf, String)> = inputs
        .iter()
        .map(|p| std::fs::read_to_string(p).map(|t| (p.clone(), t)).map_err(|e| Error::io(p, e)))
        .collect::<Result<_>>()?;
    let m = merge_texts(&texts, force)?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(&m.header).map_err(|e| Error::file(out, e.to_string()))?;
    for r in &m.rows {
        w.write_record(r).map_err(|e| Error::file(out, e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| Error::file(out, e.to_string()))?;
    crate::util::write_atomic(out, &bytes)?;
    Ok(m.stats)
}
