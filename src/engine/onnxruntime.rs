//! ONNX Runtime (CPU execution provider) through the `ort` crate, its shared library loaded at
//! run time ([`super::find_library`]). One environment per process, made on first use.

use std::ffi::{c_char, CStr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;

use super::{predict_batched, Loaded, Runtime};
use crate::bench::latency::Timed;
use crate::error::{Error, Result};
use crate::export::onnx::{INPUT, OUTPUT};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Runtime { runtime: "onnxruntime", message: e.to_string() }
}

/// The library's version string (`OrtGetApiBase()->GetVersionString()`), read through our own
/// `dlopen` of the file `ort` loads (the same handle).
fn version_of(path: &Path) -> Result<String> {
    #[repr(C)]
    struct ApiBase {
        get_api: unsafe extern "C" fn(u32) -> *const std::ffi::c_void,
        get_version_string: unsafe extern "C" fn() -> *const c_char,
    }
    // SAFETY: OrtGetApiBase takes nothing and returns a pointer to a static struct whose first
    // two members are these functions (onnxruntime_c_api.h, every version since 1.0).
    unsafe {
        let lib = libloading::Library::new(path).map_err(err)?;
        let f: libloading::Symbol<unsafe extern "C" fn() -> *const ApiBase> = lib.get(b"OrtGetApiBase").map_err(err)?;
        let base = f();
        if base.is_null() {
            return Err(err("OrtGetApiBase returned null"));
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
        let version = version_of(&path).map_err(|e| e.to_string())?;
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
        let (version, env) = environment()?;
        let version = version.to_string();
        let t = Instant::now();
        let session = Session::builder(env)
            .map_err(err)?
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
        predict_batched(x, n, dims, batch, classes, |nchw| self.run_nchw(nchw.to_vec()))
    }
}
