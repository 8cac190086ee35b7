//! The command line: clap definitions here, one file per command family.

mod device;
mod export_cmd;
mod interrupt;
mod latency_cmd;
mod layers_cmd;
mod merge_cmd;
mod model_cmds;
mod profile_cmd;
mod prune_cmd;
mod rank_cmd;
mod report_cmd;
mod run_cmd;
mod train_cmd;
mod tune_cmd;

use clap::{Parser, Subcommand};

pub use device::DeviceArgs;
pub use interrupt::EXIT_INTERRUPTED;

/// prunebench: how much faster, smaller and less accurate does a structurally pruned network
/// (VGG-16, ResNet, MobileNetV2) really get on your accelerator? Channels are removed for real,
/// every variant is compiled by XLA through a PJRT plugin (TPU, GPU or CPU) and measured, and
/// on the CPU also on ONNX Runtime and OpenVINO from its ONNX export.
#[derive(Parser, Debug)]
#[command(name = "prunebench", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show the PJRT plugin that would be used, its API version and its devices.
    Devices(DeviceArgs),
    /// Write a freshly initialised (He, seeded) checkpoint of any form (VGG-16, ResNet, MobileNetV2).
    Init(model_cmds::InitArgs),
    /// Run a checkpoint on NHWC images from a .npy file and write the logits as .npy.
    Predict(model_cmds::PredictArgs),
    /// Write the StableHLO (MLIR text) inference program of a checkpoint.
    Hlo(model_cmds::HloArgs),
    /// Train a new network from scratch on the device (Fashion-MNIST by default).
    Train(train_cmd::TrainArgs),
    /// Fine-tune a checkpoint (e.g. a pruned one) on the device.
    Finetune(train_cmd::FinetuneArgs),
    /// Top-1 / top-5 accuracy and loss of a checkpoint on a dataset (Fashion-MNIST by default).
    Eval(model_cmds::EvalArgs),
    /// Convert torchvision/timm weights (vgg16, vgg16_bn, resnet18, resnet50, mobilenet_v2 as
    /// safetensors) into a prunebench checkpoint.
    Import(model_cmds::ImportArgs),
    /// Write a checkpoint as ONNX (ONNX Runtime, OpenVINO, ...) or as a StableHLO bundle.
    Export(export_cmd::ExportArgs),
    /// Print a checkpoint's architecture, parameter and MAC counts per layer, and its
    /// dependency groups (what pruning acts on).
    Info(model_cmds::InfoArgs),
    /// Remove channels from a checkpoint for real (or its masked control); print the savings.
    Prune(prune_cmd::PruneArgs),
    /// Measure forward latency across widths or checkpoints, batch sizes, dtypes and conv
    /// lowerings, side by side in one run.
    Latency(latency_cmd::LatencyArgs),
    /// Per conv, where the time goes: XLA's plain and tuned lowering beside ONNX Runtime's
    /// profiled kernel time of the same layer.
    Layers(layers_cmd::LayersArgs),
    /// A network's latency table on this device: per conv, latency against the kept channels
    /// of its groups (the staircase), calibrated by one whole-network measurement.
    Profile(profile_cmd::ProfileArgs),
    /// Tune the conv lowering of every layer of a network on the device and show the choices.
    Tune(tune_cmd::TuneArgs),
    /// Run a benchmark suite (YAML): build every variant it describes, measure it on the
    /// device and append one CSV row per variant; resumable.
    Run(run_cmd::RunArgs),
    /// Rank pruned candidates by transferability measures (NLEEP, LogME, ...) instead of
    /// fine-tuning them all; with the fine-tuned truth, rate how well each measure predicted it.
    Rank(rank_cmd::RankArgs),
    /// Tables (summary.md) and plots (SVG and PNG) from result CSVs.
    Report(report_cmd::ReportArgs),
    /// Join result CSVs (e.g. one per shard) into one, dropping duplicate variants.
    Merge(merge_cmd::MergeArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    interrupt::install()?;
    match cli.command {
        Command::Devices(a) => device::devices(&a),
        Command::Init(a) => model_cmds::init(&a),
        Command::Predict(a) => model_cmds::predict(&a),
        Command::Hlo(a) => model_cmds::hlo(&a),
        Command::Info(a) => model_cmds::info(&a),
        Command::Export(a) => export_cmd::export(&a),
        Command::Import(a) => model_cmds::import(&a),
        Command::Eval(a) => model_cmds::eval(&a),
        Command::Train(a) => train_cmd::train(&a),
        Command::Finetune(a) => train_cmd::finetune(&a),
        Command::Prune(a) => prune_cmd::prune(&a),
        Command::Latency(a) => latency_cmd::latency(&a),
        Command::Layers(a) => layers_cmd::layers(&a),
        Command::Profile(a) => profile_cmd::profile(&a),
        Command::Tune(a) => tune_cmd::tune(&a),
        Command::Run(a) => run_cmd::run(&a),
        Command::Rank(a) => rank_cmd::rank(&a),
        Command::Report(a) => report_cmd::report(&a),
        Command::Merge(a) => merge_cmd::merge(&a),
    }
}
