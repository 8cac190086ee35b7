//! The command line: clap definitions here, one file per command family.

mod device;
mod model_cmds;

use clap::{Parser, Subcommand};

pub use device::DeviceArgs;

/// prunebench: how much faster, smaller and less accurate does a structurally pruned VGG-16
/// really get on your accelerator? Channels are removed for real, every variant is compiled
/// by XLA through a PJRT plugin (TPU, GPU or CPU) and measured.
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
    /// Write a freshly initialised (He, seeded) VGG-16 checkpoint.
    Init(model_cmds::InitArgs),
    /// Run a checkpoint on NHWC images from a .npy file and write the logits as .npy.
    Predict(model_cmds::PredictArgs),
    /// Write the StableHLO (MLIR text) inference program of a checkpoint.
    Hlo(model_cmds::HloArgs),
    /// Print a checkpoint's architecture, parameter and MAC counts per layer.
    Info(model_cmds::InfoArgs),
}

/// Parses the command line and runs the command.
pub fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Devices(a) => device::devices(&a),
        Command::Init(a) => model_cmds::init(&a),
        Command::Predict(a) => model_cmds::predict(&a),
        Command::Hlo(a) => model_cmds::hlo(&a),
        Command::Info(a) => model_cmds::info(&a),
    }
}
