//! Reports on result CSVs: `prunebench report` (tables and plots) and `prunebench merge`.
//!
//! - [`input`] reads CSVs by header name into [`Row`] (the columns the report needs).
//! - [`analysis`] finds baselines, speed-ups, the Pareto front, latency budgets, series labels.
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
}

/// Reads `csvs` and writes `summary.md` and the plots into `out`.
pub fn report(csvs: &[PathBuf], out: &Path) -> Result<Written> {
    if csvs.is_empty() {
        return Err(Error::invalid("report inputs", "(none)", "give at least one result CSV"));
    }
    let sources = input::load_all(csvs)?;
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let points = analysis::points(&sources);
    let mut plots = Vec::new();
    for c in plot::charts(&sources, &points) {
        plots.extend(plot::write(&c, out)?);
    }
    let names: Vec<String> =
        plots.iter().filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())).collect();
    let md = summary::markdown(&sources, &points, &names);
    let summary = out.join("summary.md");
    crate::util::write_atomic(&summary, md.as_bytes())?;
    let rows = sources.iter().map(|s| s.rows.len()).sum();
    let errors = sources.iter().flat_map(|s| &s.rows).filter(|r| !r.is_ok()).count();
    Ok(Written { summary, plots, rows, plotted: points.len(), errors })
}
