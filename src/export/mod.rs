//! Networks written in formats other tools load: ONNX (for ONNX Runtime, OpenVINO, TensorRT
//! and the rest) and a StableHLO bundle (for XLA users). Each format is an [`Exporter`].
//!
//! Layer: above [`crate::model`] (it reads a [`Network`]), below the runtimes that load what
//! it writes ([`crate::engine`]) and the CLI.

pub mod onnx;
pub mod onnx_proto;
pub mod stablehlo;

pub use stablehlo::StableHlo;

use std::path::{Path, PathBuf};

use crate::error::Result;
use crate::model::Network;

/// A file format a network can be written in.
pub trait Exporter {
    /// The format's name as `--format` takes it (`onnx`, `stablehlo`).
    fn format(&self) -> &'static str;
    /// Writes `net` to `out` (a file or a folder, as the format says) atomically per file;
    /// returns the files written.
    ///
    /// Errors: the network cannot be expressed in the format (named), or a write fails.
    fn export(&self, net: &Network, out: &Path) -> Result<Vec<PathBuf>>;
}

/// ONNX ([`onnx`]): one `.onnx` file.
pub struct Onnx {
    pub bn: onnx::Bn,
}

impl Exporter for Onnx {
    fn format(&self) -> &'static str {
        "onnx"
    }

    fn export(&self, net: &Network, out: &Path) -> Result<Vec<PathBuf>> {
        crate::util::write_atomic(out, &onnx::to_bytes(net, self.bn)?)?;
        Ok(vec![out.to_path_buf()])
    }
}
