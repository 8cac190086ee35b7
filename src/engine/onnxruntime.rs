//! ONNX Runtime (CPU execution provider) through the `ort` crate, its shared library loaded at
//! run time ([`super::find_library`]). One environment per process, made on first use.

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;

use super::{Loaded, Runtime};
use crate::bench::latency::Timed;
use crate::error::{Error, Result};
use crate::export::onnx::{INPUT, OUTPUT};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Runtime { runtime: "onnxruntime", message: e.to_string() }
}

/// The library's version string (`OrtGetApiBase()->GetVersionString()`), read through our own
/// `dlopen` of the file `ort` loads (the same handle).
fn version_of(path: &Path) -> std::result::Result<String, String> {
    #[repr(C)]
    struct ApiBase {
        get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
        get_version_string: unsafe extern "C" fn() -> *const c_char,
    }
    // SAFETY: OrtGetApiBase takes nothing and returns a pointer to a static struct whose first
    // two members are these functions (onnxruntime_c_api.h, every version since 1.0).
    unsafe {
        let lib = libloading::Library::new(path).map_err(|e| e.to_string())?;
        let f: libloading::Symbol<unsafe extern "C" fn() -> *const ApiBase> = lib
            .get(b"OrtGetApiBase")
            .map_err(|_| format!("{} is not ONNX Runtime's library (no OrtGetApiBase); use libonnxruntime.so*", path.display()))?;
        let base = f();
        if base.is_null() {
            return Err("OrtGetApiBase returned null".into());
        }
        let v = CStr::from_ptr(((*base).get_version_string)()).to_string_lossy().into_owned();
        std::mem::forget(lib); // ort holds the library for the process's life
        Ok(v)
    }
}

/// Loads the library once per process and makes the environment; returns its version and it.
fn environment() -> Result<(&'static str, &'static ort::environment::Environment)> {
    static ENV: OnceLock<std::result::Result<(String, ort::environment::Environment), String>> = OnceLock::new();
    let r = ENV.get_or_init(|| {
        let path = super::find_library(Runtime::OnnxRuntime).map_err(|e| e.to_string())?;
        let version = version_of(&path)?;
        let env = ort::init_from(&path)
            .map_err(|e| format!("loading {}: {e}", path.display()))?
            .with_name("prunebench")
            .build()
            .map_err(|e| e.to_string())?;
        Ok((version, env))
    });
    match r {
        Ok((v, env)) => Ok((v.as_str(), env)),
        Err(m) => Err(err(m)),
    }
}

/// The loaded library's version (loads it on first use).
pub fn version() -> Result<&'static str> {
    environment().map(|(v, _)| v)
}

/// An ONNX model in an ONNX Runtime session, with one resident input batch.
pub struct OrtModel {
    session: Session,
    input: Option<Tensor<f32>>,
    dims: [usize; 3],
    classes: usize,
    batch: usize,
    version: String,
    load_seconds: f64,
}

impl OrtModel {
    /// A session of the ONNX model `bytes` (input `[batch, C, H, W]` from `input = [h, w, c]`),
    /// threads as [`super`] documents.
    pub fn new(bytes: &[u8], input: [usize; 3], classes: usize, batch: usize) -> Result<Self> {
        Self::with_profile(bytes, input, classes, batch, None)
    }

    /// [`new`](Self::new), with ONNX Runtime's profiler writing a trace whose name starts with
    /// `profile` (see [`end_profiling`](Self::end_profiling)).
    pub fn with_profile(bytes: &[u8], input: [usize; 3], classes: usize, batch: usize, profile: Option<&Path>) -> Result<Self> {
        let (version, env) = environment()?;
        let version = version.to_string();
        let t = Instant::now();
        let mut builder = Session::builder(env).map_err(err)?;
        if let Some(p) = profile {
            builder = builder.with_profiling(p).map_err(err)?;
        }
        let session = builder
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(err)?
            .with_intra_threads(super::threads())
            .map_err(err)?
            .with_inter_threads(1)
            .map_err(err)?
            .with_parallel_execution(false)
            .map_err(err)?
            .commit_from_memory(bytes)
            .map_err(err)?;
        Ok(OrtModel { session, input: None, dims: input, classes, batch, version, load_seconds: t.elapsed().as_secs_f64() })
    }

    /// Ends profiling (a session made by [`with_profile`](Self::with_profile)); returns the
    /// trace file ONNX Runtime wrote.
    pub fn end_profiling(&mut self) -> Result<std::path::PathBuf> {
        self.session.end_profiling().map(std::path::PathBuf::from).map_err(err)
    }

    fn run_nchw(&mut self, nchw: Vec<f32>) -> Result<Vec<f32>> {
        let [h, w, c] = self.dims;
        let t = Tensor::from_array(([self.batch, c, h, w], nchw)).map_err(err)?;
        let out = self.session.run(ort::inputs![INPUT => t]).map_err(err)?;
        let (_, logits) = out[OUTPUT].try_extract_tensor::<f32>().map_err(err)?;
        Ok(logits.to_vec())
    }
}

impl Timed for OrtModel {
    fn batch(&self) -> usize {
        self.batch
    }
    fn input_len(&self) -> usize {
        self.batch * self.dims.iter().product::<usize>()
    }
    fn set_input(&mut self, x: &[f32]) -> Result<()> {
        let [h, w, c] = self.dims;
        let nchw = super::nhwc_to_nchw(x, self.batch, self.dims);
        self.input = Some(Tensor::from_array(([self.batch, c, h, w], nchw)).map_err(err)?);
        Ok(())
    }
    fn call(&mut self) -> Result<()> {
        let input = self.input.as_ref().expect("set_input before call");
        self.session.run(ort::inputs![INPUT => input.view()]).map_err(err)?;
        Ok(())
    }
}

impl Loaded for OrtModel {
    fn timed(&mut self) -> &mut dyn Timed {
        self
    }
    fn version(&self) -> String {
        format!("onnxruntime {}", self.version)
    }
    fn load_seconds(&self) -> f64 {
        self.load_seconds
    }
    fn predict(&mut self, x: &[f32], n: usize) -> Result<Vec<f32>> {
        let (dims, batch, classes) = (self.dims, self.batch, self.classes);
        crate::util::predict_in_batches(x, n, &dims, batch, classes, |b| self.run_nchw(super::nhwc_to_nchw(b, batch, dims)))
    }
}

/// One graph node's times in an ONNX Runtime profile.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeTime {
    /// The node's name in the optimized graph (a node that absorbed others, e.g. a Conv with
    /// its Relu, keeps a name that starts with the first node's).
    pub node: String,
    /// Its operator after optimization (`Conv`, `FusedConv`, `MaxPool`, ...).
    pub op: String,
    /// Microseconds of every run, in order.
    pub us: Vec<f64>,
}

/// The per-node kernel times of an ONNX Runtime profile trace (Chrome trace JSON: events of
/// category `Node` named `<node>_kernel_time`, `dur` in microseconds, `args.op_name`), in
/// first-run order.
///
/// Errors: the file cannot be read or is not a JSON array of events.
pub fn node_times(trace: &Path) -> Result<Vec<NodeTime>> {
    let text = std::fs::read_to_string(trace).map_err(|e| Error::io(trace, e))?;
    let events: Vec<serde_json::Value> =
        serde_json::from_str(&text).map_err(|e| Error::file(trace, format!("not an ONNX Runtime profile: {e}")))?;
    let mut out: Vec<NodeTime> = Vec::new();
    for e in &events {
        let (Some(cat), Some(name), Some(dur)) = (e["cat"].as_str(), e["name"].as_str(), e["dur"].as_f64()) else { continue };
        let Some(node) = name.strip_suffix("_kernel_time") else { continue };
        if cat != "Node" {
            continue;
        }
        match out.iter_mut().find(|t| t.node == node) {
            Some(t) => t.us.push(dur),
            None => {
                let op = e["args"]["op_name"].as_str().unwrap_or("?").to_string();
                out.push(NodeTime { node: node.to_string(), op, us: vec![dur] });
            }
        }
    }
    Ok(out)
}
