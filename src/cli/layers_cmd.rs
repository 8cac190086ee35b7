//! `layers`: where the time goes, per conv, on XLA and on ONNX Runtime: for each conv of a
//! network, XLA's plain convolution and the tuned lowering (the tuner's timings of the layer
//! alone, cold weights, from its cache) beside ONNX Runtime's kernel time for the same node
//! inside the whole network (its profiler, median over the profiled calls).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::device::DeviceArgs;
use super::model_cmds::NetworkArgs;
use crate::bench::latency::Timed;
use crate::engine::onnxruntime::{node_times, OrtModel};
use crate::export::onnx::{to_bytes, Bn};
use crate::hlo::DType;
use crate::graph::Op;
use crate::lower::Lowering;
use crate::model::{counts, program};
use crate::tune::{StderrProgress, Tuner};

#[derive(Args, Debug)]
pub struct LayersArgs {
    #[command(flatten)]
    pub net: NetworkArgs,
    /// Images per call.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Profiled ONNX Runtime calls (after 5 unprofiled-in-the-median warm-up calls).
    #[arg(long, default_value_t = 30)]
    pub calls: usize,
    /// CSV file to write the table to.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

const WARMUP: usize = 5;

pub fn layers(a: &LayersArgs) -> anyhow::Result<()> {
    if a.batch == 0 || a.calls == 0 {
        bail!("invalid --batch {} / --calls {}: use at least 1", a.batch, a.calls);
    }
    let net = a.net.network()?;
    let session = a.device.open()?;
    let shapes = program::layer_shapes(&net.arch, a.batch, DType::F32)?;
    let mut tuner = Tuner::open_default(&session)?;
    let plan = tuner.plan(&shapes, &mut StderrProgress)?;
    // ONNX Runtime, profiled.
    let dir = tempfile_dir()?;
    let bytes = to_bytes(&net, Bn::Fold)?;
    let mut ort = OrtModel::with_profile(&bytes, net.arch.input, net.arch.classes, a.batch, Some(&dir.join("ort")))?;
    let n = ort.input_len();
    ort.set_input(&(0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect::<Vec<_>>())?;
    for _ in 0..WARMUP + a.calls {
        ort.call()?;
    }
    let trace = ort.end_profiling()?;
    let nodes = node_times(&trace).with_context(|| format!("reading {}", trace.display()))?;
    let _ = std::fs::remove_dir_all(&dir);
    let median = |v: &[f64]| {
        let mut s: Vec<f64> = v.iter().skip(WARMUP.min(v.len().saturating_sub(1))).copied().collect();
        s.sort_by(f64::total_cmp);
        s[s.len() / 2]
    };
    let convs: Vec<&crate::graph::Node> = net.graph.nodes().iter().filter(|n| n.conv().is_some()).collect();
    // Each conv's ONNX Runtime node: ORT fuses a conv with the BN, ReLU and residual add after
    // it and names the fused node after the last of them (plus a suffix such as `_nchwc`).
    let mut used = vec![false; nodes.len()];
    let ort_of: Vec<Option<usize>> = convs
        .iter()
        .map(|c| {
            let mut chain = vec![c.name.clone()];
            let mut at = c.id;
            while let [only] = net.graph.consumers(at) {
                let n = net.graph.node(*only);
                if !matches!(n.op, Op::BatchNorm | Op::Relu | Op::Relu6 | Op::Add) {
                    break;
                }
                chain.push(n.name.clone());
                at = n.id;
            }
            let hit = chain.iter().rev().find_map(|name| {
                (0..nodes.len()).find(|&k| !used[k] && (nodes[k].node == *name || nodes[k].node.starts_with(&format!("{name}_"))))
            });
            if let Some(k) = hit {
                used[k] = true;
            }
            hit
        })
        .collect();
    let macs: Vec<u64> = counts::layers(&net.arch).iter().filter(|l| l.name.starts_with("conv")).map(|l| l.macs).collect();
    println!("{}, batch {}: XLA times are the tuner's (each conv alone, cold weights); onnxruntime's are its", net.describe(), a.batch);
    println!("profiler's kernel time of the node inside the network (median of {} calls; a fused node includes the ReLU / add after its conv)", a.calls);
    println!(
        "{:<22} {:>9} {:>11} {:>9} {:>10} {:>17} {:>12} {:>11}",
        "conv", "map", "channels", "MMACs", "xla ms", "tuned ms", "ort ms", "tuned/ort"
    );
    let mut rows = Vec::new();
    let (mut sx, mut st, mut so) = (0.0, 0.0, 0.0);
    for (i, c) in convs.iter().enumerate() {
        let d = tuner.cached(&shapes[i]);
        let direct = d.and_then(|d| d.seconds.get(&Lowering::Direct)).map(|s| s * 1e3);
        let tuned = d.and_then(|d| d.seconds.get(&plan[i])).map(|s| s * 1e3);
        let ort_ms = ort_of[i].map(|k| median(&nodes[k].us) / 1e3);
        let src = &net.graph.node(c.inputs[0]).dims;
        let spec = c.conv().expect("a conv");
        sx += direct.unwrap_or(0.0);
        st += tuned.unwrap_or(0.0);
        so += ort_ms.unwrap_or(0.0);
        let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "-".into());
        let ratio = match (tuned, ort_ms) {
            (Some(t), Some(o)) if o > 0.0 => format!("{:.2}", t / o),
            _ => "-".into(),
        };
        let map = format!("{}x{}", src[0], src[1]);
        let ch = format!("{}->{}{}", src[2], spec.out, if spec.groups > 1 { " dw" } else { "" });
        let mm = macs.get(i).map(|m| *m as f64 * a.batch as f64 / 1e6).unwrap_or(0.0);
        println!(
            "{:<22} {:>9} {:>11} {:>9.2} {:>10} {:>17} {:>12} {:>11}",
            c.name, map, ch, mm, f(direct), format!("{} {}", plan[i].name(), f(tuned)), f(ort_ms), ratio
        );
        rows.push([c.name.clone(), map, ch, format!("{mm:.3}"), f(direct), plan[i].name().to_string(), f(tuned), f(ort_ms)]);
    }
    let other: f64 = nodes.iter().zip(&used).filter(|(_, u)| !**u).map(|(t, _)| median(&t.us) / 1e3).sum();
    println!("{:<22} {:>9} {:>11} {:>9} {:>10.3} {:>17.3} {:>12.3} {:>11}", "sum of convs", "", "", "", sx, st, so, format!("{:.2}", st / so.max(1e-12)));
    println!("onnxruntime's other nodes (pools, dense, unfused adds, layout reorders): {other:.3} ms");
    if let Some(p) = &a.out {
        let mut w = csv::Writer::from_path(p).with_context(|| format!("writing {}", p.display()))?;
        w.write_record(["conv", "map", "channels", "mmacs", "xla_direct_ms", "tuned_lowering", "tuned_ms", "onnxruntime_ms"])?;
        for r in rows {
            w.write_record(r)?;
        }
        w.flush()?;
        println!("wrote {}", p.display());
    }
    Ok(())
}

/// A fresh folder for the profiler's trace.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("prunebench-layers-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}
