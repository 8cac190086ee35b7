//! `export`: a checkpoint as ONNX (for ONNX Runtime, OpenVINO, TensorRT, ...) or as a
//! StableHLO bundle (for XLA users).

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};

use super::device::DeviceArgs;
use super::model_cmds::resolve_plan;
use crate::export::{onnx, stablehlo, Exporter};
use crate::hlo::DType;
use crate::lower::{self, Mode};
use crate::model::{checkpoint, program};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One .onnx file: opset 17, NCHW input `input` [batch, C, H, W], output `logits`
    /// [batch, classes], dynamic batch.
    Onnx,
    /// A folder: program.mlir (the inference program, NHWC input, fixed batch),
    /// weights.safetensors (its weight arguments in order) and manifest.json.
    Stablehlo,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Checkpoint to export (any form, pruned or not).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Output format.
    #[arg(long, value_enum, default_value = "onnx")]
    pub format: Format,
    /// Output: the .onnx file, or the bundle's folder for stablehlo.
    #[arg(long)]
    pub out: PathBuf,
    /// onnx: fold each batch norm into the conv before it (`fold`, the weights prunebench's own
    /// programs run) or keep BatchNormalization nodes (`keep`).
    #[arg(long, default_value = "fold", value_parser = parse_bn)]
    pub bn: onnx::Bn,
    /// stablehlo: the program's batch size (StableHLO shapes are static).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// stablehlo: compute dtype, f32, bf16 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// stablehlo: how each conv is lowered: xla (plain convolution), im2col, winograd, or
    /// tuned (this device's tuning; refused where it picks prunebench's own CPU kernel).
    #[arg(long, default_value = "xla")]
    pub lowering: Mode,
    /// Device whose tuning decides `--lowering tuned`.
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn parse_bn(s: &str) -> Result<onnx::Bn, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

pub fn export(a: &ExportArgs) -> anyhow::Result<()> {
    if a.batch == 0 {
        bail!("invalid --batch 0: use at least 1");
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    let net = &ck.model;
    let exporter: Box<dyn Exporter> = match a.format {
        Format::Onnx => Box::new(crate::export::Onnx { bn: a.bn }),
        Format::Stablehlo => {
            let shapes = program::layer_shapes(&net.arch, a.batch, a.dtype)?;
            let plan = match lower::fixed_plan(a.lowering, &shapes) {
                Some(p) => p,
                None => resolve_plan(&a.device.open()?, &net.arch, a.batch, a.dtype, a.lowering)?,
            };
            Box::new(stablehlo::StableHlo { batch: a.batch, dtype: a.dtype, plan })
        }
    };
    let files = exporter
        .export(net, &a.out)
        .with_context(|| format!("exporting {} as {}", a.checkpoint.display(), exporter.format()))?;
    println!("{}: {}", exporter.format(), net.describe());
    for f in &files {
        let size = std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        println!("  wrote {} ({:.2} MB)", f.display(), size as f64 / 1e6);
    }
    if a.format == Format::Onnx {
        let [h, w, c] = net.arch.input;
        println!("  input 'input' [batch, {c}, {h}, {w}] float32 (NCHW), output 'logits' [batch, {}]", net.arch.classes);
    }
    Ok(())
}
