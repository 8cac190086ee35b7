//! `profile`: a network's latency table on this device: for every conv, its latency along its
//! output count and along its input count (each the count of a pruned group, on a grid), the
//! staircase each curve shows, and the whole network measured at a few uniform widths to fit
//! the model's scale and rest (`budget::Model::fit`). The
//! layer timings are the tuner's (each shape alone, cold weights) and cached with its
//! decisions per device, so a second profile of the same shapes measures nothing again.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::NetworkArgs;
use crate::budget::{self, profile::Settings};
use crate::lower::Mode;
use crate::tune::Tuner;

#[derive(Args, Debug)]
pub struct ProfileArgs {
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Images per call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Whose latency: xla (XLA's plain convolution) or tuned (the fastest lowering per shape).
    #[arg(long, default_value = "tuned")]
    pub lowering: Mode,
    /// Compute dtype (f32, bf16, f64): a table holds for the dtype it was measured in.
    #[arg(long, default_value = "f32")]
    pub dtype: crate::hlo::DType,
    /// Grid points per axis: counts `ceil(j * C / grid)` for j = 1..grid (plus every multiple
    /// of 8 up to 64 on each axis, where small layers step).
    #[arg(long, default_value_t = 8)]
    pub grid: usize,
    /// Uniform widths (kept fractions) at which the whole network is measured, side by side,
    /// to fit the model's scale and rest; the first should be 1 (the unpruned network).
    #[arg(long, value_delimiter = ',', default_value = "1,0.75,0.5,0.25")]
    pub calibrate: Vec<f64>,
    /// Also draw the staircase (latency against kept output channels, one line per conv) as
    /// staircase.svg and staircase.png in this folder.
    #[arg(long, value_name = "DIR")]
    pub plot: Option<PathBuf>,
    /// Also measure in-network curves: the whole network with one group at each of its
    /// worth-keeping counts, side by side; the prediction then adds each group's own change
    /// (first order). Measured here: better on ResNets at targets 0.9-0.7, worse on VGG-16 and
    /// far off at 0.5 (README, "Latency budgets").
    #[arg(long)]
    pub in_network: bool,
    /// In-network curves: at most this many counts per group (spread over its worth-keeping
    /// counts).
    #[arg(long, default_value_t = 6)]
    pub in_network_points: usize,
    /// Where to write the table (JSON: the latency model `prune --schedule latency` reads).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn profile(a: &ProfileArgs) -> anyhow::Result<()> {
    let net = a.net.network()?;
    let session = a.device.open()?;
    let mut tuner = Tuner::open_default(&session)?;
    let settings = Settings {
        batch: a.batch,
        lowering: a.lowering,
        dtype: a.dtype,
        grid: a.grid,
        calibrate: a.calibrate.clone(),
        in_network: a.in_network.then_some(a.in_network_points),
    };
    let p = budget::profile::profile(&net, &session, &mut tuner, &settings)?;
    let model = &p.model;
    println!("{}, batch {}, {} lowering, {}, on {}", net.describe(), a.batch, a.lowering, a.dtype, session.describe());
    println!(
        "whole network p50 {:.3} ms; its convs alone sum to {:.3} ms; fit over {} widths: scale {:.3}, rest {:+.3} ms, largest error {:.1}%",
        p.calibration[0].2 * 1e3,
        p.conv_sum * 1e3,
        p.calibration.len(),
        model.scale,
        model.rest * 1e3,
        p.fit_error * 100.0
    );
    if p.fit_error > 0.15 {
        println!(
            "note: the fit is off by {:.1}% at some width: `prune --schedule latency` measures its choices (--refine, on by default) to correct for that",
            p.fit_error * 100.0
        );
    }
    if let Some((n, t0, err)) = p.in_network {
        println!(
            "in-network curves: {n} variants measured (unpruned {:.3} ms in their rounds); the uniform widths, predicted \
             from them as fractions of the unpruned: largest error {:.1}%",
            t0 * 1e3,
            err * 100.0
        );
        for (f, k, t) in &p.calibration {
            println!("  width {f}: measured {:.3} of the unpruned, predicted {:.3}", t / p.calibration[0].2, model.predict(k) / t0);
        }
    } else {
        for (f, k, t) in &p.calibration {
            println!("  width {f}: measured {:.3} ms, model {:.3} ms", t * 1e3, model.predict(k) * 1e3);
        }
    }
    println!("staircase per conv (output count: where latency steps up; ms at full):");
    for l in &model.layers {
        let g = l.out_group.map(|g| format!("group {g}")).unwrap_or_else(|| "fixed".into());
        println!("  {:<24} {:<9} {:>4} out, {:>7.3} ms  steps at {:?}", l.node, g, l.cout, l.out.at(l.cout) * 1e3, l.out.steps());
    }
    let text = serde_json::to_string_pretty(model)?;
    crate::util::write_atomic(&a.out, text.as_bytes())?;
    println!("wrote {}", a.out.display());
    if let Some(dir) = &a.plot {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let title = format!("{} b{} {} {}: latency vs kept channels", net.arch.form, a.batch, a.lowering, a.dtype);
        for f in crate::report::plot::write(&crate::report::plot::staircase_chart(model, &title), dir)? {
            println!("wrote {}", f.display());
        }
    }
    Ok(())
}
