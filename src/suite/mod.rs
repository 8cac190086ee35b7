//! Benchmark suites: a YAML file names a network, where its weights come from, the pruning
//! axes, fine-tuning, and the measurement axes; `prunebench run suites/NAME.yaml` builds every
//! variant, measures it on the PJRT device and appends one CSV row per variant.
//!
//! - [`schema`]: the file as written (unknown keys rejected with the closest valid one).
//! - [`config`]: the validated [`Suite`] (everything checked before any work starts).
//! - [`plan`]: the product of the axes, de-duplicated, with stable variant ids.
//! - [`runner`]: builds and measures; [`train`] holds the training stages.
//! - [`record`]: the one result [`Record`]; [`export`]: exporters behind [`Exporter`].
//!
//! ```no_run
//! # use std::sync::atomic::AtomicBool;
//! # use prunebench::suite::{self, RunOptions, Suite};
//! let s = Suite::load("suites/smoke.yaml".as_ref())?;
//! let summary = suite::run(&s, &RunOptions::default(), &AtomicBool::new(false))?;
//! println!("{} rows in {}", summary.outcome.ok, summary.output.display());
//! # Ok::<(), prunebench::Error>(())
//! ```

pub mod config;
pub mod control;
pub mod export;
pub mod host;
pub mod measure;
pub mod plan;
pub mod progress;
pub mod record;
pub mod runner;
pub mod schema;
pub mod shard;
pub mod train;
pub mod work;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

pub use config::Suite;
pub use export::{CsvExporter, Exporter};
pub use plan::{expand, Variant};
pub use progress::{Display, Progress};
pub use record::{Record, Status};
pub use runner::Outcome;
pub use shard::{select as in_shard, Shard};

use crate::error::Result;

/// Options of one run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// CSV path instead of the suite's `output`.
    pub out: Option<PathBuf>,
    /// Re-measure everything (the old CSV is kept as `PATH.old`); the pruned and fine-tuned
    /// networks saved in `PATH.work/` are reused (they are keyed by suite, base and
    /// configuration, so a stale one is never taken).
    pub force: bool,
    /// Also remove `PATH.work/` first, so every network is pruned and fine-tuned again.
    pub fresh: bool,
    /// Re-measure variants whose earlier row is an error (a new row is appended).
    pub retry_errors: bool,
    pub display: Display,
    /// Which share of the plan this process runs (see [`shard`]).
    pub shard: Shard,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { out: None, force: false, fresh: false, retry_errors: false, display: Display::Quiet, shard: Shard::all() }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Summary {
    pub output: PathBuf,
    /// Variants in the suite.
    pub planned: usize,
    /// Variants already in the CSV, not measured again.
    pub skipped: usize,
    /// Of the finished rows in the CSV, those made by another version of the suite file.
    pub stale: usize,
    pub outcome: Outcome,
    pub seconds: f64,
}

/// Runs `suite`, appending to its CSV and skipping variants already there.
pub fn run(suite: &Suite, opts: &RunOptions, stop: &AtomicBool) -> Result<Summary> {
    let start = Instant::now();
    let output = opts.out.clone().unwrap_or_else(|| suite.output.clone());
    let (mut csv, existing) = CsvExporter::open(&output, opts.force)?;
    let variants = in_shard(suite, expand(suite), opts.shard);
    let todo: Vec<&Variant> = variants
        .iter()
        .filter(|v| {
            let key = (suite.name.clone(), v.id.clone());
            !(existing.ok.contains(&key) || (!opts.retry_errors && existing.errors.contains(&key)))
        })
        .collect();
    let progress = Progress::new(todo.len(), opts.display);
    // Finished rows made by another version of the suite file are kept; say so before the run.
    let stale = existing.ok_sha256.iter().filter(|((name, _), sha)| *name == suite.name && **sha != suite.sha256).count();
    if stale > 0 {
        progress.note(&format!(
            "{stale} finished rows of {} were made by another version of this suite file; they are kept and not run again \
             (if the model, weights, data or measurement changed, re-run with --force or write elsewhere with --out)",
            output.display()
        ));
    }
    let work = work::WorkDir::beside(&output);
    if opts.fresh && work.dir.is_dir() {
        std::fs::remove_dir_all(&work.dir).map_err(|e| crate::Error::io(&work.dir, e))?;
    }
    let outcome = runner::run(suite, &todo, &mut csv, &progress, stop, Some(work), &output)?;
    Ok(Summary {
        output,
        planned: variants.len(),
        skipped: variants.len() - todo.len(),
        stale,
        outcome,
        seconds: start.elapsed().as_secs_f64(),
    })
}
