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
    /// onnx: fold each batch norm into the conv before it (`fold`, the default: the weights
    /// prunebench's own programs run) or keep BatchNormalization nodes (`keep`).
    #[arg(long, value_parser = parse_bn)]
    pub bn: Option<onnx::Bn>,
    /// stablehlo: the program's batch size (StableHLO shapes are static; default 1). The ONNX
    /// model has a dynamic batch.
    #[arg(long)]
    pub batch: Option<usize>,
    /// stablehlo: compute dtype, f32 (default), bf16 or f64. The ONNX model is f32.
    #[arg(long)]
    pub dtype: Option<DType>,
    /// stablehlo: how each conv is lowered: xla (plain convolution, the default; the manifest
    /// calls it `direct`), im2col, winograd, or tuned (this device's tuning; refused where it
    /// picks prunebench's own CPU kernel, which only runs inside prunebench).
    #[arg(long)]
    pub lowering: Option<Mode>,
    /// Device whose tuning decides `--lowering tuned`.
    #[command(flatten)]
    pub device: DeviceArgs,
}

fn parse_bn(s: &str) -> Result<onnx::Bn, String> {
    s.parse().map_err(|e: crate::Error| e.to_string())
}

pub fn export(a: &ExportArgs) -> anyhow::Result<()> {
    let (batch, dtype, lowering) = (a.batch.unwrap_or(1), a.dtype.unwrap_or(DType::F32), a.lowering.unwrap_or(Mode::Xla));
    if batch == 0 {
        bail!("invalid --batch 0: use at least 1");
    }
    match a.format {
        Format::Onnx if a.batch.is_some() || a.dtype.is_some() || a.lowering.is_some() => {
            bail!("--batch, --dtype and --lowering are for --format stablehlo; the ONNX model is f32 with a dynamic batch")
        }
        Format::Stablehlo if a.bn.is_some() => bail!("--bn is for --format onnx; the StableHLO program always folds BN"),
        Format::Stablehlo if a.out.is_file() => {
            bail!("--out {} is a file; the StableHLO bundle is a folder (program.mlir, weights.safetensors, manifest.json)", a.out.display())
        }
        _ => {}
    }
    let ck = checkpoint::load(&a.checkpoint)?;
    let net = &ck.model;
    let exporter: Box<dyn Exporter> = match a.format {
        Format::Onnx => Box::new(crate::export::Onnx { bn: a.bn.unwrap_or_default() }),
        Format::Stablehlo => {
            let shapes = program::layer_shapes(&net.arch, batch, dtype)?;
            let plan = match lower::fixed_plan(lowering, &shapes) {
                Some(p) => p,
                None => resolve_plan(&a.device.open()?, &net.arch, batch, dtype, lowering)?,
            };
            Box::new(stablehlo::StableHlo { batch, dtype, plan })
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
