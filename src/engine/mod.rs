//! The runtimes a network can be measured on: XLA through PJRT (prunebench's own programs,
//! [`crate::runtime`]), and the ONNX model of the same weights ([`crate::export::onnx`]) on
//! ONNX Runtime ([`onnxruntime`]) or OpenVINO ([`openvino`]), both loaded at run time from
//! their pip wheels' shared libraries (`bash scripts/setup.sh` installs them under
//! `.runtimes/`). No Python runs.
//!
//! Thread settings, one per runtime, all at this machine's available parallelism `N`
//! (`std::thread::available_parallelism`): XLA's CPU plugin runs its own pool of `N` threads;
//! ONNX Runtime gets `intra_op_num_threads = N`, `inter_op_num_threads = 1`, sequential
//! execution, all graph optimizations; OpenVINO's CPU device gets `INFERENCE_NUM_THREADS = N`,
//! one stream, `PERFORMANCE_HINT = LATENCY` and `INFERENCE_PRECISION_HINT = f32` (it would
//! otherwise run bf16 where the CPU has it).
//!
//! Layer: above [`crate::export`] (the ONNX bytes) and [`crate::bench`] (each runtime's model
//! is [`Timed`]), below the CLI.

pub mod onnxruntime;
pub mod openvino;

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::bench::latency::Timed;
use crate::error::{Error, Result};
use crate::model::Network;

/// A runtime that executes a network: `--runtime` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// XLA through a PJRT plugin (prunebench's StableHLO programs; the `--lowering` axis applies).
    Xla,
    /// ONNX Runtime's CPU execution provider.
    OnnxRuntime,
    /// OpenVINO's CPU device.
    OpenVino,
}

impl Runtime {
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Xla => "xla",
            Runtime::OnnxRuntime => "onnxruntime",
            Runtime::OpenVino => "openvino",
        }
    }

    /// The shared library's path below a `.runtimes/` folder (as `scripts/setup.sh` lays it
    /// out: the pip wheel unpacked in `.runtimes/<runtime>/`); `None` for XLA.
    fn project_file(self) -> Option<&'static str> {
        match self {
            Runtime::Xla => None,
            Runtime::OnnxRuntime => Some("onnxruntime/onnxruntime/capi"),
            Runtime::OpenVino => Some("openvino/openvino/libs"),
        }
    }

    /// The library's file name prefix (the wheels carry versioned names only).
    fn library_prefix(self) -> &'static str {
        match self {
            Runtime::Xla => "",
            Runtime::OnnxRuntime => "libonnxruntime.so",
            Runtime::OpenVino => "libopenvino_c.so",
        }
    }

    /// The environment variable that names the library file explicitly.
    pub fn env_var(self) -> &'static str {
        match self {
            Runtime::Xla => "PRUNEBENCH_PLUGIN",
            Runtime::OnnxRuntime => "PRUNEBENCH_ONNXRUNTIME",
            Runtime::OpenVino => "PRUNEBENCH_OPENVINO",
        }
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Runtime {
    type Err = Error;
    fn from_str(s: &str) -> Result<Runtime> {
        match s.to_ascii_lowercase().as_str() {
            "xla" => Ok(Runtime::Xla),
            "onnxruntime" | "ort" => Ok(Runtime::OnnxRuntime),
            "openvino" | "ov" => Ok(Runtime::OpenVino),
            other => Err(Error::invalid("runtime", other, "use xla, onnxruntime or openvino")),
        }
    }
}

/// The shared library of `rt` (ONNX Runtime or OpenVINO): `$PRUNEBENCH_ONNXRUNTIME` /
/// `$PRUNEBENCH_OPENVINO` when set, else the newest matching file in `.runtimes/<rt>/...`
/// under `$PRUNEBENCH_HOME`, the current folder or its parents, or the executable's folder or
/// its parents.
///
/// Errors: nothing found: every folder searched and the command that installs it.
pub fn find_library(rt: Runtime) -> Result<PathBuf> {
    let Some(rel) = rt.project_file() else {
        return Err(Error::invalid("runtime", rt, "XLA is loaded as a PJRT plugin (--device / --plugin)"));
    };
    if let Some(p) = std::env::var_os(rt.env_var()).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(Error::file(&p, format!("${} names no file; unset it or point it at {}*", rt.env_var(), rt.library_prefix())))
        };
    }
    let probe = crate::pjrt::discover::Probe::system();
    let mut searched = Vec::new();
    for dir in probe.folders_holding(".runtimes") {
        let d = dir.join(".runtimes").join(rel);
        if let Some(f) = newest_with_prefix(&d, rt.library_prefix()) {
            return Ok(f);
        }
        searched.push(d.display().to_string());
    }
    Err(Error::RuntimeNotFound {
        runtime: rt.name().into(),
        searched: searched.join("\n"),
        install: format!(
            "bash scripts/setup.sh (in the project folder), then run from inside it or set $PRUNEBENCH_HOME to it; \
             or point ${} at the library file",
            rt.env_var()
        ),
    })
}

/// The file in `dir` whose name starts with `prefix` (e.g. `libonnxruntime.so.1.32.0`), the
/// longest name first (the most specific version).
fn newest_with_prefix(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut hits: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
        .collect();
    hits.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    hits.into_iter().next()
}

/// Loads `rt`'s library (once per process) and returns its version, e.g. `onnxruntime 1.32.0`;
/// nothing for XLA.
///
/// Errors: the library is missing or is not the runtime's.
pub fn ensure(rt: Runtime) -> Result<Option<String>> {
    Ok(match rt {
        Runtime::Xla => None,
        Runtime::OnnxRuntime => Some(format!("onnxruntime {}", onnxruntime::version()?)),
        Runtime::OpenVino => Some(format!("openvino {}", openvino::version()?)),
    })
}

/// Threads each runtime is given (see the module docs).
pub fn threads() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// A network loaded into an ONNX-consuming runtime for batches of `batch`: the ONNX bytes of
/// `net` ([`crate::export::onnx`], BN folded) compiled by `rt`. The returned model is
/// [`Timed`] and predicts.
///
/// Errors: `rt` is XLA (use [`crate::runtime::CompiledModel`]), its library is missing or
/// refuses the model.
pub fn load(rt: Runtime, net: &Network, batch: usize) -> Result<Box<dyn Loaded>> {
    let bytes = crate::export::onnx::to_bytes(net, crate::export::onnx::Bn::Fold)?;
    let per: [usize; 3] = net.arch.input;
    let classes = net.arch.classes;
    Ok(match rt {
        Runtime::Xla => return Err(Error::invalid("runtime", rt, "XLA models are CompiledModels")),
        Runtime::OnnxRuntime => Box::new(onnxruntime::OrtModel::new(&bytes, per, classes, batch)?),
        Runtime::OpenVino => Box::new(openvino::OvModel::new(&bytes, per, classes, batch)?),
    })
}

/// A model loaded into ONNX Runtime or OpenVINO.
pub trait Loaded: Timed {
    /// This model as [`Timed`].
    fn timed(&mut self) -> &mut dyn Timed;
    /// The runtime and its version, e.g. `onnxruntime 1.32.0`.
    fn version(&self) -> String;
    /// Seconds it took to load and compile the model.
    fn load_seconds(&self) -> f64;
    /// Logits `[n, classes]` of `n` NHWC images (batched by the model's batch; the last
    /// partial batch padded with zeros and the padding dropped).
    fn predict(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>>;
}

/// NHWC images to NCHW (what the ONNX graph takes): `x` is `n` images of `[h, w, c]`.
pub fn nhwc_to_nchw(x: &[f32], n: usize, [h, w, c]: [usize; 3]) -> Vec<f32> {
    let v = ndarray::ArrayView4::from_shape((n, h, w, c), x).expect("n images of [h, w, c]");
    v.permuted_axes([0, 3, 1, 2]).iter().copied().collect()
}
