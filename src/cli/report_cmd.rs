//! `report`: tables and plots from result CSVs.

use std::path::PathBuf;

use clap::Args;

use crate::report;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Result CSVs (from `prunebench run` or `merge`). Several (e.g. one per device) share
    /// the plots, their series labelled by file name.
    #[arg(required = true, value_name = "CSV")]
    pub csv: Vec<PathBuf>,
    /// Folder for summary.md and the plots (SVG and PNG); created if missing.
    #[arg(long, short, value_name = "DIR")]
    pub out: PathBuf,
}

pub fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let w = report::report(&a.csv, &a.out)?;
    eprintln!(
        "{} rows read ({} plotted, {} errors listed) -> {} and {} plot files in {}",
        w.rows,
        w.plotted,
        w.errors,
        w.summary.display(),
        w.plots.len(),
        a.out.display()
    );
    Ok(())
}
