//! `init`, `predict`, `hlo`, `info`: commands on one checkpoint.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use ndarray::{Array2, Array4};

use super::device::DeviceArgs;
use crate::hlo::DType;
use crate::lower::{self, Mode};
use crate::tune;
use crate::model::{checkpoint, counts, program, Arch, Form, Network};
use crate::runtime::{CompiledModel, Session};

/// The architecture of a new network.
#[derive(Args, Debug)]
pub struct ModelArgs {
    /// Model form: vgg16-cifar (32x32 input, BN), vgg16-imagenet (224x224, 4096-4096 head),
    /// resnet20-cifar, resnet56-cifar (He et al.'s CIFAR ResNets, 32x32), resnet18-imagenet,
    /// resnet50-imagenet, mobilenetv2-imagenet (torchvision's layouts, 224x224),
    /// mobilenetv2-cifar (stride-1 stem, 32x32).
    #[arg(long, default_value = "vgg16-cifar")]
    pub model: String,
    /// Width multiplier applied to every conv (1.0 = the published network; 0.25 keeps a quarter).
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Input channels (1 for Fashion-MNIST, 3 for RGB).
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// CIFAR form only: hidden dense widths, comma separated (e.g. 512 for 512->512->classes;
    /// empty for 512->classes).
    #[arg(long, default_value = "", value_delimiter = ',')]
    pub hidden: Vec<String>,
    /// ImageNet form only: add batch norm after every conv (torchvision's vgg16_bn).
    #[arg(long)]
    pub bn: bool,
    /// Input height and width as HxW (VGG-16: multiples of 32; the others: any size their
    /// strides fit, e.g. 28x28 for Fashion-MNIST without padding); default 32x32 or 224x224 by form.
    #[arg(long, value_name = "HxW")]
    pub input_size: Option<String>,
}

/// The network a measuring command works on: a checkpoint, or a random network (seed 0) of
/// `--model`, `--width`, ... (latency does not depend on the weights' values).
#[derive(Args, Debug)]
pub struct NetworkArgs {
    /// Checkpoint; without it a random network of --model, --width, ...
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// The random network (without --checkpoint).
    #[command(flatten)]
    pub model: ModelArgs,
}

impl NetworkArgs {
    /// The checkpoint's network, or the random one.
    pub fn network(&self) -> anyhow::Result<Network> {
        Ok(match &self.checkpoint {
            Some(p) => checkpoint::load(p)?.model,
            None => Network::init(&build_arch(&self.model)?, 0),
        })
    }
}

#[derive(Args, Debug)]
pub struct InitArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Seed of the initialisation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output checkpoint (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// Checkpoint to run.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Input images: float32 .npy of shape [N, H, W, C] (NHWC) matching the checkpoint.
    #[arg(long)]
    pub input: PathBuf,
    /// Output logits: float32 .npy of shape [N, classes].
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
    /// Compute dtype of the program: f32, bf16 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// Images per compiled batch (the last partial batch is padded).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    #[command(flatten)]
    pub lowering: LoweringArgs,
}

#[derive(Args, Debug, Clone)]
pub struct LoweringArgs {
    /// How each conv is lowered: xla (plain convolution, what JAX emits), im2col, winograd
    /// (F(2x2, 3x3)), or tuned (per layer shape, the fastest measured on this device; decisions
    /// cached on disk).
    #[arg(long, default_value = "tuned")]
    pub lowering: Mode,
}

#[derive(Args, Debug)]
pub struct HloArgs {
    /// Checkpoint whose architecture to emit.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Batch size of the program.
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Compute dtype: f32, bf16 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    /// Output file (.mlir).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub lowering: LoweringArgs,
    /// Device whose tuning decides `--lowering tuned`.
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Checkpoint to describe.
    pub checkpoint: PathBuf,
}

pub fn parse_hw(s: &str) -> anyhow::Result<(usize, usize)> {
    let parse = || -> Option<(usize, usize)> {
        let (h, w) = s.split_once(['x', 'X'])?;
        Some((h.trim().parse().ok()?, w.trim().parse().ok()?))
    };
    parse().with_context(|| format!("invalid --input-size '{s}': write it as HxW, e.g. 32x32"))
}

/// The architecture `a` describes.
pub fn build_arch(a: &ModelArgs) -> anyhow::Result<Arch> {
    let form: Form = a.model.parse()?;
    let hidden = a
        .hidden
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<usize>().with_context(|| format!("invalid --hidden entry '{s}': use widths like 512")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut arch = match form {
        Form::Cifar => {
            if a.bn {
                bail!("--bn applies to vgg16-imagenet; the CIFAR form always has batch norm");
            }
            Arch::cifar(a.width, a.in_channels, a.classes, hidden)?
        }
        Form::Imagenet => {
            if !hidden.is_empty() {
                bail!("--hidden applies to vgg16-cifar; the ImageNet head is 4096-4096 (scaled by --width)");
            }
            Arch::imagenet(a.width, a.in_channels, a.classes, a.bn)?
        }
        other => {
            if !hidden.is_empty() || a.bn {
                bail!("--hidden and --bn apply to VGG-16; {other} has batch norm and one dense layer after its global average pool");
            }
            Arch::new(other, a.width, a.in_channels, a.classes)?
        }
    };
    if let Some(s) = &a.input_size {
        let (h, w) = parse_hw(s)?;
        arch = arch.with_input(h, w)?;
    }
    Ok(arch)
}

pub fn init(a: &InitArgs) -> anyhow::Result<()> {
    let arch = build_arch(&a.model)?;
    let v = Network::init(&arch, a.seed);
    let mut meta = BTreeMap::new();
    meta.insert("prunebench.origin".to_string(), format!("init seed={}", a.seed));
    checkpoint::save(&a.out, &v, &meta)?;
    println!("wrote {}: {}", a.out.display(), arch.describe());
    println!("params {}  MACs/image {}", counts::params(&arch), counts::macs(&arch));
    Ok(())
}

/// The per-layer lowering for `mode`: fixed, or tuned on `session`'s device.
pub fn resolve_plan(session: &Session, arch: &Arch, batch: usize, dtype: DType, mode: Mode) -> anyhow::Result<Vec<lower::Lowering>> {
    let shapes = program::layer_shapes(arch, batch, dtype)?;
    match lower::fixed_plan(mode, &shapes) {
        Some(p) => Ok(p),
        None => {
            let mut tuner = tune::Tuner::open_default(session)?;
            Ok(tuner.plan(&shapes, &mut tune::StderrProgress)?)
        }
    }
}

pub fn predict(a: &PredictArgs) -> anyhow::Result<()> {
    let ck = checkpoint::load(&a.checkpoint)?;
    let arch = &ck.model.arch;
    let want = format!("float32 .npy of shape [N, {}, {}, {}] (NHWC)", arch.input[0], arch.input[1], arch.input[2]);
    let x: Array4<f32> = crate::data::read_images_npy(&a.input).with_context(|| format!("reading input: expected a {want}"))?;
    if x.shape()[1..] != arch.input[..] {
        bail!("input {} has shape {:?}; this checkpoint needs a {want}", a.input.display(), x.shape());
    }
    if a.batch == 0 {
        bail!("invalid --batch 0: use at least 1");
    }
    let n = x.shape()[0];
    let x = x.as_standard_layout();
    let session = a.device.open()?;
    let plan = resolve_plan(&session, arch, a.batch, a.dtype, a.lowering.lowering)?;
    let m = CompiledModel::new(&session, &ck.model, a.batch, a.dtype, &plan)?;
    let logits = m.predict(x.as_slice().expect("standard layout"), n)?;
    let out = Array2::from_shape_vec((n, arch.classes), logits).expect("n x classes logits");
    let mut npy = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&out, &mut npy).with_context(|| format!("encoding {}", a.out.display()))?;
    crate::util::write_atomic(&a.out, &npy)?;
    eprintln!(
        "{n} images -> {} on {} ({}, batch {}, {} lowering, compile {:.2}s)",
        a.out.display(),
        session.describe(),
        a.dtype,
        a.batch,
        a.lowering.lowering,
        m.compile_seconds
    );
    Ok(())
}

pub fn hlo(a: &HloArgs) -> anyhow::Result<()> {
    let ck = checkpoint::load(&a.checkpoint)?;
    let arch = &ck.model.arch;
    let plan = match lower::fixed_plan(a.lowering.lowering, &program::layer_shapes(arch, a.batch, a.dtype)?) {
        Some(p) => p,
        None => resolve_plan(&a.device.open()?, arch, a.batch, a.dtype, Mode::Tuned)?,
    };
    let prog = program::inference(arch, a.batch, a.dtype, &plan)?;
    crate::util::write_atomic(&a.out, prog.text.as_bytes())?;
    let names: Vec<&str> = plan.iter().map(|l| l.name()).collect();
    eprintln!("wrote {} ({} args, lowering per conv: {})", a.out.display(), prog.args.len(), names.join(","));
    if plan.contains(&lower::Lowering::Kernel) {
        eprintln!(
            "note: `kernel` convs are custom calls to prunebench's own CPU kernel ({}), which only a \
             prunebench session can run; for a self-contained program use --lowering im2col, winograd or xla",
            lower::kernel::TARGET
        );
    }
    Ok(())
}

pub fn info(a: &InfoArgs) -> anyhow::Result<()> {
    let ck = checkpoint::load(&a.checkpoint)?;
    let arch = &ck.model.arch;
    println!("{}", arch.describe());
    println!("sha256 {}", ck.sha256);
    for (k, v) in &ck.meta {
        println!("{k}: {v}");
    }
    println!("groups (name=channels, * prunable): {}", checkpoint::groups_line(&ck.model));
    println!("{:<8} {:>12} {:>14}", "layer", "params", "MACs/image");
    for l in counts::layers(arch) {
        println!("{:<8} {:>12} {:>14}", l.name, l.params, l.macs);
    }
    println!("{:<8} {:>12} {:>14}", "total", counts::params(arch), counts::macs(arch));
    let g = arch.graph()?;
    print!("\ndependency groups\n{}", crate::graph::groups::describe(&g));
    let gs = crate::graph::groups::groups(&g);
    println!("\npruned groups (the indices of --skip, the order of --ratios and of the CSV's channels column)");
    for (i, id) in crate::prune::targets(&g, &gs).into_iter().enumerate() {
        let grp = &gs.all()[id];
        println!("{i:>5}  group {id:<4} {:<28} {:>6} channels", grp.name(&g), grp.channels);
    }
    Ok(())
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Checkpoint to evaluate.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset: fashion-mnist (default), cifar10:DIR, cifar100:DIR, folder:DIR.
    #[arg(long, default_value = "fashion-mnist")]
    pub dataset: crate::data::Source,
    /// Split: test or train.
    #[arg(long, default_value = "test")]
    pub split: crate::data::Split,
    /// Evaluate only the first N images (default: all; a folder: dataset takes N chosen with a
    /// fixed seed, across its classes).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per compiled batch (the last partial batch is padded, and counted correctly).
    #[arg(long, default_value_t = 100)]
    pub batch: usize,
    /// Compute dtype: f32, bf16 or f64.
    #[arg(long, default_value = "f32")]
    pub dtype: DType,
    #[command(flatten)]
    pub lowering: LoweringArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub fn eval(a: &EvalArgs) -> anyhow::Result<()> {
    let ck = checkpoint::load(&a.checkpoint)?;
    let arch = &ck.model.arch;
    if a.batch == 0 {
        bail!("invalid --batch 0: use at least 1");
    }
    let data = a.dataset.load_normalized(a.split, arch.input, a.limit)?;
    let session = a.device.open()?;
    let plan = resolve_plan(&session, arch, a.batch, a.dtype, a.lowering.lowering)?;
    let m = CompiledModel::new(&session, &ck.model, a.batch, a.dtype, &plan)?;
    let r = crate::bench::accuracy::evaluate(&m, &data)?;
    println!(
        "{} {} {}: {} images  top-1 {:.2}%  top-5 {:.2}%  loss {:.4}",
        a.checkpoint.display(),
        a.dataset,
        a.split,
        r.images,
        100.0 * r.top1,
        100.0 * r.top5,
        r.loss
    );
    Ok(())
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// torchvision/timm ImageNet weights as safetensors with PyTorch names: `vgg16`,
    /// `vgg16_bn`, `resnet18`, `resnet50` or `mobilenet_v2` (detected from the names; kernels
    /// OIHW and dense weights [out, in] as PyTorch saves them). Save one from Python with
    /// `safetensors.torch.save_file(model.state_dict(), "w.safetensors")`.
    #[arg(long)]
    pub torchvision: PathBuf,
    /// Output prunebench checkpoint.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn import(a: &ImportArgs) -> anyhow::Result<()> {
    let net = crate::model::import::from_torchvision(&a.torchvision)?;
    let src = checkpoint::hex_sha256(&std::fs::read(&a.torchvision)?);
    let mut meta = BTreeMap::new();
    meta.insert("prunebench.origin".to_string(), format!("import torchvision sha256={src}"));
    checkpoint::save(&a.out, &net, &meta)?;
    println!("wrote {}: {}", a.out.display(), net.arch.describe());
    println!("params {}  MACs/image {}", crate::graph::counts::params(&net.graph), crate::graph::counts::macs(&net.graph));
    Ok(())
}
