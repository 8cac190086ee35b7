//! `merge`: join the CSVs of a sharded run into one.

use std::path::PathBuf;

use clap::Args;

use crate::report;

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// Result CSVs, e.g. one per shard. Where several rows measure the same variant, an `ok`
    /// row beats an `error` row, and otherwise the later row (later file, later line) wins.
    #[arg(required = true, value_name = "CSV")]
    pub csv: Vec<PathBuf>,
    /// The merged CSV (may be one of the inputs: it is written only after all are read).
    #[arg(long, short, value_name = "PATH")]
    pub out: PathBuf,
    /// Merge files of different suites or different columns (the output then has the union
    /// of the columns).
    #[arg(long)]
    pub force: bool,
}

pub fn merge(a: &MergeArgs) -> anyhow::Result<()> {
    let s = report::merge_files(&a.csv, &a.out, a.force)?;
    eprintln!(
        "merged {} files: {} rows in, {} duplicates dropped ({} error rows superseded by ok rows), {} rows out \
         ({} ok, {} error) -> {}",
        s.files,
        s.rows_in,
        s.duplicates,
        s.errors_replaced,
        s.rows_out,
        s.ok_out,
        s.errors_out,
        a.out.display()
    );
    if s.suite_versions > 1 {
        eprintln!("note: the rows come from {} different versions of the suite file (suite_sha256)", s.suite_versions);
    }
    Ok(())
}
