//! Reports on result CSVs: `prunebench report` (tables and plots) and `prunebench merge`.
//!
//! - [`input`] reads CSVs by header name into [`Row`] (the columns the report needs).
//! - [`analysis`] finds baselines, speed-ups, rows sharing a program, differences within
//!   noise, the Pareto front (valid rows), latency budgets, series labels.
//! - [`compare`] prints the speed-up table and compares it with a reference run.
//! - [`summary`] writes `summary.md`.
//! - [`plot`] draws the plots, as SVG and PNG.
//! - [`merge`] joins the CSVs of a sharded run.
//!
//! ```no_run
//! # use std::path::PathBuf;
//! let r = prunebench::report::report(&[PathBuf::from("results/smoke.csv")], "target/report".as_ref())?;
//! println!("{} rows -> {}", r.rows, r.summary.display());
//! # Ok::<(), prunebench::Error>(())
//! ```

pub mod analysis;
pub mod compare;
pub mod input;
pub mod merge;
pub mod plot;
pub mod summary;

use std::path::{Path, PathBuf};

pub use input::{Row, Source};
pub use merge::{merge_files, MergeStats};

use crate::error::{Error, Result};

/// What [`report`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub summary: PathBuf,
    /// Every plot file (SVG and PNG).
    pub plots: Vec<PathBuf>,
    /// Rows read, of them `ok` with a latency (plotted), and error rows.
    pub rows: usize,
    pub plotted: usize,
    pub errors: usize,
    /// Rows whose measurement is marked not valid.
    pub not_valid: usize,
    /// The speed-up table (markdown), with the reference's speed-ups and verdicts when a
    /// reference was given.
    pub table: String,
    /// The count of verdicts against the reference (`None` without one).
    pub tally: Option<String>,
}

/// Reads `csvs` and writes `summary.md` and the plots into `out`.
pub fn report(csvs: &[PathBuf], out: &Path) -> Result<Written> {
    report_against(csvs, out, None)
}

/// [`report`], and with `reference` (a result CSV of an earlier run of the same suite) the
/// comparison of every speed-up with the reference's ([`compare`]).
pub fn report_against(csvs: &[PathBuf], out: &Path, reference: Option<&Path>) -> Result<Written> {
    if csvs.is_empty() {
        return Err(Error::invalid("report inputs", "(none)", "give at least one result CSV"));
    }
    let sources = input::load_all(csvs)?;
    let ref_sources = reference.map(input::load).transpose()?.map(|s| vec![s]).unwrap_or_default();
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let points = analysis::points(&sources);
    let ref_points = analysis::points(&ref_sources);
    let comparisons = reference.map(|_| compare::compare(&points, &ref_points));
    let table = compare::table(&points, comparisons.as_deref());
    let tally = comparisons.as_deref().map(compare::tally);
    let mut plots = Vec::new();
    for c in plot::charts(&sources, &points) {
        plots.extend(plot::write(&c, out)?);
    }
    // The staircase of the first input whose suite left a latency table beside it.
    let staircase = sources.iter().find_map(|s| Some((s, crate::budget::Model::read(&crate::budget::table_beside(&s.path)).ok()?)));
    if let Some((s, model)) = staircase {
        let title = format!("{}: latency vs kept channels ({})", s.label, model.setting);
        plots.extend(plot::write(&plot::staircase_chart(&model, &title), out)?);
    }
    let names: Vec<String> =
        plots.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    let against = reference.zip(comparisons.as_deref());
    let md = summary::markdown(&sources, &points, &names, &table, against);
    let summary = out.join("summary.md");
    crate::util::write_atomic(&summary, md.as_bytes())?;
    let rows = sources.iter().map(|s| s.rows.len()).sum();
    let errors = sources.iter().flat_map(|s| &s.rows).filter(|r| !r.is_ok()).count();
    let not_valid = points.iter().filter(|p| !p.row.valid_or_unknown()).count();
    Ok(Written { summary, plots, rows, plotted: points.len(), errors, not_valid, table, tally })
}
