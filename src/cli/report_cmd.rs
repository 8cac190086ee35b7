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
    /// A reference result CSV of the same suite (e.g. the committed results/quickstart.csv):
    /// each speed-up is compared with the reference's (agrees when the 95% intervals overlap).
    #[arg(long, value_name = "CSV")]
    pub reference: Option<PathBuf>,
    /// Print the speed-up table (with the comparison, given --reference) to stdout.
    #[arg(long)]
    pub table: bool,
}

pub fn report(a: &ReportArgs) -> anyhow::Result<()> {
    let w = report::report_against(&a.csv, &a.out, a.reference.as_deref())?;
    if a.table {
        println!("{}", w.table);
        if let (Some(r), Some(t)) = (&a.reference, &w.tally) {
            println!("against {}: {t}", r.display());
        }
    }
    eprintln!(
        "{} rows read ({} plotted, {} not valid, {} errors listed) -> {} and {} plot files in {}",
        w.rows,
        w.plotted,
        w.not_valid,
        w.errors,
        w.summary.display(),
        w.plots.len(),
        a.out.display()
    );
    Ok(())
}
