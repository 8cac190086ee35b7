//! `run`: measure every variant of a suite file, one CSV row each.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use crate::suite::{self, Display, RunOptions, Shard, Suite};

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Suite file (YAML), e.g. suites/smoke.yaml. See docs/csv-schema.md for the output.
    pub suite: PathBuf,
    /// Write the CSV here instead of the suite's `output`.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Re-measure every variant, even those already in the CSV (the old file is kept as
    /// PATH.old). The pruned and fine-tuned networks saved in PATH.work/ are reused, so a
    /// re-measurement on a quieter machine does not fine-tune again; add --fresh for that.
    #[arg(long)]
    pub force: bool,
    /// With --force: also delete PATH.work/ first, so every network is pruned and fine-tuned anew.
    #[arg(long, requires = "force")]
    pub fresh: bool,
    /// Re-measure variants whose earlier row is an error.
    #[arg(long)]
    pub retry_errors: bool,
    /// Validate the suite and list its variants without measuring anything.
    #[arg(long)]
    pub dry_run: bool,
    /// No progress bar or per-row lines.
    #[arg(long, short)]
    pub quiet: bool,
    /// Print a line `step VARIANT: STEP` on stderr as each step starts (prune, fine-tune i/n,
    /// train i/n, tune, compile, measure, eval) instead of a progress bar: a log that shows
    /// where a run was when it stopped (scripts/kill-trials.sh reads it).
    #[arg(long, conflicts_with = "quiet")]
    pub steps: bool,
    /// Run only shard K of N (0-based K, e.g. 0/4 ... 3/4): N hosts share one sweep with no
    /// coordination; each configuration lands in exactly one shard. Merge the CSVs with
    /// `prunebench merge`.
    #[arg(long, value_name = "K/N", conflicts_with = "shards")]
    pub shard: Option<Shard>,
    /// Run as one of N shards, taking K from the batch system: a Kubernetes Indexed Job
    /// (JOB_COMPLETION_INDEX) or a Slurm array (SLURM_ARRAY_TASK_ID; N may then also come from
    /// SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
}

fn shard(a: &RunArgs) -> anyhow::Result<Shard> {
    if let Some(s) = a.shard {
        return Ok(s);
    }
    match Shard::from_env(a.shards)? {
        Some(s) => Ok(s),
        None if a.shards.is_some() => {
            bail!("--shards needs JOB_COMPLETION_INDEX (Kubernetes) or SLURM_ARRAY_TASK_ID (Slurm) set; or give --shard K/N")
        }
        None => Ok(Shard::all()),
    }
}

pub fn run(a: &RunArgs) -> anyhow::Result<()> {
    let s = Suite::load(&a.suite)?;
    let shard = shard(a)?;
    if shard.count > 1 {
        eprintln!("{}: shard {shard}", s.name);
    }
    if a.dry_run {
        let variants = suite::in_shard(&s, suite::expand(&s), shard);
        for v in &variants {
            println!("{}", v.id);
        }
        eprintln!(
            "{}: {} variants ({} pruning configurations) -> {}",
            s.name,
            variants.len(),
            s.pruning.len(),
            a.out.as_ref().unwrap_or(&s.output).display()
        );
        return Ok(());
    }
    let stop = super::interrupt::stop_flag(
        "interrupted: a row being measured is finished and written; a network being trained, pruned or \
         fine-tuned stops after its current step (or compilation), and its variant writes no row and is redone on the next run",
    );
    let opts = RunOptions {
        out: a.out.clone(),
        force: a.force,
        fresh: a.fresh,
        retry_errors: a.retry_errors,
        display: match (a.quiet, a.steps) {
            (true, _) => Display::Quiet,
            (_, true) => Display::Steps,
            _ => Display::auto(),
        },
        shard,
    };
    let r = suite::run(&s, &opts, stop)?;
    eprintln!(
        "{}: {} measured, {} failed, {} already done, of {} variants in {:.1}s -> {}{}",
        s.name,
        r.outcome.ok,
        r.outcome.failed,
        r.skipped,
        r.planned,
        r.seconds,
        r.output.display(),
        if r.outcome.interrupted { " (interrupted; run again to continue)" } else { "" }
    );
    if r.outcome.interrupted {
        return Err(crate::Error::Interrupted { what: format!("suite {}: run the same command again to continue", s.name) }.into());
    }
    Ok(())
}
