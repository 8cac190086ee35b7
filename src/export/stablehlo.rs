//! A network as a StableHLO bundle: a folder with the inference program as MLIR text and its
//! arguments, for anyone who runs programs through XLA or PJRT themselves.
//!
//! - `program.mlir`: `func.func @main(input [batch, H, W, C] NHWC, weights...) -> logits
//!   [batch, classes]` (f32 output), exactly the program prunebench compiles (BN folded).
//! - `weights.safetensors`: the weight arguments in call order, named `NNN.{node}.kernel|weight|bias`
//!   (`NNN` the argument's index, from 1; argument 0 is the input).
//! - `manifest.json`: every argument's name, shape and dtype in order, the output's, and how
//!   the program was made (form, channels, batch, dtype, lowering per conv).
//!
//! The batch is fixed (StableHLO programs have static shapes); export once per batch size.

use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde::Serialize;

use super::Exporter;
use crate::error::{Error, Result};
use crate::hlo::DType;
use crate::lower::Lowering;
use crate::model::{program, Network};

/// The bundle's files, relative to its folder.
pub const PROGRAM: &str = "program.mlir";
pub const WEIGHTS: &str = "weights.safetensors";
pub const MANIFEST: &str = "manifest.json";

/// The StableHLO bundle exporter: the program for batches of `batch` in `dtype`, conv `i`
/// lowered as `plan[i]` (any lowering but prunebench's own CPU kernel, which only runs inside
/// prunebench).
pub struct StableHlo {
    pub batch: usize,
    pub dtype: DType,
    pub plan: Vec<Lowering>,
}

#[derive(Serialize)]
struct Arg {
    name: String,
    shape: Vec<i64>,
    dtype: String,
}

#[derive(Serialize)]
struct Manifest {
    format: &'static str,
    form: String,
    channels: Vec<usize>,
    batch: usize,
    input_layout: &'static str,
    lowering: Vec<&'static str>,
    arguments: Vec<Arg>,
    output: Arg,
}

impl Exporter for StableHlo {
    fn format(&self) -> &'static str {
        "stablehlo"
    }

    fn export(&self, net: &Network, out: &Path) -> Result<Vec<PathBuf>> {
        if let Some(i) = self.plan.iter().position(|l| *l == Lowering::Kernel) {
            return Err(Error::invalid(
                "lowering",
                format!("conv {i}: kernel"),
                "prunebench's own CPU kernel runs only inside prunebench; export with --lowering xla, im2col or winograd",
            ));
        }
        let prog = program::inference(&net.arch, self.batch, self.dtype, &self.plan)?;
        let weights = net.folded()?;
        // Argument names: the folded list is (weight, bias) per conv / dense node in graph order.
        let layers: Vec<&crate::graph::Node> = net
            .graph
            .nodes()
            .iter()
            .filter(|n| matches!(n.op, crate::graph::Op::Conv(_) | crate::graph::Op::Dense { .. }))
            .collect();
        let names: Vec<String> = weights
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let n = layers[i / 2];
                let what = match (i % 2, n.conv().is_some()) {
                    (1, _) => "bias",
                    (_, true) => "kernel",
                    _ => "weight",
                };
                format!("{:03}.{}.{what}", i + 1, n.name)
            })
            .collect();
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        // The weights in the program's dtype as safetensors wants them.
        let bytes: Vec<Vec<u8>> = weights.iter().map(|t| encode(t, self.dtype)).collect::<Result<_>>()?;
        let st_dtype = match self.dtype {
            DType::F32 => Dtype::F32,
            DType::F64 => Dtype::F64,
            DType::BF16 => Dtype::BF16,
            other => return Err(Error::invalid("dtype", other, "use f32, f64 or bf16")),
        };
        let views = names
            .iter()
            .zip(weights.iter().zip(&bytes))
            .map(|(n, (t, b))| {
                TensorView::new(st_dtype, t.shape().to_vec(), b)
                    .map(|v| (n.clone(), v))
                    .map_err(|e| Error::invalid("tensor", n, e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        let st = safetensors::serialize(views, &None).map_err(|e| Error::invalid("safetensors", "weights", e.to_string()))?;
        let arg = |name: String, s: &crate::hlo::Shape| Arg { name, shape: s.dims.clone(), dtype: s.dtype.to_string() };
        let mut arguments = vec![arg("input".into(), &prog.args[0])];
        arguments.extend(names.iter().zip(&prog.args[1..]).map(|(n, s)| arg(n.clone(), s)));
        let manifest = Manifest {
            format: "prunebench-stablehlo/1",
            form: net.arch.form.to_string(),
            channels: net.arch.channels.clone(),
            batch: self.batch,
            input_layout: "NHWC",
            lowering: self.plan.iter().map(|l| l.name()).collect(),
            arguments,
            output: arg("logits".into(), &prog.output),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::invalid("manifest", "json", e.to_string()))?;
        let files = [(PROGRAM, prog.text.into_bytes()), (WEIGHTS, st), (MANIFEST, json)];
        let mut written = Vec::new();
        for (name, b) in files {
            let p = out.join(name);
            crate::util::write_atomic(&p, &b)?;
            written.push(p);
        }
        Ok(written)
    }
}

/// Little-endian bytes of `t` in `dtype`.
fn encode(t: &ndarray::ArrayD<f32>, dtype: DType) -> Result<Vec<u8>> {
    Ok(match dtype {
        DType::F32 => t.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F64 => t.iter().flat_map(|&x| (x as f64).to_le_bytes()).collect(),
        DType::BF16 => t.iter().flat_map(|&x| half::bf16::from_f32(x).to_le_bytes()).collect(),
        other => return Err(Error::invalid("dtype", other, "use f32, f64 or bf16")),
    })
}
