//! `tune`: time every conv lowering on each layer shape of a network and show the choices.

use std::path::PathBuf;

use clap::Args;

use super::device::DeviceArgs;
use crate::hlo::DType;
use crate::tune::{default_cache_path, RetuneBusy, StderrProgress, Tuner};
use crate::lower::{Lowering, ALL};
use crate::model::{checkpoint, program, Arch};

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Checkpoint whose layer shapes to tune; without it, the VGG-16 CIFAR form at --width.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Width multiplier of the CIFAR-form network tuned when no checkpoint is given.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Batch sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub batch: Vec<usize>,
    /// Compute dtype.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// Measure again even where the cache has a decision (the cache is updated).
    #[arg(long)]
    pub force: bool,
    /// Measure again the choices the cache flags as made on a busy machine, whatever the load
    /// now (by default they are re-tuned only when the machine is quiet).
    #[arg(long)]
    pub retune_busy: bool,
    /// Cache file (default: $PRUNEBENCH_CACHE_DIR/lowering.json, else ~/.cache/prunebench/).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn tune(a: &TuneArgs) -> anyhow::Result<()> {
    let arch = match &a.checkpoint {
        Some(p) => checkpoint::load(p)?.model.arch,
        None => Arch::cifar(a.width, 3, 10, vec![])?,
    };
    let session = a.device.open()?;
    let cache = a.cache.clone().or_else(default_cache_path);
    if a.force {
        if let Some(p) = &cache {
            let _ = std::fs::remove_file(p);
        }
    }
    let mut tuner = Tuner::new(&session, cache.clone())?;
    if a.retune_busy {
        tuner.retune_busy = RetuneBusy::Always;
    }
    println!("device: {}  cache: {}", session.describe(), cache.map(|p| p.display().to_string()).unwrap_or("none".into()));
    for &batch in &a.batch {
        let shapes = program::layer_shapes(&arch, batch, a.dtype)?;
        let plan = tuner.plan(&shapes, &mut StderrProgress)?;
        println!("batch {batch}:");
        let heads: Vec<String> = ALL.iter().map(|l| format!("{:>10}", format!("{l} ms"))).collect();
        println!("  {:<6} {:<30} {}  {:>8}  {:>6}  {:<8}  flags", "layer", "shape", heads.join(" "), "speed-up", "margin", "choice");
        for (i, (s, l)) in shapes.iter().zip(&plan).enumerate() {
            let d = tuner.cached(s).expect("tuned");
            let t = |k: &Lowering| d.seconds.get(k).map(|x| x * 1e3).unwrap_or(f64::NAN);
            // A lowering not offered for this shape (the kernel off the CPU or on big maps): "-".
            let cols: Vec<String> = ALL
                .iter()
                .map(|k| if t(k).is_nan() { format!("{:>10}", "-") } else { format!("{:>10.3}", t(k)) })
                .collect();
            let gain = t(&Lowering::Direct) / t(l);
            let margin = d.margin.map(|m| format!("{m:.2}x")).unwrap_or_else(|| "-".into());
            let flags = d.flags().unwrap_or_default();
            println!("  conv{:<2} {:<30} {}  {:>7.2}x  {margin:>6}  {l:<8}  {flags}", i, s.to_string(), cols.join(" "), gain);
        }
    }
    println!(
        "margin: the fastest other lowering's time / the chosen one's (below 1: a faster but more complex \
         lowering lost a near tie, within 5%, to a simpler one). Choices flagged busy are re-tuned when the \
         machine is quiet, or now with --retune-busy."
    );
    Ok(())
}
